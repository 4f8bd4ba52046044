"""Export: a real SavedModel, reloaded with plain TF, compared with Keras; predict from it."""
import json

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
    # exporting over a non-empty folder refuses, and keeps what is there
    r = CliRunner().invoke(main, ["export", spec.run_id, "--store", str(store.path), "-o", str(tmp_path / "m")])
    assert r.exit_code == 1 and "exists and is not empty" in r.output
    assert (tmp_path / "m" / "kerashw.json").exists()
