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
            browser.get(f"http://127.0.0.1:{port}/")
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

            browser.find_element(By.ID, "reset").click()
            WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "state").text == "idle")
            assert "tracking stopped" in browser.find_element(By.ID, "answer").text
        finally:
            camera_on.clear()
            g.close()
            stop_process(picker)
            picker_log.close()


def test_the_page_explains_a_refused_box(tmp_path):
    """Without a tracker the page's POST answers with the reason instead of hanging (the HTTP side, no browser)."""
    import json
    import urllib.request
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dytrack_ros.ros.target_picker", "--ros-args",
                             "-r", "__ns:=/no_tracker_here", "-p", f"port:={port}"], cwd=ROOT, env=ros_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert "target picker" in page
        req = urllib.request.Request(f"http://127.0.0.1:{port}/target", method="POST",
                                     data=json.dumps({"x": 1, "y": 2, "width": 30, "height": 40}).encode())
        answer = json.loads(urllib.request.urlopen(req, timeout=15).read())
        assert not answer["success"] and "not available" in answer["message"]
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/frame.jpg", timeout=5)   # 503: no camera frame yet
    finally:
        stop_process(proc)
