"""Every message of the TUI: from the training thread to the app (and the listener that
posts them), and between the panes and the app.

Training runs in a thread worker; `TuiListener` turns kerashw's Listener calls
into these dataclass messages (Textual's `post_message` is thread-safe), so no
widget is touched from the worker thread.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from textual.message import Message

from kerashw.listener import Listener
from kerashw.record import PhaseRecord


@dataclass
class StudyStarted(Message):
    """The worker has identified the study's runs: how many, how many finished before, the estimate."""

    study: str
    runs: int
    finished: int
    estimate: str


@dataclass
class RunStarted(Message):
    """A run begins training (after its data and model are built)."""

    run_id: str
    label: str
    task: str
    index: int
    total: int
    params: tuple


@dataclass
class RunSkipped(Message):
    """A run of the study is not trained: finished before, or another live process owns it."""

    run_id: str
    label: str
    index: int
    total: int
    status: str = "finished"  # or "being trained by HOST pid N ..."


@dataclass
class EpochStarted(Message):
    """An epoch's training steps begin."""

    epoch: int
    epochs: int
    steps: int


@dataclass
class StepProgress(Message):
    """Many per second: only the newest one waiting in the queue matters."""

    step: int
    steps: int
    description: str = ""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StepProgress)


@dataclass
class EpochEnded(Message):
    """One phase (train, val or test) of one epoch, as the store has it."""

    record: PhaseRecord


@dataclass
class RunFinished(Message):
    """A run ended without an error: finished, interrupted (a cancel) or diverged."""

    run_id: str
    status: str  # finished, interrupted, diverged
    elapsed: float


@dataclass
class RunFailed(Message):
    """A run or the whole study failed; `run_id` is empty when no run had started."""

    error: str
    run_id: str = ""


@dataclass
class Notice(Message):
    """Something the user should know that is not an error (a resume, skipped images)."""

    text: str


@dataclass
class StudyFinished(Message):
    """The worker is done: each run's status, and whether a cancel ended it."""

    study: str
    statuses: dict = field(default_factory=dict)  # run_id -> status
    cancelled: bool = False


class TuiListener(Listener):
    """kerashw Listener -> app messages. Also turns a cancelled worker into the
    cancel event that kerashw's CancelOnEvent callback watches."""

    def __init__(self, post, worker, cancel: threading.Event):
        self.post = post
        self.worker = worker
        self.cancel = cancel

    def _check_cancel(self):
        if self.worker is not None and self.worker.is_cancelled:
            self.cancel.set()

    def run_started(self, spec, index, total, params):
        self.post(RunStarted(spec.run_id, spec.label(), spec.task, index, total, tuple(params)))

    def run_skipped(self, spec, index, total, status):
        self.post(RunSkipped(spec.run_id, spec.label(), index, total, status))

    def epoch_started(self, epoch, epochs, steps):
        self._check_cancel()
        self.post(EpochStarted(epoch, epochs, steps))

    def step(self, step, steps):
        self._check_cancel()
        self.post(StepProgress(step, steps))

    def data_progress(self, done, total, description):
        self._check_cancel()
        self.post(StepProgress(done, total, description))

    def phase_ended(self, record):
        self.post(EpochEnded(record))  # frozen: shared as it is

    def run_ended(self, result):
        if result.status == "failed":
            self.post(RunFailed(result.error or "failed", result.run_id))
        else:
            self.post(RunFinished(result.run_id, result.status, result.elapsed))

    def notice(self, text):
        self.post(Notice(text))


@dataclass
class FollowRequested(Message):
    """Results tab: follow this running run (trained by another process) on the Train tab."""

    run_id: str


@dataclass
class StartRequested(Message):
    """The Studies pane asks the app to start the selected study (s, Enter, the Start button)."""


@dataclass
class LeaveSettings(Message):
    """Escape in a settings field: focus goes back to the study list."""
