"""What differs between the two homework parts, gathered for train.run:
data pipelines, loss, metrics and the per-phase evaluation."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import keras

from kerashw import data
from kerashw.config import RunSpec

EVAL_BATCH = 512  # evaluation batch: large is faster and does not change the numbers


@dataclass
class Task:
    input_shape: tuple
    num_classes: int
    train: Any  # tf.data.Dataset
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


@functools.lru_cache(maxsize=2)
def _mnist_arrays(path: str | None) -> dict:
    # A study runs many specs on one file; load and validate it once per process.
    return data.load_mnist(path)


def prepare_mnist(spec: RunSpec, mnist: str | None = None, **_) -> Task:
    splits = data.mnist_splits(_mnist_arrays(str(mnist) if mnist else None), spec.seed, spec.limit)
    train = splits["train"]
    return Task(
        input_shape=(28, 28),
        num_classes=10,
        train=data.make_dataset(train, spec.batch_size, training=True, seed=spec.seed),
        eval_sets={p: (data.make_dataset(splits[p], EVAL_BATCH, training=False, seed=spec.seed),
                       len(splits[p])) for p in ("val", "test")},
        n_train=len(train),
        steps=math.ceil(len(train) / spec.batch_size),
        loss=sparse_ce(spec.label_smoothing),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="top1"),
                 keras.metrics.SparseTopKCategoricalAccuracy(k=3, name="top3")],
    )


def input_shape(spec: RunSpec) -> tuple:
    if spec.task == "mnist":
        return (28, 28)
    return (50, 130, 3 if spec.resolved().preprocess == "original" else 1)


def prepare(spec: RunSpec, **options) -> Task:
    if spec.task == "mnist":
        return prepare_mnist(spec, **options)
    from kerashw import captcha_task  # captcha's OpenCV stack loads only when needed

    return captcha_task.prepare_captcha(spec, **options)
