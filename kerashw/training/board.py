"""`--tensorboard`: every phase's metrics per epoch as TensorBoard scalars, and the run's spec
in the HParams dashboard, so the runs of a study compare there too.

One event folder per phase under the run's `tensorboard/` (train, val, test: TensorBoard draws
them as three runs, overlaid per metric), the spec as hparams at its root with the run id as
the trial id. Records come from the same place the store's do (Training.write), so TensorBoard
shows exactly the stored numbers, one point per whole epoch; a resumed run goes on at its epoch.
TensorBoard is an optional extra (kerashw[tensorboard]); the CLI checks for it before training.
"""
from __future__ import annotations

from pathlib import Path


def hparam_value(value):
    """TensorBoard's hparams take bool, int, float or str."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return "none" if value is None else str(value)


class Board:
    def __init__(self, folder: Path, spec):
        import tensorflow as tf
        from tensorboard.plugins.hparams import api as hp

        self.folder = Path(folder)
        self.writers: dict = {}
        with tf.summary.create_file_writer(str(self.folder)).as_default():
            hp.hparams({k: hparam_value(v) for k, v in spec.to_dict().items()}, trial_id=spec.run_id)

    def write(self, record) -> None:
        import tensorflow as tf

        if record.phase not in self.writers:
            self.writers[record.phase] = tf.summary.create_file_writer(str(self.folder / record.phase))
        writer = self.writers[record.phase]
        with writer.as_default():
            for key, value in record.metrics.items():
                if isinstance(value, (int, float)):
                    tf.summary.scalar(key, value, step=record.epoch)
        writer.flush()  # a run followed live in TensorBoard shows each epoch as it ends
