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
            calibration: np.ndarray | None = None) -> list[dict]:
    """The SavedModel's `serve` signature as `out` in `fmt`; LiteRT `quantize` int8 (with
    `calibration`, model inputs) or dynamic. Returns the layers int8 left in float (each
    {"op", "tensor", "error_steps"}), [] for the other formats."""
    import tensorflow as tf

    if fmt == "tflite":
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_dir), signature_keys=["serve"])
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        kept = []
        if quantize == "int8":
            converter.representative_dataset = lambda: ([x[None]] for x in calibration)
            content, kept = _int8_selective(converter, calibration)
        else:
            content = converter.convert()
        out.write_bytes(strip_names(content))
        return kept
    check_onnx_available()
    import tf2onnx

    loaded = tf.saved_model.load(str(saved_dir))
    spec = [tf.TensorSpec((None, *input_shape), tf.float32, name="inputs")]
    tf2onnx.convert.from_function(tf.function(lambda inputs: loaded.serve(inputs)), input_signature=spec,
                                  opset=17, output_path=str(out))
    return []


# int8 keeps a layer in float when its int8 result is off by more than this many of its own
# quantization steps (RMSE over the debug images). Measured on captcha-tiny (thsr-real): every
# conv is at 0.3-0.4 steps; the position pool's BATCH_MATMUL (softmax weights x features) at 66,
# and with it in int8 the model answered as Keras on 15.6 % of held-out images (100 % without).
FLOAT_ABOVE_STEPS = 4.0


def layer_errors(debugger) -> list[dict]:
    """Each quantized layer of a run QuantizationDebugger: {"op", "tensor", "error_steps"},
    the RMSE of its int8 result against float in its own quantization steps."""
    import csv
    import io

    table = io.StringIO()
    debugger.layer_statistics_dump(table)
    table.seek(0)
    errors = []
    for row in csv.DictReader(table):
        scale = float(row.get("scale") or 0.0)
        steps = float(row["mean_squared_error"]) ** 0.5 / scale if scale else 0.0
        errors.append({"op": row["op_name"], "tensor": row["tensor_name"], "error_steps": round(steps, 2)})
    return errors


def _int8_selective(converter, calibration: np.ndarray) -> tuple[bytes, list[dict]]:
    """Full-integer quantization, with the layers it breaks left in float: TFLite's
    QuantizationDebugger measures each quantized layer's error against float on calibration
    images, and the calibrated model is quantized again with those over FLOAT_ABOVE_STEPS
    deny-listed (setting the debugger's options reuses its calibration)."""
    import tensorflow as tf

    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=lambda: ([x[None]] for x in calibration[:16]))
    debugger.run()
    kept = [e for e in layer_errors(debugger) if e["error_steps"] > FLOAT_ABOVE_STEPS]
    if kept:
        debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=[k["tensor"] for k in kept])
    return debugger.get_nondebug_quantized_model(), kept


def strip_names(content: bytes) -> bytes:
    """A .tflite without its tensor names (a quarter of a small int8 model's bytes: the Keras
    layer paths of every tensor), its signatures kept: runners find inputs and outputs through
    the signature's own names, never a tensor's."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            tensor.name = None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


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
