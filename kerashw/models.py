"""Model builders: functional, uncompiled, every layer named from a prefix.

Each builder is `build_<name>(input_shape, num_classes, *, activation, name) -> keras.Model`.
MNIST models end in one softmax; captcha models in four heads char_1..char_4.
"""
from __future__ import annotations

import keras
from keras import layers

from kerashw import blocks


def build_nn(input_shape=(28, 28), num_classes=10, *, activation="relu", name="nn"):
    """Fully connected net: Flatten(784) -> Dense 256 -> Dense 128 -> Dense 10 softmax.

    The hidden activation is the report's study 2 (relu, softmax, sigmoid).
    235,146 parameters on 28x28 input.
    """
    inputs = keras.Input(shape=input_shape, name=f"{name}_input")
    x = layers.Flatten(name=f"{name}_flatten")(inputs)
    x = layers.Dense(256, activation=activation, name=f"{name}_1_dense")(x)
    x = layers.Dense(128, activation=activation, name=f"{name}_2_dense")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name=f"{name}_predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def build_cnn(input_shape=(28, 28), num_classes=10, *, activation="relu", name="cnn"):
    """Small conv net: [Conv 3x3 -> BatchNorm -> act -> MaxPool] x 2 (32, 64 filters)
    -> Flatten -> Dense 128 -> Dense 10 softmax.

    BatchNorm keeps it trainable at the study's Adam lr of 0.05, which stalls the
    same net without it. 421,642 parameters (421,450 trainable) on 28x28 input.
    """
    inputs = keras.Input(shape=input_shape, name=f"{name}_input")
    x = inputs
    if len(input_shape) == 2:
        x = layers.Reshape((*input_shape, 1), name=f"{name}_reshape")(x)
    for i, filters in enumerate((32, 64), start=1):
        x = blocks.apply_conv_bn(x, filters, 3, activation=activation, name=f"{name}_{i}")
        x = layers.MaxPooling2D(2, name=f"{name}_{i}_pool")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(128, activation=activation, name=f"{name}_dense")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name=f"{name}_predictions")(x)
    return keras.Model(inputs, outputs, name=name)


MODELS = {
    "nn": build_nn,
    "cnn": build_cnn,
}


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
