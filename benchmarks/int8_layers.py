"""Where full-integer quantization loses a captcha model: TFLite's QuantizationDebugger per
layer (RMSE of the int8 result against float, over the quantization step), then int8 models
that keep the worst layers (or op types) in float, each with its size and how often it answers
as Keras on training images the calibration did not see.

    python benchmarks/int8_layers.py STORE RUN_ID [--keep N] [--ops SOFTMAX,MEAN]

The calibration and the check images are export.quantization_images, as `kerashw export --quantize int8` uses.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerashw import export, portable, tasks  # noqa: E402
from kerashw.config import RunSpec, TrainOptions  # noqa: E402
from kerashw.store import Store  # noqa: E402


def _agreement(content: bytes, model, x: np.ndarray, where: Path) -> float:
    """How often the int8 model's every head answers as Keras (kerashw's own LiteRT runner)."""
    where.write_bytes(content)
    return export.against_keras(portable.RUNNERS[".tflite"](where), model, x)[2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("run_id")
    ap.add_argument("--keep", type=int, default=8, help="the N worst layers to try in float, one more at a time")
    ap.add_argument("--ops", default="", help="op types to keep in float as well, e.g. SOFTMAX,MEAN")
    args = ap.parse_args()
    store = Store(args.store, readonly=True)
    row = store.find(args.run_id)
    task, files = tasks.get(row.task), store.files(row.id)
    model = export._load_model(files.model, None)
    train = task.split(RunSpec.from_dict(row.spec), TrainOptions(), "train")
    calibration, held_out = export.quantization_images(train.x)
    tmp = Path(tempfile.mkdtemp(prefix="int8-"))
    try:
        saved = tmp / "sm"
        export._write_savedmodel(model, task, {"preprocess": row.spec.get("preprocess"), "alphabet": task.classes}, saved)

        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=["serve"])
        float_size = len(converter.convert())
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[None]] for x in calibration)
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=lambda: ([x[None]] for x in held_out[:32]))
        debugger.run()
        layers = portable.layer_errors(debugger)
        layers.sort(key=lambda r: -r["error_steps"])
        print(f"float32 LiteRT: {float_size:,} bytes")
        print("worst layers (RMSE of int8 against float, in quantization steps):")
        for r in layers[:max(args.keep, 10)]:
            print(f"  {r['error_steps']:8.2f}  {r['op']:<18} {r['tensor']}")
        ops = [o for o in args.ops.split(",") if o]
        tries = [("all int8", [], [])] + ([(f"{','.join(ops)} in float", [], ops)] if ops else [])
        tries += [(f"worst {k} in float" + (f" + {','.join(ops)}" if ops else ""),
                   [r["tensor"] for r in layers[:k]], ops) for k in range(1, args.keep + 1)]
        print("\nmodel                          bytes    of float  same answer as Keras")
        for name, nodes, op_types in tries:
            # the debugger requantizes its one calibrated model with each deny-list
            debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes or None,
                                                                             denylisted_ops=op_types or None)
            content = debugger.get_nondebug_quantized_model()
            agree = _agreement(content, model, held_out, tmp / "try.tflite")
            print(f"{name:<30} {len(content):>8,}  {100 * len(content) / float_size:6.1f} %  "
                  f"{100 * agree:5.1f} % of {len(held_out)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
