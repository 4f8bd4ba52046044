"""Study wall time with `--workers 1` (one process, every core) against `--workers N`
(N processes, cores/N threads each), alternating (A B A B), each into a fresh store.

    python benchmarks/workers.py --exp lr --epochs 2
    python benchmarks/workers.py --exp batch --epochs 1 --workers 2 --reps 3

Small models use several threads poorly, so on few cores N one-thread processes may
finish a study sooner than one process with every thread; this measures it.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def study_seconds(args, workers: int) -> float:
    store = tempfile.mkdtemp(prefix="kerashw-workers-bench-")
    cmd = [sys.executable, "-m", "kerashw.cli", "train", "--exp", args.exp, "--epochs", str(args.epochs),
           "--store", store, "--workers", str(workers)]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    if args.mnist:
        cmd += ["--mnist", args.mnist]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exp", default="lr")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--mnist", default=None, help="MNIST file (default: kerashw's lookup)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="N to compare against 1")
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    times = {1: [], args.workers: []}
    for _ in range(args.reps):
        for w in times:  # A B A B
            times[w].append(study_seconds(args, w))
            print(f"  --workers {w}: {times[w][-1]:.1f} s", file=sys.stderr)
    cores = os.cpu_count() or 1
    print(f"\nkerashw train --exp {args.exp} --epochs {args.epochs}"
          f"{f' --limit {args.limit}' if args.limit else ''}, {cores} cores, wall seconds per study")
    print("| workers x threads | " + " | ".join(f"rep {i + 1}" for i in range(args.reps)) + " | best |")
    print("|---|" + "---|" * (args.reps + 1))
    for w, ts in times.items():
        print(f"| {w} x {max(1, cores // w)} | " + " | ".join(f"{t:.1f}" for t in ts) + f" | {min(ts):.1f} |")
    print(f"\n--workers {args.workers} / --workers 1 wall time: {min(times[args.workers]) / min(times[1]):.2f}")


if __name__ == "__main__":
    main()
