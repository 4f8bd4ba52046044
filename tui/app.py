"""`kerashw-tui`: pick a study, watch it train live, cancel, compare results.

Training runs in one thread worker (TensorFlow is imported there, so the app
starts instantly); the worker talks to the app only through tui/messages.py.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import os
import sys
import threading
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.worker import get_current_worker
from textual.widgets import DataTable, Footer, Header, Label, ProgressBar, Static, TabbedContent, TabPane

from kerashw.config import DataError, TrainOptions
from kerashw.studies import STUDIES, get_study
from kerashw.stdio import fd2_to
from kerashw.store import Store
from tui.messages import (EpochEnded, EpochStarted, Notice, RunFailed, RunFinished, RunSkipped,
                          RunStarted, StepProgress, StudyFinished, StudyStarted, TuiListener)
from tui.results import ResultsView
from tui.widgets import (ConfirmScreen, Curves, MetricsTable, SettingsForm, StartRequested,
                         StudyTable, TrainView)


def _while_mounted(handler):
    """Messages from the training thread (and a table's late row events) can still
    arrive while the app shuts down: once the widgets are gone there is nothing to update."""

    @functools.wraps(handler)
    def guarded(self, message):
        try:
            return handler(self, message)
        except NoMatches:
            return None

    return guarded


class KerasHWApp(App):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # also for subclasses defined elsewhere
    TITLE = "kerashw"
    BINDINGS = [
        Binding("s", "start", "Start"),
        Binding("c", "cancel", "Cancel"),
        Binding("1", "show_tab('studies')", "Studies", show=False),
        Binding("2", "show_tab('train')", "Train", show=False),
        Binding("3", "show_tab('results')", "Results", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, store: Store | None = None, mnist: str | None = None, skip_bad: bool = False):
        super().__init__()
        self.store = store or Store()
        self.options = TrainOptions(mnist=mnist, skip_bad=skip_bad)
        self.cancel_event = threading.Event()
        self.running: str | None = None  # the study being trained
        self.history: list[dict] = []  # phase records of the current run
        self.last_statuses: dict = {}  # run id -> status of the last study
        self.last_error = ""  # kept for the study's summary line; toasts fade
        self.sub_title = str(self.store.path)

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="studies"):
            with TabPane("1 Studies", id="studies"):
                with Horizontal():
                    with Vertical(id="study-left"):
                        yield StudyTable(id="study-table")
                        yield Static("", id="study-detail")
                    yield SettingsForm(id="settings")
            with TabPane("2 Train", id="train"):
                yield TrainView(id="train-view")
            with TabPane("3 Results", id="results"):
                yield ResultsView(self.store, id="results-view")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_studies()
        self.query_one(StudyTable).focus()

    # -- studies -----------------------------------------------------------

    def _overrides(self):
        return self.query_one(SettingsForm).check()  # None (defaults) while a field is invalid

    def refresh_studies(self) -> None:
        self.query_one(StudyTable).refresh_rows(self.store, self._overrides())
        self.show_detail()

    def show_detail(self) -> None:
        name = self.query_one(StudyTable).selected
        study = STUDIES[name]
        lines = [f"[b]{name}[/b]: {study.description}"]
        for spec in study.specs(self._overrides()):
            mark = "✓" if self.store.status(spec.run_id) == "finished" else "·"
            lines.append(f" {mark} {spec.label()}  [dim]{spec.run_id[:8]}[/dim]")
        lines.append("[dim] ✓ finished in the store: a start skips it[/dim]")
        self.query_one("#study-detail", Static).update("\n".join(lines))

    @_while_mounted
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "study-table":
            self.show_detail()

    def on_input_changed(self, event) -> None:
        self.refresh_studies()  # run ids, finished counts and estimates follow the settings

    def on_start_requested(self, event: StartRequested) -> None:
        self.action_start()

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # Each tab's keys belong to its main table: focus it, so they work at once.
        target = {"studies": "#study-table", "train": "#metrics", "results": "#runs"}
        self.query_one(target[event.pane.id]).focus()

    def action_start(self) -> None:
        if self.running:
            self.notify(f"Study {self.running!r} is running; cancel it first (c).", severity="warning")
            return
        name = self.query_one(StudyTable).selected
        try:
            overrides = self.query_one(SettingsForm).overrides()
        except ValueError as exc:
            self.notify(str(exc), title="settings", severity="error", timeout=10)
            return
        specs = get_study(name).specs(overrides)
        self.cancel_event = threading.Event()
        self.running = name
        self.history = []
        self.last_error = ""
        self.action_show_tab("train")
        self.query_one("#run-status", Static).update(f"study {name}: loading TensorFlow and data…")
        self.train_study(name, specs, self.cancel_event)

    @work(thread=True, exclusive=True, group="train", exit_on_error=False)
    def train_study(self, name: str, specs, cancel: threading.Event) -> None:
        listener = TuiListener(self.post_message, get_current_worker(), cancel)
        statuses = {}
        try:
            from kerashw import estimate, train  # TensorFlow loads here, off the UI thread

            p = estimate.plan(specs, self.store)
            self.post_message(StudyStarted(name, p.runs, p.finished, p.estimate))
            results = train.run_study(
                specs, store=self.store, studies=[name], listener=listener, cancel=cancel,
                options=dataclasses.replace(self.options, progress=listener.data_progress))
            statuses = {r.run_id: r.status for r in results}
        except DataError as exc:
            self.post_message(RunFailed(f"data error: {exc}"))
        except Exception as exc:  # shown in the app; the app stays up
            self.post_message(RunFailed(f"{type(exc).__name__}: {exc}"))
        finally:
            self.post_message(StudyFinished(name, statuses, cancel.is_set()))

    def action_cancel(self) -> None:
        if not self.running:
            self.notify("Nothing is training.", timeout=3)
            return
        self.cancel_event.set()
        for worker in self.workers:
            if worker.group == "train":
                worker.cancel()
        self.query_one("#run-status", Static).update(
            f"study {self.running}: cancelling; the current run is stored as interrupted…")

    async def action_quit(self) -> None:
        if not self.running:
            self.exit()
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.action_cancel()
                self.exit()

        self.push_screen(ConfirmScreen(f"Study {self.running!r} is training.\nCancel it (the current "
                                       "run is stored as interrupted) and quit?"), answer)

    # -- messages from the training thread -----------------------------------

    def _status(self, text: str) -> None:
        self.query_one("#run-status", Static).update(text)

    @_while_mounted
    def on_study_started(self, m: StudyStarted) -> None:
        self._status(f"study {m.study}: {m.runs} run(s), {m.finished} already finished, "
                     f"estimated {m.estimate}")

    @_while_mounted
    def on_run_started(self, m: RunStarted) -> None:
        self.history = []
        self._status(f"[b]{self.running}[/b] run {m.index}/{m.total}: {m.label}  "
                     f"[dim]{m.run_id[:8]} · {m.params[0]:,} params[/dim]")
        self.query_one(MetricsTable).start(m.task)
        self.query_one(Curves).draw([])

    def on_run_skipped(self, m: RunSkipped) -> None:
        self.notify(f"run {m.index}/{m.total} {m.label}: already finished, reused", timeout=3)

    @_while_mounted
    def on_epoch_started(self, m: EpochStarted) -> None:
        self.query_one("#progress-label", Label).update(f"epoch {m.epoch}/{m.epochs}")
        bar = self.query_one("#epoch-progress", ProgressBar)
        bar.update(total=None)  # restarts the ETA estimate for the new epoch
        bar.update(total=m.steps, progress=0)

    @_while_mounted
    def on_step_progress(self, m: StepProgress) -> None:
        if m.description:
            self.query_one("#progress-label", Label).update(m.description[:24])
        self.query_one("#epoch-progress", ProgressBar).update(total=m.steps, progress=m.step)

    @_while_mounted
    def on_epoch_ended(self, m: EpochEnded) -> None:
        self.history.append(m.record)
        self.query_one(MetricsTable).add_record(m.record)
        if m.record["phase"] != "test":
            self.query_one(Curves).draw(self.history)

    @_while_mounted
    def on_run_finished(self, m: RunFinished) -> None:
        severity = "information" if m.status == "finished" else "warning"
        self.notify(f"{m.run_id[:8]} {m.status} in {m.elapsed:.1f}s", severity=severity, timeout=5)
        self._refresh_stored()

    @_while_mounted
    def on_run_failed(self, m: RunFailed) -> None:
        where = f"run {m.run_id[:8]}: " if m.run_id else ""
        self.last_error = f"{where}{m.error}"
        self.notify(f"{where}{m.error}", title="training failed", severity="error", timeout=20)
        self._status(f"[red]{where}{m.error}[/red]")
        self._refresh_stored()

    def on_notice(self, m: Notice) -> None:
        self.notify(m.text, severity="warning", timeout=8)

    @_while_mounted
    def on_study_finished(self, m: StudyFinished) -> None:
        self.running = None
        self.last_statuses = m.statuses
        counts = {}
        for status in m.statuses.values():
            counts[status] = counts.get(status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no runs"
        if m.cancelled:
            self._status(f"{m.study} cancelled: {summary}. s resumes (finished runs skipped)")
        elif "failed" in counts:
            self._status(f"[red]study {m.study} done: {summary}. Last error: {self.last_error}[/red]")
        elif m.statuses:
            self._status(f"study {m.study} done: {summary}. Results on tab 3.")
        self._refresh_stored()

    def _refresh_stored(self) -> None:
        self.refresh_studies()
        self.query_one(ResultsView).reload()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="kerashw-tui", description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="results folder or .db (default ./kerashw-runs or $KERASHW_HOME)")
    parser.add_argument("--mnist", help="MNIST mnist.npz or IDX folder (else $KERASHW_MNIST, Keras's cache)")
    parser.add_argument("--skip-bad", action="store_true", help="captcha: skip unreadable images")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")
    try:
        store = Store(args.store)
    except ValueError as exc:
        parser.error(str(exc))
    log = store.home / "tui-stderr.log"
    app = KerasHWApp(store, mnist=args.mnist, skip_bad=args.skip_bad)
    start = log.stat().st_size if log.exists() else 0
    with divert_stderr(log):
        app.run()
    if app.return_code:  # Textual printed the traceback while stderr was diverted
        with open(log, errors="replace") as f:
            f.seek(start)
            sys.stderr.write(f.read()[-6000:])
        sys.stderr.write(f"\nkerashw-tui stopped on an error; full log: {log}\n")
    sys.exit(app.return_code or 0)


@contextlib.contextmanager
def divert_stderr(log: Path):
    """TensorFlow's C++ code writes start-up notes and warnings straight to file
    descriptor 2, which would draw over the UI. Textual draws on sys.__stderr__, so
    it gets a duplicate of the terminal and fd 2 goes to a log file meanwhile."""
    if not os.isatty(2):
        yield
        return
    saved = sys.__stderr__
    with open(log, "a") as sink, fd2_to(sink.fileno()) as terminal:
        sys.__stderr__ = os.fdopen(terminal, "w", closefd=False)
        try:
            yield
        finally:
            sys.__stderr__ = saved


if __name__ == "__main__":
    main()
