"""`kerashw train --workers N`: a study's runs trained N at a time, in N processes.

Each worker is the user's own `kerashw train` command (without --workers) with its
share of the cores (--threads) and its output in STORE/workers/worker-K.log. Every
worker walks the whole study; the store's atomic claims give each run to exactly one
of them (a run a sibling owns is skipped, then found finished), so no run trains
twice and nothing here assigns work. This process only starts them, reports what
the store says as runs start and end, and prints the summary.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time

from rich.console import Console
from rich.markup import escape

from kerashw import estimate
from kerashw.reports import tables
from kerashw.training import precision
from kerashw.config import DataError, TrainOptions
from kerashw.identity import identify_all
from kerashw.store import Store

POLL = 1.0  # seconds between looks at the store


def child_argv(argv: list[str], threads: int, force_before: float | None) -> list[str]:
    """The user's train arguments without --workers/--threads, with this worker's share."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--workers", "--threads"):
            skip = True
            continue
        if arg.startswith(("--workers=", "--threads=")):
            continue
        out.append(arg)
    out += ["--threads", str(threads)]
    if force_before is not None:
        out += ["--force-before", repr(force_before)]
    return out


def threads_each(workers: int, threads: int | None) -> int:
    return threads or max(1, (os.cpu_count() or 1) // workers)


def run_workers(console: Console, specs, store: Store, workers: int, argv: list[str], *,
                threads: int | None = None, force: bool = False,
                options: TrainOptions = TrainOptions()) -> int:
    """Start the workers, follow the study in the store, return the exit code."""
    try:
        specs = identify_all(specs, options)  # bad data fails here once, not in N logs
        precision.check(specs)
    except (DataError, precision.UnsupportedError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        return 2
    plan = estimate.plan(specs, store, force=force)
    todo = plan.runs if force else plan.runs - plan.finished
    if todo == 0:
        console.print(f"{plan.runs} run(s), all finished before: nothing to train")
        return 0
    workers = min(workers, todo)
    each = threads_each(workers, threads)
    started = time.time()
    # a folder per command: two commands on one store never write each other's logs
    logs = store.home / "workers" / f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(started))}-{os.getpid()}"
    logs.mkdir(parents=True, exist_ok=True)
    args = child_argv(argv[1:] if argv and argv[0] == "train" else argv, each, started if force else None)
    console.print(f"{plan.runs} run(s), {todo} to train, with {workers} worker(s) of {each} thread(s) each; "
                  f"their output: {logs}/worker-K.log")
    procs = []
    for k in range(1, workers + 1):
        with open(logs / f"worker-{k}.log", "w") as log:
            cmd = [sys.executable, "-m", "kerashw.cli", "train", *args]
            # their own session: the terminal's Ctrl-C reaches this process alone, which passes
            # exactly one SIGTERM (a stop request) to each worker; and they die with this process
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          env={**os.environ, "KERASHW_WORKER": str(k)},
                                          start_new_session=True, preexec_fn=_die_with_parent))
    ids = [s.run_id for s in specs]
    seen = {row.id: row.status for row in store.runs(ids=ids)}  # report changes only
    interrupted = False
    try:
        _follow(console, store, ids, procs, seen)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (the train command raises it for both)
        interrupted = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)  # at once: a worker stops at its next step
        _wait(procs)
        _follow(console, store, ids, [], seen)  # the final statuses
    codes = [p.returncode for p in procs]
    rows = store.runs(ids=ids)
    if rows:
        headers, table_rows = tables.result_rows(rows, studies=False)
        console.print(tables.rich_table(headers, table_rows, title="summary"))
    if interrupted or 130 in codes:
        stopped = [r.id for r in rows if r.status == "interrupted"]
        what = (f"Stored as interrupted, to resume from their last whole epoch: {', '.join(stopped)}"
                if stopped else "No run was in training")
        console.print(f"\n[yellow]Interrupted.[/yellow] {what}; finished runs are kept.")
        console.print(f"Resume with: {shlex.join(['kerashw', *argv])}  (finished runs are skipped)", markup=False)
        return 130
    bad = [(k, c) for k, c in enumerate(codes, start=1) if c not in (0, None)]
    for k, c in bad:
        console.print(f"[red]worker {k} exited with {c}[/red]; see {logs}/worker-{k}.log")
    return max((c for _, c in bad), default=0)


def _wait(procs) -> None:
    """Wait for the workers to store their runs; a second Ctrl-C here passes on a second
    signal, which stops a worker at once (its files are written atomically)."""
    while True:
        try:
            for p in procs:
                p.wait()
            return
        except KeyboardInterrupt:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)


def _die_with_parent() -> None:
    """In the worker, before it runs: SIGTERM when this process dies, even by kill -9 (Linux's
    PR_SET_PDEATHSIG); elsewhere a worker finishes its run and exits on its own."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _follow(console: Console, store: Store, ids: list[str], procs, seen: dict[str, str]) -> None:
    """Print each run's status as it changes in the store, until the workers exit."""
    while True:
        done = all(p.poll() is not None for p in procs)
        for row in store.runs(ids=ids):
            if seen.get(row.id) != row.status:
                seen[row.id] = row.status
                test = row.final.get("test", {}) if row.status == "finished" else {}
                score = f"  test top-1 {100 * test['top1']:.2f} %" if "top1" in test else ""
                console.print(f"{row.id} {row.label}: {row.status}{score}", markup=False)
        if done:
            return
        time.sleep(POLL)
