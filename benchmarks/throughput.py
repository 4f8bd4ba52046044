"""Training throughput: kerashw's own training step against the same architecture in a
plain PyTorch loop, alternating (A B A B) in one invocation, with the ratio.

    python benchmarks/throughput.py                    # every row, 2 repetitions
    python benchmarks/throughput.py --rows resnet18_mod-aug --reps 3

The kerashw side is what `kerashw train` runs: the Task's tf.data stream (shuffle,
scale, augmentation when the row says so) into the model `train.build` compiles,
timed over epochs 2-4 (the first pays for tracing), their median. The data are random images
in memory of the row's shape, so no data folder is needed; no evaluation runs. The
PyTorch side (benchmarks/torch_models.py; `pip install torch`, a benchmark-only extra)
trains on tensors already in memory, with `torch.autocast(bfloat16)` for the mixed
rows. TensorFlow and torch crash in one process, so each measurement is a child
process; sides alternate so that a busy machine slows both alike.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


TIMED = 3  # timed epochs after the first; a side's figure is their median


@dataclass(frozen=True)
class Row:
    name: str
    model: str
    batch: int
    steps: int  # steps per epoch
    channels: int = 3
    augment: bool = False
    precision: str = "float32"
    spe: int = 0  # steps per execution; 0: what train.build chooses (7 at 63 steps an epoch)
    bn: str = "fused"  # how BatchNorm trains on the kerashw side (TrainOptions.bn)
    towers: int = 1  # the kerashw step split into towers side by side (RunSpec.towers, kerashw.training.towers)

    @property
    def task(self):
        return "mnist" if self.model == "nn" else "captcha"


ROWS = {r.name: r for r in [
    Row("nn-64", "nn", 64, 200),
    Row("nn-4", "nn", 4, 500),
    Row("resnet18_mod", "resnet18_mod", 64, 63),
    Row("resnet18_mod-1ch", "resnet18_mod", 64, 63, channels=1),
    Row("resnet18_mod-aug", "resnet18_mod", 64, 63, augment=True),
    Row("resnet18_mod-mixed", "resnet18_mod", 64, 63, precision="mixed"),
    Row("resnet18_mod-1ch-mixed", "resnet18_mod", 64, 63, channels=1, precision="mixed"),
    Row("resnet18_mod-kerasbn", "resnet18_mod", 64, 63, bn="keras"),  # the step before the fused BatchNorm
    Row("resnet18_mod-spe1", "resnet18_mod", 64, 63, spe=1),  # one step a call
    Row("resnet18_mod-spe21", "resnet18_mod", 64, 63, spe=21),
    Row("resnet18_tiny_hr", "resnet18_tiny_hr", 64, 63),
    Row("resnet18_tiny_hr-mixed", "resnet18_tiny_hr", 64, 63, precision="mixed"),
    Row("resnet18_mod_hr", "resnet18_mod_hr", 64, 63),
    Row("resnet18_mod_hr-mixed", "resnet18_mod_hr", 64, 63, precision="mixed"),
    # two towers, one core each (captcha-best's step)
    Row("resnet18_mod-t2", "resnet18_mod", 64, 63, towers=2),
    Row("resnet18_mod-1ch-t2", "resnet18_mod", 64, 63, channels=1, towers=2),
    Row("resnet18_mod-mixed-t2", "resnet18_mod", 64, 63, precision="mixed", towers=2),
    Row("resnet18_mod-1ch-mixed-t2", "resnet18_mod", 64, 63, channels=1, precision="mixed", towers=2),
    Row("resnet18_tiny_hr-t2", "resnet18_tiny_hr", 64, 63, towers=2),
    Row("resnet18_mod_hr-t2", "resnet18_mod_hr", 64, 63, towers=2),
    Row("resnet18_mod_hr-mixed-t2", "resnet18_mod_hr", 64, 63, precision="mixed", towers=2),
    Row("resnet18_mod-t2-spe21", "resnet18_mod", 64, 63, towers=2, spe=21),  # 3 progress updates an epoch
    # captcha-best's own step (grey, augmented) at its batch of 64, and at 128: towers of 64,
    # the batch BatchNorm normalised over before towers
    Row("resnet18_mod-1ch-aug-t2", "resnet18_mod", 64, 63, channels=1, augment=True, towers=2),
    Row("resnet18_mod-1ch-aug-b128-t2", "resnet18_mod", 128, 32, channels=1, augment=True, towers=2),
    Row("baseline", "baseline", 64, 10),
    Row("resnet18", "resnet18", 64, 10),
    Row("resnet18-mixed", "resnet18", 64, 10, precision="mixed"),
]}


def _images(row: Row, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    if row.task == "mnist":
        return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)
    x = rng.integers(0, 256, (n, 50, 130, row.channels), dtype=np.uint8)
    return x, {f"char_{k}": rng.integers(0, 19, n) for k in range(1, 5)}


def keras_side(row: Row) -> float:
    """Seconds per training step of kerashw's own step (epoch 2 of 2)."""
    from kerashw.training import distribute

    distribute.configure_threads(None, towers=row.towers)  # as `kerashw train` does, before TF's first op
    import keras

    from kerashw.training import train
    from kerashw.config import RunSpec
    from kerashw.pipeline import Split

    n = row.batch * row.steps
    x, y = _images(row, n)
    small = _images(row, row.batch, seed=1)
    splits = {"train": Split(x, y), "val": Split(*small), "test": Split(*small)}
    spec = RunSpec(task=row.task, model=row.model, batch_size=row.batch, epochs=2, lr=1e-3,
                   augment=row.augment, precision=row.precision, towers=row.towers,
                   preprocess=None if row.task == "mnist" else "original")
    if row.task == "mnist":
        from kerashw.mnist.task import from_splits
    else:
        from kerashw.captcha.task import from_splits
    task = from_splits(spec, splits)
    if row.spe:
        train.steps_per_execution = lambda steps: row.spe
    _, fit_model = train.build(spec, task, bn=row.bn)
    times = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            times.append(time.perf_counter())

        def on_epoch_end(self, epoch, logs=None):
            times[-1] = time.perf_counter() - times[-1]

    fit_model.fit(task.train(), epochs=1 + TIMED, steps_per_epoch=task.steps, callbacks=[Clock()], verbose=0)
    return float(np.median(times[1:])) / task.steps


def torch_side(row: Row) -> float:
    import torch

    import torch_models

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    n = row.batch * row.steps
    x, y = _images(row, n)
    if row.task == "mnist":
        xt, yt = torch.from_numpy(x).float().div(255.0), torch.from_numpy(y).long()[:, None]
        model = torch_models.mnist_nn()
    else:
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).float().div(255.0)
        yt = torch.from_numpy(np.stack([y[f"char_{k}"] for k in range(1, 5)], 1)).long()
        model = torch_models.MODELS[row.model](in_ch=row.channels)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    mixed = row.precision == "mixed"
    model.train()

    def epoch():
        t0 = time.perf_counter()
        for idx in torch.randperm(n).split(row.batch):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed):
                out = model(xt[idx])
                out = out if isinstance(out, list) else [out]
                loss = sum(loss_fn(o.float(), yt[idx, k]) for k, o in enumerate(out))
            opt.zero_grad()
            loss.backward()
            opt.step()
        return time.perf_counter() - t0

    epoch()  # warm-up, as the Keras side's first epoch
    return float(np.median([epoch() for _ in range(TIMED)])) / row.steps


def measure(row: Row, side: str) -> float | None:
    """One measurement in a child process; None if that side cannot run here."""
    out = tempfile.mktemp(suffix=".json")
    cmd = [sys.executable, __file__, "--child", side, "--rows", row.name, "--json", out]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        print(f"  {side} {row.name}: failed ({last})", file=sys.stderr)
        return None
    with open(out) as f:
        return json.load(f)["seconds_per_step"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    ap.add_argument("--reps", type=int, default=2, help="alternating repetitions per side")
    ap.add_argument("--no-torch", action="store_true", help="kerashw only")
    ap.add_argument("--child", choices=["keras", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--json", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        row = ROWS[args.rows[0]]
        seconds = (keras_side if args.child == "keras" else torch_side)(row)
        with open(args.json, "w") as f:
            json.dump({"seconds_per_step": seconds}, f)
        return

    try:
        import importlib.util
        has_torch = not args.no_torch and importlib.util.find_spec("torch") is not None
    except ImportError:
        has_torch = False
    results = {name: ([], []) for name in args.rows}
    for _ in range(args.reps):  # A B A B: every row and side once, then again
        for name in args.rows:
            k, t = results[name]
            k.append(measure(ROWS[name], "keras"))
            if has_torch:
                t.append(measure(ROWS[name], "torch"))
            print(f"  {name}: kerashw {k}  torch {t}", file=sys.stderr)

    fmt = lambda xs: " / ".join("-" if v is None else f"{1000 * v:.2f}" for v in xs) or "-"
    print("\n| row | model | batch | channels | augment | precision | towers | kerashw ms/step | kerashw img/s "
          "| PyTorch ms/step | PyTorch img/s | kerashw / PyTorch time |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    best = lambda xs: min((v for v in xs if v is not None), default=None)
    for name, (k, t) in results.items():
        row = ROWS[name]
        bk, bt = best(k), best(t)
        ips = lambda v: f"{row.batch / v:,.0f}" if v else "-"
        ratio = f"{bk / bt:.2f}" if bk and bt else "-"
        channels = row.channels if row.task == "captcha" else "-"
        print(f"| {name} | {row.model} | {row.batch} | {channels} | {'yes' if row.augment else 'no'} | "
              f"{row.precision} | {row.towers} | {fmt(k)} | {ips(bk)} | {fmt(t)} | {ips(bt)} | {ratio} |")
    # the two questions of docs/results/performance.md, as ratios within this run
    plain, aug = best(results.get("resnet18_mod", ([], []))[0]), best(results.get("resnet18_mod-aug", ([], []))[0])
    if plain and aug:
        print(f"\naugmented / plain resnet18_mod step: {aug / plain:.2f}x")
    for model in ("resnet18_mod", "resnet18"):
        fp32, mixed = (best(results.get(n, ([], []))[0]) for n in (model, f"{model}-mixed"))
        if fp32 and mixed:
            print(f"{model} float32 / mixed step: {fp32 / mixed:.2f}x (above 1: mixed is faster)")
    for name in results:
        if ROWS[name].spe and plain:
            print(f"resnet18_mod step, {ROWS[name].spe} steps per execution / the default's: "
                  f"{best(results[name][0]) / plain:.2f}x (below 1: faster than the default)")
        if ROWS[name].bn != "fused" and plain:
            print(f"resnet18_mod step, {ROWS[name].bn} / fused BatchNorm: {best(results[name][0]) / plain:.2f}x")
    print("img/s from the faster repetition; the ratio compares the faster of each side.")


if __name__ == "__main__":
    main()
