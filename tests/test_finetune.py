"""Few labels: --min-steps (an epoch of several whole passes) and --init-from (fine-tuning)."""
import dataclasses

import numpy as np
import pytest
from click.testing import CliRunner

from kerashw.cli import main
from kerashw.config import RunSpec
from kerashw.pipeline import Split, make_train_dataset, passes_per_epoch, steps_per_epoch


def _indices(ds):
    """Each batch of the stream as the training indices it holds (the labels are the indices)."""
    return [b[1].numpy().tolist() for b in ds]


def test_min_steps_makes_an_epoch_whole_shuffled_passes():
    assert passes_per_epoch(100, 64, epochs=10, min_steps=0) == 1
    assert passes_per_epoch(100, 64, epochs=10, min_steps=150) == 8  # 15 steps an epoch, 2 a pass
    assert steps_per_epoch(100, 64, epochs=10, min_steps=150) == 16
    assert steps_per_epoch(4000, 64, epochs=10, min_steps=150) == 63  # a big set: unchanged
    n = 10
    split = Split(np.zeros((n, 2, 2, 1), np.uint8), np.arange(n))
    one = _indices(make_train_dataset(split, 4, seed=1, epochs=2))
    many = _indices(make_train_dataset(split, 4, seed=1, epochs=2, min_steps=18))
    assert len(one) == 2 * 3 and len(many) == 2 * 9  # 3 passes of 3 batches, per epoch
    passes = [sum(many[3 * p:3 * p + 3], []) for p in range(6)]
    assert all(sorted(p) == list(range(n)) for p in passes)  # each pass sees every image once
    assert len({tuple(p) for p in passes}) == 6  # in its own order
    # one pass an epoch is the older stream exactly (epoch e shuffled by (seed, e)): runs
    # stored before min_steps keep their numbers
    import tensorflow as tf

    for epoch in (0, 1):
        old = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=[1, epoch])
        assert sum(one[3 * epoch:3 * epoch + 3], []) == old.numpy().tolist()


def test_new_fields_leave_older_run_ids_alone():
    spec = RunSpec(model="nn", epochs=1)
    assert dataclasses.replace(spec, min_steps=0, init_from=None).run_id == spec.run_id
    assert dataclasses.replace(spec, min_steps=100).run_id != spec.run_id
    with pytest.raises(ValueError, match="12 hex digits"):
        RunSpec(init_from="abc")
    with pytest.raises(ValueError, match="min_steps must be >= 0"):
        RunSpec(min_steps=-1)


def test_copy_weights_names_the_layer_and_both_shapes():
    import keras

    from kerashw.training.warmstart import InitFromError, copy_weights

    def net(width):
        x = keras.Input((4,))
        return keras.Model(x, keras.layers.Dense(width, name="head")(keras.layers.Dense(3, name="body")(x)))

    src, same, other = net(5), net(5), net(6)
    assert copy_weights(src, same, "here") == 2
    assert all(np.array_equal(a, b) for a, b in zip(src.get_weights(), same.get_weights()))
    with pytest.raises(InitFromError, match=r"layer 'head' has weights of shapes \[\(3, 5\), \(5,\)\] there "
                                            r"and \[\(3, 6\), \(6,\)\] here"):
        copy_weights(src, other, "here")


@pytest.mark.slow
def test_init_from_starts_from_the_other_runs_weights(tmp_path, tiny_mnist):
    import keras

    from kerashw.store import Store
    from kerashw.training.warmstart import warm_start

    st = tmp_path / "st"
    base = ["--epochs", "1", "--limit", "128", "--mnist", str(tiny_mnist), "--store", str(st)]
    r = CliRunner().invoke(main, ["train", "--model", "nn", *base])
    assert r.exit_code == 0, r.output
    store = Store(st)
    (parent,) = store.runs()
    # a prefix names the run; the model defaults to that run's; the schedule counts 10 steps
    r = CliRunner().invoke(main, ["train", "--init-from", parent.id[:6], "--min-steps", "10", *base])
    assert r.exit_code == 0, r.output
    assert f"starting from run {parent.id}'s final weights" in r.output
    child = next(row for row in store.runs() if row.id != parent.id)
    assert child.spec["init_from"] == parent.id and child.final["train"]["samples"] == 640  # 5 passes
    # what it started from is that run's final model, not fresh weights
    spec = RunSpec.from_dict(child.spec)
    from kerashw.training.warmstart import InitFromError

    with pytest.raises(InitFromError, match="takes input"):
        warm_start(spec, store, keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))
    loaded = keras.saving.load_model(store.files(parent.id).model, compile=False)
    twin = keras.models.clone_model(loaded)
    assert warm_start(spec, store, twin).startswith(f"starting from run {parent.id}")
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), twin.get_weights()))
    # errors: another model, an unknown id; nothing is stored for either
    r = CliRunner().invoke(main, ["train", "--init-from", parent.id, "--model", "cnn", *base])
    assert r.exit_code != 0 and "trained model 'nn', this run is 'cnn'" in r.output
    r = CliRunner().invoke(main, ["train", "--init-from", "fff", *base])
    assert r.exit_code != 0 and "Run id 'fff' matches no run" in r.output
    assert len(store.runs()) == 2


def test_the_finetune_study_keeps_its_pretraining_on_synthetic_captchas(tmp_path):
    from kerashw.captcha.studies import PRETRAIN
    from kerashw.config import Overrides
    from kerashw.studies import get_study

    study = get_study("captcha-finetune")
    pre, tuned = study.specs(Overrides(data=str(tmp_path), limit=300, epochs=5))
    assert pre == PRETRAIN.resolved() and pre.data is None and pre.limit is None  # shared, untouched
    assert tuned.data == str(tmp_path.resolve()) and tuned.limit == 300 and tuned.epochs == 5
    assert tuned.init_from == pre.run_id and tuned.min_steps > 0


def test_the_finetune_study_takes_a_gentler_recipe_for_a_small_set(tmp_path, synth_folder):
    from kerashw.captcha.studies import FINETUNE, SMALL_SET
    from kerashw.config import Overrides
    from kerashw.studies import get_study

    study = get_study("captcha-finetune")
    _, small = study.specs(Overrides(data=str(synth_folder), limit=50))
    assert (small.lr, small.min_steps) == (SMALL_SET["lr"], SMALL_SET["min_steps"])
    _, mine = study.specs(Overrides(data=str(synth_folder), limit=50, extra={"lr": 0.002}))
    assert (mine.lr, mine.min_steps) == (0.002, SMALL_SET["min_steps"])  # the user's --lr wins
    big = tmp_path / "big"
    big.mkdir()
    (big / "labels.csv").write_text("filename,label\n" + "".join(f"/x/{i}.png,7F37\n" for i in range(1000)))
    _, large = study.specs(Overrides(data=str(big)))  # 500 training images of 1,000 (4:1:3)
    assert (large.lr, large.min_steps) == (FINETUNE.lr, FINETUNE.min_steps)
