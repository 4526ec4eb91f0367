"""The browser target picker in real headless Chromium (Debian's chromium + chromium-driver, Selenium from PyPI):
a person drags a box on the live picture and the tracker starts tracking that box; Reset stops it."""
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT, SHIPPED_MODEL, ros_env
from dytrack_ros.contract import Manifest
from ros_harness import NodeProcess, RosTestGraph, stop_process

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.fail("chromium and chromium-driver are missing: scripts/setup.sh installs them (apt)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1000,800"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def picker_url(log_path, timeout=30.0):
    """The URL the picker logs at start (with its access token)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = re.search(r"target picker on (http://\S+)", open(log_path).read())
        if m:
            return m.group(1)
        time.sleep(0.1)
    raise AssertionError("the picker logged no URL: " + open(log_path).read())


PICTURE_JS = """
const img = arguments[0], c = document.createElement('canvas');
if (!img.complete || img.naturalWidth === 0) return null;   // the next picture is still loading
c.width = img.naturalWidth; c.height = img.naturalHeight;
c.getContext('2d').drawImage(img, 0, 0);
return [c.toDataURL('image/png'), stamp];
"""


def shown_picture(browser, img):
    """The picture the page shows right now, as the browser decoded it (BGR array), and the stamp the page holds for
    it (read in the same script: the page replaces the picture a few times a second)."""
    import base64
    import cv2
    import numpy as np
    end = time.monotonic() + 10.0
    shown = browser.execute_script(PICTURE_JS, img)
    while shown is None and time.monotonic() < end:     # caught between two pictures: ask again
        time.sleep(0.05)
        shown = browser.execute_script(PICTURE_JS, img)
    assert shown is not None, "the page never finished loading a picture"
    url, stamp = shown
    png = np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8)
    return cv2.imdecode(png, cv2.IMREAD_COLOR), (int(stamp[0]), int(stamp[1]))


def test_drag_a_box_in_the_browser_and_the_node_tracks_it(tmp_path, browser, heldout_sequence):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    frames, boxes = heldout_sequence
    port = free_port()
    with NodeProcess(tmp_path, params=[f"model_path:={SHIPPED_MODEL}", "backend:=onnxruntime"]) as tracker:
        picker_log = open(tmp_path / "picker.log", "w")
        picker = subprocess.Popen([sys.executable, "-m", "dytrack_ros.ros.target_picker", "--ros-args",
                                   "-r", f"__ns:={tracker.namespace}", "-p", f"port:={port}", "-p", "fps:=8.0"],
                                  cwd=ROOT, env=ros_env(), stdout=picker_log, stderr=subprocess.STDOUT)
        g = RosTestGraph(tracker.namespace)
        camera_on = threading.Event()
        camera_on.set()

        def camera():                       # a live camera: the sequence at 10 fps, looping
            i = 0
            while camera_on.is_set():
                g.image_pub.publish(g.image_msg(frames[i % len(frames)], 10**12 + i * 100_000_000))
                i += 1
                time.sleep(0.1)
        threading.Thread(target=camera, daemon=True).start()
        try:
            assert g.wait_for_subscriber(), tracker.output()
            browser.get(picker_url(tmp_path / "picker.log"))
            img = browser.find_element(By.ID, "frame")
            WebDriverWait(browser, 30).until(lambda d: d.execute_script(
                "return arguments[0].naturalWidth > 0", img)), open(tmp_path / "picker.log").read()
            assert browser.find_element(By.ID, "state").text == "idle"
            width, height = img.size["width"], img.size["height"]
            assert (width, height) == (frames[0].shape[1], frames[0].shape[0])     # shown at its own size here
            # drag around where the target is in this part of the loop (it moves a few pixels a frame)
            x, y, w, h = (float(v) for v in boxes[0])
            (ActionChains(browser)
             .move_to_element_with_offset(img, int(x - width / 2), int(y - height / 2))   # offsets from the centre
             .click_and_hold().move_by_offset(int(w), int(h)).release().perform())
            answer = WebDriverWait(browser, 15).until(
                lambda d: d.find_element(By.ID, "answer").text or None)
            assert answer.startswith("tracking: initialised on frame"), answer
            used = [float(v) for v in re.search(r"with box \[([^\]]+)\]", answer).group(1).split(",")]
            assert all(abs(a - b) <= 2.0 for a, b in zip(used, [int(x), int(y), int(w), int(h)])), (used, boxes[0])
            assert g.wait_for(lambda gr: any(m.state == m.STATE_TRACKING for m in gr.targets), 10), tracker.output()
            WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "state").text in ("tracking", "lost"))
            stage, of = browser.find_element(By.ID, "stage").text.split("/")     # "k/n": the answering stage of n
            assert 1 <= int(stage) <= int(of) and int(of) == len(Manifest.read(SHIPPED_MODEL).data["stage_graphs"])

            # what the operator sees while tracking: a live picture (it changes) with the tracker's box drawn on it
            import numpy as np
            first, _ = shown_picture(browser, img)
            WebDriverWait(browser, 10, poll_frequency=0.2).until(
                lambda d: not np.array_equal(shown_picture(d, img)[0], first)), open(tmp_path / "picker.log").read()
            picture, (sec, nanosec) = shown_picture(browser, img)
            box = next(m for m in g.targets if (m.header.stamp.sec, m.header.stamp.nanosec) == (sec, nanosec))
            assert box.state == box.STATE_TRACKING
            x0, y0, x1 = int(box.x), int(box.y), int(box.x + box.width)
            edge = picture[y0 - 1:y0 + 2, x0 + 3:x1 - 3].reshape(-1, 3).astype(int)     # the box's top edge
            green = (edge[:, 1] > 150) & (edge[:, 0] < 110) & (edge[:, 2] < 110)
            assert green.mean() > 0.3, ("no green box edge where the tracker's box is", box.x, box.y, edge[:8])

            browser.find_element(By.ID, "reset").click()
            WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "state").text == "idle")
            assert "tracking stopped" in browser.find_element(By.ID, "answer").text
        finally:
            camera_on.clear()
            g.close()
            stop_process(picker)
            picker_log.close()


@pytest.fixture(scope="module")
def lone_picker(tmp_path_factory):
    """A picker with no tracker behind it: (base URL with port, token)."""
    from urllib.parse import parse_qs, urlsplit
    log = tmp_path_factory.mktemp("picker") / "picker.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dytrack_ros.ros.target_picker", "--ros-args",
                                 "-r", "__ns:=/no_tracker_here", "-p", f"port:={free_port()}"], cwd=ROOT,
                                env=ros_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        url = urlsplit(picker_url(log))
        yield f"{url.scheme}://{url.netloc}", parse_qs(url.query)["token"][0], log
    finally:
        stop_process(proc)


def request(base, path, method="GET", body=None, headers=None, token=None):
    """(status, parsed JSON or raw bytes) of one request; token=None sends the right one in the header."""
    import http.client
    import json
    from urllib.parse import urlsplit
    conn = http.client.HTTPConnection(urlsplit(base).netloc, timeout=15)
    h = {"Content-Type": "application/json", **(headers or {})}
    if token is not False:
        h.setdefault("X-Picker-Token", token)
    conn.request(method, path, body=body, headers={k: v for k, v in h.items() if v is not None})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data


def test_the_page_explains_a_refused_box(lone_picker):
    """Without a tracker the page's POST answers with the reason instead of hanging (the HTTP side, no browser)."""
    import json
    base, token, _ = lone_picker
    status, page = request(base, f"/?token={token}", token=False)
    assert status == 200 and b"target picker" in page
    assert b"Drag a box around the target on the picture to track it" in page      # says how to pick
    status, answer = request(base, "/target", "POST", json.dumps({"x": 1, "y": 2, "width": 30, "height": 40}),
                             token=token)
    assert not answer["success"] and "not available" in answer["message"]
    assert request(base, f"/frame.jpg?token={token}", token=False)[0] == 503     # no camera frame yet


def test_the_picker_listens_on_loopback_only_by_default(lone_picker):
    _, _, log = lone_picker
    assert "http://127.0.0.1:" in open(log).read() and "all interfaces" not in open(log).read()
    port = int(re.search(r"127\.0\.0\.1:(\d+)", open(log).read()).group(1))
    others = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)} - {"127.0.0.1"}
    for address in [a for a in others if not a.startswith("127.")]:
        with socket.socket() as s, pytest.raises(OSError):
            s.settimeout(2)
            s.connect((address, port))


ABUSE = [   # (what, path, method, body, headers, token, expected status, words in the reason)
    ("no token", "/state", "GET", None, {}, False, 403, "token"),
    ("a wrong token", "/state", "GET", None, {}, "guess", 403, "token"),
    ("a set target without token", "/target", "POST", '{"x":1,"y":2,"width":3,"height":4}', {}, False, 403, "token"),
    ("a foreign Host (DNS rebinding)", "/state", "GET", None, {"Host": "evil.example"}, None, 421, "Host"),
    ("a cross-origin POST", "/reset", "POST", "{}", {"Origin": "http://evil.example"}, None, 403, "cross-origin"),
    ("a text/plain form POST", "/target", "POST", '{"x":1}', {"Content-Type": "text/plain"}, None, 415, "JSON"),
    ("a form-encoded reset", "/reset", "POST", "a=b", {"Content-Type": "application/x-www-form-urlencoded"}, None,
     415, "JSON"),
    ("Content-Length -1", "/target", "POST", "{}", {"Content-Length": "-1"}, None, 400, "Content-Length"),
    ("Content-Length abc", "/target", "POST", "{}", {"Content-Length": "abc"}, None, 400, "Content-Length"),
    ("Content-Length in Unicode digits", "/target", "POST", "{}", {"Content-Length": "\u00b2"}, None, 400,
     "Content-Length"),                                       # '²'.isdigit() is True, int('²') raises (issue 37)
    ("Content-Length of 5,000 digits", "/target", "POST", "{}", {"Content-Length": "9" * 5000}, None, 400,
     "Content-Length"),                                       # int() of over 4,300 digits raises
    ("a 10 MB body announced", "/target", "POST", "[" * 1000, {"Content-Length": "10000000"}, None, 413, "limit"),
    ("5,000-deep JSON", "/target", "POST", "[" * 5000 + "]" * 5000, {}, None, 400, "JSON"),
    ("a stamp of 1e20 s", "/target", "POST", '{"x":1,"y":2,"width":3,"height":4,"stamp":[1e20,0]}', {}, None, 400,
     "stamp"),
    ("x = 10^400", "/target", "POST", '{"x":1' + "0" * 400 + ',"y":2,"width":3,"height":4}', {}, None, 400,
     "too large"),
    ("a NaN box", "/target", "POST", '{"x":NaN,"y":2,"width":3,"height":4}', {}, None, 400, "finite"),
    ("a list for a box", "/target", "POST", "[1, 2]", {}, None, 400, "object"),
    ("an unknown action", "/shutdown", "POST", "{}", {}, None, 404, "no such action"),
]


@pytest.mark.parametrize("what,path,method,body,headers,token,status,words", ABUSE, ids=[a[0] for a in ABUSE])
def test_the_picker_refuses_with_a_reason(lone_picker, what, path, method, body, headers, token, status, words):
    base, good, log = lone_picker
    got, answer = request(base, path, method, body, headers, good if token is None else token)
    assert got == status, (what, got, answer)
    assert isinstance(answer, dict) and answer["success"] is False and words in answer["message"], answer
    assert "Traceback" not in open(log).read()


def test_half_sent_requests_are_dropped_and_many_clients_are_served(lone_picker):
    """A client that never finishes its request is cut after the request timeout; 200 clients at once all get an
    answer (no reset connections)."""
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlsplit
    base, token, _ = lone_picker
    host, port = urlsplit(base).hostname, urlsplit(base).port
    stalled = socket.create_connection((host, port))
    stalled.sendall(b"GET /state HTTP/1.1\r\nHost: 127.0.0.1\r\n")          # and nothing more
    stalled.settimeout(15)                                                        # raises if never cut
    t0 = time.monotonic()
    try:
        stalled.recv(100)                                                         # b"": the picker closed it
    except ConnectionResetError:
        pass
    assert time.monotonic() - t0 < 10
    stalled.close()
    with ThreadPoolExecutor(50) as pool:
        codes = list(pool.map(lambda _: request(base, f"/state?token={token}", token=False)[0], range(200)))
    assert codes == [200] * 200


def test_a_stalled_body_is_answered_408_and_a_client_that_hangs_up_leaves_no_traceback(lone_picker):
    """Issue 37, item 6: a body that never comes was answered 500 with the exception's text; a client gone before the
    answer printed a BrokenPipe traceback."""
    from urllib.parse import urlsplit
    base, token, log = lone_picker
    host, port = urlsplit(base).hostname, urlsplit(base).port
    with socket.create_connection((host, port)) as s:
        s.sendall(f"POST /target HTTP/1.1\r\nHost: {host}:{port}\r\nX-Picker-Token: {token}\r\nContent-Type: "
                  "application/json\r\nContent-Length: 50\r\n\r\n{".encode())          # 1 of 50 bytes
        s.settimeout(15)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.0 408") and b"did not arrive within" in answer, answer
    for _ in range(20):                                       # ask for the page and hang up at once
        with socket.create_connection((host, port)) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.sendall(f"GET /?token={token} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    assert request(base, "/state", token=token)[0] == 200
    time.sleep(0.5)
    out = open(log).read()
    assert "Traceback" not in out and "BrokenPipe" not in out and "internal error" not in out, out[-2000:]


def test_drip_fed_requests_are_cut_after_the_request_deadline(lone_picker):
    """Issue 37, item 6: 20 connections sending a byte a second without a token stayed open past 20 s (the socket
    timeout restarts with every byte)."""
    from urllib.parse import urlsplit
    base, token, log = lone_picker
    host, port = urlsplit(base).hostname, urlsplit(base).port
    request_line = f"GET /state HTTP/1.1\r\nHost: {host}:{port}\r\nX-Long: {'a' * 40}".encode()
    conns = [socket.create_connection((host, port)) for _ in range(20)]
    open_ = set(range(20))
    t0 = time.monotonic()
    for i in range(16):
        for k in list(open_):
            try:
                conns[k].sendall(request_line[i:i + 1])
                if conns[k].recv(100, socket.MSG_DONTWAIT) == b"":
                    open_.discard(k)
            except BlockingIOError:
                pass
            except OSError:
                open_.discard(k)
        if not open_:
            break
        time.sleep(1.0)
    took = time.monotonic() - t0
    for c in conns:
        c.close()
    assert not open_ and took < 14, (sorted(open_), took)
    assert request(base, "/state", token=token)[0] == 200
    assert "Traceback" not in open(log).read()
