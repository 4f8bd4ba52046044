import gzip
import struct

import numpy as np
import pytest

from conftest import tiny_mnist_arrays
from kerashw import pipeline
from kerashw.mnist import source
from kerashw.mnist.task import mnist_splits, split_indices
from kerashw.config import DataError


def write_idx(path, array, gz=False):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(raw)


def test_good_npz_loads(tmp_path):
    arrays = tiny_mnist_arrays()
    np.savez(tmp_path / "m.npz", **arrays)
    out = source.load_mnist_file(tmp_path / "m.npz")
    assert out["x_train"].shape == (90, 28, 28) and out["x_train"].dtype == np.uint8
    np.testing.assert_array_equal(out["y_test"], arrays["y_test"])


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_loads(tmp_path, gz):
    arrays = tiny_mnist_arrays()
    for key, stem in source.IDX_FILES.items():
        write_idx(tmp_path / (stem + (".gz" if gz else "")), arrays[key], gz=gz)
    out = source.load_mnist_file(tmp_path)
    np.testing.assert_array_equal(out["x_train"], arrays["x_train"])
    np.testing.assert_array_equal(out["y_train"], arrays["y_train"])


def test_missing_file_names_it_and_how_to_provide(tmp_path):
    with pytest.raises(DataError, match=r"nope\.npz: no such file.*--mnist PATH.*KERASHW_MNIST"):
        source.load_mnist_file(tmp_path / "nope.npz")


def test_idx_folder_missing_a_file(tmp_path):
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte"):
        arrays = tiny_mnist_arrays()
        for key, stem in source.IDX_FILES.items():
            if key != "x_test":
                write_idx(tmp_path / stem, arrays[key])
        source.load_mnist_file(tmp_path)


@pytest.mark.parametrize("key,value,message", [
    ("x_train", np.zeros((90, 28, 27), np.uint8), r"x_train has shape \(90, 28, 27\), want \(N, 28, 28\)"),
    ("x_test", np.zeros((20, 28, 28), np.float32), "x_test has dtype float32, want uint8"),
    ("y_train", np.full(90, 11), r"y_train holds labels 11\.\.11, want 0\.\.9"),
    ("y_test", np.zeros(19, np.uint8), r"y_test has shape \(19,\)"),
    # these were tracebacks, or cut to some digit without a word
    ("y_train", np.array(["3"] * 90), r"y_train has dtype <U1 \(for example '3'\); want integer labels 0\.\.9"),
    ("y_train", np.full(90, 2.5), r"y_train has dtype float64 \(for example 2\.5\); want integer labels"),
    ("y_test", np.full(20, np.nan), r"y_test has dtype float64 \(for example nan\)"),
    ("x_test", np.zeros((0, 28, 28), np.uint8), r"y_test has shape \(20,\), want \(0,\)"),
])
def test_bad_contents_are_named(tmp_path, key, value, message):
    arrays = {**tiny_mnist_arrays(), key: value}
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=rf"bad\.npz: {message}"):
        source.load_mnist_file(tmp_path / "bad.npz")


def test_missing_key_and_not_an_npz(tmp_path):
    arrays = tiny_mnist_arrays()
    del arrays["y_test"]
    np.savez(tmp_path / "k.npz", **arrays)
    with pytest.raises(DataError, match=r"missing \['y_test'\]"):
        source.load_mnist_file(tmp_path / "k.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(DataError, match="junk.npz: not a readable .npz"):
        source.load_mnist_file(tmp_path / "junk.npz")


def test_lookup_order(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASHW_MNIST", str(tmp_path / "env.npz"))
    assert source.find_mnist(tmp_path / "arg.npz") == tmp_path / "arg.npz"
    assert source.find_mnist(None) == tmp_path / "env.npz"
    monkeypatch.delenv("KERASHW_MNIST")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert source.find_mnist(None) is None  # nothing cached: the caller downloads
    (tmp_path / "kh" / "datasets").mkdir(parents=True)
    np.savez(tmp_path / "kh" / "datasets" / "mnist.npz", **tiny_mnist_arrays())
    assert source.find_mnist(None) == tmp_path / "kh" / "datasets" / "mnist.npz"


def test_report_split_sizes_disjoint_and_seeded(mnist_path):
    arrays = source.load_mnist_file(mnist_path)
    s = mnist_splits(arrays, seed=42)
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (48_000, 6_000, 10_000)
    tr, va = split_indices(60_000, 48_000, 6_000, 42)
    assert not set(tr) & set(va)
    tr2, _ = split_indices(60_000, 48_000, 6_000, 42)
    np.testing.assert_array_equal(tr, tr2)
    assert not np.array_equal(tr, split_indices(60_000, 48_000, 6_000, 7)[0])


def test_limit_subsamples_train_only(mnist_path):
    s = mnist_splits(source.load_mnist_file(mnist_path), seed=42, limit=500)
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (500, 6_000, 10_000)


def _batches(ds, n):
    return [tuple(np.asarray(t) for t in b) for b in ds.take(n).as_numpy_iterator()]


def test_train_stream_scales_shuffles_per_epoch_and_resumes_exactly():
    arrays = tiny_mnist_arrays()
    split = pipeline.Split(arrays["x_train"], arrays["y_train"].astype(np.int64))  # 90 images
    ds = pipeline.make_train_dataset(split, 32, seed=0, epochs=3)
    batches = _batches(ds, 9)
    assert [len(b[0]) for b in batches] == [32, 32, 26] * 3
    x = np.concatenate([b[0] for b in batches])
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    labels = [np.concatenate([b[1] for b in batches[i:i + 3]]) for i in (0, 3)]
    assert not np.array_equal(*labels)  # a new order each epoch
    assert sorted(labels[0]) == sorted(split.y)  # each epoch sees every image once
    resumed = _batches(pipeline.make_train_dataset(split, 32, seed=0, epochs=3, start_epoch=1), 6)
    for a, b in zip(batches[3:], resumed):
        np.testing.assert_array_equal(a[0], b[0])


def _block_split():
    x = np.zeros((16, 50, 130, 1), np.uint8)
    x[:, 15:35, 20:110] = 255  # a block well inside the frame
    return pipeline.Split(x, {"char_1": np.random.default_rng(0).integers(0, 19, 16)})


def test_augment_moves_training_pixels_reproducibly_and_resumes_exactly():
    split = _block_split()
    plain = np.concatenate([b[0] for b in pipeline.make_dataset(split, 8)])
    np.testing.assert_array_equal(plain, split.x / 255.0)
    batches = _batches(pipeline.make_train_dataset(split, 8, seed=0, epochs=2, augment=True), 4)
    first, second = (np.concatenate([b[0] for b in batches[i:i + 2]]) for i in (0, 2))
    assert first.shape == plain.shape and first.dtype == np.float32
    assert 0.0 <= first.min() and first.max() <= 1.0
    # shapes move: where the ink is differs from the source, and from epoch to epoch
    assert not np.array_equal(np.sort(first.reshape(16, -1), axis=0), np.sort(plain.reshape(16, -1), axis=0))
    assert not np.allclose(first.mean(axis=0), second.mean(axis=0))
    assert abs(first.mean() - plain.mean()) < 0.1  # small: most of the block stays ink
    # the draws are a function of (seed, epoch, batch): the same again, and on resume
    again = _batches(pipeline.make_train_dataset(split, 8, seed=0, epochs=2, augment=True), 4)
    resumed = _batches(pipeline.make_train_dataset(split, 8, seed=0, epochs=2, start_epoch=1, augment=True), 2)
    for a, b in zip(batches, again):
        np.testing.assert_array_equal(a[0], b[0])
    for a, b in zip(batches[2:], resumed):
        np.testing.assert_array_equal(a[0], b[0])


def test_random_arcs_invert_one_thin_curve_per_chosen_image_reproducibly():
    import tensorflow as tf

    n, h, w = 400, 50, 130
    x = np.full((n, h, w, 1), 0.8, np.float32)  # light paper
    x[:, 20:30, 40:50] = 0.1  # a dark stroke
    key = tf.constant([7, 9], tf.int64)
    assert np.array_equal(pipeline.random_arcs(tf.constant(x), key, 0.0).numpy(), x)
    out = pipeline.random_arcs(tf.constant(x), key, 0.5).numpy()
    changed = np.abs(out - x).reshape(n, -1).max(axis=1) > 1e-6
    assert 0.4 < changed.mean() < 0.6  # about half the images get an arc
    np.testing.assert_array_equal(out[~changed], x[~changed])
    arced = out[changed, ..., 0]
    covered = np.abs(arced - x[changed, ..., 0]) > 1e-6
    # one curve across the whole width, a few pixels thick in every column
    per_column = covered.sum(axis=1)
    assert per_column.min() >= 1 and per_column.max() <= np.ceil(pipeline.ARC_THICK[1]) + 4
    # fully covered pixels are inverted: paper turns dark, the stroke under it light
    full = np.isclose(arced, 1.0 - x[changed, ..., 0], atol=1e-6) & covered
    assert full.any() and np.all(arced[full & (x[changed, ..., 0] > 0.5)] < 0.5)
    # the arc's height varies from image to image over the documented family
    for column, (lo, hi) in ((0, pipeline.ARC_LEFT), (-1, pipeline.ARC_RIGHT)):
        rows = np.array([np.mean(np.nonzero(c[:, column])[0]) for c in covered])
        assert lo * h - 2 < rows.min() < (lo + 0.1) * h and (hi - 0.1) * h < rows.max() < hi * h + 2
    # a function of the key: the same again, other draws under another key
    np.testing.assert_array_equal(pipeline.random_arcs(tf.constant(x), key, 0.5).numpy(), out)
    assert not np.array_equal(pipeline.random_arcs(tf.constant(x), key + 1, 0.5).numpy(), out)


def test_arcs_join_the_training_stream_only_and_resume_exactly():
    split = _block_split()
    split = pipeline.Split(split.x, split.y["char_1"])
    plain = _batches(pipeline.make_train_dataset(split, 8, seed=0, epochs=2), 4)
    arcs = _batches(pipeline.make_train_dataset(split, 8, seed=0, epochs=2, arcs=1.0), 4)
    for a, b in zip(plain, arcs):
        np.testing.assert_array_equal(a[1], b[1])  # same order, same labels
        assert not np.array_equal(a[0], b[0])
    resumed = _batches(pipeline.make_train_dataset(split, 8, seed=0, epochs=2, start_epoch=1, arcs=1.0), 2)
    for a, b in zip(arcs[2:], resumed):
        np.testing.assert_array_equal(a[0], b[0])


def test_random_affine_draws_the_documented_ranges():
    """A single bright pixel at the centre of each of 4,000 frames: zoom and rotation
    about the centre leave it in place, so where it lands is the shift alone, uniform
    in +-8 % of the height and +-5 % of the width."""
    import tensorflow as tf

    h, w = 51, 131  # odd, so the centre is a pixel
    x = np.zeros((4000, h, w, 1), np.float32)
    x[:, h // 2, w // 2] = 1.0
    out = pipeline.random_affine(tf.constant(x), tf.constant([3, 4], tf.int64)).numpy()[..., 0]
    ys, xs = np.indices((h, w))
    mass = out.sum(axis=(1, 2))
    assert np.all(mass > 0.5)  # the dot stays inside the frame
    cy = (out * ys).sum(axis=(1, 2)) / mass - h // 2
    cx = (out * xs).sum(axis=(1, 2)) / mass - w // 2
    for shift, limit in ((cy, pipeline.SHIFT_Y * h), (cx, pipeline.SHIFT_X * w)):
        assert np.abs(shift).max() <= limit * 1.1 + 0.5  # within the range (zoom smears the dot a little)
        assert np.abs(shift).max() >= limit * 0.9  # and it uses the range
        assert abs(np.abs(shift).mean() - limit / 2) < 0.1 * limit  # uniform: mean |shift| is half of it
    # a pixel away from the centre also turns and scales: two dots keep about their distance
    x2 = np.zeros((200, h, w, 1), np.float32)
    x2[:, h // 2, w // 2 - 40] = x2[:, h // 2, w // 2 + 40] = 1.0
    out2 = pipeline.random_affine(tf.constant(x2), tf.constant([5, 6], tf.int64)).numpy()[..., 0]
    left = out2[:, :, : w // 2]
    right = out2[:, :, w // 2 + 1:]
    lx = (left * xs[:, : w // 2]).sum(axis=(1, 2)) / left.sum(axis=(1, 2))
    rx = (right * xs[:, w // 2 + 1:]).sum(axis=(1, 2)) / right.sum(axis=(1, 2))
    ratio = (rx - lx) / 80.0  # 1 / zoom: within 1 +- 8 %, and not always 1
    assert ratio.min() > 1 / 1.09 and ratio.max() < 1 / 0.91 and ratio.std() > 0.02


def test_an_empty_test_split_is_refused(tmp_path):
    """Once a KeyError 'loss' from evaluate, after the whole training."""
    arrays = {**tiny_mnist_arrays(), "x_test": np.zeros((0, 28, 28), np.uint8), "y_test": np.zeros(0, np.uint8)}
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=r"bad\.npz: x_test holds no images; want at least one"):
        source.load_mnist_file(tmp_path / "bad.npz")


def test_whole_float_labels_are_accepted(tmp_path):
    arrays = {**tiny_mnist_arrays(), "y_test": np.arange(20, dtype=np.float32) % 10}
    np.savez(tmp_path / "f.npz", **arrays)
    assert source.load_mnist_file(tmp_path / "f.npz")["y_test"].dtype == np.int64
