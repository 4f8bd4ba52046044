"""The captcha part (HW2-2) as a Task: 50x130 THSR captchas, four softmax heads of 19 symbols."""
from __future__ import annotations

from kerashw.captcha.constants import ALPHABET, HEADS, HEIGHT, NAME, SYNTH_COUNT, WIDTH
from kerashw.task import Column, Task

WHOLE = Column("whole", "whole", "whole")


class CaptchaTask(Task):
    name = NAME
    classes = ALPHABET
    outputs = HEADS
    columns = (*(Column(f"{h}_acc", f"c{k}", f"char {k}") for k, h in enumerate(HEADS, start=1)), WHOLE)
    headline = WHOLE
    curves = (Column("top1", "top-1", "top-1 accuracy %"), Column("whole", "whole", "whole-captcha accuracy %"))
    warm_up = 20.0
    gallery_cell = (3.0, 1.5)  # a captcha's 50x130 with its caption

    def input_shape(self, spec) -> tuple:
        from kerashw.captcha.preprocess import CHANNELS

        return (HEIGHT, WIDTH, CHANNELS[spec.resolved().preprocess])

    def train_size(self, spec) -> int:
        n = _train_size(spec.data, extra=spec.extra)
        return min(n, spec.limit) if spec.limit else n

    def fingerprint(self, spec, options, *, fetch: bool = True) -> str | None:
        if spec.data is None:
            return None  # the synthetic default: named by its generator version instead
        from kerashw.captcha import folders

        return folders.fingerprint(spec, options, fetch=fetch)

    def data_source(self, spec, options):
        from pathlib import Path

        return Path(spec.data) if spec.data else None  # None: synthetic, made alike anywhere per seed

    def relocate(self, spec, options, path):
        import dataclasses

        return dataclasses.replace(spec, data=str(path)), options

    def prepare(self, spec, options):
        from kerashw.captcha import task

        return task.prepare(spec, options)

    def split(self, spec, options, name: str):
        from kerashw.captcha import task

        return task.split(spec, options, name)

    def preview(self, spec, path) -> str | None:
        from pathlib import Path

        from kerashw.captcha.preview import write_preview

        if not Path(path).exists():  # drawn once per run folder
            write_preview(spec.data, path, n=4)
        return "preprocessing preview: original | denoise | denoise2"

    def epoch_line(self, r) -> str:
        accs = [f"'{100 * r.get(f'{h}_acc', float('nan')):.2f}%'" for h in HEADS]
        return (f"Epoch [{r.epoch}/{r.epochs}], phase: {r.phase}, samples: {r.samples}, "
                f"Loss: {r.get('loss', float('nan')):.4f}, Top-1 Accuracies: [{', '.join(accs)}], "
                f"Whole: {100 * r.get('whole', float('nan')):.2f}%")

    def mistakes(self, pred, split, limit: int):
        import numpy as np

        guess = np.stack([np.argmax(pred[h], axis=-1) for h in HEADS], axis=1)
        truth = np.stack([split.y[h] for h in HEADS], axis=1)
        wrong = np.flatnonzero((guess != truth).any(axis=1))
        text = lambda codes: "".join(ALPHABET[c] for c in codes)
        return list(wrong), [f"{text(truth[i])} -> {text(guess[i])}" for i in wrong[:limit]]

    def sample_batch(self, spec, input_shape):
        """Synthetic captchas through the run's preprocessing."""
        import numpy as np

        from kerashw.captcha import preprocess, synth

        fn = preprocess.get_preprocessor(spec.get("preprocess") or "original")
        rng = np.random.default_rng(0)
        imgs = [fn(synth.generate(synth.random_label(rng), i)[:, :, ::-1]) for i in range(8)]
        return np.stack(imgs).astype("float32") / 255.0

    def check_export(self, meta, input_shape, widths, where) -> None:
        from kerashw.captcha.preprocess import CHANNELS

        if sorted(widths) != sorted(HEADS):
            raise ValueError(f"{where}: task {NAME}, but the SavedModel's outputs are {sorted(widths)}")
        variant = meta.get("preprocess")
        if not isinstance(variant, str) or variant not in CHANNELS or CHANNELS[variant] != meta["input_shape"][-1]:
            raise ValueError(f"{where}: preprocess {variant!r} does not give {meta['input_shape'][-1]}-channel "
                             f"input; known: {sorted(CHANNELS)}")
        trained = (meta.get("spec") or {}).get("preprocess") if isinstance(meta.get("spec"), dict) else None
        if trained is not None and variant != trained:
            raise ValueError(f"{where}: preprocess {variant!r} but the run trained on {trained!r} (its spec); "
                             "predict must preprocess as training did")

    def read_image(self, file, meta):
        from kerashw.captcha import preprocess
        from kerashw.images import read_bgr

        return preprocess.get_preprocessor(meta["preprocess"])(read_bgr(file)).astype("float32") / 255.0

    def decode(self, outputs, n, meta):
        import numpy as np

        probs = [np.asarray(outputs[h]) for h in HEADS]
        results = []
        for i in range(n):
            idx = [int(np.argmax(p[i])) for p in probs]
            results.append({"text": "".join(meta["alphabet"][j] for j in idx),
                            "confidence": [float(p[i][j]) for p, j in zip(probs, idx)]})
        return results

    def graph_input(self, meta):
        from kerashw import serving

        variant = meta["preprocess"]
        if variant == "denoise":
            return ("denoise's arc removal is a RANSAC fit and a per-column search in NumPy/OpenCV "
                    "(kerashw/captcha/preprocess.py) with no TensorFlow equivalent that gives the same pixels; "
                    "this export takes preprocessed floats only (`serve`, or kerashw predict). The original "
                    "and denoise2 variants export an image-bytes signature")

        def to_input(rgb):
            import tensorflow as tf

            if variant == "denoise2":
                clean = serving.median3(serving.median3(serving.gray(rgb)))[:, :, None]
                return tf.cast(serving.resize_area(clean, HEIGHT, WIDTH), tf.float32) / 255.0
            return tf.cast(serving.resize_area(rgb, HEIGHT, WIDTH), tf.float32) / 255.0

        return to_input

    def graph_decode(self, outputs, meta):
        import tensorflow as tf

        symbols = tf.constant(list(meta["alphabet"]))
        idx = tf.stack([tf.argmax(outputs[h], axis=-1, output_type=tf.int32) for h in HEADS], axis=1)
        return {"text": tf.strings.reduce_join(tf.gather(symbols, idx), axis=1),
                "confidence": tf.stack([tf.reduce_max(outputs[h], axis=-1) for h in HEADS], axis=1),
                **{h: outputs[h] for h in HEADS}}

    def describe(self, out: dict) -> str:
        return f"{out['text']}  confidence " + " ".join(f"{c:.2f}" for c in out["confidence"])

    def labelled_files(self, folder) -> dict[str, str]:
        from kerashw.captcha.folders import read_labelled_folder

        return {str(i.path): i.label for i in read_labelled_folder(folder)}

    def folds(self):
        from kerashw.captcha import kfold

        return kfold


def _train_size(data: str | None, extra: bool = False) -> int:
    """A folder's training images, counted without reading them (estimates): train/ and,
    with `extra`, extra/ (as folders.source_items reads them), or the training share of
    one folder of images."""
    from pathlib import Path

    from kerashw.captcha.folders import split_counts

    if data is None:
        return split_counts(SYNTH_COUNT, None)[0]
    folder = Path(data).expanduser()
    if not (folder / "train").is_dir():
        return split_counts(_count_images(folder), None)[0]
    return _count_images(folder / "train") + (_count_images(folder / "extra") if extra else 0)


def _count_images(where) -> int:
    import os
    from pathlib import Path

    from kerashw.captcha.constants import IMAGE_SUFFIXES

    try:
        if (where / "labels.csv").exists():  # it may name images elsewhere (kerashw audit's folds)
            with open(where / "labels.csv", "rb") as f:
                return max(0, sum(1 for line in f if line.strip()) - 1)
        return sum(1 for p in os.scandir(where) if Path(p.name).suffix.lower() in IMAGE_SUFFIXES)
    except OSError:  # no such folder (an extra/ that is not there), or unreadable
        return 0


TASK = CaptchaTask()
