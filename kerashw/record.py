"""One phase of one epoch, as every part of kerashw passes it on. No TF."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PhaseRecord:
    """One phase (train, val or test) of one epoch. The callbacks build it once from Keras's
    logs, and it travels unchanged to the store, the listener, the CLI's lines and the TUI;
    the store gives the same back (`Store.epochs`)."""

    epoch: int  # 1-based
    epochs: int  # the run's epochs
    phase: str  # train, val, test
    samples: int | None  # images in the phase
    seconds: float | None  # wall time: the training steps (train) or the evaluation pass
    metrics: dict = field(default_factory=dict)  # in the run's task's names: loss, top1, top3, char_1_acc, whole

    def get(self, key: str, default=None):
        """A metric (loss, top1, whole, ...), or `default` when the phase has none."""
        return self.metrics.get(key, default)
