"""dytrack-ctl, the venv user's `ros2 service call` / `ros2 lifecycle set`: the README's lines, run as written
against a real node process over DDS."""
import re
import subprocess
import sys
import threading
import time

from conftest import ROOT, ros_env
from ros_harness import NodeProcess, RosTestGraph


def ctl(namespace, *words):
    run = subprocess.run([sys.executable, "-m", "dytrack_ros.ros.ctl", "--namespace", namespace, *words], cwd=ROOT,
                         env=ros_env(), capture_output=True, text=True, timeout=60)
    return run.returncode, run.stdout + run.stderr


def test_set_target_reset_state_and_lifecycle_from_the_command_line(tmp_path, tiny_bundle, heldout_sequence):
    frames, boxes = heldout_sequence
    with NodeProcess(tmp_path, params=[f"model_path:={tiny_bundle}", "backend:=onnxruntime"]) as node:
        ns = node.namespace
        g = RosTestGraph(ns)
        live = threading.Event()
        try:
            assert g.wait_for_subscriber(), node.output()
            code, out = ctl(ns, "set-target", "10", "10", "30", "30")
            assert code == 1 and "refused: no image received yet" in out, out
            live.set()

            def camera():                   # a live camera: a box without a stamp is for the newest, fresh frame
                i = 0
                while live.is_set():
                    g.image_pub.publish(g.image_msg(frames[i % 4], 10**12 + i * 100_000_000))
                    i += 1
                    time.sleep(0.1)
            threading.Thread(target=camera, daemon=True).start()
            x, y, w, h = (str(float(v)) for v in boxes[0])
            code, out = ctl(ns, "set-target", x, y, w, h)
            assert code == 0 and out.startswith("done: initialised on frame"), out
            code, out = ctl(ns, "state")
            assert code == 0 and re.search(r"lifecycle: active; tracker: (tracking|lost) box=\[", out), out
            # parameters without the ros2 CLI: the README's `param` lines
            code, out = ctl(ns, "param", "list")
            assert code == 0 and "exit_thresholds: [" in out and "model_path: " in out, out
            code, out = ctl(ns, "param", "set", "lost_threshold", "0.2")
            assert code == 0 and "done: lost_threshold set to 0.2" in out, out
            code, out = ctl(ns, "param", "get", "lost_threshold")
            assert code == 0 and out.strip() == "lost_threshold: 0.2", out
            code, out = ctl(ns, "param", "set", "lost_threshold", "7")               # out of range: the reason
            assert code == 1 and out.startswith("refused: ") and "lost_threshold" in out, out
            code, out = ctl(ns, "param", "set", "image_topic", "other")              # read at start
            assert code == 1 and "restart the node" in out, out
            code, out = ctl(ns, "param", "get", "no_such_parameter")
            assert code == 1 and "no parameter 'no_such_parameter'" in out, out
            code, out = ctl(ns, "reset")
            assert code == 0 and "done: tracking stopped" in out, out
            code, out = ctl(ns, "lifecycle", "deactivate")
            assert code == 0 and "deactivate: done; lifecycle: inactive" in out, out
            code, out = ctl(ns, "state")                          # /diagnostics goes on while inactive
            assert code == 0 and out.startswith("lifecycle: inactive; tracker: idle"), out
            code, out = ctl(ns, "lifecycle", "deactivate")                    # not from inactive
            assert code == 1 and "refused" in out, out
            code, out = ctl(ns, "lifecycle", "activate")
            assert code == 0 and "lifecycle: active" in out, out
        finally:
            live.clear()
            g.close()
    code, out = ctl("/nobody_here", "--timeout", "2", "reset")
    assert code == 2 and "not available" in out, out


def test_a_bad_node_name_or_namespace_is_one_line_and_exit_2():
    """Issue 37, item 6: `dytrack-ctl --node 'bad name!'` printed rclpy's traceback."""
    for option, value, words in (("--node", "bad name!", "node name must not contain characters"),
                                 ("--namespace", "bad ns", "namespace must not contain characters")):
        run = subprocess.run([sys.executable, "-m", "dytrack_ros.ros.ctl", option, value, "--timeout", "1", "reset"],
                             cwd=ROOT, env=ros_env(), capture_output=True, text=True, timeout=60)
        out = run.stdout + run.stderr
        assert run.returncode == 2 and len(out.strip().splitlines()) == 1, out
        assert out.startswith(f"dytrack-ctl: {option} {value!r}: Invalid ") and words in out, out
