"""sensor_msgs Image / CompressedImage <-> numpy BGR, without cv_bridge (no ROS 2 cv_bridge installs from PyPI).

Honours `step` (padded rows), `is_bigendian` and the encoding; anything unsupported or inconsistent raises
ImageConversionError with the reason, so the node can log it and drop that message.
"""
from __future__ import annotations

import cv2
import numpy as np

# encoding -> (channels, dtype, conversion to BGR or None)
SUPPORTED = {
    "bgr8": (3, np.uint8, None),
    "rgb8": (3, np.uint8, cv2.COLOR_RGB2BGR),
    "mono8": (1, np.uint8, cv2.COLOR_GRAY2BGR),
    "8UC1": (1, np.uint8, cv2.COLOR_GRAY2BGR),
    "8UC3": (3, np.uint8, None),
    "bgra8": (4, np.uint8, cv2.COLOR_BGRA2BGR),
    "rgba8": (4, np.uint8, cv2.COLOR_RGBA2BGR),
    "mono16": (1, np.uint16, cv2.COLOR_GRAY2BGR),
}


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
        img = (img.astype(np.float32) / 257.0).astype(np.uint8)   # 16-bit mono -> 8-bit for the network
    img = img.astype(img.dtype.newbyteorder("="), copy=False)
    if conversion is not None:
        img = cv2.cvtColor(img, conversion)
    return np.ascontiguousarray(img)


DEFAULT_MAX_PIXELS = 4096 * 4096


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
    raw = bytes(msg.data)
    if not raw:
        raise ImageConversionError("compressed image has no data")
    size = declared_size(raw)
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageConversionError(f"compressed image declares {size[0]}x{size[1]} pixels, over the limit of "
                                   f"{max_pixels} (parameter max_image_pixels)")
    try:
        img = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ImageConversionError(f"could not decode compressed image (format {msg.format!r}, {len(raw)} bytes): "
                                   f"{str(exc).strip().splitlines()[-1]}") from exc
    if img is None:
        raise ImageConversionError(f"could not decode compressed image (format {msg.format!r}, {len(raw)} bytes)")
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
