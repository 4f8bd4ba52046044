"""Reusable layer groups, applied functionally to a tensor (keras-hub style).

Every weight layer goes through `conv2d` / `dense`, so the weight initialisation
(`init`) is decided in one place:

- "torch": PyTorch's default for Conv2d and Linear, kaiming-uniform with a=sqrt(5)
  on the kernel, i.e. uniform in +-1/sqrt(fan_in), and the bias uniform in the same
  bound. Measured on real captchas (docs/results/captcha.md), this is what makes
  resnet18_mod learn as fast in Keras as in PyTorch at the report's Adam 1e-3.
- "keras": Keras's defaults, Glorot-uniform kernels and zero bias (runs stored
  before `init` existed were trained this way).
"""
from __future__ import annotations

import contextlib
import math
import threading

import keras
from keras import layers

from kerashw.config import TrainOptions

INITS = ("torch", "keras")


@keras.saving.register_keras_serializable(package="kerashw")
class FusedBatchNormalization(layers.BatchNormalization):
    """Keras's BatchNormalization, the same weights, config and inference, but training
    through TensorFlow's fused kernel: one FusedBatchNormV3 op (oneDNN's on a CPU, fused
    with the ReLU after it by Grappler) and one gradient op per layer. Keras 3 computes
    moments, then normalises, as a dozen small ops over the whole activation and as many
    again backwards: for 16-32 channels those memory passes cost as much as the
    convolutions (docs/results/performance.md). Batch statistics are the same (the
    moving variance gets Keras's biased batch variance, not the kernel's Bessel-corrected
    one); sums run in another order, so a run's numbers differ from a `bn="keras"` run's
    in the last digits, as another thread count does (TrainOptions.bn).
    Other backends, masks, renorm or another axis fall back to Keras's own path."""

    def _fusable(self, inputs, training, mask) -> bool:
        return (bool(training) and self.trainable and mask is None and not self.renorm
                and keras.backend.backend() == "tensorflow" and len(inputs.shape) == 4
                and self.axis in (-1, 3) and self.scale and self.center)

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        # 16-bit activations go in as they are (the kernel keeps its statistics in float32)
        x = inputs if inputs.dtype in (tf.bfloat16, tf.float16) else tf.cast(inputs, tf.float32)
        y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=tf.cast(self.gamma, tf.float32), offset=tf.cast(self.beta, tf.float32),
            mean=tf.zeros_like(self.moving_mean, tf.float32), variance=tf.zeros_like(self.moving_variance, tf.float32),
            epsilon=self.epsilon, exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
        n = tf.cast(tf.size(x, out_type=tf.int64) // tf.cast(tf.shape(x)[-1], tf.int64), tf.float32)
        variance = variance * (n - 1.0) / tf.maximum(n, 1.0)  # the kernel's unbiased -> Keras's biased
        calls = getattr(_tower_batches, "calls", None)
        if calls is not None:  # a tower of a split batch: the step updates once, from all towers
            calls.append((self, mean, variance, calls.weight))
        else:
            self.update_moving(mean, variance)
        return tf.cast(y, self.compute_dtype)

    def update_moving(self, mean, variance) -> None:
        """One step of the moving averages towards a batch's mean and (biased) variance."""
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))


class _TowerCalls(list):
    weight = None  # the current tower's share of the batch (set by the step before its forward pass)


_tower_batches = threading.local()  # the TUI traces its steps in a worker thread


@contextlib.contextmanager
def tower_batches():
    """Inside, fused BatchNorm layers in training normalise by their input's own statistics
    but leave the moving averages alone, listing (layer, mean, variance, weight) per call
    instead, `weight` being the list's `weight` at the call (the tower's share of the batch):
    a step split into towers (kerashw.training.towers) then updates each layer once, from the
    whole batch's statistics, as one unsplit call would have."""
    before = getattr(_tower_batches, "calls", None)
    _tower_batches.calls = calls = _TowerCalls()
    try:
        yield calls
    finally:
        _tower_batches.calls = before


def update_from_towers(calls) -> None:
    """Each layer's moving averages stepped once towards the pooled statistics of its calls
    (the whole batch's mean, and its biased variance: within-tower plus between-tower)."""
    import tensorflow as tf

    by_layer: dict[int, list] = {}
    for layer, mean, variance, weight in calls:
        by_layer.setdefault(id(layer), []).append((layer, mean, variance, weight))
    for parts in by_layer.values():
        mean = tf.add_n([m * w for _, m, _, w in parts])
        square = tf.add_n([(v + tf.square(m)) * w for _, m, v, w in parts])
        parts[0][0].update_moving(mean, tf.maximum(square - tf.square(mean), 0.0))


_BN = {"fused": FusedBatchNormalization, "keras": layers.BatchNormalization}  # config.BATCHNORMS
_bn_kind = [TrainOptions.bn]  # what `batch_norm` builds; train.build sets a run's with `batchnorm`


@contextlib.contextmanager
def batchnorm(kind: str):
    """Build the models inside with BatchNorm layers of `kind` (a key of _BN; a run's `bn`).
    A context, like Keras's dtype policy, so the builders need not pass it down: how a
    layer trains is the trainer's business, not the architecture's."""
    if kind not in _BN:
        raise ValueError(f"Unknown bn {kind!r}. Known: {list(_BN)}")
    before, _bn_kind[0] = _bn_kind[0], kind
    try:
        yield
    finally:
        _bn_kind[0] = before


def batch_norm(x, *, name, **kwargs):
    return _BN[_bn_kind[0]](name=name, **kwargs)(x)


def initializers(init: str, fan_in: int, *, bias: bool = True) -> dict:
    """kernel_initializer / bias_initializer keyword arguments for one layer."""
    if init == "keras":
        return {}
    if init != "torch":
        raise ValueError(f"Unknown init {init!r}. Known: {list(INITS)}")
    bound = 1.0 / math.sqrt(fan_in)
    # VarianceScaling(1/3, fan_in, uniform) draws from +-sqrt(3 * (1/3) / fan_in) = +-1/sqrt(fan_in).
    kwargs = {"kernel_initializer": keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform")}
    if bias:
        kwargs["bias_initializer"] = keras.initializers.RandomUniform(-bound, bound)
    return kwargs


def conv2d(x, filters, kernel_size, *, name, init="torch", strides=1, padding="same",
           activation=None, use_bias=True):
    fan_in = kernel_size * kernel_size * int(x.shape[-1])
    return layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, activation=activation,
                         use_bias=use_bias, name=name,
                         **initializers(init, fan_in, bias=use_bias))(x)


def dense(x, units, *, name, init="torch", activation=None):
    # a softmax output computes in float32 under a mixed policy too: 16-bit logits lose
    # the small differences that cross-entropy and top-k read (a no-op under float32)
    dtype = {"dtype": "float32"} if activation == "softmax" else {}
    return layers.Dense(units, activation=activation, name=name, **dtype,
                        **initializers(init, int(x.shape[-1])))(x)


def apply_conv_bn(x, filters, kernel_size, *, strides=1, activation="relu", name, init="torch"):
    """Conv -> BatchNorm -> activation. No conv bias: BatchNorm's beta replaces it.
    BatchNorm's momentum and epsilon are PyTorch's (0.1 -> Keras 0.9, 1e-5)."""
    x = conv2d(x, filters, kernel_size, strides=strides, use_bias=False, init=init, name=f"{name}_conv")
    x = batch_norm(x, epsilon=1e-5, momentum=0.9, name=f"{name}_bn")
    if activation:
        x = layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def apply_basic_block(x, filters, *, strides=1, activation="relu", name, init="torch"):
    """ResNet basic block (two 3x3 convs); a 1x1 projection when the shape changes."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = apply_conv_bn(x, filters, 1, strides=strides, activation=None, init=init,
                                 name=f"{name}_0")
    x = apply_conv_bn(x, filters, 3, strides=strides, activation=activation, init=init, name=f"{name}_1")
    x = apply_conv_bn(x, filters, 3, activation=None, init=init, name=f"{name}_2")
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation(activation, name=f"{name}_out")(x)


def apply_stack(x, filters, blocks, *, strides=1, activation="relu", name, init="torch"):
    """`blocks` basic blocks; only the first one strides."""
    for i in range(1, blocks + 1):
        x = apply_basic_block(x, filters, strides=strides if i == 1 else 1, activation=activation,
                              init=init, name=f"{name}_block{i}")
    return x


def apply_position_pool(x, positions, *, name, init="torch"):
    """One attention map per character position over the feature map: a 1x1 conv scores
    every spatial cell for each position, a softmax over the cells turns the scores into
    weights, and each position gets its own weighted average of the features.
    Global average pooling gives all four heads the same vector, so each head must find
    "its" character in channels alone; this lets each head look at its own place, for
    (channels + 1) x positions parameters. Returns one (batch, channels) tensor per position."""
    h, w, c = (int(d) for d in x.shape[1:])
    scores = conv2d(x, positions, 1, init=init, name=f"{name}_scores")
    scores = layers.Reshape((h * w, positions), name=f"{name}_scores_flat")(scores)
    weights = layers.Softmax(axis=1, name=f"{name}_weights")(scores)
    feats = layers.Reshape((h * w, c), name=f"{name}_features_flat")(x)
    pooled = layers.Dot(axes=1, name=f"{name}_pooled")([weights, feats])  # (batch, positions, c)
    return [layers.Flatten(name=f"{name}_{k + 1}")(
                layers.Cropping1D((k, positions - 1 - k), name=f"{name}_{k + 1}_pick")(pooled))
            for k in range(positions)]
