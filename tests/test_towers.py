"""A training step split into towers (kerashw.training.towers): the whole batch's loss,
gradients, metrics and BatchNorm moving averages; BatchNorm normalising per tower."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from kerashw.config import RunSpec


def _dense_model(seed):
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((6,), name="x")
    h = keras.layers.Dense(8, activation="relu", name="h")(inp)
    return keras.Model(inp, {"a": keras.layers.Dense(3, activation="softmax", name="a")(h),
                             "b": keras.layers.Dense(2, activation="softmax", name="b")(h)})


@pytest.mark.parametrize("batch", [8, 7, 1])  # even, odd (towers of 4 and 3), one image (an empty tower)
def test_without_batchnorm_two_towers_train_as_one(batch):
    """No BatchNorm, so nothing is per tower: the same loss, weights and metrics to float rounding,
    whatever the last batch's size."""
    import keras

    from kerashw.training import towers

    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 6)).astype("float32")
    y = {"a": rng.integers(0, 3, 24), "b": rng.integers(0, 2, 24)}
    out = []
    for n in (1, 2):
        model = towers.wrap(_dense_model(1), n)
        assert type(model).__name__ == ("TowerModel" if n == 2 else "Functional")
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                      metrics={"a": ["accuracy"], "b": ["accuracy"]})
        hist = model.fit(x, y, batch_size=batch, epochs=2, shuffle=False, verbose=0).history
        out.append((hist, [w.copy() for w in model.get_weights()]))
    (h1, w1), (h2, w2) = out
    assert not np.allclose(w1[0], _dense_model(1).get_weights()[0])  # it trained
    for a, b in zip(w1, w2):
        np.testing.assert_allclose(a, b, atol=2e-6)
    # the loss and the metrics; Keras's per-output loss logs (a_loss, b_loss) average the towers unweighted
    for key in ("loss", "a_accuracy", "b_accuracy"):
        np.testing.assert_allclose(h1[key], h2[key], atol=1e-5, err_msg=key)


def test_batchnorm_normalises_per_tower_and_steps_its_averages_from_the_whole_batch():
    import keras
    import tensorflow as tf

    from kerashw import blocks
    from kerashw.training import towers

    rng = np.random.default_rng(1)
    # two halves with different means: per-tower normalisation is visible in the loss
    x = np.concatenate([rng.normal(0, 1, (8, 4, 4, 3)), rng.normal(3, 2, (8, 4, 4, 3))]).astype("float32")
    y = rng.integers(0, 2, 16)

    def model(n):
        keras.utils.set_random_seed(2)
        inp = keras.Input((4, 4, 3))
        h = blocks.batch_norm(inp, momentum=0.9, epsilon=1e-5, name="bn")
        h = keras.layers.GlobalAveragePooling2D()(h)
        m = towers.wrap(keras.Model(inp, keras.layers.Dense(2, activation="softmax", name="out")(h)), n)
        m.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")  # lr 0: weights fixed
        return m

    losses, moving = {}, {}
    for n in (1, 2):
        m = model(n)
        losses[n] = m.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0).history["loss"][0]
        bn = m.get_layer("bn")
        moving[n] = (bn.moving_mean.numpy(), bn.moving_variance.numpy())
    # the moving averages: one step towards the whole batch's mean and biased variance
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    for n in (1, 2):
        np.testing.assert_allclose(moving[n][0], 0.1 * mean, rtol=1e-5)
        np.testing.assert_allclose(moving[n][1], 0.9 + 0.1 * var, rtol=1e-5)
    # the loss: each tower normalised by its own half (compare with a hand-made split)
    ref = model(1)
    halves = [ref(tf.constant(x[:8]), training=True), ref(tf.constant(x[8:]), training=True)]
    ce = keras.losses.SparseCategoricalCrossentropy()
    per_tower = float((ce(y[:8], halves[0]) + ce(y[8:], halves[1])) / 2)
    assert losses[2] == pytest.approx(per_tower, rel=1e-5)
    assert abs(losses[2] - losses[1]) > 1e-3  # and that differs from normalising the whole batch


def test_towers_is_part_of_the_run_id_and_checked():
    spec = RunSpec(task="captcha", model="resnet18_mod")
    assert dataclasses.replace(spec, towers=1).run_id == spec.run_id  # earlier ids stand
    assert dataclasses.replace(spec, towers=2).run_id != spec.run_id
    with pytest.raises(ValueError, match="towers must be 1..batch_size \\(64\\), got 0"):
        RunSpec(towers=0)
    with pytest.raises(ValueError, match="towers must be 1..batch_size \\(4\\), got 8"):
        RunSpec(batch_size=4, towers=8)


def test_towers_need_the_fused_batchnorm():
    from kerashw import blocks
    from kerashw.models import get_model
    from kerashw.training import towers

    with blocks.batchnorm("keras"):
        model = get_model("resnet18_tiny")((50, 130, 1), 19)
    with pytest.raises(ValueError, match="towers=2 needs the fused BatchNorm.*resnet18_tiny_stem_bn"):
        towers.wrap(model, 2)


def test_towers_share_the_cores_one_thread_an_op():
    """Set before TensorFlow's first op, so in a fresh process."""
    code = ("from kerashw.training import distribute; import tensorflow as tf; "
            "distribute.configure_threads({threads}, towers={towers}); "
            "print(tf.config.threading.get_intra_op_parallelism_threads(), "
            "tf.config.threading.get_inter_op_parallelism_threads())")
    seen = {}
    for threads, n in ((None, 2), (4, 2), (1, 2), (3, 1)):
        done = subprocess.run([sys.executable, "-c", code.format(threads=threads, towers=n)],
                              capture_output=True, text=True, check=True)
        seen[threads, n] = done.stdout.split()
    import os

    cores = os.cpu_count()
    assert seen[None, 2] == [str(max(1, cores // min(2, cores))), str(min(2, cores))]
    assert seen[4, 2] == ["2", "2"] and seen[1, 2] == ["1", "1"] and seen[3, 1] == ["3", "3"]


@pytest.mark.slow
def test_a_run_in_towers_resumes_exactly(tmp_path, synth_folder):
    """A captcha run split into two towers, stopped as its last epoch starts and resumed,
    ends with the unbroken run's numbers (BatchNorm's averages included: they are in the
    saved model's test numbers)."""
    import threading

    from kerashw.store import Store
    from kerashw.training import train
    from test_reliability import StopAtEpoch  # a stop request as epoch N starts

    # 60 = 3 x 16 + 12: a short last batch; lr 3e-4 keeps 4 steps an epoch from tripping the divergence check
    spec = RunSpec(task="captcha", model="resnet18_mod", data=str(synth_folder), limit=60, batch_size=16, lr=3e-4,
                   preprocess="denoise", epochs=3, towers=2, augment=True, split=(60, 20, 20))
    whole = train.run(spec, store=Store(tmp_path / "unbroken"))
    store = Store(tmp_path / "broken")
    stop = threading.Event()
    first = train.run(spec, store=store, listener=StopAtEpoch(3, stop), cancel=stop)
    assert whole.status == "finished" and first.status == "interrupted"
    resumed = train.run(spec, store=store)
    assert resumed.status == "finished" and resumed.run_id == whole.run_id

    def numbers(result):
        return {phase: {k: v for k, v in m.items() if k != "seconds"} for phase, m in result.final.items()}

    assert numbers(resumed) == numbers(whole)
    assert set(numbers(whole)) == {"train", "val", "test"}


@pytest.mark.parametrize("batch", [16, 7, 1])  # even, odd, one image (an empty tower)
def test_inference_in_towers_gives_the_one_tower_outputs_and_evaluation(batch):
    """evaluate and predict run in towers too (both cores): with no batch statistics in inference,
    the outputs, loss and metrics are the one-tower model's."""
    import keras

    from kerashw import blocks
    from kerashw.training import towers

    rng = np.random.default_rng(4)
    x = rng.normal(1, 2, (23, 4, 4, 3)).astype("float32")
    y = rng.integers(0, 2, 23)
    seen = []

    class Sizes(keras.layers.Layer):  # the batch sizes the layers see, when called eagerly
        def call(self, t):
            if isinstance(t.shape[0], int):
                seen.append(t.shape[0])
            return t

    keras.utils.set_random_seed(2)
    inp = keras.Input((4, 4, 3))
    h = blocks.batch_norm(Sizes()(inp), momentum=0.9, epsilon=1e-5, name="bn")
    h = keras.layers.GlobalAveragePooling2D()(h)
    one = keras.Model(inp, keras.layers.Dense(2, activation="softmax", name="out")(h))
    one.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    one.fit(x, y, batch_size=8, epochs=2, verbose=0)  # moving statistics away from their start
    two = towers.wrap(one, 2)
    two.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    np.testing.assert_allclose(two.predict(x, batch_size=batch, verbose=0), one.predict(x, batch_size=batch, verbose=0),
                               atol=1e-6)
    e1 = one.evaluate(x, y, batch_size=batch, verbose=0, return_dict=True)
    e2 = two.evaluate(x, y, batch_size=batch, verbose=0, return_dict=True)
    assert e1.keys() == e2.keys()
    seen.clear()
    two(x[:7], training=False)
    assert seen == [4, 3]  # two towers side by side
    for key in e1:
        np.testing.assert_allclose(e2[key], e1[key], atol=1e-6, err_msg=key)
