"""Image preprocessing as TensorFlow ops, pixel for pixel kerashw's OpenCV code, so an
exported model can read image bytes with nothing of kerashw, OpenCV or Keras installed.

OpenCV's choices are reproduced, not approximated: JPEG decoding with the accurate integer
IDCT (what OpenCV's libjpeg uses), BGR2GRAY's fixed-point weights, medianBlur's replicated
border, and INTER_AREA, which is a true area average only when both sides shrink and
otherwise a bilinear interpolation with its own coefficients, in 11-bit fixed point.
What remains is at most 1 grey level where OpenCV's SIMD and scalar roundings differ.
"""
from __future__ import annotations

import tensorflow as tf

COEF_BITS = 11  # OpenCV's INTER_RESIZE_COEF_BITS
COEF_SCALE = 1 << COEF_BITS


def decode_rgb(data: tf.Tensor) -> tf.Tensor:
    """One encoded JPEG/PNG/BMP/GIF (a scalar string) -> uint8 HxWx3 RGB."""
    def jpeg():
        return tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")

    def other():
        return tf.io.decode_image(data, channels=3, expand_animations=False, dtype=tf.uint8)

    return tf.cond(tf.io.is_jpeg(data), jpeg, other)


def gray(rgb: tf.Tensor) -> tf.Tensor:
    """uint8 HxWx3 RGB -> uint8 HxW, as cv2.cvtColor(BGR2GRAY): (4899 R + 9617 G + 1868 B) >> 14, rounded."""
    c = tf.cast(rgb, tf.int32)
    y = c[..., 0] * 4899 + c[..., 1] * 9617 + c[..., 2] * 1868 + (1 << 13)
    return tf.cast(tf.bitwise.right_shift(y, 14), tf.uint8)


def median3(img: tf.Tensor) -> tf.Tensor:
    """uint8 HxW -> the 3x3 median, border replicated (cv2.medianBlur(img, 3))."""
    padded = tf.pad(img, [[1, 1], [1, 1]], mode="SYMMETRIC")  # a 1-pixel symmetric pad repeats the edge
    patches = tf.image.extract_patches(padded[None, :, :, None], sizes=[1, 3, 3, 1], strides=[1, 1, 1, 1],
                                       rates=[1, 1, 1, 1], padding="VALID")
    return tf.sort(patches[0], axis=-1)[:, :, 4]


def _linear_coeffs(src: tf.Tensor, dst: int):
    """INTER_AREA's source index pairs and fixed-point weights for one axis when it grows
    (OpenCV's resizeGeneric with area_mode: the scale in double, the weight in float)."""
    inv = tf.cast(dst, tf.float64) / tf.cast(src, tf.float64)
    scale = 1.0 / inv
    d = tf.range(dst, dtype=tf.float64)
    s = tf.floor(d * scale)
    f = tf.cast((d + 1.0) - (s + 1.0) * inv, tf.float32)
    f = tf.where(f <= 0.0, 0.0, f - tf.floor(f))
    s = tf.cast(s, tf.int32)
    last = src - 1
    f = tf.where(s >= last, 0.0, f)
    s = tf.minimum(s, last)
    w0 = tf.cast(tf.round((1.0 - f) * COEF_SCALE), tf.int32)
    w1 = tf.cast(tf.round(f * COEF_SCALE), tf.int32)
    return s, tf.minimum(s + 1, last), w0, w1


def resize_area(img: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """uint8 HxWxC -> uint8 height x width x C, as cv2.resize(..., INTER_AREA)."""
    h, w = tf.shape(img)[0], tf.shape(img)[1]

    def shrink():  # both sides shrink (or stay): the exact area average, rounded
        r = tf.image.resize(img, (height, width), method="area")
        return tf.cast(tf.clip_by_value(tf.round(r), 0, 255), tf.uint8)

    def grow():  # either side grows: bilinear with INTER_AREA's coefficients, fixed point
        x0, x1, ax0, ax1 = _linear_coeffs(w, width)
        y0, y1, ay0, ay1 = _linear_coeffs(h, height)
        pix = tf.cast(img, tf.int32)
        rows = tf.gather(pix, x0, axis=1) * ax0[None, :, None] + tf.gather(pix, x1, axis=1) * ax1[None, :, None]
        s0, s1 = tf.gather(rows, y0, axis=0), tf.gather(rows, y1, axis=0)
        shift = tf.bitwise.right_shift
        # OpenCV's vector path: (((S0 >> 4) * b0) >> 16) + (((S1 >> 4) * b1) >> 16), then (+2) >> 2
        v = shift(shift(s0, 4) * ay0[:, None, None], 16) + shift(shift(s1, 4) * ay1[:, None, None], 16)
        return tf.cast(tf.clip_by_value(shift(v + 2, 2), 0, 255), tf.uint8)

    return tf.cond(tf.logical_and(h >= height, w >= width), shrink, grow)


MAX_PIXELS = 16_000_000  # larger images are refused before decoding (a 40000x40000 header asks for 4.8 GB)


def _le(data, offset: int, size: int) -> tf.Tensor:
    b = tf.cast(tf.io.decode_raw(tf.strings.substr(data, offset, size), tf.uint8), tf.int64)
    return tf.reduce_sum(b * tf.constant([256 ** k for k in range(size)], tf.int64))


def _be(data, offset: int, size: int) -> tf.Tensor:
    b = tf.cast(tf.io.decode_raw(tf.strings.substr(data, offset, size), tf.uint8), tf.int64)
    return tf.reduce_sum(b * tf.constant([256 ** k for k in reversed(range(size))], tf.int64))


def readable(data: tf.Tensor) -> tf.Tensor:
    """True where a scalar string is a JPEG, PNG, BMP or GIF whose header's size is between
    1x1 and MAX_PIXELS: checked from the header alone, before anything is decoded."""
    n = tf.strings.length(data)
    magic = tf.strings.substr(data, 0, 8)

    def size_of(kind):
        if kind == "png":  # IHDR: width, height big-endian at 16
            return _be(data, 16, 4), _be(data, 20, 4)
        if kind == "bmp":  # BITMAPINFOHEADER: width, height little-endian at 18 (height may be negative)
            w, h = _le(data, 18, 4), _le(data, 22, 4)
            h = tf.where(h >= 2 ** 31, 2 ** 32 - h, h)
            return w, h
        return _le(data, 6, 2), _le(data, 8, 2)  # gif: logical screen width, height

    def ok(w, h):
        return tf.logical_and(tf.logical_and(w >= 1, h >= 1), w * h <= MAX_PIXELS)

    def jpeg():
        shape = tf.cast(tf.image.extract_jpeg_shape(data), tf.int64)
        return ok(shape[1], shape[0])

    def by_header(kind, minimum):
        return lambda: tf.logical_and(n >= minimum, ok(*size_of(kind)))

    is_png = tf.equal(magic, b"\x89PNG\r\n\x1a\n")
    is_bmp = tf.equal(tf.strings.substr(magic, 0, 2), b"BM")
    is_gif = tf.equal(tf.strings.substr(magic, 0, 4), b"GIF8")
    is_jpeg = tf.logical_and(n >= 4, tf.equal(tf.strings.substr(magic, 0, 2), b"\xff\xd8"))
    return tf.case([(is_jpeg, jpeg), (is_png, by_header("png", 24)), (is_bmp, by_header("bmp", 26)),
                    (is_gif, by_header("gif", 10))], default=lambda: tf.constant(False), exclusive=False)


def batch_inputs(images: tf.Tensor, preprocess, shape) -> tuple[tf.Tensor, tf.Tensor]:
    """A batch of encoded images -> (model inputs, valid): `preprocess` maps uint8 RGB HxWx3 to
    one float32 input of `shape`; an image that is not readable gets zeros and valid False."""
    def one(data):
        good = readable(data)
        x = tf.cond(good, lambda: preprocess(decode_rgb(data)), lambda: tf.zeros(shape, tf.float32))
        return tf.ensure_shape(x, shape), good

    return tf.map_fn(one, images, fn_output_signature=(tf.TensorSpec(shape, tf.float32), tf.TensorSpec([], tf.bool)))
