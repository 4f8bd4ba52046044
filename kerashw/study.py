"""A named study: a preset of RunSpecs, each varying one factor from a baseline. No TF."""
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
    # a study whose runs take the user's overrides in their own way (a pretraining stage that
    # keeps its data while the fine-tuning run takes --data): (Overrides or None) -> specs
    staged: Callable | None = None

    def specs(self, overrides=None) -> list[RunSpec]:
        """The study's runs with a user's `config.Overrides` applied (CLI and TUI alike),
        deduplicated in order: the baseline shared by studies is one run."""
        if self.staged is not None:
            return unique(self.staged(overrides))
        specs = self.make()
        if overrides is not None:
            specs = [overrides.apply(s) for s in specs]
        return unique(specs)


def vary(task: str, field: str, values) -> Callable[[], list[RunSpec]]:
    """The task's baseline once per value of one field."""
    return lambda: [dataclasses.replace(baseline(task), **{field: v}) for v in values]
