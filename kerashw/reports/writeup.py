"""`kerashw report`: a study's (or some runs') write-up as DIR/report.md with PNG figures.

Everything comes from the store and the run folders: settings and final metrics from
the runs table, curves from the epochs table, confusion matrices from each captcha
run's confusion_test.json, mistakes from a forward pass of each run's saved model over
its own test split (the same split, limit and preprocessing it trained with). Nothing
is retrained. A figure is redrawn only when a run it shows has changed (a run's id and
end time are its key, kept in DIR/figures.json), so a second report is fast.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path


from kerashw import atomic, tasks
from kerashw.reports import figures
from kerashw.reports.tables import data_name
from kerashw.config import DataError, Overrides, RunSpec, TrainOptions
from kerashw.identity import identify
from kerashw.store import RunRow, Store
from kerashw.membership import describe_differing, members, settings
from kerashw.studies import get_study

GALLERY_SIZE = 16  # mistakes shown per run


class Figures:
    """The figure cache: a figure is drawn when its key differs from the last report's."""

    def __init__(self, out: Path):
        self.out = out
        self.index = out / "figures.json"
        self.keys = json.loads(self.index.read_text()) if self.index.exists() else {}
        self.drawn: list[str] = []

    def get(self, name: str, key: str, draw) -> str:
        if self.keys.get(name) != key or not (self.out / name).exists():
            draw(self.out / name)
            self.keys[name] = key
            self.drawn.append(name)
        return name

    def save(self) -> None:
        atomic.write_text(self.index, json.dumps(self.keys, indent=1, sort_keys=True))


def _key(rows: list[RunRow]) -> str:
    return hashlib.sha256(json.dumps([(r.id, r.ended) for r in rows]).encode()).hexdigest()[:16]


def _pct(v) -> str:
    return "" if v is None else f"{100 * v:.2f}"


def _varying(rows: list[RunRow]) -> list[str]:
    """The settings that differ between the rows (model always): the settings table's columns."""
    return ["model", *(k for k in settings(rows)[1] if k != "model")]


def _short(key: str, value) -> str:
    return data_name(value) if key == "data" else str(value)


def short_labels(rows: list[RunRow]) -> dict[str, str]:
    """Each run as its id and the settings that differ between these runs."""
    cols = [c for c in _varying(rows) if len({json.dumps(r.spec.get(c)) for r in rows}) > 1]
    return {r.id: " ".join([r.id[:8], *(f"{c}={_short(c, r.spec.get(c))}" for c in cols)]) for r in rows}


def settings_table(rows: list[RunRow]) -> list[str]:
    cols = _varying(rows)
    lines = ["| run | " + " | ".join(cols) + " | params | elapsed s |", "|---" * (len(cols) + 3) + "|"]
    for r in rows:
        spec = RunSpec.from_dict(r.spec).to_dict()
        cells = [_short(c, spec.get(c)) for c in cols]
        lines.append(f"| {r.id[:8]} | " + " | ".join(cells) +
                     f" | {r.trainable_params or 0:,} | {r.elapsed or 0:.1f} |")
    return lines


def metrics_table(rows: list[RunRow]) -> list[str]:
    """The final epoch per phase in the report's terms (the runs' task's columns)."""
    labels = short_labels(rows)
    columns = tasks.get(rows[0].task).columns
    names = ["loss", *(c.name for c in columns)]
    lines = ["| run | phase | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for r in rows:
        for phase in ("train", "val", "test"):
            m = r.final.get(phase) or {}
            cells = [f"{m['loss']:.4f}" if m.get("loss") is not None else ""]
            cells += [_pct(m.get(c.key)) for c in columns]
            lines.append(f"| {labels[r.id]} | {phase} | " + " | ".join(cells) + " |")
    return lines


def what_changed(rows: list[RunRow], factor: str) -> list[str]:
    """Computed sentences only: the best run by val top-1, and the factor's effect in
    test top-1 points against the study's first run (its baseline)."""
    scored = [r for r in rows if (r.final.get("val") or {}).get("top1") is not None]
    if not scored:
        return ["No finished run has a validation score."]
    best = max(scored, key=lambda r: r.final["val"]["top1"])
    out = [f"Best run by validation top-1: `{best.id[:8]}` ({best.label}), val {_pct(best.final['val']['top1'])} %, "
           f"test {_pct((best.final.get('test') or {}).get('top1'))} %."]
    base = rows[0]
    base_test = (base.final.get("test") or {}).get("top1")
    if factor and base_test is not None and len(rows) > 1:
        effects = []
        for r in rows[1:]:
            t = (r.final.get("test") or {}).get("top1")
            if t is not None:
                effects.append((r.spec.get(factor), 100 * (t - base_test)))
        if effects:
            parts = ", ".join(f"{factor}={v}: {d:+.2f}" for v, d in effects)
            spread = max(abs(d) for _, d in effects)
            out.append(f"Against the baseline {factor}={base.spec.get(factor)} (test top-1 {_pct(base_test)} %), "
                       f"in test top-1 points: {parts}. The factor moves test top-1 by up to {spread:.2f} points.")
    return out


def _series(store: Store, rows: list[RunRow], key: str) -> dict:
    series, labels = {}, short_labels(rows)
    for r in rows:
        phases: dict[str, list] = {}
        for e in store.epochs(r.id):
            if e.get(key) is not None and e.phase in ("train", "val"):
                phases.setdefault(e.phase, []).append((e.epoch, e.get(key)))
        series[labels[r.id]] = phases
    return series


def check_data(row: RunRow, options: TrainOptions) -> None:
    """The data found now must be the data the run trained on (its id names the content): a
    gallery of other images would contradict the run's own metrics beside it."""
    trained = row.spec.get("data_id")
    if not trained:
        return  # stored before runs named their data; nothing to compare
    spec = RunSpec.from_dict(row.spec)
    try:
        now = identify(dataclasses.replace(spec, data_id=None), options, fetch=False).data_id
    except (DataError, OSError) as exc:
        raise DataError(f"run {row.id}: cannot read the data it trained on to draw its test images ({exc})") from None
    if now != trained:
        where = spec.data or options.mnist or "the MNIST file kerashw finds"
        raise DataError(f"run {row.id} trained on data {trained}, but {where} now holds {now} (changed or another "
                        "file); its test images would not be the ones its metrics count. Give the run's own data "
                        "(--mnist, or the folder as it was) or report other runs")


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; -o takes a folder (new, or an earlier report's)")
    if (out / "report.md").exists() and not (out / "figures.json").exists():
        raise ValueError(f"{out}/report.md exists and is not a kerashw report (no figures.json beside it); "
                         "choose another -o")
    parent = atomic.unwritable(out)
    if parent is not None:
        raise ValueError(f"{out}: cannot write there ({parent} is not writable); choose another -o")


def mistakes(store: Store, row: RunRow, options: TrainOptions, limit: int = GALLERY_SIZE):
    """A forward pass of the run's saved model over its test split: the first `limit`
    misclassified images (as the model saw them) and their captions, and the count."""
    from kerashw.models import load_model

    check_data(row, options)
    spec = RunSpec.from_dict(row.spec)
    task = tasks.get(row.task)
    split = task.test_split(spec, options)
    model = load_model(store.files(row.id).model)
    pred = model.predict(split.x.astype("float32") / 255.0, batch_size=256, verbose=0)
    wrong, captions = task.mistakes(pred, split, limit)
    return [split.x[i] for i in wrong[:limit]], captions, len(wrong), len(split)


def draw_mistakes(path: Path, store: Store, row: RunRow, options: TrainOptions, *,
                  limit: int = GALLERY_SIZE, prefix: str = "") -> Path:
    """The gallery of a run's first `limit` test mistakes (the report's and the TUI's)."""
    images, captions, wrong, n = mistakes(store, row, options, limit)
    return figures.gallery(path, images, captions, f"{prefix}{wrong} of {n} test images wrong "
                           f"(first {min(wrong, limit)}; true -> predicted)", cell=tasks.get(row.task).gallery_cell)


def write_report(store: Store, out: Path, *, exp: str | None = None, run_ids=(),
                 options: TrainOptions = TrainOptions(), overrides: Overrides | None = None,
                 include_differing: bool = False) -> tuple[Path, list[str]]:
    """Write out/report.md and its figures; returns the path and the figures drawn now.
    A study's runs are kerashw.membership's (its specs with `overrides`, in its order; runs
    trained under its name with other settings only with `include_differing`).
    Everything is checked before `out` is made or anything in it changes."""
    out = Path(out)
    study = get_study(exp, store.home) if exp else None
    left_out = None
    if run_ids:
        rows = [store.find(i) for i in run_ids]
    else:
        m = members(store, study, overrides, options)
        rows, left_out = m.rows(include_differing), None if include_differing else describe_differing(m, study.name)
    finished = [r for r in rows if r.status == "finished"]
    if not finished:
        hint = f" ({left_out})" if left_out else ""
        raise ValueError(f"no finished runs {'of study ' + repr(exp) if exp else 'among ' + ', '.join(run_ids)}"
                         f" in {store.path}{hint}; train some first (kerashw train --study NAME), or name the "
                         "settings they were trained with (--data, --limit, --epochs, --seed)")
    tasks_seen = {r.task for r in finished}
    if len(tasks_seen) > 1:
        raise ValueError("a report covers runs of one task; these mix " + " and ".join(sorted(tasks_seen)))
    for r in finished:
        check_data(r, options)
    _check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    figs = Figures(out)
    key = _key(finished)
    labels = short_labels(finished)
    title = study.description if study else f"runs {', '.join(r.id[:8] for r in finished)}"
    md = [f"# {title}", "", f"Store: `{store.path}`. {len(finished)} finished run(s)"
          + (f"; not finished: {', '.join(f'{r.id[:8]} ({r.status})' for r in rows if r.status != 'finished')}"
             if len(finished) < len(rows) else "") + ".", "", "## What changed", ""]
    md += what_changed(finished, study.factor if study else "")
    shared, _ = settings(finished)
    md += ["", "## Settings", "", "Every run: " + ", ".join(f"{k}={_short(k, v)}" for k, v in shared.items()
                                                         if v not in (None, False, 0, 0.0)) + "."]
    if left_out:
        md += ["", f"Not in this report: {left_out}."]
    md += [""] + settings_table(finished)
    md += ["", "## Final epoch", "", "Accuracies in %; captchas: per character and whole captcha.", ""]
    md += metrics_table(finished)
    md += ["", "## Curves", "", "Validation solid, training dashed; one colour per run.", ""]
    task = tasks.get(finished[0].task)
    for metric, label, pct in (("loss", "loss", False), *((c.key, c.name, True) for c in task.curves)):
        series = _series(store, finished, metric)
        name = figs.get(f"curves-{metric}.png", key,
                        lambda p, s=series, y=label, c=pct: figures.curves(p, s, ylabel=y, title=f"{title}: {y}",
                                                                       percent=c))
        md.append(f"![{label}]({name})")
    md += ["", "## Mistakes on the test split", ""]
    for r in finished:
        run_key = _key([r])
        conf_file = store.files(r.id).confusion  # what a task's finalize wrote, if it has one
        if conf_file.exists():
            matrices = json.loads(conf_file.read_text())
            name = figs.get(f"confusion-{r.id[:12]}.png", run_key,
                            lambda p, m=matrices, rr=r: figures.confusion(
                                p, m, task.classes, f"{labels[rr.id]}: test confusion (log counts)"))
            md.append(f"![confusion {r.id[:8]}]({name})")
        name = figs.get(f"mistakes-{r.id[:12]}.png", run_key,
                        lambda p, rr=r: draw_mistakes(p, store, rr, options, prefix=f"{labels[rr.id]}: "))
        md.append(f"![mistakes {r.id[:8]}]({name})")
    atomic.write_text(out / "report.md", "\n".join(md) + "\n")
    figs.save()
    return out / "report.md", figs.drawn
