"""`kerashw audit` on captcha folders: every labelled image of a folder as one pool, K folds of
it as ordinary split folders (so each fold is an ordinary, stored, resumable run), and the
accepted corrections written back into the labels.csv each image came from."""
from __future__ import annotations

import csv
import io
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerashw import atomic
from kerashw.captcha.constants import ALPHABET
from kerashw.captcha.folders import SPLITS, encode, read_labelled_folder
from kerashw.config import DataError

VAL_SHARE = 20  # each fold's val split: 1/20 of its training images (best-epoch bookkeeping only)


@dataclass(frozen=True)
class PoolItem:
    path: Path  # the image, absolute
    label: str
    labels_csv: Path | None  # the labels.csv that names it; None: the file name is the label
    group: str  # the subfolder it came from ("" for a plain folder)


def pool(data: str) -> list[PoolItem]:
    """Every labelled image of the folder: its train/val/test/extra subfolders, or itself."""
    root = Path(data).expanduser().resolve()
    groups = [g for g in (*SPLITS, "extra") if (root / g).is_dir()] or [""]
    items = []
    for g in groups:
        folder = root / g if g else root
        csv_file = folder / "labels.csv"
        for it in read_labelled_folder(folder):
            items.append(PoolItem(it.path.resolve(), it.label, csv_file if csv_file.exists() else None, g))
    return items


def labels_of(items: list[PoolItem]) -> np.ndarray:
    """[n, 4] class indices of the given labels."""
    return np.array([encode(it.label) for it in items], dtype=np.int64)


def text(codes) -> str:
    return "".join(ALPHABET[int(c)] for c in codes)


def fold_of(n: int, k: int, seed: int) -> np.ndarray:
    """Each image's fold, 0..k-1: a seeded permutation cut into k near-equal parts."""
    order = np.random.default_rng(seed).permutation(n)
    folds = np.empty(n, dtype=np.int64)
    for f, part in enumerate(np.array_split(order, k)):
        folds[part] = f
    return folds


def write_folds(items: list[PoolItem], k: int, seed: int, root: Path) -> list[Path]:
    """fold-1..fold-k under root, each a split folder whose labels.csv files name the images
    by absolute path: test = the fold, train (and a small val) = the other folds. Rewritten
    only when different, so a second audit finds the same folders (and the same run ids)."""
    if k < 2:
        raise DataError(f"--folds {k}: want 2 or more (each image is predicted by a model that never saw it)")
    if len(items) < 2 * k:
        raise DataError(f"{len(items)} labelled images cannot make {k} folds; want at least {2 * k}")
    folds = fold_of(len(items), k, seed)
    folders = []
    for f in range(k):
        others = [i for i in range(len(items)) if folds[i] != f]
        val = set(others[::VAL_SHARE])
        parts = {"train": [i for i in others if i not in val], "val": sorted(val),
                 "test": [i for i in range(len(items)) if folds[i] == f]}
        folder = root / f"fold-{f + 1}"
        for split, idx in parts.items():
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows([("filename", "label")] +
                                                           [(str(items[i].path), items[i].label) for i in idx])
            body = buf.getvalue()
            target = folder / split / "labels.csv"
            if not target.exists() or target.read_text() != body:
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic.write_text(target, body)
        folders.append(folder)
    return folders


def fold_test_items(items: list[PoolItem], k: int, seed: int) -> list[list[int]]:
    """Pool indices of each fold's test split, in its labels.csv order."""
    folds = fold_of(len(items), k, seed)
    return [[i for i in range(len(items)) if folds[i] == f] for f in range(k)]


def apply_corrections(data: str, corrections_csv: Path) -> list[tuple[Path, Path]]:
    """Write the corrections CSV's suggested labels (the rows the user kept) into the labels.csv
    files that list those images, each backed up first; [(labels.csv, backup)] changed.
    Images labelled by their file name are not renamed: that is an error naming them."""
    corrections_csv = Path(corrections_csv)
    try:
        with open(corrections_csv, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise DataError(f"--apply {corrections_csv}: {exc.strerror}") from None
    need = {"file", "given", "suggested"}
    if rows and not need <= set(rows[0]):
        raise DataError(f"--apply {corrections_csv}: want the columns of kerashw audit's CSV ({', '.join(sorted(need))}"
                        f"), got {', '.join(rows[0])}")
    by_path = {it.path: it for it in pool(data)}
    wanted: dict[Path, str] = {}
    for lineno, row in enumerate(rows, start=2):
        path = Path(row["file"]).expanduser().resolve()
        where = f"{corrections_csv} line {lineno}"
        if path not in by_path:
            raise DataError(f"{where}: {row['file']} is not a labelled image of {data}")
        it = by_path[path]
        encode(row["suggested"], where)
        if it.label != row["given"].strip().upper():
            raise DataError(f"{where}: {path.name} is labelled {it.label!r} now, not {row['given']!r}: the folder "
                            "changed since the audit; audit it again")
        if it.labels_csv is None:
            raise DataError(f"{where}: {path.name} is labelled by its file name; rename it to "
                            f"{row['suggested'].upper()}{path.suffix} yourself (audit changes labels.csv files only)")
        # a row corrects one position; two rows of one image (two positions) both apply
        current, suggested = wanted.get(path, it.label), row["suggested"].strip().upper()
        p = int(row.get("position") or 0)
        wanted[path] = current[:p - 1] + suggested[p - 1] + current[p:] if p else suggested
    changed = []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for labels_csv in sorted({by_path[p].labels_csv for p in wanted}):
        raw = labels_csv.read_bytes()
        with open(labels_csv, newline="", encoding="utf-8-sig") as f:
            table = list(csv.reader(f))
        edits = 0
        for row in table[1:]:
            if len(row) >= 2:
                path = (labels_csv.parent / row[0].strip()).resolve()
                if path in wanted and row[1].strip().upper() != wanted[path]:
                    # in the file's own case (labels are case-insensitive; a diff shows only the change)
                    row[1] = wanted[path].lower() if row[1].strip().islower() else wanted[path]
                    edits += 1
        if not edits:
            continue
        backup = labels_csv.with_name(f"labels.csv.bak-{stamp}")
        shutil.copy2(labels_csv, backup)  # the user's labels, as they were, before any change
        out = io.StringIO()  # the file's own line ends and byte-order mark: other lines stay byte for byte
        csv.writer(out, lineterminator="\r\n" if b"\r\n" in raw else "\n").writerows(table)
        bom = "\ufeff" if raw.startswith(b"\xef\xbb\xbf") else ""
        with atomic.replacing(labels_csv) as tmp:
            tmp.write_bytes((bom + out.getvalue()).encode())
        changed.append((labels_csv, backup))
    return changed
