"""Run the captcha grid (preprocess x model) and print per-character test accuracy,
whole-captcha accuracy, wall time and seconds per epoch.

    python benchmarks/captcha_study.py --models resnet18_mod --epochs 25
    python benchmarks/captcha_study.py --epochs 2 --data ../shared/data/thsr-sample
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from rich.console import Console  # noqa: E402

from kerashw.cli.progress import run_with_progress  # noqa: E402
from kerashw.config import baseline  # noqa: E402
from kerashw.captcha.studies import CAPTCHA_MODELS, CAPTCHA_VARIANTS  # noqa: E402
from kerashw.store import Store  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--limit", type=int, default=None, help="training images (default: all)")
    ap.add_argument("--data", default=None, help="labelled folder (default: synthetic)")
    ap.add_argument("--models", nargs="+", default=list(CAPTCHA_MODELS))
    ap.add_argument("--variants", nargs="+", default=list(CAPTCHA_VARIANTS))
    ap.add_argument("--store", default="benchmarks/captcha-runs")
    ap.add_argument("--no-augment", action="store_true", help="train without augmentation")
    args = ap.parse_args()
    console = Console(width=160)
    store = Store(args.store)
    specs = [dataclasses.replace(baseline("captcha"), model=m, preprocess=v, epochs=args.epochs,
                                 limit=args.limit, data=args.data, augment=not args.no_augment)
             for v in args.variants for m in args.models]
    t0 = time.perf_counter()
    run_with_progress(console, specs, store, ["captcha-bench"])
    wall = time.perf_counter() - t0
    print("\n| model | preprocess | params | char 1 | char 2 | char 3 | char 4 | whole | val whole | elapsed s | s/epoch |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for s in specs:
        row = store.get(s.resolved().run_id)
        if row is None:
            continue
        test, val = row.final.get("test", {}), row.final.get("val", {})
        secs = [e["seconds"] for e in store.epochs(row.id) if e["phase"] == "train" and e["seconds"]]
        per_epoch = sum(secs[1:]) / max(1, len(secs) - 1) if len(secs) > 1 else (secs or [0])[0]
        chars = " | ".join(f"{100 * test.get(f'char_{k}_acc', 0):.2f}" for k in range(1, 5))
        print(f"| {s.model} | {s.preprocess} | {row.trainable_params:,} | {chars} | "
              f"{100 * test.get('whole', 0):.2f} | {100 * val.get('whole', 0):.2f} | "
              f"{row.elapsed:.1f} | {per_epoch:.1f} |")
    print(f"\nwall time of this invocation: {wall:.1f} s")


if __name__ == "__main__":
    main()
