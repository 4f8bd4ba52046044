"""What kerashw promises under bad input, interruption and a second writer
(docs/reliability.md). Each test here failed before these promises were kept."""
import dataclasses
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from kerashw.training import train
from kerashw.cli import main
from kerashw.config import DataError, RunSpec, TrainOptions
from kerashw.identity import identify
from kerashw.listener import Listener
from kerashw.store import Store, StoreError


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "kerashw.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}, timeout=300)


def _captcha_folder(src, dst):
    return shutil.copytree(src, dst, copy_function=shutil.copyfile)


# -- 1. identity: the data's content, not its path -------------------------------------


def test_edited_labels_are_a_new_run_not_a_reuse(tmp_path, captcha_run):
    """The shared fixture trained on a folder; the same command on a copy of the images
    reuses that run; with one label of labels.csv edited it trains a new run, not
    "already finished, reusing it". (In this process: the store, not the process, carries
    what a later `kerashw train` sees; the two-writer tests use separate processes.)"""
    store, row, _ = captcha_run
    store_dir = shutil.copytree(store.home, tmp_path / "st")
    folder = tmp_path / "caps"
    shutil.copytree(row.spec["data"], folder, copy_function=shutil.copyfile)
    args = ["train", "--model", "resnet18_mod", "--preprocess", "denoise", "--data", str(folder),
            "--epochs", "1", "--limit", "64", "--store", str(store_dir)]
    same = CliRunner().invoke(main, args)  # the same images elsewhere: the finished run is reused
    assert same.exit_code == 0 and "already finished, reusing it" in same.output, same.output
    labels = (folder / "labels.csv").read_text().splitlines()
    name, label = labels[1].split(",")
    labels[1] = f"{name},{label[::-1]}"  # one image gets another label
    (folder / "labels.csv").write_text("\n".join(labels) + "\n")
    edited = CliRunner().invoke(main, args)
    assert edited.exit_code == 0, edited.output
    assert "reusing it" not in edited.output
    rows = Store(store_dir).runs()
    assert len(rows) == 2 and {r.status for r in rows} == {"finished"}
    assert rows[0].spec["data_id"] != rows[1].spec["data_id"]


def test_same_data_anywhere_is_the_same_run_and_paths_are_normalised(tmp_path, synth_folder, monkeypatch):
    spec = RunSpec(task="captcha", model="resnet18_mod", preprocess="original", data=str(synth_folder))
    ids = {identify(spec).run_id}
    monkeypatch.chdir(synth_folder.parent)
    for spelling in (synth_folder.name, synth_folder.name + "/", f"./{synth_folder.name}//"):
        ids.add(identify(RunSpec(task="captcha", model="resnet18_mod", data=spelling)).run_id)
    copy = _captcha_folder(synth_folder, tmp_path / "elsewhere")
    ids.add(identify(RunSpec(task="captcha", model="resnet18_mod", data=str(copy))).run_id)
    assert len(ids) == 1  # relative, trailing slash, another place with the same bytes
    (copy / next(copy.glob("*.png")).name).write_bytes(b"\x89PNG other bytes")
    assert identify(RunSpec(task="captcha", model="resnet18_mod", data=str(copy))).run_id not in ids


def test_another_mnist_file_is_another_run_and_a_bad_one_is_checked_first(tmp_path):
    from conftest import tiny_mnist_arrays

    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez(a, **tiny_mnist_arrays(seed=0))
    np.savez(b, **tiny_mnist_arrays(seed=1))
    ida = identify(RunSpec(), TrainOptions(mnist=str(a))).run_id
    assert ida == identify(RunSpec(), TrainOptions(mnist=str(a))).run_id
    assert ida != identify(RunSpec(), TrainOptions(mnist=str(b))).run_id
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(DataError, match="bad.npz"):
        identify(RunSpec(), TrainOptions(mnist=str(bad)))


def test_split_and_skip_bad_are_part_of_the_id():
    base = RunSpec(task="captcha", model="resnet18_mod", data="/x")
    ids = {base.run_id, RunSpec(task="captcha", model="resnet18_mod", data="/x", split=(10, 2, 2)).run_id,
           RunSpec(task="captcha", model="resnet18_mod", data="/x", skip_bad=True).run_id}
    assert len(ids) == 3


# -- 2. ownership: no finished run wiped, none left "running" ----------------------------


@pytest.mark.slow
def test_two_trainers_on_one_store_train_each_run_once(tmp_path, tiny_mnist):
    store_dir = tmp_path / "st"
    cmd = [sys.executable, "-m", "kerashw.cli", "train", "--exp", "optimizer", "--epochs", "1",
           "--limit", "256", "--store", str(store_dir)]
    env = {**os.environ, "KERASHW_MNIST": str(tiny_mnist), "TF_CPP_MIN_LOG_LEVEL": "3"}
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    rows = Store(store_dir).runs()
    assert len(rows) == 2 and {r.status for r in rows} == {"finished"}
    assert all(len(Store(store_dir).epochs(r.id)) == 3 for r in rows)  # nothing wiped
    import re

    trained = sum(len(re.findall(r"^finished [0-9a-f]{12} in", o, re.M)) for o in outs)
    assert trained == 2, outs  # the other process skipped or reused, never trained a run twice


class CancelAfterFirstEpoch(Listener):
    def __init__(self, cancel):
        self.cancel = cancel

    def phase_ended(self, record):
        if record.phase == "val":  # the last phase of an epoch but the last (test: after the last only)
            self.cancel.set()


@pytest.mark.slow
def test_a_forced_rerun_that_is_interrupted_keeps_the_finished_result(store, tiny_mnist):
    options = TrainOptions(mnist=str(tiny_mnist))
    spec = RunSpec(epochs=2, limit=256)
    first = train.run_study([spec], store=store, options=options)[0]
    before = (store.get(first.run_id), store.epochs(first.run_id))
    model_file = store.run_dir(first.run_id) / "model.keras"
    stamp = model_file.stat().st_mtime_ns
    cancel = threading.Event()
    again = train.run_study([spec], store=store, options=options, force=True, cancel=cancel,
                            listener=CancelAfterFirstEpoch(cancel))[0]
    assert again.status == "interrupted"
    assert store.get(first.run_id).status == "finished" and store.get(first.run_id).final == before[0].final
    assert store.epochs(first.run_id) == before[1]  # 2 epochs of train and val, test after the last: as they were
    assert model_file.stat().st_mtime_ns == stamp and not list(store.home.glob("runs/*.attempt-*"))
    done = train.run_study([spec], store=store, options=options, force=True)[0]
    assert done.status == "finished" and len(store.epochs(first.run_id)) == 5  # a finished attempt replaces it


def test_a_run_whose_owner_died_is_stale_and_is_taken_over(store):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert store.claim("r1").verdict == "claimed"
    store.start_run("r1", "mnist", "nn", {})
    with sqlite3.connect(store.path) as con:  # as if kill -9 had hit the trainer
        con.execute("UPDATE claims SET pid=?", (dead.pid,))
    assert store.status("r1") == "stale" and store.get("r1").status == "stale"
    assert store.claim("r1").verdict == "claimed"  # a rerun resumes it


def test_a_live_owner_keeps_its_run(store):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert store.claim("r1").verdict == "claimed"
        with sqlite3.connect(store.path) as con:
            con.execute("UPDATE claims SET pid=?", (other.pid,))
        claim = store.claim("r1", force=True)
        assert claim.verdict == "owned" and str(other.pid) in claim.owner
    finally:
        other.kill()


@pytest.mark.slow
def test_sigterm_is_handled_like_ctrl_c(tmp_path, tiny_mnist):
    store_dir = tmp_path / "st"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kerashw.cli", "train", "--model", "nn", "--epochs", "200", "--limit", "500",
         "--store", str(store_dir)],
        env={**os.environ, "KERASHW_MNIST": str(tiny_mnist), "TF_CPP_MIN_LOG_LEVEL": "3"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "phase: val" in line:
            proc.send_signal(signal.SIGTERM)
            break
    out = "".join(lines) + proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, out
    assert "Resume with: kerashw train --model nn --epochs 200 --limit 500 --store" in out
    (row,) = Store(store_dir).runs()
    assert row.status == "interrupted"


# -- 3. splits and labels --------------------------------------------------------------------


def test_bad_splits_are_refused_before_training(tmp_path, synth_folder):
    r = CliRunner().invoke(main, ["train", "--model", "resnet18_mod", "--data", str(synth_folder),
                                  "--split", "30", "-5", "10", "--store", str(tmp_path / "st")])
    assert r.exit_code == 2 and "three counts >= 0" in r.output
    with pytest.raises(ValueError, match="seed"):
        RunSpec(seed=-1)
    from kerashw.captcha.task import prepare

    few = tmp_path / "few"
    few.mkdir()
    for p in sorted(synth_folder.glob("*.png"))[:7]:  # 4:1:3 of 7 images leaves val empty
        shutil.copyfile(p, few / p.name)
    labels = (synth_folder / "labels.csv").read_text().splitlines()[:8]
    (few / "labels.csv").write_text("\n".join(labels) + "\n")
    spec = RunSpec(task="captcha", model="resnet18_mod", data=str(few), batch_size=2, epochs=1)
    with pytest.raises(DataError, match="no val images"):
        prepare(spec.resolved(), TrainOptions())
    with pytest.raises(DataError, match="fewer than one batch"):
        prepare(dataclasses.replace(spec, batch_size=64).resolved(), TrainOptions())
    prepare(dataclasses.replace(spec, split=(3, 0, 4)).resolved(), TrainOptions())  # asked for: fine


def test_labels_csv_duplicates_bom_and_encoding(tmp_path, synth_folder):
    from kerashw.captcha.folders import read_labelled_folder

    folder = _captcha_folder(synth_folder, tmp_path / "caps")
    text = (folder / "labels.csv").read_text()
    (folder / "labels.csv").write_text("\ufeff" + text)  # as spreadsheet programs save CSV
    assert len(read_labelled_folder(folder)) == 160
    first = text.splitlines()[1]
    (folder / "labels.csv").write_text(text + first.split(",")[0] + ",AAAA\n")
    with pytest.raises(DataError, match=r"lines 2 and 162 both list"):
        read_labelled_folder(folder)
    (folder / "labels.csv").write_bytes(b"filename,label\n\xff\xfe.png,ABCD\n")
    with pytest.raises(DataError, match="labels.csv: not UTF-8"):
        read_labelled_folder(folder)


# -- 4. damaged, foreign, read-only stores ---------------------------------------------------


def test_another_programs_sqlite_file_is_refused_untouched(tmp_path):
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE notes (body TEXT)")
    before = db.read_bytes()
    with pytest.raises(StoreError, match="not a kerashw results store"):
        Store(db)
    assert db.read_bytes() == before
    r = CliRunner().invoke(main, ["results", "--store", str(db)])
    assert r.exit_code == 1 and "not a kerashw results store" in r.output


def test_reading_creates_nothing(tmp_path):
    r = CliRunner().invoke(main, ["results", "--store", str(tmp_path / "none")])
    assert r.exit_code == 1 and "no results store here" in r.output and not (tmp_path / "none").exists()
    store = Store(tmp_path / "st")
    store.claim("r1")
    store.start_run("r1", "mnist", "nn", {})
    store.finish_run("r1", "finished", 1.0)
    files = sorted(p.name for p in (tmp_path / "st").iterdir())
    stamp = (tmp_path / "st" / "runs.db").stat().st_mtime_ns
    assert CliRunner().invoke(main, ["results", "--store", str(tmp_path / "st")]).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "st").iterdir()) == files
    assert (tmp_path / "st" / "runs.db").stat().st_mtime_ns == stamp
    with pytest.raises(StoreError, match="readonly|read-only"):
        Store(tmp_path / "st", readonly=True).add_studies("r1", ["x"])
    (tmp_path / "plain").write_text("x")
    r = CliRunner().invoke(main, ["results", "--store", str(tmp_path / "plain" / "runs.db")])
    assert r.exit_code == 1 and "is a file" in r.output


def test_a_malformed_row_is_named_and_the_tui_stays_up(tmp_path):
    store = Store(tmp_path / "st")
    store.claim("good1")
    store.start_run("good1", "mnist", "nn", {})
    with sqlite3.connect(store.path) as con:
        con.execute("UPDATE runs SET final='{broken' WHERE id='good1'")
    r = CliRunner().invoke(main, ["results", "--store", str(tmp_path / "st")])
    assert r.exit_code == 1 and "run good1 has an unreadable final field" in r.output
    assert "Traceback" not in r.output

    import asyncio

    from tui.app import KerasHWApp

    async def drive():
        app = KerasHWApp(store, TrainOptions(mnist=str(tmp_path / "none.npz")))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("3")
            await pilot.pause()
            assert "unreadable final field" in str(app.results.title_line.render())
            return app.is_running

    assert asyncio.run(drive())


# -- 5. metrics ---------------------------------------------------------------------------


def test_top3_counts_ties_against_the_model():
    from kerashw.rundata import strict_top_k

    metric = strict_top_k(3)
    metric.update_state(np.array([4, 7]), np.full((2, 10), 0.1, dtype="float32"))  # collapsed
    assert float(metric.result()) == 0.0
    metric.reset_state()
    metric.update_state(np.array([2]), np.array([[0.5, 0.3, 0.2, 0.0]], dtype="float32"))
    assert float(metric.result()) == 1.0  # third place, no tie: a hit
    metric.reset_state()
    metric.update_state(np.array([4, 7]), np.full((2, 10), np.nan, dtype="float32"))  # a diverged model
    assert float(metric.result()) == 0.0  # NaN scores were scored 100 %
    metric.reset_state()
    scores = np.array([[0.9, np.nan, np.nan, 0.05, 0.05]], dtype="float32")
    metric.update_state(np.array([0]), scores)
    assert float(metric.result()) == 1.0  # first, however many NaN rivals


def test_a_run_away_loss_is_diverged_and_json_is_strict(store):
    from kerashw.record import PhaseRecord

    rec = lambda epoch, phase, loss: PhaseRecord(epoch, 2, phase, 10, None, {"loss": loss})
    assert train._diverged([rec(1, "train", 2.3), rec(2, "train", 6e19)])
    assert not train._diverged([rec(1, "train", 2.3), rec(2, "val", 2.9)])
    store.claim("nan1")
    store.start_run("nan1", "mnist", "nn", {})
    store.finish_run("nan1", "diverged", 1.0, {"train": {"loss": float("nan"), "top1": 0.1}})
    r = CliRunner().invoke(main, ["results", "--store", str(store.home), "--format", "json"])

    def no_constants(name):
        raise ValueError(f"non-standard JSON constant {name}")

    rows = json.loads(r.output, parse_constant=no_constants)
    assert rows[0]["final"]["train"]["loss"] is None


# -- export and predict ------------------------------------------------------------------------


def _huge_png(path):
    """A valid PNG header declaring 40000 x 40000 pixels: over OpenCV's decode limit."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 40000, 40000, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10))
                     + chunk(b"IEND", b""))
    return path


def test_kerashw_json_is_checked_against_the_savedmodel(captcha_run, tmp_path, synth_folder):
    from kerashw import export

    store, row, _ = captcha_run
    out = export.export_run(store, row, tmp_path / "m")
    meta_file = out / "kerashw.json"
    meta = json.loads(meta_file.read_text())
    good = next(synth_folder.glob("*.png"))
    huge = _huge_png(tmp_path / "huge.png")
    r = CliRunner().invoke(main, ["predict", str(out), str(huge), str(good)])
    assert r.exit_code == 1 and "huge.png: cannot read this image (OpenCV" in r.output and f"{good}: " in r.output
    other = "denoise2" if meta["preprocess"] != "denoise2" else "denoise"
    for change, message in ((("alphabet", meta["alphabet"][:-1]), "is not the captcha model's"),
                            (("alphabet", meta["alphabet"][::-1]), "predictions would be decoded as other symbols"),
                            (("preprocess", other), f"but the run trained on {meta['preprocess']!r}"),
                            (("input_shape", [50, 130, 3]), "but the SavedModel takes [50, 130, 1]"),
                            (("input_shape", 50), "input_shape is 50; want a JSON list"),
                            (("outputs", "char_1"), "outputs is 'char_1'; want a JSON list"),
                            (("task", "speech"), "unknown task 'speech'"),
                            (("task", "mnist"), "is not the mnist model's '0123456789'")):
        meta_file.write_text(json.dumps({**meta, change[0]: change[1]}))
        r = CliRunner().invoke(main, ["predict", str(out), str(good)])
        assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output, r.output
    (tmp_path / "afile").write_text("x")
    with pytest.raises(export.ExportError, match="is a file"):
        export.export_run(store, row, tmp_path / "afile")
    (store.run_dir(row.id) / "best.weights.h5").rename(tmp_path / "kept.h5")
    try:
        with pytest.raises(export.ExportError, match="no best-val checkpoint"):
            export.export_run(store, row, tmp_path / "m2", weights="best")
    finally:
        (tmp_path / "kept.h5").rename(store.run_dir(row.id) / "best.weights.h5")


def test_damaged_mnist_files_name_themselves(tmp_path):
    import gzip

    from kerashw.mnist.source import _read_idx

    full = gzip.compress(b"\x00\x00\x08\x03" + (10).to_bytes(4, "big") + b"\x00" * 100)
    (tmp_path / "cut.gz").write_bytes(full[: len(full) // 2])
    with pytest.raises(DataError, match=r"cut.gz: cannot read IDX file \(EOFError"):
        _read_idx(tmp_path / "cut.gz")
    (tmp_path / "short").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 6)
    with pytest.raises(DataError, match="short: the header names 3 dimensions"):
        _read_idx(tmp_path / "short")


def test_a_model_from_the_other_task_is_refused_before_training(tmp_path):
    r = CliRunner().invoke(main, ["train", "--exp", "lr", "--model", "resnet18_mod", "--store", str(tmp_path)])
    assert r.exit_code == 2 and "'resnet18_mod' is a captcha model; this run is mnist" in r.output


# -- resume inside a run ---------------------------------------------------------------------


class CtrlCAtEpoch(Listener):
    def __init__(self, epoch):
        self.epoch = epoch

    def epoch_started(self, epoch, epochs, steps):
        if epoch == self.epoch:
            raise KeyboardInterrupt


class StopAtEpoch(Listener):
    """A stop request (the first Ctrl-C, SIGTERM, the TUI's cancel) as epoch N starts."""

    def __init__(self, epoch, event):
        self.epoch, self.event = epoch, event

    def epoch_started(self, epoch, epochs, steps):
        if epoch == self.epoch:
            self.event.set()


@pytest.mark.slow
def test_an_interrupted_run_resumes_and_ends_as_if_never_stopped(store, tiny_mnist, tmp_path):
    """Under the default checkpoint policy (a backup on disk at most every BACKUP_EVERY seconds,
    the last whole epoch kept in memory) a stop request writes that epoch on the way out, and the
    resume ends with the unbroken run's numbers. A hard stop (KeyboardInterrupt, a second Ctrl-C)
    loses what was not yet on disk (here: all of it), and its resume is exact too."""
    import threading

    options = TrainOptions(mnist=str(tiny_mnist))
    spec = RunSpec(epochs=4, limit=256, lr=0.01)
    unbroken = Store(tmp_path / "unbroken")
    whole = train.run(spec, store=unbroken, options=options)
    stop = threading.Event()
    first = train.run(spec, store=store, options=options, listener=StopAtEpoch(3, stop), cancel=stop)
    # the default policy: val every epoch, test once after the last (none yet: 2 epochs x train, val)
    assert first.status == "interrupted" and len(store.epochs(whole.run_id)) == 4
    backup = store.run_dir(whole.run_id) / "backup"
    assert sorted(p.name for p in backup.iterdir()) == ["epoch-0002.weights.h5"]  # written at the stop
    assert store.files(whole.run_id).best_weights.exists()  # the best epoch's weights went with it

    started = []

    class Seen(Listener):
        def epoch_started(self, epoch, epochs, steps):
            started.append(epoch)

        def notice(self, text):
            started.append(text)

    resumed = train.run(spec, store=store, options=options, listener=Seen())
    assert "resuming run" in started[0] and started[1:] == [3, 4]  # epochs 1-2 were not trained again
    assert resumed.status == "finished"
    def numbers(phases):  # all but the wall-clock time
        return [{k: v for k, v in p.items() if k != "seconds"} for p in phases]

    assert numbers(resumed.final.values()) == numbers(whole.final.values())  # as if never stopped
    assert set(resumed.final) == {"train", "val", "test"}  # the test split, once, after the last epoch
    assert _numbers(store.epochs(whole.run_id)) == _numbers(unbroken.epochs(whole.run_id))
    assert not backup.exists()  # a finished run keeps no backup
    csv_rows = store.files(whole.run_id).metrics.read_text().splitlines()
    assert [r.split(",")[0] for r in csv_rows[1:]] == ["0", "1", "2", "3"]

    hard = Store(tmp_path / "hard")
    with pytest.raises(KeyboardInterrupt):
        train.run(spec, store=hard, options=options, listener=CtrlCAtEpoch(3))
    assert hard.get(whole.run_id).status == "interrupted"
    assert not (hard.run_dir(whole.run_id) / "backup").exists()  # nothing on disk yet: it starts over
    again = train.run(spec, store=hard, options=options)
    assert _numbers(hard.epochs(whole.run_id)) == _numbers(unbroken.epochs(whole.run_id))
    assert again.status == "finished"


def test_a_resume_drops_metrics_rows_after_its_backup(tmp_path):
    from kerashw.training.train import keep_csv_rows

    path = tmp_path / "metrics.csv"
    path.write_text("epoch,loss\n0,2.5\n1,2.0\n2,1.5\n3,1.2\n")
    keep_csv_rows(path, 2)  # the backup holds 2 epochs; rows 2 and 3 were written after it
    assert path.read_text() == "epoch,loss\n0,2.5\n1,2.0\n"
    keep_csv_rows(tmp_path / "none.csv", 2)  # no file yet: nothing to do


def test_an_undecodable_image_names_itself_and_can_be_skipped(tmp_path, synth_folder):
    from kerashw.captcha.cache import _preprocess_chunk

    huge = _huge_png(tmp_path / "huge.png")
    good = next(synth_folder.glob("*.png"))
    with pytest.raises(DataError, match=r"huge.png: cannot read this image \(OpenCV"):
        _preprocess_chunk(([huge, good], "original", False))
    out, bad = _preprocess_chunk(([huge, good], "original", True))
    assert bad == [str(huge)] and out[0] is None and out[1].shape == (50, 130, 3)


def test_a_full_disk_marks_the_run_failed_with_the_reason(store, tiny_mnist, monkeypatch):
    """SQLite's "database or disk is full" while an epoch is stored: the run is stored failed
    with that reason, the study goes on to report it, nothing raises past run_study."""
    real = Store.log_epoch
    calls = []

    def full(self, run_id, record):
        calls.append(record.epoch)
        if record.epoch == 2:
            raise StoreError(f"{self.path}: database or disk is full")
        return real(self, run_id, record)

    monkeypatch.setattr(Store, "log_epoch", full)
    (result,) = train.run_study([RunSpec(epochs=3, limit=128)], store=store,
                                options=TrainOptions(mnist=str(tiny_mnist)))
    assert result.status == "failed" and "database or disk is full" in result.error
    row = store.get(result.run_id)
    assert row.status == "failed" and "disk is full" in row.error
    assert store.claim(result.run_id).verdict == "claimed"  # not left owned: the next start retries


def test_an_mnist_training_split_under_one_batch_is_refused(store, tiny_mnist):
    with pytest.raises(DataError, match="fewer than one batch of 64"):
        train.run(RunSpec(epochs=1, limit=10), store=store, options=TrainOptions(mnist=str(tiny_mnist)))


# -- 5. signals and the backup: a resume is exact whenever the stop came ------------------


def _numbers(records):  # all but the wall-clock time
    return [dataclasses.replace(r, seconds=None) for r in records]


class SignalAtStep(Listener):
    """Sends this process a real signal at one step of one epoch (as Ctrl-C or kill would)."""

    def __init__(self, epoch, step, sig=signal.SIGINT):
        self.epoch, self.at, self.sig, self.now, self.notices = epoch, step, sig, 0, []

    def epoch_started(self, epoch, epochs, steps):
        self.now = epoch

    def step(self, step, steps):
        if (self.now, step) == (self.epoch, self.at):
            os.kill(os.getpid(), self.sig)

    def notice(self, text):
        self.notices.append(text)


class SignalAtStart(Listener):
    """Sends this process SIGTERM once the run is stored running, before its first step."""

    def run_started(self, spec, index, total, params):
        os.kill(os.getpid(), signal.SIGTERM)


def test_a_signal_before_the_first_step_stores_the_run_interrupted(tmp_path, tiny_mnist):
    """The window between the store's "running" and fit's first step: a workers' command's
    SIGTERM there once left the run "running" (then stale), not interrupted."""
    store = Store(tmp_path / "st")
    spec = RunSpec(epochs=2, limit=128)
    result = train.run(spec, store=store, options=TrainOptions(mnist=str(tiny_mnist)), listener=SignalAtStart())
    assert result.status == "interrupted" and store.get(result.run_id).status == "interrupted"
    assert store.epochs(result.run_id) == []  # nothing of the cut first epoch is stored
    again = train.run(spec, store=store, options=TrainOptions(mnist=str(tiny_mnist)))
    assert again.status == "finished" and len({r.epoch for r in store.epochs(again.run_id)}) == 2


@pytest.mark.slow
def test_a_signal_at_any_step_or_inside_the_backup_write_resumes_exactly(tmp_path, tiny_mnist, monkeypatch):
    """A first SIGINT/SIGTERM during fit is a request: the run stops at the next step, is
    stored interrupted and resumes to the unbroken run's numbers. A second signal (a
    KeyboardInterrupt raised anywhere) inside the backup's weight write, at every point of
    it, leaves the previous epoch's backup whole, and the resume is exact too."""
    import keras

    # a backup after every epoch (what --ray runs use), so that epoch 2's write can be interrupted
    options = TrainOptions(mnist=str(tiny_mnist), backup_every=0.0)
    spec = RunSpec(epochs=3, limit=256, lr=0.01)
    unbroken_store = Store(tmp_path / "unbroken")
    whole = train.run(spec, store=unbroken_store, options=options)
    expected = _numbers(unbroken_store.epochs(whole.run_id))

    def resume_and_check(store):
        resumed = train.run(spec, store=store, options=options)
        assert resumed.status == "finished"
        assert _numbers(store.epochs(whole.run_id)) == expected

    # first signals at several steps of epochs 1 and 2 (4 steps an epoch), both kinds
    before = signal.getsignal(signal.SIGINT)  # Python's, or "ignored" in a job started with & in a script
    for i, (epoch, step, sig) in enumerate([(1, 1, signal.SIGINT), (2, 4, signal.SIGTERM), (2, 2, signal.SIGINT)]):
        store = Store(tmp_path / f"sig{i}")
        listener = SignalAtStep(epoch, step, sig)
        result = train.run(spec, store=store, options=options, listener=listener)
        assert result.status == "interrupted" and any("stopping run" in n for n in listener.notices)
        assert signal.getsignal(signal.SIGINT) == before  # the handler is put back
        resume_and_check(store)

    # a KeyboardInterrupt at each point of epoch 2's backup write: before the file is written,
    # after a cut (half-written) file, and once the whole file is written but not yet renamed
    real_save = keras.Model.save_weights
    for where in ("before", "cut", "written"):
        calls = []

        def save_weights(model, filepath, *args, **kwargs):
            calls.append(filepath)
            is_backup = "backup" in str(filepath) and "epoch-0002" in str(filepath)
            if is_backup and where == "before":
                raise KeyboardInterrupt
            real_save(model, filepath, *args, **kwargs)
            if is_backup and where == "cut":
                data = open(filepath, "rb").read()
                open(filepath, "wb").write(data[: len(data) // 2])
                raise KeyboardInterrupt
            if is_backup and where == "written":
                raise KeyboardInterrupt

        monkeypatch.setattr(keras.Model, "save_weights", save_weights)
        store = Store(tmp_path / f"write-{where}")
        with pytest.raises(KeyboardInterrupt):
            train.run(spec, store=store, options=options)
        monkeypatch.setattr(keras.Model, "save_weights", real_save)
        backup = store.run_dir(whole.run_id) / "backup"
        assert sorted(p.name for p in backup.iterdir()) == ["epoch-0001.weights.h5"], where  # whole, nothing cut
        assert store.get(whole.run_id).status == "interrupted"
        resume_and_check(store)

    # a full disk in the middle of the same write: the run fails with the reason, the
    # previous backup stays whole, and the next start resumes from it (a cut file made
    # every later start fail the same way, --force included)
    import errno

    def full_disk(model, filepath, *args, **kwargs):
        if "backup" in str(filepath) and "epoch-0002" in str(filepath):
            open(filepath, "wb").write(b"\x89HDF\r\n")  # what got written before the disk filled
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(model, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", full_disk)
    store = Store(tmp_path / "full")
    with pytest.raises(OSError):
        train.run(spec, store=store, options=options)
    monkeypatch.setattr(keras.Model, "save_weights", real_save)
    row = store.get(whole.run_id)
    assert row.status == "failed" and "No space left on device" in row.error
    backup = store.run_dir(whole.run_id) / "backup"
    assert sorted(p.name for p in backup.iterdir()) == ["epoch-0001.weights.h5"]
    resume_and_check(store)


def test_an_old_style_backup_still_resumes(tmp_path):
    """Runs interrupted before the atomic backup (Keras's BackupAndRestore layout) keep their place."""
    from kerashw.training.callbacks import Backup

    (tmp_path / "latest.weights.h5").write_bytes(b"x")
    (tmp_path / "training_metadata.json").write_text('{"epoch": 3, "batch": 0}')
    assert Backup.epochs_done(tmp_path) == 3
    (tmp_path / "epoch-0004.weights.h5").write_bytes(b"x")
    assert Backup.latest(tmp_path) == (tmp_path / "epoch-0004.weights.h5", 4)
    assert Backup.epochs_done(tmp_path / "none") == 0


def test_steps_per_execution_divides_the_epoch():
    from kerashw.training.train import steps_per_execution

    for steps in (1, 7, 49, 50, 103, 150, 188, 1000, 1601, 4096):
        k = steps_per_execution(steps)
        assert 1 <= k <= 32 and steps % k == 0, (steps, k)
    assert steps_per_execution(1600) == 32 and steps_per_execution(188) == 4


@pytest.mark.slow
def test_resume_is_exact_when_steps_are_not_a_multiple_of_the_old_execution_size(store, tiny_mnist, tmp_path):
    """103 steps an epoch (412 images at batch 4): Keras used to take 2 steps a call, 104 a
    epoch, so an unbroken run's epoch 2 began inside epoch 1's successor's shuffle."""
    options = TrainOptions(mnist=str(tiny_mnist))
    spec = RunSpec(epochs=2, limit=412, batch_size=4, lr=0.01)
    unbroken = Store(tmp_path / "unbroken")
    whole = train.run(spec, store=unbroken, options=options)
    with pytest.raises(KeyboardInterrupt):
        train.run(spec, store=store, options=options, listener=CtrlCAtEpoch(2))
    train.run(spec, store=store, options=options)
    assert _numbers(store.epochs(whole.run_id)) == _numbers(unbroken.epochs(whole.run_id))
