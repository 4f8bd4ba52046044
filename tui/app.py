"""`kerashw-tui`: pick a study, watch it train live, cancel, compare results.

Training runs in one thread worker (TensorFlow is imported there, so the app
starts instantly); the worker talks to the app only through tui/messages.py.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.worker import get_current_worker
from textual.widgets import Footer, Header, TabbedContent, TabPane

from kerashw.config import DataError, TrainOptions
from kerashw.studies import get_study
from kerashw.stdio import fd2_to
from kerashw.store import Store
from tui.confirm import ConfirmScreen
from tui.messages import (FollowRequested, Notice, RunFailed, RunFinished, RunSkipped, StartRequested, StudyFinished,
                          StudyStarted, TuiListener)
from tui.results_pane import ResultsView
from tui.studies_pane import StudiesPane
from tui.train_pane import TrainPane


def train_run_study(specs, **kwargs):
    """The real trainer: kerashw.training.train.run_study, imported on first use, in the worker
    thread, so the app is on screen before TensorFlow has loaded."""
    from kerashw.training import train

    return train.run_study(specs, **kwargs)


class KerasHWApp(App):
    """The composition: three panes, the keys that span them, and the training worker.

    `run_study` is the trainer the worker calls, with kerashw.training.train.run_study's
    signature; tests pass a scripted one to drive the app in seconds."""

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

    def __init__(self, store: Store | None = None, options: TrainOptions = TrainOptions(),
                 run_study: Callable = train_run_study, skip_bad: bool = False):
        super().__init__()
        self.skip_bad = skip_bad  # captcha: part of each run's spec (--skip-bad)
        self.store = store or Store()
        self.options = options
        self.run_study = run_study
        self.cancel_event = threading.Event()
        self.running: str | None = None  # the study being trained
        self.last_statuses: dict = {}  # run id -> status of the last study
        self.studies = StudiesPane(self.store, options, id="studies-pane")
        self.train_pane = TrainPane(id="train-view")
        self.results = ResultsView(self.store, id="results-view")
        self.sub_title = str(self.store.path)
        self.startup_notice = ""  # said once the app is on screen (run_app: a store it had to create)

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="studies"):
            with TabPane("1 Studies", id="studies"):
                yield self.studies
            with TabPane("2 Train", id="train"):
                yield self.train_pane
            with TabPane("3 Results", id="results"):
                yield self.results
        yield Footer()

    def on_mount(self) -> None:
        self.studies.table.focus()
        if self.store.readonly:
            self.sub_title = f"{self.store.path} (read-only)"
        if self.startup_notice:
            self.notify(self.startup_notice, timeout=15)

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # Each tab's keys belong to its main table: focus it, so they work at once.
        {"studies": self.studies.table, "train": self.train_pane.metrics,
         "results": self.results.table}[event.pane.id].focus()

    # -- a study: start, the worker, cancel, quit --------------------------

    def on_start_requested(self, event: StartRequested) -> None:
        self.action_start()

    def action_start(self) -> None:
        if self.store.readonly:
            self.notify(f"{self.store.path} is read-only to you: its results can be browsed, not added to. "
                        "Start kerashw-tui with another --store to train.", severity="error", timeout=10)
            return
        if self.running:
            self.notify(f"Study {self.running!r} is running; cancel it first (c).", severity="warning")
            return
        name = self.studies.selected
        try:
            overrides = self.studies.overrides()
        except ValueError as exc:
            self.notify(str(exc), title="settings", severity="error", timeout=10)
            return
        if self.skip_bad:
            overrides = dataclasses.replace(overrides, extra={**overrides.extra, "skip_bad": True})
        specs = get_study(name, self.store.home).specs(overrides)
        self.cancel_event = threading.Event()
        self.running = name
        self.action_show_tab("train")
        self.train_pane.begin(name)
        self.train_study(name, specs, self.cancel_event, self.studies.distribute())

    @work(thread=True, exclusive=True, group="train", exit_on_error=False)
    def train_study(self, name: str, specs, cancel: threading.Event, distribute: str | None = None) -> None:
        # Messages go to the Train pane, which shows them; they bubble on to this app.
        post = self.train_pane.post_message
        listener = TuiListener(post, get_current_worker(), cancel)
        statuses = {}
        try:
            from kerashw import estimate

            from kerashw.identity import identify_for_display

            # the trainer identifies each run by its data's content; the plan does the same
            p = estimate.plan(identify_for_display(specs, self.options), self.store)
            post(StudyStarted(name, p.runs, p.finished, p.estimate))
            results = self.run_study(
                specs, store=self.store, studies=[name], listener=listener, cancel=cancel,
                options=dataclasses.replace(self.options, progress=listener.data_progress, distribute=distribute))
            statuses = {r.run_id: r.status for r in results}
        except DataError as exc:
            post(RunFailed(f"data error: {exc}"))
        except Exception as exc:  # shown in the app; the app stays up
            post(RunFailed(f"{type(exc).__name__}: {exc}"))
        finally:
            post(StudyFinished(name, statuses, cancel.is_set()))

    def action_cancel(self) -> None:
        if not self.running:
            followed = self.train_pane.followed
            if followed:
                self.notify(f"Run {followed[:8]} is trained by another process "
                            f"({self.store.owner(followed) or 'owner unknown'}); it cannot be cancelled "
                            "from here: press Ctrl-C where it runs.", severity="warning", timeout=8)
            else:
                self.notify("Nothing is training.", timeout=3)
            return
        self.cancel_event.set()
        for worker in self.workers:
            if worker.group == "train":
                worker.cancel()
        self.train_pane.cancelling()

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

    # -- what a study's messages change beyond the Train pane ----------------

    def on_follow_requested(self, m: FollowRequested) -> None:
        if self.running:
            self.notify(f"Study {self.running!r} is training here; follow another run after it ends.",
                        severity="warning")
            return
        self.train_pane.follow(self.store, m.run_id)
        self.action_show_tab("train")

    def on_run_skipped(self, m: RunSkipped) -> None:
        why = "already finished, reused" if m.status == "finished" else f"skipped, {m.status}"
        self.notify(f"run {m.index}/{m.total} {m.label}: {why}", timeout=3)

    def on_run_finished(self, m: RunFinished) -> None:
        severity = "information" if m.status == "finished" else "warning"
        self.notify(f"{m.run_id[:8]} {m.status} in {m.elapsed:.1f}s", severity=severity, timeout=5)
        self._refresh_stored()

    def on_run_failed(self, m: RunFailed) -> None:
        where = f"run {m.run_id[:8]}: " if m.run_id else ""
        self.notify(f"{where}{m.error}", title="training failed", severity="error", timeout=20)
        self._refresh_stored()

    def on_notice(self, m: Notice) -> None:
        self.notify(m.text, severity="warning", timeout=8)

    def on_study_finished(self, m: StudyFinished) -> None:
        self.running = None
        self.last_statuses = m.statuses
        self._refresh_stored()

    def _refresh_stored(self) -> None:
        self.studies.refresh_studies()
        self.results.reload()


def run_app(store_path=None, mnist=None, skip_bad=False) -> int:
    """Open the app on a store; returns the exit code."""
    import click

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")
    path = Store.resolve(store_path)
    created = not path.exists()  # said on screen: a mistyped --store shows as a new, empty store
    try:
        readonly = not created and not Store.writable(path)  # browse a store you cannot write
        store = Store(store_path, readonly=readonly)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--store") from None
    log = (Path(tempfile.gettempdir()) / f"kerashw-tui-{os.getpid()}.log") if readonly else \
        store.home / "tui-stderr.log"
    app = KerasHWApp(store, TrainOptions(mnist=mnist), skip_bad=skip_bad)
    if created:
        app.startup_notice = f"New, empty results store: {store.path} (there was none at this --store)"
    start = log.stat().st_size if log.exists() else 0
    with divert_stderr(log):
        app.run()
    if app.return_code:  # Textual printed the traceback while stderr was diverted
        with open(log, errors="replace") as f:
            f.seek(start)
            sys.stderr.write(f.read()[-6000:])
        sys.stderr.write(f"\nkerashw-tui stopped on an error; full log: {log}\n")
    return app.return_code or 0


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
