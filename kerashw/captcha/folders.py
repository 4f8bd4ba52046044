"""Labelled captcha folders: labels, a folder (labels.csv or names), train/val/test splits."""
from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from kerashw import atomic
from kerashw.captcha.constants import ALPHABET, IMAGE_SUFFIXES, LENGTH, SYNTH_COUNT
from kerashw.config import SYNTHETIC_VERSION, DataError


def encode(label: str, where: str = "label") -> list[int]:
    """'7f37' -> indices into ALPHABET; labels are case-insensitive."""
    text = label.strip().upper()
    if len(text) != LENGTH:
        raise DataError(f"{where}: label {label!r} has {len(text)} characters, want {LENGTH}")
    bad = sorted({c for c in text if c not in ALPHABET})
    if bad:
        raise DataError(f"{where}: label {label!r} has {''.join(bad)!r} outside the alphabet {ALPHABET}")
    return [ALPHABET.index(c) for c in text]


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
        try:  # utf-8-sig: spreadsheet programs start their CSV with a byte-order mark
            with open(labels_csv, newline="", encoding="utf-8-sig") as f:
                rows = list(csv.reader(f))
        except UnicodeDecodeError as exc:
            raise DataError(f"{labels_csv}: not UTF-8 text (byte {exc.start}: {exc.reason}); "
                            "save it as UTF-8 CSV with the header 'filename,label'") from None
        if not rows or [c.strip().lower() for c in rows[0][:2]] != ["filename", "label"]:
            raise DataError(f"{labels_csv} line 1: want the header 'filename,label', got {rows[:1]}")
        seen: dict[str, int] = {}
        for lineno, row in enumerate(rows[1:], start=2):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                raise DataError(f"{labels_csv} line {lineno}: want 'filename,label', got {row}")
            name = row[0].strip()
            key = os.path.normpath(name)  # ./x.jpg and x.jpg are one file
            if key in seen:  # the same image twice would sit in two splits, or carry two labels
                raise DataError(f"{labels_csv} lines {seen[key]} and {lineno} both list {key!r}; "
                                "each image may be listed once")
            seen[key] = lineno
            encode(row[1], f"{labels_csv} line {lineno}")
            items.append(Item(folder / name, row[1].strip().upper()))
    else:
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() in IMAGE_SUFFIXES:
                encode(p.stem, str(p))
                items.append(Item(p, p.stem.upper()))
    if not items:
        splits = [p for p in SPLITS if (folder / p).is_dir()]
        hint = (f"; it has {'/'.join(splits)}/ subfolders: one of them is a labelled folder (predict --data "
                f"{folder / splits[-1]}), and with all of {'/'.join(SPLITS)}/ this folder is a split dataset to "
                "train on" if splits else "")
        raise DataError(f"{folder}: no labelled images (jpg/png) found{hint}")
    return items


SPLITS = ("train", "val", "test")  # a folder with these three subfolders is split already


def cache_dir() -> Path:
    """Where generated and preprocessed captchas are kept ($KERASHW_CACHE or ~/.cache/kerashw)."""
    return Path(os.environ.get("KERASHW_CACHE") or Path.home() / ".cache" / "kerashw")


def split_counts(n: int, counts: tuple[int, int, int] | None) -> tuple[int, int, int]:
    """The user's counts, or the report's 4:1:3 proportion of n."""
    if counts:
        if sum(counts) > n:
            raise DataError(f"split {counts} needs {sum(counts)} images but the folder has {n}")
        return counts
    tr = n * 4 // 8
    va = n * 1 // 8
    return tr, va, n - tr - va


def source_items(data: str | None, seed: int = 0, progress=None,
                 extra: bool = False) -> dict[str, list[Item]] | list[Item]:
    """Items of a folder (or its train/val/test subfolders, and with `extra` an extra/
    subfolder of more training images when there is one), or of the synthetic default."""
    if data is None:
        from kerashw.captcha import synth  # PIL and the font load only for the default

        folder = cache_dir() / f"synthetic-v{SYNTHETIC_VERSION}-{SYNTH_COUNT}-seed0"
        return read_labelled_folder(synth.ensure_synthetic(folder, SYNTH_COUNT, 0, progress))
    root = Path(data).expanduser()
    subs = {p: root / p for p in SPLITS}
    present = [p for p, d in subs.items() if d.is_dir()]
    if present and len(present) < len(SPLITS) and not _has_images(root):
        missing = [p for p in SPLITS if p not in present]
        raise DataError(f"{root}: has {'/'.join(present)}/ but no {'/'.join(missing)}/; a split folder needs "
                        f"all of {'/'.join(SPLITS)}/, or put every image in one folder (split 4:1:3, or --split)")
    if len(present) == len(SPLITS):
        if extra and (root / "extra").is_dir():
            subs["extra"] = root / "extra"
        return {p: read_labelled_folder(d) for p, d in subs.items()}
    return read_labelled_folder(root)


def _has_images(folder: Path) -> bool:
    return (folder / "labels.csv").exists() or any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())


def fingerprint(spec, options=None, *, fetch: bool = True) -> str:
    """The content of a captcha folder: each image's bytes, name and label, and how the
    folder is laid out (one folder, or train/val/test)."""
    src = source_items(spec.data, extra=spec.extra)
    return content_digest(sorted(src.items()) if isinstance(src, dict) else [("all", src)])


def content_digest(groups: list[tuple[str, list[Item]]]) -> str:
    """A digest of each group's images: the group, each file's name, label and bytes (the
    run id's, and the preprocessing cache's key, so both change with the pixels). Cached by
    the files' sizes and nanosecond mtimes, so unchanged files are read once."""
    listing = []
    for group, items in groups:
        for it in items:
            st = it.path.stat() if it.path.exists() else None
            listing.append((group, str(it.path), it.label, st.st_size if st else -1, st.st_mtime_ns if st else -1))
    key = hashlib.sha256(json.dumps(listing).encode()).hexdigest()[:24]
    cached = cache_dir() / "fingerprints" / key
    if cached.exists():
        return cached.read_text()
    h = hashlib.sha256()
    for group, items in groups:
        for it in items:
            body = it.path.read_bytes() if it.path.exists() else b"<missing>"
            h.update(group.encode() + b"|" + os.fsencode(it.path.name) + f"|{it.label}|".encode())
            h.update(hashlib.sha256(body).digest())
    digest = "captcha-" + h.hexdigest()[:16]
    cached.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(cached, digest)  # two processes fingerprinting at once each write it whole
    return digest

