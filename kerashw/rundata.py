"""What a run trains on, as its task prepares it for train.run: pipelines, loss, metrics,
evaluation; and the Keras pieces both tasks use (the loss with smoothing, strict top-k)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import keras

EVAL_BATCH = 512  # evaluation batch: large is faster and does not change the numbers


@dataclass
class RunData:
    input_shape: tuple
    num_classes: int
    train: Callable  # (start_epoch=0) -> tf.data.Dataset of the training batches of the remaining epochs
    eval_sets: dict  # {"val": (dataset, n), "test": (dataset, n)}
    n_train: int
    steps: int  # optimizer steps per epoch
    loss: Any
    metrics: Any
    wrap: Callable = lambda model: model  # the model fit trains (captcha adds an output)
    to_record: Callable = lambda logs: {k: float(logs[k]) for k in ("loss", "top1", "top3")}
    skipped: list = field(default_factory=list)  # unreadable images skipped (--skip-bad)
    finalize: Callable | None = None  # (model) -> {name: JSON-able}, saved in the run folder

    def evaluate(self, model, ds) -> dict:
        """A full pass over ds, in the store's metric names (same mapping as train logs)."""
        return self.to_record(model.evaluate(ds, verbose=0, return_dict=True))


def sparse_ce(label_smoothing: float = 0.0):
    """Cross-entropy on integer labels; with smoothing, against (1-e) one-hot + e/classes
    (Keras's sparse loss has no smoothing, the categorical one does)."""
    if not label_smoothing:
        return "sparse_categorical_crossentropy"

    def smoothed_sparse_ce(y_true, y_pred):
        classes = y_pred.shape[-1]
        onehot = keras.ops.one_hot(keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,)), classes)
        return keras.losses.categorical_crossentropy(onehot, y_pred, label_smoothing=label_smoothing)

    return smoothed_sparse_ce


def strict_top_k(k: int = 3, name: str = "top3"):
    """Top-k accuracy with ties counted against the model: a hit needs fewer than k other
    classes scored at least as high as the true one. Keras's top-k counts a tie as a hit,
    so a collapsed model (every class equal) scored 100 % top-3; here it scores 0, and so
    does a model whose scores are NaN."""

    def strict_top_k_hit(y_true, y_pred):
        y = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1, 1))
        true_score = keras.ops.take_along_axis(y_pred, y, axis=-1)
        # "not below" rather than ">=": a NaN score (a diverged model) is a rival, never a miss of one
        rivals = keras.ops.sum(keras.ops.cast(keras.ops.logical_not(y_pred < true_score), "float32"), axis=-1) - 1.0
        return keras.ops.cast(rivals < k, "float32")

    return keras.metrics.MeanMetricWrapper(strict_top_k_hit, name=name)
