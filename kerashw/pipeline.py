"""The shared tf.data chain both studies train on, and the Split it reads.

TensorFlow is imported inside the functions, so the NumPy-only loaders that
use Split can check a data file without paying for TF.
"""
from __future__ import annotations

import functools
import math
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


def passes_per_epoch(n: int, batch_size: int, epochs: int, min_steps: int = 0) -> int:
    """Whole passes over the training set in one epoch: 1, or as many as it takes for
    `epochs` epochs to make at least `min_steps` optimizer steps (RunSpec.min_steps)."""
    per_pass = math.ceil(n / batch_size)
    return max(1, math.ceil(math.ceil(min_steps / epochs) / per_pass)) if min_steps else 1


def steps_per_epoch(n: int, batch_size: int, epochs: int, min_steps: int = 0) -> int:
    return passes_per_epoch(n, batch_size, epochs, min_steps) * math.ceil(n / batch_size)


def make_train_dataset(split: Split, batch_size: int, *, seed: int, epochs: int, start_epoch: int = 0,
                       augment: bool = False, arcs: float = 0.0, min_steps: int = 0):
    """The training batches of epochs start_epoch..epochs-1 as one stream, for
    fit(steps_per_epoch=...): epoch e's order is a stateless shuffle seeded by (seed, e),
    and batch b of it is augmented with draws seeded by (seed, e, b), so a run resumed
    at epoch e sees exactly the batches it would have seen unbroken. With `min_steps` an
    epoch is several whole passes, pass p shuffled by (seed, e * passes + p): one pass is
    the old stream exactly, so older runs' numbers do not move.
    Per batch: gather the shuffled indices, scale to [0, 1], (augment), (arcs), prefetch."""
    import tensorflow as tf

    n = len(split)
    images = tf.constant(split.x)
    labels = tf.nest.map_structure(tf.constant, split.y)
    passes = passes_per_epoch(n, batch_size, epochs, min_steps)

    def one_pass(key):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), key]))
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    def one_epoch(epoch):
        batches = tf.data.Dataset.range(passes).flat_map(lambda p: one_pass(epoch * passes + p))
        # a batch's augmentation key: (seed, epoch * 2^20 + batch number in the epoch)
        return batches.enumerate().map(
            lambda b, idx: (idx, tf.stack([tf.constant(seed, tf.int64), epoch * 2 ** 20 + b])))

    def gather(idx, key):
        x = tf.cast(tf.gather(images, idx), tf.float32) / 255.0
        if augment:
            x = random_affine(x, key)
        if arcs:
            x = random_arcs(x, key, arcs)
        return x, tf.nest.map_structure(lambda t: tf.gather(t, idx), labels)

    ds = tf.data.Dataset.range(start_epoch, epochs).flat_map(one_epoch)
    # Fixed parallelism and no autotuning: tf.data's autotuning runs a model thread that wakes
    # on a period doubling up to 60 s, and destroying the iterator waits for it, so fit's return
    # blocked for up to a minute after the last epoch (37-40 s in 2 of 5 captcha runs here).
    # Autotuning changes no batch (docs/results/performance.md, "The stall after the last epoch").
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.map(gather, num_parallel_calls=2).prefetch(2).with_options(options)


def make_dataset(split: Split, batch_size: int):
    """An evaluation split's chain: scale -> cache -> batch -> prefetch, in file order."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((split.x, split.y))
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.cache().batch(batch_size).prefetch(tf.data.AUTOTUNE)


# The augmentation's ranges, as fractions (the Keras layers' conventions): shift up to
# 8 % of the height and 5 % of the width, rotate up to 0.012 of a turn (~4 degrees),
# zoom by up to 8 %. Small: a captcha's 4 characters must stay in order and in frame.
SHIFT_Y, SHIFT_X, TURN, ZOOM = 0.08, 0.05, 0.012, 0.08


def random_affine(x, key):
    """One random affine transform per image of the batch x (n, h, w, c): shift, rotation
    and zoom composed into a single matrix, applied in one bilinear resampling pass (edges
    repeat the nearest pixel). The same distribution as the Keras chain it replaced
    (RandomTranslation -> RandomRotation -> RandomZoom: three resamplings). Stateless:
    the draws are a function of key, a shape-[2] int64 seed."""
    import tensorflow as tf

    u = tf.random.stateless_uniform([tf.shape(x)[0], 4], seed=key, minval=-1.0, maxval=1.0)
    return _resampler()(x, u)


# A real THSR arc runs across the whole captcha, from the left half-way down to the top
# right, about 3 px thick at 50x130, and inverts what it crosses (a stroke under it turns
# light). Most of a trained model's errors are strokes the arc hides (3/5, 2/Z, 7/T, H/F),
# and each training image has only its one arc; random_arcs draws another, anywhere in
# this wider family, so the same glyphs are seen hidden in other places. Ranges as
# fractions of the height: left end, right end, bow at the middle; thickness in pixels.
ARC_LEFT, ARC_RIGHT, ARC_BOW, ARC_THICK = (0.25, 0.9), (0.05, 0.65), (-0.2, 0.2), (2.0, 4.5)


def random_arcs(x, key, p):
    """Each image of the batch x (n, h, w, c) in [0, 1] gets, with chance p, one more arc:
    y(t) = left + (right - left) t - 4 bow t (1 - t) across the width (t = 0..1), anti-aliased,
    inverting the pixels it covers. Stateless: draws keyed by key, apart from the affine's."""
    import tensorflow as tf

    n, H, W = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    h, w = tf.cast(H, tf.float32), tf.cast(W, tf.float32)
    u = tf.random.stateless_uniform([n, 5], seed=tf.random.experimental.stateless_fold_in(key, 1))
    span = lambda k, lo_hi: (lo_hi[0] + (lo_hi[1] - lo_hi[0]) * u[:, k])[:, None, None]
    left, right, bow = (span(k, r) * h for k, r in ((1, ARC_LEFT), (2, ARC_RIGHT), (3, ARC_BOW)))
    thick = span(4, ARC_THICK)
    t = (tf.range(w) / tf.maximum(w - 1.0, 1.0))[None, None, :]
    centre = left + (right - left) * t - 4.0 * bow * t * (1.0 - t)  # image y grows downward: a bow up is -
    ys = tf.range(h)[None, :, None]
    alpha = tf.clip_by_value(thick / 2.0 + 0.5 - tf.abs(ys - centre), 0.0, 1.0)
    alpha = (alpha * tf.cast(u[:, 0] < p, tf.float32)[:, None, None])[..., None]
    return x + alpha * (1.0 - 2.0 * x)


@functools.cache
def _resampler():
    """The resampling as gathers, compiled by XLA: 2.6 ms for 64 captchas here, against
    12.7 ms for TF's ImageProjectiveTransformV3 (which XLA cannot compile) with the same
    output to 2e-5. Where XLA is missing, the same function runs uncompiled (17 ms)."""
    import tensorflow as tf

    fn = tf.function(_affine_resample, jit_compile=True)
    try:
        fn(tf.zeros([1, 4, 4, 1]), tf.zeros([1, 4]))
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError, tf.errors.NotFoundError):
        fn = tf.function(_affine_resample)
    return fn


def _affine_resample(x, u):
    """x (n, h, w, c) float, u (n, 4) in [-1, 1]: shift y, shift x, turn, zoom."""
    import tensorflow as tf

    n, H, W, C = (tf.shape(x)[i] for i in range(4))
    h, w = tf.cast(H, tf.float32), tf.cast(W, tf.float32)
    dy, dx = u[:, 0] * SHIFT_Y * h, u[:, 1] * SHIFT_X * w
    theta = u[:, 2] * TURN * 2.0 * math.pi
    scale = 1.0 + u[:, 3] * ZOOM  # > 1 samples a wider area: zoom out
    cos, sin = (t[:, None, None] * scale[:, None, None] for t in (tf.cos(theta), tf.sin(theta)))
    # output pixel p samples the input at centre + scale * R(theta) (p - centre) - shift,
    # about the centre ((w-1)/2, (h-1)/2) as Keras's layers turn and zoom
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    xs, ys = tf.range(w)[None, None, :] - cx, tf.range(h)[None, :, None] - cy
    sx = tf.clip_by_value(cos * xs - sin * ys + cx - dx[:, None, None], 0.0, w - 1.0)  # clamp:
    sy = tf.clip_by_value(sin * xs + cos * ys + cy - dy[:, None, None], 0.0, h - 1.0)  # edges repeat
    x0, y0 = tf.floor(sx), tf.floor(sy)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    x1, y1 = tf.minimum(x0 + 1, W - 1), tf.minimum(y0 + 1, H - 1)
    flat = tf.reshape(x, [-1, C])
    base = (tf.range(n) * H * W)[:, None, None]
    pixel = lambda yy, xx: tf.gather(flat, base + yy * W + xx)
    top = pixel(y0, x0) * (1.0 - fx) + pixel(y0, x1) * fx
    bottom = pixel(y1, x0) * (1.0 - fx) + pixel(y1, x1) * fx
    return top * (1.0 - fy) + bottom * fy
