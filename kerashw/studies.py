"""Named studies: presets of RunSpecs, each varying one factor from a baseline.

No TensorFlow here, so `kerashw list` and the TUI's study list are instant.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from kerashw.config import RunSpec, baseline, unique


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    factor: str  # the RunSpec field it varies ("" for unions and grids)
    make: Callable[[], list[RunSpec]]

    def specs(self, overrides=None) -> list[RunSpec]:
        """The study's runs with a user's `config.Overrides` applied (CLI and TUI alike),
        deduplicated in order: the baseline shared by studies is one run."""
        specs = self.make()
        if overrides is not None:
            specs = [overrides.apply(s) for s in specs]
        return unique(specs)


def _vary(field: str, values, task="mnist") -> Callable[[], list[RunSpec]]:
    return lambda: [dataclasses.replace(baseline(task), **{field: v}) for v in values]


MNIST_STUDIES = {
    "model": ("NN vs CNN", "model", ("nn", "cnn")),
    "activation": ("hidden activation: ReLU vs Softmax vs Sigmoid", "activation",
                   ("relu", "softmax", "sigmoid")),
    "optimizer": ("Adam vs SGD", "optimizer", ("adam", "sgd")),
    "lr": ("learning rate 0.05 vs 0.01 vs 0.25", "lr", (0.05, 0.01, 0.25)),
    "batch": ("batch size 64 vs 4 vs 1024", "batch_size", (64, 4, 1024)),
}

STUDIES: dict[str, Study] = {
    name: Study(name, f"MNIST: {desc}", factor, _vary(factor, values))
    for name, (desc, factor, values) in MNIST_STUDIES.items()
}
STUDIES["all"] = Study(
    "all", "MNIST: every study above (the shared baseline runs once)", "",
    lambda: [s for name in MNIST_STUDIES for s in STUDIES[name].make()],
)

CAPTCHA_MODELS = ("baseline", "simple_cnn", "resnet18", "resnet18_mod")
CAPTCHA_VARIANTS = ("original", "denoise", "denoise2")
_cap = baseline("captcha")
STUDIES["captcha"] = Study(
    "captcha", "CAPTCHA: every preprocess x model (3 x 4 grid)", "",
    lambda: [dataclasses.replace(_cap, model=m, preprocess=p)
             for p in CAPTCHA_VARIANTS for m in CAPTCHA_MODELS],
)
STUDIES["captcha-models"] = Study("captcha-models", "CAPTCHA: the four models on original",
                                 "model", _vary("model", CAPTCHA_MODELS, "captcha"))
STUDIES["captcha-preprocess"] = Study("captcha-preprocess", "CAPTCHA: the three variants on resnet18_mod",
                                     "preprocess", _vary("preprocess", CAPTCHA_VARIANTS, "captcha"))

# Beyond the report: the same 95K-parameter resnet18_mod with a modern recipe
# (docs/results/captcha.md has every step tried and what it gave on real captchas).
# extra: a folder's extra/ images (when it has one) train too: +0.3 points on char 1, +0.4 whole.
# arcs: half the training images get one more random arc (most errors are strokes the arc
# hides): +0.15 points on char 1 and +0.2 whole-captcha on test over two seeds, flat on val.
BEST = dataclasses.replace(_cap, optimizer="adamw", lr=3e-3, weight_decay=1e-4, schedule="cosine",
                           warmup=3, label_smoothing=0.1, epochs=60, extra=True, arcs=0.5)
STUDIES["captcha-best"] = Study("captcha-best", "CAPTCHA: resnet18_mod, AdamW + warm-up/cosine + label smoothing "
                                "+ arc augmentation", "", lambda: [BEST])
# Under 25K parameters, a pool per head beats one global pool by 1.5-3 points per character,
# and without the stem's max pool (twice the resolution) val whole-captcha rises from 93.2
# to 94.8 (docs/results/captcha.md), so the tiny study uses resnet18_tiny_hr.
STUDIES["captcha-tiny"] = Study("captcha-tiny", "CAPTCHA: the captcha-best recipe on resnet18_tiny_hr (24,974 params)",
                                "", lambda: [dataclasses.replace(BEST, model="resnet18_tiny_hr")])


def get_study(name: str) -> Study:
    try:
        return STUDIES[name]
    except KeyError:
        raise ValueError(f"Unknown study {name!r}. Known: {sorted(STUDIES)}") from None


def studies_of(spec: RunSpec) -> list[str]:
    """Every named study whose preset includes this spec (by resolved identity, ignoring
    the overrides a user applies to all runs alike)."""
    core = lambda s: dataclasses.replace(s.resolved(), epochs=1, limit=None, seed=0, data=None, data_id=None)
    target = core(spec)
    return [name for name, st in STUDIES.items() if any(core(s) == target for s in st.make())]
