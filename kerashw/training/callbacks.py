"""The Keras callbacks train.run hands to fit, each doing one thing. No UI imports.

At the end of an epoch they run in list order and share one `logs` dict:
`EpochProgress` adds the epoch's training time, `EvaluateSplits` adds `val_*` and
`test_*` (a full pass each, and its time), `StoreWriter` stores every phase and tells the front
end, and Keras's own callbacks after them (TerminateOnNaN, CSVLogger, the best-val
checkpoint) see the same numbers as the store. A cancelled epoch is cut short: its
running averages cover part of an epoch, so nothing of it is evaluated or stored.
"""
from __future__ import annotations

import json
import math
import re
import threading
import time
from pathlib import Path

import keras

from kerashw import atomic
from kerashw.training import distribute
from kerashw.listener import Listener
from kerashw.record import PhaseRecord

SECONDS = "epoch_seconds"  # the log key of an epoch's training time


def _cancelled(cancel: threading.Event | None) -> bool:
    return cancel is not None and cancel.is_set()


class EpochProgress(keras.callbacks.Callback):
    """Epoch starts and steps to the listener; the epoch's training time into the logs."""

    def __init__(self, listener: Listener, steps: int, epochs: int):
        super().__init__()
        self.listener, self.steps, self.epochs = listener, steps, epochs
        self._t0 = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()
        self.listener.epoch_started(epoch + 1, self.epochs, self.steps)

    def on_train_batch_end(self, batch, logs=None):
        self.listener.step(batch + 1, self.steps)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs[SECONDS] = time.perf_counter() - self._t0


class WorkerMean(keras.callbacks.Callback):
    """Multi-worker runs: the epoch's training logs averaged over the workers, before
    anything reads them (each worker's metrics cover only its shard of the data)."""

    def __init__(self, strat):
        super().__init__()
        self.strat = strat

    def on_epoch_end(self, epoch, logs=None):
        if logs:
            logs.update(distribute.mean_over_workers(self.strat, logs))


class EvaluateSplits(keras.callbacks.Callback):
    """After each epoch, a full pass over each evaluation split with the epoch's final
    weights, added to the logs as `{split}_{metric}` in the store's metric names. Splits
    in `at_end` (the test split, by default) are evaluated after the last epoch only."""

    def __init__(self, evaluate, eval_sets: dict, cancel: threading.Event | None = None, *,
                 epochs: int = 0, at_end: tuple = ()):
        super().__init__()
        self.evaluate = evaluate  # (model, dataset) -> {metric: value}
        self.eval_sets = eval_sets  # {"val": (dataset, n), "test": (dataset, n)}
        self.cancel = cancel
        self.epochs, self.at_end = epochs, at_end

    def on_epoch_end(self, epoch, logs=None):
        for split, (ds, _) in self.eval_sets.items():
            if _cancelled(self.cancel):
                return
            if split in self.at_end and epoch + 1 < self.epochs:
                continue
            t0 = time.perf_counter()
            logs.update({f"{split}_{k}": v for k, v in self.evaluate(self.model, ds).items()})
            logs[f"{split}_{SECONDS}"] = time.perf_counter() - t0  # what evaluation costs


class StoreWriter(keras.callbacks.Callback):
    """Each epoch's phases (train from Keras's running averages, then the evaluated
    splits) as records: into the store, the run's history, and to the listener."""

    def __init__(self, write, to_record, sizes: dict, epochs: int, listener: Listener,
                 cancel: threading.Event | None = None):
        super().__init__()
        self.write = write  # (record) -> None
        self.to_record = to_record  # Keras's train logs -> {metric: value}
        self.sizes = sizes  # {"train": n, "val": n, "test": n}
        self.epochs, self.listener, self.cancel = epochs, listener, cancel

    def on_epoch_end(self, epoch, logs=None):
        if _cancelled(self.cancel) or not logs:
            return
        phases = {"train": self.to_record(logs)}
        for split in self.sizes:
            prefix = f"{split}_"
            metrics = {k[len(prefix):]: v for k, v in logs.items() if k.startswith(prefix)}
            if split != "train" and metrics:
                phases[split] = metrics
        for phase, metrics in phases.items():
            seconds = logs.get(SECONDS) if phase == "train" else metrics.pop(SECONDS, None)
            record = PhaseRecord(epoch + 1, self.epochs, phase, self.sizes[phase], seconds, metrics)
            self.write(record)
            self.listener.phase_ended(record)


class CancelOnEvent(keras.callbacks.Callback):
    """Stops fit at the next step once `event` is set (the TUI's cancel key)."""

    def __init__(self, event: threading.Event):
        super().__init__()
        self.event = event

    def on_train_batch_end(self, batch, logs=None):
        if self.event.is_set():
            self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        if self.event.is_set():
            self.model.stop_training = True


class EpochSaved(keras.callbacks.Callback):
    """Calls `saved(epochs_done)` once a whole epoch's files are written (after Backup)."""

    def __init__(self, saved, cancel: threading.Event | None = None):
        super().__init__()
        self.saved, self.cancel = saved, cancel

    def on_epoch_end(self, epoch, logs=None):
        if logs and not _cancelled(self.cancel):
            self.saved(epoch + 1)


class WholeEpochCsv(keras.callbacks.CSVLogger):
    """Keras's CSVLogger, silent for an epoch cut short by a cancel (its row would hold part
    of an epoch, and the resume writes that epoch again)."""

    def __init__(self, path: str, append: bool, cancel: threading.Event | None = None, at_end: tuple = ()):
        super().__init__(path, append=append)
        self.cancel, self.at_end = cancel, at_end

    def on_epoch_end(self, epoch, logs=None):
        if logs and not _cancelled(self.cancel):
            if self.keys is None:  # Keras fixes the columns at the first row: give the splits
                # evaluated after the last epoch only (test) theirs now, "NA" until then
                logs = {**{f"{split}_{k[4:]}": "NA" for split in self.at_end for k in logs if k.startswith("val_")},
                        **logs}
            super().on_epoch_end(epoch, logs)


# Seconds between backups written to disk: each write (Keras's save_weights, weights and
# optimizer state) costs 0.12-0.14 s here against 0.01 s for a copy in memory, and a run stopped
# by Ctrl-C or SIGTERM still writes its last whole epoch on the way out (Backup.on_train_end).
# What a crash or kill -9 loses is at most this much training, resumed from the backup before.
BACKUP_EVERY = 60.0


def _state(model) -> list:
    """Everything save_weights writes: the model's variables and the optimizer's."""
    return list(model.variables) + (list(model.optimizer.variables) if model.optimizer is not None else [])


def _copy(variables) -> list:
    import numpy as np

    return [np.array(v.numpy(), copy=True) for v in variables]


def _assign(variables, values) -> None:
    for v, x in zip(variables, values):
        v.assign(x)


class BestWeights(keras.callbacks.Callback):
    """The weights of the best epoch by val top-1 (the first of equals), kept in memory when an
    epoch beats `best_so_far` and written atomically by `flush`: with each backup (so the file on
    disk always belongs to the epochs the backup holds) and when training ends. Silent for an
    epoch cut short by a cancel."""

    monitor = "val_top1"

    def __init__(self, path, best_so_far: float | None = None):
        super().__init__()
        self.path, self.best = Path(path), best_so_far
        self.values = None  # the best epoch's state, not yet on disk

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or math.isnan(value) or (self.best is not None and value <= self.best):
            return
        self.best, self.values = value, _copy(_state(self.model))

    def flush(self) -> None:
        if self.values is None:
            return
        variables = _state(self.model)
        now = _copy(variables)
        _assign(variables, self.values)
        try:
            with atomic.replacing(self.path) as tmp:
                self.model.save_weights(str(tmp))
        finally:
            _assign(variables, now)
        self.values = None

    def on_train_end(self, logs=None):
        self.flush()


class Backup(keras.callbacks.Callback):
    """What an interrupted run resumes from: the weights and optimizer state after a whole
    epoch, one file `epoch-NNNN.weights.h5` in `backup_dir`, written atomically, the epoch
    count in its name. A signal, a crash or a full disk mid-write leaves the previous backup
    whole, and the count can never disagree with the weights it names. Written when `every`
    seconds have passed since the last one (0: after every epoch); in between the last whole
    epoch is kept in memory and written when training ends early (a stop request).
    `before_write` runs first (BestWeights.flush). Restored at the start of fit; never taken
    from an epoch cut short by a cancel."""

    PATTERN = re.compile(r"epoch-(\d{4,})\.weights\.h5")

    def __init__(self, backup_dir, cancel: threading.Event | None = None, *, every: float = BACKUP_EVERY,
                 before_write=lambda: None):
        super().__init__()
        self.dir, self.cancel, self.every, self.before_write = Path(backup_dir), cancel, every, before_write
        self.pending = None  # (epochs, state) of the last whole epoch not yet on disk
        self.written = time.monotonic()

    def on_train_begin(self, logs=None):
        self.written = time.monotonic()
        path, _ = self.latest(self.dir)
        if path is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(str(path))

    def on_epoch_end(self, epoch, logs=None):
        if _cancelled(self.cancel):
            return
        if epoch + 1 >= self.params.get("epochs", 0):
            self.pending = None  # the last epoch: the run is finished, nothing to resume
        elif time.monotonic() - self.written >= self.every:
            self.write(epoch + 1)
        else:
            self.pending = (epoch + 1, _copy(_state(self.model)))

    def on_train_end(self, logs=None):
        if self.pending is None:
            return
        epochs, values = self.pending  # training stopped inside a later epoch: back to the whole one
        _assign(_state(self.model), values)
        self.write(epochs)

    def write(self, epochs: int) -> None:
        self.before_write()
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"epoch-{epochs:04d}.weights.h5"
        with atomic.replacing(path) as tmp:
            self.model.save_weights(str(tmp))
        for old in self.dir.iterdir():  # only the newest is needed, and it is whole
            if old != path and (self.PATTERN.fullmatch(old.name) or old.name in self.LEGACY):
                old.unlink(missing_ok=True)
        self.pending, self.written = None, time.monotonic()

    # the layout of Keras's BackupAndRestore, which kerashw used before: still resumed from
    LEGACY = ("latest.weights.h5", "training_metadata.json", "latest.weights.h5.bkp", "training_metadata.json.bkp")

    @classmethod
    def latest(cls, backup_dir) -> tuple[Path | None, int]:
        """The newest whole backup in `backup_dir` and its epoch count; (None, 0) for none."""
        backup_dir = Path(backup_dir)
        if not backup_dir.is_dir():
            return None, 0
        found = sorted((int(m.group(1)), backup_dir / m.group(0)) for m in
                       (cls.PATTERN.fullmatch(p.name) for p in backup_dir.iterdir()) if m)
        if found:
            return found[-1][1], found[-1][0]
        meta, weights = backup_dir / "training_metadata.json", backup_dir / "latest.weights.h5"
        if meta.exists() and weights.exists():
            try:
                return weights, int(json.loads(meta.read_text())["epoch"])
            except (ValueError, KeyError, TypeError):
                pass  # a damaged old backup: train from the start
        return None, 0

    @classmethod
    def epochs_done(cls, backup_dir) -> int:
        """How many epochs the backup in `backup_dir` holds (0: none, start from scratch)."""
        return cls.latest(backup_dir)[1]
