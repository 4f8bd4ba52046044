"""The real `kerashw-tui` console script in a real terminal (tmux), as a user starts it.

Pilot tests drive the app in-process; only a real terminal shows what reaches the app as
key presses from outside it (a child process's terminal query answered by the terminal)."""
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _tmux(*args):
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True, timeout=30).stdout


def _statuses(db: Path) -> list[str]:
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        try:
            return [s for (s,) in con.execute("SELECT status FROM runs")]
        except sqlite3.OperationalError:
            return []


def test_kerashw_tui_trains_a_study_that_preprocesses_in_one_start(tmp_path, synth_folder):
    """captcha-preprocess on a fresh cache: every variant is preprocessed in a spawn pool.
    Its children once re-imported the console script, answered terminal queries arrived as
    keys, and each run was cancelled (`c`) and the tabs jumped (`1`, `2`)."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (.ci/run installs it)")
    script = Path(sys.executable).with_name("kerashw-tui")
    if not script.exists():
        pytest.skip(f"the console script is not installed beside {sys.executable} (pip install -e .)")
    socket = str(tmp_path / "tmux.sock")  # a tmux server of this test's own
    session = ["-S", socket]
    store, cache = tmp_path / "st", tmp_path / "cache"
    cmd = (f"cd {tmp_path} && KERASHW_CACHE={cache} TF_CPP_MIN_LOG_LEVEL=3 {script} --store {store}; "
           "sleep 600")
    _tmux(*session, "new-session", "-d", "-s", "t", "-x", "120", "-y", "40", cmd)
    _tmux(*session, "resize-window", "-t", "t", "-x", "120", "-y", "40")  # some tmux builds start at 80x24
    try:
        screen = ""
        for _ in range(150):  # the app is up when the studies table and its first notice are drawn
            time.sleep(0.2)
            screen = _tmux(*session, "capture-pane", "-p", "-t", "t")
            if "captcha-preprocess" in screen and "New, empty results store" in screen:
                break
        assert "captcha-preprocess" in screen, screen
        assert "New, empty results store" in screen, screen  # a mistyped --store would show here
        keys = ["Down"] * 8 + ["Tab", "1", "Tab", "64", "Tab", "Tab", str(synth_folder), "Enter"]
        for key in keys:  # the study, then Epochs 1, Limit 64, Data; Enter starts
            _tmux(*session, "send-keys", "-t", "t", key)
            time.sleep(0.3)
        deadline = time.time() + 400
        while time.time() < deadline:
            statuses = _statuses(store / "runs.db")
            if "interrupted" in statuses or statuses.count("finished") == 3:
                break
            time.sleep(1)
        screen = _tmux(*session, "capture-pane", "-p", "-t", "t")
        assert sorted(_statuses(store / "runs.db")) == ["finished"] * 3, screen
        for _ in range(100):  # the store is written before the app draws the study's end
            if "study captcha-preprocess done: 3 finished" in screen:
                break
            time.sleep(0.2)
            screen = _tmux(*session, "capture-pane", "-p", "-t", "t")
        # still on the Train tab, which says how the study ended
        assert "study captcha-preprocess done: 3 finished" in screen, screen
    finally:
        subprocess.run(["tmux", *session, "kill-server"], capture_output=True, timeout=30)
