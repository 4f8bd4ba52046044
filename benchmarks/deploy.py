"""Every deploy format of one finished captcha run, side by side on a labelled test folder:
file size, accuracy (raw and audited), single-image latency and batch-64 throughput on this CPU.
Timings interleave the formats in rounds (A B C A B C ...), medians over rounds.

    python benchmarks/deploy.py STORE RUN_ID DATA/test [AUDIT.csv]
"""
from __future__ import annotations

import csv
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerashw import tasks  # noqa: E402
from kerashw.models import load_model  # noqa: E402
from kerashw.export import ExportError, export_run, load_exported, predict_arrays, prepare_image  # noqa: E402
from kerashw.store import Store  # noqa: E402

ROUNDS = 5


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def main(store_dir: str, run_id: str, data: str, audit: str | None = None) -> None:
    store = Store(store_dir, readonly=True)
    row = store.find(run_id)
    task = tasks.get(row.task)
    labels = task.labelled_files(data)
    files = list(labels)
    out = Path(tempfile.mkdtemp(prefix="kerashw-deploy-"))
    paths = {"SavedModel (bytes)": export_run(store, row, out / "sm"),
             "LiteRT float32": export_run(store, row, out / "m.tflite", fmt="tflite"),
             "LiteRT dynamic (int8 weights)": export_run(store, row, out / "md.tflite", fmt="tflite", quantize="dynamic"),
             "ONNX": export_run(store, row, out / "m.onnx", fmt="onnx")}
    try:
        paths["LiteRT int8"] = export_run(store, row, out / "m8.tflite", fmt="tflite", quantize="int8")
    except ExportError as exc:
        print(f"LiteRT int8: refused: {exc}")
    keras_model = load_model(store.files(row.id).model)
    served = {name: load_exported(p) for name, p in paths.items()}
    meta = served["SavedModel (bytes)"][1]
    x = np.stack([prepare_image(f, meta) for f in files])  # kerashw's OpenCV preprocessing, once
    raw = [Path(f).read_bytes() for f in files]
    bytes_sig = served["SavedModel (bytes)"][0].signatures["serving_default"]

    def keras_run(batch_x, batch_raw):
        return task.decode(keras_model(batch_x, training=False), len(batch_x), meta)

    def bytes_run(batch_x, batch_raw):
        return [{"text": t.decode()} for t in bytes_sig(images=tf.constant(batch_raw))["text"].numpy()]

    def runner(name):
        return lambda batch_x, batch_raw: predict_arrays(served[name][0], meta, batch_x)

    runs = {"Keras (model.keras)": keras_run, "SavedModel (bytes)": bytes_run,
            **{name: runner(name) for name in paths if name != "SavedModel (bytes)"}}
    sizes = {"Keras (model.keras)": _size(store.files(row.id).model), **{n: _size(p) for n, p in paths.items()}}
    rows = []
    score = None
    if audit:
        tool = Path(audit).resolve().parents[2] / "tools" / "audited_score.py"  # shared/data/thsr-real/AUDIT -> shared/tools
        spec = importlib.util.spec_from_file_location("audited_score", tool)
        score = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(score)
    texts = {}
    for name, fn in runs.items():
        preds = []
        for i in range(0, len(files), 64):
            preds += [r["text"] for r in fn(x[i:i + 64], raw[i:i + 64])]
        texts[name] = preds
    latency, throughput = {n: [] for n in runs}, {n: [] for n in runs}
    for _ in range(ROUNDS):  # interleaved: each round times every format once
        for name, fn in runs.items():
            t0 = time.perf_counter()
            for i in range(20):
                fn(x[i:i + 1], raw[i:i + 1])
            latency[name].append((time.perf_counter() - t0) / 20)
            t0 = time.perf_counter()
            fn(x[:64], raw[:64])
            throughput[name].append(64 / (time.perf_counter() - t0))
    for name in runs:
        right = sum(p == labels[f] for f, p in zip(files, texts[name]))
        audited = ""
        if score:
            pred_csv = out / f"{name.split()[0]}-{len(rows)}.csv"
            with open(pred_csv, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["filename", "label", "pred"])
                w.writerows((Path(f).name, labels[f], p) for f, p in zip(files, texts[name]))
            audited = f"{score.score(pred_csv, audit)['audited'][0]:.2f}"
        chars = np.mean([[a == b for a, b in zip(labels[f], p)] for f, p in zip(files, texts[name])])
        same = sum(a == b for a, b in zip(texts[name], texts["Keras (model.keras)"]))
        rows.append((name, sizes[name], 100 * chars, 100 * right / len(files), audited, same,
                     1000 * float(np.median(latency[name])), float(np.median(throughput[name]))))
    print(f"run {row.id} ({row.label}), {len(files)} images of {data}; CPU: {_cpu()}")
    print("| format | size (bytes) | per char % | whole % raw | whole % audited | same text as Keras | "
          "1-image latency ms | batch-64 images/s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:,} | {r[2]:.2f} | {r[3]:.2f} | {r[4]} | {r[5]}/{len(files)} | {r[6]:.2f} | {r[7]:.0f} |")


def _cpu() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"


if __name__ == "__main__":
    main(*sys.argv[1:])
