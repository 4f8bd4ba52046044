"""One answer to "which runs are this study's", for results, report, list and the TUI."""
import dataclasses
import json

from click.testing import CliRunner

from kerashw.cli import main
from kerashw.config import Overrides, TrainOptions
from kerashw.identity import identify
from kerashw.membership import describe_differing, members, settings
from kerashw.studies import get_study


def _store_finished(store, spec, studies, top1=0.5):
    """A finished run as training stores it (rows only: what is selected is under test)."""
    final = {p: {"top1": top1, "loss": 1.0, "samples": 10} for p in ("train", "val", "test")}
    store.start_run(spec.run_id, spec.task, spec.label(), spec.to_dict(), studies, (10, 10), {})
    store.finish_run(spec.run_id, "finished", 1.0, final, {"epoch": 1, **final})


def test_a_studys_runs_are_its_specs_with_the_named_settings(store, synth_folder):
    study = get_study("captcha-models")
    ov = Overrides(data=str(synth_folder), epochs=1)
    own = [identify(s) for s in study.specs(ov)]
    for s in own[:2]:
        _store_finished(store, s, ["captcha-models"])
    other = identify(dataclasses.replace(own[0], limit=300))  # a --limit 300 try of the same study
    _store_finished(store, other, ["captcha-models"])
    m = members(store, study, ov)
    assert [r.id for r in m.runs] == [s.run_id for s in own[:2]] and m.missing == 2
    assert [r.id for r in m.differing] == [other.run_id]
    assert "1 other run(s) trained as 'captcha-models' differ in limit" in describe_differing(m, study.name)
    shared, varying = settings(m.runs)
    assert varying == ["model"] and shared["epochs"] == 1 and shared["data"] == str(synth_folder.resolve())
    # without the settings they were trained with, none of them is the study's default runs
    plain = members(store, study, None, TrainOptions())
    assert plain.runs == [] and len(plain.differing) == 3


def test_results_and_report_leave_differing_runs_out_unless_asked(store, synth_folder):
    study = get_study("captcha-models")
    ov = Overrides(data=str(synth_folder), epochs=1)
    own = [identify(s) for s in study.specs(ov)][:2]
    for s in own:
        _store_finished(store, s, ["captcha-models"])
    other = identify(dataclasses.replace(own[0], limit=300))
    _store_finished(store, other, ["captcha-models"])
    base = ["results", "--study", "captcha-models", "--store", str(store.home), "--format", "json"]
    r = CliRunner().invoke(main, [*base, "--data", str(synth_folder), "--epochs", "1"])
    assert r.exit_code == 0, r.output
    assert sorted(row["id"] for row in json.loads(r.stdout)) == sorted(s.run_id for s in own)
    assert "differ in limit" in r.stderr and "--include-differing" in r.stderr
    r = CliRunner().invoke(main, [*base, "--data", str(synth_folder), "--epochs", "1", "--include-differing",
                                  "--format", "csv"])
    assert r.exit_code == 0 and len(r.stdout.strip().splitlines()) == 4 and "limit" in r.stdout.splitlines()[0]
    r = CliRunner().invoke(main, ["report", "--study", "captcha-models", "--store", str(store.home)])
    assert r.exit_code != 0 and "no finished runs of study 'captcha-models'" in r.output
    assert "differ in epochs, limit, data" in r.output and "--include-differing" in r.output
