import json
import subprocess
import sys

import pytest

from click.testing import CliRunner

from kerashw.cli import main


def test_help_does_not_import_tensorflow(tmp_path):
    from kerashw.store import Store

    Store(tmp_path / "st")  # an empty store of our own: `results` reads it, it never trains
    code = ("import sys; from click.testing import CliRunner; from kerashw.cli import main; "
            "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output; "
            "r = CliRunner().invoke(main, ['results', '--store', sys.argv[1]]); assert r.exit_code == 0, r.output; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "st")], check=True)


def test_results_on_a_missing_store_is_one_clear_error(tmp_path):
    missing = tmp_path / "no-such-store"
    r = CliRunner().invoke(main, ["results", "--store", str(missing)])
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert str(missing) in r.output
    assert not missing.exists()  # a reader creates nothing


@pytest.mark.slow
def test_list_shows_studies_and_params():
    r = CliRunner().invoke(main, ["list"])
    assert r.exit_code == 0, r.output
    for name in ("model", "activation", "optimizer", "lr", "batch", "all"):
        assert name in r.output
    assert "235,146 params" in r.output and "421,738 params" in r.output


@pytest.mark.slow
def test_train_then_results_end_to_end(tmp_path, mnist_path):
    store = str(tmp_path / "st")
    r = CliRunner().invoke(main, ["train", "--exp", "lr", "--epochs", "1", "--limit", "300",
                                  "--mnist", str(mnist_path), "--store", store])
    assert r.exit_code == 0, r.output
    assert "Epoch [1/1], phase: train, samples: 300, Loss: " in r.output
    assert "phase: test, samples: 10000" in r.output and "summary" in r.output
    r = CliRunner().invoke(main, ["results", "--exp", "lr", "--store", store, "--format", "json", "--epochs", "1",
                                  "--limit", "300", "--mnist", str(mnist_path)])
    runs = json.loads(r.stdout)
    assert sorted(x["spec"]["lr"] for x in runs) == [0.01, 0.05, 0.25]
    assert all(x["status"] == "finished" for x in runs)
    r = CliRunner().invoke(main, ["results", "--store", store, "--format", "csv"])
    assert r.output.splitlines()[0].startswith("run,status,model,lr,train,val,test,top3")
    assert len(r.output.splitlines()) == 4
    md = CliRunner().invoke(main, ["results", "--store", store, "--format", "markdown"]).output
    assert md.startswith("| run | status |")
    one = CliRunner().invoke(main, ["results", runs[0]["id"][:6], "--store", store])
    assert one.exit_code == 0 and one.output.count("Epoch [1/1]") == 3
    # again: everything is reused, nothing trains
    r = CliRunner().invoke(main, ["train", "--exp", "lr", "--epochs", "1", "--limit", "300",
                                  "--mnist", str(mnist_path), "--store", store])
    assert r.output.count("already finished") == 3 and "Epoch [" not in r.output


@pytest.mark.slow
def test_single_run_with_overrides(tmp_path, mnist_path):
    store = str(tmp_path / "st")
    r = CliRunner().invoke(main, ["train", "--model", "cnn", "--lr", "0.01", "--epochs", "1",
                                  "--limit", "128", "--mnist", str(mnist_path), "--store", store])
    assert r.exit_code == 0, r.output
    runs = json.loads(CliRunner().invoke(main, ["results", "--store", store, "--format", "json"]).output)
    assert [(x["spec"]["model"], x["spec"]["lr"]) for x in runs] == [("cnn", 0.01)]


def test_bad_inputs_are_clear(tmp_path):
    r = CliRunner().invoke(main, ["train", "--exp", "nope", "--store", str(tmp_path)])
    assert r.exit_code == 2 and "Unknown study 'nope'" in r.output
    r = CliRunner().invoke(main, ["train", "--model", "vgg", "--store", str(tmp_path)])
    assert r.exit_code == 2 and "'vgg' is not one of" in r.output and "resnet18_mod" in r.output
    r = CliRunner().invoke(main, ["train", "--epochs", "1", "--limit", "64",
                                  "--mnist", str(tmp_path / "missing.npz"), "--store", str(tmp_path)])
    assert r.exit_code == 2 and "missing.npz: no such file" in r.output
    r = CliRunner().invoke(main, ["results", "ffff", "--store", str(tmp_path)])
    assert r.exit_code == 1 and "matches no run" in r.output


def test_list_shows_done_and_estimates_without_creating_a_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["list", "--no-params"])
    assert r.exit_code == 0, r.output
    assert "est. time" in r.output and "no store yet" in r.output
    assert not (tmp_path / "kerashw-runs").exists()
    assert " min " in r.output or " s " in r.output  # an estimate per study


def test_tui_entry_point_help_and_bad_store(tmp_path, capsys):
    from kerashw.cli import tui_main

    with pytest.raises(SystemExit) as exc:
        tui_main(["--help"])
    assert exc.value.code == 0 and "--store" in capsys.readouterr().out
    bad = tmp_path / "x.db"
    bad.write_text("not sqlite")
    with pytest.raises(SystemExit) as exc:
        tui_main(["--store", str(bad)])
    assert exc.value.code == 2 and "not a kerashw results store" in capsys.readouterr().err


def test_study_is_the_option_and_exp_its_older_name(tmp_path):
    from kerashw.store import Store

    Store(tmp_path / "st")
    for flag in ("--study", "--exp"):
        r = CliRunner().invoke(main, ["results", flag, "lr", "--store", str(tmp_path / "st")])
        assert r.exit_code == 0 and "No runs of study 'lr'" in r.output, r.output


def test_tensorboard_without_its_extra_is_one_line_before_training(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    r = CliRunner().invoke(main, ["train", "--model", "nn", "--epochs", "1", "--tensorboard",
                                  "--store", str(tmp_path / "st")])
    assert r.exit_code == 2 and 'pip install "kerashw[tensorboard]"' in r.output and "Traceback" not in r.output
    assert not (tmp_path / "st").exists()  # nothing made, nothing claimed


def test_list_says_done_is_unknown_without_the_data(tmp_path, monkeypatch):
    """With no MNIST file anywhere, the MNIST studies' done counts are unknown, not 0."""
    monkeypatch.delenv("KERASHW_MNIST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no Keras cache either
    r = CliRunner().invoke(main, ["list", "--no-params", "--store", str(tmp_path / "none")])
    assert r.exit_code == 0, r.output
    lr_row = next(line for line in r.output.splitlines() if line.startswith("│ lr "))
    assert lr_row.split("│")[4].strip() == "?"  # done
    assert "done ?: the study's data cannot be read now" in r.output and "no local MNIST file" in r.output


@pytest.mark.slow
def test_tensorboard_has_every_phase_per_epoch_and_the_spec_as_hparams(tmp_path, tiny_mnist):
    pytest.importorskip("tensorboard", reason="kerashw[tensorboard] extra")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    from kerashw.store import Store

    st = tmp_path / "st"
    r = CliRunner().invoke(main, ["train", "--model", "nn", "--epochs", "2", "--limit", "128", "--tensorboard",
                                  "--eval-test", "every", "--mnist", str(tiny_mnist), "--store", str(st)])
    assert r.exit_code == 0, r.output
    store = Store(st)
    (row,) = store.runs()
    board = store.files(row.id).tensorboard
    stored = {(e.phase, e.epoch): e.metrics for e in store.epochs(row.id)}
    for phase in ("train", "val", "test"):
        events = EventAccumulator(str(board / phase), size_guidance={"tensors": 0}).Reload()
        for key in ("loss", "top1", "top3"):
            points = [(t.step, float(tensor_util.make_ndarray(t.tensor_proto))) for t in events.Tensors(key)]
            assert [s for s, _ in points] == [1, 2]
            assert points == pytest.approx([(e, stored[phase, e][key]) for e in (1, 2)])
    root = EventAccumulator(str(board), size_guidance={"tensors": 0}).Reload()
    plugins = root.PluginTagToContent("hparams")
    assert plugins and row.id.encode() in b"".join(plugins.values())  # the trial id, with the spec's values
    assert b"batch_size" in b"".join(plugins.values())


def test_cache_lists_and_clears_only_the_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    (cache / "synthetic-v3-8000-seed0").mkdir(parents=True)
    (cache / "synthetic-v3-8000-seed0" / "00000.png").write_bytes(b"x" * 3_000_000)
    store = tmp_path / "kerashw-runs"
    store.mkdir()
    (store / "runs.db").write_bytes(b"")
    monkeypatch.setenv("KERASHW_CACHE", str(cache))
    r = CliRunner().invoke(main, ["cache"])
    assert r.exit_code == 0 and "3.0 MB  synthetic-v3-8000-seed0" in r.output and cache.exists()
    r = CliRunner().invoke(main, ["cache", "--clear"])
    assert r.exit_code == 0 and "freed 3.0 MB" in r.output
    assert not cache.exists() and (store / "runs.db").exists()
