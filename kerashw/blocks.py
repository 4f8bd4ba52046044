"""Reusable layer groups, applied functionally to a tensor (keras-hub style)."""
from __future__ import annotations

from keras import layers


def apply_conv_bn(x, filters, kernel_size, *, strides=1, activation="relu", name, bias=False):
    """Conv -> BatchNorm -> activation. No conv bias: BatchNorm's beta replaces it."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                      use_bias=bias, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"{name}_bn")(x)
    if activation:
        x = layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def apply_basic_block(x, filters, *, strides=1, name):
    """ResNet basic block (two 3x3 convs); a 1x1 projection when the shape changes."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = apply_conv_bn(x, filters, 1, strides=strides, activation=None,
                                 name=f"{name}_0")
    x = apply_conv_bn(x, filters, 3, strides=strides, name=f"{name}_1")
    x = apply_conv_bn(x, filters, 3, activation=None, name=f"{name}_2")
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def apply_stack(x, filters, blocks, *, strides=1, name):
    """`blocks` basic blocks; only the first one strides."""
    for i in range(1, blocks + 1):
        x = apply_basic_block(x, filters, strides=strides if i == 1 else 1,
                              name=f"{name}_block{i}")
    return x
