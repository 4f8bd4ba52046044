"""Preprocessing variants: pure NumPy/OpenCV on one uint8 BGR image of any size.

Each returns uint8 at 50x130 (HxW) so the on-disk cache stays small; tf.data
scales to [0, 1]. `original` keeps 3 channels, the denoise variants 1.
"""
from __future__ import annotations

import cv2
import numpy as np

from kerashw.captcha.constants import HEIGHT, WIDTH
from kerashw.config import DENOISE_VERSION

# Bump when a variant's output changes: it is part of the preprocessing cache key, and
# config.DENOISE_VERSION (in the run id) with it when denoise changes.
VERSION = DENOISE_VERSION  # 2: the arc is undone (inverted strokes filled), not only erased
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


def _run(column: np.ndarray, y: int) -> tuple[int, int]:
    """The run of equal pixels through row y of a column: (first row, last row)."""
    value, top, bottom = column[y], y, y
    while top > 0 and column[top - 1] == value:
        top -= 1
    while bottom < len(column) - 1 and column[bottom + 1] == value:
        bottom += 1
    return top, bottom


def remove_arc(ink: np.ndarray, coef=None) -> np.ndarray:
    """Undo the arc: invert it back, along its own track.

    The arc *inverts* what it crosses (ink over paper, a light gap through a stroke),
    so inverting the pixels it covers restores both, strokes that run along it too
    (the bar of a T, the top of a 5). Where the arc crosses paper its ink run of about
    the arc's thickness is found near the fitted curve; these columns give the arc's own
    centre, carried across the glyphs by linear interpolation, and there a band of the
    arc's thickness is inverted. A 3x3 median then smooths the band's edges only.
    """
    coef = fit_arc(ink) if coef is None else coef
    if coef is None:
        return ink.copy()
    h, w = ink.shape
    out = ink.copy()
    fitted = np.polyval(coef, np.arange(w))
    runs = {}
    for x in range(w):
        y = int(round(fitted[x]))
        for yy in (y, y - 1, y + 1, y - 2, y + 2):
            if 0 <= yy < h and ink[yy, x]:
                runs[x] = _run(ink[:, x], yy)
                break
    if not runs:
        return out
    thick = int(np.median([b - a + 1 for a, b in runs.values()]))
    clear = {x: (a, b) for x, (a, b) in runs.items() if b - a + 1 <= thick + 1}
    if len(clear) < w // 4:
        return out
    xs = np.array(sorted(clear))
    centre = np.interp(np.arange(w), xs, [(clear[x][0] + clear[x][1]) / 2 for x in xs])
    band = np.zeros_like(ink)
    for x in range(w):
        if x in clear:
            a, b = clear[x]
            out[a:b + 1, x] = False  # the arc over paper
            continue
        top = int(round(centre[x] - (thick - 1) / 2))
        bottom = min(top + thick - 1, h - 1)
        top = max(top, 0)
        if top > bottom:
            continue
        out[top:bottom + 1, x] = ~ink[top:bottom + 1, x]
        band[max(top - 1, 0):bottom + 2, x] = True
    smooth = cv2.medianBlur(out.astype(np.uint8) * 255, 3) > 0
    out[band] = smooth[band]
    return out


def clean_ink(bgr: np.ndarray) -> np.ndarray:
    """True where ink, at the image's own size: speckle removed, binarised, the arc undone
    (remove_arc), then a 2x2 opening drops what the medians left of the speckle."""
    ink = remove_arc(binarise(remove_speckle(bgr)))
    return cv2.morphologyEx(ink.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8)) > 0


def denoise(bgr: np.ndarray) -> np.ndarray:
    """clean_ink as ink 255 on 0, resized; 50x130x1."""
    return _resize(clean_ink(bgr).astype(np.uint8) * 255)[:, :, None]


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
