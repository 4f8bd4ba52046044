"""Keras callbacks that report training to a listener, with no UI imports.

A front end (CLI, TUI) subclasses `Listener`; `train.run` wires it to Keras
through `EpochReporter`. Cancelling goes through `CancelOnEvent`, which stops
fit the way Keras's own EarlyStopping does: `model.stop_training = True`.
"""
from __future__ import annotations

import threading
import time

import keras

from kerashw.listener import Listener


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


class EpochReporter(keras.callbacks.Callback):
    """Evaluates val and test after each epoch, writes every phase, reports steps.

    It runs before Keras's CSVLogger and ModelCheckpoint in the callback list and
    adds `val_*` / `test_*` to `logs`, so those see the same numbers as the store.
    """

    def __init__(self, *, evaluate, to_record, eval_sets: dict, train_samples: int, steps: int,
                 epochs: int, on_phase, listener: Listener, cancel: threading.Event | None):
        super().__init__()
        self.evaluate = evaluate  # (model, dataset) -> {metric: value}
        self.to_record = to_record  # Keras's train logs -> {metric: value}
        self.eval_sets = eval_sets  # {"val": (dataset, n), "test": (dataset, n)}
        self.train_samples = train_samples
        self.steps = steps
        self.epochs = epochs
        self.on_phase = on_phase  # (record) -> None: the store writer
        self.listener = listener
        self.cancel = cancel
        self._t0 = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()
        self.listener.epoch_started(epoch + 1, self.epochs, self.steps)

    def on_train_batch_end(self, batch, logs=None):
        self.listener.step(batch + 1, self.steps)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if self.cancel is not None and self.cancel.is_set():
            return  # cut short: its running averages cover part of an epoch, so none is stored
        seconds = time.perf_counter() - self._t0
        train = self.to_record(logs)
        self._emit(epoch, "train", self.train_samples, train, seconds)
        for phase, (ds, n) in self.eval_sets.items():
            if self.cancel is not None and self.cancel.is_set():
                return  # a cancelled run keeps what finished; no more passes over data
            metrics = self.evaluate(self.model, ds)
            logs.update({f"{phase}_{k}": v for k, v in metrics.items()
                         if isinstance(v, (int, float))})
            self._emit(epoch, phase, n, metrics, None)

    def _emit(self, epoch, phase, samples, metrics, seconds):
        record = {"epoch": epoch + 1, "epochs": self.epochs, "phase": phase,
                  "samples": samples, "seconds": seconds, **metrics}
        self.on_phase(record)
        self.listener.phase_ended(record)


class BestWeights(keras.callbacks.ModelCheckpoint):
    """Keras's ModelCheckpoint on val top-1, silent for an epoch cut short by a cancel
    (it has no val_top1, and the stock callback warns about that)."""

    def __init__(self, path: str):
        super().__init__(path, monitor="val_top1", mode="max", save_best_only=True,
                         save_weights_only=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs and self.monitor in logs:
            super().on_epoch_end(epoch, logs)
