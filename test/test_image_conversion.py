import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from dytrack_ros.ros.image_conversion import ImageConversionError, bgr_to_image, compressed_to_bgr, image_to_bgr


def make_msg(arr, encoding, pad=0, bigendian=False):
    h, w = arr.shape[:2]
    raw = arr.astype(arr.dtype.newbyteorder(">" if bigendian else "<")).reshape(h, -1).view(np.uint8)
    rows = np.concatenate([raw, np.full((h, pad), 7, np.uint8)], 1) if pad else raw
    m = Image(height=h, width=w, encoding=encoding, is_bigendian=int(bigendian), step=rows.shape[1])
    m.data = rows.tobytes()
    return m


@pytest.fixture
def bgr():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (5, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize("pad", [0, 3])
def test_color_encodings_with_and_without_row_padding(bgr, pad):
    assert np.array_equal(image_to_bgr(make_msg(bgr, "bgr8", pad)), bgr)
    assert np.array_equal(image_to_bgr(make_msg(bgr[:, :, ::-1].copy(), "rgb8", pad)), bgr)
    alpha = np.full((5, 7, 1), 200, np.uint8)
    assert np.array_equal(image_to_bgr(make_msg(np.concatenate([bgr, alpha], 2), "bgra8", pad)), bgr)
    assert np.array_equal(image_to_bgr(make_msg(np.concatenate([bgr[:, :, ::-1], alpha], 2), "rgba8", pad)), bgr)


def test_mono_encodings_including_big_endian_16_bit(bgr):
    gray = bgr[:, :, 0].copy()
    out = image_to_bgr(make_msg(gray, "mono8", 1))
    assert out.shape == (5, 7, 3) and np.array_equal(out[:, :, 1], gray)
    g16 = gray.astype(np.uint16) * 257
    for be in (False, True):
        assert np.array_equal(image_to_bgr(make_msg(g16, "mono16", 2, bigendian=be))[:, :, 0], gray)


def test_bad_images_raise_clear_errors(bgr):
    with pytest.raises(ImageConversionError, match="unsupported image encoding 'yuv422'"):
        image_to_bgr(make_msg(bgr, "yuv422"))
    m = make_msg(bgr, "bgr8")
    m.step = 10
    with pytest.raises(ImageConversionError, match="step 10 is smaller"):
        image_to_bgr(m)
    m = make_msg(bgr, "bgr8")
    m.data = m.data[:-5]
    with pytest.raises(ImageConversionError, match="truncated"):
        image_to_bgr(m)
    with pytest.raises(ImageConversionError, match="empty"):
        image_to_bgr(Image(height=0, width=0, encoding="bgr8", step=0))


def test_compressed_round_trip_and_garbage(bgr):
    import cv2
    big = cv2.resize(bgr, (64, 48), interpolation=cv2.INTER_NEAREST)
    msg = CompressedImage(format="png")
    msg.data = cv2.imencode(".png", big)[1].tobytes()
    assert np.array_equal(compressed_to_bgr(msg), big)
    msg.data = b"not an image"
    with pytest.raises(ImageConversionError, match="could not decode"):
        compressed_to_bgr(msg)


def test_bgr_to_image_round_trip(bgr):
    assert np.array_equal(image_to_bgr(bgr_to_image(bgr, None, Image)), bgr)
