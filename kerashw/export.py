"""SavedModel export with a reload check, and prediction from the SavedModel alone.

The `serve` signature takes a float32 batch in the model's input shape, scaled to
[0, 1]: (N, 28, 28) for MNIST, (N, 50, 130, C) for captchas after the run's
preprocess variant. Preprocessing stays outside the graph because the denoise
variants are OpenCV code; `predict` runs that same code (kerashw.captcha.preprocess).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from kerashw import __version__
from kerashw.images import UnreadableImage, display_name, read_bgr
from kerashw.store import RunRow, Store

TOLERANCE = 1e-5
META = "kerashw.json"


class ExportError(RuntimeError):
    pass


def _sample_batch(row: RunRow, input_shape) -> np.ndarray:
    """Images for the reload check: synthetic captchas through the run's preprocessing,
    or MNIST test digits when a local MNIST file is found (else seeded noise)."""
    if row.task == "captcha":
        from kerashw.captcha import preprocess, synth

        fn = preprocess.get_preprocessor(row.spec.get("preprocess") or "original")
        rng = np.random.default_rng(0)
        imgs = [fn(synth.generate(synth.random_label(rng), i)[:, :, ::-1]) for i in range(8)]
        return np.stack(imgs).astype("float32") / 255.0
    from kerashw.mnist import source as mnist_source

    found = mnist_source.find_mnist(None)
    if found is not None and found.exists():
        return mnist_source.load_mnist_file(found)["x_test"][:8].astype("float32") / 255.0
    return np.random.default_rng(0).random((8, *input_shape)).astype("float32")


def export_run(store: Store, row: RunRow, out: str | Path | None = None, weights: str = "final") -> Path:
    import keras
    import tensorflow as tf

    run_dir = store.run_dir(row.id)
    model_file = run_dir / "model.keras"
    if row.status != "finished":
        raise ExportError(f"run {row.id} is {row.status}; only finished runs have a saved model")
    if not model_file.exists():
        raise ExportError(f"run {row.id} is finished but its saved model {model_file} is missing (the run "
                          f"folder was moved or deleted); train it again with --force")
    best_file = run_dir / "best.weights.h5"
    if weights == "best" and not best_file.exists():
        raise ExportError(f"run {row.id} has no best-val checkpoint ({best_file} is missing: "
                          "no epoch had a val split); export --weights final")
    study = (row.studies or [row.task])[0]
    out = Path(out) if out else Path("saved_models") / f"{study}-{row.id}"
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file; -o takes a folder (new or empty)")
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} exists and is not empty; choose another -o or remove it")
    _check_writable(out)
    model = keras.saving.load_model(model_file, compile=False)
    if weights == "best":
        model.load_weights(best_file)
    try:
        model.export(str(out), format="tf_saved_model", verbose=False)
        diffs, outputs = _reload_check(out, model, _sample_batch(row, model.input_shape[1:]))
    except Exception:
        import shutil

        shutil.rmtree(out, ignore_errors=True)  # only what this export created
        raise
    meta = {
        "task": row.task, "run_id": row.id, "label": row.label, "spec": row.spec,
        "weights": weights, "input_shape": list(model.input_shape[1:]),
        "preprocess": row.spec.get("preprocess"),
        "alphabet": _alphabet(row.task),
        "outputs": outputs,
        "metrics": {"final": row.final, "best": row.best},
        "reload_max_abs_diff": max(diffs),
        "versions": {**row.versions, "kerashw_export": __version__, "tensorflow_export": tf.__version__},
    }
    (out / META).write_text(json.dumps(meta, indent=2))
    return out


def _check_writable(out: Path) -> None:
    """Before the minutes of loading and exporting: can `out` be made and written?"""
    parent = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    if not os.access(parent, os.W_OK | os.X_OK):
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


def _alphabet(task: str) -> str:
    if task == "mnist":
        return "0123456789"
    from kerashw.captcha.constants import ALPHABET

    return ALPHABET


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
    from kerashw.captcha.constants import HEADS
    from kerashw.captcha.preprocess import CHANNELS

    if not isinstance(meta, dict):
        raise ExportError(f"{meta_file}: want a JSON object, got {type(meta).__name__}")
    kinds = {"task": str, "input_shape": list, "alphabet": str, "outputs": list}
    missing = [k for k in kinds if k not in meta]
    if missing:
        raise ExportError(f"{meta_file}: missing {missing}")
    for key, kind in kinds.items():
        if not isinstance(meta[key], kind):
            raise ExportError(f"{meta_file}: {key} is {meta[key]!r}; want a JSON {kind.__name__.replace('str', 'string')}")
    if meta["task"] not in ("mnist", "captcha"):
        raise ExportError(f"{meta_file}: unknown task {meta['task']!r}; want mnist or captcha")
    if meta["alphabet"] != _alphabet(meta["task"]):  # the classes' order the model was trained with
        raise ExportError(f"{meta_file}: alphabet {meta['alphabet']!r} is not the {meta['task']} model's "
                          f"{_alphabet(meta['task'])!r}; predictions would be decoded as other symbols")
    spec_pre = (meta.get("spec") or {}).get("preprocess") if isinstance(meta.get("spec"), dict) else None
    if meta["task"] == "captcha" and spec_pre is not None and meta.get("preprocess") != spec_pre:
        raise ExportError(f"{meta_file}: preprocess {meta.get('preprocess')!r} but the run trained on "
                          f"{spec_pre!r} (its spec); predict must preprocess as training did")
    serve = loaded.signatures.get("serving_default")
    if serve is None:
        raise ExportError(f"{meta_file.parent}: the SavedModel has no serving signature")
    inputs = list(serve.structured_input_signature[1].values())
    if len(inputs) != 1:
        raise ExportError(f"{meta_file.parent}: the SavedModel takes {len(inputs)} inputs; a kerashw model takes one")
    (spec,) = inputs
    if meta["task"] == "mnist" and list(spec.shape[1:]) != [28, 28]:
        raise ExportError(f"{meta_file.parent}: task mnist, but the SavedModel takes {list(spec.shape[1:])} "
                          "images; an MNIST model takes 28x28")
    if list(spec.shape[1:]) != list(meta["input_shape"]):
        raise ExportError(f"{meta_file}: input_shape {meta['input_shape']} but the SavedModel takes "
                          f"{list(spec.shape[1:])}")
    widths = {name: int(t.shape[-1]) for name, t in serve.structured_outputs.items()}
    if meta["task"] == "captcha":
        if sorted(widths) != sorted(HEADS):
            raise ExportError(f"{meta_file}: task captcha, but the SavedModel's outputs are {sorted(widths)}")
        if not isinstance(meta.get("preprocess"), str) or meta["preprocess"] not in CHANNELS or CHANNELS[meta["preprocess"]] != meta["input_shape"][-1]:
            raise ExportError(f"{meta_file}: preprocess {meta.get('preprocess')!r} does not give "
                              f"{meta['input_shape'][-1]}-channel input; known: {sorted(CHANNELS)}")
    width = max(widths.values())
    if len(meta["alphabet"]) != width or len(set(meta["alphabet"])) != width:
        raise ExportError(f"{meta_file}: alphabet {meta['alphabet']!r} has {len(set(meta['alphabet']))} distinct "
                          f"symbols but the model's outputs have {width} classes")


def prepare_image(file: str | Path, meta: dict) -> np.ndarray:
    """One image file -> the model's input, with the run's preprocessing."""
    import cv2

    from kerashw.captcha import preprocess

    try:
        img = read_bgr(file)
    except UnreadableImage as why:
        raise ExportError(f"{display_name(file)}: cannot read this image ({why})") from None
    if meta["task"] == "mnist":
        gray = cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), (28, 28), interpolation=cv2.INTER_AREA)
        return gray.astype("float32") / 255.0
    return preprocess.get_preprocessor(meta["preprocess"])(img).astype("float32") / 255.0


def predict_arrays(served, meta: dict, x: np.ndarray) -> list[dict]:
    """Batch of model inputs -> [{text, confidence per char}] or [{digit, top3}]."""
    import tensorflow as tf

    out = served.serve(tf.constant(x, dtype=tf.float32))
    results = []
    if meta["task"] == "captcha":
        probs = [np.asarray(out[f"char_{k}"]) for k in range(1, 5)]
        for i in range(len(x)):
            idx = [int(np.argmax(p[i])) for p in probs]
            results.append({"text": "".join(meta["alphabet"][j] for j in idx),
                            "confidence": [float(p[i][j]) for p, j in zip(probs, idx)]})
    else:
        p = np.asarray(out)
        for row in p:
            top = np.argsort(row)[::-1][:3]
            results.append({"digit": int(top[0]), "top3": [(int(k), float(row[k])) for k in top]})
    return results
