"""SQLite results store: every run and every epoch, written as they happen.

Stdlib only (never keras): the CLI's `results` and the TUI read it without TensorFlow.
WAL mode plus a busy timeout lets a `kerashw train` and the TUI write one file at once.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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


class Store:
    """One SQLite file; short transactions so concurrent writers wait, not fail."""

    def __init__(self, path: str | os.PathLike | None = None):
        path = self.resolve(path)
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._connect() as con:
                con.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{self.path} is not a kerashw results store (SQLite said: {exc})") from exc

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

    @contextmanager
    def _connect(self):
        # A fresh connection per call: safe from any thread (the TUI trains in a worker).
        con = sqlite3.connect(self.path, timeout=30.0)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA foreign_keys=ON")
            con.execute("PRAGMA busy_timeout=30000")
            with con:  # one transaction
                yield con
        finally:
            con.close()

    # -- writing -------------------------------------------------------------
    def start_run(self, run_id: str, task: str, label: str, spec: dict, studies=(),
                  params: tuple[int, int] | None = None, versions: dict | None = None) -> None:
        """Create (or reset, for --force and resumes) a run as running; old epochs go."""
        with self._connect() as con:
            con.execute("DELETE FROM epochs WHERE run_id=?", (run_id,))
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

    def log_epoch(self, run_id: str, epoch: int, phase: str, metrics: dict,
                  samples: int | None = None, seconds: float | None = None) -> None:
        extra = {k: v for k, v in metrics.items() if k not in ("loss", "top1", "top3")}
        with self._connect() as con:
            con.execute(
                "INSERT OR REPLACE INTO epochs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, epoch, phase, samples, metrics.get("loss"), metrics.get("top1"),
                 metrics.get("top3"), json.dumps(extra) if extra else None, seconds),
            )

    def finish_run(self, run_id: str, status: str, elapsed: float,
                   final: dict | None = None, best: dict | None = None,
                   error: str | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"Unknown status {status!r}. Known: {list(STATUSES)}")
        with self._connect() as con:
            con.execute(
                "UPDATE runs SET status=?, ended=?, elapsed=?, final=?, best=?, error=? WHERE id=?",
                (status, time.time(), elapsed, json.dumps(final or {}), json.dumps(best or {}),
                 error, run_id),
            )

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
        with self._connect() as con:
            row = con.execute("SELECT status FROM runs WHERE id=?", (run_id,)).fetchone()
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
        return [
            RunRow(
                id=r["id"], task=r["task"], label=r["label"], spec=json.loads(r["spec"]),
                status=r["status"], studies=studies.get(r["id"], []), started=r["started"],
                ended=r["ended"], elapsed=r["elapsed"], trainable_params=r["trainable_params"],
                total_params=r["total_params"], final=json.loads(r["final"] or "{}"),
                best=json.loads(r["best"] or "{}"), versions=json.loads(r["versions"] or "{}"),
                seed=r["seed"], error=r["error"],
            )
            for r in rows
        ]

    def epochs(self, run_id: str) -> list[dict]:
        with self._connect() as con:
            con.row_factory = sqlite3.Row
            rows = con.execute(
                "SELECT * FROM epochs WHERE run_id=? ORDER BY epoch, "
                "CASE phase WHEN 'train' THEN 0 WHEN 'val' THEN 1 ELSE 2 END",
                (run_id,),
            ).fetchall()
        out = []
        for r in rows:
            d = {k: r[k] for k in ("epoch", "phase", "samples", "loss", "top1", "top3", "seconds")}
            d.update(json.loads(r["extra"] or "{}"))
            out.append(d)
        return out

    def delete(self, run_id: str) -> None:
        with self._connect() as con:
            con.execute("DELETE FROM runs WHERE id=?", (run_id,))
