"""Who trains a run: atomic claims with an owner (host, pid, heartbeat), attempts that
replace a finished run only when they finish, and the attempt's files. A mixin of Store;
stdlib only."""
from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

STALE = "stale"  # shown, never stored: "running", but the process that owned it is gone
# Another host's claim counts as abandoned when its heartbeat (every epoch) is this old.
STALE_AFTER = 30 * 60
HOST = socket.gethostname()


class StoreError(ValueError):
    """A store that cannot be used as it is; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Claim:
    """What `Store.claim` decided: train it (`claimed`), or leave it (`finished`, `owned`)."""

    verdict: str  # claimed, finished, owned
    replacing: bool = False  # claimed over a finished run (--force): the old result stays until done
    owner: str = ""  # for owned: "host pid N since HH:MM"


def _owner_alive(host: str, pid: int, heartbeat: float) -> bool:
    if host == HOST:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # someone else's live process
        return True
    return time.time() - heartbeat < STALE_AFTER


class Claims:
    """Store's claim methods; they need `self.path` and `self._connect()`."""

    @contextmanager
    def _immediate(self):
        """One write transaction that takes the write lock at its start (BEGIN IMMEDIATE), so
        what it reads cannot change before it writes: two trainers cannot both claim a run."""
        con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            con.execute("PRAGMA busy_timeout=30000")
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: {exc}") from exc
        finally:
            con.close()

    def claim(self, run_id: str, *, force: bool = False, force_before: float | None = None) -> Claim:
        """Atomically decide whether this process trains `run_id`: not if it is finished
        (unless `force`; with `force_before`, only a run that ended before that time, so
        parallel workers re-run the old results once and never each other's new ones), not
        if a live process owns it; else record this process as its owner.
        A claim whose owner is gone (kill -9, a crash, a lost host) is taken over."""
        with self._immediate() as con:
            row = con.execute("SELECT status, ended FROM runs WHERE id=?", (run_id,)).fetchone()
            owner = con.execute("SELECT host, pid, started, heartbeat FROM claims WHERE run_id=?",
                                (run_id,)).fetchone()
            if owner and _owner_alive(owner[0], owner[1], owner[3]):
                since = time.strftime("%H:%M", time.localtime(owner[2]))
                return Claim("owned", owner=f"{owner[0]} pid {owner[1]} since {since}")
            if row and row[0] == "finished" and not force:
                return Claim("finished")
            if row and row[0] == "finished" and force_before is not None and (row[1] or 0) >= force_before:
                return Claim("finished")
            replacing = bool(row and row[0] == "finished")
            now = time.time()
            con.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?, ?)",
                        (run_id, HOST, os.getpid(), now, now, int(replacing)))
            con.execute("DELETE FROM attempt_epochs WHERE run_id=?", (run_id,))
        return Claim("claimed", replacing=replacing)

    def _replacing(self, con, run_id: str) -> bool:
        row = con.execute("SELECT replacing FROM claims WHERE run_id=? AND host=? AND pid=?",
                          (run_id, HOST, os.getpid())).fetchone()
        return bool(row and row[0])

    def release(self, run_id: str) -> None:
        """Give up this process's claim without a result (it failed before training began)."""
        with self._connect() as con:
            mine = con.execute("DELETE FROM claims WHERE run_id=? AND host=? AND pid=?",
                               (run_id, HOST, os.getpid())).rowcount
            if mine:
                con.execute("DELETE FROM attempt_epochs WHERE run_id=?", (run_id,))

    def work_dir(self, run_id: str, replacing: bool) -> Path:
        """Where an attempt writes its files: the run's folder, or beside it while a --force
        attempt runs over a finished one (whose files stay until the attempt finishes)."""
        return self.run_dir(run_id).with_name(f"{run_id}.attempt-{os.getpid()}") if replacing \
            else self.run_dir(run_id)

    def promote(self, run_id: str, work: Path) -> None:
        """A finished replacing attempt's files take the place of the old ones."""
        target = self.run_dir(run_id)
        if work == target:
            return
        old = target.with_name(f"{run_id}.old-{os.getpid()}")
        if target.exists():
            os.replace(target, old)
        os.replace(work, target)
        shutil.rmtree(old, ignore_errors=True)

    def owner(self, run_id: str) -> str | None:
        """Who holds the run's claim now ("host pid N since HH:MM"), if anyone alive does."""
        with self._connect() as con:
            row = con.execute("SELECT host, pid, started, heartbeat FROM claims WHERE run_id=?",
                              (run_id,)).fetchone()
        if not row or not _owner_alive(row[0], row[1], row[3]):
            return None
        return f"{row[0]} pid {row[1]} since {time.strftime('%H:%M', time.localtime(row[2]))}"

    @staticmethod
    def _live_claims(con) -> set[str]:
        return {r[0] for r in con.execute("SELECT run_id, host, pid, heartbeat FROM claims")
                if _owner_alive(r[1], r[2], r[3])}
