"""The MNIST part's data for train.run: the report's 48,000 / 6,000 split, one softmax head."""
from __future__ import annotations

import functools

import keras
import numpy as np

from kerashw import pipeline
from kerashw.config import DataError, RunSpec
from kerashw.mnist import source
from kerashw.pipeline import Split, subsample
from kerashw.mnist.constants import CLASSES, INPUT_SHAPE, N_TRAIN, N_VAL
from kerashw.rundata import EVAL_BATCH, RunData, sparse_ce, strict_top_k


def split_indices(n: int, n_train: int, n_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded disjoint train/val index sets out of range(n)."""
    if n_train + n_val > n:
        # Small files (tests, subsets) keep the report's 8:1 proportion instead.
        n_val = max(1, n // 9)
        n_train = n - n_val
    perm = np.random.default_rng(seed).permutation(n)
    return perm[:n_train], perm[n_train : n_train + n_val]


def mnist_splits(arrays: dict, seed: int, limit: int | None = None) -> dict[str, Split]:
    """train/val/test splits in the report's sizes; limit subsamples train only."""
    tr, va = split_indices(len(arrays["x_train"]), N_TRAIN, N_VAL, seed)
    tr = tr[subsample(len(tr), limit, seed)]
    return {
        "train": Split(arrays["x_train"][tr], arrays["y_train"][tr]),
        "val": Split(arrays["x_train"][va], arrays["y_train"][va]),
        "test": Split(arrays["x_test"], arrays["y_test"]),
    }


def _splits(spec: RunSpec, options) -> dict[str, Split]:
    return mnist_splits(source.load_mnist_once(options.mnist), spec.seed, spec.limit)


def prepare(spec: RunSpec, options) -> RunData:
    return from_splits(spec, _splits(spec, options))


def split(spec: RunSpec, options, name: str) -> Split:
    """One of the run's splits (train, val, test) as it trained on it."""
    return _splits(spec, options)[name]


def from_splits(spec: RunSpec, splits: dict[str, Split]) -> RunData:
    """The RunData over splits already in memory (uint8 digits, integer labels)."""
    train = splits["train"]
    if len(train) < spec.batch_size:
        raise DataError(f"{len(train)} MNIST training image(s) (--limit {spec.limit}), fewer than one batch "
                        f"of {spec.batch_size}; raise --limit or lower --batch")
    return RunData(
        input_shape=INPUT_SHAPE,
        num_classes=len(CLASSES),
        train=functools.partial(pipeline.make_train_dataset, train, spec.batch_size, seed=spec.seed,
                                epochs=spec.epochs, min_steps=spec.min_steps),
        eval_sets={p: (pipeline.make_dataset(splits[p], EVAL_BATCH),
                       len(splits[p])) for p in ("val", "test")},
        n_train=len(train),
        steps=pipeline.steps_per_epoch(len(train), spec.batch_size, spec.epochs, spec.min_steps),
        loss=sparse_ce(spec.label_smoothing),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="top1"),
                 strict_top_k(3, "top3")],
    )
