"""Preprocessing variants: pure NumPy/OpenCV on one uint8 BGR image of any size.

Each returns uint8 at 50x130 (HxW) so the on-disk cache stays small; tf.data
scales to [0, 1]. `original` keeps 3 channels, the denoise variants 1.
"""
from __future__ import annotations

import cv2
import numpy as np

from kerashw.captcha.constants import HEIGHT, WIDTH

# Bump when a variant's output changes: it is part of the preprocessing cache key.
VERSION = 1
PARAMS = {"median_ksize": 3, "arc_band": 2.5, "ransac_iters": 200}


def _resize(img: np.ndarray) -> np.ndarray:
    return cv2.resize(img, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)


def original(bgr: np.ndarray) -> np.ndarray:
    """Resize to 50x130, RGB."""
    return cv2.cvtColor(_resize(bgr), cv2.COLOR_BGR2RGB)


def _gray(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr


def remove_speckle(bgr: np.ndarray) -> np.ndarray:
    """Grey, then two 3x3 median passes: the salt-and-pepper speckle is 1-2 px,
    the strokes 3+ px, so medians remove one and keep the other (<1 ms an image)."""
    g = cv2.medianBlur(_gray(bgr), PARAMS["median_ksize"])
    return cv2.medianBlur(g, PARAMS["median_ksize"])


def binarise(gray: np.ndarray) -> np.ndarray:
    """Otsu threshold; True where ink (dark)."""
    _, ink = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    return ink > 0


def fit_arc(ink: np.ndarray, rng_seed: int = 0) -> np.ndarray | None:
    """Coefficients (a, b, c) of y = a x^2 + b x + c through the arc, or None.

    The arc is the one curve that crosses the whole width, so RANSAC samples a point
    from each third of the image and keeps the quadratic with the most ink near it
    over the most columns; a least-squares polyfit on those inliers is the answer.
    """
    ys, xs = np.nonzero(ink)
    h, w = ink.shape
    if len(xs) < 10:
        return None
    rng = np.random.default_rng(rng_seed)
    thirds = [np.flatnonzero((xs >= w * k / 3) & (xs < w * (k + 1) / 3)) for k in range(3)]
    if any(len(t) == 0 for t in thirds):
        return None
    n = PARAMS["ransac_iters"]
    # All hypotheses at once: n 3x3 Vandermonde solves, then every ink pixel against each.
    idx = np.stack([t[rng.integers(0, len(t), n)] for t in thirds], axis=1)  # (n, 3)
    px, py = xs[idx].astype(float), ys[idx].astype(float)
    vander = np.stack([px**2, px, np.ones_like(px)], axis=2)
    ok = np.abs(np.linalg.det(vander)) > 1e-6
    if not ok.any():
        return None
    coefs = np.linalg.solve(vander[ok], py[ok][:, :, None])[:, :, 0]  # (m, 3)
    fx = coefs[:, :1] * xs**2 + coefs[:, 1:2] * xs + coefs[:, 2:]  # (m, N)
    near = np.abs(fx - ys) <= PARAMS["arc_band"]
    covered = np.zeros((len(coefs), w), bool)  # columns covered: a glyph is short, the arc long
    rows, cols = np.nonzero(near)
    covered[rows, xs[cols]] = True
    best = near[int(np.argmax(covered.sum(axis=1)))]
    if best.sum() < 6:
        return None
    return np.polyfit(xs[best].astype(float), ys[best].astype(float), 2)


def remove_arc(ink: np.ndarray, coef=None) -> np.ndarray:
    """Erase a band along the fitted arc, keeping strokes that cross it.

    A band pixel stays when ink continues on both sides of the band in its column:
    that is a glyph stroke passing through, not the arc.
    """
    coef = fit_arc(ink) if coef is None else coef
    if coef is None:
        return ink.copy()
    h, w = ink.shape
    out = ink.copy()
    half = PARAMS["arc_band"] + 1
    ys = np.polyval(coef, np.arange(w))
    for x in range(w):
        top, bottom = int(np.floor(ys[x] - half)), int(np.ceil(ys[x] + half))
        if bottom < 0 or top >= h:
            continue
        above = ink[max(0, top - 2):max(0, top), x].any()
        below = ink[min(h, bottom + 1):min(h, bottom + 3), x].any()
        if not (above and below):
            out[max(0, top):min(h, bottom + 1), x] = False
    return out


def denoise(bgr: np.ndarray) -> np.ndarray:
    """Speckle removed, binarised (ink 255 on 0), arc erased; 50x130x1."""
    ink = remove_arc(binarise(remove_speckle(bgr)))
    clean = cv2.morphologyEx(ink.astype(np.uint8) * 255, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    return _resize(clean)[:, :, None]


def denoise2(bgr: np.ndarray) -> np.ndarray:
    """Speckle removed only; grey, 50x130x1."""
    return _resize(remove_speckle(bgr))[:, :, None]


PREPROCESSORS = {"original": original, "denoise": denoise, "denoise2": denoise2}
CHANNELS = {"original": 3, "denoise": 1, "denoise2": 1}


def get_preprocessor(name: str):
    try:
        return PREPROCESSORS[name]
    except KeyError:
        raise ValueError(f"Unknown preprocess {name!r}. Known: {sorted(PREPROCESSORS)}") from None
