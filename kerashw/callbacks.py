"""The Keras callbacks train.run hands to fit, each doing one thing. No UI imports.

At the end of an epoch they run in list order and share one `logs` dict:
`EpochProgress` adds the epoch's training time, `EvaluateSplits` adds `val_*` and
`test_*` (a full pass each, and its time), `StoreWriter` stores every phase and tells the front
end, and Keras's own callbacks after them (TerminateOnNaN, CSVLogger, the best-val
checkpoint) see the same numbers as the store. A cancelled epoch is cut short: its
running averages cover part of an epoch, so nothing of it is evaluated or stored.
"""
from __future__ import annotations

import threading
import time

import keras

from kerashw import distribute
from kerashw.listener import Listener

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
    weights, added to the logs as `{split}_{metric}` in the store's metric names."""

    def __init__(self, evaluate, eval_sets: dict, cancel: threading.Event | None = None):
        super().__init__()
        self.evaluate = evaluate  # (model, dataset) -> {metric: value}
        self.eval_sets = eval_sets  # {"val": (dataset, n), "test": (dataset, n)}
        self.cancel = cancel

    def on_epoch_end(self, epoch, logs=None):
        for split, (ds, _) in self.eval_sets.items():
            if _cancelled(self.cancel):
                return
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
            record = {"epoch": epoch + 1, "epochs": self.epochs, "phase": phase,
                      "samples": self.sizes[phase], "seconds": seconds, **metrics}
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


class BestWeights(keras.callbacks.ModelCheckpoint):
    """Keras's ModelCheckpoint on val top-1, silent for an epoch cut short by a cancel
    (it has no val_top1, and the stock callback warns about that)."""

    def __init__(self, path: str, best_so_far: float | None = None):
        super().__init__(path, monitor="val_top1", mode="max", save_best_only=True,
                         save_weights_only=True, initial_value_threshold=best_so_far)

    def on_epoch_end(self, epoch, logs=None):
        if logs and self.monitor in logs:
            super().on_epoch_end(epoch, logs)


class Backup(keras.callbacks.BackupAndRestore):
    """Keras's BackupAndRestore (weights and optimizer state after every epoch, restored by
    the next fit), kept after an interrupted run so the next start resumes it, and not
    written for an epoch cut short by a cancel."""

    def __init__(self, backup_dir, cancel: threading.Event | None = None):
        super().__init__(str(backup_dir), save_freq="epoch", delete_checkpoint=False)
        self.cancel = cancel

    def on_epoch_end(self, epoch, logs=None):
        if not _cancelled(self.cancel):
            super().on_epoch_end(epoch, logs)

    @staticmethod
    def epochs_done(backup_dir) -> int:
        """How many epochs the backup in `backup_dir` holds (0: none, start from scratch)."""
        import json
        from pathlib import Path

        meta = Path(backup_dir) / "training_metadata.json"
        weights = Path(backup_dir) / "latest.weights.h5"
        if not (meta.exists() and weights.exists()):
            return 0
        try:
            return int(json.loads(meta.read_text())["epoch"])
        except (ValueError, KeyError, TypeError):
            return 0  # a damaged backup: train from the start
