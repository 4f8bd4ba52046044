import dataclasses

import pytest

from kerashw.config import Overrides, RunSpec, baseline


def test_run_id_is_stable_and_ignores_fields_the_task_ignores():
    a = RunSpec()
    b = RunSpec(preprocess="denoise", data="/somewhere")  # MNIST ignores both
    assert a.run_id == b.run_id
    assert len(a.run_id) == 12
    assert RunSpec(lr=0.01).run_id != a.run_id
    assert RunSpec(seed=1).run_id != a.run_id


def test_baseline_is_the_reports():
    b = baseline("mnist")
    assert (b.model, b.activation, b.optimizer, b.lr, b.batch_size, b.epochs) == (
        "nn", "relu", "adam", 0.05, 64, 10)


@pytest.mark.parametrize("field,value,known", [
    ("optimizer", "rmsprop", "adam"), ("activation", "gelu2", "relu"),
    ("task", "cifar", "mnist"), ("preprocess", "blur", "denoise"),
])
def test_bad_values_name_what_is_accepted(field, value, known):
    with pytest.raises(ValueError, match=f"{value!r}.*{known}"):
        RunSpec(**{field: value})


def test_numbers_are_checked():
    with pytest.raises(ValueError, match="lr"):
        RunSpec(lr=0)
    with pytest.raises(ValueError, match="batch_size"):
        RunSpec(batch_size=0)


def test_overrides_apply_to_every_field_given():
    spec = Overrides(epochs=2, limit=500, extra={"lr": 0.01, "model": None}).apply(RunSpec())
    assert (spec.epochs, spec.limit, spec.lr, spec.model) == (2, 500, 0.01, "nn")


def test_label_names_the_difference_from_baseline():
    assert RunSpec(lr=0.25).label() == "lr=0.25"
    assert RunSpec().label() == "nn"
    assert dataclasses.replace(RunSpec(), epochs=3).label() == "nn"


def test_arcs_are_a_captcha_probability_in_the_id_only_when_used():
    import dataclasses

    from kerashw import config

    cap = config.baseline("captcha")
    assert dataclasses.replace(cap, arcs=0.0).run_id == cap.run_id  # earlier ids stand
    assert dataclasses.replace(cap, arcs=0.5).run_id != cap.run_id
    assert "arcs=0.5" in dataclasses.replace(cap, arcs=0.5).label()
    assert RunSpec(arcs=0.5).run_id == RunSpec().run_id  # MNIST ignores it
    with pytest.raises(ValueError, match="arcs is a probability, 0 to 1, got 1.5"):
        dataclasses.replace(cap, arcs=1.5)


def test_augment_field_keeps_earlier_ids_and_marks_captcha_runs():
    import dataclasses

    from kerashw import config

    # A Keras-init MNIST run's id is what it was before augment and init existed; the new
    # default (PyTorch's init) trains differently, so it is a different run.
    old = RunSpec(init="keras")
    assert old.run_id == "1446602e8cb0"
    assert RunSpec().run_id != old.run_id
    # a spec stored before the fields existed reads back as what it was
    stored = {k: v for k, v in old.to_dict().items() if k not in config.LATER_DEFAULTS}
    assert RunSpec.from_dict(stored) == old
    assert RunSpec(augment=True).run_id == RunSpec().run_id  # MNIST ignores it
    cap = config.baseline("captcha")
    assert cap.augment is True
    off = dataclasses.replace(cap, augment=False)
    assert off.run_id != cap.run_id and "augment=False" in off.label()
    # the default synthetic data's generator version is part of a captcha run's id
    before = cap.run_id
    config.SYNTHETIC_VERSION += 1
    try:
        assert cap.run_id != before
        assert dataclasses.replace(cap, data="/some/folder").run_id == \
            dataclasses.replace(cap, data="/some/folder").run_id
    finally:
        config.SYNTHETIC_VERSION -= 1


def test_recipe_fields_are_checked_and_warmup_fits_the_run():
    import dataclasses

    import pytest

    with pytest.raises(ValueError, match="schedule"):
        RunSpec(schedule="step")
    with pytest.raises(ValueError, match="cosine"):
        RunSpec(warmup=2)  # warm-up only leads into the cosine decay
    with pytest.raises(ValueError, match="label_smoothing"):
        RunSpec(label_smoothing=1.0)
    with pytest.raises(ValueError, match="init"):
        RunSpec(init="glorot")
    long = RunSpec(schedule="cosine", warmup=3, epochs=60)
    assert dataclasses.replace(long, epochs=2).resolved().warmup == 1


@pytest.mark.parametrize("version, changed, same", [
    ("DENOISE_VERSION", dict(preprocess="denoise"), dict(preprocess="original")),
    ("AUGMENT_VERSION", dict(augment=True), dict(augment=False)),
])
def test_a_changed_preprocessing_or_augmentation_is_a_new_run(version, changed, same):
    from kerashw import config

    base = dict(task="captcha", model="resnet18_mod", data="/x")
    a, b = RunSpec(**base, **changed), RunSpec(**base, **same)
    before = (a.run_id, b.run_id)
    setattr(config, version, getattr(config, version) + 1)
    try:
        assert a.run_id != before[0] and b.run_id == before[1]  # only the versioned runs change
    finally:
        setattr(config, version, getattr(config, version) - 1)


def test_precision_is_part_of_the_id():
    cap = baseline("captcha")
    mixed = dataclasses.replace(cap, precision="mixed")
    assert mixed.run_id != cap.run_id and "precision=mixed" in mixed.label()
    assert RunSpec.from_dict({k: v for k, v in cap.to_dict().items() if k != "precision"}) == cap
    with pytest.raises(ValueError, match="Unknown precision 'half'.*float32.*mixed"):
        RunSpec(precision="half")


def test_run_ids_are_pinned(monkeypatch):
    """Stores hold runs by these ids: a refactor that changed one would retrain (or lose)
    finished runs. Each value was computed before the Task redesign, with synthetic captchas
    of version 2 (a new generator version is new data: its runs get new ids, on purpose)."""
    import dataclasses

    from kerashw import config
    from kerashw.config import RunSpec, baseline
    from kerashw.studies import get_study

    monkeypatch.setattr(config, "SYNTHETIC_VERSION", 2)

    pinned = {
        RunSpec(): "bab6bc83aaf8",
        baseline("captcha"): "1fdafcf08d4d",
        dataclasses.replace(RunSpec(), data_id="mnist-0123456789abcdef"): "a0a537ea10a6",
        dataclasses.replace(baseline("captcha"), data="/x/y", data_id="captcha-0123456789abcdef",
                            preprocess="denoise"): "0e12008bbd54",
    }
    for spec, run_id in pinned.items():
        assert spec.resolved().run_id == run_id, spec
    studies = {"lr": ["bab6bc83aaf8", "0bd2bf2645c3", "164053a253b7"], "captcha-best": ["6f4bb65c0884"],
               "captcha-tiny": ["1744ece2cce2"], "captcha-preprocess": ["1fdafcf08d4d", "3593981a1c2e", "53da11655f1d"]}
    # captcha-tiny went from 60 epochs at 3e-3 to 30 at 5e-3 (issue #24): its older runs keep
    # their id (those settings as overrides give it), the new recipe is a new run
    for name, ids in studies.items():
        specs = get_study(name).specs()
        if name == "captcha-tiny":
            assert [(s.epochs, s.lr, s.warmup) for s in specs] == [(30, 5e-3, 2)]
            specs = [dataclasses.replace(s, epochs=60, lr=3e-3, warmup=3) for s in specs]
        if name == "captcha-best":  # two towers since issue #24: `--towers 1` gives the older runs
            assert [s.towers for s in specs] == [2]
            specs = [dataclasses.replace(s, towers=1) for s in specs]
        assert [s.resolved().run_id for s in specs] == ids, name
    monkeypatch.undo()  # today's generator: the synthetic-data runs are other runs, the rest the same
    assert baseline("captcha").resolved().run_id != "1fdafcf08d4d" and RunSpec().resolved().run_id == "bab6bc83aaf8"
    # the few-labels study pretrains and fine-tunes in one tower, as docs/results/fewlabels.md
    # measured it (its fine-tuning had inherited captcha-best's two towers: a new, unmeasured run)
    assert [s.resolved().run_id for s in get_study("captcha-finetune").specs()] == ["010a4170674e", "1c2f2dd5239d"]
