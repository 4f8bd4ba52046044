"""The image-bytes signature against `kerashw predict` on a labelled folder: how often their
texts agree, both accuracies, and the largest pixel difference between the in-graph and the
OpenCV preprocessing. Writes filename,label,pred CSVs that ../shared/tools/audited_score.py scores.

    python benchmarks/deploy_parity.py EXPORT_DIR DATA_FOLDER [OUT_PREFIX]
"""
from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerashw import serving, tasks  # noqa: E402
from kerashw.export import load_exported, predict_arrays, prepare_image  # noqa: E402


def main(export_dir: str, data: str, prefix: str = "parity") -> None:
    served, meta = load_exported(export_dir)
    task = tasks.get(meta["task"])
    labels = task.labelled_files(data)
    files = list(labels)
    to_input = task.graph_input(meta)
    if isinstance(to_input, str):
        sys.exit(f"{export_dir}: no image-bytes signature: {to_input}")
    in_graph = tf.function(lambda b: to_input(serving.decode_rgb(b)), input_signature=[tf.TensorSpec([], tf.string)])
    worst, differing, values = 0, 0, 0
    predicted, signature = [], []
    for start in range(0, len(files), 64):
        chunk = files[start:start + 64]
        x = np.stack([prepare_image(f, meta) for f in chunk])
        predicted += [r["text"] for r in predict_arrays(served, meta, x)]
        raw = [Path(f).read_bytes() for f in chunk]
        signature += [t.decode() for t in served.signatures["serving_default"](images=tf.constant(raw))["text"].numpy()]
        for f, data_ in zip(chunk, raw):
            a = np.round(prepare_image(f, meta) * 255).astype(int)
            b = np.round(in_graph(tf.constant(data_)).numpy() * 255).astype(int)
            d = np.abs(a - b.reshape(a.shape))
            worst, differing, values = max(worst, int(d.max())), differing + int((d > 0).sum()), values + d.size
    agree = sum(p == s for p, s in zip(predicted, signature))
    for name, preds in (("predict", predicted), ("signature", signature)):
        with open(f"{prefix}-{name}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["filename", "label", "pred"])
            w.writerows((Path(f).name, labels[f], p) for f, p in zip(files, preds))
        right = sum(p == labels[f] for f, p in zip(files, preds))
        print(f"{name}: whole {100 * right / len(files):.2f}% of {len(files)}  ({prefix}-{name}.csv)")
    print(f"texts agree on {agree}/{len(files)} ({100 * agree / len(files):.2f}%); in-graph vs OpenCV "
          f"preprocessing: max {worst} grey level(s), {100 * differing / values:.3f}% of values differ")


if __name__ == "__main__":
    main(*sys.argv[1:])
