import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Preprocessing and synthetic-captcha caches go under this session's tmp_path, never
    ~/.cache or a folder of their own in /tmp (which would outlive the suite); so do the
    temporary files of this process and of every process a test starts (TensorFlow's
    autograph writes one per traced function and removes it at exit, which a process killed
    by a test never reaches). Set before any test runs; subprocesses inherit it."""
    import tempfile

    os.environ["KERASHW_CACHE"] = str(tmp_path_factory.mktemp("kerashw-cache"))
    tmp = str(tmp_path_factory.mktemp("tmp"))
    os.environ["TMPDIR"] = tempfile.tempdir = tmp


def pytest_sessionfinish(session):
    """No child a test started outlives the session: multiprocessing joins every live
    non-daemon child at exit, so one stuck child would hang this worker, and the whole
    suite with it, after the last test passed."""
    import multiprocessing

    for child in multiprocessing.active_children():
        child.kill()


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    """Real MNIST through kerashw's own lookup ($KERASHW_MNIST, Keras's cache), then the
    development copy in ../shared, then Keras's download; skipped, with the reason, when
    none of them has it (an offline machine without a local copy)."""
    from kerashw.mnist import source

    found = source.find_mnist(None)
    for path in (found, SHARED / "mnist.npz"):
        if path is not None and path.exists():
            return path
    try:
        import keras

        keras.datasets.mnist.load_data()  # into Keras's cache, where find_mnist looks
    except Exception as exc:
        pytest.skip(f"no MNIST: $KERASHW_MNIST unset, none in Keras's cache or {SHARED}, and the "
                    f"download failed ({type(exc).__name__}); set KERASHW_MNIST=/path/to/mnist.npz")
    return source.find_mnist(None)


@pytest.fixture(scope="session")
def thsr_path() -> Path:
    """The 300 real THSR captchas of the development data (not in a user's clone)."""
    path = SHARED / "thsr-sample"
    if not path.exists():
        pytest.skip(f"the real THSR sample is not here ({path}); the synthetic-captcha tests still run")
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


@pytest.fixture(scope="session")
def captcha_run(tmp_path_factory, synth_folder):
    """One real captcha run, trained once through the CLI (resnet18_mod, denoise, 1 epoch on
    64 synthetic images) and shared: (store, run row, the command's output). Training a
    captcha model costs ~15 s here, so the tests that read one share it."""
    from click.testing import CliRunner

    from kerashw.cli import main
    from kerashw.store import Store

    import shutil

    root = tmp_path_factory.mktemp("captcha-run")
    home = root / "st"
    folder = shutil.copytree(synth_folder, root / "caps", copy_function=shutil.copyfile)  # its own copy
    r = CliRunner().invoke(main, ["train", "--model", "resnet18_mod", "--preprocess", "denoise",
                                  "--data", str(folder), "--epochs", "1", "--limit", "64",
                                  "--store", str(home)])
    assert r.exit_code == 0, r.output
    store = Store(home)
    (row,) = store.runs()
    return store, row, r.output


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory) -> Path:
    """An MNIST-format file of random digits (600 train, 100 test): for tests of training's
    machinery (claims, interrupts, two writers), where the real digits only cost time."""
    path = tmp_path_factory.mktemp("tiny-mnist") / "mnist.npz"
    np.savez(path, **tiny_mnist_arrays(n_train=600, n_test=100, seed=5))
    return path



@pytest.fixture(scope="session")
def lr_study_store(tmp_path_factory, tiny_mnist):
    """The `lr` study (3 runs, 1 epoch, 128 images) trained by `kerashw train --workers 2`
    in two processes: (store folder, the command's result). Shared by the workers test and
    the report test, since each TF process start costs seconds here."""
    import os
    import subprocess
    import sys

    st = tmp_path_factory.mktemp("lr-study") / "st"
    cmd = [sys.executable, "-m", "kerashw.cli", "train", "--exp", "lr", "--epochs", "1", "--limit", "128",
           "--mnist", str(tiny_mnist), "--store", str(st), "--workers", "2"]
    r = subprocess.run(cmd, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, capture_output=True, text=True,
                       timeout=300)
    return st, r


# Tests that share an expensive session fixture run in the same xdist worker (pyproject:
# --dist loadgroup), so it is built once, not once per worker: each costs 15-20 s here.
# Both fixtures train for real, so their tests are slow tests too.
SHARED_FIXTURES = ("captcha_run", "lr_study_store", "original_run")


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true",
                     help="also run the slow tests (real trainings over a few seconds, TF subprocesses, "
                          "the real terminal); .ci/run passes it")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        for name in SHARED_FIXTURES:
            if name in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(name))
                item.add_marker(pytest.mark.slow)
                break
    if config.getoption("--run-slow") or config.getoption("-m"):
        return
    # not skipped: deselected, and counted in pytest's summary line ("N deselected")
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


def pytest_terminal_summary(terminalreporter, config):
    if not config.getoption("--run-slow") and not config.getoption("-m"):
        terminalreporter.write_line("slow tests (marked slow: real trainings, TF subprocesses, the real terminal) "
                                    "were left out; `python -m pytest --run-slow` runs them, as .ci/run does")
