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


def make_train_dataset(split: Split, batch_size: int, *, seed: int, epochs: int, start_epoch: int = 0,
                       augment: bool = False):
    """The training batches of epochs start_epoch..epochs-1 as one stream, for
    fit(steps_per_epoch=...): epoch e's order is a stateless shuffle seeded by (seed, e),
    so a run resumed at epoch e sees exactly the batches it would have seen unbroken.
    Per batch: gather the shuffled indices, scale to [0, 1], (augment), prefetch."""
    import tensorflow as tf

    n = len(split)
    images = tf.constant(split.x)
    labels = tf.nest.map_structure(tf.constant, split.y)

    def one_epoch(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    def gather(idx):
        x = tf.cast(tf.gather(images, idx), tf.float32) / 255.0
        return x, tf.nest.map_structure(lambda t: tf.gather(t, idx), labels)

    ds = tf.data.Dataset.range(start_epoch, epochs).flat_map(one_epoch)
    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        jitter = _augmenter(seed)
        ds = ds.map(lambda x, y: (jitter(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


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
