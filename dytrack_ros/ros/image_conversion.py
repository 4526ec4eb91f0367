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


def compressed_to_bgr(msg) -> np.ndarray:
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if data.size == 0:
        raise ImageConversionError("compressed image has no data")
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise ImageConversionError(f"could not decode compressed image (format {msg.format!r}, {data.size} bytes)")
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
