"""Text for people: the report's log line and tables of stored runs. No TF, no UI."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from kerashw import tasks
from kerashw.store import RunRow



def pct(value) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def epoch_line(r, task: str) -> str:
    """The report's line: `Epoch [2/10], phase: train, samples: 48000, Loss: ..., ...`."""
    return tasks.get(task).epoch_line(r)


def headline_columns(rows: list[RunRow]):
    """The summary column of each task among the rows (top-3, whole captcha), in TASKS order."""
    present = {r.task for r in rows}
    return [t.headline for name, t in tasks.TASKS.items() if name in present]


def _metric(row: RunRow, where: str, phase: str, key: str):
    block = row.best if where == "best" else row.final
    return (block.get(phase) or {}).get(key)


def data_name(data: str | None) -> str:
    """A run's data as tables show it: the folder's name (its content is in the run id)."""
    return "synthetic" if data is None else Path(data).name


def _spec_value(row: RunRow, key: str) -> str:
    v = row.spec.get(key)
    if key == "data":
        return data_name(v)
    return "" if v is None else str(v)


def result_rows(rows: list[RunRow], studies: bool = True, plain: bool = False) -> tuple[list[str], list[list[str]]]:
    """Columns and rows for `kerashw results` and the end-of-study summary; `plain`: numbers
    as a program reads them (95164, not 95,164)."""
    spec_cols = ["model", "activation", "optimizer", "lr", "batch_size", "epochs", "limit", "preprocess",
                 "augment", "arcs", "data", "seed"]
    # Keep only spec columns that differ across the rows (plus model): the rest is noise.
    varying = [c for c in spec_cols
               if c == "model" or len({_spec_value(r, c) for r in rows}) > 1]
    extra = headline_columns(rows)
    headers = ["run", "status", *varying, "train", "val", "test"]
    headers += [c.key for c in extra]
    headers += ["best ep", "best val", "params", "sec"] + (["studies"] if studies else [])
    out = []
    for r in rows:
        cells = [r.id[:8], r.status, *[_spec_value(r, c) for c in varying]]
        cells += [pct(_metric(r, "final", p, "top1")) for p in ("train", "val", "test")]
        cells += [pct(_metric(r, "final", "test", c.key)) for c in extra]
        cells += [str(r.best.get("epoch", "")), pct(_metric(r, "best", "val", "top1")),
                  f"{r.trainable_params or 0}" if plain else f"{r.trainable_params or 0:,}",
                  f"{r.elapsed:.1f}" if r.elapsed is not None else ""]
        cells += [",".join(r.studies)] if studies else []
        out.append(cells)
    return headers, out


# test first: in an 80-column terminal the deltas that matter most stay in view
COMPARE_METRICS = (("test", "top1"), ("val", "top1"), ("train", "top1"))


def compare_rows(rows: list[RunRow], baseline_id: str) -> tuple[list[str], list[list[str]]]:
    """Runs side by side, each final metric followed by its delta against the pinned
    baseline run (accuracy in points, time in seconds); the baseline's deltas are blank."""
    base = next((r for r in rows if r.id == baseline_id), None)
    if base is None:
        raise ValueError(f"baseline run {baseline_id!r} is not among the compared runs")
    metrics = [COMPARE_METRICS[0], *(("test", c.key) for c in headline_columns(rows)), *COMPARE_METRICS[1:]]
    headers = ["run", "label", "status"]
    for phase, key in metrics:
        name = f"{phase} {'top1' if key == 'top1' else key}"
        headers += [name, f"Δ {name}"]
    headers += ["sec", "Δ sec", "params"]

    def delta(a, b, scale=100.0, fmt="{:+.2f}"):
        return "" if a is None or b is None else fmt.format(scale * (a - b))

    out = []
    for r in rows:
        cells = [r.id[:8] + (" *" if r.id == base.id else ""), r.label, r.status]
        for phase, key in metrics:
            value, ref = _metric(r, "final", phase, key), _metric(base, "final", phase, key)
            cells += [pct(value), "" if r.id == base.id else delta(value, ref)]
        cells += [f"{r.elapsed:.1f}" if r.elapsed is not None else "",
                  "" if r.id == base.id else delta(r.elapsed, base.elapsed, 1.0, "{:+.1f}"),
                  f"{r.trainable_params or 0:,}"]
        out.append(cells)
    return headers, out


def render(headers, rows, fmt: str) -> str:
    """csv, markdown or json text (the rich table is drawn by the CLI)."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(headers)
        w.writerows(rows)
        return buf.getvalue()
    if fmt == "markdown":
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
        return "\n".join(lines) + "\n"
    if fmt == "json":
        return json.dumps([dict(zip(headers, r)) for r in rows], indent=2) + "\n"
    raise ValueError(f"Unknown format {fmt!r}. Known: ['table', 'csv', 'markdown', 'json']")


def rich_table(headers, rows, title=None):
    """One table style for every command: text columns left, numbers right."""
    from rich.table import Table

    from rich import box

    t = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False,
              caption="accuracies: top-1 % at the final epoch; run: id prefix")
    for i, h in enumerate(headers):
        # Cells keep their full width (headers wrap instead) so numbers never truncate.
        width = max((len(str(r[i])) for r in rows), default=1)
        t.add_column(h, min_width=width, no_wrap=h != "studies",
                     justify="left" if h in ("run", "status", "model", "studies", "preprocess") else "right")
    for r in rows:
        t.add_row(*map(str, r))
    return t


def confused_pairs(matrix, classes: str, top: int = 8) -> list[tuple[str, str, int]]:
    """Off-diagonal cells of a [true][pred] matrix, largest first, as the task's symbols."""
    cells = [(classes[t], classes[p], c) for t, row in enumerate(matrix)
             for p, c in enumerate(row) if t != p and c]
    return sorted(cells, key=lambda x: -x[2])[:top]
