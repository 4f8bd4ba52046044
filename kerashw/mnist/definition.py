"""The MNIST part (HW2-1) as a Task: 28x28 digits, one softmax over ten classes."""
from __future__ import annotations

from kerashw.mnist.constants import CLASSES, INPUT_SHAPE, N_TRAIN, NAME
from kerashw.task import Column, Task

TOP1 = Column("top1", "top-1", "top-1")
TOP3 = Column("top3", "top-3", "top-3")


class MnistTask(Task):
    name = NAME
    classes = CLASSES
    outputs = ("probabilities",)
    columns = (TOP1, TOP3)
    headline = TOP3
    curves = (Column("top1", "top-1", "top-1 accuracy %"),)
    warm_up = 5.0
    gallery_cell = (2.2, 2.4)  # a 28x28 digit with its top-3 caption

    def input_shape(self, spec) -> tuple:
        return INPUT_SHAPE

    def train_size(self, spec) -> int:
        return min(N_TRAIN, spec.limit) if spec.limit else N_TRAIN

    def fingerprint(self, spec, options, *, fetch: bool = True) -> str:
        from kerashw.mnist import source

        return source.fingerprint(spec, options, fetch=fetch)

    def data_source(self, spec, options):
        from kerashw.config import DataError
        from kerashw.mnist.source import find_mnist

        path = find_mnist(options.mnist)
        if path is None:
            raise DataError("MNIST travels to other machines from a local file: give --mnist FILE or set "
                            "$KERASHW_MNIST (a node does not download it)")
        return path.resolve()

    def relocate(self, spec, options, path):
        import dataclasses

        return spec, dataclasses.replace(options, mnist=str(path))

    def prepare(self, spec, options):
        from kerashw.mnist import task

        return task.prepare(spec, options)

    def split(self, spec, options, name: str):
        from kerashw.mnist import task

        return task.split(spec, options, name)

    def epoch_line(self, r) -> str:
        return (f"Epoch [{r.epoch}/{r.epochs}], phase: {r.phase}, samples: {r.samples}, "
                f"Loss: {r.get('loss', float('nan')):.4f}, Top-1 Accuracy: {100 * r.get('top1', float('nan')):.2f}%, "
                f"Top-3 Accuracy: {100 * r.get('top3', float('nan')):.2f}%")

    def mistakes(self, pred, split, limit: int):
        import numpy as np

        top3 = np.argsort(-pred, axis=-1)[:, :3]
        truth = np.asarray(split.y)
        wrong = np.flatnonzero(top3[:, 0] != truth)
        captions = [f"{truth[i]} -> {top3[i, 0]} ({','.join(map(str, top3[i]))})" for i in wrong[:limit]]
        return list(wrong), captions

    def sample_batch(self, spec, input_shape):
        """MNIST test digits when a local MNIST file is found, else seeded noise."""
        import numpy as np

        from kerashw.mnist import source

        found = source.find_mnist(None)
        if found is not None and found.exists():
            return source.load_mnist_file(found)["x_test"][:8].astype("float32") / 255.0
        return np.random.default_rng(0).random((8, *input_shape)).astype("float32")

    def check_export(self, meta, input_shape, widths, where) -> None:
        if list(input_shape) != list(INPUT_SHAPE):
            raise ValueError(f"{where}: task {NAME}, but the SavedModel takes {list(input_shape)} images; "
                             f"an MNIST model takes {INPUT_SHAPE[0]}x{INPUT_SHAPE[1]}")

    def read_image(self, file, meta):
        import cv2

        from kerashw.images import read_bgr

        gray = cv2.cvtColor(read_bgr(file), cv2.COLOR_BGR2GRAY)
        return cv2.resize(gray, INPUT_SHAPE[::-1], interpolation=cv2.INTER_AREA).astype("float32") / 255.0

    def graph_input(self, meta):
        from kerashw import serving

        def to_input(rgb):
            import tensorflow as tf

            small = serving.resize_area(serving.gray(rgb)[:, :, None], *INPUT_SHAPE)
            return tf.cast(small[:, :, 0], tf.float32) / 255.0

        return to_input

    def graph_decode(self, outputs, meta):
        import tensorflow as tf

        probs = outputs if not isinstance(outputs, dict) else outputs[next(iter(outputs))]
        top = tf.math.top_k(probs, 3)
        symbols = tf.constant(list(meta["alphabet"]))
        return {"text": tf.gather(symbols, top.indices[:, 0]), "confidence": top.values[:, :1],
                "top3": top.indices, "top3_confidence": top.values, "probabilities": probs}

    def describe(self, out: dict) -> str:
        return f"{out['text']}  top-3 " + ", ".join(f"{d} ({q:.2f})" for d, q in out["top3"])

    def decode(self, outputs, n, meta):
        import numpy as np

        p = np.asarray(next(iter(outputs.values())) if isinstance(outputs, dict) else outputs)  # one output, however named
        results = []
        for row in p[:n]:
            top = np.argsort(row)[::-1][:3]
            results.append({"text": meta["alphabet"][int(top[0])], "confidence": [float(row[top[0]])],
                            "top3": [(int(k), float(row[k])) for k in top]})
        return results


TASK = MnistTask()
