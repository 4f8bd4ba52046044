"""SQLite results store: every run and every epoch, written as they happen.

Stdlib only (never keras): the CLI's `results` and the TUI read it without TensorFlow.
WAL mode plus a busy timeout lets a `kerashw train` and the TUI write one file at once.
"""
from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kerashw.store.claims import STALE, Claims, StoreError  # noqa: F401  (StoreError: part of this API)
from kerashw.config import LATER_DEFAULTS
from kerashw.record import PhaseRecord
from kerashw.runfiles import RunFiles

STATUSES = ("running", "finished", "failed", "interrupted", "diverged")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    label TEXT NOT NULL,
    spec TEXT NOT NULL,              -- JSON of the resolved RunSpec
    status TEXT NOT NULL,
    started REAL, ended REAL, elapsed REAL,
    trainable_params INTEGER, total_params INTEGER,
    final TEXT,                      -- JSON {phase: {metric: value}} of the last epoch
    best TEXT,                       -- JSON {"epoch": n, phase: {...}} of the best-val epoch
    versions TEXT,                   -- JSON {python, tensorflow, keras, kerashw}
    seed INTEGER,
    error TEXT
);
CREATE TABLE IF NOT EXISTS run_studies (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    study TEXT NOT NULL,
    PRIMARY KEY (run_id, study)
);
CREATE TABLE IF NOT EXISTS claims (  -- who trains a run now; one row while it trains
    run_id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started REAL NOT NULL,
    heartbeat REAL NOT NULL,
    replacing INTEGER NOT NULL DEFAULT 0  -- 1: a --force attempt over a finished run
);
CREATE TABLE IF NOT EXISTS attempt_epochs (  -- a replacing attempt's epochs until it finishes
    run_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    phase TEXT NOT NULL,
    samples INTEGER,
    loss REAL, top1 REAL, top3 REAL,
    extra TEXT,
    seconds REAL,
    PRIMARY KEY (run_id, epoch, phase)
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    phase TEXT NOT NULL,             -- train, val, test
    samples INTEGER,
    loss REAL, top1 REAL, top3 REAL,
    extra TEXT,                      -- JSON: per-character accuracies and the like
    seconds REAL,                    -- wall time of the epoch (train phase)
    PRIMARY KEY (run_id, epoch, phase)
);
"""


def to_json(value, **kwargs) -> str:
    """Strict JSON: NaN and infinities (a diverged run's loss) become null."""
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(value), allow_nan=False, **kwargs)


def default_home() -> Path:
    """./kerashw-runs of the working directory, or $KERASHW_HOME."""
    return Path(os.environ.get("KERASHW_HOME") or "kerashw-runs")


@dataclass
class RunRow:
    id: str
    task: str
    label: str
    spec: dict
    status: str
    studies: list
    started: float | None
    ended: float | None
    elapsed: float | None
    trainable_params: int | None
    total_params: int | None
    final: dict
    best: dict
    versions: dict
    seed: int | None
    error: str | None


RUN_COLUMNS = {"id", "task", "label", "spec", "status", "started", "ended", "elapsed", "trainable_params",
               "total_params", "final", "best", "versions", "seed", "error"}


class Store(Claims):
    """One SQLite file; short transactions so concurrent writers wait, not fail.

    `readonly=True` (the commands that only read) opens the file read-only: it must exist
    and be kerashw's, and nothing in it or beside it is created or changed."""

    def __init__(self, path: str | os.PathLike | None = None, *, readonly: bool = False):
        self.path = self.resolve(path)
        self.readonly = readonly
        folder = self.path.parent
        if folder.exists() and not folder.is_dir():
            raise StoreError(f"{folder} is a file; --store takes a results folder or a .db file")
        if readonly:
            if not self.path.is_file():
                raise StoreError(f"{self.path}: no results store here yet (train something with this --store first)")
            self._check_kerashw()
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the results folder {folder}: {exc.strerror}") from None
        if self.path.exists():
            self._check_kerashw()  # another program's SQLite file is refused, never given our tables
            if not self.writable(self.path):
                raise StoreError(f"{self.path} is read-only to you (SQLite needs to write the file and "
                                 f"its folder); read it with kerashw results --store, or train with another --store")
        self._ensure_wal()
        with self._connect() as con:
            con.executescript(SCHEMA)

    def _ensure_wal(self, timeout: float = 30.0) -> None:
        """Put the file in WAL mode (readers and a writer at once); the mode is stored in the
        file, so once is enough. Switching needs the file to itself, and SQLite answers
        "database is locked" at once, without waiting, when another process opens the same
        new store at that moment (two `kerashw train` started together): so retry."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                con = sqlite3.connect(self.path, timeout=timeout)
                try:
                    con.execute("PRAGMA journal_mode=WAL")
                    return
                finally:
                    con.close()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                    raise StoreError(f"{self.path}: {exc}") from exc
                time.sleep(0.05)
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {exc}") from exc

    def _readonly_uri(self) -> str:
        # With no -wal file beside it nobody is writing, and "immutable" reads without creating
        # SQLite's -wal/-shm companions; with one, a writer is active and a plain read-only
        # connection sees its committed epochs (the companions exist already).
        wal = self.path.with_name(self.path.name + "-wal")
        return f"{self.path.resolve().as_uri()}?mode=ro" + ("" if wal.exists() else "&immutable=1")

    def _check_kerashw(self) -> None:
        readonly, self.readonly = self.readonly, True  # look without changing anything
        try:
            with self._connect() as con:
                tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                columns = {r[1] for r in con.execute("PRAGMA table_info(runs)")}
        except StoreError as exc:
            raise StoreError(f"{self.path} is not a kerashw results store ({exc.__cause__ or exc})") from None
        finally:
            self.readonly = readonly
        if tables and not RUN_COLUMNS <= columns:
            raise StoreError(f"{self.path} is not a kerashw results store: it has tables "
                             f"{sorted(tables)[:6]} but no kerashw runs table; choose another --store")

    @staticmethod
    def writable(path: Path) -> bool:
        """Can this process write the store file and its folder (SQLite's -wal and -shm)?"""
        return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)

    @staticmethod
    def resolve(path: str | os.PathLike | None) -> Path:
        """The .db file a folder, a .db path or None (the default home) means."""
        path = Path(path) if path is not None else default_home()
        return path if path.suffix == ".db" else path / "runs.db"

    @property
    def home(self) -> Path:
        return self.path.parent

    def run_dir(self, run_id: str) -> Path:
        """Folder for a run's files (CSV log, saved model), beside the store."""
        return self.home / "runs" / run_id

    def files(self, run_id: str) -> RunFiles:
        """The run folder's files by name (kerashw.runfiles)."""
        return RunFiles(self.run_dir(run_id))

    @contextmanager
    def _connect(self):
        # A fresh connection per call: safe from any thread (the TUI trains in a worker).
        # SQLite's own errors (a damaged page, a full disk, a read-only file) become one
        # StoreError naming the store.
        try:
            if self.readonly:
                con = sqlite3.connect(self._readonly_uri(), uri=True, timeout=30.0)
            else:
                con = sqlite3.connect(self.path, timeout=30.0)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open ({exc})") from exc
        try:
            if not self.readonly:  # WAL mode is the file's, set once (_ensure_wal)
                con.execute("PRAGMA foreign_keys=ON")
            con.execute("PRAGMA busy_timeout=30000")
            with con:  # one transaction
                yield con
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: {exc}") from exc
        finally:
            con.close()

    # -- writing -------------------------------------------------------------
    def start_run(self, run_id: str, task: str, label: str, spec: dict, studies=(),
                  params: tuple[int, int] | None = None, versions: dict | None = None,
                  keep_through: int = 0) -> None:
        """Record a claimed run as running: a fresh run, or a resume of an unfinished one, whose
        epochs after `keep_through` go. A --force attempt over a finished run leaves it as it is."""
        with self._connect() as con:
            exists = con.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone()
            if exists and self._replacing(con, run_id):
                for study in studies:
                    con.execute("INSERT OR IGNORE INTO run_studies VALUES (?, ?)", (run_id, study))
                return
            con.execute("DELETE FROM epochs WHERE run_id=? AND epoch>?", (run_id, keep_through))
            con.execute(
                """INSERT INTO runs (id, task, label, spec, status, started, seed, versions,
                                     trainable_params, total_params)
                   VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)
                   ON CONFLICT(id) DO UPDATE SET status='running', started=excluded.started,
                     ended=NULL, elapsed=NULL, final=NULL, best=NULL, error=NULL,
                     label=excluded.label, spec=excluded.spec, versions=excluded.versions,
                     trainable_params=excluded.trainable_params,
                     total_params=excluded.total_params""",
                (run_id, task, label, json.dumps(spec, sort_keys=True), time.time(),
                 spec.get("seed"), json.dumps(versions or {}),
                 params[0] if params else None, params[1] if params else None),
            )
            for study in studies:
                con.execute("INSERT OR IGNORE INTO run_studies VALUES (?, ?)", (run_id, study))

    def add_studies(self, run_id: str, studies) -> None:
        with self._connect() as con:
            for study in studies:
                con.execute("INSERT OR IGNORE INTO run_studies VALUES (?, ?)", (run_id, study))

    def log_epoch(self, run_id: str, record: PhaseRecord) -> None:
        """One epoch x phase, as it ends; also the owner's heartbeat."""
        metrics = record.metrics
        extra = {k: v for k, v in metrics.items() if k not in ("loss", "top1", "top3")}
        with self._connect() as con:
            table = "attempt_epochs" if self._replacing(con, run_id) else "epochs"
            con.execute(
                f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, record.epoch, record.phase, record.samples, metrics.get("loss"), metrics.get("top1"),
                 metrics.get("top3"), to_json(extra) if extra else None, record.seconds),
            )
            con.execute("UPDATE claims SET heartbeat=? WHERE run_id=?", (time.time(), run_id))

    def finish_run(self, run_id: str, status: str, elapsed: float,
                   final: dict | None = None, best: dict | None = None,
                   error: str | None = None, versions: dict | None = None) -> str:
        """End this process's claim. A replacing attempt takes the run's place only when it
        finished; otherwise the previous finished result stays. `versions`, what trained the
        attempt (a replacing attempt's start could not store them), replace the stored ones
        with its result. Returns the stored status."""
        if status not in STATUSES:
            raise ValueError(f"Unknown status {status!r}. Known: {list(STATUSES)}")
        with self._immediate() as con:
            replacing = self._replacing(con, run_id)
            con.execute("DELETE FROM claims WHERE run_id=?", (run_id,))
            if replacing and status != "finished":
                con.execute("DELETE FROM attempt_epochs WHERE run_id=?", (run_id,))
                return "finished"
            if replacing:
                con.execute("DELETE FROM epochs WHERE run_id=?", (run_id,))
                con.execute("INSERT INTO epochs SELECT * FROM attempt_epochs WHERE run_id=?", (run_id,))
                con.execute("DELETE FROM attempt_epochs WHERE run_id=?", (run_id,))
            con.execute(
                "UPDATE runs SET status=?, ended=?, elapsed=?, final=?, best=?, error=?, "
                "versions=COALESCE(?, versions) WHERE id=?",
                (status, time.time(), elapsed, to_json(final or {}), to_json(best or {}), error,
                 json.dumps(versions) if versions else None, run_id),
            )
        return status

    # -- reading -------------------------------------------------------------
    def get(self, run_id: str) -> RunRow | None:
        rows = self.runs(ids=[run_id])
        return rows[0] if rows else None

    def find(self, prefix: str) -> RunRow:
        """A run by id or unique id prefix; errors list what matched."""
        with self._connect() as con:
            ids = [r[0] for r in con.execute("SELECT id FROM runs WHERE id LIKE ?", (prefix + "%",))]
        if len(ids) != 1:
            what = "no run" if not ids else f"{len(ids)} runs ({', '.join(ids[:5])})"
            raise KeyError(f"Run id {prefix!r} matches {what} in {self.path}")
        return self.get(ids[0])

    def status(self, run_id: str) -> str | None:
        """The run's status; `stale` for one stored as running whose owner is gone."""
        with self._connect() as con:
            row = con.execute("SELECT status FROM runs WHERE id=?", (run_id,)).fetchone()
            live = self._live_claims(con)
        if row and row[0] == "running" and run_id not in live:
            return STALE
        return row[0] if row else None

    def runs(self, study: str | None = None, ids=None, task: str | None = None) -> list[RunRow]:
        sql = "SELECT * FROM runs"
        where, args = [], []
        if study:
            where.append("id IN (SELECT run_id FROM run_studies WHERE study=?)")
            args.append(study)
        if ids is not None:
            where.append(f"id IN ({','.join('?' * len(ids))})")
            args.extend(ids)
        if task:
            where.append("task=?")
            args.append(task)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started"
        with self._connect() as con:
            con.row_factory = sqlite3.Row
            rows = con.execute(sql, args).fetchall()
            studies = {}
            for rid, st in con.execute("SELECT run_id, study FROM run_studies ORDER BY study"):
                studies.setdefault(rid, []).append(st)
            live = self._live_claims(con)
        def load(r, column: str) -> dict:
            try:
                value = json.loads(r[column] or "{}")
            except ValueError as exc:
                raise StoreError(f"{self.path}: run {r['id']} has an unreadable {column} field ({exc}); "
                                 f"fix or delete that run") from None
            # every reader indexes these as {key: ...} and final/best as {phase: {metric: value}}
            phases = column in ("final", "best")
            bad = not isinstance(value, dict) or (phases and any(
                not isinstance(v, dict) for k, v in value.items() if k != "epoch"))
            if bad:
                want = "a JSON object of phases, each an object of metrics" if phases else "a JSON object"
                raise StoreError(f"{self.path}: run {r['id']} has a {column} field of the wrong shape "
                                 f"({str(r[column])[:60]!r}; want {want}); fix or delete that run")
            return value

        def spec(r) -> dict:  # a field added after the run was stored: the value it had
            return {**LATER_DEFAULTS, **load(r, "spec")}

        return [
            RunRow(
                id=r["id"], task=r["task"], label=r["label"], spec=spec(r),
                status=STALE if r["status"] == "running" and r["id"] not in live else r["status"],
                studies=studies.get(r["id"], []), started=r["started"],
                ended=r["ended"], elapsed=r["elapsed"], trainable_params=r["trainable_params"],
                total_params=r["total_params"], final=load(r, "final"),
                best=load(r, "best"), versions=load(r, "versions"),
                seed=r["seed"], error=r["error"],
            )
            for r in rows
        ]

    def epochs(self, run_id: str) -> list[PhaseRecord]:
        """The run's phase records as they were written, epochs counted from its spec."""
        with self._connect() as con:
            con.row_factory = sqlite3.Row
            rows = con.execute(
                "SELECT * FROM epochs WHERE run_id=? ORDER BY epoch, "
                "CASE phase WHEN 'train' THEN 0 WHEN 'val' THEN 1 ELSE 2 END",
                (run_id,),
            ).fetchall()
            spec = con.execute("SELECT spec FROM runs WHERE id=?", (run_id,)).fetchone()
        try:
            epochs = json.loads(spec[0]).get("epochs") if spec else None
        except (ValueError, AttributeError):
            epochs = None  # runs() names a damaged spec; the records stand without it
        out = []
        for r in rows:
            try:
                extra = json.loads(r["extra"] or "{}")
                if not isinstance(extra, dict):
                    raise ValueError(f"{r['extra'][:60]!r} is not a JSON object")
            except ValueError as exc:
                raise StoreError(f"{self.path}: run {run_id} epoch {r['epoch']} {r['phase']} has an "
                                 f"unreadable extra field ({exc}); fix or delete that run") from None
            # a column a task does not fill (a captcha's top3) is absent, as in the record written
            metrics = {k: r[k] for k in ("loss", "top1", "top3") if r[k] is not None}
            out.append(PhaseRecord(r["epoch"], epochs if isinstance(epochs, int) else max(x["epoch"] for x in rows),
                                   r["phase"], r["samples"], r["seconds"], {**metrics, **extra}))
        return out
