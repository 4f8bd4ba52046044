"""`kerashw audit`: K-fold runs of a recipe on a labelled folder, then cleanlab's suspects;
and `kerashw cache`: what kerashw keeps that it can make again."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from kerashw.cli.main import _quiet_tf, _store, console, main, store_option
from kerashw.config import TrainOptions
from kerashw.studies import get_study

SHOWN = 15  # suspects printed; the CSV and the gallery have them all (the gallery the first 48)


@main.command()
@click.option("--data", required=True, type=click.Path(), help="The labelled folder to audit (every subfolder).")
@click.option("--recipe", default="captcha-tiny", show_default=True,
              help="A one-run study whose recipe trains each fold.")
@click.option("--epochs", type=click.IntRange(1), help="Epochs per fold run (default: the recipe's).")
@click.option("--batch", "batch_size", type=click.IntRange(1), help="Batch size (default: the recipe's).")
@click.option("--folds", type=click.IntRange(2), default=5, show_default=True, help="K of K-fold.")
@click.option("--seed", type=int, default=42, show_default=True, help="Seeds the folds and the runs.")
@click.option("-o", "--output", type=click.Path(), help="Folder for suspects.csv and suspects.png "
              "(default: ./audit-<folder name>).")
@click.option("--apply", "apply_file", type=click.Path(),
              help="Write the corrections of this CSV (audit's, the rows you accept) into labels.csv, backed up.")
@click.option("--threads", type=click.IntRange(1), help="TensorFlow threads (default: every core).")
@store_option
def audit(data, recipe, epochs, batch_size, folds, seed, output, apply_file, threads, store_path):
    """Find wrong labels in a folder: out-of-sample predictions from K fold runs, ranked by cleanlab."""
    from kerashw import audit as auditing
    from kerashw import tasks

    try:
        study = get_study(recipe)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--recipe") from None
    specs = study.specs()
    if len(specs) != 1:
        raise click.BadParameter(f"study {recipe!r} has {len(specs)} runs; a recipe is a one-run study "
                                 "(captcha-tiny, captcha-best)", param_hint="--recipe")
    spec = dataclasses.replace(specs[0], epochs=epochs or specs[0].epochs,
                               batch_size=batch_size or specs[0].batch_size)
    try:
        helpers = tasks.get(spec.task).folds()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--recipe") from None
    if apply_file:
        changed = helpers.apply_corrections(data, Path(apply_file))
        for labels_csv, backup in changed:
            console.print(f"corrected {escape(str(labels_csv))} (the old one: {escape(str(backup))})")
        if not changed:
            console.print("nothing to change: every label already reads as the CSV suggests")
        return
    try:
        auditing.check_cleanlab()
    except auditing.MissingCleanlab as exc:
        raise click.UsageError(str(exc)) from None
    store = _store(store_path)
    options = TrainOptions(threads=threads)
    p = auditing.plan(spec, data, store, k=folds, seed=seed, options=options)
    console.print(f"audit of {escape(data)}: {len(p.items)} labelled images in {folds} folds; each fold is "
                  f"the test split of one {recipe} run ({spec.epochs} epochs) on the others")
    _quiet_tf()
    from kerashw.cli.progress import run_with_progress

    code = run_with_progress(console, p.specs, store, ["audit"], options=options)
    if code:
        console.print("[red]the audit stopped before every fold run finished;[/red] the same command resumes it")
        sys.exit(code)
    probs = auditing.out_of_sample(p, store, options)
    rows = auditing.suspects(p, probs, spec.task)
    out = Path(output) if output else Path(f"audit-{Path(data).expanduser().resolve().name}")
    out.mkdir(parents=True, exist_ok=True)
    auditing.write_csv(rows, out / "suspects.csv")
    auditing.gallery(rows, out / "suspects.png")
    table = Table(title=f"{len(rows)} suspected label errors (most likely first)")
    for col in ("rank", "file", "given", "suggested", "pos", "p", "quality"):
        table.add_column(col)
    for r in rows[:SHOWN]:
        table.add_row(str(r["rank"]), escape(Path(r["file"]).name), r["given"], r["suggested"], str(r["position"]),
                      f"{r['confidence']:.2f}", f"{r['quality']:.3f}")
    console.print(table)
    console.print(f"all of them: {escape(str(out / 'suspects.csv'))}; pictures: {escape(str(out / 'suspects.png'))}")
    console.print(f"to correct: keep the rows you accept in a copy of the CSV, then kerashw audit --data "
                  f"{escape(data)} --apply THAT.csv")


@main.command()
@click.option("--clear", is_flag=True, help="Delete it all (generated captchas, preprocessed arrays, fingerprints).")
def cache(clear):
    """Where kerashw keeps what it can make again (synthetic captchas, preprocessed images), and
    its size; --clear frees it. Results and models live in the store and are never touched."""
    import shutil

    from kerashw.captcha.folders import cache_dir  # the one cache folder ($KERASHW_CACHE)

    folder = cache_dir()
    if not folder.exists():
        console.print(f"{escape(str(folder))}: empty (nothing cached yet)")
        return
    parts = sorted(folder.iterdir())
    size = lambda p: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    sizes = {p: size(p) for p in parts}
    for p in parts:
        console.print(f"{sizes[p] / 1e6:9.1f} MB  {escape(p.name)}")
    total = sum(sizes.values()) / 1e6
    if not clear:
        console.print(f"{total:9.1f} MB  in {escape(str(folder))} ($KERASHW_CACHE); kerashw cache --clear frees it")
        return
    shutil.rmtree(folder)
    console.print(f"freed {total:.1f} MB ({escape(str(folder))}); the next captcha run makes what it needs again")
