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
    with pytest.raises(ImageConversionError, match="unsupported image encoding '32FC1'"):
        image_to_bgr(make_msg(bgr, "32FC1"))
    with pytest.raises(ImageConversionError, match="even width"):
        image_to_bgr(make_msg(bgr[:, :, :2].copy(), "yuyv"))          # 7 pixels wide: no U/V pair for the last
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


@pytest.fixture
def photo():
    """A real photo (colour edges and gradients): YUV and Bayer round trips lose detail, not colour."""
    from dytrack_ros.data.photos import load_photos
    import cv2
    return cv2.resize(load_photos("heldout")[0], (64, 48), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("encoding,code", [("yuv422", "COLOR_BGR2YUV_UYVY"), ("uyvy", "COLOR_BGR2YUV_UYVY"),
                                           ("yuv422_yuy2", "COLOR_BGR2YUV_YUY2"), ("yuyv", "COLOR_BGR2YUV_YUY2")])
def test_usb_camera_yuv422_encodings(photo, encoding, code):
    import cv2
    packed = cv2.cvtColor(photo, getattr(cv2, code))            # (h, w, 2): what the camera driver sends
    out = image_to_bgr(make_msg(packed, encoding, pad=4))
    assert out.shape == photo.shape
    assert np.abs(out.astype(int) - photo).mean() < 6           # chroma is shared by two pixels
    swapped = "yuyv" if encoding in ("yuv422", "uyvy") else "uyvy"
    assert np.abs(image_to_bgr(make_msg(packed, swapped)).astype(int) - photo).mean() > 20   # the order matters


def bayer_mosaic(bgr, pattern):
    """What a raw sensor with this colour filter (named from the top-left 2x2, as ROS does) records."""
    channel = {"r": 2, "g": 1, "b": 0}
    out = np.zeros(bgr.shape[:2], bgr.dtype)
    for i, c in enumerate(pattern):
        dy, dx = divmod(i, 2)
        out[dy::2, dx::2] = bgr[dy::2, dx::2, channel[c]]
    return out


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_encodings(photo, pattern):
    out = image_to_bgr(make_msg(bayer_mosaic(photo, pattern), f"bayer_{pattern}8"))
    err = np.abs(out.astype(int) - photo)[2:-2, 2:-2].mean()
    assert err < 12, err                                        # demosaicing blurs edges; colours stay
    wrong = {"rggb": "bggr", "bggr": "rggb", "gbrg": "grbg", "grbg": "gbrg"}[pattern]
    swapped = np.abs(image_to_bgr(make_msg(bayer_mosaic(photo, pattern), f"bayer_{wrong}8")).astype(int) - photo)
    assert swapped[2:-2, 2:-2].mean() > err + 5                 # red and blue swapped: clearly worse
    mosaic16 = bayer_mosaic(photo, pattern).astype(np.uint16) * 257
    assert np.array_equal(image_to_bgr(make_msg(mosaic16, f"bayer_{pattern}16", bigendian=True)), out)


def test_16_bit_colour(bgr):
    wide = bgr.astype(np.uint16) * 257
    assert np.array_equal(image_to_bgr(make_msg(wide, "bgr16", 2)), bgr)
    assert np.array_equal(image_to_bgr(make_msg(wide[:, :, ::-1].copy(), "rgb16", bigendian=True)), bgr)


def test_compressed_frames_are_decoded_only_when_their_pixels_are_asked_for(bgr):
    import cv2
    from dytrack_ros.ros.image_conversion import CompressedFrame
    from dytrack_ros.tools.qa import png_bomb
    sizes = []
    good = CompressedImage(format="png")
    good.data = cv2.imencode(".png", cv2.resize(bgr, (64, 48)))[1].tobytes()
    frame = CompressedFrame(good, check=lambda w, h: sizes.append((w, h)))
    assert sizes == []                                   # stored as received: nothing decoded, nothing checked
    assert frame.pixels().shape == (48, 64, 3) and frame.pixels() is frame.pixels() and sizes == [(64, 48)]
    bomb = CompressedImage(format="png")
    bomb.data = png_bomb()
    lazy = CompressedFrame(bomb, max_pixels=4096 * 4096)  # the bomb costs nothing until the worker reaches it
    for _ in range(2):
        with pytest.raises(ImageConversionError, match="gigantic size"):
            lazy.pixels()
