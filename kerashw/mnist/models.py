"""The MNIST nets: functional, uncompiled, every layer named from a prefix; one softmax."""
from __future__ import annotations

import keras
from keras import layers

from kerashw import blocks
from kerashw.mnist.constants import CLASSES, INPUT_SHAPE


def build_nn(input_shape=INPUT_SHAPE, num_classes=len(CLASSES), *, activation="relu", init="torch", name="nn"):
    """Fully connected net: Flatten(784) -> Dense 256 -> Dense 128 -> Dense 10 softmax.

    The hidden activation is the report's study 2 (relu, softmax, sigmoid).
    235,146 parameters on 28x28 input.
    """
    inputs = keras.Input(shape=input_shape, name=f"{name}_input")
    x = layers.Flatten(name=f"{name}_flatten")(inputs)
    x = blocks.dense(x, 256, activation=activation, init=init, name=f"{name}_1_dense")
    x = blocks.dense(x, 128, activation=activation, init=init, name=f"{name}_2_dense")
    outputs = blocks.dense(x, num_classes, activation="softmax", init=init, name=f"{name}_predictions")
    return keras.Model(inputs, outputs, name=name)


def build_cnn(input_shape=INPUT_SHAPE, num_classes=len(CLASSES), *, activation="relu", init="torch", name="cnn"):
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
        x = blocks.apply_conv_bn(x, filters, 3, activation=activation, init=init, name=f"{name}_{i}")
        x = layers.MaxPooling2D(2, name=f"{name}_{i}_pool")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = blocks.dense(x, 128, activation=activation, init=init, name=f"{name}_dense")
    outputs = blocks.dense(x, num_classes, activation="softmax", init=init, name=f"{name}_predictions")
    return keras.Model(inputs, outputs, name=name)


MODELS = {"nn": build_nn, "cnn": build_cnn}
