import dataclasses

from kerashw import estimate, tasks
from kerashw.config import RunSpec, baseline
from kerashw.studies import get_study


def _finish(store, spec, elapsed):
    spec = spec.resolved()
    store.start_run(spec.run_id, spec.task, spec.label(), spec.to_dict())
    store.finish_run(spec.run_id, "finished", elapsed)


def test_table_estimate_scales_with_epochs_limit_and_batch():
    base = baseline("mnist")
    one = estimate.run_seconds(dataclasses.replace(base, epochs=1))
    ten = estimate.run_seconds(base)
    assert ten > one > tasks.get("mnist").warm_up
    assert estimate.run_seconds(dataclasses.replace(base, limit=4800)) < ten
    # batch 4 is overhead-bound: many more steps for the same images
    assert estimate.run_seconds(dataclasses.replace(base, batch_size=4)) > 5 * ten
    assert estimate.run_seconds(baseline("captcha")) > ten


def test_store_timings_replace_the_table(store):
    spec = dataclasses.replace(baseline("mnist"), model="cnn", epochs=2, limit=1000)
    table = estimate.run_seconds(spec)
    # a finished cnn run measured 10x slower per image than the table says
    measured = dataclasses.replace(spec, seed=7)
    per_image_epoch = 10 * estimate.SECONDS_PER_1K["cnn"] / 1000
    _finish(store, measured, tasks.get("mnist").warm_up + per_image_epoch * 2 * 1000)
    calibrated = estimate.run_seconds(spec, store)
    assert calibrated > 5 * (table - tasks.get("mnist").warm_up)
    # the same image count and epochs: the measured elapsed comes back
    assert abs(calibrated - (tasks.get("mnist").warm_up + per_image_epoch * 2000)) < 1e-6
    # a 1,000-image run says nothing of a full one (its evaluation does not shrink with --limit)
    full = dataclasses.replace(spec, limit=None)
    assert estimate.run_seconds(full, store) == estimate.run_seconds(full)


def test_study_estimate_skips_finished_runs(store):
    specs = get_study("lr").specs()
    full = estimate.plan(specs, store)
    assert (full.runs, full.finished) == (3, 0) and full.estimate.startswith("~")
    _finish(store, specs[0], 30.0)
    now = estimate.plan(specs, store)
    assert now.finished == 1 and now.seconds < full.seconds
    assert estimate.plan(specs, store, force=True).seconds > now.seconds
    for spec in specs[1:]:
        _finish(store, spec, 30.0)
    assert estimate.plan(specs, store).estimate == "done"


def test_folder_train_size_counts_images(tmp_path):
    for i in range(16):
        (tmp_path / f"{i:02d}.png").write_bytes(b"")
    spec = RunSpec(task="captcha", model="resnet18_mod", data=str(tmp_path))
    assert estimate.train_size(spec) == 8  # 4 of every 8 images train
    # with a labels.csv, its rows are the images (they may lie elsewhere: kerashw audit's folds)
    (tmp_path / "labels.csv").write_text("filename,label\n" + "".join(f"/x/{i}.png,7F37\n" for i in range(24)))
    assert estimate.train_size(spec) == 12
    split = tmp_path / "split"
    (split / "train").mkdir(parents=True)
    for i in range(5):
        (split / "train" / f"{i}.jpg").write_bytes(b"")
    assert estimate.train_size(dataclasses.replace(spec, data=str(split))) == 5
    # extra/ trains too when the spec says so (captcha-best), as the data loader reads it
    assert estimate.train_size(dataclasses.replace(spec, data=str(split), extra=True)) == 5  # none there
    (split / "extra").mkdir()
    for i in range(3):
        (split / "extra" / f"{i}.png").write_bytes(b"")
    assert estimate.train_size(dataclasses.replace(spec, data=str(split), extra=True)) == 8
    assert estimate.train_size(dataclasses.replace(spec, data=str(split))) == 5
    assert estimate.train_size(dataclasses.replace(spec, data=str(tmp_path / "missing"))) == 0


def test_human():
    assert estimate.human(12.4) == "~12 s"
    assert estimate.human(600) == "~10 min"
    assert estimate.human(3 * 3600) == "~3.0 h"


def test_store_timings_match_augmentation(store):
    cap = baseline("captcha")  # augment on
    plain = dataclasses.replace(cap, augment=False, seed=1)
    _finish(store, plain, tasks.get("captcha").warm_up + 1000.0)  # a very slow run without it
    assert estimate.run_seconds(cap, store) == estimate.run_seconds(cap)  # not comparable
    assert estimate.run_seconds(dataclasses.replace(cap, augment=False), store) > estimate.run_seconds(cap)


def test_every_model_has_a_measured_cost():
    from kerashw.estimate import SECONDS_PER_1K
    from kerashw.models import MODELS

    assert set(MODELS) <= set(SECONDS_PER_1K)  # a new model without one is estimated as 10 s/1k images


def test_towers_are_estimated_faster_and_timed_apart(store):
    best = get_study("captcha-best").make()[0].resolved()
    assert best.towers == 2
    one = dataclasses.replace(best, towers=1)
    assert estimate.run_seconds(best) < estimate.run_seconds(one)
    wide = dataclasses.replace(best, model="resnet18")  # towers measured for the slim ResNets only
    assert estimate.run_seconds(wide) == estimate.run_seconds(dataclasses.replace(wide, towers=1))
    # a finished one-tower run times one-tower runs only
    _finish(store, dataclasses.replace(one, seed=1), tasks.get("captcha").warm_up + 9999.0)
    assert estimate.run_seconds(one, store) > estimate.run_seconds(one)
    assert estimate.run_seconds(best, store) == estimate.run_seconds(best)
