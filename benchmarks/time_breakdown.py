"""Where a run's time goes: preprocessing, start-up, training, evaluation, the rest.

    python benchmarks/time_breakdown.py --data ../shared/data/thsr-real --epochs 25

Preprocessing is timed first, into an empty cache folder (what a user's first run
pays; later runs read the cache). Then the run trains through `train.run` into a
fresh store, which records each epoch's training time and each evaluation pass's time
(val, test); start-up is the time from the run's start to its first epoch (building
and compiling the model, loading the cached arrays), and "the rest" (saving, the test
confusion matrix, store writes) is what is left of the run's elapsed time.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/thsr-real")
    ap.add_argument("--model", default="resnet18_mod")
    ap.add_argument("--preprocess", default="original")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--precision", default="float32")
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--eval-test", choices=["end", "every"], default="end",
                    help="the test split after the last epoch only (the default), or after each")
    ap.add_argument("--backup-every", type=float, default=None,
                    help="seconds between resume backups on disk (0: every epoch, the old policy; default: "
                         "training.callbacks.BACKUP_EVERY)")
    args = ap.parse_args()
    os.environ["KERASHW_CACHE"] = tempfile.mkdtemp(prefix="kerashw-cache-")  # a first run's cold cache

    from kerashw.training import train
    from kerashw.captcha.cache import captcha_splits
    from kerashw.config import RunSpec, TrainOptions
    from kerashw.listener import Listener
    from kerashw.store import Store

    spec = RunSpec(task="captcha", model=args.model, preprocess=args.preprocess, data=args.data,
                   lr=1e-3, epochs=args.epochs, augment=not args.no_augment, precision=args.precision)
    t0 = time.perf_counter()
    captcha_splits(spec.data, spec.preprocess, spec.seed)
    preprocessing = time.perf_counter() - t0

    first_epoch = []
    marks = []  # (time, what): epoch starts and the end of each epoch's last stored phase

    class Clock(Listener):
        def epoch_started(self, epoch, epochs, steps):
            if not first_epoch:
                first_epoch.append(time.perf_counter())
            marks.append((time.perf_counter(), "start"))

        def phase_ended(self, record):
            marks.append((time.perf_counter(), "phase"))

        def run_ended(self, result):
            marks.append((time.perf_counter(), "end"))

    store = Store(tempfile.mkdtemp(prefix="kerashw-store-"))
    started = time.perf_counter()
    result = train.run(spec, store=store, listener=Clock(), options=TrainOptions(eval_test=args.eval_test,
                                                                                   backup_every=args.backup_every))
    startup = first_epoch[0] - started
    by_phase = {}
    for e in store.epochs(result.run_id):
        by_phase[e.phase] = by_phase.get(e.phase, 0.0) + (e.seconds or 0.0)
    evaluation = by_phase.get("val", 0.0) + by_phase.get("test", 0.0)
    rest = result.elapsed - startup - by_phase["train"] - evaluation
    # the rest, split: between an epoch's last stored phase and the next epoch's start (the CSV
    # row, best weights, backup, Keras's own epoch end), and after the last one (the model
    # saved, the test confusion matrix, the store's end)
    between = sum(t1 - t0 for (t0, a), (t1, b) in zip(marks, marks[1:]) if a == "phase" and b == "start")
    after = next((t1 - t0 for (t0, a), (t1, b) in zip(marks, marks[1:]) if a == "phase" and b == "end"), 0.0)
    test = result.final["test"]
    print(f"\n{args.model}, {args.preprocess}, {args.epochs} epochs, augment {not args.no_augment}, "
          f"{args.precision}, {args.data}, test evaluated {args.eval_test}, backup every "
          f"{'(default)' if args.backup_every is None else args.backup_every} s")
    print("| part | seconds | share of the run |")
    print("|---|---|---|")
    parts = [("preprocessing (cold cache, before the run)", preprocessing), ("start-up", startup),
             ("training", by_phase["train"]), ("evaluation: val", by_phase.get("val", 0.0)),
             ("evaluation: test", by_phase.get("test", 0.0)), ("the rest (save, confusion, store)", rest),
             ("  of it: between epochs (CSV, best weights, backup, Keras)", between),
             ("  of it: after the last epoch (model saved, confusion, store)", after)]
    for name, secs in parts:
        share = "" if name.startswith("preprocessing") else f"{100 * secs / result.elapsed:.1f} %"
        print(f"| {name} | {secs:.1f} | {share} |")
    print(f"| the run (elapsed) | {result.elapsed:.1f} | 100 % |")
    print(f"\nrun / training steps: {result.elapsed / by_phase['train']:.3f}")
    chars = " / ".join(f"{100 * test[f'char_{k}_acc']:.2f}" for k in range(1, 5))
    print(f"\ntest top-1 per character {chars}, whole {100 * test['whole']:.2f}")


if __name__ == "__main__":
    main()
