"""Train tab: the study's status, the epoch's progress, the metrics per epoch and phase,
and the loss/accuracy curves. The training thread's listener posts its messages
here; this pane owns what they change on screen, and they bubble on to the app,
which keeps track of the study as a whole."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import var
from textual.widgets import DataTable, Label, ProgressBar, Static
from textual_plotext import PlotextPlot

from kerashw import tasks
from kerashw.reports import tables
from tui.messages import (EpochEnded, EpochStarted, RunFailed, RunStarted, StepProgress, StudyFinished,
                          StudyStarted)

IDLE = "No study running. Pick one on the Studies tab and press s."


class Curves(Horizontal):
    """Loss and accuracy per epoch, train vs val, redrawn after each epoch."""

    def compose(self) -> ComposeResult:
        yield PlotextPlot(id="loss-plot")
        yield PlotextPlot(id="acc-plot")

    def on_mount(self) -> None:
        self.draw([])

    def draw(self, history: list) -> None:
        for plot_id, key, title in (("#loss-plot", "loss", "loss"),
                                    ("#acc-plot", "top1", "top-1 % (captcha: mean of chars)")):
            widget = self.query_one(plot_id, PlotextPlot)
            plt = widget.plt
            plt.clear_data()
            plt.clear_figure()
            values = []
            for phase in ("train", "val"):
                points = [(r.epoch, r.get(key) * (100 if key == "top1" else 1))
                          for r in history if r.phase == phase and r.get(key) is not None]
                if len(points) == 1:  # a line through one point draws nothing: a one-epoch run is a point
                    plt.scatter([points[0][0]], [points[0][1]], label=phase, marker="●")
                elif points:
                    xs, ys = zip(*points)
                    plt.plot(list(xs), list(ys), label=phase, marker="braille")
                values += [y for _, y in points]
            epochs = sorted({r.epoch for r in history})
            if epochs:
                step = max(1, len(epochs) // 6)  # whole epochs, at most ~6 ticks
                plt.xticks(epochs[::step])
            lo, hi = y_range(values, percent=key == "top1")
            plt.ylim(lo, hi)
            # the range follows the data (curves between 95 and 99.9 % would lie flat on 0-100): say so
            plt.title(f"{title}  [{lo:.4g}, {hi:.4g}]" if values else title)
            widget.refresh()


def y_range(values: list, percent: bool) -> tuple[float, float]:
    """The plotted range: the data's, with a margin of a tenth of its spread (at least a point
    on a % axis, a tenth of the value on a loss axis, so one value is not a flat line at an
    edge); a % axis stays within 0-100."""
    if not values:
        return (0.0, 100.0) if percent else (0.0, 1.0)
    lo, hi = min(values), max(values)
    pad = max((hi - lo) / 10, 1.0 if percent else abs(hi) / 10 or 0.1)
    lo, hi = lo - pad, hi + pad
    return (max(0.0, lo), min(100.0, hi)) if percent else (max(0.0, lo) if min(values) >= 0 else lo, hi)


class MetricsTable(DataTable):
    """The report's terms per epoch and phase: loss, top-1, top-3 or per character."""

    def start(self, task: str) -> None:
        self.clear(columns=True)
        self.columns_shown = tasks.get(task).columns  # the run's task's accuracies
        self.add_columns("ep", "phase", "loss", *(c.header for c in self.columns_shown))

    def add_record(self, r) -> None:
        loss = r.get("loss")
        cells = [f"{r.epoch}/{r.epochs}", r.phase, "" if loss is None else f"{loss:.4f}"]
        cells += [tables.pct(r.get(c.key)) for c in getattr(self, "columns_shown", ())]
        self.add_row(*cells)
        self.move_cursor(row=self.row_count - 1)  # keep the newest line in view


class TrainPane(Vertical):
    """The Train tab. Its state is three reactives, each with the watcher that shows it:
    `history` (the shown run's phase records: the curves), `progress` (the label and the
    bar), `followed` (a run another process trains: the poll timer)."""

    history: var[tuple] = var(())  # the shown run's PhaseRecords, oldest first
    progress: var[tuple] = var(("", 0, 0))  # (label, done, total): an epoch's steps, or epochs followed
    followed: var[str | None] = var(None)  # a run another process trains, shown here

    FOLLOW_POLL = 1.0  # seconds between reads of a followed run's epochs

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.status = Static(IDLE, id="run-status")
        self.progress_label = Label("", id="progress-label")
        self.bar = ProgressBar(id="epoch-progress", show_eta=True)
        self.metrics = MetricsTable(id="metrics")
        self.curves = Curves(id="curves")
        self.study = ""  # the study training now, or last
        self.last_error = ""  # kept for the study's summary line; toasts fade
        self.follow_store = None
        self.follow_epochs = 0
        self.follow_timer = None

    def compose(self) -> ComposeResult:
        yield self.status
        with Horizontal(id="progress-row"):
            yield self.progress_label
            yield self.bar
        yield self.metrics
        yield self.curves

    # -- the watchers: what each piece of state looks like on screen --

    def watch_history(self, old: tuple, new: tuple) -> None:
        # a test phase adds nothing to the curves (they show train and val)
        if not new or not old or new[-1].phase != "test":
            self.curves.draw(list(new))

    def watch_progress(self, old: tuple, new: tuple) -> None:
        label, done, total = new
        self.progress_label.update(label)
        if done == 0:
            self.bar.update(total=None)  # restarts the ETA estimate
        self.bar.update(total=total or None, progress=done)

    def watch_followed(self, old: str | None, new: str | None) -> None:
        if self.follow_timer is not None:
            self.follow_timer.stop()
            self.follow_timer = None
        if new is not None:
            self.follow_timer = self.set_interval(self.FOLLOW_POLL, self.poll_followed)
            self.poll_followed()

    # -- a study trained here, as its messages arrive --

    def begin(self, study: str) -> None:
        """A start, before the worker has said anything (TensorFlow may take seconds to load)."""
        self.followed = None
        self.study, self.history, self.last_error = study, (), ""
        self.status.update(f"study {study}: loading TensorFlow and data…")

    def cancelling(self) -> None:
        self.status.update(f"study {self.study}: cancelling; the current run is stored as interrupted…")

    def on_study_started(self, m: StudyStarted) -> None:
        self.status.update(f"study {m.study}: {m.runs} run(s), {m.finished} already finished, "
                           f"estimated {m.estimate}")

    def on_run_started(self, m: RunStarted) -> None:
        self.status.update(f"[b]{self.study}[/b] run {m.index}/{m.total}: {m.label}  "
                           f"[dim]{m.run_id[:8]} · {m.params[0]:,} params[/dim]")
        self.metrics.start(m.task)
        self.history = ()

    def on_epoch_started(self, m: EpochStarted) -> None:
        self.progress = (f"epoch {m.epoch}/{m.epochs}", 0, m.steps)

    def on_step_progress(self, m: StepProgress) -> None:
        label = m.description[:24] if m.description else self.progress[0]
        self.progress = (label, m.step, m.steps)

    def on_epoch_ended(self, m: EpochEnded) -> None:
        self.metrics.add_record(m.record)
        self.history = (*self.history, m.record)

    # -- following a run another process trains (kerashw train in another terminal) --

    def follow(self, store, run_id: str) -> None:
        """Show a run as another process stores its epochs; it cannot be cancelled here."""
        self.followed = None
        row = store.get(run_id)
        self.follow_store, self.follow_epochs = store, row.spec.get("epochs", 0)
        self.metrics.start(row.task)
        self.history = ()
        self.progress = ("", 0, 0)
        self.followed = run_id

    def unfollow(self) -> None:
        self.followed = None

    def poll_followed(self) -> None:
        store, run_id = self.follow_store, self.followed
        if run_id is None:
            return
        row = store.get(run_id)
        records = store.epochs(run_id)
        new = records[len(self.history):]
        for record in new:
            self.metrics.add_record(record)
        if new:  # redrawn only when the other process stored something
            self.history = (*self.history, *new)
            done = max(r.epoch for r in records)
            self.progress = (f"epoch {done}/{self.follow_epochs}", done, self.follow_epochs)
        if row.status == "running":
            self.status.update(f"following [b]{row.label}[/b] [dim]{run_id[:8]}[/dim]: trained elsewhere "
                               f"({store.owner(run_id) or 'owner unknown'}); it cannot be cancelled from here")
        else:
            self.status.update(f"followed run {run_id[:8]} {row.label}: {row.status} "
                               f"(trained elsewhere). Results on tab 3.")
            self.followed = None

    def on_run_failed(self, m: RunFailed) -> None:
        where = f"run {m.run_id[:8]}: " if m.run_id else ""
        self.last_error = f"{where}{m.error}"
        self.status.update(f"[red]{self.last_error}[/red]")

    def on_study_finished(self, m: StudyFinished) -> None:
        counts: dict[str, int] = {}
        for status in m.statuses.values():
            counts[status] = counts.get(status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no runs"
        if m.cancelled:
            self.status.update(f"{m.study} cancelled: {summary}. s resumes (finished runs skipped)")
        elif "failed" in counts:
            self.status.update(f"[red]study {m.study} done: {summary}. Last error: {self.last_error}[/red]")
        elif m.statuses:
            self.status.update(f"study {m.study} done: {summary}. Results on tab 3.")
