"""Preprocessed captcha arrays: each image set and variant is computed once (on all
cores), cached on disk and read back on every later run; then split into train/val/test."""
from __future__ import annotations

import hashlib
import json
import os

import cv2
import numpy as np

from kerashw.captcha import preprocess
from kerashw.captcha.constants import HEADS, HEIGHT, LENGTH, WIDTH
from kerashw.captcha.folders import Item, cache_dir, content_digest, encode, source_items, split_counts
from kerashw.config import DataError
from kerashw.images import UnreadableImage, display_name, read_bgr
from kerashw.pipeline import Split, subsample


def _preprocess_chunk(args):
    paths, variant, skip_bad = args
    cv2.setNumThreads(1)  # one image per process; all cores are busy already
    fn = preprocess.get_preprocessor(variant)
    out, bad = [], []
    for p in paths:
        try:
            img = read_bgr(p)
        except UnreadableImage as why:
            if not skip_bad:
                raise DataError(f"{display_name(p)}: cannot read this image ({why}); "
                                "fix or remove it, or pass --skip-bad to skip unreadable images") from None
            bad.append(display_name(p))
            out.append(None)
            continue
        out.append(fn(img))
    return out, bad


def preprocessed(items: list[Item], variant: str, *, skip_bad=False, progress=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images uint8 (N,50,130,C), labels int (N,4), skipped paths), cached on disk."""
    key = hashlib.sha256(json.dumps([content_digest([("images", items)]), variant, preprocess.VERSION,
                                     preprocess.PARAMS, skip_bad]).encode()).hexdigest()[:20]
    path = cache_dir() / "preprocessed" / f"{variant}-{key}.npz"
    if path.exists():
        with np.load(path) as z:
            return z["x"], z["y"], list(z["skipped"])
    from kerashw.parallel import map_progress

    chunk = 100
    jobs = [([it.path for it in items[s:s + chunk]], variant, skip_bad) for s in range(0, len(items), chunk)]
    results = map_progress(_preprocess_chunk, jobs, total=len(items), progress=progress,
                           description=f"preprocessing ({variant})", weight=lambda r: len(r[0]))
    images = [im for part, _ in results for im in part]
    skipped = [b for _, bad in results for b in bad]
    keep = [i for i, im in enumerate(images) if im is not None]
    x = np.stack([images[i] for i in keep]) if keep else np.zeros((0, HEIGHT, WIDTH, preprocess.CHANNELS[variant]), np.uint8)
    y = np.array([encode(items[i].label) for i in keep], dtype=np.int64).reshape(-1, LENGTH)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + f".tmp{os.getpid()}.npz")
    np.savez(tmp, x=x, y=y, skipped=np.array(skipped, dtype=str))
    os.replace(tmp, path)  # atomic: a crash never leaves half a cache
    return x, y, skipped


def captcha_splits(data: str | None, variant: str, seed: int, limit: int | None = None,
                   counts=None, skip_bad=False, progress=None, extra=False) -> tuple[dict[str, Split], list[str]]:
    """train/val/test Splits with y as {char_k: labels}; limit subsamples train; with
    `extra`, a split folder's extra/ images join the training split."""
    src = source_items(data, seed, progress, extra=extra)
    skipped = []
    if isinstance(src, dict):
        arrays = {}
        for phase, items in src.items():
            x, y, bad = preprocessed(items, variant, skip_bad=skip_bad, progress=progress)
            arrays[phase] = (x, y)
            skipped += bad
        if "extra" in arrays:
            (xt, yt), (xe, ye) = arrays["train"], arrays.pop("extra")
            arrays["train"] = (np.concatenate([xt, xe]), np.concatenate([yt, ye]))
    else:
        x, y, skipped = preprocessed(src, variant, skip_bad=skip_bad, progress=progress)
        n_tr, n_va, n_te = split_counts(len(x), counts)
        perm = np.random.default_rng(seed).permutation(len(x))
        parts = {"train": perm[:n_tr], "val": perm[n_tr:n_tr + n_va],
                 "test": perm[n_tr + n_va:n_tr + n_va + n_te]}
        arrays = {p: (x[i], y[i]) for p, i in parts.items()}
    x_tr, y_tr = arrays["train"]
    keep = subsample(len(x_tr), limit, seed)
    arrays["train"] = (x_tr[keep], y_tr[keep])
    splits = {p: Split(x, {h: y[:, k] for k, h in enumerate(HEADS)}) for p, (x, y) in arrays.items()}
    return splits, skipped
