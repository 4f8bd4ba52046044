"""The shared tf.data chain both studies train on, and the Split it reads.

TensorFlow is imported inside the functions, so the NumPy-only loaders that
use Split can check a data file without paying for TF.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # uint8 images
    y: np.ndarray  # int labels (MNIST) or dict of per-head labels (captcha)

    def __len__(self) -> int:
        return len(self.x)


def subsample(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Seeded subset of range(n), sorted, so --limit picks the same images every time."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed + 1).choice(n, size=limit, replace=False))


def make_dataset(split: Split, batch_size: int, *, training: bool, seed: int, scale=True,
                 augment: bool = False):
    """One tf.data chain: scale -> cache -> (shuffle each epoch) -> batch -> (augment) -> prefetch."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((split.x, split.y))
    if scale:
        ds = ds.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y),
                    num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.cache()
    if training:
        ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if training and augment:
        jitter = _augmenter(seed)
        ds = ds.map(lambda x, y: (jitter(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _augmenter(seed: int):
    """Keras's own random layers, run in tf.data after the cache, so every epoch sees
    new shifts of the same images. Small: a captcha's 4 characters must stay in order
    and inside the frame."""
    import keras

    return keras.Sequential([
        keras.layers.RandomTranslation(0.08, 0.05, fill_mode="nearest", seed=seed),
        keras.layers.RandomRotation(0.012, fill_mode="nearest", seed=seed + 1),  # ~4 degrees
        keras.layers.RandomZoom((-0.08, 0.08), fill_mode="nearest", seed=seed + 2),
    ], name="augment")
