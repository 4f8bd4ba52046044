"""Reading an image file with OpenCV, whatever its name."""
from __future__ import annotations

import numpy as np


class UnreadableImage(ValueError):
    """The file is missing, empty, corrupt, not an image OpenCV decodes, or over its limits."""


def read_bgr(path) -> np.ndarray:
    """The image at `path` as 8-bit BGR (what cv2.imread gives).

    The bytes are read by Python and decoded by cv2.imdecode: cv2.imread takes a str and
    crashes the process (segfault) on a name that is not valid UTF-8 (Python hands such
    names over with surrogate escapes); Python's open() takes any name the OS does."""
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise UnreadableImage(f"cannot open it ({exc.strerror or exc})") from None
    if data.size == 0:
        raise UnreadableImage("the file is empty")
    try:
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error as exc:  # e.g. a header over OpenCV's pixel limit
        raise UnreadableImage(f"OpenCV: {str(exc).strip().splitlines()[-1]}") from None
    if img is None:
        raise UnreadableImage("corrupt, or not a jpg/png/bmp image")
    return img


def display_name(path) -> str:
    """A path as text that can always be printed (undecodable bytes shown as \\xNN)."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
