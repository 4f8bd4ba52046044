"""Studies from TOML files: the same run ids as the CLI, clear errors, a store's studies/ folder."""
import dataclasses
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kerashw.cli import main
from kerashw.config import DataError, Overrides, baseline
from kerashw.studies import available, get_study

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _write(tmp_path, body: str, name="s.toml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def test_example_files_give_the_runs_the_command_line_gives():
    seeds = get_study(str(EXAMPLES / "tiny-seeds.toml"))
    assert seeds.name == "tiny-seeds" and seeds.factor == "seed"
    cli = [get_study("captcha-tiny").specs(Overrides(seed=k))[0].run_id for k in range(1, 6)]
    assert [s.run_id for s in seeds.specs()] == cli
    grid = get_study(str(EXAMPLES / "lr-arcs.toml"))
    want = [Overrides(epochs=30, extra={"lr": lr, "arcs": arcs}).apply(get_study("captcha-best").make()[0]).run_id
            for lr in (1e-3, 3e-3) for arcs in (0.0, 0.5)]
    assert [s.run_id for s in grid.specs()] == want and grid.factor == ""


def test_a_file_without_base_starts_from_the_models_baseline(tmp_path):
    path = _write(tmp_path, 'name = "nn-lr"\n[spec]\nmodel = "cnn"\nepochs = 2\n[grid]\nlr = [0.01, 0.1]\n')
    study = get_study(str(path))
    cli = [Overrides(epochs=2, extra={"lr": lr, "model": "cnn"}).apply(
        dataclasses.replace(baseline("mnist"), model="cnn")).run_id for lr in (0.01, 0.1)]
    assert [s.run_id for s in study.specs()] == cli and study.factor == "lr"
    # the command line's overrides apply on top, as for a built-in study
    assert [s.seed for s in study.specs(Overrides(seed=7))] == [7, 7]


def test_a_relative_data_folder_is_the_files_neighbour(tmp_path, monkeypatch):
    (tmp_path / "caps").mkdir()
    path = _write(tmp_path, 'name = "mine"\nbase = "captcha-tiny"\n[spec]\ndata = "caps"\n')
    monkeypatch.chdir("/")
    (spec,) = get_study(str(path)).specs()
    assert spec.data == str((tmp_path / "caps").resolve())


@pytest.mark.parametrize("body, message", [
    ('name = "x"\nsweep = 1\n', "unknown key 'sweep'; a study file has name, description, base, spec, grid"),
    ('name = "x"\n[spec]\nlrr = 0.1\n', "spec.lrr: not a run setting; accepted: task, model"),
    ('name = "x"\n[spec]\nlr = "fast"\n', "spec: lr = 'fast'; want float"),
    ('name = "x"\n[spec]\naugment = 1\n', "spec: augment = 1; want true or false"),
    ('name = "x"\n[grid]\nseed = []\n', "grid.seed = []; want a non-empty list of values"),
    ('name = "x"\n[grid]\nseed = [1, "two"]\n', "grid.seed: seed = 'two'; want int"),
    ('name = "x"\nbase = "nope"\n', "base = 'nope'; want a built-in study: model"),
    ('name = "lr"\n', "name 'lr' is a built-in study"),
    ('description = "no name"\n', "name = None; want the study's name"),
    ('name = "x"\n[grid]\nlr = [0.1, -1.0]\n', "the run with lr = -1.0: lr must be > 0, got -1.0"),
    ('name = "x"\n[spec\n', "not valid TOML"),
])
def test_bad_files_name_the_file_the_key_and_what_is_accepted(tmp_path, body, message):
    path = _write(tmp_path, body)
    with pytest.raises(DataError) as err:
        get_study(str(path))
    assert str(err.value).startswith(str(path)) and message in str(err.value)


def test_a_stores_studies_folder_is_listed_beside_the_built_ins(tmp_path):
    home = tmp_path / "st"
    (home / "studies").mkdir(parents=True)
    shutil.copy(EXAMPLES / "tiny-seeds.toml", home / "studies")
    _write(home / "studies", 'name = "x"\n[spec]\nlrr = 1\n', "broken.toml")
    studies, problems = available(home)
    assert "tiny-seeds" in studies and "lr" in studies
    assert len(problems) == 1 and "broken.toml: spec.lrr" in problems[0]
    assert get_study("tiny-seeds", home).specs() == studies["tiny-seeds"].specs()
    with pytest.raises(ValueError, match="or a file in"):
        get_study("tiny-seed", home)
    r = CliRunner().invoke(main, ["list", "--no-params", "--store", str(home)])
    assert r.exit_code == 0, r.output
    assert "tiny-seeds" in r.output and "not listed:" in r.output and "broken.toml" in r.output
    r = CliRunner().invoke(main, ["train", "--study", str(home / "studies" / "broken.toml"), "--store", str(home)])
    assert r.exit_code == 2 and "spec.lrr: not a run setting" in r.output


@pytest.mark.slow
def test_a_study_file_trains_its_grid_and_results_find_it(tmp_path, tiny_mnist):
    path = _write(tmp_path, 'name = "nn-lr"\n[spec]\nmodel = "nn"\nepochs = 1\nlimit = 128\n[grid]\nlr = [0.01, 0.05]\n')
    st = str(tmp_path / "st")
    r = CliRunner().invoke(main, ["train", "--study", str(path), "--mnist", str(tiny_mnist), "--store", st])
    assert r.exit_code == 0, r.output
    assert "2 run(s), 0 finished before" in r.output
    r = CliRunner().invoke(main, ["results", "--study", str(path), "--mnist", str(tiny_mnist), "--store", st,
                                  "--format", "csv"])
    lines = r.stdout.strip().splitlines()
    assert r.exit_code == 0 and len(lines) == 3 and all(",finished," in line for line in lines[1:])
    assert all("nn-lr" in line for line in lines[1:])  # stored under the file's study name
