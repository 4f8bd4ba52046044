"""The headless front end of training: report-style lines, a rich step bar, a summary."""
from __future__ import annotations

import dataclasses
import shlex
import sys

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from kerashw.reports import tables
from kerashw.training import distribute, precision, train
from kerashw.identity import identify_all
from kerashw.listener import Listener
from kerashw.config import DataError, TrainOptions
from kerashw.store import Store


class RichListener(Listener):
    """Prints the report's epoch lines above a live progress bar of the epoch's steps."""

    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("steps"), TimeRemainingColumn(), console=console, transient=True,
        )
        self.task = None
        self.prefix = ""
        self.run_task = ""
        self.stored_interrupted: str | None = None  # the run a Ctrl-C was stored against

    def run_started(self, spec, index, total, params):
        self.prefix = f"run {index}/{total}"
        self.run_task = spec.task  # its epoch lines are in that task's words
        self.console.rule(f"[bold]{self.prefix}[/bold] {spec.run_id}  {spec.label()}  "
                          f"({params[0]:,} trainable params)")

    def run_skipped(self, spec, index, total, status):
        if status == "finished":
            why = "already finished, reusing it (--force re-runs)"
        else:
            why = f"skipped, {status} (run the study again once it is done)"
        self.console.print(f"run {index}/{total} {spec.run_id} {spec.label()}: {why}", markup=False)

    def notice(self, text):
        self.console.print(f"[yellow]note:[/yellow] {escape(text)}")

    def epoch_started(self, epoch, epochs, steps):
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("", total=steps)
        self.progress.reset(self.task, total=steps, description=f"{self.prefix} epoch {epoch}/{epochs}")

    def step(self, step, steps):
        if self.task is not None:
            self.progress.update(self.task, completed=step)

    def phase_ended(self, record):
        self.progress.console.print(tables.epoch_line(record, self.run_task), soft_wrap=True)

    def run_phase_ended(self, run_id, record):
        # several runs at once (--ray): each line says whose it is
        self.progress.console.print(f"{run_id[:8]}  {tables.epoch_line(record, self.run_task)}", soft_wrap=True)

    def run_ended(self, result):
        self.stop_bar()
        if result.status == "interrupted":
            self.stored_interrupted = result.run_id
        colour = {"finished": "green", "diverged": "yellow"}.get(result.status, "red")
        extra = f": {escape(result.error)}" if result.error else ""
        self.console.print(f"[{colour}]{result.status}[/{colour}] {result.run_id} in "
                           f"{result.elapsed:.1f}s{extra}")

    def data_progress(self, done, total, description):
        """Progress of once-per-image work (synthetic generation, preprocessing)."""
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task(description, total=total)
        self.progress.update(self.task, completed=done, total=total, description=description)
        if done >= total:
            self.stop_bar()

    def stop_bar(self):
        if self.task is not None:
            self.progress.stop()
            self.progress.remove_task(self.task)
            self.task = None


def run_with_progress(console: Console, specs, store: Store, studies, *, force=False,
                      options: TrainOptions = TrainOptions(), force_before: float | None = None, ray=None) -> int:
    """Run a study with live output; returns the process exit code."""
    from kerashw import estimate

    listener = RichListener(console)
    try:
        specs = identify_all(specs, options)  # reads and checks the data before anything is reused
        precision.check(specs)
    except DataError as exc:
        console.print(f"[red]data error:[/red] {escape(str(exc))}")
        return 2
    except precision.UnsupportedError as exc:
        console.print(f"[red]not on this machine:[/red] {escape(str(exc))}")
        return 2
    p = estimate.plan(specs, store, force=force)
    if p.finished == p.runs:
        console.print(f"{p.runs} run(s), all finished before: nothing to train")
    else:
        console.print(f"{p.runs} run(s), {p.finished} finished before, estimated {p.estimate}")
    options = dataclasses.replace(options, progress=listener.data_progress)
    try:
        if ray is not None:  # kerashw.cluster.driver.RayOptions: the runs as Ray tasks
            from kerashw.cluster.driver import run_study

            results = run_study(specs, store=store, studies=studies, listener=listener, force=force,
                                options=options, ray_options=ray)
        else:
            results = train.run_study(specs, store=store, studies=studies, listener=listener,
                                      force=force, options=options, force_before=force_before)
    except KeyboardInterrupt:  # a signal outside the training loop, or a second Ctrl-C
        listener.stop_bar()
        _interrupted(console, store, [listener.stored_interrupted] if listener.stored_interrupted else [])
        return 130
    except DataError as exc:
        listener.stop_bar()
        console.print(f"[red]data error:[/red] {escape(str(exc))}")
        return 2
    except ConnectionError as exc:  # --ray ADDRESS: no cluster there
        listener.stop_bar()
        console.print(f"[red]cannot reach Ray:[/red] {escape(str(exc))}")
        return 2
    except distribute.SetupError as exc:
        listener.stop_bar()
        why = "cannot combine" if isinstance(exc, distribute.Uncombined) else "not on this machine"
        console.print(f"[red]{why}:[/red] {escape(str(exc))}")
        return 2
    rows = store.runs(ids=[r.run_id for r in results])
    if rows:
        headers, table_rows = tables.result_rows(rows, studies=False)
        console.print(tables.rich_table(headers, table_rows, title="summary"))
    stopped = [r.run_id for r in results if r.status == "interrupted"]
    if stopped:  # a signal inside the training loop (on Ray, several runs can be in training)
        _interrupted(console, store, stopped)
        return 130
    failed = [r for r in results if r.status == "failed"]
    if failed:
        console.print(f"{len(failed)} run(s) failed ({', '.join(r.run_id for r in failed)}); once the cause is "
                      f"fixed, the same command retries them, from their last whole epoch where one was kept: "
                      f"{shlex.join(['kerashw', *sys.argv[1:]])}", markup=False)
    return 1 if failed else 0


def _interrupted(console: Console, store: Store, run_ids: list[str]) -> None:
    """What was kept, and the user's own command, every option kept, so the resume trains what
    was asked."""
    if len(run_ids) == 1:
        what = f"Run {run_ids[0]} is stored as interrupted and resumes from its last whole epoch"
    elif run_ids:  # --ray: several runs were in training
        what = f"Runs {', '.join(run_ids)} are stored as interrupted and resume from their last whole epoch"
    else:
        what = "Nothing of the current run was stored (it had not started training)"
    console.print(f"\n[yellow]Interrupted.[/yellow] {what}; finished runs are kept in {escape(str(store.path))}.")
    console.print(f"Resume with: {shlex.join(['kerashw', *sys.argv[1:]])}  (finished runs are skipped)",
                  markup=False)
