"""Evaluation in towers: one full pass of captcha-best's model (resnet18_mod, grey, two towers)
over 997 random captchas at the evaluation batch, with the batch split into towers (what a
towers run does) against one chain on the towers process's threads (what it did before),
A B A B in child processes.

    python benchmarks/eval_towers.py --reps 3
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def child(split: bool) -> list[float]:
    from throughput import ROWS, _images  # NumPy only: TensorFlow is not started yet

    from kerashw.training import distribute

    row = ROWS["resnet18_mod-1ch-aug-t2"]  # captcha-best's own step: grey, augmented, two towers
    distribute.configure_threads(None, towers=row.towers)  # as `kerashw train` does, before TF's first op

    from kerashw.captcha.task import from_splits
    from kerashw.config import RunSpec
    from kerashw.pipeline import Split
    from kerashw.training import train

    make = lambda n, seed: Split(*_images(row, n, seed))
    spec = RunSpec(task="captcha", model=row.model, batch_size=row.batch, epochs=1, lr=1e-3, augment=row.augment,
                   towers=row.towers, preprocess="original")
    task = from_splits(spec, {"train": make(640, 0), "val": make(997, 1), "test": make(64, 2)})
    _, fit_model = train.build(spec, task)
    fit_model.fit(task.train(), epochs=1, steps_per_epoch=task.steps, verbose=0)
    if not split:
        fit_model.towers = 1  # inference as one chain (training is done)
    ds, _ = task.eval_sets["val"]
    fit_model.evaluate(ds, verbose=0)  # traces
    times = []
    for _ in range(8):
        t = time.perf_counter()
        fit_model.evaluate(ds, verbose=0)
        times.append(time.perf_counter() - t)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--child", choices=["towers", "one"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child == "towers")))
        return
    res = {"one": [], "towers": []}
    for _ in range(args.reps):
        for side in res:
            out = subprocess.run([sys.executable, __file__, "--child", side], capture_output=True, text=True, check=True)
            res[side].append(min(json.loads(out.stdout.strip().splitlines()[-1])))
            print(f"  {side}: {res[side][-1]:.3f} s", file=sys.stderr)
    one, split = min(res["one"]), min(res["towers"])
    print(f"val pass (997 captchas), best of each: one chain {one:.3f} s, towers {split:.3f} s, towers / one {split / one:.2f}")


if __name__ == "__main__":
    main()
