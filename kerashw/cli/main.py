"""`kerashw` commands. Thin: parse, call the package, print.

TensorFlow loads only inside commands that train or build models, so
`kerashw --help` and `kerashw results` start instantly.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from pathlib import Path
import sys

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kerashw.config import (ACTIVATIONS, BATCHNORMS, INITS, MODEL_TASK, OPTIMIZERS, PRECISIONS, PREPROCESS, SCHEDULES, Overrides,
                            RunSpec, TrainOptions, baseline)
from kerashw.studies import STUDIES, available, get_study, studies_of
from kerashw.store import Store

# Piped output (files, CI logs) is not cut to 80 columns; a terminal keeps its own width.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
FORMATS = ("table", "csv", "markdown", "json")


def _quiet_tf() -> None:
    """Load TensorFlow without its C++ start-up chatter (CUDA probing, CPU flags, oneDNN
    notes), which says nothing a user can act on. TF 2.21 writes some of it before its
    log settings apply, straight to file descriptor 2, so that is parked in a temporary
    file meanwhile; if the import fails, what it said is shown after all."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    import tempfile

    from kerashw.stdio import fd2_to

    with tempfile.TemporaryFile() as parked:
        try:
            with fd2_to(parked.fileno()):
                import tensorflow as tf

                tf.config.list_physical_devices()  # the CUDA probe speaks here, not at import
        except BaseException:
            parked.seek(0)
            sys.stderr.write(parked.read().decode(errors="replace"))
            raise


# One declaration of --store for every command that reads or writes results.
store_option = click.option("--store", "store_path", type=click.Path(),
                            help="Results folder or .db (default ./kerashw-runs or $KERASHW_HOME).")
mnist_option = click.option("--mnist", type=click.Path(),
                            help="MNIST mnist.npz or IDX folder (else $KERASHW_MNIST, Keras's cache, download).")
skip_bad_option = click.option("--skip-bad", is_flag=True,
                               help="Captcha: skip unreadable images (counted) instead of failing.")


def _store(path, readonly: bool = False) -> Store:
    """The store a command works on; commands that only read open it read-only."""
    return Store(path, readonly=readonly)


class Commands(click.Group):
    """Bad data and unusable stores end any command with their one-line message (the
    file and what is wrong), never a traceback."""

    def invoke(self, ctx):
        from kerashw.config import DataError
        from kerashw.store import StoreError

        try:
            return super().invoke(ctx)
        except (DataError, StoreError) as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kerashw")
def main():
    """Run the ML course's HW2 studies as reproducible Keras experiments."""


@main.command("list")
@click.option("--params/--no-params", default=True, help="Build each model to count parameters (loads TF).")
@store_option
def list_cmd(params, store_path):
    """Studies, the runs each expands to, what is finished, and an estimated time."""
    from kerashw import estimate
    from kerashw.identity import identify_for_display

    # Listing must not create a store; without one nothing is finished yet.
    store = _store(store_path, readonly=True) if Store.resolve(store_path).exists() else None
    timings = estimate.Timings(store)
    counts = {}
    if params:
        _quiet_tf()
        from kerashw import tasks
        from kerashw.models import count_params, get_model

    t = Table(title="studies")
    for col in ("study", "description", "runs", "done", "est. time", "run labels"):
        t.add_column(col)
    unreadable = []  # the data a study's runs would read, where it cannot be found now
    studies, broken = available(Store.resolve(store_path).parent)  # built-ins, then STORE/studies/*.toml
    for name, study in studies.items():
        problems: list[str] = []
        specs = identify_for_display(study.specs(), problems=problems)
        unreadable += problems[:1]
        labels = []
        seeds = len({s.seed for s in specs}) > 1  # a seed sweep: its labels differ in the seed only
        for s in specs:
            label = f"seed={s.seed}, {s.label()}" if seeds else s.label()
            if params:
                key = (s.task, s.model, s.activation, s.preprocess)
                if key not in counts:
                    task = tasks.get(s.task)
                    model = get_model(s.model)(task.input_shape(s), len(task.classes),
                                               activation=s.activation, name=s.model)
                    counts[key] = count_params(model)[0]
                label += f" ({counts[key]:,} params)"
            labels.append(label)
        p = estimate.plan(specs, timings)
        done = "?" if problems else str(p.finished)  # unknown: which runs are its depends on the data
        t.add_row(name, study.description, str(p.runs), done, p.estimate, "\n".join(labels))
    console.print(t)
    for problem in broken:
        console.print(f"[red]not listed:[/red] {escape(problem)}")
    if unreadable:
        console.print(f"done ?: the study's data cannot be read now, so which stored runs are its is unknown "
                      f"({escape(unreadable[0])})", markup=True)
    where = f"timings stored in {store.path}" if store else "no store yet"
    console.print(f"est. time: runs not yet finished ({where}; else figures measured on a "
                  "2-core CPU); done = finished runs")


def _spec_options(f):
    opts = [
        click.option("--study", "--exp", "exp", help=f"Study to run: {', '.join(STUDIES)}, a study file (my.toml), or one in STORE/studies/ "
                     "(--exp: the older name)."),
        click.option("--model", type=click.Choice(list(MODEL_TASK)), help="Model for a single run."),
        click.option("--activation", type=click.Choice(ACTIVATIONS), help="Hidden activation."),
        click.option("--optimizer", type=click.Choice(OPTIMIZERS), help="adam, adamw, or sgd (no momentum)."),
        click.option("--lr", type=float, help="Learning rate (the peak, with --schedule cosine)."),
        click.option("--batch", "batch_size", type=int, help="Batch size."),
        click.option("--preprocess", type=click.Choice(PREPROCESS)),
        click.option("--init", type=click.Choice(INITS), help="Weight init: torch (default) or keras."),
        click.option("--weight-decay", type=float, help="Decoupled weight decay (AdamW's)."),
        click.option("--schedule", type=click.Choice(SCHEDULES), help="Learning rate: constant or cosine."),
        click.option("--warmup", type=int, help="Epochs of linear warm-up (with --schedule cosine)."),
        click.option("--label-smoothing", type=float, help="Label smoothing, 0 to <1."),
        click.option("--extra/--no-extra", default=None,
                     help="Captcha: train on the data folder's extra/ too, when it has one (captcha-best: on)."),
        click.option("--precision", type=click.Choice(PRECISIONS),
                     help="float32 (default), or mixed: bfloat16 compute on CPUs with bf16, float16 on GPUs."),
        click.option("--augment/--no-augment", default=None,
                     help="Captcha: random shift/rotation/zoom of training images (default on)."),
        click.option("--arcs", type=float,
                     help="Captcha: chance (0-1) that a training image gets one more random arc (captcha-best: 0.5)."),
        click.option("--init-from", help="Fine-tune: start from this finished run's weights (a run id "
                     "or unique prefix; same model).", metavar="RUN_ID"),
        click.option("--min-steps", type=int, help="At least this many optimizer steps in all: a small set "
                     "is passed over several times per epoch."),
        click.option("--towers", type=int, help="Split each training step into this many towers run side by "
                     "side, one core each; BatchNorm normalises per tower (captcha-best: 2; default 1)."),
        click.option("--epochs", type=int, help="Epochs per run (default: the study's)."),
        click.option("--limit", type=int, help="Seeded subsample of the training split."),
        click.option("--seed", type=int, help="Seed for split, shuffles and weights (default 42)."),
        click.option("--data", type=click.Path(), help="Captcha folder (default: synthetic captchas)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _resolve_specs(exp, model, home=None, **fields) -> tuple[list[RunSpec], list[str]]:
    extra = {k: fields.pop(k) for k in ("activation", "optimizer", "lr", "batch_size", "preprocess", "augment",
                                         "init", "weight_decay", "schedule", "warmup", "label_smoothing",
                                         "skip_bad", "split", "extra", "precision", "arcs", "init_from",
                                         "min_steps", "towers")}
    ov = Overrides(epochs=fields["epochs"], limit=fields["limit"], seed=fields["seed"],
                   data=fields["data"], extra={**extra, "model": model})
    try:
        if exp:
            study = get_study(exp, home)  # a built-in, a .toml file, or one of the store's studies/
            return study.specs(ov), [study.name]
        task = MODEL_TASK.get(model or "nn")
        if task is None:
            raise ValueError(f"Unknown model {model!r}. Known: {sorted(MODEL_TASK)}")
        spec = ov.apply(dataclasses.replace(baseline(task), model=model or baseline(task).model))
        return [spec], studies_of(spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command()
@_spec_options
@mnist_option
@store_option
@click.option("--force", is_flag=True, help="Re-run runs that already finished.")
@click.option("--tensorboard", is_flag=True, help="Also write TensorBoard logs in each run's folder.")
@skip_bad_option
@click.option("--split", "split_counts", nargs=3, type=int, help="Captcha: train val test counts (default 4:1:3).")
@click.option("--distribute", type=click.Choice(["mirrored", "multiworker"]),
              help="tf.distribute: mirrored over local devices, or one worker of a TF_CONFIG cluster.")
@click.option("--devices", help="With --distribute mirrored: devices, comma-separated (default: all GPUs).")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True,
              help="Train up to N runs of the study at once, in N processes sharing the cores.")
@click.option("--threads", type=click.IntRange(1), help="TensorFlow threads per process (default: every core).")
@click.option("--bn", type=click.Choice(list(BATCHNORMS)), default=TrainOptions.bn, show_default=True,
              help="How BatchNorm trains: TensorFlow's fused kernel, or Keras's own ops (the same math, "
                   "slower; what runs stored without a 'batchnorm' version used). Not part of the run id.")
@click.option("--eval-test", type=click.Choice(["end", "every"]), default="end", show_default=True,
              help="Evaluate the test split after the last epoch only, or after every epoch (its curve).")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", metavar="[ADDRESS]",
              help="Train the runs as Ray tasks: on the cluster at ADDRESS (auto, ray://host:port), or alone "
                   "on a Ray started for this command. Needs the extra: pip install \"kerashw[ray]\".")
@click.option("--cpus-per-run", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="With --ray: CPUs each run asks of Ray (and its TensorFlow threads).")
@click.option("--gpus-per-run", type=click.FloatRange(min=0),
              help="With --ray: GPUs each run asks of Ray (default: 1 when the cluster has GPUs, else 0).")
@click.option("--force-before", type=float, hidden=True)  # a --workers worker: --force for runs ended before
def train(exp, model, mnist, store_path, force, tensorboard, skip_bad, split_counts, distribute, devices,
          workers, threads, bn, eval_test, ray_address, cpus_per_run, gpus_per_run, force_before, **fields):
    """Train a study (--study NAME) or one run from the baseline with overrides."""
    if ray_address and importlib.util.find_spec("ray") is None:  # before a store or a run is made
        from kerashw.cluster import EXTRA

        raise click.UsageError(EXTRA)
    if ray_address and (workers > 1 or distribute or threads):
        raise click.UsageError("--ray spreads the runs over Ray's nodes itself; it does not combine with "
                               "--workers, --distribute or --threads (use --cpus-per-run)")
    if tensorboard and importlib.util.find_spec("tensorboard") is None:  # before a store or a run is made
        raise click.UsageError('--tensorboard needs TensorBoard, not installed with TensorFlow 2.21: '
                               'pip install "kerashw[tensorboard]"')
    if fields["init_from"]:  # a prefix is enough; the model defaults to that run's
        db = Store.resolve(store_path)
        try:
            if not db.exists():
                raise KeyError(f"Run id {fields['init_from']!r} matches no run: there is no store at {db}")
            parent = _store(store_path, readonly=True).find(fields["init_from"])
        except KeyError as exc:
            raise click.BadParameter(str(exc.args[0]), param_hint="--init-from") from None
        fields["init_from"] = parent.id
        model = model or (None if exp else parent.spec.get("model"))
    # the options are checked before a store is made: a typo leaves nothing behind
    specs, studies = _resolve_specs(exp, model, Store.resolve(store_path).parent, skip_bad=skip_bad or None,
                                    split=tuple(split_counts) if split_counts else None, **fields)
    store = _store(store_path)
    import signal

    def stop(signum, frame):  # SIGTERM (kill, a scheduler's stop) is handled like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    if devices and distribute != "mirrored":
        raise click.BadParameter("--devices needs --distribute mirrored", param_hint="--devices")
    if workers > 1 and distribute:
        raise click.BadParameter("--workers runs separate processes; it does not combine with --distribute",
                                 param_hint="--workers")
    options = TrainOptions(mnist=mnist, tensorboard=tensorboard, distribute=distribute, threads=threads,
                           bn=bn, eval_test=eval_test, devices=tuple(d.strip() for d in devices.split(",")) if devices else None)
    if workers > 1:
        from kerashw.cli.workers import run_workers

        sys.exit(run_workers(console, specs, store, workers, sys.argv[1:], threads=threads, force=force,
                             options=options))  # this process only watches: it never loads TensorFlow
    _quiet_tf()
    from kerashw.cli.progress import run_with_progress

    ray = None
    if ray_address:
        from kerashw.cluster.driver import RayOptions

        ray = RayOptions(address=None if ray_address == "local" else ray_address, cpus_per_run=cpus_per_run,
                         gpus_per_run=gpus_per_run)
    code = run_with_progress(console, specs, store, studies, force=force, options=options,
                             force_before=force_before, ray=ray)
    sys.exit(code)


def _membership_options(f):
    """--study's runs are its specs with these settings (kerashw.membership), as at training."""
    for opt in reversed([
        click.option("--data", type=click.Path(), help="With --study: its runs on this captcha folder."),
        click.option("--limit", type=int, help="With --study: its runs with this --limit."),
        click.option("--epochs", type=int, help="With --study: its runs with this --epochs."),
        click.option("--seed", type=int, help="With --study: its runs with this --seed."),
        click.option("--include-differing", is_flag=True,
                     help="With --study: also runs trained under its name with other settings."),
    ]):
        f = opt(f)
    return f


def _members(store, exp, data, limit, epochs, seed, mnist=None):
    from kerashw.membership import members

    try:
        study = get_study(exp, store.home)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--study") from None
    return study, members(store, study, Overrides(epochs=epochs, limit=limit, seed=seed, data=data),
                          TrainOptions(mnist=mnist))


@main.command()
@click.argument("run_id", required=False)
@click.option("--study", "--exp", "exp", help="Only runs of this study (--exp: the older name).")
@_membership_options
@mnist_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@store_option
@click.option("--confusion", is_flag=True, help="Captcha run: most-confused symbol pairs per position (test).")
def results(run_id, exp, data, limit, epochs, seed, include_differing, mnist, fmt, store_path, confusion):
    """Stored runs, or one run's epochs (RUN_ID, a unique prefix is enough)."""
    from kerashw.reports import tables

    store = _store(store_path, readonly=True)
    if run_id:
        try:
            row = store.find(run_id)
        except KeyError as exc:
            raise click.ClickException(exc.args[0]) from None
        console.print(f"run {row.id}  {row.label}  status: {row.status}  "
                      f"params: {row.trainable_params or 0:,}  elapsed: {row.elapsed or 0:.1f}s")
        for e in store.epochs(row.id):
            click.echo(tables.epoch_line(e, row.task))
        if row.error:
            console.print(f"[red]error:[/red] {row.error}")
        if confusion:
            _print_confusion(store, row)
        return
    note = None
    if exp:
        from kerashw.membership import describe_differing

        study, m = _members(store, exp, data, limit, epochs, seed, mnist)
        rows = m.rows(include_differing)
        note = None if include_differing else describe_differing(m, study.name)
    else:
        rows = store.runs()
    if not rows:
        where = f" of study {exp!r} with these settings" if exp else ""
        click.echo(f"No runs{where} in {store.path}. Start one with: kerashw train --study {exp or 'lr'}")
        if note:
            click.echo(note, err=True)
        return
    if fmt == "json":
        from kerashw.store import to_json

        click.echo(to_json([dataclasses.asdict(r) for r in rows], indent=2))  # strict: NaN is null
        if note:
            click.echo(note, err=True)
        return
    headers, table_rows = tables.result_rows(rows, plain=fmt in ("csv", "json"))  # numbers a program reads
    if fmt == "table":
        console.print(tables.rich_table(headers, table_rows, title=f"runs in {store.path}"))
    else:
        click.echo(tables.render(headers, table_rows, fmt), nl=False)
    if note:  # to stderr: a program reading the CSV or JSON gets the rows only
        click.echo(note, err=True)


def _print_confusion(store, row):
    from kerashw import tasks
    from kerashw.reports.tables import confused_pairs

    path = store.files(row.id).confusion
    if not path.exists():
        raise click.ClickException(f"no confusion matrix for run {row.id} ({path} missing): "
                                   "it is written when a captcha run finishes")
    classes = tasks.get(row.task).classes
    matrices = json.loads(path.read_text())
    t = Table(title="most-confused pairs on the test split (true -> predicted: count)")
    for h in matrices:
        t.add_column(h)
    per_head = [confused_pairs(m, classes, 8) for m in matrices.values()]
    for i in range(max(map(len, per_head), default=0)):
        t.add_row(*[f"{p[i][0]} -> {p[i][1]}: {p[i][2]}" if i < len(p) else "" for p in per_head])
    console.print(t)
    accs = [sum(m[k][k] for k in range(len(m))) / max(1, sum(map(sum, m))) for m in matrices.values()]
    console.print("per-position test accuracy: " + ", ".join(f"{100 * a:.2f}%" for a in accs))


@main.command()
@click.option("--data", type=click.Path(), help="Captcha folder (default: the synthetic set).")
@click.option("-n", "count", type=int, default=8, show_default=True, help="Samples (rows).")
@click.option("-o", "--output", type=click.Path(), default="preview.png", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Which samples.")
def preview(data, count, output, seed):
    """A PNG grid: each sample through original | denoise | denoise2."""
    from kerashw.config import DataError
    from kerashw.captcha.preview import write_preview

    try:
        out = write_preview(data, output, count, seed)
    except DataError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {out}")


@main.command()
@click.argument("run_id", required=False)
@click.option("-o", "--output", type=click.Path(), help="Folder (default saved_models/<study>-<run-id>).")
@click.option("--best", "best_of", is_flag=True, help="Export the best run (by val top-1) of --exp.")
@click.option("--study", "--exp", "exp", help="Study, with --best (--exp: the older name).")
@click.option("--weights", type=click.Choice(["final", "best"]), default="final", show_default=True,
              help="The last epoch's weights or the best-val epoch's.")
@click.option("--format", "fmt", type=click.Choice(["savedmodel", "tflite", "onnx"]), default="savedmodel",
              show_default=True, help="A SavedModel folder, or one LiteRT (.tflite) or ONNX (.onnx) file.")
@click.option("--quantize", type=click.Choice(["int8", "dynamic"]),
              help="tflite: int8 (weights and activations, calibrated on the run's training images) or dynamic "
                   "(int8 weights); refused unless it answers as Keras on 99% of held-out training images.")
@store_option
def export(run_id, output, best_of, exp, weights, fmt, quantize, store_path):
    """Export a finished run as a TensorFlow SavedModel (verified by reloading it), LiteRT or ONNX."""
    _quiet_tf()
    from kerashw.export import ExportError, best_run, export_run

    store = _store(store_path, readonly=True)
    try:
        if best_of:
            if not exp:
                raise click.BadParameter("--best needs --exp STUDY")
            row = best_run(store, exp)
        elif run_id:
            row = store.find(run_id)
        else:
            raise click.BadParameter("give a RUN_ID, or --best --exp STUDY")
        out = export_run(store, row, output, weights, fmt=fmt, quantize=quantize)
    except (ExportError, KeyError) as exc:
        raise click.ClickException(exc.args[0]) from None
    if fmt != "savedmodel":
        from kerashw.portable import meta_path

        meta = json.loads(meta_path(out).read_text())
        check = meta["check"]
        click.echo(f"exported run {row.id} ({row.label}) to {out} ({out.stat().st_size:,} bytes); against Keras on "
                   f"{check['samples']} inputs: max difference {check['max_abs_diff']:.2e}, "
                   f"{100 * check['argmax_agreement']:.1f}% same answers per output")
        for layer in meta.get("float_layers") or ():
            click.echo(f"kept in float: a {layer['op']} whose int8 result was {layer['error_steps']} quantization "
                       f"steps off ({layer['tensor'].split(';')[0]})")
        return
    click.echo(f"exported run {row.id} ({row.label}) to {out}; reload check passed")
    signatures = json.loads((out / "kerashw.json").read_text())["signatures"]
    if signatures["serving_default"] == "serve_images":
        click.echo("serving_default: serve_images (encoded image bytes -> text); serve: preprocessed floats")
    else:
        click.echo(f"no image-bytes signature ({signatures['serve_images'][len('none: '):]}); "
                   "serving_default: serve (preprocessed floats)")


@main.command()
@click.argument("model_dir", type=click.Path())  # a SavedModel folder, or a .tflite / .onnx file
@click.argument("images", nargs=-1, type=click.Path())
@click.option("--data", type=click.Path(), help="Labelled captcha folder: report accuracy over it.")
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "json"]), default="text", show_default=True,
              help="text for people; csv or json, one row per image, for programs (the summary goes to stderr).")
def predict(model_dir, images, data, fmt):
    """Predict with an exported SavedModel: captcha text or digit, per image."""
    _quiet_tf()
    import csv
    import io

    import numpy as np

    from kerashw import tasks
    from kerashw.config import DataError
    from kerashw.export import ExportError, load_exported, predict_arrays, prepare_image

    try:
        served, meta = load_exported(model_dir)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    task = tasks.get(meta["task"])
    click.echo(f"model: {getattr(served, 'kind', 'TensorFlow SavedModel')} ({meta['task']}, run {meta['run_id']})",
               err=True)
    labels = {}
    files = list(images)
    if data:
        try:
            labels = task.labelled_files(data)
        except (DataError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        files += list(labels)
    if not files:
        raise click.BadParameter("give image files or --data FOLDER")
    rows, failed = [], 0
    for f in files:
        try:
            x = prepare_image(f, meta)
        except ExportError as exc:
            failed += 1
            click.echo(f"error: {exc}", err=True)
            continue
        out = predict_arrays(served, meta, x[None])[0]
        truth = labels.get(f)
        row = {"file": f, "text": out["text"], "confidence": [round(c, 6) for c in out["confidence"]]}
        if truth is not None:
            row.update(label=truth, correct=truth == out["text"])
        rows.append(row)
        if fmt == "text" and (not data or truth is None):
            mark = "" if truth is None else ("  ok" if row["correct"] else f"  (true {truth})")
            click.echo(f"{f}: {task.describe(out)}{mark}")
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1))
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["file", "text", "confidence", *(["label", "correct"] if labels else [])])
        for r in rows:
            writer.writerow([r["file"], r["text"], " ".join(str(c) for c in r["confidence"]),
                             *([r.get("label", ""), r.get("correct", "")] if labels else [])])
        click.echo(buf.getvalue(), nl=False)
    scored = [r for r in rows if "label" in r]
    if scored:
        chars = np.mean([[a == b for a, b in zip(r["label"], r["text"])] for r in scored], axis=0)
        right = sum(r["correct"] for r in scored)
        click.echo(f"accuracy over {len(scored)} labelled images: whole {task.name} {100 * right / len(scored):.2f}%, "
                   f"per character [{', '.join(f'{100 * c:.2f}%' for c in chars)}]", err=fmt != "text")
    if failed:
        click.echo(f"{failed} file(s) could not be read", err=fmt != "text")
        sys.exit(1)


@main.command("report")
@click.argument("run_ids", nargs=-1)
@click.option("--study", "--exp", "exp", help="The study to write up, all its finished runs (--exp: the older name).")
@_membership_options
@click.option("-o", "--out", type=click.Path(file_okay=False), help="Folder (default: reports/<study or runs>).")
@store_option
@mnist_option
def report_cmd(run_ids, exp, data, limit, epochs, seed, include_differing, out, store_path, mnist):
    """Write a study's (or these runs') report.md with PNG figures: settings, final metrics,
    curves, confusion heatmaps, misclassified test images. No retraining."""
    if not exp and not run_ids:
        raise click.UsageError("name a study (--exp NAME) or run ids")
    _quiet_tf()
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # each run's model traces its own predict: not news
    from kerashw.reports.writeup import write_report

    store = _store(store_path, readonly=True)
    out = Path(out) if out else Path("reports") / (exp or "-".join(r[:8] for r in run_ids))
    try:
        path, drawn = write_report(store, out, exp=exp, run_ids=run_ids, options=TrainOptions(mnist=mnist),
                                   overrides=Overrides(epochs=epochs, limit=limit, seed=seed, data=data),
                                   include_differing=include_differing)
    except (KeyError, ValueError) as exc:
        raise click.ClickException(exc.args[0]) from None
    cached = len(json.loads((out / "figures.json").read_text())) - len(drawn)
    click.echo(f"wrote {path} ({len(drawn)} figure(s) drawn, {cached} unchanged since the last report)")


@main.command("tui")
@store_option
@mnist_option
@skip_bad_option
def tui_cmd(store_path, mnist, skip_bad):
    """Open the terminal app (the same as `kerashw-tui`)."""
    from tui.app import run_app

    sys.exit(run_app(store_path, mnist, skip_bad))


def tui_main(argv=None) -> None:
    """`kerashw-tui`: the same command line as `kerashw tui` (one set of options)."""
    tui_cmd.main(args=argv, prog_name="kerashw-tui")


if __name__ == "__main__":
    main()
