"""Export: a real SavedModel, reloaded with plain TF, compared with Keras; predict from it."""
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kerashw import export
from kerashw.training import train
from kerashw.captcha import folders
from kerashw.cli import main
from kerashw.config import RunSpec, TrainOptions


@pytest.fixture(scope="module")
def captcha_export(tmp_path_factory, captcha_run):
    store, row, _ = captcha_run
    out = export.export_run(store, row, tmp_path_factory.mktemp("exp") / "saved")
    return store, RunSpec.from_dict(row.spec), out


def test_metadata_and_reload_round_trip(captcha_export):
    import keras
    import tensorflow as tf

    store, spec, out = captcha_export
    meta = json.loads((out / "kerashw.json").read_text())
    assert meta["task"] == "captcha" and meta["run_id"] == spec.run_id
    assert meta["preprocess"] == "denoise" and meta["alphabet"] == "234579ACFHKMNPQRTYZ"
    assert meta["input_shape"] == [50, 130, 1] and meta["outputs"] == ["char_1", "char_2", "char_3", "char_4"]
    assert meta["reload_max_abs_diff"] < 1e-5 and "tensorflow" in meta["versions"]
    model = keras.saving.load_model(store.run_dir(spec.run_id) / "model.keras", compile=False)
    x = np.random.default_rng(1).random((3, 50, 130, 1)).astype("float32")
    loaded = tf.saved_model.load(str(out))
    served = loaded.serve(tf.constant(x))
    for k in meta["outputs"]:
        np.testing.assert_allclose(np.asarray(served[k]), np.asarray(model(x)[k]), atol=1e-5)


def test_predict_matches_keras_on_synthetic_images(captcha_export, synth_folder):
    import keras

    store, spec, out = captcha_export
    model = keras.saving.load_model(store.run_dir(spec.run_id) / "model.keras", compile=False)
    served, meta = export.load_exported(out)
    items = folders.read_labelled_folder(synth_folder)[:6]
    x = np.stack([export.prepare_image(i.path, meta) for i in items])
    texts = [r["text"] for r in export.predict_arrays(served, meta, x)]
    probs = model(x)
    expected = ["".join(meta["alphabet"][int(np.argmax(probs[f"char_{k}"][n]))] for k in range(1, 5))
                for n in range(len(items))]
    assert texts == expected


def test_cli_predict_folder_and_bad_file(captcha_export, synth_folder, tmp_path):
    _, _, out = captcha_export
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG broken")
    good = next(synth_folder.glob("*.png"))
    r = CliRunner().invoke(main, ["predict", str(out), str(bad), str(good)])
    assert r.exit_code == 1
    assert "broken.png: cannot read this image" in r.output and f"{good}: " in r.output
    r = CliRunner().invoke(main, ["predict", str(out), "--data", str(synth_folder)])
    assert r.exit_code == 0 and "accuracy over 160 labelled images: whole captcha" in r.output
    r = CliRunner().invoke(main, ["predict", str(tmp_path), str(good)])
    assert r.exit_code == 1 and "not a kerashw export" in r.output


def test_predict_csv_and_json_are_one_plain_row_per_image(captcha_export, synth_folder):
    import csv
    import io

    _, _, out = captcha_export
    runner = CliRunner()  # click 8.2: stdout and stderr apart
    r = runner.invoke(main, ["predict", str(out), "--data", str(synth_folder), "--format", "csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 160 and set(rows[0]) == {"file", "text", "confidence", "label", "correct"}
    assert all(len(r_["text"]) == 4 and len(r_["confidence"].split()) == 4 for r_ in rows)
    assert {r_["correct"] for r_ in rows} <= {"True", "False"}
    r = runner.invoke(main, ["predict", str(out), "--data", str(synth_folder), "--format", "json"])
    data = json.loads(r.stdout)
    assert len(data) == 160 and all(isinstance(c, float) for c in data[0]["confidence"])
    assert sum(d["correct"] for d in data) == sum(r_["correct"] == "True" for r_ in rows)


def test_results_csv_has_plain_numbers(captcha_export):
    store, _, _ = captcha_export
    r = CliRunner().invoke(main, ["results", "--store", str(store.home), "--format", "csv"])
    header, first = r.output.splitlines()[:2]
    params = first.split(",")[header.split(",").index("params")]
    assert params.isdigit() and int(params) > 1000  # 93596, not "93,596"


@pytest.mark.slow
def test_mnist_export_and_predict(tmp_path, mnist_path, store):
    import cv2

    spec = RunSpec(epochs=1, limit=512)
    spec = train.run(spec, store=store, options=TrainOptions(mnist=str(mnist_path)), studies=["lr"]).spec
    r = CliRunner().invoke(main, ["export", spec.run_id[:8], "--store", str(store.path),
                                  "-o", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "m" / "kerashw.json").read_text())
    assert meta["task"] == "mnist" and meta["input_shape"] == [28, 28]
    from kerashw.mnist.source import load_mnist_file

    arr = load_mnist_file(mnist_path)
    cv2.imwrite(str(tmp_path / "d.png"), arr["x_test"][0])
    r = CliRunner().invoke(main, ["predict", str(tmp_path / "m"), str(tmp_path / "d.png")])
    assert r.exit_code == 0 and "top-3" in r.output
    # the bytes signature: a digit image (and one 3x the size, resized in the graph) -> predict's digit
    import tensorflow as tf

    cv2.imwrite(str(tmp_path / "big.png"), cv2.resize(arr["x_test"][1], (84, 84)))
    served, meta = export.load_exported(tmp_path / "m")
    files = [tmp_path / "d.png", tmp_path / "big.png"]
    out = served.signatures["serving_default"](images=tf.constant([f.read_bytes() for f in files]))
    want = [export.predict_arrays(served, meta, export.prepare_image(f, meta)[None])[0]["text"] for f in files]
    assert [t.decode() for t in out["text"].numpy()] == want and out["top3"].shape == (2, 3)
    # exporting over a non-empty folder refuses, and keeps what is there
    r = CliRunner().invoke(main, ["export", spec.run_id, "--store", str(store.path), "-o", str(tmp_path / "m")])
    assert r.exit_code == 1 and "exists and is not empty" in r.output
    assert (tmp_path / "m" / "kerashw.json").exists()


# -- the image-bytes signature: a whole captcha solver, nothing of kerashw needed --------

PURE_TF = """
import json, sys
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
files = json.loads(sys.argv[2])
images = [open(f, "rb").read() for f in files] + [b"", b"not an image"]
out = model.signatures["serving_default"](images=tf.constant(images))
print(json.dumps({"text": [t.decode() for t in out["text"].numpy()], "valid": out["valid"].numpy().tolist(),
                  "confidence": out["confidence"].numpy().tolist(), "heads": sorted(k for k in out if k.startswith("char_")),
                  "loaded": sorted({k.split(".")[0] for k in sys.modules} & {"keras", "cv2", "kerashw"})}))
"""


def _python_without_kerashw(tmp_path):
    """A `python -S` whose sys.path is this site-packages without keras, OpenCV, kerashw (or
    its editable install): only TensorFlow and what it needs."""
    import site

    farm = tmp_path / "site"
    farm.mkdir()
    for entry in Path(site.getsitepackages()[0]).iterdir():
        name = entry.name.lower()
        if not (name.startswith(("keras", "cv2", "opencv", "kerashw", "__editable__", "tui")) or name.endswith(".pth")):
            (farm / entry.name).symlink_to(entry)
    return farm


@pytest.fixture(scope="module")
def original_run(tmp_path_factory, synth_folder):
    from kerashw.store import Store

    store = Store(tmp_path_factory.mktemp("orig") / "st")
    spec = RunSpec(task="captcha", model="resnet18_tiny_hr", preprocess="original", data=str(synth_folder),
                   epochs=1, limit=64, lr=1e-3)
    result = train.run(spec, store=store, options=TrainOptions())
    return store, store.get(result.run_id)


@pytest.mark.slow
def test_the_export_reads_image_bytes_with_only_tensorflow(original_run, synth_folder, tmp_path):
    """serving_default of a captcha export takes encoded images and returns the text, in a
    Python that cannot import kerashw, OpenCV or Keras; its texts are `kerashw predict`'s.
    Unreadable bytes come back invalid, with empty text, and the rest of the batch is read."""
    import subprocess
    import sys

    store, row = original_run
    out = export.export_run(store, row, tmp_path / "m")
    meta = json.loads((out / "kerashw.json").read_text())
    assert meta["signatures"]["serving_default"] == "serve_images"
    files = [str(p) for p in sorted(synth_folder.glob("*.png"))[:16]]
    r = subprocess.run([sys.executable, "-S", "-c", PURE_TF, str(out), json.dumps(files)], capture_output=True,
                       text=True, timeout=300, env={"PYTHONPATH": str(_python_without_kerashw(tmp_path)),
                                                     "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["loaded"] == [] and got["heads"] == ["char_1", "char_2", "char_3", "char_4"]
    assert got["valid"] == [True] * 16 + [False, False] and got["text"][16:] == ["", ""]
    assert got["confidence"][16] == [0.0] * 4
    served, meta = export.load_exported(out)
    predicted = [export.predict_arrays(served, meta, export.prepare_image(f, meta)[None])[0]["text"] for f in files]
    assert got["text"][:16] == predicted  # the in-graph preprocessing gives predict's answers


@pytest.mark.slow
def test_a_denoise_export_says_it_has_no_bytes_signature(captcha_export):
    import tensorflow as tf

    _, _, out = captcha_export
    meta = json.loads((out / "kerashw.json").read_text())
    assert meta["signatures"]["serving_default"] == "serve"
    assert meta["signatures"]["serve_images"].startswith("none: denoise's arc removal")
    assert "serve_images" not in tf.saved_model.load(str(out)).signatures


@pytest.mark.slow
def test_litert_and_onnx_exports_predict_as_the_savedmodel(original_run, synth_folder, tmp_path, monkeypatch):
    """--format tflite (float32 and int8, calibrated on the run's training images) and onnx:
    one file each with its kerashw.json; predict runs each and says which; the float formats
    answer as the SavedModel does. (A one-epoch model's near-even outputs flip under any
    quantization, so the 99% agreement gate is lowered here and tested on its own below.)"""
    from kerashw import portable

    monkeypatch.setattr(portable, "MIN_AGREEMENT", 0.0)
    store, row = original_run
    runner = CliRunner()
    texts = {}
    for name, args in (("savedmodel", []), ("tflite", ["--format", "tflite"]),
                       ("int8", ["--format", "tflite", "--quantize", "int8"]), ("onnx", ["--format", "onnx"])):
        out = tmp_path / {"savedmodel": "sm", "tflite": "m.tflite", "int8": "m8.tflite", "onnx": "m.onnx"}[name]
        r = runner.invoke(main, ["export", row.id, "--store", str(store.home), "-o", str(out), *args])
        assert r.exit_code == 0, r.output
        r = runner.invoke(main, ["predict", str(out), "--data", str(synth_folder), "--format", "json"])
        assert r.exit_code == 0, r.output
        texts[name] = [d["text"] for d in json.loads(r.stdout)]
        assert {"savedmodel": "SavedModel", "tflite": "LiteRT float32", "int8": "LiteRT int8",
                "onnx": "ONNX Runtime"}[name] in r.stderr
    assert texts["tflite"] == texts["savedmodel"] and texts["onnx"] == texts["savedmodel"]
    assert len(texts["int8"]) == 160
    meta = json.loads((tmp_path / "m8.kerashw.json").read_text())
    assert meta["format"] == "tflite" and meta["quantize"] == "int8"
    assert meta["file_bytes"] < (tmp_path / "m.tflite").stat().st_size
    r = runner.invoke(main, ["export", row.id, "--store", str(store.home), "--quantize", "int8", "-o", str(tmp_path / "x")])
    assert r.exit_code == 1 and "is for --format tflite" in r.output
    monkeypatch.setattr(portable, "MIN_AGREEMENT", 1.01)  # no model reaches it: the refusal
    r = runner.invoke(main, ["export", row.id, "--store", str(store.home), "--format", "tflite", "--quantize", "dynamic",
                             "-o", str(tmp_path / "refused.tflite")])
    assert r.exit_code == 1 and "does not survive that quantization" in r.output
    assert not (tmp_path / "refused.tflite").exists()


def test_int8_keeps_in_float_the_layer_it_breaks_and_strips_tensor_names(tmp_path, monkeypatch):
    """The position pool's product of two activations (softmax weights x features) is tens of
    quantization steps off in int8, a conv well under one: the debugger finds it, it stays
    float, and the pooled features come far closer to Keras's than with it in int8. The file
    has no tensor names, and its signature still serves by output name."""
    import keras
    import tensorflow as tf

    from kerashw import blocks, portable

    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 30, 3), name="inputs")  # random weights show it as well
    features = blocks.conv2d(inputs, 16, 3, activation="relu", name="conv")
    pooled = blocks.apply_position_pool(features, 4, name="pool")
    model = keras.Model(inputs, {f"char_{k + 1}": p for k, p in enumerate(pooled)})
    x = np.random.default_rng(0).random((48, 12, 30, 3), dtype=np.float32)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda inputs: model(inputs, training=False),
                         input_signature=[tf.TensorSpec((None, 12, 30, 3), tf.float32, name="inputs")])
    archive.write_out(str(tmp_path / "sm"), verbose=False)
    direct = model(x[32:], training=False)

    def error(kept_limit, name):
        monkeypatch.setattr(portable, "FLOAT_ABOVE_STEPS", kept_limit)
        kept = portable.convert(tmp_path / "sm", tmp_path / name, "tflite", input_shape=(12, 30, 3),
                                quantize="int8", calibration=x[:32])
        served = portable.LiteRT(tmp_path / name).serve(x[32:])
        assert sorted(served) == sorted(direct)  # read by name, as the signature has them
        return kept, float(np.mean([np.mean(np.abs(served[k] - np.asarray(direct[k]))) for k in direct]))

    kept, selective = error(portable.FLOAT_ABOVE_STEPS, "selective.tflite")
    assert [k["op"] for k in kept] == ["BATCH_MATMUL"] and kept[0]["error_steps"] > 10
    none_kept, all_int8 = error(1e9, "all.tflite")
    assert none_kept == [] and selective < all_int8 / 2  # 0.037 against 0.129 here
    from tensorflow.lite.tools import flatbuffer_utils

    tensors = flatbuffer_utils.read_model(str(tmp_path / "selective.tflite")).subgraphs[0].tensors
    assert not any(t.name for t in tensors)


def test_onnx_without_the_extra_is_one_line_naming_it(original_run, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # as on a machine without kerashw[deploy]
    store, row = original_run
    r = CliRunner().invoke(main, ["export", row.id, "--store", str(store.home), "--format", "onnx",
                                  "-o", str(tmp_path / "m.onnx")])
    assert r.exit_code == 1 and 'pip install "kerashw[deploy]"' in r.output and "Traceback" not in r.output
    assert not (tmp_path / "m.onnx").exists()


def test_predict_data_on_a_split_dataset_says_which_folder_to_give(captcha_export, tmp_path, synth_folder):
    import shutil

    _, _, out = captcha_export
    for split in ("train", "val", "test"):
        shutil.copytree(synth_folder, tmp_path / "data" / split, copy_function=shutil.copyfile)
    r = CliRunner().invoke(main, ["predict", str(out), "--data", str(tmp_path / "data")])
    assert r.exit_code == 1 and f"predict --data {tmp_path / 'data' / 'test'}" in r.output, r.output
