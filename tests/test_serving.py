"""kerashw.serving: image preprocessing as TensorFlow ops, checked pixel for pixel against
kerashw's OpenCV code (what training and `kerashw predict` use)."""
import struct
import zlib

import cv2
import numpy as np
import pytest
import tensorflow as tf

from kerashw import serving
from kerashw.captcha import preprocess


@tf.function(input_signature=[tf.TensorSpec([None, None, None], tf.uint8)])
def _resize(img):
    return serving.resize_area(img, 50, 130)


@pytest.mark.parametrize("h,w", [(47, 120), (46, 127), (50, 130), (53, 140), (100, 260), (30, 200), (80, 90), (1, 1),
                                 (61, 157)])
def test_resize_is_opencvs_inter_area_within_one_level(h, w):
    """Growing (most THSR captchas are 47x120), shrinking (a true area average), one side
    each way, an exact multiple, a single pixel."""
    rng = np.random.default_rng(h * 1000 + w)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    img = cv2.GaussianBlur(img, (3, 3), 0) if min(h, w) > 2 else img  # image-like, not only noise
    want = cv2.resize(img, (130, 50), interpolation=cv2.INTER_AREA).astype(int)
    got = _resize(tf.constant(img)).numpy().astype(int)
    assert np.abs(want - got).max() <= 1, (h, w)


def _encode(img, ext):
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


def _in_graph(variant, data: bytes):
    rgb = serving.decode_rgb(tf.constant(data))
    if variant == "denoise2":
        clean = serving.median3(serving.median3(serving.gray(rgb)))[:, :, None]
        return serving.resize_area(clean, 50, 130).numpy()
    return serving.resize_area(rgb, 50, 130).numpy()


@pytest.mark.parametrize("variant", ["original", "denoise2"])
@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp"])
def test_decoding_and_variants_match_the_opencv_pipeline(variant, ext, synth_folder):
    """Bytes in, the variant's uint8 image out, as kerashw.captcha.preprocess gives it from
    cv2.imdecode of the same bytes (JPEG: the same accurate integer IDCT)."""
    worst = 0
    for path in sorted(synth_folder.glob("*.png"))[:12]:
        data = _encode(cv2.resize(cv2.imread(str(path)), (121, 47)), ext)  # THSR's size: grows to 50x130
        want = getattr(preprocess, variant)(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
        worst = max(worst, int(np.abs(want.astype(int) - _in_graph(variant, data).astype(int)).max()))
    assert worst <= 1


def test_real_captchas_match_within_one_level(thsr_path):
    worst, differing, total = 0, 0, 0
    for path in sorted(thsr_path.glob("*.jpg"))[:60]:
        data = path.read_bytes()
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        for variant in ("original", "denoise2"):
            d = np.abs(getattr(preprocess, variant)(bgr).astype(int) - _in_graph(variant, data).astype(int))
            worst, differing, total = max(worst, int(d.max())), differing + int((d > 0).sum()), total + d.size
    assert worst <= 1 and differing / total < 0.005


def _png_header(width, height):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b""))


def test_unreadable_images_are_found_from_their_header():
    one_pixel = _encode(np.zeros((1, 1, 3), np.uint8), ".png")
    cases = {b"": False, b"not an image at all": False, b"\xff\xd8": False, one_pixel: True,
             _encode(np.zeros((47, 120, 3), np.uint8), ".jpg"): True,
             _encode(np.zeros((47, 120, 3), np.uint8), ".bmp"): True,
             _png_header(40000, 40000): False}  # a header asking for 1.6 G pixels: refused, not decoded
    for data, want in cases.items():
        assert bool(serving.readable(tf.constant(data))) is want, data[:20]
