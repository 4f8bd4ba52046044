"""The model registry: every builder of both homework parts, by name.

Each builder is `build_<name>(input_shape, num_classes, *, activation, init, name) -> keras.Model`
(kerashw/mnist/models.py: one softmax; kerashw/captcha/models.py: four heads char_1..char_4).
"""
from __future__ import annotations

import keras

from kerashw.captcha import models as captcha_models
from kerashw.mnist import models as mnist_models

MODELS = {**mnist_models.MODELS, **captcha_models.MODELS}


def get_model(name: str):
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"Unknown model {name!r}. Known: {sorted(MODELS)}") from None


def count_params(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(int(keras.ops.size(w)) for w in model.trainable_weights)
    total = sum(int(keras.ops.size(w)) for w in model.weights)
    return trainable, total


def load_model(path):
    """A run's model.keras, uncompiled. Importing this module registers kerashw's own layer
    (blocks.FusedBatchNormalization), so every loader in kerashw comes through here."""
    return keras.saving.load_model(path, compile=False)
