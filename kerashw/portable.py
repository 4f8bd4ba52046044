"""An export's other formats: LiteRT (TensorFlow Lite; float32, or int8 calibrated on the run's
own training images) and ONNX, converted from the SavedModel's `serve` signature, and the
runners `kerashw predict` uses for them. Each file has its kerashw.json beside it
(M.tflite -> M.kerashw.json). Outputs are read by name: converters reorder them.

LiteRT comes with TensorFlow (tf.lite); ONNX needs the deploy extra (tf2onnx, onnxruntime).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FORMATS = ("savedmodel", "tflite", "onnx")
# int8: weights and activations, ranges calibrated on the run's training images; dynamic: int8
# weights, float activations (no calibration). Inputs and outputs stay float32 in both.
QUANTIZE = ("int8", "dynamic")
MIN_AGREEMENT = 0.99  # a quantized model must give Keras's answer on this share of held-out images
SUFFIX = {"tflite": ".tflite", "onnx": ".onnx"}
ONNX_EXTRA = 'ONNX needs the deploy extra: pip install "kerashw[deploy]" (tf2onnx and onnxruntime)'


class MissingExtra(RuntimeError):
    """An optional library is not installed; the message names the extra."""


def meta_path(model_file: Path) -> Path:
    return model_file.with_suffix(".kerashw.json")


def check_onnx_available() -> None:
    try:
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError:
        raise MissingExtra(ONNX_EXTRA) from None


def convert(saved_dir: Path, out: Path, fmt: str, *, input_shape, quantize: str | None = None,
            calibration: np.ndarray | None = None) -> None:
    """The SavedModel's `serve` signature as `out` in `fmt`; LiteRT `quantize` int8 (with
    `calibration`, model inputs) or dynamic."""
    import tensorflow as tf

    if fmt == "tflite":
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_dir), signature_keys=["serve"])
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "int8":
            converter.representative_dataset = lambda: ([x[None]] for x in calibration)
        out.write_bytes(converter.convert())
        return
    check_onnx_available()
    import tf2onnx

    loaded = tf.saved_model.load(str(saved_dir))
    spec = [tf.TensorSpec((None, *input_shape), tf.float32, name="inputs")]
    tf2onnx.convert.from_function(tf.function(lambda inputs: loaded.serve(inputs)), input_signature=spec,
                                  opset=17, output_path=str(out))


class LiteRT:
    """A .tflite file's `serve` signature: serve(x) -> {output name: array}."""

    def __init__(self, path: Path):
        import tensorflow as tf

        self.interpreter = tf.lite.Interpreter(model_path=str(path))
        self.runner = self.interpreter.get_signature_runner("serve")
        int8 = any(d["dtype"] == np.int8 for d in self.interpreter.get_tensor_details())
        self.kind = f"LiteRT {'int8' if int8 else 'float32'} ({path.name})"

    def serve(self, x) -> dict:
        return self.runner(inputs=np.asarray(x, dtype=np.float32))


class Onnx:
    """An .onnx file through onnxruntime: serve(x) -> {output name: array}."""

    def __init__(self, path: Path):
        check_onnx_available()
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.names = [o.name for o in self.session.get_outputs()]
        self.kind = f"ONNX Runtime ({path.name})"

    def serve(self, x) -> dict:
        outputs = self.session.run(None, {self.session.get_inputs()[0].name: np.asarray(x, dtype=np.float32)})
        return dict(zip(self.names, outputs))


RUNNERS = {".tflite": LiteRT, ".onnx": Onnx}


def load(path: Path):
    """(runner, metadata) of a .tflite or .onnx export."""
    meta_file = meta_path(path)
    if not meta_file.exists():
        raise FileNotFoundError(f"{path}: no {meta_file.name} beside it (kerashw export writes one)")
    meta = json.loads(meta_file.read_text())
    return RUNNERS[path.suffix](path), meta
