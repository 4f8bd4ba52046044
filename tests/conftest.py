import os
from pathlib import Path

import numpy as np
import pytest

import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Preprocessing and synthetic-captcha caches go to a per-session folder, never ~/.cache.
os.environ["KERASHW_CACHE"] = tempfile.mkdtemp(prefix="kerashw-test-cache-")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    """The real MNIST file: $KERASHW_MNIST or ../shared/data/mnist.npz (never a download)."""
    path = Path(os.environ.get("KERASHW_MNIST") or SHARED / "mnist.npz")
    if not path.exists():
        pytest.fail(f"MNIST not found at {path}; set KERASHW_MNIST to a local mnist.npz")
    return path


@pytest.fixture(scope="session")
def thsr_path() -> Path:
    path = SHARED / "thsr-sample"
    if not path.exists():
        pytest.fail(f"THSR sample not found at {path}")
    return path


@pytest.fixture
def store(tmp_path):
    from kerashw.store import Store

    return Store(tmp_path / "runs")


def tiny_mnist_arrays(n_train=90, n_test=20, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test).astype(np.uint8),
    }


@pytest.fixture(scope="session")
def synth_folder(tmp_path_factory) -> Path:
    """160 synthetic captchas as a labelled folder (fast stand-in for the 8,000 default)."""
    from kerashw.captcha import synth

    return synth.ensure_synthetic(tmp_path_factory.mktemp("synth") / "s160", n=160, seed=3)
