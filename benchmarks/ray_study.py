"""A study on one machine three ways, wall time A B C A B C: one process, `--workers 2`, and a
local Ray (`--ray`, started by the command) running 2 one-CPU runs at a time. Then Ray's own
cost per run: `--ray --cpus-per-run 2` runs one at a time, and each run's "from submit to
stored" less its training time is what Ray adds (a worker process with TensorFlow, the data
through the object store, the run folder back).

    python benchmarks/ray_study.py --mnist mnist.npz --data THSR_DIR [--reps 2]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = {"one process": [], "--workers 2": ["--workers", "2"], "--ray (2 x 1 CPU)": ["--ray"]}


def run(args: list[str], store: Path) -> tuple[float, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "RAY_AUTH_MODE": "disabled", "COLUMNS": "250"}
    cmd = [sys.executable, "-m", "kerashw.cli", "train", *args, "--store", str(store)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return time.perf_counter() - t0, r.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist", required=True)
    ap.add_argument("--data", required=True, help="a captcha folder")
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    studies = {
        "lr (MNIST nn, 3 runs x 3 epochs)": ["--study", "lr", "--epochs", "3", "--mnist", args.mnist],
        "captcha-preprocess (3 runs x 2 epochs, 1,000 images)": ["--study", "captcha-preprocess", "--epochs", "2",
                                                                 "--limit", "1000", "--data", args.data],
    }
    root = Path(tempfile.mkdtemp(prefix="ray-study-"))
    for study in studies.values():  # untimed: the preprocessing cache is warm for every mode alike
        run(study + ["--epochs", "1", "--limit", "64"], root / "warm-up")
    print(f"# {os.cpu_count()} cores; stores under {root}")
    print("| study | mode | wall s (each repetition) | median |")
    print("|---|---|---|---|")
    for name, study in studies.items():
        walls = {m: [] for m in MODES}
        for rep in range(args.reps):
            for mode, extra in MODES.items():
                walls[mode].append(run(study + extra, root / f"{len(os.listdir(root))}")[0])
        for mode, w in walls.items():
            print(f"| {name} | {mode} | {' / '.join(f'{x:.1f}' for x in w)} | {statistics.median(w):.1f} |", flush=True)
    print()
    print("| study | run | submit to stored s | its own wall s | training s | Ray's own s |")
    print("|---|---|---|---|---|---|")
    for name, study in studies.items():
        _, out = run(study + ["--ray", "--cpus-per-run", "2"], root / f"seq-{len(os.listdir(root))}")
        before = 0.0  # one at a time: each run waits for the one before it, so its own wall time
        # is from that one's end to its own
        for rid, wall, train in re.findall(r"run (\w{12}): ([\d.]+) s from submit to\s+stored, ([\d.]+) s of it", out):
            own = float(wall) - before
            print(f"| {name} | {rid} | {wall} | {own:.1f} | {train} | {own - float(train):.1f} |", flush=True)
            before = float(wall)


if __name__ == "__main__":
    main()
