"""Where MNIST comes from: an mnist.npz or IDX folder, $KERASHW_MNIST, Keras's cache,
or a download as the last resort; every source validated. NumPy only."""
from __future__ import annotations

import functools
import gzip
import hashlib
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from kerashw.config import DataError

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

def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:  # a truncated .gz ends in EOFError
        raise DataError(f"{path}: cannot read IDX file ({type(exc).__name__}: {exc})") from exc
    if len(raw) < 8:
        raise DataError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()}, want 0000080x)")
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: the header names {ndim} dimensions but the file ends after {len(raw)} bytes")
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
        if len(x) == 0:
            raise DataError(f"{source}: x_{split} holds no images; want at least one")
        whole = y.dtype.kind in "iu" or (y.dtype.kind == "f" and np.isfinite(y) & (y == np.round(y)))
        if not np.all(whole):  # strings, objects, 3.5 or NaN would be cut to some digit silently
            bad = (y[~whole] if y.dtype.kind == "f" else y)[:1].tolist()[0]
            raise DataError(f"{source}: y_{split} has dtype {y.dtype} (for example {bad!r}); "
                            "want integer labels 0..9")
        if y.min() < 0 or y.max() > 9:
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


def _version(path) -> tuple:
    """Which file, in which version: the lookup's answer with its size and mtime."""
    found = find_mnist(path)
    st = found.stat() if found is not None and found.exists() else None
    return (str(found) if found is not None else None, st.st_size if st else 0, st.st_mtime_ns if st else 0)


@functools.lru_cache(maxsize=4)
def _load_version(path: str | None, size: int, mtime_ns: int) -> dict:
    return load_mnist(path)


def load_mnist_once(path: str | os.PathLike | None = None) -> dict:
    """load_mnist, once per process per file version: a study's runs share one load."""
    return _load_version(*_version(path))


@functools.lru_cache(maxsize=4)
def _fingerprint_version(path: str | None, size: int, mtime_ns: int) -> str:
    arrays = _load_version(path, size, mtime_ns)
    h = hashlib.sha256()
    for key in MNIST_KEYS:
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return "mnist-" + h.hexdigest()[:16]


def fingerprint(spec, options, *, fetch: bool = True) -> str:
    """The content of the MNIST arrays a run would train on (so they are loaded and checked).
    Without `fetch`, a machine with no local copy gets a DataError instead of a download."""
    version = _version(options.mnist)
    if version[0] is None and not fetch:
        raise DataError(f"no local MNIST file. {HOW_TO_PROVIDE}")
    return _fingerprint_version(*version)
