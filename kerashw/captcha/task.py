"""The captcha part for train.run: pipelines, the four-head loss, per-character and
whole-captcha accuracy.

Whole-captcha accuracy needs all four heads at once, which a per-output Keras
metric never sees. So training runs a wrapper model with one more output,
`chars` (the four softmaxes stacked, no loss), whose metric is "all four right".
The wrapper shares every layer with the four-head model that gets saved and exported.
"""
from __future__ import annotations

import functools

import keras
import numpy as np
from keras import layers, ops

from kerashw import pipeline
from kerashw.captcha.cache import captcha_splits
from kerashw.captcha.constants import HEADS, NUM_CLASSES
from kerashw.config import DataError, RunSpec
from kerashw.pipeline import Split
from kerashw.rundata import EVAL_BATCH, RunData, sparse_ce

EVAL_BATCH_CAPTCHA = EVAL_BATCH // 4  # a captcha is 23x an MNIST digit: a smaller batch, same memory


def whole_captcha(y_true, y_pred):
    """1 where every character is right; y_true (B, 4) ints, y_pred (B, 4, classes)."""
    pred = ops.argmax(y_pred, axis=-1)
    return ops.cast(ops.all(ops.equal(ops.cast(y_true, pred.dtype), pred), axis=-1), "float32")


def with_chars_output(model: keras.Model) -> keras.Model:
    heads = model.output
    stacked = layers.Concatenate(axis=1, name="chars")(
        [layers.Reshape((1, heads[h].shape[-1]), name=f"{h}_row")(heads[h]) for h in HEADS])
    return keras.Model(model.inputs, {**heads, "chars": stacked}, name=f"{model.name}_train")


def _with_chars(split: Split) -> Split:
    y = dict(split.y)
    y["chars"] = np.stack([split.y[h] for h in HEADS], axis=1)
    return Split(split.x, y)


def to_record(logs: dict) -> dict:
    """Keras's multi-output log names -> the store's: char_k_acc, whole, top1 = mean char acc."""
    rec = {"loss": float(logs["loss"])}
    for h in HEADS:
        rec[f"{h}_acc"] = float(logs[f"{h}_acc"])
    rec["whole"] = float(logs["chars_whole"])
    rec["top1"] = sum(rec[f"{h}_acc"] for h in HEADS) / len(HEADS)
    return rec


def confusion(model, split: Split) -> dict:
    """Per position, a 19x19 count matrix [true][predicted] over a split."""
    pred = model.predict(split.x.astype("float32") / 255.0, batch_size=EVAL_BATCH_CAPTCHA, verbose=0)
    out = {}
    for h in HEADS:
        m = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=int)
        np.add.at(m, (split.y[h], np.argmax(pred[h], axis=-1)), 1)
        out[h] = m.tolist()
    return out


def _splits(spec: RunSpec, options):
    """The run's splits and skipped files, exactly as it trains on them."""
    return captcha_splits(spec.data, spec.preprocess, spec.seed, spec.limit, counts=spec.split,
                          skip_bad=spec.skip_bad, progress=options.progress, extra=spec.extra)


def prepare(spec: RunSpec, options) -> RunData:
    return from_splits(spec, *_splits(spec, options))


def split(spec: RunSpec, options, name: str) -> Split:
    """One of the run's splits (train, val, test) as it trained on it."""
    return _splits(spec, options)[0][name]


def from_splits(spec: RunSpec, splits: dict[str, Split], skipped=()) -> RunData:
    """The RunData over splits already in memory (uint8 images, per-head labels)."""
    splits = {p: _with_chars(s) for p, s in splits.items()}
    train = splits["train"]
    where = spec.data or "the synthetic set"
    if len(train) < spec.batch_size:
        raise DataError(f"{where}: {len(train)} training image(s), fewer than one batch of {spec.batch_size}")
    for k, phase in ((1, "val"), (2, "test")):
        asked_none = spec.split is not None and spec.split[k] == 0
        if not len(splits[phase]) and not asked_none:  # an empty split would "finish" unmeasured
            raise DataError(f"{where}: no {phase} images; add some, or pass --split TRAIN VAL TEST "
                            f"with {phase} 0 to train without them")
    metrics = {h: [keras.metrics.SparseCategoricalAccuracy(name="acc")] for h in HEADS}
    metrics["chars"] = [keras.metrics.MeanMetricWrapper(whole_captcha, name="whole")]
    return RunData(
        input_shape=train.x.shape[1:],
        num_classes=NUM_CLASSES,
        train=functools.partial(pipeline.make_train_dataset, train, spec.batch_size, seed=spec.seed,
                                epochs=spec.epochs, augment=spec.augment, arcs=spec.arcs,
                                min_steps=spec.min_steps),
        eval_sets={p: (pipeline.make_dataset(splits[p], EVAL_BATCH_CAPTCHA),
                       len(splits[p])) for p in ("val", "test") if len(splits[p])},
        n_train=len(train),
        steps=pipeline.steps_per_epoch(len(train), spec.batch_size, spec.epochs, spec.min_steps),
        loss={h: sparse_ce(spec.label_smoothing) for h in HEADS},
        metrics=metrics,
        wrap=with_chars_output,
        to_record=to_record,
        skipped=list(skipped),
        finalize=(lambda model: {"confusion_test": confusion(model, splits["test"])})
        if len(splits["test"]) else None,
    )
