"""Pick the target on a live camera from a browser: a small companion node that serves one web page.

    ros2 run dytrack_ros target_picker --ros-args -p port:=8080 -p image_topic:=/camera/image_raw
    (or: python -m dytrack_ros.ros.target_picker ...), then open the URL it logs (with its access token)

The page shows the camera at a few frames per second with the tracker's box drawn on it (ros/messages.py, as on
~/debug_image), the state, stages run and score. Drag a box on the picture to start tracking it: the box goes to
the tracker's ~/set_target service stamped with the frame the operator saw, and the service's answer (or the exact
reason it refused) appears under the picture. "Reset" calls ~/reset. Nothing but a browser is needed on the
laptop; the HTTP server is Python's own (no extra dependency).

Safe by default, because whoever reaches the page steers the robot: it listens on 127.0.0.1 (reach it from a laptop
through `ssh -L 8080:127.0.0.1:8080 robot`; `host:=0.0.0.0` exposes it on purpose), every request must carry the
access token made at each start (logged in the URL to open; parameter `token` fixes one), requests whose Host is not
the picker's own address (DNS rebinding), whose Origin is another site's, or whose body is not JSON are refused,
bodies are capped at 10 kB and every connection at 5 s, and every malformed request gets a 4xx answer with the reason.
"""
from __future__ import annotations

import json
import math
import secrets
import socket
import threading
import time
from collections import deque
from urllib.parse import parse_qs, urlsplit
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
<p id="help">Drag a box around the target on the picture to track it (the tracker's answer shows below);
Reset stops tracking.</p>
<div id="view"><img id="frame" alt="waiting for the camera" draggable="false"><div id="drag"></div></div>
<div><button id="reset">Reset</button></div>
<div id="status"><span>state: <b id="state">-</b></span><span>stage: <b id="stage">-</b></span>
<span>score: <b id="score">-</b></span></div>
<div id="answer"></div>
<script>
const img = document.getElementById('frame'), drag = document.getElementById('drag');
const TOKEN = new URLSearchParams(location.search).get('token') || '';
const POST = body => ({method: 'POST', body: JSON.stringify(body),
                       headers: {'Content-Type': 'application/json', 'X-Picker-Token': TOKEN}});
let stamp = [0, 0], start = null;
function refresh() {
  fetch('frame.jpg?t=' + Date.now() + '&token=' + encodeURIComponent(TOKEN)).then(r => {
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
  fetch('state?token=' + encodeURIComponent(TOKEN)).then(r => r.json()).then(s => {
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
  fetch('target', POST(box)).then(r => r.json())
    .then(a => { document.getElementById('answer').textContent = (a.success ? 'tracking: ' : 'refused: ') + a.message; });
});
document.getElementById('reset').onclick = () => fetch('reset', POST({})).then(r => r.json())
  .then(a => { document.getElementById('answer').textContent = a.message; });
refresh(); status();
</script></body></html>
"""


class TargetPicker(Node):
    def __init__(self):
        super().__init__("dytrack_target_picker")
        self.port = int(self.declare_parameter("port", 8080).value)
        self.host = str(self.declare_parameter("host", "127.0.0.1").value)
        # the access token every request carries: a fresh one at each start unless the operator fixes one
        self.token = str(self.declare_parameter("token", "").value) or secrets.token_urlsafe(16)
        # extra Host names the page may be reached by (e.g. the robot's name when host:=0.0.0.0)
        self.allowed_hosts = [str(h) for h in self.declare_parameter("allowed_hosts", [""]).value if h]
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
        # the newest raw frames (decoded only when the page asks, a few times a second): the box is drawn on the frame
        # it was found in, not on a newer one it has not been computed for
        self._frames = deque(maxlen=16)
        self._targets = deque(maxlen=16)   # the newest results, to find one whose frame is still here

    # ---- ROS side ----------------------------------------------------------------------------------------
    def _on_frame(self, msg) -> None:
        with self._lock:
            self._frames.append(msg)

    def _on_target(self, msg: TrackedTarget) -> None:
        with self._lock:
            self._targets.append(msg)

    @property
    def _target(self) -> Optional[TrackedTarget]:
        return self._targets[-1] if self._targets else None

    def jpeg(self):
        """(JPEG bytes, 'sec.nanosec' of the frame) with the newest result drawn, or None before any frame."""
        with self._lock:
            frames, targets = list(self._frames), list(self._targets)
        if not frames:
            return None
        # the newest result whose frame is here (the picker may have missed a frame: best effort), else the newest
        by_stamp = {(f.header.stamp.sec, f.header.stamp.nanosec): f for f in frames}
        pair = next(((by_stamp[k], t) for t in reversed(targets)
                     if (k := (t.header.stamp.sec, t.header.stamp.nanosec)) in by_stamp), None)
        msg, target = pair or (frames[-1], targets[-1] if targets else None)
        try:
            frame = compressed_to_bgr(msg) if isinstance(msg, CompressedImage) else image_to_bgr(msg)
        except ImageConversionError as exc:
            self.get_logger().error(f"cannot show a camera frame: {exc}", throttle_duration_sec=5.0)
            return None
        if target is not None:
            frame = frame.copy()   # a bgr8 frame is a read-only view of the message buffer
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
            box = parse_box(body)
        except ValueError as exc:
            return False, f"bad request: {exc}"
        req.box.x, req.box.y, req.box.width, req.box.height = box[:4]
        req.box.header.stamp.sec, req.box.header.stamp.nanosec = box[4:]   # the frame the operator saw
        return self.call(self.set_target, req)


def parse_box(body) -> tuple:
    """(x, y, width, height, sec, nanosec) from the page's JSON, or ValueError with the reason."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    values = []
    for key in ("x", "y", "width", "height"):
        v = body.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{key} must be a number, got {v!r:.40}")
        try:
            v = float(v)
        except OverflowError:
            raise ValueError(f"{key} is too large") from None
        if not math.isfinite(v) or abs(v) > 1e6:
            raise ValueError(f"{key} must be a finite number of pixels, got {v:g}")
        values.append(v)
    stamp = body.get("stamp", [0, 0])
    try:
        sec, nanosec = (int(v) for v in stamp)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"stamp must be [sec, nanosec], got {stamp!r:.40}") from None
    if not (0 <= sec < 2**31 and 0 <= nanosec < 10**9):
        raise ValueError(f"stamp [{sec}, {nanosec}] is out of range (sec 0..2^31-1, nanosec 0..999999999)")
    return (*values, sec, nanosec)


MAX_BODY = 10_000
REQUEST_TIMEOUT_S = 5.0       # of silence while a request is read
REQUEST_DEADLINE_S = 10.0     # to send a whole request (line, headers, body): a byte every few seconds is cut too


class Refused(Exception):
    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


def make_handler(picker: TargetPicker, port: int):
    own_hosts = {f"{h}:{port}" for h in ["127.0.0.1", "localhost", "[::1]", picker.host] + picker.allowed_hosts}

    class Handler(BaseHTTPRequestHandler):
        timeout = REQUEST_TIMEOUT_S   # a client that sends half a request is dropped, not waited for

        def _send(self, code, body: bytes, kind: str, headers=None):
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, obj, code=200):
            self._send(code, json.dumps(obj).encode(), "application/json")

        def _check(self, post: bool) -> None:
            """Refuses what the picker must not serve: another Host (DNS rebinding), no or a wrong token, a
            cross-origin or non-JSON POST."""
            if self.headers.get("Host", "") not in own_hosts:
                raise Refused(421, f"unknown Host {self.headers.get('Host', '')!r:.80}: open the picker by the "
                                   "address it logs (add names with the allowed_hosts parameter)")
            query = parse_qs(urlsplit(self.path).query)
            token = self.headers.get("X-Picker-Token") or (query.get("token") or [""])[0]
            if not secrets.compare_digest(token.encode(), picker.token.encode()):
                raise Refused(403, "missing or wrong access token: open the URL the picker logs")
            if post:
                origin = self.headers.get("Origin")
                if origin is not None and urlsplit(origin).netloc != self.headers.get("Host"):
                    raise Refused(403, f"cross-origin request from {origin!r:.80} refused")
                if self.headers.get("Content-Type", "").split(";")[0].strip().lower() != "application/json":
                    raise Refused(415, "the body must be JSON (Content-Type: application/json)")

        def _body(self) -> dict:
            raw_length = self.headers.get("Content-Length")
            if raw_length is None:
                raise Refused(411, "Content-Length is required")
            digits = raw_length.strip()
            # ASCII digits only: str.isdigit() takes '²' and Arabic digits, and int() of 5,000 digits raises
            if not (digits.isascii() and digits.isdigit()) or len(digits) > 18:
                raise Refused(400, f"bad Content-Length {raw_length!r:.40}" + (f" ({len(digits)} characters)"
                                                                                if len(digits) > 40 else ""))
            length = int(digits)
            if length > MAX_BODY:
                raise Refused(413, f"body of {length} bytes is over the {MAX_BODY} byte limit")
            try:
                raw = self.rfile.read(length)
            except TimeoutError:
                raise Refused(408, f"the body did not arrive within {REQUEST_TIMEOUT_S:g} s") from None
            self._request_read()
            if len(raw) < length:
                raise Refused(400, f"the body ended after {len(raw)} of {length} bytes (Content-Length)")
            try:
                return json.loads(raw or b"{}")
            except (ValueError, RecursionError):
                raise Refused(400, "the body is not valid JSON") from None

        def _answer(self, post: bool) -> None:
            if not post:
                self._request_read()
            try:
                self._check(post)
                (self._post if post else self._get)(urlsplit(self.path).path)
            except Refused as exc:
                self._json({"success": False, "message": f"refused: {exc.reason}"}, exc.code)
            except (ConnectionError, TimeoutError):   # the client went away or stalled: nobody to answer
                raise
            except Exception as exc:   # whatever else goes wrong, the client hears why and the picker goes on
                picker.get_logger().error(f"picker request {self.command} {self.path[:80]!r} failed: {exc!r}")
                self._json({"success": False, "message": f"internal error: {exc!r:.200}"}, 500)

        def handle(self):
            try:
                super().handle()
            except (ConnectionError, TimeoutError):   # a client that hung up mid-answer is no error (no traceback)
                self.close_connection = True

        def handle_one_request(self):
            """Each request must arrive whole within REQUEST_DEADLINE_S (the socket timeout alone lets a client that
            drip-feeds a byte every few seconds hold a connection for ever): past it the connection is cut."""
            self._deadline = threading.Timer(REQUEST_DEADLINE_S, self._cut)
            self._deadline.daemon = True
            self._deadline.start()
            try:
                super().handle_one_request()
            finally:
                self._deadline.cancel()

        def _cut(self):
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def _request_read(self):
            self._deadline.cancel()                  # what follows is the picker's own work and answer

        def do_GET(self):
            self._answer(post=False)

        def do_POST(self):
            self._answer(post=True)

        def _get(self, path):
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

        def _post(self, path):
            if path not in ("/target", "/reset"):
                raise Refused(404, f"no such action {path!r:.40}")
            body = self._body()
            if path == "/target":
                ok, message = picker.pick(body)
                self._json({"success": ok, "message": message}, 200 if ok or not message.startswith("bad request")
                           else 400)
            else:
                ok, message = picker.call(picker.reset, Trigger.Request())
                self._json({"success": ok, "message": message})

        def log_message(self, fmt, *args):   # keep the node's console for ROS logs
            pass

    return Handler


class PickerServer(ThreadingHTTPServer):
    request_queue_size = 64   # the default 5 reset connections of a browser plus a few tools
    daemon_threads = True


def main(args=None):
    rclpy.init(args=args)
    picker = TargetPicker()
    try:
        server = PickerServer((picker.host, picker.port), None)
    except OSError as exc:
        picker.get_logger().error(f"cannot serve on {picker.host}:{picker.port}: {exc}")
        raise SystemExit(2)
    port = server.server_address[1]
    server.RequestHandlerClass = make_handler(picker, port)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    shown = "127.0.0.1" if picker.host in ("0.0.0.0", "::") else picker.host
    picker.get_logger().info(f"target picker on http://{shown}:{port}/?token={picker.token}"
                             + (f" (listening on all interfaces: {picker.host})" if shown != picker.host else ""))
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
