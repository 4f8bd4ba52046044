"""How long a run or a study will take, before it starts. No TensorFlow here.

Two sources, best first:
1. the store: finished runs of the same model, preprocess and batch size on this
   machine give seconds per (epoch x training image), which the estimate scales;
2. a table measured on the 2-core reference machine (docs/results/*.md), used when
   the store has nothing comparable yet.
Both are rough (other load on the CPU, warm-up) and shown as "~".
"""
from __future__ import annotations

import math
import os
import statistics
from pathlib import Path

from kerashw.config import RunSpec

# Seconds per epoch per 1,000 training images at batch 64, val + test passes included,
# measured with `kerashw train` / benchmarks/captcha_study.py on the reference machine
# (2 cores, TF 2.21; captchas with augmentation; docs/results/*.md).
SECONDS_PER_1K = {
    "nn": 0.035,  # MNIST epoch of 48,000: ~1.2 s train + evaluation
    "cnn": 0.45,  # ~18 s train + ~3 s evaluation
    "baseline": 18.0,  # 429 s for 6 epochs of 4,000 captchas
    "simple_cnn": 8.0,  # 190 s for 6 epochs
    "resnet18": 19.0,  # 451 s for 6 epochs
    "resnet18_mod": 2.7,  # 270-320 s for 25 epochs
}
STEP_OVERHEAD = 0.0018  # Keras's per-step cost beyond the math (with steps_per_execution)
WARM_UP = {"mnist": 5.0, "captcha": 20.0}  # building, tracing, first data pass
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


def train_size(spec: RunSpec) -> int:
    """Training images the run will see, without loading them."""
    if spec.task == "mnist":
        n = 48_000
    elif spec.data is None:
        n = 4_000  # the synthetic default's split
    else:
        n = _folder_train_size(Path(spec.data))
    return min(n, spec.limit) if spec.limit else n


def _folder_train_size(folder: Path) -> int:
    split = (folder / "train").is_dir()
    try:
        count = sum(1 for p in os.scandir(folder / "train" if split else folder)
                    if Path(p.name).suffix.lower() in IMAGE_SUFFIXES)
    except OSError:
        return 0  # a missing folder is reported by the run itself, with its name
    return count if split else count * 4 // 8  # one folder: the report's 4:1:3 split


def _per_image_epoch(spec: RunSpec, store) -> float | None:
    """Measured seconds per (epoch x training image) of comparable finished runs
    (same model, preprocess, batch size and augmentation)."""
    if store is None:
        return None
    rates = []
    for row in store.runs(task=spec.task):
        s = row.spec
        if (row.status != "finished" or not row.elapsed or s.get("model") != spec.model
                or s.get("preprocess") != spec.preprocess or s.get("batch_size") != spec.batch_size
                or bool(s.get("augment")) != spec.augment):  # augmentation ~doubles an epoch
            continue
        other = RunSpec.from_dict(s)
        n, epochs = train_size(other), other.epochs
        if n and epochs:
            rates.append(max(0.0, row.elapsed - WARM_UP[spec.task]) / (epochs * n))
    return statistics.median(rates) if rates else None


def run_seconds(spec: RunSpec, store=None) -> float:
    spec = spec.resolved()
    n = train_size(spec)
    rate = _per_image_epoch(spec, store)
    if rate is not None:
        per_epoch = rate * n
    else:
        extra_steps = max(0, math.ceil(n / spec.batch_size) - math.ceil(n / 64))
        per_epoch = SECONDS_PER_1K.get(spec.model, 10.0) * n / 1000 + extra_steps * STEP_OVERHEAD
    return WARM_UP[spec.task] + per_epoch * spec.epochs


def study_seconds(specs, store=None, skip_finished: bool = True) -> float:
    """Runs already finished in the store cost nothing: a study skips them."""
    total = 0.0
    for spec in dict.fromkeys(s.resolved() for s in specs):
        if skip_finished and store is not None and store.status(spec.run_id) == "finished":
            continue
        total += run_seconds(spec, store)
    return total


def human(seconds: float) -> str:
    """~40 s, ~12 min, ~3.5 h."""
    if seconds < 90:
        return f"~{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"~{round(seconds / 60)} min"
    return f"~{seconds / 3600:.1f} h"
