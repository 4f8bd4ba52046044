"""The captcha models: the TA baseline, the report's SimpleCNN and ResNet18 family, each ending
in four softmax heads char_1..char_4. Functional, uncompiled, every layer named from a prefix."""
from __future__ import annotations

import functools

import keras
from keras import layers

from kerashw import blocks
from kerashw.captcha.constants import HEADS, HEIGHT, NUM_CLASSES, WIDTH

CAPTCHA_INPUT = (HEIGHT, WIDTH, 3)  # `original`; the denoise variants have 1 channel


def _heads(x, num_classes, init):
    """Four softmax heads named char_1..char_4, as in the TA baseline. `x` is one feature
    vector for all heads, or a list with one per head (position pooling)."""
    xs = x if isinstance(x, list) else [x] * len(HEADS)
    return {h: blocks.dense(xi, num_classes, activation="softmax", init=init, name=h) for h, xi in zip(HEADS, xs)}


def build_baseline(input_shape=CAPTCHA_INPUT, num_classes=NUM_CLASSES, *, activation="relu", init="torch", name="baseline"):
    """The TA's CNN: Conv32(same)-Conv32-Pool-Conv64(same)-Conv64-Pool-Conv128(same)-Conv128-BN-Pool
    -Conv256(same)-Conv256(same)-Pool-Conv512(same)-BN-Pool-Flatten-Dropout(0.5)-4 x Dense(19)."""
    inputs = keras.Input(shape=input_shape, name=f"{name}_input")
    x = inputs
    plan = [(32, "same"), (32, "valid"), "pool", (64, "same"), (64, "valid"), "pool",
            (128, "same"), (128, "valid"), "bn", "pool", (256, "same"), (256, "same"), "pool",
            (512, "same"), "bn", "pool"]
    for i, step in enumerate(plan, start=1):
        if step == "pool":
            x = layers.MaxPooling2D(2, name=f"{name}_{i}_pool")(x)
        elif step == "bn":
            x = blocks.batch_norm(x, name=f"{name}_{i}_bn")
        else:
            x = blocks.conv2d(x, step[0], 3, padding=step[1], activation=activation, init=init,
                              name=f"{name}_{i}_conv")
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dropout(0.5, name=f"{name}_dropout")(x)
    return keras.Model(inputs, _heads(x, num_classes, init), name=name)


def build_simple_cnn(input_shape=CAPTCHA_INPUT, num_classes=NUM_CLASSES, *, activation="relu", init="torch", name="simple_cnn"):
    """A plain small CNN with a large dense layer: Conv32-Pool-Conv64-Pool-Flatten-Dense512-4 heads.
    Most of its ~12.6M parameters sit in the dense layer, as in the report's SimpleCNN."""
    inputs = keras.Input(shape=input_shape, name=f"{name}_input")
    x = inputs
    for i, filters in enumerate((32, 64), start=1):
        x = blocks.conv2d(x, filters, 3, activation=activation, init=init, name=f"{name}_{i}_conv")
        x = layers.MaxPooling2D(2, name=f"{name}_{i}_pool")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = blocks.dense(x, 512, activation=activation, init=init, name=f"{name}_dense")
    return keras.Model(inputs, _heads(x, num_classes, init), name=name)


def build_resnet18(input_shape=CAPTCHA_INPUT, num_classes=NUM_CLASSES, *, activation="relu", init="torch", name="resnet18",
                   channels=(64, 64, 128, 256, 512), blocks_per_stage=(2, 2, 2, 2), strides=(1, 2, 2, 2),
                   pool="avg", stem_pool=True):
    """ResNet18 (torchvision layout): 7x7/2 stem conv + 3x3/2 max pool, four stages of basic
    blocks, global average pool (or `pool="position"`: one attention pool per head,
    blocks.apply_position_pool), four heads. `channels` = stem then each stage;
    `stem_pool=False` drops the max pool: every stage sees 2x the resolution (4x the work)."""
    inputs = keras.Input(shape=input_shape, name=f"{name}_input")
    x = blocks.apply_conv_bn(inputs, channels[0], 7, strides=2, activation=activation, init=init,
                             name=f"{name}_stem")
    if stem_pool:
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_stem_pool")(x)
    for i, (filters, n, stride) in enumerate(zip(channels[1:], blocks_per_stage, strides), start=1):
        x = blocks.apply_stack(x, filters, n, strides=stride, activation=activation, init=init,
                               name=f"{name}_stage{i}")
    if pool == "position":
        x = blocks.apply_position_pool(x, len(HEADS), init=init, name=f"{name}_pos_pool")
    else:
        x = layers.GlobalAveragePooling2D(name=f"{name}_avg_pool")(x)
    return keras.Model(inputs, _heads(x, num_classes, init), name=name)


def build_resnet18_mod(input_shape=CAPTCHA_INPUT, num_classes=NUM_CLASSES, *, activation="relu", init="torch", name="resnet18_mod"):
    """The report's slim ResNet18: the same builder with channels 16,16,16,32,32 (95,164 params)."""
    return build_resnet18(input_shape, num_classes, activation=activation, init=init, name=name,
                          channels=(16, 16, 16, 32, 32))


def build_resnet18_tiny(input_shape=CAPTCHA_INPUT, num_classes=NUM_CLASSES, *, activation="relu", init="torch",
                       name="resnet18_tiny"):
    """The same builder at channels 6,8,8,16,16: 24,906 parameters, 1/450 of ResNet18."""
    return build_resnet18(input_shape, num_classes, activation=activation, init=init, name=name,
                          channels=(6, 8, 8, 16, 16))


MODELS = {
    "baseline": build_baseline,
    "simple_cnn": build_simple_cnn,
    "resnet18": build_resnet18,
    "resnet18_mod": build_resnet18_mod,
    "resnet18_tiny": build_resnet18_tiny,
}
# Slim ResNets beyond the report, the same builder: (channels, head pooling, stem max pool).
# `_pos`: one attention pool per head instead of one global average (+33 params a head);
# `_hr`: also no max pool after the stem, so every stage sees twice the resolution (same
# parameters, about twice the time per step; a 4x9 last feature map instead of 2x5).
SLIM_VARIANTS = {
    "resnet18_mod_pos": ((16, 16, 16, 32, 32), "position", True),  # 95,296 params
    "resnet18_mod_hr": ((16, 16, 16, 32, 32), "position", False),  # 95,296
    "resnet18_tiny_pos": ((6, 8, 8, 16, 16), "position", True),  # 24,974
    "resnet18_tiny_hr": ((6, 8, 8, 16, 16), "position", False),  # 24,974
}
MODELS.update({name: functools.partial(build_resnet18, name=name, channels=channels, pool=pool, stem_pool=stem_pool)
               for name, (channels, pool, stem_pool) in SLIM_VARIANTS.items()})


