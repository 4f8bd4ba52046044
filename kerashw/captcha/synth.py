"""Synthetic THSR-style captchas: the embedded default data, so the captcha study
runs on a fresh machine with nothing downloaded.

What the real ones (shared/data/thsr-real) look like and what is copied here, measured on
them: light grey background under dense salt-and-pepper speckle, JPEG-compressed; four dark,
condensed sans-serif glyphs at a fixed pitch, each a little leaned and shifted, half of them
drawn from outlines fitted to real crops (glyphs.npz); one 5 px dark arc (a quadratic curve)
from the left edge, rising to the right over the text, which *inverts* the glyph pixels it
crosses (glyph strokes turn light under the arc); sizes 44-49 x 112-138.

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
    """The TrueType glyph sources. All ship with dependencies (matplotlib, the `captcha`
    package), so a fresh machine with no system fonts has them. DejaVu Sans, condensed, is the
    closest of them to the real glyphs; the others are there so the model learns the letters
    rather than one font's details."""
    import captcha
    import matplotlib

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return [str(ttf / "DejaVuSans.ttf"), str(ttf / "DejaVuSans-Bold.ttf"), str(ttf / "DejaVuSansMono.ttf"),
            str(ttf / "cmss10.ttf"), str(Path(captcha.__file__).parent / "data" / "DroidSansMono.ttf")]


# Each glyph is drawn from one source: the outlines fitted to real captchas (glyphs.npz, made
# by benchmarks/fit_glyphs.py from the real set's train/ split; the real M's splayed legs and
# R's small bowl are in no TrueType font here), or one of the TrueType fonts above.
GLYPH_SHARES = (0.5, 0.25, 0.075, 0.05, 0.075, 0.05)  # fitted, then _font_paths() in order
_FONTS: dict = {}
_OUTLINES: dict = {}


def _font(size: int, which: int):
    if (size, which) not in _FONTS:
        _FONTS[size, which] = ImageFont.truetype(_font_paths()[which], size)
    return _FONTS[size, which]


def _outline(ch: str) -> tuple[np.ndarray, float]:
    """The fitted outline of ch (float32, 1 = ink, 192x144) and the real glyph's median width /
    height. Version 5 draws at the outline's own 0.75 (the fitting cell's) and does not use
    the second yet: using it changes the pixels, so it waits for a version bump."""
    if not _OUTLINES:
        with np.load(Path(__file__).with_name("glyphs.npz")) as f:
            shape = tuple(f["shape"])
            bits = np.unpackbits(f["outlines"], axis=-1)[..., :shape[-1]]
            for sym, o, a in zip(f["symbols"], bits, f["aspect"]):
                _OUTLINES[str(sym)] = (o.astype(np.float32), float(a))
    return _OUTLINES[ch]


def _fitted_glyph(ch: str, height: int, rng) -> Image.Image:
    """A fitted outline at the real glyphs' size (0.57-0.70 of the image's height, measured),
    leaned and sheared a little; the coverage threshold varies the stroke weight."""
    import cv2

    outline, aspect = _outline(ch)
    oh, ow = outline.shape
    angle, shear = np.deg2rad(rng.uniform(-6, 6)), rng.uniform(-0.12, 0.12)
    lin = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) @ np.array([[1, shear], [0, 1]])
    corners = lin @ np.array([[0, ow, 0, ow], [0, 0, oh, oh]], float)
    lo, hi = corners.min(axis=1), corners.max(axis=1)
    warp = np.hstack([lin, -lo[:, None]])
    big = cv2.warpAffine(outline, warp, (int(np.ceil(hi[0] - lo[0])), int(np.ceil(hi[1] - lo[1]))),
                         flags=cv2.INTER_LINEAR)
    gh = height * rng.uniform(0.57, 0.70)
    scale = gh / oh
    size = (max(4, int(round(big.shape[1] * scale * rng.uniform(0.88, 1.12)))), max(4, int(round(big.shape[0] * scale))))
    cover = cv2.resize(big, size, interpolation=cv2.INTER_AREA)
    return Image.fromarray(((cover > rng.uniform(0.4, 0.7)) * 255).astype(np.uint8))


def _font_glyph(ch: str, height: int, which: int, rng) -> Image.Image:
    size = int(height * rng.uniform(0.8, 0.92))
    font = _font(size, which)
    left, top, right, bottom = font.getbbox(ch)
    img = Image.new("L", (right + 6, bottom + 6), 0)
    d = ImageDraw.Draw(img)
    d.text((3, 3), ch, font=font, fill=255, stroke_width=int(rng.random() < 0.75), stroke_fill=255)
    img = img.crop(img.getbbox())
    w, h = img.size
    img = img.resize((max(4, int(w * rng.uniform(0.75, 0.92))), h), Image.BILINEAR)
    # The real glyphs lean only a little; v1's +-15 degrees made neighbours collide.
    return img.rotate(float(rng.uniform(-8, 8)), resample=Image.BILINEAR, expand=True)


def _glyph(ch: str, height: int, rng) -> Image.Image:
    """One glyph as an L-mode mask (255 = ink), cropped to its ink."""
    source = int(rng.choice(len(GLYPH_SHARES), p=GLYPH_SHARES))
    img = _fitted_glyph(ch, height, rng) if source == 0 else _font_glyph(ch, height, source - 1, rng)
    return img.crop(img.getbbox())


def _arc_mask(h: int, w: int, rng) -> np.ndarray:
    """A thick quadratic curve across the full width; most real arcs bow upwards over the text."""
    xs = np.arange(w, dtype=np.float64)
    # Measured on 400 real captchas (speckle removed, arc fitted): the arc enters at the left
    # edge at 0.39-0.53 of the height and leaves at 0.09-0.20, its middle 0-0.13 above the
    # chord, 5 px thick; v4 drew these wider apart and thinner.
    y_left, y_right = rng.uniform(0.37, 0.55) * h, rng.uniform(0.07, 0.22) * h
    sag = rng.uniform(-0.13, 0.0) * h  # negative: the middle rises above the chord
    t = xs / (w - 1)
    ys = y_left + (y_right - y_left) * t + sag * 4 * t * (1 - t)
    thickness = rng.uniform(4.5, 5.5)
    yy = np.arange(h)[:, None]
    end = int(rng.uniform(0.9, 1.0) * w)
    mask = (np.abs(yy - ys[None, :]) <= thickness / 2)
    mask[:, end:] = False
    return mask


def generate(label: str, seed: int, with_mask: bool = False):
    """One captcha as uint8 RGB (h, w, 3); with_mask also returns the arc's boolean mask."""
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(44, 50)), int(rng.integers(112, 139))  # the real ones: 45-48 x 116-135
    ink = Image.new("L", (w, h), 0)
    glyphs = [_glyph(ch, h, rng) for ch in label]
    # Four glyphs at a fixed pitch, like the real ones. Measured on 600 real captchas: the
    # text's left edge at 0.11-0.16 of the width, its span 0.75-0.83, its centre at 0.45-0.61
    # of the height.
    left = rng.uniform(0.11, 0.165) * w
    span = rng.uniform(0.75, 0.83) * w
    first, last = left + glyphs[0].size[0] / 2, left + span - glyphs[-1].size[0] / 2
    pitch = (last - first) / (len(glyphs) - 1)
    base = h * rng.uniform(0.47, 0.6)
    for i, g in enumerate(glyphs):
        cx = first + pitch * i + rng.uniform(-0.05, 0.05) * pitch
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
