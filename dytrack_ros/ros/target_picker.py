"""Pick the target on a live camera from a browser: a small companion node that serves one web page.

    ros2 run dytrack_ros target_picker --ros-args -p port:=8080 -p image_topic:=/camera/image_raw
    (or: python -m dytrack_ros.ros.target_picker ...), then open http://<robot>:8080 on the operator's laptop

The page shows the camera at a few frames per second with the tracker's box drawn on it (ros/messages.py, as on
~/debug_image), the state, stages run and score. Drag a box on the picture to start tracking it: the box goes to
the tracker's ~/set_target service stamped with the frame the operator saw, and the service's answer (or the exact
reason it refused) appears under the picture. "Reset" calls ~/reset. Nothing but a browser is needed on the
laptop; the HTTP server is Python's own (no extra dependency).
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

import cv2
import rclpy
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_srvs.srv import Trigger

from dytrack_ros.msg import TrackedTarget
from dytrack_ros.srv import SetTarget

from .image_conversion import ImageConversionError, compressed_to_bgr, image_to_bgr
from .messages import STATE_LABEL, draw_target

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>dytrack target picker</title>
<style>
 body { font-family: sans-serif; margin: 12px; background: #222; color: #eee; }
 #view { position: relative; display: inline-block; cursor: crosshair; user-select: none; }
 #frame { display: block; }
 #drag { position: absolute; border: 2px dashed #ff0; display: none; pointer-events: none; }
 #status span { margin-right: 1.5em; }
 button { font-size: 1em; margin: 8px 0; }
</style></head>
<body>
<div id="view"><img id="frame" alt="waiting for the camera" draggable="false"><div id="drag"></div></div>
<div><button id="reset">Reset</button></div>
<div id="status"><span>state: <b id="state">-</b></span><span>stage: <b id="stage">-</b></span>
<span>score: <b id="score">-</b></span></div>
<div id="answer"></div>
<script>
const img = document.getElementById('frame'), drag = document.getElementById('drag');
let stamp = [0, 0], start = null;
function refresh() {
  fetch('frame.jpg?t=' + Date.now()).then(r => {
    if (!r.ok) { setTimeout(refresh, 300); return; }
    const s = (r.headers.get('X-Stamp') || '0.0').split('.');
    return r.blob().then(b => {
      const url = URL.createObjectURL(b);
      img.onload = () => { URL.revokeObjectURL(url); stamp = [s[0], s[1]]; setTimeout(refresh, PERIOD_MS); };
      img.src = url;
    });
  }).catch(() => setTimeout(refresh, 500));
}
function status() {
  fetch('state').then(r => r.json()).then(s => {
    document.getElementById('state').textContent = s.state;
    document.getElementById('stage').textContent = s.num_stages ? s.stages_run + '/' + s.num_stages : '-';
    document.getElementById('score').textContent = s.state === 'idle' ? '-' : s.score.toFixed(2);
  }).finally(() => setTimeout(status, 250));
}
function imagePoint(e) {   // page pixels -> image pixels (the picture may be shown scaled)
  const r = img.getBoundingClientRect();
  return [(e.clientX - r.left) * img.naturalWidth / r.width, (e.clientY - r.top) * img.naturalHeight / r.height,
          e.clientX - r.left, e.clientY - r.top];
}
img.addEventListener('mousedown', e => { e.preventDefault(); start = imagePoint(e); start.push(stamp); });
window.addEventListener('mousemove', e => {
  if (!start) return;
  const p = imagePoint(e);
  Object.assign(drag.style, {display: 'block', left: Math.min(start[2], p[2]) + 'px', top: Math.min(start[3], p[3]) + 'px',
                             width: Math.abs(p[2] - start[2]) + 'px', height: Math.abs(p[3] - start[3]) + 'px'});
});
window.addEventListener('mouseup', e => {
  if (!start) return;
  const p = imagePoint(e), s = start; start = null; drag.style.display = 'none';
  const box = {x: Math.min(s[0], p[0]), y: Math.min(s[1], p[1]), width: Math.abs(p[0] - s[0]),
               height: Math.abs(p[1] - s[1]), stamp: s[4]};
  fetch('target', {method: 'POST', body: JSON.stringify(box)}).then(r => r.json())
    .then(a => { document.getElementById('answer').textContent = (a.success ? 'tracking: ' : 'refused: ') + a.message; });
});
document.getElementById('reset').onclick = () => fetch('reset', {method: 'POST'}).then(r => r.json())
  .then(a => { document.getElementById('answer').textContent = a.message; });
refresh(); status();
</script></body></html>
"""


class TargetPicker(Node):
    def __init__(self):
        super().__init__("dytrack_target_picker")
        self.port = int(self.declare_parameter("port", 8080).value)
        self.host = str(self.declare_parameter("host", "0.0.0.0").value)
        image_topic = str(self.declare_parameter("image_topic", "image").value)
        compressed = bool(self.declare_parameter("use_compressed", False).value)
        tracker = str(self.declare_parameter("tracker", "dytrack_tracker").value)   # the tracker node's name
        self.fps = float(self.declare_parameter("fps", 5.0).value)
        qos = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT)
        if compressed:
            self.create_subscription(CompressedImage, image_topic.rstrip("/") + "/compressed", self._on_frame, qos)
        else:
            self.create_subscription(Image, image_topic, self._on_frame, qos)
        self.create_subscription(TrackedTarget, f"{tracker}/target", self._on_target, 10)
        self.set_target = self.create_client(SetTarget, f"{tracker}/set_target")
        self.reset = self.create_client(Trigger, f"{tracker}/reset")
        self._lock = threading.Lock()
        self._frame = None             # newest raw message; decoded only when the page asks (a few times a second)
        self._target: Optional[TrackedTarget] = None

    # ---- ROS side ----------------------------------------------------------------------------------------
    def _on_frame(self, msg) -> None:
        with self._lock:
            self._frame = msg

    def _on_target(self, msg: TrackedTarget) -> None:
        with self._lock:
            self._target = msg

    def jpeg(self):
        """(JPEG bytes, 'sec.nanosec' of the frame) with the newest result drawn, or None before any frame."""
        with self._lock:
            msg, target = self._frame, self._target
        if msg is None:
            return None
        try:
            frame = compressed_to_bgr(msg) if isinstance(msg, CompressedImage) else image_to_bgr(msg)
        except ImageConversionError as exc:
            self.get_logger().error(f"cannot show a camera frame: {exc}", throttle_duration_sec=5.0)
            return None
        if target is not None:
            draw_target(frame, target)
        stamp = f"{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}"
        return cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes(), stamp

    def state(self) -> dict:
        with self._lock:
            t = self._target
        if t is None:
            return {"state": "idle", "stages_run": 0, "num_stages": 0, "score": 0.0, "box": None}
        return {"state": STATE_LABEL.get(t.state, str(t.state)), "stages_run": t.stages_run,
                "num_stages": t.num_stages, "score": t.score, "box": [t.x, t.y, t.width, t.height]}

    def call(self, client, request, timeout=8.0):
        if not client.wait_for_service(timeout_sec=2.0):
            return False, f"the tracker's {client.srv_name} service is not available (is the tracker running?)"
        future = client.call_async(request)
        end = time.monotonic() + timeout
        while not future.done() and time.monotonic() < end:
            time.sleep(0.01)
        if not future.done():
            return False, f"{client.srv_name} did not answer within {timeout:.0f} s"
        result = future.result()
        return bool(result.success), str(result.message)

    def pick(self, body: dict):
        req = SetTarget.Request()
        try:
            req.box.x, req.box.y = float(body["x"]), float(body["y"])
            req.box.width, req.box.height = float(body["width"]), float(body["height"])
            sec, nanosec = (int(v) for v in body.get("stamp", [0, 0]))
        except (KeyError, TypeError, ValueError) as exc:
            return False, f"bad request: {exc}"
        req.box.header.stamp.sec, req.box.header.stamp.nanosec = sec, nanosec   # the frame the operator saw
        return self.call(self.set_target, req)


def make_handler(picker: TargetPicker):
    class Handler(BaseHTTPRequestHandler):
        def _send(self, code, body: bytes, kind: str, headers=None):
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, obj, code=200):
            self._send(code, json.dumps(obj).encode(), "application/json")

        def do_GET(self):
            path = self.path.split("?")[0]
            if path in ("/", "/index.html"):
                page = PAGE.replace("PERIOD_MS", str(int(1000 / max(picker.fps, 0.5))))
                self._send(200, page.encode(), "text/html; charset=utf-8")
            elif path == "/frame.jpg":
                got = picker.jpeg()
                if got is None:
                    self._send(503, b"no camera frame yet", "text/plain")
                else:
                    self._send(200, got[0], "image/jpeg", {"X-Stamp": got[1]})
            elif path == "/state":
                self._json(picker.state())
            else:
                self._send(404, b"not found", "text/plain")

        def do_POST(self):
            length = min(int(self.headers.get("Content-Length") or 0), 10_000)
            raw = self.rfile.read(length) if length else b"{}"
            if self.path == "/target":
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    return self._json({"success": False, "message": "bad request: not JSON"}, 400)
                ok, message = picker.pick(body if isinstance(body, dict) else {})
                self._json({"success": ok, "message": message})
            elif self.path == "/reset":
                ok, message = picker.call(picker.reset, Trigger.Request())
                self._json({"success": ok, "message": message})
            else:
                self._send(404, b"not found", "text/plain")

        def log_message(self, fmt, *args):   # keep the node's console for ROS logs
            pass

    return Handler


def main(args=None):
    rclpy.init(args=args)
    picker = TargetPicker()
    try:
        server = ThreadingHTTPServer((picker.host, picker.port), make_handler(picker))
    except OSError as exc:
        picker.get_logger().error(f"cannot serve on {picker.host}:{picker.port}: {exc}")
        raise SystemExit(2)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    picker.get_logger().info(f"target picker on http://{picker.host}:{server.server_address[1]}/")
    try:
        rclpy.spin(picker)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        server.shutdown()
        picker.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
