"""The one place that compiles and fits. `run(spec) -> RunResult`; CLI and TUI sit on top.

Metrics, per epoch and phase:
- train: Keras's running average over the epoch's steps (what the report logs too),
- val: a full pass with the weights at the end of each epoch,
- test: the same after the last epoch only (TrainOptions.eval_test "every": each epoch).
"""
from __future__ import annotations

import contextlib
import json
import math
import platform
import shutil
import threading
import time
import traceback
from dataclasses import dataclass, field

import keras

from kerashw import __version__, atomic, blocks, tasks
from kerashw.training import distribute, precision, towers
from kerashw.training.callbacks import (BACKUP_EVERY, Backup, BestWeights, CancelOnEvent, EpochProgress, EpochSaved, EvaluateSplits,
                                       StoreWriter, WholeEpochCsv, WorkerMean)
from kerashw.config import DataError, RunSpec, TrainOptions, unique
from kerashw.identity import identify, identify_all
from kerashw.listener import Listener
from kerashw.pipeline import passes_per_epoch
from kerashw.record import PhaseRecord
from kerashw.runfiles import RunFiles
from kerashw.models import count_params, get_model
from kerashw.store.claims import Claim
from kerashw.training.stopping import signals_request_stop
from kerashw.training.warmstart import warm_start
from kerashw.training.board import Board
from kerashw.store import Store


@dataclass
class RunResult:
    run_id: str
    spec: RunSpec
    status: str  # finished, interrupted, diverged, failed, or skipped (already finished)
    elapsed: float = 0.0
    params: tuple[int, int] = (0, 0)
    final: dict = field(default_factory=dict)  # {phase: metrics} of the last epoch
    best: dict = field(default_factory=dict)  # {"epoch": n, phase: metrics} of the best val epoch
    history: list = field(default_factory=list)  # every PhaseRecord of the run
    error: str | None = None


def versions(bn: str) -> dict:
    """What trained a run besides its spec: the versions, and how its BatchNorm trained."""
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "kerashw": __version__, "batchnorm": bn}


def steps_per_execution(steps: int) -> int:
    """Run several steps per call to cut Keras's per-step overhead (Python, callbacks: 3-4 ms of
    resnet18_mod's 68 ms step here, 5-8 % at 7-21 steps a call; docs/results/performance.md),
    keeping at least 8 progress updates an epoch (the bar moves once a call). Always a divisor
    of the epoch's steps: Keras takes whole executions from the stream, so otherwise an epoch
    would end inside the next epoch's shuffle and a resumed run (which restarts the stream at
    its epoch) would not see the same batches as an unbroken one. Epoch metrics stay exact."""
    most = max(1, min(32, steps // 8))
    return next(k for k in range(most, 0, -1) if steps % k == 0)


def keep_csv_rows(path, epochs: int) -> None:
    """metrics.csv without the rows of epochs after `epochs` (Keras numbers them from 0)."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if line.split(",", 1)[0].isdigit()
                        and int(line.split(",", 1)[0]) < epochs]
    if kept != lines:
        atomic.write_text(path, "".join(kept))


def _best_val(history: list[PhaseRecord]) -> float | None:
    scores = [r.get("top1") for r in history if r.phase == "val" and r.get("top1") is not None]
    return max(scores) if scores else None


def make_optimizer(spec: RunSpec, steps: int):
    """The spec's optimizer and learning-rate schedule (cosine: per step, over the whole run,
    after `warmup` epochs rising linearly from 0)."""
    lr = spec.lr
    if spec.schedule == "cosine":
        warm = spec.warmup * steps
        lr = keras.optimizers.schedules.CosineDecay(
            0.0 if warm else spec.lr, decay_steps=max(1, spec.epochs * steps - warm),
            warmup_target=spec.lr if warm else None, warmup_steps=warm)
    cls = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
           "sgd": keras.optimizers.SGD}[spec.optimizer]
    # AdamW needs a number; the others take None for "no decay" (0.0 would add a no-op step).
    decay = spec.weight_decay if spec.weight_decay or spec.optimizer == "adamw" else None
    return cls(learning_rate=lr, weight_decay=decay)


def build(spec: RunSpec, data, strat=None, *, bn: str = TrainOptions.bn):
    """The model (saved, exported) and the compiled model fit trains: it may carry extra
    outputs sharing the model's layers (captcha: all four heads at once). Built under the
    run's dtype policy (kerashw.training.precision), with BatchNorm layers of kind `bn`
    (kerashw.blocks) and under the process's tf.distribute strategy."""
    with precision.building(spec), blocks.batchnorm(bn), (strat.scope() if strat else contextlib.nullcontext()):
        model = get_model(spec.model)(data.input_shape, data.num_classes,
                                      activation=spec.activation, init=spec.init, name=spec.model)
        fit_model = towers.wrap(data.wrap(model), spec.towers)
        fit_model.compile(optimizer=make_optimizer(spec, data.steps), loss=data.loss, metrics=data.metrics,
                          steps_per_execution=steps_per_execution(data.steps))
    return model, fit_model


def _build_state(fit_model, stream) -> None:
    """Create the optimizer's slots and the metrics' totals before fit traces its step.
    Without a tf.distribute strategy Keras leaves that to the first trace, and a
    tf.function that creates variables is traced twice: half of a one-epoch captcha
    run's 14 s here. Keras's own build (private; what it does under a strategy)."""
    if getattr(fit_model, "_distribute_strategy", None) is not None or not hasattr(fit_model, "_symbolic_build"):
        return  # under a strategy Keras builds first itself
    fit_model._symbolic_build(data_batch=stream.element_spec)


def _summarise(history: list[PhaseRecord]) -> tuple[dict, dict]:
    """({phase: metrics} of the last epoch, {"epoch": n, phase: metrics} of the best val
    top-1 epoch, the first of equals), in the store's shape."""
    by_epoch: dict[int, dict] = {}
    for r in history:
        by_epoch.setdefault(r.epoch, {})[r.phase] = {"samples": r.samples, "seconds": r.seconds, **r.metrics}
    if not by_epoch:
        return {}, {}
    final = by_epoch[max(by_epoch)]
    scored = [(e, p["val"]["top1"]) for e, p in by_epoch.items()
              if "val" in p and p["val"].get("top1") is not None and not math.isnan(p["val"]["top1"])]
    best = {}
    if scored:
        epoch = max(scored, key=lambda t: (t[1], -t[0]))[0]
        best = {"epoch": epoch, **by_epoch[epoch]}
    return final, best


# A run diverged when a loss is not finite, or ran away: above DIVERGED_LOSS, or above
# DIVERGED_FACTOR times its first epoch's training loss (a loss of 6e19 is not "finished").
DIVERGED_LOSS = 1e6
DIVERGED_FACTOR = 100.0


def _diverged(history: list[PhaseRecord]) -> bool:
    losses = [r.get("loss") for r in history if isinstance(r.get("loss"), (int, float))]
    first = next((r.get("loss") for r in history if r.phase == "train"), None)
    limit = DIVERGED_LOSS if first is None or not math.isfinite(first) else \
        min(DIVERGED_LOSS, DIVERGED_FACTOR * max(first, 1e-12))
    return any(not math.isfinite(x) or x > limit for x in losses)


class RunOwned(RuntimeError):
    """Another live process is training this run."""


def run(spec: RunSpec, *, store: Store | None = None, studies=(), listener: Listener | None = None,
        cancel: threading.Event | None = None, index: int = 1, total: int = 1,
        options: TrainOptions = TrainOptions(), claim: Claim | None = None) -> RunResult:
    """Train one run end to end, storing every epoch as it ends.

    The run is claimed in the store first (run_study claims before calling; a direct call
    claims here, re-running a finished run). KeyboardInterrupt marks the run interrupted
    and propagates, so a study stops; a set `cancel` event does the same without it.
    """
    # run_study identified the spec before claiming it; a direct call identifies here, once
    spec = spec.resolved() if claim is not None else identify(spec, options)
    store = store or Store()
    claim = claim or store.claim(spec.run_id, force=True)
    if claim.verdict == "owned":
        raise RunOwned(f"run {spec.run_id} is being trained by {claim.owner}")
    work = store.work_dir(spec.run_id, claim.replacing)
    try:
        result = Training(spec, store, work, studies=studies, listener=listener or Listener(), cancel=cancel,
                          index=index, total=total, options=options).train()
    except BaseException:
        store.release(spec.run_id)  # a no-op once the run was finished or stored interrupted
        if claim.replacing:
            shutil.rmtree(work, ignore_errors=True)
        raise
    if claim.replacing:
        if result.status == "finished":
            store.promote(spec.run_id, work)
        else:
            shutil.rmtree(work, ignore_errors=True)  # the previous finished run stays, files too
    return result


class Training:
    """One run's training, in the order it happens: build (data, model), resume (what an
    earlier attempt left), callbacks (one epoch's order), fit, keep (the finished model),
    end (the stored status). `run` makes one and calls `train`."""

    def __init__(self, spec: RunSpec, store: Store, work, *, studies, listener: Listener,
                 cancel: threading.Event | None, index: int, total: int, options: TrainOptions):
        self.spec, self.store, self.studies, self.listener, self.options = spec, store, studies, listener, options
        self.files = RunFiles(work)  # the run folder, or a --force attempt's beside it
        self.index, self.total = index, total
        # a signal during fit is a request to stop at the next step (kerashw.training.stopping); this carries it
        self.stop = cancel if cancel is not None else threading.Event()
        self.history: list[PhaseRecord] = []
        self.board = None  # --tensorboard: kerashw.training.board, made once the run starts
        self.started = time.perf_counter()
        self.params = (0, 0)
        # several workers must start from the same weights: a multi-worker run starts over
        self.resumable = options.distribute != "multiworker"

    def train(self) -> RunResult:
        status, error = "finished", None
        # the stop request covers the run's start too: a signal between the store's "running"
        # and the first step (a study's Ctrl-C, a workers' command's SIGTERM) stops the run at
        # its first step, stored interrupted, where it was once left "running" (then stale)
        with signals_request_stop(self.stop, self._stop_requested):
            self.build()  # nothing is stored yet: bad data raises as it is
            try:
                done = self.resume()
                status = self.fit(done, self.callbacks(done))
                if status == "finished":
                    self.keep()
            except KeyboardInterrupt:
                self.end("interrupted")
                raise
            except Exception as exc:  # stored, then re-raised for the caller to report
                error = f"{type(exc).__name__}: {exc}"
                self.end("failed", error + "\n" + traceback.format_exc(limit=5))
                raise
        result = self.end(status, error)
        if status != "interrupted":
            shutil.rmtree(self.files.backup, ignore_errors=True)  # only an interrupted run is resumed
        return result

    def build(self) -> None:
        """Data and model, seeded, so the same spec gives the same numbers."""
        spec, options = self.spec, self.options
        keras.utils.set_random_seed(spec.seed)
        self.data = tasks.get(spec.task).prepare(spec, options)  # pipelines, loss and metrics
        self.strat = distribute.strategy(options.distribute, options.devices)
        self.model, self.fit_model = build(spec, self.data, self.strat, bn=options.bn)
        self.params = count_params(self.model)
        # fine-tuning: another run's weights (a resumed run then takes its backup's instead)
        self.warm = warm_start(spec, self.store, self.model) if spec.init_from else None
        # multi-worker: each worker evaluates whole splits on a one-device twin with the trained
        # weights (under the strategy Keras evaluates a shard per worker and never sums them)
        self.twin, self.twin_fit = build(spec, self.data, bn=options.bn) if options.distribute == "multiworker" else (None, None)

    def evaluate(self, trained, ds) -> dict:
        if self.twin_fit is None:
            if self.strat is not None:
                # Keras's evaluate under a strategy builds the model again from its first batch
                # averaged over the replicas (TF trainer's _maybe_symbolic_build): a batch that
                # splits unevenly (a val split smaller than the evaluation batch, and odd) failed
                # there in AddN. Only fit's epoch-end callback evaluates, after fit has built the
                # model and its metrics.
                trained._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
            return self.data.evaluate(trained, ds)
        self.twin_fit.set_weights(trained.get_weights())
        return self.data.evaluate(self.twin_fit, ds)

    def resume(self) -> int:
        """Record the run as running; the epochs already done (0: from the start). An
        interrupted run resumes after its last whole epoch: the backup has its weights and
        optimizer state, the store its epochs (kept), the data stream restarts at that epoch."""
        spec, store, files = self.spec, self.store, self.files
        files.root.mkdir(parents=True, exist_ok=True)
        atomic.write_text(files.spec, json.dumps(spec.to_dict(), indent=2))
        done = min(Backup.epochs_done(files.backup), spec.epochs) if self.resumable else 0
        start = lambda keep: store.start_run(spec.run_id, spec.task, spec.label(), spec.to_dict(), self.studies,
                                             self.params, versions(self.options.bn), keep_through=keep)
        start(done)
        if done:  # a crash after the backup leaves later rows in metrics.csv: the resume writes them again
            keep_csv_rows(files.metrics, done)
        self.history.extend(r for r in store.epochs(spec.run_id) if r.epoch <= done)
        if done and len({r.epoch for r in self.history}) != done:
            done, self.history[:] = 0, []  # the store lost some of those epochs: start over
            shutil.rmtree(files.backup, ignore_errors=True)
            start(0)
        self.board = Board(files.tensorboard, spec) if self.options.tensorboard else None
        self.listener.run_started(spec, self.index, self.total, self.params)
        if self.warm and not done:
            self.listener.notice(self.warm)
        if done:
            self.listener.notice(f"resuming run {spec.run_id} at epoch {done + 1}/{spec.epochs} "
                                 f"(epochs 1-{done} restored from its backup)")
        if self.data.skipped:
            skipped = self.data.skipped
            self.listener.notice(f"skipped {len(skipped)} unreadable image(s): {', '.join(skipped[:5])}")
        return done

    def write(self, record: PhaseRecord) -> None:
        self.history.append(record)
        self.store.log_epoch(self.spec.run_id, record)
        if self.board is not None:
            self.board.write(record)

    def callbacks(self, done: int) -> list:
        """One epoch: the training steps, then these in order, sharing one logs dict."""
        spec, data, files, stop = self.spec, self.data, self.files, self.stop
        passes = passes_per_epoch(data.n_train, spec.batch_size, spec.epochs, spec.min_steps)  # > 1 with min_steps
        sizes = {"train": data.n_train * passes, **{split: n for split, (_, n) in data.eval_sets.items()}}
        at_end = () if self.options.eval_test == "every" else tuple(s for s in data.eval_sets if s == "test")
        best = BestWeights(files.best_weights, _best_val(self.history))  # best val top-1, in memory till written
        callbacks = [
            EpochProgress(self.listener, data.steps, spec.epochs),  # steps to the front end; epoch time
            EvaluateSplits(self.evaluate, data.eval_sets, stop, epochs=spec.epochs, at_end=at_end),  # full passes
            StoreWriter(self.write, data.to_record, sizes, spec.epochs, self.listener, stop),  # store + front end
            keras.callbacks.TerminateOnNaN(),
            WholeEpochCsv(str(files.metrics), append=bool(done), cancel=stop, at_end=at_end),
            best,
        ]
        if self.options.distribute == "multiworker":
            callbacks.insert(0, WorkerMean(self.strat))  # first: the others read the averaged logs
        if self.resumable:  # last: after the epoch is stored, resume from it; the best weights go with it
            every = BACKUP_EVERY if self.options.backup_every is None else self.options.backup_every
            callbacks.append(Backup(files.backup, stop, every=every, before_write=best.flush))
        if self.options.epoch_saved is not None:
            callbacks.append(EpochSaved(self.options.epoch_saved, stop))  # the epoch's files are whole
        callbacks.append(CancelOnEvent(stop))
        return callbacks

    def fit(self, done: int, callbacks: list) -> str:
        """The training from epoch `done`; the run's status from what happened."""
        spec, data = self.spec, self.data
        stream = data.train(start_epoch=done)
        _build_state(self.fit_model, stream)
        self.fit_model.fit(stream, epochs=spec.epochs, initial_epoch=done, steps_per_epoch=data.steps,
                           callbacks=callbacks, verbose=0, shuffle=False)
        if _diverged(self.history):
            return "diverged"
        if len({r.epoch for r in self.history}) < spec.epochs:
            return "interrupted"  # a stop request, or fit returned early without a cause we know
        return "finished"

    def keep(self) -> None:
        """A finished run keeps its model and its task's extras (captcha: test confusion)."""
        model = self.model
        if self.twin is not None:  # the saved and exported model is a one-device model
            self.twin.set_weights(model.get_weights())
            model = self.twin
        with atomic.replacing(self.files.model) as tmp:
            model.save(tmp)
        for name, value in (self.data.finalize(model) if self.data.finalize else {}).items():
            atomic.write_text(self.files.extra(name), json.dumps(value))

    def _stop_requested(self) -> None:
        self.listener.notice(f"stopping run {self.spec.run_id} after the current step; it is stored as "
                             "interrupted and resumes from its last whole epoch (Ctrl-C again to stop at once)")

    def end(self, status: str, error: str | None = None) -> RunResult:
        spec = self.spec
        elapsed = time.perf_counter() - self.started
        final, best = _summarise(self.history)
        stored = self.store.finish_run(spec.run_id, status, elapsed, final, best, error,
                                       versions=versions(self.options.bn))
        if stored != status:  # a --force attempt that did not finish: the previous result stays
            error = f"this attempt ended {status}; the previous finished result is kept"
        result = RunResult(spec.run_id, spec, status, elapsed, self.params, final, best, self.history, error)
        self.listener.run_ended(result)
        return result


def skipped_result(claim: Claim, spec: RunSpec, store: Store, studies, listener: Listener, index: int,
                   total: int) -> RunResult | None:
    """A study's run that is not trained here: owned by another live trainer, or finished (then
    it joins these studies and its stored numbers are the result); None when it is claimed."""
    if claim.verdict == "owned":
        listener.run_skipped(spec, index, total, f"being trained by {claim.owner}")
        return RunResult(spec.run_id, spec, "skipped", error=f"owned by {claim.owner}")
    if claim.verdict == "finished":
        store.add_studies(spec.run_id, studies)
        row = store.get(spec.run_id)
        listener.run_skipped(spec, index, total, "finished")
        return RunResult(spec.run_id, spec, "skipped", row.elapsed or 0.0,
                         (row.trainable_params or 0, row.total_params or 0), row.final, row.best)
    return None


def run_study(specs, *, store: Store, studies=(), listener: Listener | None = None,
              force: bool = False, cancel: threading.Event | None = None,
              options: TrainOptions = TrainOptions(), force_before: float | None = None) -> list[RunResult]:
    """Run each spec in turn; finished runs with the same id are reused unless `force`.

    A diverged or failed run is stored and the study goes on; a cancel or Ctrl-C stops it.
    """
    listener = listener or Listener()
    specs = list(specs)
    split = [s for s in specs if s.towers > 1]
    if options.distribute and split:  # a tower step inside a replica's step fails in TF's graph
        raise distribute.Uncombined(f"--distribute does not combine with towers (a {split[0].model} run here has "
                                    f"towers={split[0].towers}; captcha-best trains in 2 by default): train it on one "
                                    f"device, or add --towers 1")
    # before TensorFlow's first op; towers want one thread per op, one tower per core
    distribute.configure_threads(options.threads, towers=max((s.towers for s in specs), default=1))
    strat = distribute.strategy(options.distribute, options.devices)  # multiworker: before any other op
    chief = distribute.is_chief(strat)
    if strat is not None:
        listener.notice(distribute.describe(strat, options.distribute, specs))
    with _writable_store(store, chief) as store:
        results = []
        # the data's content is part of each run's id: changed data is a new run, not a reuse
        specs = unique(identify_all(specs, options))  # a shared baseline runs once
        precision.check(specs)  # a precision this machine lacks fails before any run is claimed
        for i, spec in enumerate(specs, start=1):
            if cancel is not None and cancel.is_set():
                break
            claim = store.claim(spec.run_id, force=force, force_before=force_before)  # atomic: one trainer per run
            # every worker of a cluster trains the runs the chief trains, in the same order
            if not distribute.chief_says(strat, int(claim.verdict not in ("owned", "finished"))):
                if not chief:
                    store.release(spec.run_id)
                    continue
            skipped = skipped_result(claim, spec, store, studies, listener, i, len(specs))
            if skipped is not None:
                results.append(skipped)
                continue
            try:
                result = run(spec, store=store, studies=studies, listener=listener, cancel=cancel,
                             index=i, total=len(specs), options=options, claim=claim)
            except (KeyboardInterrupt, DataError):
                raise  # bad data fails every run alike: stop the study and say why
            except Exception as exc:
                result = RunResult(spec.run_id, spec, "failed", error=f"{type(exc).__name__}: {exc}")
                listener.run_ended(result)
            results.append(result)
            if result.status == "interrupted":
                break
        return results


@contextlib.contextmanager
def _writable_store(store: Store, chief: bool):
    """The user's store, or for a multi-worker cluster's other workers (the chief alone writes
    the user's store) a private one, removed afterwards: the chief holds the same results."""
    if chief:
        yield store
        return
    private = distribute.private_store_path()
    try:
        yield Store(private)
    finally:
        shutil.rmtree(private, ignore_errors=True)

