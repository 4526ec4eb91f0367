import os
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Keep DDS traffic on this machine and away from other test runs.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", os.path.join(ROOT, "config", "fastdds_large_data.xml"))

SHIPPED_MODEL = os.path.join(ROOT, "models", "dytrack_small")


def tiny_config(**overrides):
    from dytrack_ros.model import ModelConfig
    kw = dict(dim=64, heads=2, depth=3, stage_ends=(1, 2, 3), head_channels=32, mlp_ratio=2.0)
    kw.update(overrides)
    return ModelConfig(**kw)


def real_crops(model, seed):
    """Template and search crops cut from a real photo (held-out set), as the network's input tensors."""
    from dytrack_ros.backends.export import example_inputs
    from dytrack_ros.data.photos import load_photos
    photos = load_photos("heldout")
    return example_inputs(model, photos[seed % len(photos)])


@pytest.fixture(scope="session")
def heldout_photos():
    from dytrack_ros.data.photos import load_photos
    return load_photos("heldout")


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A real DyTrack (small config, pretrained stem, freshly initialised transformer) exported like a release."""
    import torch
    from dytrack_ros.backends.export import export_model
    from dytrack_ros.model import DyTrackNet, save_checkpoint
    torch.manual_seed(0)
    model = DyTrackNet(tiny_config()).eval()
    out = str(tmp_path_factory.mktemp("tiny_bundle"))
    save_checkpoint(os.path.join(out, "model.pt"), model)     # first: the manifest seals it with the graphs
    export_model(model, out)
    return out


def _first_exit_bundle(tmp_path_factory, exit_head: str) -> str:
    import torch
    from dytrack_ros.backends.export import export_model
    from dytrack_ros.model import DyTrackNet, save_checkpoint
    torch.manual_seed(0)
    cfg = tiny_config(stem="nanotrack_v2", first_exit="nanotrack_v2", template_size=128, search_size=256,
                      stem_channels=48, depth=2, stage_ends=(1, 2), exit_head=exit_head)
    model = DyTrackNet(cfg).eval()
    if exit_head == "refine":   # untrained refining heads copy the first exit's boxes: give them something to add
        for head in model.exit_heads:
            torch.nn.init.normal_(head.delta.weight, std=0.05)
    out = str(tmp_path_factory.mktemp(f"tiny_first_exit_{exit_head}_bundle"))
    save_checkpoint(os.path.join(out, "model.pt"), model)
    export_model(model, out)
    return out


@pytest.fixture(scope="session")
def tiny_first_exit_bundle(tmp_path_factory):
    """The shipped design, small: NanoTrack v2's stem and head as the first exit (published weights, shipped under
    models/third_party), then two small transformer stages (freshly initialised), exported like a release."""
    return _first_exit_bundle(tmp_path_factory, "centre")


@pytest.fixture(scope="session")
def tiny_refine_bundle(tmp_path_factory):
    """The same with refining exits (exit_head 'refine'): the first exit's maps travel in the carry."""
    return _first_exit_bundle(tmp_path_factory, "refine")


@pytest.fixture(scope="session")
def heldout_sequence(heldout_photos):
    from dytrack_ros.data.synthetic import SequenceSpec, make_sequence
    return make_sequence(heldout_photos, seed=12345, spec=SequenceSpec(length=40, distractors=0, occlusion=False))


def ros_env():
    """Environment for node subprocesses: the repo importable, large-frame Fast DDS profile on."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["FASTDDS_DEFAULT_PROFILES_FILE"] = os.path.join(ROOT, "config", "fastdds_large_data.xml")
    env["PYTHONUNBUFFERED"] = "1"
    # the node remembers its last reset under $ROS_HOME/dytrack_ros: keep test nodes' memory out of ~/.ros
    env["ROS_HOME"] = os.path.join(tempfile.gettempdir(), f"dytrack-test-ros-home-{os.getpid()}")
    return env


# vtest.avi (Debian opencv-doc, the demo video), the man walking in from the right: reference boxes where NanoTrack
# v2 and CSRT agree (IoU 0.69-0.84 between them, their mean; checked by eye in benchmarks/demo_montage.png).
DEMO_INIT = [638, 238, 48, 86]
DEMO_REFERENCE = {5: [593.5, 241.5, 43.5, 78.5], 10: [540.5, 236, 46.5, 88],
                  15: [486, 231.5, 44.5, 89], 20: [434, 230, 45, 89.5]}


@pytest.fixture(scope="session")
def demo_walker():
    """The demo's first 21 frames (real video) with the init box and the reference boxes above."""
    import cv2
    from dytrack_ros.data.photos import data_dir
    cap = cv2.VideoCapture(os.path.join(data_dir(), "vtest.avi"))
    frames = [cap.read()[1] for _ in range(21)]
    assert all(f is not None for f in frames), "vtest.avi missing: run scripts/fetch_data.sh"
    return frames, DEMO_INIT, DEMO_REFERENCE
