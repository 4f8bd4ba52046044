"""A training step split into towers: the batch cut into `towers` equal parts whose forward
and backward passes are independent branches of one step, so TensorFlow's inter-op threads
run them side by side, one core each (distribute.configure_threads gives each op one
thread). The slim captcha ResNets (16-32 channels) keep one core busy but not two: an op
of theirs on two threads is 1.2x as fast as on one, two towers on one thread each 1.4x
(docs/results/performance.md, "Towers").

What stays exact: the loss and gradients are the whole batch's (each tower's mean loss
weighted by its share of the batch), the metrics see the whole batch's predictions, and
BatchNorm's moving averages step once, from the whole batch's statistics
(blocks.tower_batches). Keras's per-output loss logs (`char_1_loss`, ..., not stored) average
the towers' values unweighted, as Keras averages batches.

Evaluation and prediction run in towers too (TowerModel.call): inference has no batch
statistics, so the outputs are the whole batch's, and a val pass takes 0.6x the time of one
chain on the towers' one-thread ops (benchmarks/eval_towers.py).

What changes in training: each tower normalises by its own batch statistics (BatchNorm over
batch/towers images, "ghost" batches), as data-parallel training on several devices does
without synchronised BatchNorm. That changes a run's numbers, so `towers` is
part of the run's spec (RunSpec.towers), not an execution option.
"""
from __future__ import annotations

import keras

from kerashw import blocks


class TowerModel(keras.Model):
    """A functional model whose training step runs `towers` towers (TensorFlow backend)."""

    towers = 1

    def train_step(self, data):
        import tensorflow as tf
        from keras.src.trainers.data_adapters import data_adapter_utils

        x, y, sample_weight = data_adapter_utils.unpack_x_y_sample_weight(data)
        if self.towers == 1 or sample_weight is not None:
            return super().train_step(data)
        n = tf.shape(tf.nest.flatten(x)[0])[0]
        weights = self.trainable_weights
        preds, loss, grads = [], 0.0, [None] * len(weights)
        with blocks.tower_batches() as bn_calls:
            for size, (xk, yk) in _towers((x, y), n, self.towers):
                share = tf.cast(size, tf.float32) / tf.cast(n, tf.float32)
                bn_calls.weight = share
                with tf.GradientTape() as tape:
                    pred = self(xk, training=True)
                    part = self._compute_loss(x=xk, y=yk, y_pred=pred, sample_weight=None, training=True)
                    scaled = self.optimizer.scale_loss(part)
                loss += part * share
                for i, g in enumerate(tape.gradient(scaled, weights)):
                    g = g * tf.cast(share, g.dtype)
                    grads[i] = g if grads[i] is None else grads[i] + g
                preds.append(tf.nest.map_structure(lambda t: t[:size], pred))
        blocks.update_from_towers(bn_calls)
        self._loss_tracker.update_state(loss, sample_weight=n)
        self.optimizer.apply_gradients(zip(grads, weights))
        return self.compute_metrics(x, y, _joined(preds), sample_weight=None)

    def call(self, inputs, training=None, mask=None, **kwargs):
        """Inference (evaluate, predict) in towers too: a forward pass has no batch statistics,
        so the towers' outputs are the whole batch's, and both cores work (one op on one thread
        each, as the training threads are set). Training calls come here per tower."""
        import tensorflow as tf

        if training or self.towers == 1 or mask is not None or kwargs:
            return super().call(inputs, training=training, mask=mask, **kwargs)
        n = tf.shape(tf.nest.flatten(inputs)[0])[0]
        return _joined([tf.nest.map_structure(lambda t: t[:size], super(TowerModel, self).call(xk, training=training))
                        for size, xk in _towers(inputs, n, self.towers)])


def _towers(batch, n, towers: int):
    """(size, part) for each tower: the batch cut into `towers` parts whose sizes differ by at
    most one. A tower a short batch leaves empty gets the batch's first item, with size 0 (an
    empty batch has no BatchNorm statistics): its share and outputs are then dropped."""
    import tensorflow as tf

    start = 0
    for k in range(towers):
        size = (n + towers - 1 - k) // towers
        idx = tf.range(start, start + tf.maximum(size, 1)) % n
        start += size
        yield size, tf.nest.map_structure(lambda t: tf.gather(t, idx), batch)


def _joined(parts):
    import tensorflow as tf

    return tf.nest.map_structure(lambda *p: tf.concat(p, axis=0), *parts)


def wrap(model: keras.Model, towers: int) -> keras.Model:
    """`model` itself for one tower, else a TowerModel sharing every layer with it."""
    if towers == 1:
        return model
    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"towers={towers} needs Keras's TensorFlow backend, not {keras.backend.backend()!r}")
    unfused = [layer.name for layer in model.layers
               if isinstance(layer, keras.layers.BatchNormalization)
               and not isinstance(layer, blocks.FusedBatchNormalization)]
    if unfused:
        raise ValueError(f"towers={towers} needs the fused BatchNorm (bn='fused'); {unfused[0]} is Keras's own")
    tower_model = TowerModel(model.inputs, model.output, name=model.name)
    tower_model.towers = towers
    return tower_model
