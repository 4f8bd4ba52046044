"""`kerashw report`: report.md and PNG figures from a store alone, the stored numbers in
its tables, figures of the promised pixel sizes, and a second report that redraws nothing."""
import json
import numpy as np
import pytest

import cv2
from click.testing import CliRunner

from kerashw.reports import figures
from kerashw.cli import main
from kerashw.store import Store


def _pngs_decode(out, expected):
    for name, (w, h) in expected.items():
        img = cv2.imread(str(out / name))
        assert img is not None, name
        assert (img.shape[1], img.shape[0]) == (w, h), name


def test_report_of_the_lr_study(lr_study_store, tiny_mnist, tmp_path):
    st, trained = lr_study_store
    assert trained.returncode == 0, trained.stdout[-2000:]
    out = tmp_path / "rep"
    # the study's runs as trained: 1 epoch on 128 images (kerashw.membership)
    r = CliRunner().invoke(main, ["report", "--exp", "lr", "-o", str(out), "--store", str(st),
                                  "--mnist", str(tiny_mnist), "--epochs", "1", "--limit", "128"])
    assert r.exit_code == 0, r.output
    md = (out / "report.md").read_text()
    rows = Store(st, readonly=True).runs(study="lr")
    for row in rows:  # the stored final numbers, as the report's table prints them
        test = row.final["test"]
        assert f"| test | {test['loss']:.4f} | {100 * test['top1']:.2f} | {100 * test['top3']:.2f} |" in md
    assert "The factor moves test top-1 by up to" in md and "lr=0.01:" in md
    curves = figures.pixel_size(figures.CURVES_SIZE)
    _pngs_decode(out, {"curves-loss.png": curves, "curves-top1.png": curves})
    for row in rows:
        name = f"mistakes-{row.id[:12]}.png"
        assert f"]({name})" in md and cv2.imread(str(out / name)) is not None
    # nothing changed: no figure is drawn again
    again = CliRunner().invoke(main, ["report", "--exp", "lr", "-o", str(out), "--store", str(st),
                                      "--mnist", str(tiny_mnist), "--epochs", "1", "--limit", "128"])
    assert again.exit_code == 0 and "(0 figure(s) drawn, 5 unchanged" in again.output, again.output


def test_report_of_a_captcha_study(captcha_run, tmp_path):
    store, row, _ = captcha_run
    out = tmp_path / "rep"
    r = CliRunner().invoke(main, ["report", "--exp", "captcha-preprocess", "-o", str(out),
                                  "--store", str(store.home), "--data", row.spec["data"], "--epochs", "1",
                                  "--limit", "64"])
    assert r.exit_code == 0, r.output
    # without the settings it was trained with, the run is not the study's: said, not mixed in
    other = CliRunner().invoke(main, ["report", "--exp", "captcha-preprocess", "-o", str(tmp_path / "x"),
                                      "--store", str(store.home)])
    assert other.exit_code != 0 and "differ in epochs, limit, data" in other.output
    md = (out / "report.md").read_text()
    test = row.final["test"]
    chars = " | ".join(f"{100 * test[f'char_{k}_acc']:.2f}" for k in range(1, 5))
    assert f"| test | {test['loss']:.4f} | {chars} | {100 * test['whole']:.2f} |" in md
    curves = figures.pixel_size(figures.CURVES_SIZE)
    _pngs_decode(out, {"curves-loss.png": curves, "curves-top1.png": curves, "curves-whole.png": curves,
                       f"confusion-{row.id[:12]}.png": figures.pixel_size(figures.CONFUSION_SIZE)})
    gallery = cv2.imread(str(out / f"mistakes-{row.id[:12]}.png"))
    assert gallery.shape[1] == round(3.0 * figures.GALLERY_COLS * figures.DPI)
    assert json.loads((out / "figures.json").read_text()).keys() >= {"curves-loss.png"}


def test_report_needs_finished_runs(tmp_path):
    Store(tmp_path / "st")
    r = CliRunner().invoke(main, ["report", "--exp", "lr", "--store", str(tmp_path / "st"), "-o", str(tmp_path)])
    assert r.exit_code == 1 and "no finished runs of study 'lr'" in r.output
    r = CliRunner().invoke(main, ["report", "--store", str(tmp_path / "st")])
    assert r.exit_code == 2 and "name a study" in r.output


def _finished_row(store, run_id, spec):
    store.claim(run_id)
    store.start_run(run_id, spec["task"] if "task" in spec else "mnist", "nn", spec)
    store.finish_run(run_id, "finished", 1.0, {"val": {"top1": 0.5}, "test": {"top1": 0.5}})


def test_report_refuses_a_run_whose_data_changed_before_making_anything(tmp_path, tiny_mnist):
    """The gallery re-read today's MNIST file and drew digits the run's metrics never counted."""
    from kerashw.config import DataError, RunSpec, TrainOptions
    from kerashw.identity import identify
    from kerashw.store import Store
    from kerashw.reports.writeup import write_report

    spec = identify(RunSpec(epochs=1, limit=64), TrainOptions(mnist=str(tiny_mnist)))
    store = Store(tmp_path / "st")
    _finished_row(store, "r1", spec.to_dict())
    other = tmp_path / "other.npz"
    np.savez(other, **{**dict(np.load(tiny_mnist)), "y_test": np.zeros(100, np.uint8)})
    out = tmp_path / "rep"
    with pytest.raises(DataError, match=rf"run r1 trained on data {spec.data_id}, but {other} now holds mnist-"):
        write_report(store, out, run_ids=["r1"], options=TrainOptions(mnist=str(other)))
    assert not out.exists()  # checked before the folder was made


def test_report_keeps_a_foreign_report_md_and_an_unwritable_folder_is_named(tmp_path, tiny_mnist, monkeypatch):
    from kerashw.config import RunSpec, TrainOptions
    from kerashw.identity import identify
    from kerashw.store import Store
    from kerashw.reports.writeup import write_report

    options = TrainOptions(mnist=str(tiny_mnist))
    store = Store(tmp_path / "st")
    _finished_row(store, "r1", identify(RunSpec(epochs=1, limit=64), options).to_dict())
    out = tmp_path / "notes"
    out.mkdir()
    (out / "report.md").write_text("my own notes")
    with pytest.raises(ValueError, match="report.md exists and is not a kerashw report"):
        write_report(store, out, run_ids=["r1"], options=options)
    assert (out / "report.md").read_text() == "my own notes"
    import os

    monkeypatch.setattr(os, "access", lambda path, mode: False)  # root ignores permission bits
    with pytest.raises(ValueError, match="cannot write there"):
        write_report(store, tmp_path / "ro" / "rep", run_ids=["r1"], options=options)
