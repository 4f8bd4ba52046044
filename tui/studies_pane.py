"""Studies tab: every study with its runs, what is finished and an estimated time;
the selected study's runs; the settings a start applies. The pane owns its events
(row changes, typing) and tells the app only one thing: start (StartRequested)."""
from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from kerashw import estimate
from kerashw.config import Overrides, TrainOptions
from kerashw.identity import identify_for_display
from kerashw.store import StoreError
from kerashw.studies import STUDIES, available
from tui.messages import LeaveSettings, StartRequested


class StudyTable(DataTable):
    """One row per study: runs, finished in the store, estimated time of the rest."""

    studies: dict = dict(STUDIES)  # what the rows show: built-ins, then the store's study files
    problems: list = []  # study files that could not be read

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_column("study", key="study")
        self.add_column("runs", key="runs")
        self.add_column("done", key="done")
        self.add_column("est.", key="est")

    def refresh_rows(self, store, overrides: Overrides | None, options: TrainOptions) -> None:
        keep = self.cursor_row
        self.clear()
        timings = estimate.Timings(store)  # one read of the store for every study
        # the built-in studies, then the store's studies/*.toml (re-read: a file saved meanwhile shows)
        self.studies, self.problems = available(store.home)
        for name, study in self.studies.items():
            problems: list[str] = []
            p = estimate.plan(identify_for_display(study.specs(overrides), options, problems), timings)
            # "?": its data cannot be read now (no MNIST file, a missing folder), so its done count is unknown
            self.add_row(name, str(p.runs), "?" if problems else str(p.finished), p.estimate, key=name)
        if self.row_count:
            self.move_cursor(row=min(keep, self.row_count - 1))

    @property
    def selected(self) -> str:
        return list(self.studies)[self.cursor_row] if self.row_count else next(iter(self.studies))


class SettingsForm(Vertical):
    """What people change before a start: epochs, data limit, seed, captcha folder.
    Empty means the study's own value. Escape leaves the fields for the study list."""

    BINDINGS = [Binding("escape", "leave", "Back to list", show=True)]

    FIELDS = (("epochs", "Epochs", "study's"), ("limit", "Limit", "all"),
              ("seed", "Seed", "42"), ("data", "Data", "synthetic"))

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inputs = {key: Input(placeholder=placeholder, id=f"set-{key}",
                                  type="text" if key == "data" else "integer")
                       for key, _, placeholder in self.FIELDS}
        # tf.distribute, as `kerashw train --distribute` (kerashw.training.distribute); none of it
        # changes a run's numbers, so it is not an override
        self.devices = Select(self.DEVICES, value="one", allow_blank=False, compact=True, id="set-devices")
        self.error = Static("", id="settings-error")

    DEVICES = (("one device", "one"), ("mirrored: all GPUs", "mirrored"), ("multiworker: TF_CONFIG", "multiworker"))

    def compose(self) -> ComposeResult:
        yield Label("Settings", classes="pane-title")
        for key, label, _ in self.FIELDS:
            with Horizontal(classes="field"):
                yield Label(label, classes="field-label")
                yield self.inputs[key]
        with Horizontal(classes="field"):
            yield Label("Devices", classes="field-label")
            yield self.devices
        yield self.error
        yield Button("Start (s)", id="start", variant="success")

    def overrides(self) -> Overrides:
        """The settings as Overrides; ValueError names the field and what is accepted."""
        values = {}
        for key, label, _ in self.FIELDS:
            text = self.inputs[key].value.strip()
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

    def distribute(self) -> str | None:
        """The Devices choice as TrainOptions.distribute."""
        return None if self.devices.value == "one" else str(self.devices.value)

    def action_leave(self) -> None:
        self.post_message(LeaveSettings())

    def check(self) -> Overrides | None:
        """Overrides, or None with the problem shown under the fields."""
        try:
            overrides = self.overrides()
        except ValueError as exc:
            self.error.update(str(exc))
            return None
        self.error.update("")
        return overrides

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            event.stop()
            self.post_message(StartRequested())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()  # Enter in a field starts, like a form's default button
        self.post_message(StartRequested())


class StudiesPane(Horizontal):
    """The study list and the selected study's runs on the left, settings on the right."""

    def __init__(self, store, options: TrainOptions = TrainOptions(), **kwargs):
        super().__init__(**kwargs)
        self.store = store
        self.options = options  # where MNIST comes from: part of each run's identity
        self.table = StudyTable(id="study-table")
        self.detail = Static("", id="study-detail")
        self.settings = SettingsForm(id="settings")

    def compose(self) -> ComposeResult:
        with Vertical(id="study-left"):
            yield self.table
            yield self.detail
        yield self.settings

    def on_mount(self) -> None:
        self.refresh_studies()

    @property
    def selected(self) -> str:
        return self.table.selected

    def select(self, study: str) -> None:
        self.table.move_cursor(row=list(self.table.studies).index(study))

    def overrides(self) -> Overrides:
        """The settings; ValueError (naming the field) while one is invalid."""
        return self.settings.overrides()

    def distribute(self) -> str | None:
        return self.settings.distribute()

    def refresh_studies(self) -> None:
        """Run ids, finished counts and estimates follow the settings as typed."""
        overrides = self.settings.check()  # None (the defaults) while a field is invalid
        try:
            self.table.refresh_rows(self.store, overrides, self.options)
            self.show_detail(overrides)
        except StoreError as exc:  # the Results tab says what is wrong; the list stays usable
            self.detail.update(f"[red]{escape(str(exc))}[/red]")

    def show_detail(self, overrides: Overrides | None) -> None:
        name = self.table.selected
        study = self.table.studies[name]
        lines = [f"[b]{name}[/b]: {study.description}"]
        problems: list[str] = []
        specs = identify_for_display(study.specs(overrides), self.options, problems)
        seeds = len({s.seed for s in specs}) > 1  # a seed sweep: its runs' labels differ in the seed only
        for spec in specs:
            mark = "✓" if self.store.status(spec.run_id) == "finished" else "·"
            label = f"seed={spec.seed}, {spec.label()}" if seeds else spec.label()
            lines.append(f" {mark} {label}  [dim]{spec.run_id[:8]}[/dim]")
        lines.append("[dim] ✓ finished in the store: a start skips it[/dim]")
        if problems:
            lines.append(f"[yellow] done ?: {escape(problems[0])}[/yellow]")
        for problem in self.table.problems:  # a study file of the store that could not be read
            lines.append(f"[red] not listed: {escape(problem)}[/red]")
        self.detail.update("\n".join(lines))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        try:
            self.show_detail(self.settings.check())
        except StoreError as exc:
            self.detail.update(f"[red]{escape(str(exc))}[/red]")

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.refresh_studies()

    def on_leave_settings(self, event: LeaveSettings) -> None:
        self.table.focus()
