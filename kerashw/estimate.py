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
import statistics
from dataclasses import dataclass

from kerashw import tasks
from kerashw.config import RunSpec, unique

# Seconds per epoch per 1,000 training images at batch 64, val + test passes included,
# measured with `kerashw train` / benchmarks/captcha_study.py on the reference machine
# (2 cores, TF 2.21; captchas with augmentation; docs/results/*.md).
SECONDS_PER_1K = {
    "nn": 0.035,  # MNIST epoch of 48,000: ~1.2 s train + evaluation
    "cnn": 0.45,  # ~18 s train + ~3 s evaluation
    "baseline": 18.0,  # 429 s for 6 epochs of 4,000 captchas
    "simple_cnn": 8.0,  # 190 s for 6 epochs
    "resnet18": 19.0,  # 451 s for 6 epochs
    # captcha-best in two towers: 181-184 s for 60 epochs of 4,684 real captchas, less the
    # warm-up, is 0.58 s in towers; / TOWERS_FACTOR for one tower (issue #24's speed-ups)
    "resnet18_mod": 0.83,
    "resnet18_tiny": 2.0,  # 60 epochs of 3,986 real captchas
    "resnet18_mod_pos": 0.83,  # as resnet18_mod: the pool per head is 132 parameters
    "resnet18_tiny_pos": 2.0,
    "resnet18_mod_hr": 2.1,  # no stem max pool: 2.5x resnet18_mod's step (benchmarks/throughput.py)
    "resnet18_tiny_hr": 1.33,  # captcha-tiny: 207 s for 30 epochs of 4,684 real captchas, one tower
}
# Towers (RunSpec.towers) on 2 cores: resnet18_mod's step in two towers is 0.69x one tower's
# (benchmarks/throughput.py, docs/results/performance.md "Towers"); measured for the slim
# ResNets only, so other models are estimated at one tower's speed.
TOWERS_FACTOR = 0.7
SLIM = ("resnet18_mod", "resnet18_tiny")
SIMILAR = 3  # a stored run's epoch size counts for an estimate within this factor of the run's
STEP_OVERHEAD = 0.0018  # Keras's per-step cost beyond the math (with steps_per_execution)


def train_size(spec: RunSpec) -> int:
    """Training images the run will see, without loading them."""
    return tasks.get(spec.task).train_size(spec)


class Timings:
    """The store's finished runs, read once: a study list re-estimated on every
    keystroke must not re-read the store for every run of every study."""

    def __init__(self, store=None):
        rows = store.runs() if store is not None else []
        self.finished = {r.id for r in rows if r.status == "finished"}
        self._rates: dict[tuple, list[float]] = {}
        for row in rows:
            if row.status != "finished" or not row.elapsed:
                continue
            other = RunSpec.from_dict(row.spec)
            n = train_size(other)
            if n:
                per_epoch = n * _passes(other, n)  # images an epoch of it saw
                rate = max(0.0, row.elapsed - tasks.get(other.task).warm_up) / (other.epochs * per_epoch)
                self._rates.setdefault(_key(other), []).append((per_epoch, rate))

    def per_image_epoch(self, spec: RunSpec, n: int | None = None) -> float | None:
        """Median seconds per (epoch x training image) of comparable finished runs: the same
        model and batch, and an epoch of a similar size (within SIMILAR of `n`). An epoch's
        evaluation and Keras's own work do not shrink with --limit, so a rate learned from a
        128-image run is no guide to a 48,000-image one (it was 4x off)."""
        rates = [r for size, r in self._rates.get(_key(spec), [])
                 if n is None or n / SIMILAR <= size <= n * SIMILAR]
        return statistics.median(rates) if rates else None


def _key(spec: RunSpec) -> tuple:
    # what decides an epoch's cost per image; augmentation about doubles it, towers 0.7x it
    spec = spec.resolved()
    return (spec.task, spec.model, spec.preprocess, spec.batch_size, spec.augment, spec.towers)


def _timings(source) -> Timings:
    """A Store or Timings (or None) as Timings."""
    return source if isinstance(source, Timings) else Timings(source)


def run_seconds(spec: RunSpec, store=None) -> float:
    """One run's expected seconds; `store` is a Store or a Timings read from one."""
    spec = spec.resolved()
    n = train_size(spec)
    passes = _passes(spec, n) if n else 1  # --min-steps: a small set is passed over several times an epoch
    rate = _timings(store).per_image_epoch(spec, n * passes)
    if rate is not None:
        per_epoch = rate * n * passes
    else:
        extra_steps = max(0, math.ceil(n / spec.batch_size) - math.ceil(n / 64))
        per_epoch = (SECONDS_PER_1K.get(spec.model, 10.0) * n / 1000 + extra_steps * STEP_OVERHEAD) * passes
        if spec.towers > 1 and spec.model.startswith(SLIM):
            per_epoch *= TOWERS_FACTOR
    return tasks.get(spec.task).warm_up + per_epoch * spec.epochs


def _passes(spec: RunSpec, n: int) -> int:
    from kerashw.pipeline import passes_per_epoch  # NumPy only: TensorFlow loads inside its functions

    return passes_per_epoch(n, spec.batch_size, spec.epochs, spec.min_steps)


@dataclass(frozen=True)
class Plan:
    """What starting a study means: its distinct runs, how many the store already
    has finished (a start skips them), and the expected seconds of the rest."""

    runs: int
    finished: int
    seconds: float

    @property
    def estimate(self) -> str:
        return "done" if self.finished == self.runs else human(self.seconds)


def plan(specs, store=None, force: bool = False) -> Plan:
    """`store` is a Store or a Timings read from one; `force` re-runs finished runs."""
    timings = _timings(store)
    specs = unique(specs)
    todo = specs if force else [s for s in specs if s.run_id not in timings.finished]
    return Plan(len(specs), len(specs) - len(todo), sum(run_seconds(s, timings) for s in todo))


def human(seconds: float) -> str:
    """~40 s, ~12 min, ~3.5 h."""
    if seconds < 90:
        return f"~{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"~{round(seconds / 60)} min"
    return f"~{seconds / 3600:.1f} h"
