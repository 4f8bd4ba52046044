"""captcha-best and captcha-tiny before and after the shorter schedule: wall time and test
accuracy (raw and audited, ../shared/tools/audited_score.py) over seeds, A B A B.

"before" is the recipe as it was: 60 epochs, the test split evaluated after every epoch.
"after" is the study as it is now (its epochs, the test split once at the end). Each run
trains through the real CLI into a fresh store of its own (so nothing is reused), one at a
time, alternating before/after, so a slow patch of the machine hits both sides alike.

    python benchmarks/half_time.py DATA AUDIT.csv OUT_DIR [--seeds 42,7] [--studies captcha-tiny,captcha-best]
    # another "before": the study as it is but with Keras's own BatchNorm; or one side only
    python benchmarks/half_time.py DATA AUDIT.csv OUT_DIR --before "--bn keras" [--sides after]
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import fewlabels  # noqa: E402  (its prediction CSV and the audit tool's loader)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
BEFORE = ["--epochs", "60", "--eval-test", "every"]


def train(study: str, data: str, store: Path, seed: int, extra: list[str]) -> float:
    cmd = [sys.executable, "-m", "kerashw.cli", "train", "--study", study, "--data", data, "--seed", str(seed),
           "--store", str(store), *extra]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("audit")
    ap.add_argument("out")
    ap.add_argument("--seeds", default="42,7")
    ap.add_argument("--studies", default="captcha-tiny,captcha-best")
    ap.add_argument("--before", default=" ".join(BEFORE), help="the before side's train options")
    ap.add_argument("--sides", default="before,after", help="before,after (A B), or one of them")
    args = ap.parse_args()
    from kerashw.store import Store

    tool = fewlabels._score_tool(args.audit)
    out = Path(args.out)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print("| study | seed | recipe | epochs | run | wall s | per char raw | whole raw | per char audited | whole audited |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for seed in (int(s) for s in args.seeds.split(",")):
        for study in args.studies.split(","):
            for name, extra in (("before", args.before.split()), ("after", [])):
                if name not in args.sides.split(","):
                    continue
                store_dir = out / f"{study}-{seed}-{name}"
                wall = train(study, args.data, store_dir, seed, extra)
                store = Store(store_dir)
                (row,) = store.runs()
                csv_path = store_dir / "test-predictions.csv"
                char, whole = fewlabels._predict_csv(store, row.id, args.data, csv_path)
                s = tool.score(csv_path, args.audit)
                recipe = name if name == "after" or args.before == " ".join(BEFORE) else f"before ({args.before})"
                print(f"| {study} | {seed} | {recipe} | {row.spec['epochs']} | {row.id} | {wall:.0f} | {char:.2f} | "
                      f"{whole:.2f} | {sum(s['audited'][1]) / 4:.2f} | {s['audited'][0]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
