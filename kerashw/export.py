"""SavedModel export with a reload check, and prediction from the SavedModel alone.

The `serve` signature takes a float32 batch in the model's input shape, scaled to
[0, 1]: (N, 28, 28) for MNIST, (N, 50, 130, C) for captchas after the run's
preprocess variant. Preprocessing stays outside the graph because the denoise
variants are OpenCV code; `predict` runs that same code, through the run's task
(its read_image and decode).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kerashw import __version__, atomic, portable, tasks
from kerashw.images import UnreadableImage, display_name
from kerashw.store import RunRow, Store

TOLERANCE = 1e-5
META = "kerashw.json"


class ExportError(RuntimeError):
    pass


def export_run(store: Store, row: RunRow, out: str | Path | None = None, weights: str = "final",
               fmt: str = "savedmodel", quantize: str | None = None) -> Path:
    """The run's model as a SavedModel folder (verified by reloading it with plain TF), or as
    one .tflite / .onnx file converted from it (verified against Keras on sample inputs)."""

    if fmt not in portable.FORMATS:
        raise ExportError(f"unknown format {fmt!r}; want one of {', '.join(portable.FORMATS)}")
    if quantize not in (None, *portable.QUANTIZE) or (quantize and fmt != "tflite"):
        raise ExportError(f"--quantize {quantize} is for --format tflite ({' or '.join(portable.QUANTIZE)})")
    if fmt == "onnx":
        try:
            portable.check_onnx_available()
        except portable.MissingExtra as exc:
            raise ExportError(str(exc)) from None

    files = store.files(row.id)
    model_file = files.model
    if row.status != "finished":
        raise ExportError(f"run {row.id} is {row.status}; only finished runs have a saved model")
    if not model_file.exists():
        raise ExportError(f"run {row.id} is finished but its saved model {model_file} is missing (the run "
                          f"folder was moved or deleted); train it again with --force")
    best_file = files.best_weights
    if weights == "best" and not best_file.exists():
        raise ExportError(f"run {row.id} has no best-val checkpoint ({best_file} is missing: "
                          "no epoch had a val split); export --weights final")
    study = (row.studies or [row.task])[0]
    if fmt != "savedmodel":
        return _export_file(row, model_file, best_file if weights == "best" else None, weights, fmt, quantize,
                            Path(out) if out else Path("saved_models") / (
                                f"{study}-{row.id}{'-' + quantize if quantize else ''}{portable.SUFFIX[fmt]}"))
    out = Path(out) if out else Path("saved_models") / f"{study}-{row.id}"
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file; -o takes a folder (new or empty)")
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} exists and is not empty; choose another -o or remove it")
    _check_writable(out)
    task = tasks.get(row.task)
    model = _load_model(model_file, best_file if weights == "best" else None)
    decode_meta = {"preprocess": row.spec.get("preprocess"), "alphabet": task.classes}
    try:
        images = _write_savedmodel(model, task, decode_meta, out)
        diffs, outputs = _reload_check(out, model, task.sample_batch(row.spec, model.input_shape[1:]))
    except Exception:
        import shutil

        shutil.rmtree(out, ignore_errors=True)  # only what this export created
        raise
    meta = {
        **_meta(row, task, model, weights, outputs),
        "reload_max_abs_diff": max(diffs),
        # serving_default: the image-bytes signature where the run's preprocessing has one
        "signatures": {"serving_default": "serve_images" if images is None else "serve",
                       "serve": "float32 model inputs, preprocessed as the run trained",
                       "serve_images": "encoded JPEG/PNG/BMP/GIF bytes" if images is None else f"none: {images}"},
    }
    (out / META).write_text(json.dumps(meta, indent=2))
    return out


def _load_model(model_file: Path, best_file: Path | None):
    from kerashw.models import load_model

    model = load_model(model_file)
    if best_file is not None:
        model.load_weights(best_file)
    return model


def _meta(row: RunRow, task, model, weights: str, outputs: list) -> dict:
    """What every export's kerashw.json says of its run and model."""
    import tensorflow as tf

    return {"task": row.task, "run_id": row.id, "label": row.label, "spec": row.spec, "weights": weights,
            "input_shape": list(model.input_shape[1:]), "preprocess": row.spec.get("preprocess"),
            "alphabet": task.classes, "outputs": outputs, "metrics": {"final": row.final, "best": row.best},
            "versions": {**row.versions, "kerashw_export": __version__, "tensorflow_export": tf.__version__}}


def _export_file(row: RunRow, model_file: Path, best_file: Path | None, weights: str, fmt: str,
                 quantize: str | None, out: Path) -> Path:
    """A .tflite or .onnx file (and its kerashw.json) from a SavedModel made on the way."""
    import shutil
    import tempfile


    from kerashw.config import DataError, RunSpec, TrainOptions

    if out.suffix != portable.SUFFIX[fmt]:
        raise ExportError(f"{out}: a {fmt} export is one file ending {portable.SUFFIX[fmt]}")
    if out.exists():
        raise ExportError(f"{out} exists; choose another -o or remove it")
    out.parent.mkdir(parents=True, exist_ok=True)
    _check_writable(out)
    task = tasks.get(row.task)
    model = _load_model(model_file, best_file)
    calibration = None
    x = task.sample_batch(row.spec, model.input_shape[1:])
    if quantize:
        spec = RunSpec.from_dict(row.spec)
        try:  # the run's own training images, preprocessed as it trained: int8 ranges, and the check
            train = task.split(spec, TrainOptions(), "train")
        except DataError as exc:
            raise ExportError(f"--quantize {quantize} checks (and int8 calibrates) on the run's training "
                              f"images: {exc}") from None
        calibration, x = quantization_images(train.x)
        calibration = calibration if quantize == "int8" else None
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out.parent))
    try:
        saved = tmp / "savedmodel"
        _write_savedmodel(model, task, {"preprocess": row.spec.get("preprocess"), "alphabet": task.classes}, saved)
        float_layers = portable.convert(saved, out, fmt, input_shape=model.input_shape[1:], quantize=quantize,
                                        calibration=calibration)
        direct, diff, agree = against_keras(portable.RUNNERS[out.suffix](out), model, x)
        if not quantize and diff >= 1e-4:
            raise ExportError(f"{out} differs from the Keras model by {diff:.2e} (allowed < 1e-4)")
        if quantize and agree < portable.MIN_AGREEMENT:
            raise ExportError(f"the {quantize} model answers as Keras on only {100 * agree:.1f}% of {len(x)} "
                              f"training images it was not calibrated on (want {100 * portable.MIN_AGREEMENT:.0f}%): "
                              "this model does not survive that quantization"
                              + ("; --quantize dynamic keeps the activations float" if quantize == "int8" else ""))
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    meta = {**_meta(row, task, model, weights, sorted(direct) if len(direct) > 1 else ["probabilities"]),
            "format": fmt, "quantize": quantize, "file_bytes": out.stat().st_size,
            "check": {"max_abs_diff": diff, "argmax_agreement": agree, "samples": len(x)}}
    if quantize == "int8":  # the layers int8 broke, left in float (portable.FLOAT_ABOVE_STEPS)
        meta["float_layers"] = float_layers
    portable.meta_path(out).write_text(json.dumps(meta, indent=2))
    return out


def against_keras(runner, model, x: np.ndarray) -> tuple[dict, float, float]:
    """A converted model's runner against the Keras model on inputs `x`: (Keras's outputs by
    name, the largest difference, the smallest per-output share of the same argmax)."""
    served, direct = runner.serve(x), model(x, training=False)
    direct = direct if isinstance(direct, dict) else {"probabilities": direct}
    served_heads = [served[k] for k in direct] if set(direct) <= set(served) else list(served.values())
    pairs = [(np.asarray(a), np.asarray(b)) for a, b in zip(served_heads, direct.values())]
    return (direct, max(float(np.max(np.abs(a - b))) for a, b in pairs),
            min(float(np.mean(np.argmax(a, -1) == np.argmax(b, -1))) for a, b in pairs))


def quantization_images(train_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(calibration, check) model inputs from a run's preprocessed training images: up to 256
    to calibrate int8 on, and up to 64 others it did not see to check the quantized model on."""
    pick = np.random.default_rng(0).permutation(len(train_x))
    k = min(256, max(1, len(train_x) * 3 // 4))  # a small --limit run keeps a quarter to check on
    held_out = pick[k:k + 64] if len(pick) > k else pick[:64]
    return train_x[pick[:k]].astype("float32") / 255.0, train_x[held_out].astype("float32") / 255.0


def _write_savedmodel(model, task, meta: dict, out: Path) -> str | None:
    """The SavedModel: `serve_images` (encoded image bytes -> text, confidences and each
    output; also `serving_default`) where the task has the run's preprocessing as TF ops,
    and `serve` (the model's float inputs). Returns why there is no `serve_images`, or None."""
    import keras
    import tensorflow as tf

    from kerashw import serving

    archive = keras.export.ExportArchive()
    archive.track(model)
    to_input = task.graph_input(meta)
    if not isinstance(to_input, str):
        shape = tuple(model.input_shape[1:])

        def serve_images(images):
            x, valid = serving.batch_inputs(images, to_input, shape)
            out = task.graph_decode(model(x, training=False), meta)
            # an unreadable image (empty, not an image, 0 or over 16M pixels): "" at confidence 0
            out["text"] = tf.where(valid, out["text"], "")
            out["confidence"] = out["confidence"] * tf.cast(valid, tf.float32)[:, None]
            return {**out, "valid": valid}

        archive.add_endpoint("serve_images", serve_images, input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    archive.add_endpoint("serve", lambda inputs: model(inputs, training=False),
                         input_signature=[tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="inputs")])
    archive.write_out(str(out), verbose=False)
    return to_input if isinstance(to_input, str) else None


def _check_writable(out: Path) -> None:
    """Before the minutes of loading and exporting: can `out` be made and written?"""
    parent = atomic.unwritable(out)
    if parent is not None:
        raise ExportError(f"{out}: cannot write there ({parent} is not writable); choose another -o")


def _reload_check(out: Path, model, x: np.ndarray):
    """Reload with plain TF, call `serve`, compare with the in-memory Keras model."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(out))  # keep a reference: its variables back `serve`
    served = loaded.serve(tf.constant(x))
    direct = model(x, training=False)
    if isinstance(direct, dict):
        diffs = [float(np.max(np.abs(np.asarray(served[k]) - np.asarray(direct[k])))) for k in direct]
    else:
        diffs = [float(np.max(np.abs(np.asarray(served) - np.asarray(direct))))]
    if max(diffs) >= TOLERANCE:
        raise ExportError(f"reloaded SavedModel at {out} differs from the Keras model by {max(diffs):.2e} "
                          f"(allowed < {TOLERANCE})")
    return diffs, sorted(direct) if isinstance(direct, dict) else ["probabilities"]


def best_run(store: Store, study: str) -> RunRow:
    rows = [r for r in store.runs(study=study) if r.status == "finished"]
    if not rows:
        raise ExportError(f"no finished runs of study {study!r} in {store.path}")
    return max(rows, key=lambda r: ((r.best.get("val") or {}).get("top1") or 0.0))


# -- prediction: SavedModel + metadata, no kerashw model code ---------------------------
def load_exported(path: str | Path):
    """(loaded SavedModel, metadata). Keep the first alive while calling `serve`."""
    import tensorflow as tf

    path = Path(path)
    if path.suffix in portable.RUNNERS and path.is_file():
        try:
            runner, meta = portable.load(path)
        except (FileNotFoundError, ValueError, portable.MissingExtra) as exc:
            raise ExportError(str(exc)) from None
        except Exception as exc:  # a damaged file: the runtime's own words
            raise ExportError(f"{path}: not a loadable {path.suffix[1:]} model ({type(exc).__name__}: {exc})") from None
        _check_fields(meta, portable.meta_path(path))
        return runner, meta
    meta_file = path / META
    if not meta_file.exists():
        raise ExportError(f"{path}: not a kerashw export ({META} missing)")
    try:
        meta = json.loads(meta_file.read_text())
    except ValueError as exc:
        raise ExportError(f"{meta_file}: not valid JSON ({exc})") from None
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:  # a missing or damaged saved_model.pb / variables
        raise ExportError(f"{path}: not a loadable SavedModel ({type(exc).__name__}: {exc})") from None
    check_metadata(meta, loaded, meta_file)
    return loaded, meta


def check_metadata(meta: dict, loaded, meta_file: Path) -> None:
    """kerashw.json must describe the SavedModel beside it: an edited alphabet or shape
    would decode predictions wrongly without a word, so each mismatch is one clear line."""
    task = _check_fields(meta, meta_file)
    serve = loaded.signatures.get("serve") or loaded.signatures.get("serving_default")
    if serve is None:
        raise ExportError(f"{meta_file.parent}: the SavedModel has no serving signature")
    inputs = list(serve.structured_input_signature[1].values())
    if len(inputs) != 1:
        raise ExportError(f"{meta_file.parent}: the SavedModel takes {len(inputs)} inputs; a kerashw model takes one")
    input_shape = list(inputs[0].shape[1:])
    widths = {name: int(t.shape[-1]) for name, t in serve.structured_outputs.items()}
    if input_shape != list(meta["input_shape"]):
        raise ExportError(f"{meta_file}: input_shape {meta['input_shape']} but the SavedModel takes {input_shape}")
    try:
        task.check_export(meta, input_shape, widths, meta_file)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    width = max(widths.values())
    if len(meta["alphabet"]) != width or len(set(meta["alphabet"])) != width:
        raise ExportError(f"{meta_file}: alphabet {meta['alphabet']!r} has {len(set(meta['alphabet']))} distinct "
                          f"symbols but the model's outputs have {width} classes")


def _check_fields(meta: dict, meta_file: Path):
    """The fields every export's kerashw.json has, their types, its task and alphabet; the task."""
    if not isinstance(meta, dict):
        raise ExportError(f"{meta_file}: want a JSON object, got {type(meta).__name__}")
    kinds = {"task": str, "input_shape": list, "alphabet": str, "outputs": list}
    missing = [k for k in kinds if k not in meta]
    if missing:
        raise ExportError(f"{meta_file}: missing {missing}")
    for key, kind in kinds.items():
        if not isinstance(meta[key], kind):
            raise ExportError(f"{meta_file}: {key} is {meta[key]!r}; want a JSON {kind.__name__.replace('str', 'string')}")
    if meta["task"] not in tasks.TASKS:
        raise ExportError(f"{meta_file}: unknown task {meta['task']!r}; want one of {sorted(tasks.TASKS)}")
    task = tasks.get(meta["task"])
    if meta["alphabet"] != task.classes:  # the classes' order the model was trained with
        raise ExportError(f"{meta_file}: alphabet {meta['alphabet']!r} is not the {task.name} model's "
                          f"{task.classes!r}; predictions would be decoded as other symbols")
    return task


def prepare_image(file: str | Path, meta: dict) -> np.ndarray:
    """One image file -> the model's input, with the run's preprocessing."""
    try:
        return tasks.get(meta["task"]).read_image(file, meta)
    except UnreadableImage as why:
        raise ExportError(f"{display_name(file)}: cannot read this image ({why})") from None


def predict_arrays(served, meta: dict, x: np.ndarray) -> list[dict]:
    """Batch of model inputs -> per image {text, confidence, ...} (the task decodes)."""
    import tensorflow as tf

    return tasks.get(meta["task"]).decode(served.serve(tf.constant(x, dtype=tf.float32)), len(x), meta)
