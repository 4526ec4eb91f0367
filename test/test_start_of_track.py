"""Starting a track on a node that still holds an earlier stream's frames (issue 36): `play_video --init-box` on a new
video either sets its target on its own first frame or exits non-zero with the node's reason, and the node never
keeps a target the player did not set. Real node process, real DDS (best-effort images, as a camera sends them);
the player runs in this process (its main(), as the command runs it) to spare 20 interpreter start-ups."""
import re

import pytest

from conftest import SHIPPED_MODEL
from ros_harness import NodeProcess, RosTestGraph

TAKEN = re.compile(r"init box taken: initialised on frame (\d+\.\d+)")


def write_clip(path, frames, scale=1.0):
    import cv2
    frames = [cv2.resize(f, None, fx=scale, fy=scale) for f in frames] if scale != 1.0 else frames
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, frames[0].shape[1::-1])
    for f in frames:
        writer.write(f)
    writer.release()
    return str(path)


def play(capsys, namespace, clip, box):
    """Run play_video on `clip` with `box`: (exit code, its output)."""
    from dytrack_ros.ros import play_video
    args = ["--namespace", namespace, "--video", clip, "--rate", "15", "--init-box", *map(str, box),
            "--print-results", "--wait-timeout", "20", "--linger", "0.5"]
    try:
        play_video.main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        print(exc.code)
    return code, capsys.readouterr().out


def alternate_streams(tmp_path, capsys, demo_walker, runs):
    """Stream the demo clip, then a half-size clip of it, `runs` times alternately: each run's box is set on that
    run's first frame (or the run fails with the reason and the node is left without a target)."""
    frames, init, _ = demo_walker
    clips = [(write_clip(tmp_path / "full.avi", frames[:4]), list(init)),
             (write_clip(tmp_path / "half.avi", frames[:4], 0.5), [v / 2 for v in init])]
    with NodeProcess(tmp_path, params=[f"model_path:={SHIPPED_MODEL}", "backend:=onnxruntime"]) as node:
        g = RosTestGraph(node.namespace)
        try:
            assert g.wait_for_subscriber(), node.output()
            for run in range(runs):
                clip, box = clips[run % 2]
                code, out = play(capsys, node.namespace, clip, box)
                taken = TAKEN.search(out)
                if code == 0:
                    # its own first frame, and results for its own frames came back
                    assert taken and re.search(r"frame [123] t=\S+ box=.* state=(tracking|lost)", out), (run, out)
                    assert node.wait_for_output(f"initialised on frame {taken.group(1)}", 5), node.output()
                else:            # the true reason, and no target left on the node
                    assert "the init box was not set: " in out and not taken, (run, out)
                    assert g.wait_for(lambda gr: gr.targets and gr.targets[-1].state == 0, 5), (run, out)
                    print(f"run {run}: refused: {out.splitlines()[-1]}")
            assert node.output().count("new image stream (image size") >= runs - 1, node.output()
            assert node.proc.poll() is None
        finally:
            g.close()


def test_a_new_stream_gets_its_own_target_or_a_reason(tmp_path, capsys, demo_walker):
    alternate_streams(tmp_path, capsys, demo_walker, runs=4)


@pytest.mark.slow
def test_a_new_stream_gets_its_own_target_or_a_reason_20_times(tmp_path, capsys, demo_walker):
    alternate_streams(tmp_path, capsys, demo_walker, runs=20)


def test_no_tracker_is_a_clear_failure_not_a_success(tmp_path, capsys, demo_walker):
    frames, init, _ = demo_walker
    clip = write_clip(tmp_path / "clip.avi", frames[:2])
    from dytrack_ros.ros import play_video
    with pytest.raises(SystemExit) as exc:
        play_video.main(["--namespace", "/nobody_here", "--video", clip, "--init-box", *map(str, init),
                         "--wait-timeout", "0.5", "--init-timeout", "1"])
    assert "the init box was not set: no service /nobody_here/dytrack_tracker/set_target" in str(exc.value.code)
