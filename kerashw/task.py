"""The Task: every fact that differs between the homework parts, in one object per part.

kerashw/mnist/definition.py and kerashw/captcha/definition.py each define one; kerashw.tasks
registers both (`TASKS`, `get`). Code outside those two packages asks the run's task and
never which task it is (tests/test_layout.py holds it to that).

A Task is light: building or importing one loads no TensorFlow or OpenCV, so the CLI's
`results` and `list` stay instant; a method that needs them imports them when called.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """A metric a phase record carries, as tables and the report show it."""

    key: str  # the record's and the store's name (top1, char_1_acc, whole)
    header: str  # short, for tables and the TUI (top-1, c1)
    name: str  # in the report's words (top-1, char 1)


class Task:
    name: str  # in specs, run ids and the store
    classes: str  # output index -> symbol: digits, the captcha alphabet
    outputs: tuple[str, ...]  # the SavedModel's output names
    columns: tuple[Column, ...]  # each phase's accuracies after the loss, in the report's order
    headline: Column  # the column tables show beside top-1 (top-3, whole captcha)
    curves: tuple[Column, ...]  # the report's accuracy curves, beside loss
    warm_up: float  # seconds a run spends before its first step (building, tracing, data)
    gallery_cell: tuple[float, float]  # inches per image in a gallery of mistakes

    # -- a run's data ---------------------------------------------------------------
    def input_shape(self, spec) -> tuple:
        """The model's input shape for a spec, without loading any data."""
        raise NotImplementedError

    def train_size(self, spec) -> int:
        """Training images the run will see, without loading them (estimates)."""
        raise NotImplementedError

    def fingerprint(self, spec, options, *, fetch: bool = True) -> str | None:
        """The content of the data the run trains on (part of its id), or None where the
        spec names its data otherwise (the synthetic captcha default: its generator version)."""
        raise NotImplementedError

    def data_source(self, spec, options):
        """The local file or folder the run's data is read from (a Path), or None where the run
        makes its data itself (the synthetic captchas). What `--ray` sends to a node."""
        raise NotImplementedError

    def relocate(self, spec, options, path):
        """(spec, options) reading the data from `path`, a copy of data_source's file or folder
        (on a Ray node); the run id is unchanged, since the data's fingerprint names it."""
        raise NotImplementedError

    def prepare(self, spec, options):
        """The run's RunData (kerashw.rundata): pipelines, loss, metrics, evaluation."""
        raise NotImplementedError

    def split(self, spec, options, name: str):
        """One of the run's splits (train, val, test) as it trained on it: uint8 images and
        labels (the report's gallery of test mistakes, int8 calibration on train)."""
        raise NotImplementedError

    def test_split(self, spec, options):
        return self.split(spec, options, "test")

    def preview(self, spec, path) -> str | None:
        """A picture of the run's input variants at `path` (drawn unless there); its caption,
        or None for a task without one."""
        return None

    # -- words ----------------------------------------------------------------------
    def epoch_line(self, record) -> str:
        """The report's log line for one PhaseRecord."""
        raise NotImplementedError

    def mistakes(self, pred, split, limit: int) -> tuple[list[int], list[str]]:
        """Indices of every wrong test image and captions (true -> predicted) of the first `limit`."""
        raise NotImplementedError

    # -- an exported model ----------------------------------------------------------
    def sample_batch(self, spec, input_shape):
        """A few model inputs for the export's reload check."""
        raise NotImplementedError

    def check_export(self, meta: dict, input_shape: list, widths: dict, where) -> None:
        """Raise ValueError where kerashw.json and the SavedModel's signature disagree with
        this task (its outputs, its input shape)."""
        raise NotImplementedError

    def read_image(self, file, meta: dict):
        """One image file -> the model's input, preprocessed as the run trained."""
        raise NotImplementedError

    def decode(self, outputs, n: int, meta: dict) -> list[dict]:
        """The served outputs of a batch of n -> [{text, confidence, ...}] per image."""
        raise NotImplementedError

    def describe(self, out: dict) -> str:
        """One decoded prediction as `kerashw predict` prints it after the file name."""
        raise NotImplementedError

    def graph_input(self, meta: dict):
        """For the SavedModel's image-bytes signature: a TF function from one uint8 RGB HxWx3
        image to the model's input (kerashw.serving's ops, the same pixels as read_image), or a
        string saying why this run's preprocessing has none (its export then has `serve` only)."""
        return f"the {self.name} task has no in-graph preprocessing"

    def graph_decode(self, outputs, meta: dict) -> dict:
        """The model's batched outputs -> the signature's outputs (TF ops): text and confidences."""
        raise NotImplementedError

    def labelled_files(self, folder) -> dict[str, str]:
        """`predict --data`: each file of a labelled folder and its label."""
        raise ValueError(f"predict --data reads labelled folders of the captcha part; a {self.name} model "
                         "predicts the image files given")

    def folds(self):
        """`kerashw audit`: the task's K-fold helpers over a labelled folder (kerashw.captcha.kfold)."""
        raise ValueError(f"kerashw audit reads labelled image folders (the captcha part); the {self.name} "
                         "task has none")
