"""Run specifications: frozen, typed, hashable into a stable run id.

No TensorFlow import here: the CLI reads specs to list studies instantly.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

TASKS = ("mnist", "captcha")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine")
INITS = ("torch", "keras")  # weight init: PyTorch's default, or Keras's (kerashw.blocks)
ACTIVATIONS = ("relu", "softmax", "sigmoid", "tanh")
PREPROCESS = ("original", "denoise", "denoise2")
# float32, or Keras's mixed policy (bfloat16 compute on CPUs with bf16 instructions,
# float16 on GPUs; weights and the softmax heads stay float32). kerashw.training.precision checks
# the hardware has a fast path.
PRECISIONS = ("float32", "mixed")
# The synthetic captcha generator's version, bumped when kerashw.synth's pixels change
# (5: half the glyphs from outlines fitted to real crops, arcs and layout as measured on real
# captchas; 4: a mixture of five fonts; 3: DejaVu Sans, measured speckle, JPEG; 2: DroidSansMono).
# It names the synthetic cache folder and is part of a captcha run's id on the default
# data, so runs on an older synthetic set are never mistaken for runs on the current one.
SYNTHETIC_VERSION = 5
# The `denoise` variant's version (kerashw.captcha.preprocess reads it): part of a denoise
# run's id from version 2 on, so a run on the older arc removal is never reused for the new.
DENOISE_VERSION = 3
# The captcha augmentation's version: part of an augmented captcha run's id from version 2
# (one stateless affine resampling per image; version 1 was Keras's three random layers,
# same ranges, other draws), so a run on the older draws is never reused for the new.
AUGMENT_VERSION = 2
# Fields added after runs were first stored: at these values they stay out of the
# run id, so ids of earlier runs (which had no such field) do not change.
# A stored spec without such a field had that value, so from_dict fills it in.
LATER_DEFAULTS = {"augment": False, "init": "keras", "weight_decay": 0.0, "schedule": "constant",
                  "warmup": 0, "label_smoothing": 0.0, "data_id": None, "split": None, "skip_bad": False,
                  "extra": False, "precision": "float32", "arcs": 0.0, "init_from": None, "min_steps": 0,
                  "towers": 1}
BATCHNORMS = ("fused", "keras")  # TrainOptions.bn
# Which homework part each model serves; the CLI routes `--model X` with it.
MODEL_TASK = {"nn": "mnist", "cnn": "mnist", "baseline": "captcha", "simple_cnn": "captcha",
              "resnet18": "captcha", "resnet18_mod": "captcha", "resnet18_tiny": "captcha",
              "resnet18_mod_pos": "captcha", "resnet18_tiny_pos": "captcha", "resnet18_mod_hr": "captcha",
              "resnet18_tiny_hr": "captcha"}


class DataError(ValueError):
    """Bad or missing data; the message names the file and what would be accepted."""


@dataclass(frozen=True)
class RunSpec:
    """Everything that decides a run's numbers; its hash is the run id."""

    task: str = "mnist"  # which homework part: mnist (HW2-1) or captcha (HW2-2)
    model: str = "nn"  # a key of kerashw.models.MODELS
    activation: str = "relu"  # hidden-layer activation (the report's study 2)
    optimizer: str = "adam"  # adam, or sgd (plain SGD, no momentum, like torch.optim.SGD's default)
    lr: float = 0.05  # the report's baseline learning rate
    batch_size: int = 64  # the report's baseline batch size
    epochs: int = 10  # the report trains MNIST 10 epochs, captchas 25
    limit: int | None = None  # seeded subsample of the training split; None = all of it
    preprocess: str | None = None  # captcha variant (original/denoise/denoise2); None for MNIST
    data: str | None = None  # captcha folder; None = the synthetic default. MNIST ignores it
    seed: int = 42  # seeds the split, the shuffles and the weight init
    augment: bool = False  # random shifts, small rotations and zoom of training images (captcha)
    init: str = "torch"  # weight init: PyTorch's default (learns faster here, see blocks.py) or keras
    weight_decay: float = 0.0  # decoupled weight decay (AdamW's), scaled by the learning rate
    schedule: str = "constant"  # learning rate: constant, or cosine decay to 0 over the run
    warmup: int = 0  # epochs of linear warm-up from 0 to lr before the cosine decay
    label_smoothing: float = 0.0  # cross-entropy against (1-e) one-hot + e uniform targets
    data_id: str | None = None  # content fingerprint of the data (kerashw.identity); names it in the id
    split: tuple | None = None  # captcha: train/val/test counts of an unsplit folder; None = 4:1:3
    skip_bad: bool = False  # captcha: leave out unreadable images (counted) instead of failing
    extra: bool = False  # captcha: a split folder's extra/ images (if any) join the training split
    precision: str = "float32"  # float32, or mixed (bfloat16/float16 compute; kerashw.training.precision)
    arcs: float = 0.0  # captcha: chance a training image gets one more random arc (pipeline.random_arcs)
    # fine-tuning: the id of a finished run of the same model whose final weights this run starts
    # from (kerashw.training.warmstart); None = the init's random weights
    init_from: str | None = None
    # at least this many optimizer steps in all: a small training set is passed over several
    # times per epoch (whole shuffled passes), so 150 images do not mean 3 steps an epoch
    min_steps: int = 0
    # the training step split into this many towers run side by side, one core each, each
    # normalising BatchNorm by its own part of the batch (kerashw.training.towers); 1 = unsplit
    towers: int = 1

    def __post_init__(self) -> None:
        # Validate early so a typo fails before TensorFlow loads, naming what is accepted.
        if self.task not in TASKS:
            raise ValueError(f"Unknown task {self.task!r}. Known: {list(TASKS)}")
        if self.model not in MODEL_TASK:
            raise ValueError(f"Unknown model {self.model!r}. Known: {sorted(MODEL_TASK)}")
        if MODEL_TASK[self.model] != self.task:
            raise ValueError(f"model {self.model!r} is a {MODEL_TASK[self.model]} model; this run is {self.task} "
                             f"(its models: {sorted(m for m, t in MODEL_TASK.items() if t == self.task)})")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {self.optimizer!r}. Known: {list(OPTIMIZERS)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {self.activation!r}. Known: {list(ACTIVATIONS)}")
        if self.init not in INITS:
            raise ValueError(f"Unknown init {self.init!r}. Known: {list(INITS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"Unknown precision {self.precision!r}. Known: {list(PRECISIONS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"Unknown schedule {self.schedule!r}. Known: {list(SCHEDULES)}")
        if self.warmup and self.schedule != "cosine":
            raise ValueError(f"warmup={self.warmup!r} needs schedule 'cosine' (it warms up into the decay)")
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0 epochs, got {self.warmup!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if not 0 <= self.arcs <= 1:
            raise ValueError(f"arcs is a probability, 0 to 1, got {self.arcs!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0 <= int(self.seed) < 2**32:
            raise ValueError(f"seed must be 0..{2**32 - 1} (NumPy's seed range), got {self.seed!r}")
        if self.split is not None:
            if len(self.split) != 3 or any(int(n) < 0 for n in self.split):
                raise ValueError(f"split must be three counts >= 0 (train val test), got {list(self.split)}")
            if int(self.split[0]) < 1:
                raise ValueError(f"split: the training count must be >= 1, got {list(self.split)}")
        if self.preprocess is not None and self.preprocess not in PREPROCESS:
            raise ValueError(f"Unknown preprocess {self.preprocess!r}. Known: {list(PREPROCESS)}")
        if not (self.lr > 0):
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        for name in ("batch_size", "epochs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not 1 <= int(self.towers) <= int(self.batch_size):
            raise ValueError(f"towers must be 1..batch_size ({self.batch_size}), got {self.towers!r}")
        if int(self.min_steps) < 0:
            raise ValueError(f"min_steps must be >= 0, got {self.min_steps!r}")
        if self.init_from is not None and not (isinstance(self.init_from, str) and len(self.init_from) == 12
                                               and all(c in "0123456789abcdef" for c in self.init_from)):
            raise ValueError(f"init_from must be a whole run id (12 hex digits), got {self.init_from!r}")
        if self.limit is not None and int(self.limit) < 1:
            raise ValueError(f"limit must be >= 1 or None, got {self.limit!r}")

    def resolved(self) -> "RunSpec":
        """Normalise fields the task ignores, so equal runs hash equal. A warm-up longer
        than the run (a quick `--epochs 2` of a long recipe) is cut to leave one epoch of decay."""
        warmup = min(self.warmup, self.epochs - 1)
        if self.task == "mnist":
            return dataclasses.replace(self, preprocess=None, data=None, augment=False, warmup=warmup,
                                       split=None, skip_bad=False, extra=False, arcs=0.0)
        # one spelling of a folder (relative, absolute, trailing slash, ~) for display and loading
        data = str(Path(self.data).expanduser().resolve()) if self.data else None
        split = tuple(int(n) for n in self.split) if self.split is not None else None
        return dataclasses.replace(self, preprocess=self.preprocess or "original", warmup=warmup,
                                   data=data, split=split)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self.resolved())

    @property
    def run_id(self) -> str:
        fields = {k: v for k, v in self.to_dict().items()
                  if not (k in LATER_DEFAULTS and v == LATER_DEFAULTS[k])}
        if fields.get("data_id"):
            fields.pop("data")  # the content names the data: the same images elsewhere are the same run
        if self.task == "captcha" and self.data is None:
            fields["synthetic"] = SYNTHETIC_VERSION
        if self.task == "captcha" and fields.get("preprocess") == "denoise" and DENOISE_VERSION > 1:
            fields["denoise_version"] = DENOISE_VERSION
        if self.task == "captcha" and self.augment:
            fields["augment_version"] = AUGMENT_VERSION
        payload = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def label(self) -> str:
        """Short human name: the fields that differ from the task's baseline."""
        base = baseline(self.task)
        diffs = [
            f"{k}={v}"
            for k, v in self.to_dict().items()
            if k not in ("data", "seed", "epochs", "limit", "data_id") and v != base.to_dict()[k]
        ]
        return self.model if not diffs else ", ".join(diffs)

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {**LATER_DEFAULTS, **{k: v for k, v in d.items() if k in known}}
        if fields["split"] is not None:
            fields["split"] = tuple(fields["split"])  # JSON gives a list
        return cls(**fields)


def unique(specs) -> list[RunSpec]:
    """Resolved specs without repeats, in order: a baseline shared by studies is one run."""
    return list(dict.fromkeys(s.resolved() for s in specs))


def baseline(task: str = "mnist") -> RunSpec:
    """The report's baseline for each part."""
    if task == "captcha":
        # HW2-2: 25 epochs; Adam at 1e-3 is what the TA baseline notebook trains with.
        # Augmentation on: 4,000 images over-fit without it (train 99.9 %, test ~90 %;
        # docs/results/captcha.md).
        return RunSpec(task="captcha", model="resnet18_mod", lr=1e-3, batch_size=64,
                       epochs=25, preprocess="original", augment=True)
    return RunSpec()


@dataclass(frozen=True)
class Overrides:
    """What a user changes on top of a study from the CLI or the TUI."""

    epochs: int | None = None
    limit: int | None = None
    seed: int | None = None
    data: str | None = None
    extra: dict = field(default_factory=dict)  # any other RunSpec field, e.g. {"lr": 0.01}

    def apply(self, spec: RunSpec) -> RunSpec:
        changes = {k: v for k, v in self.extra.items() if v is not None}
        for name in ("epochs", "limit", "seed", "data"):
            value = getattr(self, name)
            if value is not None:
                changes[name] = value
        return dataclasses.replace(spec, **changes).resolved()


@dataclass(frozen=True)
class TrainOptions:
    """How a front end wants its runs trained and their data found; what the spec does not
    say, since none of it changes a run's numbers."""

    mnist: str | None = None  # MNIST file or IDX folder; None = $KERASHW_MNIST, Keras's cache, download
    tensorboard: bool = False  # also write TensorBoard logs in the run's folder
    progress: Callable | None = None  # (done, total, description) of once-per-image work
    distribute: str | None = None  # None (one device), mirrored or multiworker (kerashw.training.distribute)
    devices: tuple | None = None  # mirrored: these devices ("/gpu:0", ...); None = all local GPUs
    threads: int | None = None  # TensorFlow's intra/inter-op threads; None = every core
    # how BatchNorm layers train (kerashw.blocks): "fused", TensorFlow's fused kernel, 25-30 % faster
    # a step for the slim ResNets, or "keras", Keras's own ops (all runs before it existed). The
    # same weights and the same math, summed in another order, so like `threads` it moves a
    # run's numbers only in the last digits and is no part of the run id; the store keeps it
    # with the run's versions.
    bn: str = "fused"
    # the test split: "end" evaluates it once, after the last epoch (what the report shows: its
    # test phase at the final epoch; a pass per epoch was ~5 % of a captcha run), "every" after
    # each epoch, for the curve. Val is evaluated every epoch either way (best weights follow it).
    eval_test: str = "end"
    # called with the epoch count after each whole epoch's files (metrics.csv, best weights,
    # backup) are written: kerashw.cluster.node sends the run folder home from here
    epoch_saved: Callable | None = None
    # seconds between resume backups written to disk (None: training.callbacks.BACKUP_EVERY;
    # 0: after every epoch, as --ray runs do, whose node may be lost at any time)
    backup_every: float | None = None
