"""The TUI driven with Pilot. Most tests inject a scripted trainer (train.run_study's
signature, real store writes, listener calls as train.run makes them, no TensorFlow),
so they are deterministic and take seconds; one smoke test trains for real."""
import asyncio
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import pytest
from textual.widgets import Input

from kerashw.config import DataError, Overrides, RunSpec, TrainOptions
from kerashw.listener import Listener
from kerashw.identity import identify_for_display
from kerashw.record import PhaseRecord
from kerashw.studies import STUDIES, get_study
from kerashw.store import Store
from tui.app import KerasHWApp
from tui.confirm import ConfirmScreen

TINY = {"epochs": "1", "limit": "300"}


@dataclass
class Result:  # what the app reads of train.RunResult
    run_id: str
    status: str
    elapsed: float = 0.0
    error: str | None = None


class ScriptedTrainer:
    """Stands in for kerashw.training.train.run_study. Each run: start in the store, `epochs`
    epochs of 4 steps with train/val/test records (made-up numbers), finish. With
    `wait_for_cancel`, it holds after the first epoch until the app cancels."""

    def __init__(self, wait_for_cancel=False, fail_with: Exception | None = None):
        self.wait_for_cancel = wait_for_cancel
        self.fail_with = fail_with
        self.calls = []
        self.holding = threading.Event()

    def __call__(self, specs, *, store, studies, listener, cancel, options):
        self.calls.append((list(specs), studies, options))
        if self.fail_with:
            raise self.fail_with
        specs = identify_for_display(specs, options)  # ids as the app shows them
        results = []
        for i, spec in enumerate(specs, start=1):
            if store.status(spec.run_id) == "finished":
                listener.run_skipped(spec, i, len(specs), "finished")
                results.append(Result(spec.run_id, "skipped"))
                continue
            store.claim(spec.run_id)
            store.start_run(spec.run_id, spec.task, spec.label(), spec.to_dict(), studies, (10, 10), {})
            listener.run_started(spec, i, len(specs), (10, 10))
            status = "finished"
            for epoch in range(1, spec.epochs + 1):
                listener.epoch_started(epoch, spec.epochs, 4)
                for step in range(1, 5):
                    listener.step(step, 4)
                for phase, acc in (("train", 0.5), ("val", 0.4), ("test", 0.45)):
                    record = PhaseRecord(epoch, spec.epochs, phase, 100, 0.1,
                                         {"loss": 1.0 / epoch, "top1": acc + epoch / 100, "top3": 0.9})
                    store.log_epoch(spec.run_id, record)
                    listener.phase_ended(record)
                if self.wait_for_cancel:
                    self.holding.set()
                    cancel.wait(30)
                if cancel.is_set():
                    status = "interrupted"
                    break
            store.finish_run(spec.run_id, status, 1.0, {}, {}, None)
            results.append(Result(spec.run_id, status, 1.0))
            listener.run_ended(results[-1])
            if status == "interrupted":
                break
        return results


async def _wait(pilot, condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.05)


async def _pick(pilot, app, study, settings):
    app.studies.select(study)
    for key, value in settings.items():
        app.studies.settings.inputs[key].value = value
    await pilot.pause()
    app.studies.table.focus()


async def _start_model_study_and_hold(pilot, app):
    """Start the `model` study (5 epochs) and wait until its trainer holds after epoch 1."""
    await _pick(pilot, app, "model", {"epochs": "5"})
    await pilot.press("s")
    await _wait(pilot, app.run_study.holding.is_set)


def _status(app) -> str:
    return str(app.train_pane.status.render())


async def test_a_study_fills_metrics_and_the_store_then_a_second_start_skips(store, tiny_mnist):
    trainer = ScriptedTrainer()
    # an MNIST file the runs are identified by (without one the done column says "?")
    app = KerasHWApp(store, TrainOptions(mnist=str(tiny_mnist)), run_study=trainer)
    async with app.run_test(size=(80, 24)) as pilot:
        await _pick(pilot, app, "optimizer", {"epochs": "2", "seed": "3"})
        await pilot.press("s")
        await _wait(pilot, lambda: app.running is None and trainer.calls)
        specs, studies, _ = trainer.calls[0]
        assert studies == ["optimizer"] and {s.epochs for s in specs} == {2} and {s.seed for s in specs} == {3}
        metrics = app.train_pane.metrics
        assert metrics.row_count == 6  # the last run's 2 epochs x train, val, test
        assert [metrics.get_row_at(i)[1] for i in range(3)] == ["train", "val", "test"]
        assert metrics.get_row_at(5)[0] == "2/2" and metrics.get_row_at(5)[3] == "47.00"
        assert {r.status for r in store.runs(study="optimizer")} == {"finished"}
        assert "2 finished" in _status(app)
        assert app.studies.table.get_row("optimizer")[2] == "2"  # done column counts them
        assert "✓" in str(app.studies.detail.render())
        await pilot.press("3")
        assert app.results.table.row_count == 2
        await pilot.press("1", "s")
        await _wait(pilot, lambda: app.running is None)
        assert set(app.last_statuses.values()) == {"skipped"}


async def test_cancel_stores_interrupted_and_the_study_stops(store):
    app = KerasHWApp(store, run_study=ScriptedTrainer(wait_for_cancel=True))
    async with app.run_test(size=(80, 24)) as pilot:
        await _start_model_study_and_hold(pilot, app)
        await pilot.press("q")  # a study is training: quitting asks first
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmScreen) and app.running == "model"
        await pilot.press("c")
        await _wait(pilot, lambda: app.running is None)
        nn = identify_for_display(get_study("model").specs(Overrides(epochs=5)))[0]
        assert store.status(nn.run_id) == "interrupted"
        assert len(store.runs()) == 1  # cnn never started
        assert "cancelled" in _status(app)
        await pilot.press("3")
        assert app.results.table.row_count == 1 and "interrupted" in app.results.table.get_row_at(0)


async def test_quit_during_a_study_cancels_it(store):
    app = KerasHWApp(store, run_study=ScriptedTrainer(wait_for_cancel=True))
    async with app.run_test(size=(80, 24)) as pilot:
        await _start_model_study_and_hold(pilot, app)
        await pilot.press("q", "y")
        await pilot.pause()
    assert app.return_code == 0
    nn = identify_for_display(get_study("model").specs(Overrides(epochs=5)))[0]
    deadline = time.monotonic() + 10
    while store.status(nn.run_id) == "running" and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert store.status(nn.run_id) == "interrupted"


@pytest.mark.slow
async def test_bad_settings_are_refused_and_training_errors_shown(store, tmp_path):
    trainer = ScriptedTrainer(fail_with=DataError(f"{tmp_path}/mnist.npz: not a readable .npz file"))
    app = KerasHWApp(store, run_study=trainer)
    async with app.run_test(size=(80, 24)) as pilot:
        await _pick(pilot, app, "captcha-preprocess", {"data": str(tmp_path / "missing")})
        assert "is not a folder" in str(app.studies.settings.error.render())
        await pilot.press("s")
        assert app.running is None and trainer.calls == []  # refused, and said why
        await _pick(pilot, app, "optimizer", {"data": "", "epochs": "ten"})
        assert "whole number" in str(app.studies.settings.error.render())
        await _pick(pilot, app, "optimizer", {"epochs": "1"})
        await pilot.press("s")
        await _wait(pilot, lambda: app.running is None)
        assert "mnist.npz" in _status(app) and "data error" in _status(app)
        assert app.is_running


async def test_the_app_passes_its_options_to_the_trainer(store):
    trainer = ScriptedTrainer()
    app = KerasHWApp(store, TrainOptions(mnist="/data/mnist.npz"), run_study=trainer, skip_bad=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await _pick(pilot, app, "lr", {"epochs": "1"})
        await pilot.press("s")
        await _wait(pilot, lambda: app.running is None)
    specs, _, options = trainer.calls[0]
    assert options.mnist == "/data/mnist.npz" and callable(options.progress)
    assert options.distribute is None  # one device unless the Devices setting says otherwise
    assert not any(s.skip_bad for s in specs)  # MNIST runs drop the captcha-only field
    app = KerasHWApp(store, run_study=trainer, skip_bad=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await _pick(pilot, app, "captcha-preprocess", {"epochs": "1"})
        await pilot.press("s")
        await _wait(pilot, lambda: app.running is None and len(trainer.calls) == 2)
    assert all(s.skip_bad for s in trainer.calls[1][0])


async def test_devices_setting_reaches_the_trainer_as_distribute(store):
    trainer = ScriptedTrainer()
    app = KerasHWApp(store, run_study=trainer)
    async with app.run_test(size=(80, 24)) as pilot:
        await _pick(pilot, app, "lr", {"epochs": "1"})
        app.studies.settings.devices.value = "mirrored"
        await pilot.press("s")
        await _wait(pilot, lambda: app.running is None)
    assert trainer.calls[0][2].distribute == "mirrored"


async def test_captcha_preprocessing_pool_runs_under_textual(store, synth_folder, tmp_path):
    """The preprocessing pool is spawned from the worker thread under Textual's
    stand-in stderr (fileno -1 once broke it); progress reaches the Train pane."""
    import shutil

    from kerashw.captcha.cache import captcha_splits

    # fresh mtimes: a new fingerprint, so the preprocessing cache cannot answer
    folder = shutil.copytree(synth_folder, tmp_path / "captchas", copy_function=shutil.copyfile)
    seen = []

    def preprocess_then_script(specs, *, options, **kwargs):
        splits, _ = captcha_splits(str(folder), "denoise", 0, progress=options.progress)
        seen.append(sum(len(s) for s in splits.values()))
        return ScriptedTrainer()(specs[:1], options=options, **kwargs)

    app = KerasHWApp(store, run_study=preprocess_then_script)
    async with app.run_test(size=(80, 24)) as pilot:
        await _pick(pilot, app, "captcha-preprocess", {"epochs": "1", "data": str(folder)})
        await pilot.press("s")
        await _wait(pilot, lambda: app.running is None, timeout=120)
        assert seen == [160], _status(app)
        headers = [c.label.plain for c in app.train_pane.metrics.columns.values()]
        assert headers == ["ep", "phase", "loss", "c1", "c2", "c3", "c4", "whole"]


# -- real training --------------------------------------------------------------


@pytest.mark.slow
async def test_smoke_real_training_of_a_study(store, mnist_path):
    app = KerasHWApp(store, TrainOptions(mnist=str(mnist_path)))  # the real trainer
    async with app.run_test(size=(80, 24)) as pilot:
        await _pick(pilot, app, "optimizer", TINY)
        await pilot.press("s")
        await _wait(pilot, lambda: app.running is None, timeout=180)
        assert set(app.last_statuses.values()) == {"finished"}, _status(app)
        metrics = app.train_pane.metrics
        assert [metrics.get_row_at(i)[1] for i in range(3)] == ["train", "val", "test"]
        rows = store.runs(study="optimizer")
        assert len(rows) == 2 and all(len(store.epochs(r.id)) == 3 for r in rows)


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory, tiny_mnist):
    from kerashw.training import train

    store = Store(tmp_path_factory.mktemp("tui") / "runs")
    specs = get_study("lr").specs(Overrides(epochs=1, limit=300))
    train.run_study(specs, store=store, studies=["lr"], options=TrainOptions(mnist=str(tiny_mnist)))
    return store


@pytest.mark.slow
async def test_results_compare_deltas_and_export(trained_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the model export goes to ./saved_models
    store = trained_store
    app = KerasHWApp(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        runs = app.results.table
        assert runs.row_count == 3
        await pilot.press("space", "down", "space", "down", "p", "v")
        compare = app.results.compare_table
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
        app.results.sort_column = None
        column = list(c.value for c in runs.columns).index("test")
        await pilot.press(*["o"] * column)
        values = [float(runs.get_row_at(i)[column]) for i in range(3)]
        assert values == sorted(values, reverse=True)
        # x exports the highlighted run as a SavedModel, off the UI thread
        await pilot.press("x")
        await app.workers.wait_for_complete()
        exported = list((tmp_path / "saved_models").iterdir())
        assert len(exported) == 1
        assert (exported[0] / "saved_model.pb").exists() and (exported[0] / "kerashw.json").exists()


@pytest.mark.slow
async def test_tui_and_cli_write_one_store_at_once(store, tiny_mnist):
    env = {**os.environ, "KERASHW_MNIST": str(tiny_mnist)}
    cli = subprocess.Popen(
        [sys.executable, "-m", "kerashw.cli", "train", "--exp", "optimizer", "--epochs", "1",
         "--limit", "300", "--store", str(store.home)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    app = KerasHWApp(store, run_study=ScriptedTrainer())
    async with app.run_test(size=(80, 24)) as pilot:
        await _pick(pilot, app, "batch", {"epochs": "3", "limit": "300"})
        await pilot.press("s")
        await _wait(pilot, lambda: app.running is None)
        out, _ = await asyncio.to_thread(cli.communicate, timeout=300)
    assert cli.returncode == 0, out
    rows = store.runs()
    assert len(rows) == 2 + 3  # optimizer's 2 (CLI, 1 epoch) and batch's 3 (TUI, 3 epochs)
    assert {r.status for r in rows} == {"finished"}
    assert sorted(len(store.epochs(r.id)) for r in rows) == [3] * 2 + [9] * 3  # no doubles, none lost


# Another process that writes a run into the store as `kerashw train` does (claim, start, one
# phase record at a time, finish), without TensorFlow: the follow test is about following.
SCRIPTED_WRITER = """
import sys, time
from kerashw.record import PhaseRecord
from kerashw.store import Store
store = Store(sys.argv[1])
store.claim("other0000001")
store.start_run("other0000001", "mnist", "model=cnn", {"epochs": 6, "model": "cnn"}, [], (10, 10), {})
print("started", flush=True)
sys.stdin.readline()  # until the test has followed it
for epoch in range(1, 7):
    for phase in ("train", "val", "test"):
        store.log_epoch("other0000001", PhaseRecord(epoch, 6, phase, 100, 0.1, {"loss": 1.0 / epoch, "top1": 0.5, "top3": 0.9}))
        time.sleep(0.05)
store.finish_run("other0000001", "finished", 1.0, {}, {}, None)
"""


async def test_train_tab_follows_a_run_another_process_trains(store, monkeypatch):
    """Another process writes a run; the Results tab sees it running, `f` follows it, and
    its epochs appear in the Train tab one by one as that process stores them."""
    from tui.results_pane import ResultsView
    from tui.train_pane import TrainPane

    monkeypatch.setattr(TrainPane, "FOLLOW_POLL", 0.1)
    monkeypatch.setattr(ResultsView, "POLL", 0.2)
    writer = subprocess.Popen([sys.executable, "-c", SCRIPTED_WRITER, str(store.home)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert writer.stdout.readline().strip() == "started"
    app = KerasHWApp(store, run_study=ScriptedTrainer())
    seen = []
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        await _wait(pilot, lambda: any(r.status == "running" for r in app.results.rows.values()), timeout=30)
        await pilot.press("f")
        pane = app.train_pane
        assert pane.followed is not None
        assert "trained elsewhere" in str(pane.status.render()) and "cannot be cancelled" in str(pane.status.render())
        await pilot.press("c")  # says it cannot; the other process goes on
        await pilot.pause()
        writer.stdin.write("go\n")
        writer.stdin.flush()
        while pane.followed is not None:
            seen.append(pane.metrics.row_count)
            await pilot.pause(0.02)
            assert writer.poll() is None or len(seen) < 5_000
        final_status = str(pane.status.render())
        out, _ = await asyncio.to_thread(writer.communicate, timeout=60)
    assert writer.returncode == 0, out
    assert "finished (trained elsewhere)" in final_status
    assert pane.metrics.row_count == 18  # 6 epochs x train/val/test, as the other process stored them
    steps = sorted(set(seen))
    assert len([n for n in steps if 0 < n < 18]) >= 2, steps  # they arrived as stored, not at the end
    shown = [(pane.metrics.get_row_at(i)[0], pane.metrics.get_row_at(i)[1]) for i in range(18)]
    assert shown == [(f"{e}/6", p) for e in range(1, 7) for p in ("train", "val", "test")]


class Events(Listener):
    """The calls a trainer makes on its listener, as (event, the arguments that matter)."""

    def __init__(self):
        self.seen = []

    def run_started(self, spec, index, total, params):
        self.seen.append(("run_started", index, total))

    def epoch_started(self, epoch, epochs, steps):
        self.seen.append(("epoch_started", epoch, epochs, steps))

    def step(self, step, steps):
        self.seen.append(("step", step, steps))

    def phase_ended(self, record):
        self.seen.append(("phase_ended", type(record).__name__, record.epoch, record.epochs, record.phase))

    def run_ended(self, result):
        self.seen.append(("run_ended", result.status))


@pytest.mark.slow
def test_the_scripted_trainer_speaks_as_the_real_one(tmp_path, tiny_mnist):
    """The contract the TUI tests stand on: ScriptedTrainer calls the listener in the order
    and with the arguments kerashw.training.train.run_study does (one epoch of 4 steps)."""
    from kerashw.store import Store
    from kerashw.training import train

    spec = [RunSpec(epochs=1, limit=256, batch_size=64)]  # 4 steps, one step per call
    options = TrainOptions(mnist=str(tiny_mnist))
    real, scripted = Events(), Events()
    train.run_study(spec, store=Store(tmp_path / "real"), listener=real, options=options)
    ScriptedTrainer()(spec, store=Store(tmp_path / "scripted"), studies=[], listener=scripted,
                      cancel=threading.Event(), options=options)
    assert scripted.seen == real.seen
    assert real.seen[0] == ("run_started", 1, 1) and real.seen[-1] == ("run_ended", "finished")


async def test_images_of_a_finished_captcha_run(captcha_run, monkeypatch):
    """`i` on a finished run: its misclassified test captchas and the preprocessing
    preview, drawn into its folder and shown (textual-image; half-blocks under Pilot)."""
    from textual_image.widget import Image

    from tui.images import ImagesScreen

    store, row, _ = captcha_run
    app = KerasHWApp(Store(store.home), run_study=ScriptedTrainer())
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("3")
        await _wait(pilot, lambda: row.id in app.results.rows)
        app.results.table.move_cursor(row=app.results.table.get_row_index(row.id))
        await pilot.press("i")
        await _wait(pilot, lambda: isinstance(app.screen, ImagesScreen) and len(app.screen.query(Image)) == 2,
                    timeout=120)
        captions = [str(c.render()) for c in app.screen.query(".image-caption")]
        assert any(str(store.run_dir(row.id) / "mistakes.png") in c for c in captions)  # where the PNG is
        opened = []
        monkeypatch.setattr("subprocess.Popen", lambda cmd, **kw: opened.append(cmd))
        monkeypatch.setattr("tui.images.viewer_command", lambda path: ["viewer", str(path)])
        await pilot.press("o")
        assert opened == [["viewer", str(store.run_dir(row.id) / "mistakes.png")]]
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ImagesScreen)
    run_dir = store.run_dir(row.id)
    for name in ("mistakes.png", "preview.png"):
        assert (run_dir / name).stat().st_size > 1000


def test_kerashw_tui_and_the_tui_subcommand_share_options():
    from click.testing import CliRunner

    from kerashw.cli import main

    help_text = CliRunner().invoke(main, ["tui", "--help"]).output
    assert "--store" in help_text and "--mnist" in help_text and "--skip-bad" in help_text
    out = subprocess.run([sys.executable, "-c", "from kerashw.cli import tui_main; tui_main(['--help'])"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "--store" in out.stdout and "kerashw-tui" in out.stdout


def test_studies_table_lists_every_study(store):
    async def run():
        app = KerasHWApp(store, run_study=ScriptedTrainer())
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            return [app.studies.table.get_row_at(i)[0] for i in range(app.studies.table.row_count)]

    assert asyncio.run(run()) == list(STUDIES)


def test_settings_inputs_are_typed():
    from tui.studies_pane import SettingsForm

    form = SettingsForm()
    assert isinstance(form.inputs["epochs"], Input) and form.inputs["data"].type == "text"


def test_the_curves_range_follows_the_data():
    from tui.train_pane import y_range

    lo, hi = y_range([95.0, 99.9, 97.2], percent=True)
    assert 93 < lo < 95 and 99.9 < hi <= 100  # not 0-100: a 95-99.9 curve would lie flat at the top
    assert y_range([98.0], percent=True) == (97.0, 99.0)  # one epoch: a point in the middle
    assert y_range([], percent=True) == (0.0, 100.0)
    lo, hi = y_range([0.5, 0.2], percent=False)
    assert lo < 0.2 and hi > 0.5 and lo >= 0


def test_results_columns_drop_the_least_looked_at_first_to_fit():
    from tui.results_pane import fit_columns

    headers = ["run", "status", "model", "train", "val", "test", "top3", "best ep", "best val", "params", "sec",
               "studies"]
    cells = [["1446602e", "finished", "nn", "96.10", "95.90", "96.00", "99.10", "10", "95.90", "235,146", "31.2",
              "activation,all,batch,lr,model,optimizer"]]
    assert fit_columns(headers, cells, 0) == list(range(12))  # not laid out yet: all
    assert fit_columns(headers, cells, 400) == list(range(12))
    kept = [headers[i] for i in fit_columns(headers, cells, 80)]
    assert kept[:3] == ["run", "status", "model"] and "test" in kept and "studies" not in kept
    assert [headers[i] for i in fit_columns(headers, cells, 20)][:2] == ["run", "status"]  # never dropped
