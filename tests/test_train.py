import threading

import pytest

from kerashw.training import train
from kerashw.listener import Listener
from kerashw.config import RunSpec, TrainOptions
from kerashw.identity import identify, identify_all
from kerashw.studies import get_study


def opts(mnist_path):
    return TrainOptions(mnist=str(mnist_path))


def test_one_epoch_on_a_slice_stores_three_phases(store, mnist_path):
    spec = RunSpec(epochs=1, limit=512)
    spec = identify(spec, opts(mnist_path))  # the id names the MNIST file's content
    result = train.run(spec, store=store, options=opts(mnist_path), studies=["t"])
    assert result.status == "finished"
    eps = store.epochs(spec.run_id)
    assert [(e.epoch, e.phase, e.samples) for e in eps] == [
        (1, "train", 512), (1, "val", 6000), (1, "test", 10000)]
    for e in eps:
        assert 0 < e.get("loss") < 20 and 0 <= e.get("top1") <= e.get("top3") <= 1
    assert eps[2].get("top1") > 0.2  # twice chance on held-out data after 8 steps
    row = store.get(spec.run_id)
    assert row.status == "finished" and row.trainable_params == 235_146
    assert row.best["epoch"] == 1 and row.versions["keras"].startswith("3")
    run_dir = store.run_dir(spec.run_id)
    assert (run_dir / "metrics.csv").exists() and (run_dir / "model.keras").exists()
    assert "test_top1" in (run_dir / "metrics.csv").read_text().splitlines()[0]


def test_how_batchnorm_trains_is_kept_with_the_run_not_in_its_id(store, mnist_path):
    """TrainOptions.bn picks the layer class (kerashw.blocks); the run id stays, the store
    keeps which one trained the run, and the saved model has that class."""
    import keras

    spec = identify(RunSpec(model="cnn", epochs=1, limit=128), opts(mnist_path))
    options = TrainOptions(mnist=str(mnist_path), bn="keras")
    assert train.run(spec, store=store, options=options).status == "finished"
    assert store.get(spec.run_id).versions["batchnorm"] == "keras"
    model = keras.saving.load_model(store.run_dir(spec.run_id) / "model.keras", compile=False)
    assert {type(l).__name__ for l in model.layers if "Normalization" in type(l).__name__} == {"BatchNormalization"}
    again = train.run(spec, store=store, options=opts(mnist_path))  # again, the default: fused
    assert again.status == "finished" and store.get(spec.run_id).versions["batchnorm"] == "fused"


@pytest.mark.slow
def test_the_test_split_is_evaluated_once_at_the_end_unless_asked_every_epoch(store, tiny_mnist, tmp_path):
    """The default evaluates test after the last epoch only; "every" after each. The weights,
    the run id and every shared number are the same; metrics.csv has test columns either way."""
    import csv

    from kerashw.config import TrainOptions
    from kerashw.store import Store

    spec = RunSpec(epochs=3, limit=256, batch_size=32)
    end = train.run(spec, store=store, options=opts(tiny_mnist))
    every = train.run(spec, store=Store(tmp_path / "every"),
                      options=TrainOptions(mnist=str(tiny_mnist), eval_test="every"))
    assert end.run_id == every.run_id
    phases = lambda r: [(e.epoch, e.phase) for e in r.history]  # noqa: E731
    assert phases(end) == [(1, "train"), (1, "val"), (2, "train"), (2, "val"), (3, "train"), (3, "val"), (3, "test")]
    assert phases(every) == [(e, p) for e in (1, 2, 3) for p in ("train", "val", "test")]
    strip = lambda recs: [(r.epoch, r.phase, r.metrics) for r in recs if r.phase != "test" or r.epoch == 3]  # noqa: E731
    assert strip(end.history) == strip(every.history)  # the same numbers, to the digit
    rows = list(csv.DictReader(open(store.run_dir(end.run_id) / "metrics.csv")))
    assert [r["test_top1"] for r in rows[:2]] == ["NA", "NA"]
    assert float(rows[2]["test_top1"]) == pytest.approx(end.final["test"]["top1"])


@pytest.mark.slow
def test_same_seed_same_numbers(store, tiny_mnist, tmp_path):
    from kerashw.store import Store

    spec = RunSpec(epochs=1, limit=256, batch_size=32)
    a = train.run(spec, store=store, options=opts(tiny_mnist))
    b = train.run(spec, store=Store(tmp_path / "other"), options=opts(tiny_mnist))
    assert a.final["test"]["loss"] == pytest.approx(b.final["test"]["loss"], rel=1e-6)
    c = train.run(RunSpec(epochs=1, limit=256, batch_size=32, seed=7), store=store,
                  options=opts(tiny_mnist))
    assert c.final["test"]["loss"] != pytest.approx(a.final["test"]["loss"], rel=1e-6)


@pytest.mark.slow
def test_study_shares_baseline_and_resume_skips(store, tiny_mnist):
    seen = []

    class Count(Listener):
        def run_started(self, spec, index, total, params):
            seen.append(spec.run_id)

    def specs(name):
        return [s.__class__(**{**s.to_dict(), "epochs": 1, "limit": 256}) for s in get_study(name).make()]

    train.run_study(specs("lr"), store=store, studies=["lr"], listener=Count(), options=opts(tiny_mnist))
    assert len(seen) == 3
    results = train.run_study(specs("optimizer"), store=store, studies=["optimizer"], listener=Count(),
                              options=opts(tiny_mnist))
    assert len(seen) == 4  # the baseline was reused, only sgd trained
    assert [r.status for r in results] == ["skipped", "finished"]
    baseline_id = results[0].run_id
    assert store.get(baseline_id).studies == ["lr", "optimizer"]
    assert len(store.runs(study="lr")) == 3 and len(store.runs(study="optimizer")) == 2
    train.run_study(specs("optimizer")[:1], store=store, studies=["optimizer"], listener=Count(),
                    options=opts(tiny_mnist), force=True)
    assert len(seen) == 5 and seen[-1] == baseline_id  # --force trains a finished run again


def test_huge_learning_rate_is_stored_as_diverged(store, tiny_mnist):
    spec = RunSpec(optimizer="sgd", lr=1e12, epochs=3, limit=512)
    spec = identify(spec, opts(tiny_mnist))  # the id names the MNIST file's content
    results = train.run_study([spec, RunSpec(epochs=1, limit=128)], store=store,
                              options=opts(tiny_mnist))
    assert [r.status for r in results] == ["diverged", "finished"]  # the study went on
    assert store.status(spec.run_id) == "diverged"
    assert len({e.epoch for e in store.epochs(spec.run_id)}) < 3  # TerminateOnNaN stopped it


def test_cancel_marks_interrupted_and_keeps_finished(store, tiny_mnist):
    cancel = threading.Event()

    class CancelInSecondRun(Listener):
        def step(self, step, steps):
            if self.run == 2 and step >= 2:
                cancel.set()

        def run_started(self, spec, index, total, params):
            self.run = index

    specs = [RunSpec(epochs=1, limit=256), RunSpec(epochs=3, limit=2048, lr=0.01), RunSpec(lr=0.25)]
    specs = identify_all(specs, opts(tiny_mnist))
    results = train.run_study(specs, store=store, listener=CancelInSecondRun(), cancel=cancel,
                              options=opts(tiny_mnist))
    assert [r.status for r in results] == ["finished", "interrupted"]  # the third never started
    assert store.status(specs[0].run_id) == "finished"
    assert store.status(specs[1].run_id) == "interrupted"
    assert store.epochs(specs[1].run_id) == []  # cut in its first epoch: no partial epoch stored
    assert store.get(specs[2].run_id) is None


def test_keyboard_interrupt_is_stored(store, tiny_mnist):
    class CtrlC(Listener):
        def step(self, step, steps):
            raise KeyboardInterrupt

    spec = RunSpec(epochs=2, limit=512)
    spec = identify(spec, opts(tiny_mnist))  # the id names the MNIST file's content
    with pytest.raises(KeyboardInterrupt):
        train.run_study([spec], store=store, listener=CtrlC(), options=opts(tiny_mnist))
    assert store.status(spec.run_id) == "interrupted"


def test_steps_per_execution_keeps_progress_updates():
    assert train.steps_per_execution(12_000) == 32
    assert train.steps_per_execution(750) == 30
    assert train.steps_per_execution(63) == 7  # captchas: 3,986 at batch 64, 9 updates an epoch
    assert train.steps_per_execution(47) == 1
    for steps in (8, 63, 74, 188, 750, 12_000):  # the bar moves at least 8 times an epoch
        assert steps // train.steps_per_execution(steps) >= 8


def test_cosine_schedule_warms_up_then_decays_and_adamw_decays_weights():
    import dataclasses

    import keras

    spec = RunSpec(optimizer="adamw", lr=3e-3, weight_decay=1e-4, schedule="cosine", warmup=2, epochs=10)
    opt = train.make_optimizer(spec, steps=100)
    schedule = opt._learning_rate  # the schedule object (learning_rate is its current value)
    assert float(schedule(0)) == 0.0
    assert float(schedule(100)) == pytest.approx(1.5e-3, rel=1e-3)  # halfway up the warm-up
    assert float(schedule(200)) == pytest.approx(3e-3, rel=1e-3)  # the peak
    assert float(schedule(1000)) == pytest.approx(0.0, abs=1e-7)  # decayed to 0 at the end
    assert isinstance(opt, keras.optimizers.AdamW) and opt.weight_decay == pytest.approx(1e-4)
    plain = train.make_optimizer(dataclasses.replace(spec, optimizer="adam", weight_decay=0.0,
                                                     schedule="constant", warmup=0), steps=100)
    assert float(plain.learning_rate) == pytest.approx(3e-3) and plain.weight_decay is None


def test_label_smoothing_loss_matches_the_formula():
    import numpy as np

    from kerashw.rundata import sparse_ce

    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype="float32")
    labels = np.array([0, 1])
    loss = np.asarray(sparse_ce(0.1)(labels, probs))
    target = np.full((2, 3), 0.1 / 3) + 0.9 * np.eye(3)[labels]
    np.testing.assert_allclose(loss, -(target * np.log(probs)).sum(1), rtol=1e-5)
    assert sparse_ce(0.0) == "sparse_categorical_crossentropy"


def test_training_step_is_traced_once_with_its_state_built_before(tiny_mnist):
    """The optimizer's slots and the metrics' totals exist before fit traces its step:
    a tf.function that creates variables is traced twice (half a short run's time)."""
    import tensorflow as tf

    from kerashw import tasks

    spec = RunSpec(epochs=1, limit=64, optimizer="adam", lr=1e-3)
    task = tasks.get(spec.task).prepare(spec, opts(tiny_mnist))
    _, fit_model = train.build(spec, task)
    stream = task.train(start_epoch=0)
    traced = []

    def creator(next_creator, **kw):
        traced.append(tf.inside_function())
        return next_creator(**kw)

    with tf.variable_creator_scope(creator):
        train._build_state(fit_model, stream)
        fit_model.fit(stream, epochs=1, steps_per_epoch=task.steps, verbose=0)
    assert traced and not any(traced)  # all created, none inside the traced step
