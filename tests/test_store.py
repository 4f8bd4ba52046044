import multiprocessing as mp
import sqlite3

import pytest

from kerashw.record import PhaseRecord
from kerashw.store import Store, StoreError


def _write_many(path, prefix, n):
    s = Store(path)
    for i in range(n):
        rid = f"{prefix}{i:04d}"
        s.start_run(rid, "mnist", "x", {"seed": 1}, ["s"])
        for e in range(1, 4):
            s.log_epoch(rid, PhaseRecord(e, 3, "train", 10, None, {"loss": 1.0, "top1": 0.5, "top3": 0.9}))
        s.finish_run(rid, "finished", 1.0, {"train": {"top1": 0.5}})


def test_run_lifecycle(store):
    assert store.claim("abc123").verdict == "claimed"
    store.start_run("abc123", "mnist", "nn", {"seed": 42, "lr": 0.05}, ["lr"], (10, 12), {"keras": "3"})
    assert store.status("abc123") == "running"
    train = PhaseRecord(1, 1, "train", 100, 1.5, {"loss": 0.5, "top1": 0.9, "top3": 0.99, "char_1_acc": 0.7})
    store.log_epoch("abc123", train)
    store.log_epoch("abc123", PhaseRecord(1, 1, "val", 10, None, {"loss": 0.6, "top1": 0.8, "top3": 0.98}))
    store.finish_run("abc123", "finished", 3.0, {"val": {"top1": 0.8}}, {"epoch": 1})
    row = store.find("abc")
    assert (row.status, row.trainable_params, row.total_params, row.seed) == ("finished", 10, 12, 42)
    assert row.studies == ["lr"] and row.final["val"]["top1"] == 0.8 and row.versions == {"keras": "3"}
    eps = store.epochs("abc123")
    assert [e.phase for e in eps] == ["train", "val"]
    assert eps[0] == train  # what was written, read back as it was (epochs from the spec: 1)
    # a spec stored before a field existed reads back with the value it had then
    assert row.spec["lr"] == 0.05 and row.spec["arcs"] == 0.0 and row.spec["init"] == "keras"


def test_restart_clears_old_epochs_and_keeps_studies(store):
    store.start_run("r1", "mnist", "nn", {}, ["a"])
    store.log_epoch("r1", PhaseRecord(1, 1, "train", None, None, {"loss": 1.0}))
    store.start_run("r1", "mnist", "nn", {}, ["b"])
    assert store.epochs("r1") == [] and store.get("r1").studies == ["a", "b"]


def test_find_errors_and_bad_status(store):
    with pytest.raises(KeyError, match="matches no run"):
        store.find("zzz")
    with pytest.raises(ValueError, match="Unknown status 'done'"):
        store.finish_run("r", "done", 1.0)


def test_not_a_store(tmp_path):
    (tmp_path / "x.db").write_text("hello, not sqlite" * 100)
    with pytest.raises(ValueError, match="x.db is not a kerashw results store"):
        Store(tmp_path / "x.db")


def test_wal_and_two_processes_write_at_once(tmp_path):
    path = tmp_path / "runs.db"
    Store(path)
    procs = [mp.get_context("spawn").Process(target=_write_many, args=(path, p, 40)) for p in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    s = Store(path)
    assert len(s.runs()) == 80
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _open_new_store(root, barrier, results, trials):
    outcomes = []
    for trial in range(trials):
        barrier.wait(timeout=120)  # every process opens the brand-new store at the same moment
        try:
            Store(root / f"st{trial}").claim("x")
            outcomes.append("ok")
        except StoreError as exc:
            outcomes.append(str(exc))
    results.put(outcomes)


def test_processes_opening_one_new_store_at_once_all_succeed(tmp_path):
    """Switching a new file to WAL needs it alone, and SQLite refuses at once (no waiting)
    while another process holds it: two `kerashw train` started together on a new --store
    failed with "database is locked" about once in 20 before the store retried."""
    # spawn, not fork: this worker may hold TensorFlow's threads, and a forked child can
    # deadlock on a lock one of them held (the others then wait at the barrier)
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(6), ctx.Queue()
    procs = [ctx.Process(target=_open_new_store, args=(tmp_path, barrier, results, 10), daemon=True)
             for _ in range(6)]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=300)
        assert [results.get(timeout=5) for _ in procs] == [["ok"] * 10] * 6
    finally:
        for p in procs:
            p.kill()


@pytest.mark.parametrize("column,value,message", [
    ("final", "[1, 2]", "a final field of the wrong shape"),
    ("final", '{"val": 3}', "a final field of the wrong shape"),
    ("spec", '"nn"', "a spec field of the wrong shape"),
    ("best", '{"epoch": 2, "val": [0.5]}', "a best field of the wrong shape"),
])
def test_a_row_of_the_wrong_json_shape_names_the_run(store, column, value, message):
    """Valid JSON of the wrong type once crashed `results` and the TUI with a traceback."""
    store.claim("r1")
    store.start_run("r1", "mnist", "nn", {"seed": 1})
    store.finish_run("r1", "finished", 1.0, {"train": {"top1": 0.5}}, {"epoch": 1, "val": {"top1": 0.5}})
    with sqlite3.connect(store.path) as con:
        con.execute(f"UPDATE runs SET {column}=? WHERE id='r1'", (value,))
    with pytest.raises(StoreError, match=f"run r1 has {message}"):
        store.runs()


def test_an_epoch_extra_of_the_wrong_shape_names_the_run(store):
    store.claim("r1")
    store.start_run("r1", "mnist", "nn", {"seed": 1})
    store.log_epoch("r1", PhaseRecord(1, 1, "train", None, None, {"loss": 1.0, "c1_acc": 0.5}))
    with sqlite3.connect(store.path) as con:
        con.execute("UPDATE epochs SET extra='[0.5]'")
    with pytest.raises(StoreError, match="run r1 epoch 1 train has an unreadable extra field"):
        store.epochs("r1")


def test_a_store_this_process_cannot_write_is_one_clear_error(tmp_path, monkeypatch):
    """As root (CI) the permission bits do not stop writes, so the check itself is exercised:
    SQLite's own answer was "unable to open database file"."""
    Store(tmp_path / "st")
    monkeypatch.setattr(Store, "writable", staticmethod(lambda path: False))
    with pytest.raises(StoreError, match="is read-only to you"):
        Store(tmp_path / "st")
    assert Store(tmp_path / "st", readonly=True).runs() == []  # still readable
