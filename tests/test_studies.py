from kerashw.config import RunSpec
from kerashw.studies import STUDIES, get_study, studies_of

import pytest


def test_each_study_varies_one_factor_from_the_baseline():
    expected = {"model": 2, "activation": 3, "optimizer": 2, "lr": 3, "batch": 3}
    for name, n in expected.items():
        specs = get_study(name).specs()
        assert len(specs) == n
        assert RunSpec() in specs  # the baseline is in every study
    assert [s.lr for s in get_study("lr").specs()] == [0.05, 0.01, 0.25]
    assert [s.batch_size for s in get_study("batch").specs()] == [64, 4, 1024]


def test_all_is_the_union_with_one_baseline():
    specs = STUDIES["all"].specs()
    assert len(specs) == 9
    assert len({s.run_id for s in specs}) == 9


def test_studies_of_the_baseline_lists_all_five_plus_all():
    assert set(studies_of(RunSpec(epochs=2))) >= {"model", "activation", "optimizer", "lr", "batch", "all"}
    assert "lr" in studies_of(RunSpec(lr=0.01)) and "batch" not in studies_of(RunSpec(lr=0.01))


def test_unknown_study_lists_known():
    with pytest.raises(ValueError, match="Known: .*'lr'"):
        get_study("learning-rate")


@pytest.mark.parametrize("name,limit", [("captcha-best", 100_000), ("captcha-tiny", 25_000)])
def test_the_beyond_the_report_studies_stay_under_their_parameter_budgets(name, limit):
    from kerashw import tasks
    from kerashw.models import count_params, get_model

    (spec,) = get_study(name).specs()
    assert spec.task == "captcha" and spec.augment and spec.arcs > 0 and spec.extra
    assert spec.optimizer == "adamw" and spec.schedule == "cosine" and spec.label_smoothing > 0
    model = get_model(spec.model)(tasks.get(spec.task).input_shape(spec), 19)
    assert count_params(model)[0] < limit


def test_captcha_best_mixed_is_captcha_best_in_mixed_precision_at_55_epochs():
    """The half-time variant as a study (the TUI has no precision setting): the same runs as
    `--study captcha-best --precision mixed --epochs 55`, whose figures performance.md gives."""
    import dataclasses

    from kerashw.config import Overrides

    (best,), (mixed,) = get_study("captcha-best").specs(), get_study("captcha-best-mixed").specs()
    assert dataclasses.replace(best, precision="mixed", epochs=55) == mixed
    asked = get_study("captcha-best").specs(Overrides(seed=7, epochs=55, extra={"precision": "mixed"}))
    assert [s.resolved().run_id for s in get_study("captcha-best-mixed").specs(Overrides(seed=7))] == \
        [s.resolved().run_id for s in asked]
