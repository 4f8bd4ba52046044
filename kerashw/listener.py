"""The events training reports to a front end. No TensorFlow here, so a front end
(the TUI) can subclass it and start before TensorFlow has loaded."""
from __future__ import annotations


class Listener:
    """Training events for a front end. Every method is optional."""

    def run_started(self, spec, index: int, total: int, params: tuple[int, int]) -> None: ...

    def epoch_started(self, epoch: int, epochs: int, steps: int) -> None: ...

    def step(self, step: int, steps: int) -> None: ...

    def phase_ended(self, record) -> None:
        """One epoch x phase: a kerashw.record.PhaseRecord."""

    def run_phase_ended(self, run_id: str, record) -> None:
        """phase_ended of one of several runs training at once (kerashw train --ray)."""
        self.phase_ended(record)

    def run_ended(self, result) -> None: ...

    def run_skipped(self, spec, index: int, total: int, status: str) -> None: ...

    def notice(self, text: str) -> None:
        """Something the user should know that is not an error (skipped images)."""
