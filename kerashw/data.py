"""MNIST source and tf.data pipelines.

Loading and validation are NumPy only; TensorFlow is imported where pipelines
are built, so the CLI can check a data file without paying for TF.
"""
from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MNIST_KEYS = ("x_train", "y_train", "x_test", "y_test")
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
HOW_TO_PROVIDE = (
    "Provide MNIST as a local file: pass --mnist PATH (an mnist.npz in Keras's format, "
    "or a folder with the four original IDX files, gzipped or not), or set KERASHW_MNIST=PATH, "
    "or place mnist.npz at ~/.keras/datasets/mnist.npz."
)

# The report's split: 48,000 train + 6,000 val out of the 60,000 training images.
N_TRAIN, N_VAL = 48_000, 6_000


class DataError(ValueError):
    """Bad or missing data; the message names the file and what would be accepted."""


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # uint8 images
    y: np.ndarray  # int labels (MNIST) or dict of per-head labels (captcha)

    def __len__(self) -> int:
        return len(self.x)


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc})") from exc
    if len(raw) < 8:
        raise DataError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()}, want 0000080x)")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path}: header says {dims} ({int(np.prod(dims))} bytes) but holds {body.size}")
    return body.reshape(dims)


def _load_idx_dir(folder: Path) -> dict:
    arrays = {}
    for key, stem in IDX_FILES.items():
        candidates = [folder / stem, folder / (stem + ".gz"),
                      folder / stem.replace("-idx", ".idx"), folder / (stem.replace("-idx", ".idx") + ".gz")]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            raise DataError(f"{folder}: no {stem}[.gz] in this folder; an MNIST IDX folder holds "
                            f"{', '.join(IDX_FILES.values())} (gzipped or not)")
        arrays[key] = _read_idx(found)
    return arrays


def validate_mnist(arrays: dict, source: Path) -> dict:
    """Check keys, shapes, dtype and label range; name the source and the problem."""
    missing = [k for k in MNIST_KEYS if k not in arrays]
    if missing:
        raise DataError(f"{source}: missing {missing}; an MNIST npz holds {list(MNIST_KEYS)}")
    out = {}
    for split in ("train", "test"):
        x, y = np.asarray(arrays[f"x_{split}"]), np.asarray(arrays[f"y_{split}"])
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataError(f"{source}: x_{split} has shape {x.shape}, want (N, 28, 28)")
        if x.dtype != np.uint8:
            raise DataError(f"{source}: x_{split} has dtype {x.dtype}, want uint8 pixels 0-255")
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{source}: y_{split} has shape {y.shape}, want ({len(x)},) to match x_{split}")
        if len(y) and (y.min() < 0 or y.max() > 9):
            raise DataError(f"{source}: y_{split} holds labels {int(y.min())}..{int(y.max())}, want 0..9")
        out[f"x_{split}"], out[f"y_{split}"] = x, y.astype(np.int64)
    return out


def load_mnist_file(path: str | os.PathLike) -> dict:
    """Load and validate an mnist.npz or an IDX folder."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder. {HOW_TO_PROVIDE}")
    if path.is_dir():
        return validate_mnist(_load_idx_dir(path), path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # zipfile/pickle/format errors all mean "not an npz"
        raise DataError(f"{path}: not a readable .npz file ({exc}). {HOW_TO_PROVIDE}") from exc
    return validate_mnist(arrays, path)


def find_mnist(path: str | os.PathLike | None = None) -> Path | None:
    """The first MNIST source that exists: explicit path, $KERASHW_MNIST, Keras's cache."""
    if path:
        return Path(path).expanduser()  # explicit: use it even if missing, so the error names it
    env = os.environ.get("KERASHW_MNIST")
    if env:
        return Path(env).expanduser()
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / "mnist.npz"
    return cache if cache.exists() else None


def load_mnist(path: str | os.PathLike | None = None) -> dict:
    """MNIST arrays from a local source, or Keras's download as the last resort."""
    source = find_mnist(path)
    if source is not None:
        return load_mnist_file(source)
    try:
        import keras

        (xtr, ytr), (xte, yte) = keras.datasets.mnist.load_data()
    except Exception as exc:
        raise DataError(f"MNIST download failed ({type(exc).__name__}: {exc}). {HOW_TO_PROVIDE}") from exc
    return validate_mnist({"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte},
                          Path("~/.keras/datasets/mnist.npz"))


def split_indices(n: int, n_train: int, n_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded disjoint train/val index sets out of range(n)."""
    if n_train + n_val > n:
        # Small files (tests, subsets) keep the report's 8:1 proportion instead.
        n_val = max(1, n // 9)
        n_train = n - n_val
    perm = np.random.default_rng(seed).permutation(n)
    return perm[:n_train], perm[n_train : n_train + n_val]


def subsample(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Seeded subset of range(n), sorted, so --limit picks the same images every time."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed + 1).choice(n, size=limit, replace=False))


def mnist_splits(arrays: dict, seed: int, limit: int | None = None) -> dict[str, Split]:
    """train/val/test splits in the report's sizes; limit subsamples train only."""
    tr, va = split_indices(len(arrays["x_train"]), N_TRAIN, N_VAL, seed)
    tr = tr[subsample(len(tr), limit, seed)]
    return {
        "train": Split(arrays["x_train"][tr], arrays["y_train"][tr]),
        "val": Split(arrays["x_train"][va], arrays["y_train"][va]),
        "test": Split(arrays["x_test"], arrays["y_test"]),
    }


def make_dataset(split: Split, batch_size: int, *, training: bool, seed: int, scale=True,
                 augment: bool = False):
    """One tf.data chain: scale -> cache -> (shuffle each epoch) -> batch -> (augment) -> prefetch."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((split.x, split.y))
    if scale:
        ds = ds.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y),
                    num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.cache()
    if training:
        ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if training and augment:
        jitter = _augmenter(seed)
        ds = ds.map(lambda x, y: (jitter(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _augmenter(seed: int):
    """Keras's own random layers, run in tf.data after the cache, so every epoch sees
    new shifts of the same images. Small: a captcha's 4 characters must stay in order
    and inside the frame."""
    import keras

    return keras.Sequential([
        keras.layers.RandomTranslation(0.08, 0.05, fill_mode="nearest", seed=seed),
        keras.layers.RandomRotation(0.012, fill_mode="nearest", seed=seed + 1),  # ~4 degrees
        keras.layers.RandomZoom((-0.08, 0.08), fill_mode="nearest", seed=seed + 2),
    ], name="augment")
