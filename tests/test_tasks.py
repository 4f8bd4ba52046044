"""kerashw.tasks: the registry of homework parts, and the proof of its shape: a third task,
defined here, trains, is stored, tabled, exported and predicts through code that never
names a task."""
import numpy as np
import pytest

from kerashw import config, models, tasks
from kerashw.task import Column, Task


def test_get_is_loud():
    assert tasks.get("mnist").name == "mnist" and tasks.get("captcha").classes == "234579ACFHKMNPQRTYZ"
    with pytest.raises(ValueError, match=r"Unknown task 'speech'. Known: \['captcha', 'mnist'\]"):
        tasks.get("speech")


def test_every_task_describes_its_columns_and_outputs():
    for task in tasks.TASKS.values():
        assert task.headline in task.columns and task.outputs and len(set(task.classes)) == len(task.classes)


TOP1, TOP3 = Column("top1", "top-1", "top-1"), Column("top3", "top-3", "top-3")


def _toy_splits(seed=0):
    """8x8 'digits': class k is a bright k-th row (learnable in one epoch)."""
    from kerashw.pipeline import Split

    rng = np.random.default_rng(seed)
    out = {}
    for phase, n in (("train", 256), ("val", 64), ("test", 64)):
        y = rng.integers(0, 8, n)
        x = rng.integers(0, 60, (n, 8, 8)).astype(np.uint8)
        x[np.arange(n), y, :] = 250
        out[phase] = Split(x, y)
    return out


class Digits8(Task):
    name = "digits8"
    classes = "01234567"
    outputs = ("probabilities",)
    columns = (TOP1, TOP3)
    headline = TOP3
    curves = (TOP1,)
    warm_up = 1.0
    gallery_cell = (1.0, 1.0)

    def input_shape(self, spec):
        return (8, 8)

    def train_size(self, spec):
        return 256

    def fingerprint(self, spec, options, *, fetch=True):
        return "digits8-fixed"

    def prepare(self, spec, options):
        import functools

        import keras

        from kerashw import pipeline
        from kerashw.rundata import RunData, strict_top_k

        splits = _toy_splits()
        return RunData(
            input_shape=(8, 8), num_classes=8,
            train=functools.partial(pipeline.make_train_dataset, splits["train"], spec.batch_size, seed=spec.seed,
                                    epochs=spec.epochs),
            eval_sets={p: (pipeline.make_dataset(splits[p], 64), 64) for p in ("val", "test")},
            n_train=256, steps=256 // spec.batch_size, loss="sparse_categorical_crossentropy",
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="top1"), strict_top_k(3, "top3")])

    def split(self, spec, options, name):
        return _toy_splits()[name]

    def epoch_line(self, r):
        return f"Epoch [{r.epoch}/{r.epochs}] {r.phase}: top-1 {100 * r.get('top1'):.2f}%"

    def sample_batch(self, spec, input_shape):
        return _toy_splits()["test"].x[:8].astype("float32") / 255.0

    def check_export(self, meta, input_shape, widths, where):
        if input_shape != [8, 8]:
            raise ValueError(f"{where}: want 8x8 input")

    def read_image(self, file, meta):
        import cv2

        from kerashw.images import read_bgr

        return cv2.cvtColor(read_bgr(file), cv2.COLOR_BGR2GRAY).astype("float32") / 255.0

    def decode(self, outputs, n, meta):
        p = np.asarray(outputs)
        return [{"text": meta["alphabet"][int(np.argmax(row))], "confidence": [float(np.max(row))]} for row in p[:n]]

    def describe(self, out):
        return out["text"]


def build_tiny8(input_shape, num_classes, *, activation="relu", init="torch", name="tiny8"):
    import keras

    from kerashw import blocks

    inputs = keras.Input(shape=input_shape, name=f"{name}_input")
    x = keras.layers.Flatten(name=f"{name}_flatten")(inputs)
    outputs = blocks.dense(x, num_classes, activation="softmax", init=init, name=f"{name}_predictions")
    return keras.Model(inputs, outputs, name=name)


@pytest.mark.slow
def test_a_third_task_trains_stores_tables_exports_and_predicts(tmp_path, monkeypatch):
    """The registry lines a new task takes: its Task in TASKS, its model in MODELS, and
    config.py's run-id rules (the task's name, its model's task)."""
    import cv2

    from kerashw import export
    from kerashw.config import RunSpec, TrainOptions
    from kerashw.reports import tables
    from kerashw.store import Store
    from kerashw.training import train

    monkeypatch.setitem(tasks.TASKS, "digits8", Digits8())
    monkeypatch.setitem(models.MODELS, "tiny8", build_tiny8)
    monkeypatch.setattr(config, "TASKS", (*config.TASKS, "digits8"))
    monkeypatch.setitem(config.MODEL_TASK, "tiny8", "digits8")

    store = Store(tmp_path / "st")
    spec = RunSpec(task="digits8", model="tiny8", epochs=2, batch_size=32, lr=0.01)
    result = train.run(spec, store=store, options=TrainOptions())
    assert result.status == "finished" and result.final["test"]["top1"] > 0.5, result.final
    (row,) = store.runs()
    headers, cells = tables.result_rows([row])
    assert headers[headers.index("test") + 1] == "top3" and cells[0][0] == row.id[:8]  # the task's headline
    assert tables.epoch_line(store.epochs(row.id)[-1], row.task).startswith("Epoch [2/2] test: top-1")

    out = export.export_run(store, row, tmp_path / "m")
    served, meta = export.load_exported(out)
    split = _toy_splits()["test"]
    png = tmp_path / "one.png"
    cv2.imwrite(str(png), split.x[0])
    (pred,) = export.predict_arrays(served, meta, export.prepare_image(png, meta)[None])
    assert meta["task"] == "digits8" and meta["alphabet"] == "01234567" and pred["text"] in "01234567"


def test_the_training_stream_runs_without_tf_data_autotuning():
    """Autotuning's model thread made destroying the run-long training iterator wait for up
    to a minute at the end of fit (docs/results/performance.md, "The stall after the last
    epoch"); the stream's parallelism is fixed, so it is off."""
    from kerashw import pipeline

    split = pipeline.Split(np.zeros((8, 2, 2, 1), np.uint8), np.arange(8))
    ds = pipeline.make_train_dataset(split, 4, seed=0, epochs=2, augment=False)
    assert ds.options().autotune.enabled is False
    assert len(list(ds)) == 4  # and it still yields every batch
