"""The app's panes. State flows down as method calls from the app; user intent
goes up as messages (StartRequested) or app actions bound to keys."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, Static
from textual_plotext import PlotextPlot

from kerashw import estimate, report
from kerashw.config import Overrides
from kerashw.studies import STUDIES


class StudyTable(DataTable):
    """One row per study: runs, finished in the store, estimated time of the rest."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_column("study", key="study")
        self.add_column("runs", key="runs")
        self.add_column("done", key="done")
        self.add_column("est.", key="est")

    def refresh_rows(self, store, overrides: Overrides | None) -> None:
        keep = self.cursor_row
        self.clear()
        timings = estimate.Timings(store)  # one read of the store for every study
        for name, study in STUDIES.items():
            p = estimate.plan(study.specs(overrides), timings)
            self.add_row(name, str(p.runs), str(p.finished), p.estimate, key=name)
        if self.row_count:
            self.move_cursor(row=min(keep, self.row_count - 1))

    @property
    def selected(self) -> str:
        return list(STUDIES)[self.cursor_row] if self.row_count else next(iter(STUDIES))


@dataclass
class StartRequested(Message):
    pass


class SettingsForm(Vertical):
    """What people change before a start: epochs, data limit, seed, captcha folder.
    Empty means the study's own value. Escape leaves the fields for the study list."""

    BINDINGS = [Binding("escape", "leave", "Back to list", show=True)]

    FIELDS = (("epochs", "Epochs", "study's"), ("limit", "Limit", "all"),
              ("seed", "Seed", "42"), ("data", "Data", "synthetic"))

    def compose(self) -> ComposeResult:
        yield Label("Settings", classes="pane-title")
        for key, label, placeholder in self.FIELDS:
            with Horizontal(classes="field"):
                yield Label(label, classes="field-label")
                yield Input(placeholder=placeholder, id=f"set-{key}",
                            type="text" if key == "data" else "integer")
        yield Static("", id="settings-error")
        yield Button("Start (s)", id="start", variant="success")

    def overrides(self) -> Overrides:
        """The settings as Overrides; ValueError names the field and what is accepted."""
        values = {}
        for key, label, _ in self.FIELDS:
            text = self.query_one(f"#set-{key}", Input).value.strip()
            if not text:
                continue
            if key == "data":
                if not Path(text).expanduser().is_dir():
                    raise ValueError(f"Data: {text!r} is not a folder (a labelled captcha "
                                     "folder, or empty for the synthetic set)")
                values[key] = str(Path(text).expanduser())
                continue
            try:
                number = int(text)
            except ValueError:
                raise ValueError(f"{label}: {text!r} is not a whole number") from None
            if number < (0 if key == "seed" else 1):
                raise ValueError(f"{label}: {number} must be {'>= 0' if key == 'seed' else '>= 1'}")
            values[key] = number
        return Overrides(**values)

    def action_leave(self) -> None:
        self.app.query_one(StudyTable).focus()

    def check(self) -> Overrides | None:
        """Overrides, or None with the problem shown under the fields."""
        try:
            overrides = self.overrides()
        except ValueError as exc:
            self.query_one("#settings-error", Static).update(str(exc))
            return None
        self.query_one("#settings-error", Static).update("")
        return overrides

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            event.stop()
            self.post_message(StartRequested())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()  # Enter in a field starts, like a form's default button
        self.post_message(StartRequested())


class Curves(Horizontal):
    """Loss and accuracy per epoch, train vs val, redrawn after each epoch."""

    def compose(self) -> ComposeResult:
        yield PlotextPlot(id="loss-plot")
        yield PlotextPlot(id="acc-plot")

    def on_mount(self) -> None:
        self.draw([])

    def draw(self, history: list[dict]) -> None:
        for plot_id, key, title in (("#loss-plot", "loss", "loss"),
                                    ("#acc-plot", "top1", "top-1 % (captcha: mean of chars)")):
            widget = self.query_one(plot_id, PlotextPlot)
            plt = widget.plt
            plt.clear_data()
            plt.clear_figure()
            plt.title(title)
            for phase in ("train", "val"):
                points = [(r["epoch"], r[key] * (100 if key == "top1" else 1))
                          for r in history if r["phase"] == phase and r.get(key) is not None]
                if points:
                    xs, ys = zip(*points)
                    plt.plot(list(xs), list(ys), label=phase, marker="braille")
            epochs = sorted({r["epoch"] for r in history})
            if epochs:
                step = max(1, len(epochs) // 6)  # whole epochs, at most ~6 ticks
                plt.xticks(epochs[::step])
            if key == "top1":
                plt.ylim(0, 100)  # a fixed scale: one epoch's point would otherwise fill it
            widget.refresh()


class MetricsTable(DataTable):
    """The report's terms per epoch and phase: loss, top-1, top-3 or per character."""

    def start(self, task: str) -> None:
        self.clear(columns=True)
        self.kind = task
        cols = ["ep", "phase", "loss"]
        cols += ["c1", "c2", "c3", "c4", "whole"] if task == "captcha" else ["top-1", "top-3"]
        self.add_columns(*cols)

    def add_record(self, r: dict) -> None:
        cells = [f"{r['epoch']}/{r['epochs']}", r["phase"], f"{r['loss']:.4f}"]
        if getattr(self, "kind", "mnist") == "captcha":
            cells += [report.pct(r.get(f"{k}_acc")) for k in report.CHAR_KEYS]
            cells.append(report.pct(r.get("whole")))
        else:
            cells += [report.pct(r.get("top1")), report.pct(r.get("top3"))]
        self.add_row(*cells)
        self.move_cursor(row=self.row_count - 1)  # keep the newest line in view


class TrainView(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("No study running. Pick one on the Studies tab and press s.", id="run-status")
        with Horizontal(id="progress-row"):
            yield Label("", id="progress-label")
            yield ProgressBar(id="epoch-progress", show_eta=True)
        yield MetricsTable(id="metrics")
        yield Curves(id="curves")


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no question; dismisses with the answer."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str):
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Static(self.question, id="question")
            with Horizontal(id="confirm-buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
