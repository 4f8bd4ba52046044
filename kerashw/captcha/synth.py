"""Synthetic THSR-style captchas: the embedded default data, so the captcha study
runs on a fresh machine with nothing downloaded.

What the real ones (shared/data/thsr-sample) look like and what is copied here:
light grey background under dense salt-and-pepper speckle; four dark, condensed
sans-serif glyphs, each a little rotated and shifted; one thick dark arc (a
quadratic curve) running across the whole width, which *inverts* the glyph
pixels it crosses (glyph strokes turn light under the arc); sizes 46-54 x 108-140.

Changing the pixels generate() makes? Bump config.SYNTHETIC_VERSION with it.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from kerashw.captcha.constants import ALPHABET, LENGTH


def _font_paths() -> list[str]:
    """The glyph fonts, each with the share of glyphs it draws. All ship with dependencies
    (matplotlib, the `captcha` package), so a fresh machine with no system fonts has them.
    DejaVu Sans, condensed, is closest to the real glyphs' shapes and stroke (~0.13 of the cap
    height); the others are there so the model learns the letters rather than one font's
    details (the real M's splayed legs, R's small bowl are in none of them)."""
    import captcha
    import matplotlib

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return [str(ttf / "DejaVuSans.ttf"), str(ttf / "DejaVuSans-Bold.ttf"), str(ttf / "DejaVuSansMono.ttf"),
            str(ttf / "cmss10.ttf"), str(Path(captcha.__file__).parent / "data" / "DroidSansMono.ttf")]


FONT_SHARES = (0.5, 0.15, 0.1, 0.15, 0.1)
_FONTS: dict = {}


def _font(size: int, which: int):
    if (size, which) not in _FONTS:
        _FONTS[size, which] = ImageFont.truetype(_font_paths()[which], size)
    return _FONTS[size, which]


def _glyph(ch: str, height: int, rng) -> Image.Image:
    """One glyph as an L-mode mask (255 = ink), condensed and rotated."""
    size = int(height * rng.uniform(0.8, 0.92))
    font = _font(size, int(rng.choice(len(FONT_SHARES), p=FONT_SHARES)))
    left, top, right, bottom = font.getbbox(ch)
    img = Image.new("L", (right + 6, bottom + 6), 0)
    d = ImageDraw.Draw(img)
    d.text((3, 3), ch, font=font, fill=255, stroke_width=int(rng.random() < 0.75), stroke_fill=255)
    img = img.crop(img.getbbox())
    w, h = img.size
    img = img.resize((max(4, int(w * rng.uniform(0.75, 0.92))), h), Image.BILINEAR)
    # The real glyphs lean only a little; v1's +-15 degrees made neighbours collide.
    return img.rotate(float(rng.uniform(-8, 8)), resample=Image.BILINEAR, expand=True)


def _arc_mask(h: int, w: int, rng) -> np.ndarray:
    """A thick quadratic curve across the full width; most real arcs bow upwards over the text."""
    xs = np.arange(w, dtype=np.float64)
    # Real arcs enter on the left around mid-height and leave near the top right,
    # crossing the upper half of the text rather than its middle.
    y_left, y_right = rng.uniform(0.3, 0.6) * h, rng.uniform(0.03, 0.25) * h
    sag = rng.uniform(-0.12, 0.02) * h  # negative: the middle rises above the chord (v3: flatter, as measured)
    t = xs / (w - 1)
    ys = y_left + (y_right - y_left) * t + sag * 4 * t * (1 - t)
    thickness = rng.uniform(3.5, 5.5)
    yy = np.arange(h)[:, None]
    start, end = int(rng.uniform(0, 0.03) * w), int(rng.uniform(0.9, 1.0) * w)
    mask = (np.abs(yy - ys[None, :]) <= thickness / 2)
    mask[:, :start] = False
    mask[:, end:] = False
    return mask


def generate(label: str, seed: int, with_mask: bool = False):
    """One captcha as uint8 RGB (h, w, 3); with_mask also returns the arc's boolean mask."""
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(44, 50)), int(rng.integers(112, 139))  # the real ones: 45-48 x 116-135
    ink = Image.new("L", (w, h), 0)
    glyphs = [_glyph(ch, h, rng) for ch in label]
    # Four cells at a fixed pitch, like the real ones: the text spans ~80 % of the
    # width, each glyph centred in its cell with a small jitter, so neighbours touch
    # rarely rather than overlapping by a stroke.
    left = rng.uniform(0.08, 0.14) * w
    pitch = (w * rng.uniform(0.76, 0.84)) / 4
    base = h * rng.uniform(0.52, 0.6)  # text centre sits a little below mid-height
    for i, g in enumerate(glyphs):
        cx = left + pitch * (i + 0.5) + rng.uniform(-0.06, 0.06) * pitch
        x = int(round(cx - g.size[0] / 2))
        y = int(round(base - g.size[1] / 2 + rng.uniform(-2, 2)))
        ink.paste(255, (max(0, x), min(max(0, y), h - g.size[1]) if g.size[1] < h else 0), g)
    text = np.asarray(ink) > 110
    arc = _arc_mask(h, w, rng)
    dark = text ^ arc  # the arc inverts the glyph pixels it crosses, as on the real ones
    # Measured on 200 real captchas (5x5-median split of background and ink): background mean
    # 200, std 44, 5.5 % dark pepper, 4.7 % white salt; ink mean 61. v2 had twice the pepper.
    background = rng.uniform(192, 212)
    img = np.full((h, w), background) + rng.normal(0, 28, (h, w))
    img[dark] = rng.uniform(30, 65) + rng.normal(0, 18, int(dark.sum()))
    speckle = rng.random((h, w))
    pepper = rng.uniform(0.035, 0.05)  # JPEG turns some noise dark too
    img[speckle < pepper] = rng.uniform(0, 110, int((speckle < pepper).sum()))
    img[speckle > 1 - rng.uniform(0.015, 0.03)] = 255
    gray = np.clip(img, 0, 255).astype(np.uint8)
    # the real ones are JPEGs: their 8x8 block artefacts, at a quality drawn per image
    import cv2

    ok, jpg = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 92))])
    gray = cv2.imdecode(jpg, cv2.IMREAD_GRAYSCALE)
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    return (rgb, arc) if with_mask else rgb


def random_label(rng) -> str:
    return "".join(rng.choice(list(ALPHABET), size=LENGTH))


def _write_chunk(args):
    folder, start, labels, seed = args
    for i, label in enumerate(labels, start=start):
        rgb = generate(label, seed * 1_000_003 + i)
        Image.fromarray(rgb).save(folder / f"{i:05d}.png", optimize=False, compress_level=1)
    return len(labels)


def ensure_synthetic(folder: Path, n: int = 8000, seed: int = 0, progress=None) -> Path:
    """Write n captchas + labels.csv into folder once; later calls reuse it."""
    folder = Path(folder)
    done = folder / "labels.csv"
    if done.exists():
        return folder
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = [random_label(rng) for _ in range(n)]
    chunk = 250
    jobs = [(tmp, s, labels[s:s + chunk], seed) for s in range(0, n, chunk)]
    from kerashw.parallel import map_progress

    map_progress(_write_chunk, jobs, total=n, description="generating synthetic captchas",
                 progress=progress, weight=lambda r: r)
    with open(tmp / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "label"])
        w.writerows((f"{i:05d}.png", lab) for i, lab in enumerate(labels))
    try:
        tmp.rename(folder)  # atomic: a half-written set is never mistaken for a finished one
    except OSError:
        if not done.exists():
            raise
    return folder
