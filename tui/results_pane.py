"""Results tab: every stored run, sortable; select runs to compare against a pinned
baseline; export the comparison (CSV + Markdown) or a run's model (SavedModel)."""
from __future__ import annotations

import time

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from rich.markup import escape

from kerashw.reports import tables
from kerashw.store import StoreError
from tui.images import ImagesScreen
from tui.messages import FollowRequested


def _sort_key(cell):
    """Numbers as numbers ("1,234", "96.65"), blanks last, text as text."""
    text = str(cell).replace(",", "").rstrip(" *")
    try:
        return (0, float(text))
    except ValueError:
        return (1 if text else 2, text)


# Dropped first when the runs table is wider than the pane (the run id and status never are;
# they also stay fixed when the table scrolls sideways): the least looked-at columns first.
DROP_ORDER = ("studies", "params", "best ep", "sec", "train", "best val", "top3", "val")


def fit_columns(headers: list[str], cells: list[list[str]], width: int) -> list[int]:
    """The indices of the columns to show within `width` cells (a column takes its widest
    cell plus 2 of padding); every column when width is 0 (not laid out yet)."""
    sizes = [max([len(h), *(len(r[i]) for r in cells)]) + 2 for i, h in enumerate(headers)]
    keep = list(range(len(headers)))
    for name in DROP_ORDER:
        if not width or sum(sizes[i] for i in keep) + 3 <= width:  # + the mark column
            break
        if name in headers:
            keep.remove(headers.index(name))
    return keep


class ResultsView(Vertical):
    BINDINGS = [
        Binding("space", "toggle_select", "Select"),
        Binding("p", "pin", "Pin base"),
        Binding("v", "compare", "Compare"),
        Binding("o", "sort_next", "Sort"),
        Binding("e", "export_compare", "Export cmp"),
        Binding("x", "export_model", "Export model"),
        Binding("r", "reload", "Reload"),
        Binding("f", "follow", "Follow"),
        Binding("i", "images", "Images"),
    ]
    POLL = 2.0  # seconds between looks at the store while a run in it is running

    def __init__(self, store, **kwargs):
        super().__init__(**kwargs)
        self.store = store
        self.rows = {}  # run id -> RunRow, as last loaded
        self._seen: list = []  # (id, status, ended) as last loaded
        self.selected: list[str] = []  # in the order the user picked them
        self.baseline: str | None = None
        self.sort_column: str | None = None
        self.sort_reverse = False
        self.comparison: tuple[list[str], list[list[str]]] | None = None
        self.table = DataTable(id="runs", cursor_type="row")
        self.title_line = Static("space select · p pin baseline · v compare · o sort · "
                                 "e export comparison · x export model · f follow a running run · i pictures", id="compare-title")
        self.compare_table = DataTable(id="compare", cursor_type="row")

    def compose(self) -> ComposeResult:
        yield self.table
        yield self.title_line
        yield self.compare_table

    def on_mount(self) -> None:
        self.reload()
        self.set_interval(self.POLL, self.poll)

    def on_resize(self) -> None:
        # columns dropped or brought back to fit the new width, once the new size is laid out
        # (from the rows already read: a resize is no reason to read the store)
        self.call_after_refresh(self.reload, list(self.rows.values()))

    def poll(self) -> None:
        """While any stored run is running (here or in another process) the table is
        redrawn from the store; otherwise only when a status changed."""
        try:
            rows = self.store.runs()
        except StoreError:
            return
        seen = [(r.id, r.status, r.ended) for r in rows]
        if any(r.status == "running" for r in rows) or seen != self._seen:
            self.reload(rows)

    def _highlighted(self, status: str, needs: str):
        """The highlighted run if it has `status`, else None with a note saying why not."""
        run_id = self.current()
        if run_id is None:
            return None
        row = self.rows[run_id]
        if row.status != status:
            self.app.notify(f"{run_id[:8]} is {row.status}: {needs}", timeout=5)
            return None
        return row

    def action_images(self) -> None:
        """The highlighted finished run's mistakes (and captcha preview) as pictures."""
        row = self._highlighted("finished", "pictures need a finished run's model")
        if row is not None:
            self.app.push_screen(ImagesScreen(self.store, row, self.app.options))

    def action_follow(self) -> None:
        """Watch the highlighted running run on the Train tab as another process trains it."""
        row = self._highlighted("running", "only a running run can be followed")
        if row is not None:
            self.post_message(FollowRequested(row.id))
    # -- the runs table ------------------------------------------------------

    def reload(self, rows=None) -> None:
        """Redraw the table from the store (or from `rows`, just read from it)."""
        table = self.table
        try:
            rows = self.store.runs() if rows is None else rows
        except StoreError as exc:  # a damaged store: say so here, keep the app up
            table.clear(columns=True)
            table.add_column("the store cannot be read")
            self.title_line.update(f"[red]{escape(str(exc))}[/red]")
            self.app.notify(str(exc), title="results store", severity="error", timeout=20)
            return
        self.rows = {r.id: r for r in rows}
        self._seen = [(r.id, r.status, r.ended) for r in rows]
        self.selected = [i for i in self.selected if i in self.rows]
        if self.baseline not in self.rows:
            self.baseline = None
        keep = table.cursor_row
        table.clear(columns=True)
        if not rows:
            table.add_column("no runs yet: start a study on the Studies tab")
            return
        headers, cells = tables.result_rows(rows)
        shown = fit_columns(headers, cells, table.size.width)
        headers, cells = [headers[i] for i in shown], [[c[i] for i in shown] for c in cells]
        table.add_column("", key="mark")
        for h in headers:
            table.add_column(h, key=h)
        table.fixed_columns = 3  # the mark, the run id and its status stay in view when scrolled sideways
        for row, values in zip(rows, cells):
            table.add_row(self._mark(row.id), *values, key=row.id)
        if self.sort_column in headers:
            table.sort(self.sort_column, key=_sort_key, reverse=self.sort_reverse)
        table.move_cursor(row=min(keep, table.row_count - 1))

    def _mark(self, run_id: str) -> str:
        return ("*" if run_id == self.baseline else "") + ("✓" if run_id in self.selected else "")

    def _remark(self) -> None:
        table = self.table
        for run_id in self.rows:
            table.update_cell(run_id, "mark", self._mark(run_id), update_width=True)

    def current(self) -> str | None:
        table = self.table
        if not self.rows or table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        if event.data_table.id != "runs" or event.column_key.value == "mark":
            return
        column = event.column_key.value
        self.sort_reverse = not self.sort_reverse if column == self.sort_column else False
        self.sort_column = column
        event.data_table.sort(column, key=_sort_key, reverse=self.sort_reverse)

    def action_sort_next(self) -> None:
        table = self.table
        keys = [c.value for c in table.columns if c.value != "mark"]
        if not self.rows or not keys:
            return
        i = keys.index(self.sort_column) + 1 if self.sort_column in keys else 0
        self.sort_column, self.sort_reverse = keys[i % len(keys)], False
        # numbers read best largest first; text A-Z
        sample = next(iter(table.get_column(self.sort_column)), "")
        self.sort_reverse = _sort_key(sample)[0] == 0
        table.sort(self.sort_column, key=_sort_key, reverse=self.sort_reverse)
        self.notify(f"sorted by {self.sort_column}", timeout=1.5)

    def action_reload(self) -> None:
        self.reload()

    # -- selection and comparison -------------------------------------------

    def action_toggle_select(self) -> None:
        run_id = self.current()
        if run_id is None:
            return
        if run_id in self.selected:
            self.selected.remove(run_id)
        else:
            self.selected.append(run_id)
        self._remark()

    def action_pin(self) -> None:
        run_id = self.current()
        if run_id is None:
            return
        self.baseline = run_id
        if run_id not in self.selected:
            self.selected.insert(0, run_id)
        self._remark()
        self.notify(f"baseline: {run_id[:8]} {self.rows[run_id].label}", timeout=3)

    def action_compare(self) -> None:
        if len(self.selected) < 2:
            self.notify("Select at least two runs with space (p pins the baseline)",
                        severity="warning")
            return
        baseline = self.baseline or self.selected[0]
        rows = [self.rows[i] for i in sorted(self.selected, key=lambda i: i != baseline)]  # baseline first
        headers, cells = tables.compare_rows(rows, baseline)
        self.comparison = (headers, cells)
        table = self.compare_table
        table.clear(columns=True)
        table.add_columns(*headers)
        table.add_rows(cells)
        self.title_line.update(
            f"comparing {len(rows)} runs against * {baseline[:8]} "
            f"({self.rows[baseline].label}); Δ in points, seconds · e exports it")
        self.add_class("comparing")

    def action_export_compare(self) -> None:
        if self.comparison is None:
            self.notify("Nothing to export yet: select runs and press v", severity="warning")
            return
        folder = self.store.home / "comparisons"
        folder.mkdir(parents=True, exist_ok=True)
        stem = folder / time.strftime("compare-%Y%m%d-%H%M%S")
        headers, cells = self.comparison
        for fmt, ext in (("csv", "csv"), ("markdown", "md")):
            stem.with_suffix(f".{ext}").write_text(tables.render(headers, cells, fmt))
        self.notify(f"wrote {stem}.csv and {stem.name}.md", title="comparison exported", timeout=8)

    # -- model export -------------------------------------------------------

    def action_export_model(self) -> None:
        run_id = self.current()
        if run_id is None:
            return
        self.notify(f"exporting {run_id[:8]} as a SavedModel…", timeout=3)
        self.export_model(self.rows[run_id])

    @work(thread=True, group="export", exit_on_error=False)
    def export_model(self, row) -> None:
        try:
            from kerashw.export import export_run  # TensorFlow loads here, off the UI thread

            out = export_run(self.store, row)
        except Exception as exc:
            self.app.call_from_thread(self.notify, str(exc), title="export failed",
                                      severity="error", timeout=12)
            return
        self.app.call_from_thread(self.notify, f"{out} (reload check passed)",
                                  title="model exported", timeout=10)
