"""The few-labels curve: captcha-finetune (captcha-best pretrained on synthetic captchas, then
fine-tuned) with 0, 100, 300, 1,000 and all real training labels, scored on a hand-labelled test
folder raw and audited (../shared/tools/audited_score.py). Trains through the real CLI, so the
runs land in STORE and a second call reuses them.

    python benchmarks/fewlabels.py STORE DATA [AUDIT.csv] [--limits 0,100,300,1000,all] [--seed 42]
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _score_tool(audit: str):
    tool = Path(audit).resolve().parents[2] / "tools" / "audited_score.py"
    spec = importlib.util.spec_from_file_location("audited_score", tool)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _predict_csv(store, run_id: str, data: str, out: Path) -> tuple[float, float]:
    """The run's final model on DATA/test: writes filename,label,pred; (per char %, whole %)."""
    import numpy as np

    from kerashw import tasks
    from kerashw.captcha.folders import read_labelled_folder
    from kerashw.models import load_model
    from kerashw.config import RunSpec, TrainOptions
    from kerashw.identity import identify

    row = store.get(run_id)
    task = tasks.get(row.task)
    # the test split of DATA through the run's preprocessing (the synthetic pretraining run too)
    spec = identify(RunSpec.from_dict({**row.spec, "data": data, "data_id": None, "limit": None}), TrainOptions())
    split = task.split(spec, TrainOptions(), "test")
    items = read_labelled_folder(Path(data) / "test")
    model = load_model(store.files(run_id).model)
    outs = model.predict(split.x.astype("float32") / 255.0, batch_size=128, verbose=0)
    guess = np.stack([np.argmax(outs[h], axis=-1) for h in task.outputs], axis=1)
    truth = np.stack([split.y[h] for h in task.outputs], axis=1)
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "label", "pred"])
        for it, g in zip(items, guess):
            w.writerow([it.path.name, it.label, "".join(task.classes[c] for c in g)])
    return 100 * float((guess == truth).mean()), 100 * float((guess == truth).all(axis=1).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("data")
    ap.add_argument("audit", nargs="?")
    ap.add_argument("--limits", default="0,100,300,1000,all")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--study", default="captcha-finetune")
    ap.add_argument("--plot", help="Also draw the curve (audited per char and whole) into this PNG.")
    args = ap.parse_args()
    from kerashw.store import Store
    from kerashw.studies import get_study
    from kerashw.config import Overrides

    store = Store(args.store)
    rows, curve = [], []
    for limit in args.limits.split(","):
        n = None if limit == "all" else int(limit)
        cmd = [sys.executable, "-m", "kerashw.cli", "train", "--study", args.study, "--store", args.store,
               "--seed", str(args.seed)]
        if n == 0:  # zero real labels: the pretraining run alone
            cmd[cmd.index(args.study)] = "captcha-best"
        else:
            cmd += ["--data", args.data] + (["--limit", str(n)] if n else [])
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        pre, tuned = get_study(args.study).specs(Overrides(data=args.data, limit=n or None, seed=args.seed))
        from kerashw.identity import identify

        run = pre if n == 0 else identify(tuned)
        row = store.get(run.run_id)
        pred = Path(tempfile.mkdtemp()) / "pred.csv"
        char, whole = _predict_csv(store, run.run_id, args.data, pred)
        audited, s = "", None
        if args.audit:
            s = _score_tool(args.audit).score(str(pred), args.audit)
            audited = f"{sum(s['audited'][1]) / 4:.2f} | {s['audited'][0]:.2f}"
        rows.append((limit, run.run_id, char, whole, audited, row.elapsed or 0))
        # "all": the images the run trained on (train + extra), from its stored sample count (one pass)
        labels = int(row.final["train"]["samples"]) if n is None else n
        curve.append((labels, s if args.audit else None, char, whole))
        print(f"labels {limit}: run {run.run_id} per char {char:.2f} whole {whole:.2f} audited {audited} "
              f"({row.elapsed:.0f} s)", flush=True)
    print("| real labels | run | per char % raw | whole % raw | per char % audited | whole % audited | train s |")
    print("|---|---|---|---|---|---|---|")
    for limit, rid, char, whole, audited, sec in rows:
        print(f"| {limit} | {rid} | {char:.2f} | {whole:.2f} | {audited or ' | '} | {sec:.0f} |")
    if args.plot:
        _plot(curve, args.plot)


def _plot(curve, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [max(n, 30) for n, *_ in curve]  # 0 labels drawn at the left edge of a log axis
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, pick in (("per character", lambda s, c, w: sum(s["audited"][1]) / 4 if s else c),
                       ("whole captcha", lambda s, c, w: s["audited"][0] if s else w)):
        ax.plot(xs, [pick(s, c, w) for _, s, c, w in curve], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xticks(xs, ["0" if n == 0 else str(n) for n, *_ in curve])
    ax.set_xlabel("real training labels (0: synthetic pretraining only)")
    ax.set_ylabel("test accuracy %, audited")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
