"""sensor_msgs Image / CompressedImage <-> numpy BGR, without cv_bridge (no ROS 2 cv_bridge installs from PyPI).

Honours `step` (padded rows), `is_bigendian` and the encoding; anything unsupported or inconsistent raises
ImageConversionError with the reason, so the node can log it and drop that message.
"""
from __future__ import annotations

import cv2
import numpy as np

# encoding -> (values per pixel, dtype, OpenCV conversion to BGR or None). Names as in sensor_msgs/image_encodings.
# Bayer: ROS names the pattern from the top-left pixel, OpenCV from the second row's second pixel (cv_bridge's map).
# YUV 4:2:2: ROS "yuv422"/"uyvy" is U Y0 V Y1 (UYVY), "yuv422_yuy2"/"yuyv" is Y0 U Y1 V (YUY2): 2 bytes per pixel.
SUPPORTED = {
    "bgr8": (3, np.uint8, None),
    "rgb8": (3, np.uint8, cv2.COLOR_RGB2BGR),
    "bgra8": (4, np.uint8, cv2.COLOR_BGRA2BGR),
    "rgba8": (4, np.uint8, cv2.COLOR_RGBA2BGR),
    "mono8": (1, np.uint8, cv2.COLOR_GRAY2BGR),
    "8UC1": (1, np.uint8, cv2.COLOR_GRAY2BGR),
    "8UC3": (3, np.uint8, None),
    "bgr16": (3, np.uint16, None),
    "rgb16": (3, np.uint16, cv2.COLOR_RGB2BGR),
    "bgra16": (4, np.uint16, cv2.COLOR_BGRA2BGR),
    "rgba16": (4, np.uint16, cv2.COLOR_RGBA2BGR),
    "mono16": (1, np.uint16, cv2.COLOR_GRAY2BGR),
    "16UC1": (1, np.uint16, cv2.COLOR_GRAY2BGR),
    "yuv422": (2, np.uint8, cv2.COLOR_YUV2BGR_UYVY),
    "uyvy": (2, np.uint8, cv2.COLOR_YUV2BGR_UYVY),
    "yuv422_yuy2": (2, np.uint8, cv2.COLOR_YUV2BGR_YUY2),
    "yuyv": (2, np.uint8, cv2.COLOR_YUV2BGR_YUY2),
    **{f"bayer_{pattern}{bits}": (1, np.uint8 if bits == 8 else np.uint16, code)
       for pattern, code in (("rggb", cv2.COLOR_BayerBG2BGR), ("bggr", cv2.COLOR_BayerRG2BGR),
                             ("gbrg", cv2.COLOR_BayerGR2BGR), ("grbg", cv2.COLOR_BayerGB2BGR))
       for bits in (8, 16)},
}
PAIRED_COLUMNS = ("yuv422", "uyvy", "yuv422_yuy2", "yuyv")   # two pixels share U and V: the width must be even
MOSAIC = tuple(k for k in SUPPORTED if k.startswith("bayer_"))  # 2x2 colour pattern: width and height even


class ImageConversionError(ValueError):
    pass


def image_to_bgr(msg) -> np.ndarray:
    enc = msg.encoding
    if enc not in SUPPORTED:
        raise ImageConversionError(f"unsupported image encoding {enc!r}; supported: {', '.join(SUPPORTED)}")
    channels, dtype, conversion = SUPPORTED[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise ImageConversionError(f"empty image: {w}x{h}")
    if (enc in PAIRED_COLUMNS or enc in MOSAIC) and w % 2 or enc in MOSAIC and h % 2:
        raise ImageConversionError(f"{enc} needs an even width{' and height' if enc in MOSAIC else ''}, got {w}x{h}")
    itemsize = np.dtype(dtype).itemsize
    row_bytes = w * channels * itemsize
    if step < row_bytes:
        raise ImageConversionError(f"step {step} is smaller than width*channels*bytes = {row_bytes} ({enc}, {w}x{h})")
    data = msg.data
    buf = np.frombuffer(bytes(data) if not isinstance(data, (bytes, bytearray, memoryview, np.ndarray)) else data,
                        dtype=np.uint8)
    if buf.size < step * h:
        raise ImageConversionError(f"image data has {buf.size} bytes, expected step*height = {step * h} "
                                   f"(truncated or wrong size)")
    rows = buf[:step * h].reshape(h, step)[:, :row_bytes]          # drop row padding
    img = np.ascontiguousarray(rows).view(np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<"))
    img = img.reshape(h, w, channels) if channels > 1 else img.reshape(h, w)
    if dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0).round().astype(np.uint8)   # 16 bits -> the network's 8
    img = img.astype(img.dtype.newbyteorder("="), copy=False)
    if conversion is not None:
        img = cv2.cvtColor(np.ascontiguousarray(img), conversion)
    return np.ascontiguousarray(img)


DEFAULT_MAX_PIXELS = 8192 * 4096   # the node's max_image_pixels default (params.py takes it from here)


def declared_size(data: bytes):
    """(width, height) that a JPEG/PNG/... header declares, read without decoding the pixels (Pillow parses only
    the header on open), or None when the format is not recognised."""
    import io
    import warnings
    from PIL import Image as PILImage
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # Pillow's own bomb warning: we apply our limit below
            with PILImage.open(io.BytesIO(data)) as im:
                return im.size
    except PILImage.DecompressionBombError as exc:  # Pillow refuses past 2 x its own limit: far past ours too
        raise ImageConversionError(f"compressed image declares a gigantic size ({exc})") from exc
    except Exception:
        return None


def compressed_to_bgr(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a CompressedImage. The size its header declares is checked against max_pixels first: a few hundred
    bytes can declare 65500x65500 pixels, and decoding that would take gigabytes (or make OpenCV throw)."""
    return decode_compressed(bytes(msg.data), msg.format, max_pixels)


class CompressedFrame:
    """A CompressedImage kept as received and decoded once, when its pixels are needed: a frame that a newer one
    replaces before the tracker gets to it is never decoded (a 30 Hz JPEG camera and a 15 Hz tracker)."""

    def __init__(self, msg, max_pixels: int = DEFAULT_MAX_PIXELS, check=None):
        self.data, self.format, self.max_pixels, self.check = bytes(msg.data), msg.format, max_pixels, check
        self._pixels, self._error = None, None

    def pixels(self) -> np.ndarray:
        """The BGR image; ImageConversionError (every time) when it cannot be decoded or `check` refuses it."""
        if self._pixels is None and self._error is None:
            try:
                img = decode_compressed(self.data, self.format, self.max_pixels)
                if self.check is not None:
                    self.check(img.shape[1], img.shape[0])
                self._pixels = img
            except ImageConversionError as exc:
                self._error = exc
        if self._error is not None:
            raise self._error
        return self._pixels


def decode_compressed(raw: bytes, fmt: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    if not raw:
        raise ImageConversionError("compressed image has no data")
    size = declared_size(raw)
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageConversionError(f"compressed image declares {size[0]}x{size[1]} pixels, over the limit of "
                                   f"{max_pixels} (parameter max_image_pixels)")
    try:
        img = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ImageConversionError(f"could not decode compressed image (format {fmt!r}, {len(raw)} bytes): "
                                   f"{str(exc).strip().splitlines()[-1]}") from exc
    if img is None:
        raise ImageConversionError(f"could not decode compressed image (format {fmt!r}, {len(raw)} bytes)")
    if img.shape[0] * img.shape[1] > max_pixels:   # a format Pillow could not read ahead
        raise ImageConversionError(f"decoded image has {img.shape[1]}x{img.shape[0]} pixels, over the limit of "
                                   f"{max_pixels} (parameter max_image_pixels)")
    return img


def bgr_to_image(img: np.ndarray, header, msg_type):
    """numpy BGR -> sensor_msgs/Image (bgr8)."""
    msg = msg_type()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(img.shape[0]), int(img.shape[1])
    msg.encoding = "bgr8"
    msg.is_bigendian = 0
    msg.step = int(img.shape[1] * 3)
    msg.data = np.ascontiguousarray(img, dtype=np.uint8).tobytes()
    return msg
