"""Fit the synthetic generator's glyphs to real captchas: one outline per symbol, the trimmed
mean of that symbol's crops in a labelled folder, written to kerashw/captcha/glyphs.npz.

The fonts the dependencies ship have no glyph like the real M (splayed legs), R (small bowl),
4 or F, and those were the synthetic-only model's commonest errors (docs/results/fewlabels.md).
This draws the font from the real captchas themselves. It reads only the folder it is given
(the real set's train/ split; never val/ or test/), and what it keeps is a font: 19 outlines
and their widths, no image.

How: speckle removed, binarised and the arc undone (`preprocess.clean_ink`, what `denoise`
resizes); the ink's columns give the text's extent, cut into four cells at a fixed pitch (the
real glyphs sit at one); each cell's ink components of 15 px or more are cropped to their box
and scaled to 48x36. Per symbol the crops are averaged and those farthest from that mean
dropped (wrong labels, cells cut through a neighbour, arcs not undone), twice; the mean
of the 60 % kept is
upsampled 4x (cubic) and thresholded so that its ink share is the crops' median: an outline
of the real stroke weight rather than the blur of a mean.

    python benchmarks/fit_glyphs.py ../shared/data/thsr-real/train [--out kerashw/captcha/glyphs.npz] [--png docs/img/glyphs.png]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kerashw.captcha.constants import ALPHABET  # noqa: E402
from kerashw.captcha.folders import read_labelled_folder  # noqa: E402
from kerashw.captcha.preprocess import clean_ink  # noqa: E402

CELL = (48, 36)  # (h, w) each crop is scaled to
SCALE = 4  # the outline's resolution over CELL's
MIN_AREA = 15  # px: smaller components are speckle the median left
# Each pass keeps the 60 % of all crops nearest the mean so far (about 500 a symbol). Sharper
# outlines from fewer crops (5 %, M's V deeper) did no better on the real val split
# (docs/results/fewlabels.md, version 5).
KEEP, PASSES = 0.6, 2


def crops(ink: np.ndarray, label: str):
    """(symbol, crop as bool, box height / image height) for each of the four cells."""
    h = ink.shape[0]
    cols = np.flatnonzero(ink.sum(axis=0) >= 2)
    if len(cols) < 20:
        return
    left, right = cols[0], cols[-1] + 1
    for k, ch in enumerate(label):
        a, b = int(round(left + (right - left) * k / 4)), int(round(left + (right - left) * (k + 1) / 4))
        cell = ink[:, a:b].astype(np.uint8)
        n, comp, stats, _ = cv2.connectedComponentsWithStats(cell)
        keep = np.isin(comp, [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= MIN_AREA])
        ys, xs = np.nonzero(keep)
        if len(ys) < 20:
            continue
        yield ch, keep[ys.min():ys.max() + 1, xs.min():xs.max() + 1], (ys.max() - ys.min() + 1) / h


def fit(folder: Path):
    got: dict[str, list] = {c: [] for c in ALPHABET}
    aspect: dict[str, list] = {c: [] for c in ALPHABET}
    heights = []
    for item in read_labelled_folder(folder):
        for ch, crop, rel_h in crops(clean_ink(cv2.imread(str(item.path))), item.label.upper()):
            got[ch].append(cv2.resize(crop.astype(np.float32), CELL[::-1], interpolation=cv2.INTER_AREA))
            aspect[ch].append(crop.shape[1] / crop.shape[0])
            heights.append(rel_h)
    outlines, widths, counts = [], [], []
    for ch in ALPHABET:
        stack = np.stack(got[ch])
        mean = stack.mean(axis=0)
        for _ in range(PASSES):
            dist = ((stack - mean) ** 2).mean(axis=(1, 2))
            kept = stack[dist <= np.quantile(dist, KEEP)]
            mean = kept.mean(axis=0)
        share = float(np.median(kept.mean(axis=(1, 2))))
        big = cv2.resize(mean, (CELL[1] * SCALE, CELL[0] * SCALE), interpolation=cv2.INTER_CUBIC)
        outlines.append(big > np.quantile(big, 1 - share))
        widths.append(float(np.median(aspect[ch])))
        counts.append(len(stack))
    return np.stack(outlines), np.array(widths), np.array(counts), np.array(heights)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="a labelled folder of real captchas (the real set's train/)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "kerashw/captcha/glyphs.npz")
    ap.add_argument("--png", type=Path, help="also draw the outlines side by side here")
    args = ap.parse_args()
    outlines, widths, counts, heights = fit(args.folder)
    np.savez_compressed(args.out, symbols=np.array(list(ALPHABET)), outlines=np.packbits(outlines, axis=-1),
                        shape=np.array(outlines.shape), aspect=widths)
    q = np.quantile(heights, [0.1, 0.5, 0.9])
    print(f"{args.out}: {len(ALPHABET)} outlines from {counts.sum()} crops ({counts.min()}-{counts.max()} a symbol); "
          f"glyph height / image height 10/50/90 %: {q[0]:.3f} {q[1]:.3f} {q[2]:.3f}")
    print("width / height:", " ".join(f"{c}={w:.2f}" for c, w in zip(ALPHABET, widths)))
    if args.png:
        tiles = [np.pad(np.where(o, 0, 255).astype(np.uint8), 6, constant_values=170) for o in outlines]
        cv2.imwrite(str(args.png), np.hstack(tiles))


if __name__ == "__main__":
    main()
