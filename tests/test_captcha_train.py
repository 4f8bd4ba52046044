"""Captcha runs through the same train.run as MNIST: per-character metrics, whole-captcha
accuracy, the confusion matrix, the preprocessing cache, and the CLI on the synthetic default."""
import json

import pytest
from click.testing import CliRunner

from kerashw.cli import main


def test_one_epoch_stores_per_character_metrics(captcha_run):
    store, row, _ = captcha_run
    assert row.status == "finished" and row.spec["preprocess"] == "denoise"
    eps = store.epochs(row.id)
    assert [(e.phase, e.samples) for e in eps] == [("train", 64), ("val", 20), ("test", 60)]
    for e in eps:
        accs = [e.metrics[f"char_{k}_acc"] for k in range(1, 5)]
        assert all(0 <= a <= 1 for a in accs) and 0 <= e.metrics["whole"] <= min(accs)
        assert e.metrics["top1"] == pytest.approx(sum(accs) / 4) and e.metrics["loss"] > 0
    conf = json.loads((store.run_dir(row.id) / "confusion_test.json").read_text())
    assert sorted(conf) == ["char_1", "char_2", "char_3", "char_4"]
    assert sum(map(sum, conf["char_1"])) == 60
    diag = sum(conf["char_2"][k][k] for k in range(19)) / 60
    assert diag == pytest.approx(eps[2].metrics["char_2_acc"], abs=1e-6)


def test_cli_confusion_and_results(captcha_run):
    store, row, output = captcha_run
    assert "Top-1 Accuracies: ['" in output and "Whole: " in output
    r = CliRunner().invoke(main, ["results", row.id, "--confusion", "--store", str(store.home)])
    assert r.exit_code == 0, r.output
    assert "most-confused pairs" in r.output and "per-position test accuracy" in r.output


def test_preview_writes_a_grid(tmp_path, thsr_path):
    import cv2

    out = tmp_path / "p.png"
    r = CliRunner().invoke(main, ["preview", "--data", str(thsr_path), "-n", "4", "-o", str(out)])
    assert r.exit_code == 0, r.output
    img = cv2.imread(str(out))
    assert img.shape[0] == 24 + 4 * 100 and img.shape[1] == 120 + 3 * 260


def test_bad_folder_is_a_clear_error(tmp_path):
    (tmp_path / "labels.csv").write_text("filename,label\nx.png,ABCD\n")
    r = CliRunner().invoke(main, ["train", "--model", "resnet18_mod", "--data", str(tmp_path),
                                  "--epochs", "1", "--store", str(tmp_path / "st")])
    assert r.exit_code == 2 and "labels.csv line 2: label 'ABCD' has 'BD' outside the alphabet" in r.output


@pytest.mark.slow
def test_default_synthetic_study_runs_with_no_data(tmp_path, monkeypatch):
    """The fresh-clone promise: `kerashw train --exp captcha-preprocess --epochs 1` needs no data:
    the synthetic default is generated, cached, preprocessed, split 4:1:3 and trained on. Here
    the default set is 240 images instead of 8,000, to keep the suite fast; the path is the same."""
    from kerashw.captcha import folders

    monkeypatch.setattr(folders, "SYNTH_COUNT", 240)
    monkeypatch.setenv("KERASHW_CACHE", str(tmp_path / "cache"))  # a machine that has generated nothing
    st = str(tmp_path / "st")
    r = CliRunner().invoke(main, ["train", "--model", "resnet18_mod", "--preprocess", "denoise",
                                  "--epochs", "1", "--limit", "64", "--store", st])
    assert r.exit_code == 0, r.output
    runs = json.loads(CliRunner().invoke(main, ["results", "--store", st, "--format", "json"]).output)
    assert [x["spec"]["preprocess"] for x in runs] == ["denoise"] and runs[0]["spec"]["data"] is None
    assert all(x["status"] == "finished" for x in runs)
    assert all(x["final"]["test"]["samples"] == 90 and x["final"]["val"]["samples"] == 30 for x in runs)
    assert len(list((tmp_path / "cache").glob("synthetic-v*-240-seed0/*.png"))) == 240
