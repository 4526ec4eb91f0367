import numpy as np
import pytest

from dytrack_ros.tracking import InvalidBoxError, InvalidFrameError, validate_box, validate_frame
from dytrack_ros.tracking.crops import box_to_crop_units, crop_and_resize, crop_units_to_box


def test_crop_units_round_trip():
    box = np.array([100.0, 50.0, 40.0, 20.0])
    center, side = (115.0, 65.0), 120.0
    assert np.allclose(crop_units_to_box(box_to_crop_units(box, center, side), center, side), box)


def test_crop_places_the_target_where_the_units_say():
    img = np.zeros((200, 300, 3), np.uint8)
    img[80:100, 150:190] = 255                       # box (150, 80, 40, 20)
    crop = crop_and_resize(img, (170, 90), 80, 160)   # 2x zoom, target centred
    ys, xs = np.nonzero(crop[:, :, 0] > 128)
    assert abs(xs.mean() - 80) < 1.5 and abs(ys.mean() - 80) < 1.5
    assert abs((xs.max() - xs.min() + 1) - 80) <= 2


@pytest.mark.parametrize("box,reason", [
    ([10, 10, 0, 5], "positive"), ([10, 10, -3, 5], "positive"), ([np.nan, 1, 5, 5], "NaN"),
    ([1000, 1000, 10, 10], "outside"), ([1, 2, 3], "4 numbers"), ([-50, -50, 20, 20], "outside")])
def test_bad_init_boxes_are_rejected_with_a_reason(box, reason):
    with pytest.raises(InvalidBoxError, match=reason):
        validate_box(box, 640, 480)


def test_partly_outside_box_is_clipped():
    assert np.allclose(validate_box([-10, -10, 30, 30], 640, 480), [0, 0, 20, 20])


def test_bad_frames_are_rejected():
    for frame in (np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32), None, np.zeros((4, 4, 3), np.uint8)):
        with pytest.raises(InvalidFrameError):
            validate_frame(frame)
