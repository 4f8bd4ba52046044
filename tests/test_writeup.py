"""`kerashw report`: report.md and PNG figures from a store alone, the stored numbers in
its tables, figures of the promised pixel sizes, and a second report that redraws nothing."""
import json

import cv2
from click.testing import CliRunner

from kerashw import figures
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
    r = CliRunner().invoke(main, ["report", "--exp", "lr", "-o", str(out), "--store", str(st),
                                  "--mnist", str(tiny_mnist)])
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
                                      "--mnist", str(tiny_mnist)])
    assert again.exit_code == 0 and "(0 figure(s) drawn, 5 unchanged" in again.output, again.output


def test_report_of_a_captcha_study(captcha_run, tmp_path):
    store, row, _ = captcha_run
    out = tmp_path / "rep"
    r = CliRunner().invoke(main, ["report", "--exp", "captcha-preprocess", "-o", str(out),
                                  "--store", str(store.home)])
    assert r.exit_code == 0, r.output
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
