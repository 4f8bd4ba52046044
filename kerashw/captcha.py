"""Captcha data: alphabet, labelled folders, the synthetic default, and the
on-disk cache of preprocessed arrays (computed once per image and variant)."""
from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from kerashw import preprocess
from kerashw.config import SYNTHETIC_VERSION
from kerashw.data import DataError, Split
from kerashw.synth import ALPHABET

HEADS = ("char_1", "char_2", "char_3", "char_4")
LENGTH = len(HEADS)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
REPORT_SPLIT = (4000, 1000, 3000)  # the report's train:val:test
SYNTH_COUNT = 8000


def encode(label: str, where: str = "label") -> list[int]:
    """'7f37' -> indices into ALPHABET; labels are case-insensitive."""
    text = label.strip().upper()
    if len(text) != LENGTH:
        raise DataError(f"{where}: label {label!r} has {len(text)} characters, want {LENGTH}")
    bad = sorted({c for c in text if c not in ALPHABET})
    if bad:
        raise DataError(f"{where}: label {label!r} has {''.join(bad)!r} outside the alphabet {ALPHABET}")
    return [ALPHABET.index(c) for c in text]


def decode(indices) -> str:
    return "".join(ALPHABET[int(i)] for i in indices)


def cache_dir() -> Path:
    return Path(os.environ.get("KERASHW_CACHE") or Path.home() / ".cache" / "kerashw")


@dataclass(frozen=True)
class Item:
    path: Path
    label: str  # upper case


def read_labelled_folder(folder: Path) -> list[Item]:
    """labels.csv (filename,label) if present, else each image's stem is its label."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder; want a folder of captcha images with labels.csv "
                        "(filename,label) or images named by their label (7F37.jpg)")
    labels_csv = folder / "labels.csv"
    items = []
    if labels_csv.exists():
        with open(labels_csv, newline="") as f:
            rows = list(csv.reader(f))
        if not rows or [c.strip().lower() for c in rows[0][:2]] != ["filename", "label"]:
            raise DataError(f"{labels_csv} line 1: want the header 'filename,label', got {rows[:1]}")
        for lineno, row in enumerate(rows[1:], start=2):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                raise DataError(f"{labels_csv} line {lineno}: want 'filename,label', got {row}")
            encode(row[1], f"{labels_csv} line {lineno}")
            items.append(Item(folder / row[0].strip(), row[1].strip().upper()))
    else:
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() in IMAGE_SUFFIXES:
                encode(p.stem, str(p))
                items.append(Item(p, p.stem.upper()))
    if not items:
        raise DataError(f"{folder}: no labelled images (jpg/png) found")
    return items


def fingerprint(items: list[Item]) -> str:
    """Changes when a file, its size, mtime or label changes."""
    h = hashlib.sha256()
    for it in items:
        st = it.path.stat() if it.path.exists() else None
        h.update(f"{it.path.name}|{it.label}|{st and st.st_size}|{st and int(st.st_mtime)}\n".encode())
    return h.hexdigest()[:16]


def _preprocess_chunk(args):
    paths, variant, skip_bad = args
    cv2.setNumThreads(1)  # one image per process; all cores are busy already
    fn = preprocess.get_preprocessor(variant)
    out, bad = [], []
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            if not skip_bad:
                raise DataError(f"{p}: cannot read this image (missing, corrupt or not jpg/png); "
                                "fix or remove it, or pass --skip-bad to skip unreadable images")
            bad.append(str(p))
            out.append(None)
            continue
        out.append(fn(img))
    return out, bad


def preprocessed(items: list[Item], variant: str, *, skip_bad=False, progress=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images uint8 (N,50,130,C), labels int (N,4), skipped paths), cached on disk."""
    key = hashlib.sha256(json.dumps([fingerprint(items), variant, preprocess.VERSION,
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
    x = np.stack([images[i] for i in keep]) if keep else np.zeros((0, 50, 130, preprocess.CHANNELS[variant]), np.uint8)
    y = np.array([encode(items[i].label) for i in keep], dtype=np.int64).reshape(-1, LENGTH)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + f".tmp{os.getpid()}.npz")
    np.savez(tmp, x=x, y=y, skipped=np.array(skipped, dtype=str))
    os.replace(tmp, path)  # atomic: a crash never leaves half a cache
    return x, y, skipped


def split_counts(n: int, counts: tuple[int, int, int] | None) -> tuple[int, int, int]:
    """The user's counts, or the report's 4:1:3 proportion of n."""
    if counts:
        if sum(counts) > n:
            raise DataError(f"split {counts} needs {sum(counts)} images but the folder has {n}")
        return counts
    tr = n * 4 // 8
    va = n * 1 // 8
    return tr, va, n - tr - va


def source_items(data: str | None, seed: int = 0, progress=None) -> dict[str, list[Item]] | list[Item]:
    """Items of a folder (or its train/val/test subfolders), or of the synthetic default."""
    if data is None:
        from kerashw import synth

        folder = cache_dir() / f"synthetic-v{SYNTHETIC_VERSION}-{SYNTH_COUNT}-seed0"
        return read_labelled_folder(synth.ensure_synthetic(folder, SYNTH_COUNT, 0, progress))
    root = Path(data).expanduser()
    subs = {p: root / p for p in ("train", "val", "test")}
    if all(d.is_dir() for d in subs.values()):
        return {p: read_labelled_folder(d) for p, d in subs.items()}
    return read_labelled_folder(root)


def captcha_splits(data: str | None, variant: str, seed: int, limit: int | None = None,
                   counts=None, skip_bad=False, progress=None) -> tuple[dict[str, Split], list[str]]:
    """train/val/test Splits with y as {char_k: labels}; limit subsamples train."""
    from kerashw.data import subsample

    src = source_items(data, seed, progress)
    skipped = []
    if isinstance(src, dict):
        arrays = {}
        for phase, items in src.items():
            x, y, bad = preprocessed(items, variant, skip_bad=skip_bad, progress=progress)
            arrays[phase] = (x, y)
            skipped += bad
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
