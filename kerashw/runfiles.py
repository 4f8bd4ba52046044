"""The files of a run's folder (STORE/runs/<id>/), named in one place."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunFiles:
    root: Path

    @property
    def spec(self) -> Path:  # the resolved RunSpec, as JSON
        return self.root / "spec.json"

    @property
    def metrics(self) -> Path:  # Keras's CSVLogger, one row per whole epoch
        return self.root / "metrics.csv"

    @property
    def best_weights(self) -> Path:  # the epoch with the best val top-1
        return self.root / "best.weights.h5"

    @property
    def model(self) -> Path:  # the final model, saved when the run finishes
        return self.root / "model.keras"

    @property
    def backup(self) -> Path:  # what an interrupted run resumes from (kerashw.training.callbacks.Backup)
        return self.root / "backup"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def mistakes(self) -> Path:  # the TUI's gallery of test mistakes
        return self.root / "mistakes.png"

    @property
    def preview(self) -> Path:  # the task's picture of its input variants
        return self.root / "preview.png"

    def extra(self, name: str) -> Path:
        """What a task's finalize wrote, e.g. extra("confusion_test")."""
        return self.root / f"{name}.json"

    @property
    def confusion(self) -> Path:  # a captcha run's test confusion matrices
        return self.extra("confusion_test")
