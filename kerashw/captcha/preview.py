"""A picture of what each preprocessing variant does: one row per sample,
original | denoise | denoise2, labelled. OpenCV only, no TensorFlow."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kerashw.captcha import preprocess
from kerashw.captcha.constants import HEIGHT, WIDTH
from kerashw.captcha.folders import source_items
from kerashw.config import DataError
from kerashw.images import UnreadableImage, display_name, read_bgr

SCALE = 2  # 50x130 is small on screen


def _tile(img: np.ndarray) -> np.ndarray:
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return cv2.resize(img, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)


def preview_grid(data: str | None, n: int = 8, seed: int = 0) -> np.ndarray:
    items = source_items(data, seed)
    if isinstance(items, dict):
        items = items["train"]
    rng = np.random.default_rng(seed)
    picks = [items[i] for i in sorted(rng.choice(len(items), size=min(n, len(items)), replace=False))]
    rows = []
    header = np.full((24, WIDTH * SCALE * 3 + 120, 3), 255, np.uint8)
    for k, name in enumerate(("original", "denoise", "denoise2")):
        cv2.putText(header, name, (120 + k * WIDTH * SCALE + 8, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1)
    rows.append(header)
    for it in picks:
        try:
            bgr = read_bgr(it.path)
        except UnreadableImage as why:
            raise DataError(f"{display_name(it.path)}: cannot read this image ({why})") from None
        tiles = [_tile(cv2.cvtColor(preprocess.original(bgr), cv2.COLOR_RGB2BGR)),
                 _tile(255 - preprocess.denoise(bgr)),  # ink shown dark, as in the source
                 _tile(preprocess.denoise2(bgr))]
        label = np.full((HEIGHT * SCALE, 120, 3), 255, np.uint8)
        cv2.putText(label, it.label, (8, 58), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2)
        rows.append(np.hstack([label, *tiles]))
    return np.vstack(rows)


def write_preview(data: str | None, out: str | Path, n: int = 8, seed: int = 0) -> Path:
    out = Path(out)
    grid = preview_grid(data, n, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), grid):
        raise DataError(f"{out}: could not write the image (use a .png or .jpg name)")
    return out
