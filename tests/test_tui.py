"""The TUI driven with Pilot, over real Keras training on slices of real MNIST."""
import asyncio
import os
import subprocess
import sys
import time

import pytest
from textual.widgets import DataTable, Input, Static

from kerashw import train
from kerashw.config import Overrides, TrainOptions
from kerashw.studies import STUDIES, get_study
from kerashw.store import Store
from tui.app import KerasHWApp
from tui.widgets import ConfirmScreen, MetricsTable, StudyTable

TINY = {"epochs": "1", "limit": "300"}


async def _wait(pilot, condition, timeout=180.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.2)


async def _pick(pilot, app, study, settings):
    app.query_one(StudyTable).move_cursor(row=list(STUDIES).index(study))
    for key, value in settings.items():
        app.query_one(f"#set-{key}", Input).value = value
    await pilot.pause()
    app.query_one(StudyTable).focus()


def _status(app) -> str:
    return str(app.query_one("#run-status", Static).render())


async def test_study_trains_fills_metrics_then_resumes_by_skipping(store, mnist_path):
    app = KerasHWApp(store, mnist=str(mnist_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await _pick(pilot, app, "optimizer", TINY)
        await pilot.press("s")
        assert app.running == "optimizer"
        await _wait(pilot, lambda: app.running is None)
        metrics = app.query_one(MetricsTable)
        assert metrics.row_count == 3  # the last run's epoch: train, val, test
        assert [metrics.get_row_at(i)[1] for i in range(3)] == ["train", "val", "test"]
        rows = store.runs(study="optimizer")
        assert len(rows) == 2 and {r.status for r in rows} == {"finished"}
        assert set(app.last_statuses.values()) == {"finished"}
        assert "done" in _status(app)
        # the studies table now counts them, and a second start reuses them
        table = app.query_one(StudyTable)
        assert table.get_row("optimizer")[2] == "2"
        await pilot.press("s")
        await _wait(pilot, lambda: app.running is None)
        assert set(app.last_statuses.values()) == {"skipped"}


async def test_cancel_stores_interrupted_and_app_stays_responsive(store, mnist_path):
    app = KerasHWApp(store, mnist=str(mnist_path))
    async with app.run_test(size=(80, 24)) as pilot:
        # full MNIST, 5 epochs: long enough to cancel after the first epoch
        await _pick(pilot, app, "model", {"epochs": "5"})
        await pilot.press("s")
        await _wait(pilot, lambda: app.query_one(MetricsTable).row_count >= 1)
        await pilot.press("q")  # a run is active: quitting asks first
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmScreen) and app.running == "model"
        await pilot.press("c")
        await _wait(pilot, lambda: app.running is None, timeout=60)
        nn = get_study("model").specs(Overrides(epochs=5))[0]
        assert store.status(nn.run_id) == "interrupted"
        assert len(store.runs()) == 1  # the study stopped: cnn never started
        assert "cancelled" in _status(app)
        await pilot.press("3")  # still responsive: the results tab lists the run
        runs = app.query_one("#runs", DataTable)
        assert runs.row_count == 1 and "interrupted" in runs.get_row_at(0)


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory, mnist_path):
    store = Store(tmp_path_factory.mktemp("tui") / "runs")
    specs = get_study("lr").specs(Overrides(epochs=1, limit=300))
    train.run_study(specs, store=store, studies=["lr"], options=TrainOptions(mnist=str(mnist_path)))
    return store


async def test_results_compare_deltas_and_export(trained_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the model export goes to ./saved_models
    store = trained_store
    app = KerasHWApp(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        runs = app.query_one("#runs", DataTable)
        assert runs.row_count == 3
        await pilot.press("space", "down", "space", "down", "p", "v")
        compare = app.query_one("#compare", DataTable)
        assert compare.row_count == 3  # the pinned baseline joined the two picked
        headers = [c.label.plain for c in compare.columns.values()]
        test_col, delta_col = headers.index("test top1"), headers.index("Δ test top1")
        rows = [compare.get_row_at(i) for i in range(3)]
        base = next(r for r in rows if r[0].endswith("*"))
        assert base[delta_col] == ""
        for r in rows:
            if r is not base:
                expected = float(r[test_col]) - float(base[test_col])
                assert abs(float(r[delta_col]) - expected) < 0.011
        await pilot.press("e")
        files = sorted((store.home / "comparisons").iterdir())
        assert {f.suffix for f in files} == {".csv", ".md"}
        assert "Δ test top1" in files[0].read_text()
        # sorting by a header puts the best test accuracy first when reversed
        app.query_one("ResultsView").sort_column = None
        await pilot.press(*["o"] * (list(c.value for c in runs.columns).index("test")))
        values = [float(runs.get_row_at(i)[list(c.value for c in runs.columns).index("test")])
                  for i in range(3)]
        assert values == sorted(values, reverse=True)
        # x exports the highlighted run as a SavedModel, off the UI thread
        await pilot.press("x")
        await app.workers.wait_for_complete()
        exported = list((tmp_path / "saved_models").iterdir())
        assert len(exported) == 1
        assert (exported[0] / "saved_model.pb").exists() and (exported[0] / "kerashw.json").exists()


async def test_bad_settings_and_bad_data_show_errors(store, tmp_path):
    bad = tmp_path / "mnist.npz"
    bad.write_bytes(b"not a zip")
    app = KerasHWApp(store, mnist=str(bad))
    async with app.run_test(size=(80, 24)) as pilot:
        await _pick(pilot, app, "captcha-preprocess", {"data": str(tmp_path / "missing")})
        assert "is not a folder" in str(app.query_one("#settings-error", Static).render())
        await pilot.press("s")
        assert app.running is None  # refused, and said why
        await _pick(pilot, app, "optimizer", {"data": "", **TINY})
        await pilot.press("s")
        await _wait(pilot, lambda: app.running is None, timeout=60)
        assert "mnist.npz" in _status(app)  # the error names the file
        assert app.is_running


async def test_tui_and_cli_write_one_store_at_once(store, mnist_path):
    env = {**os.environ, "KERASHW_MNIST": str(mnist_path)}
    cli = subprocess.Popen(
        [sys.executable, "-m", "kerashw.cli", "train", "--exp", "lr", "--epochs", "2",
         "--limit", "2000", "--store", str(store.home)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    app = KerasHWApp(store, mnist=str(mnist_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await _pick(pilot, app, "optimizer", {"epochs": "2", "limit": "2000"})
        await pilot.press("s")
        await _wait(pilot, lambda: app.running is None)
        out, _ = await asyncio.to_thread(cli.communicate, timeout=300)
    assert cli.returncode == 0, out
    rows = store.runs()
    assert len(rows) == 4  # lr's 3 + optimizer's sgd; both studies share the baseline run
    assert {r.status for r in rows} == {"finished"}
    assert all(len(store.epochs(r.id)) == 2 * 3 for r in rows)  # 2 epochs x 3 phases, no doubles


async def test_captcha_study_on_a_data_folder(store, synth_folder, tmp_path):
    """Preprocessing runs in a spawn pool from the worker thread, under Textual's
    captured stderr; metrics show per character."""
    import shutil

    # fresh mtimes: a new fingerprint, so the preprocessing cache cannot answer
    synth_folder = shutil.copytree(synth_folder, tmp_path / "captchas", copy_function=shutil.copyfile)
    app = KerasHWApp(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await _pick(pilot, app, "captcha-preprocess", {"epochs": "1", "data": str(synth_folder)})
        await pilot.press("s")
        await _wait(pilot, lambda: app.running is None, timeout=300)
        assert set(app.last_statuses.values()) == {"finished"}, _status(app)
        metrics = app.query_one(MetricsTable)
        headers = [c.label.plain for c in metrics.columns.values()]
        assert headers == ["ep", "phase", "loss", "c1", "c2", "c3", "c4", "whole"]
        assert metrics.row_count == 3
        rows = store.runs(study="captcha-preprocess")
        assert len(rows) == 3 and {r.spec["data"] for r in rows} == {str(synth_folder)}


async def test_quit_during_a_run_stores_it_interrupted(store, mnist_path):
    app = KerasHWApp(store, mnist=str(mnist_path))
    nn = get_study("model").specs(Overrides(epochs=5))[0]
    async with app.run_test(size=(80, 24)) as pilot:
        await _pick(pilot, app, "model", {"epochs": "5"})
        await pilot.press("s")
        await _wait(pilot, lambda: app.query_one(MetricsTable).row_count >= 1)
        await pilot.press("q", "y")
        await pilot.pause()
    assert app.return_code == 0
    deadline = time.monotonic() + 60
    while store.status(nn.run_id) == "running" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)  # the training thread stops at its next step
    assert store.status(nn.run_id) == "interrupted"
