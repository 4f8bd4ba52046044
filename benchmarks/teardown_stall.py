"""The wait after a run's last epoch: how long a real run takes from its test phase to its end,
with the training stream's tf.data autotuning as kerashw sets it (off) or forced on.

    python benchmarks/teardown_stall.py --autotune on|off [--epochs 15] [--data ../shared/data/thsr-real] [--dump]

With --dump, `py-spy dump --native` of this process 5 s after the test phase (pip install
py-spy) goes to stderr: during a stall it shows the main thread in the training iterator's
destructor, waiting for tf.data's autotuning thread.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--autotune", choices=["on", "off"], required=True)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--data", default="../shared/data/thsr-real")
    ap.add_argument("--dump", action="store_true")
    args = ap.parse_args()

    import tensorflow as tf

    from kerashw import pipeline

    made = pipeline.make_train_dataset

    def stream(*a, **k):
        options = tf.data.Options()
        options.autotune.enabled = args.autotune == "on"
        return made(*a, **k).with_options(options)

    pipeline.make_train_dataset = stream  # the captcha task reads it from the module at run time

    from kerashw.config import RunSpec, TrainOptions
    from kerashw.listener import Listener
    from kerashw.store import Store
    from kerashw.training import train

    spec = RunSpec(task="captcha", model="resnet18_mod", preprocess="original", data=args.data,
                   lr=1e-3, epochs=args.epochs, augment=True)
    marks = {}

    def dump():
        time.sleep(5)
        if "end" not in marks:
            out = subprocess.run(["py-spy", "dump", "--native", "--pid", str(os.getpid())], capture_output=True, text=True)
            print(out.stdout or out.stderr, file=sys.stderr)

    class Clock(Listener):
        def phase_ended(self, record):
            if record.phase == "test":
                marks["test"] = time.perf_counter()
                if args.dump:
                    threading.Thread(target=dump, daemon=True).start()

        def run_ended(self, result):
            marks["end"] = time.perf_counter()

    result = train.run(spec, store=Store(tempfile.mkdtemp(prefix="kerashw-store-")), listener=Clock(),
                       options=TrainOptions())
    print(f"autotune {args.autotune}: {marks['end'] - marks['test']:.1f} s from the test phase to the run's end; "
          f"run {result.elapsed:.1f} s")


if __name__ == "__main__":
    main()
