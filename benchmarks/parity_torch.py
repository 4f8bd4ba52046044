"""Keras vs PyTorch on the same captcha model, images and settings, in one run.

    python benchmarks/parity_torch.py --data ../shared/data/thsr-real            # report's settings
    python benchmarks/parity_torch.py --data ../shared/data/thsr-real --init keras   # Keras's own init

Both sides train resnet18_mod (95,164 parameters) on the same preprocessed `original`
arrays (kerashw's cache), Adam 1e-3, batch 64, no augmentation, 25 epochs, and are
scored on the same test split. The Keras side is `kerashw.training.train.run` itself; the
PyTorch side is a plain loop over a torchvision-style copy of the architecture with
PyTorch's defaults. torch is a benchmark-only dependency (`pip install torch`).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def train_torch(splits, epochs, batch, lr, seed):
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(os.cpu_count() or 1)
    to_x = lambda s: torch.from_numpy(s.x).permute(0, 3, 1, 2).float().div(255.0)
    to_y = lambda s: torch.from_numpy(np.stack([s.y[f"char_{i}"] for i in range(1, 5)], 1)).long()
    xtr, ytr = to_x(splits["train"]), to_y(splits["train"])
    xte, yte = to_x(splits["test"]), to_y(splits["test"])
    from torch_models import resnet18_mod

    model = resnet18_mod(in_ch=xtr.shape[1])
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(xtr), generator=gen).split(batch):
            out = model(xtr[idx])
            loss = sum(loss_fn(o, ytr[idx, k]) for k, o in enumerate(out))
            opt.zero_grad()
            loss.backward()
            opt.step()
    elapsed = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        chunks = [torch.stack([o.argmax(1) for o in model(xte[i:i + 256])], 1) for i in range(0, len(xte), 256)]
        preds = torch.cat(chunks)
    right = (preds == yte).numpy()
    return {"chars": right.mean(0).tolist(), "whole": float(right.all(1).mean()), "params": params,
            "seconds": elapsed}


def train_keras(data, epochs, batch, lr, seed, init):
    from kerashw.training import train
    from kerashw.config import RunSpec
    from kerashw.store import Store

    spec = RunSpec(task="captcha", model="resnet18_mod", preprocess="original", data=data, augment=False,
                   optimizer="adam", lr=lr, batch_size=batch, epochs=epochs, seed=seed, init=init)
    store = Store(tempfile.mkdtemp(prefix="parity-"))
    result = train.run(spec, store=store)
    test = result.final["test"]
    return {"chars": [test[f"char_{i}_acc"] for i in range(1, 5)], "whole": test["whole"],
            "params": result.params[0], "seconds": result.elapsed}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/thsr-real")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--init", default="torch", help="Keras side's weight init: torch or keras")
    ap.add_argument("--only", choices=["keras", "torch"], help="run one side only")
    ap.add_argument("--json", help=argparse.SUPPRESS)  # where a side run as a child writes its result
    args = ap.parse_args()

    if args.only:
        if args.only == "keras":
            row = train_keras(args.data, args.epochs, args.batch, args.lr, args.seed, args.init)
        else:
            from kerashw.captcha.cache import captcha_splits

            splits, _ = captcha_splits(args.data, "original", args.seed)
            row = train_torch(splits, args.epochs, args.batch, args.lr, args.seed)
        rows = {f"kerashw (init={args.init})" if args.only == "keras" else "PyTorch": row}
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f)
            return
    else:
        # TensorFlow and torch in one process crash (both bring their own OpenMP and protobuf),
        # so each side trains in a child process of this one, one after the other.
        rows = {}
        for side in ("keras", "torch"):
            out = tempfile.mktemp(suffix=".json")
            cmd = [sys.executable, __file__, *sys.argv[1:], "--only", side, "--json", out]
            subprocess.run(cmd, check=True)
            with open(out) as f:
                rows.update(json.load(f))
    print(f"\nresnet18_mod, original, no augmentation, Adam {args.lr}, batch {args.batch}, "
          f"{args.epochs} epochs, {args.data}; test top-1 %")
    print("| run | char 1 | char 2 | char 3 | char 4 | whole | params | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        chars = " | ".join(f"{100 * c:.2f}" for c in r["chars"])
        print(f"| {name} | {chars} | {100 * r['whole']:.2f} | {r['params']:,} | {r['seconds']:.0f} |")


if __name__ == "__main__":
    main()
