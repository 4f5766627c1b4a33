"""Debug views against a real visdom server (``python -m visdom.server`` on a free loopback port): the real
OSTrack tracker's views on a real OTB sequence, and, for the UI tests (pixel-exact crops, pause, step), a
small template-matching stand-in tracker that shows OSTrack's views and keeps what it showed;
UI events (pause, step, Block List) sent through the server the way the web page sends them; the page
rendered by headless Chromium; and the fall-back to PNG files when the server goes away.

The tests of this module share one server and run in file order (the last one stops the server).
"""

import base64
import json
import os
import subprocess
import sys
import threading
import time
import warnings

import cv2
import numpy as np
import pytest

from lib.test.utils.debug import DebugViewWarning, VisdomDebugSink, _WARNED, make_debug_sink, probe_visdom
from lib.vis.visdom_assets import assets_ok
from tests.conftest import free_port, need_shared
from tests.debug_standin import OSTRACK_VIEWS, StandInOSTrack, couple_sequence, params, run_frames

CHROMIUM = "/usr/bin/chromium"
ENV = "main"


@pytest.fixture(scope="module")
def couple():
    return couple_sequence(need_shared("data", "otb", "Couple"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``python -m visdom.server`` on a free port (its offline assets installed by tracking/visdom_assets.py).
    Without verified assets, the server's own start-up would try to download them, so it is started
    through ``run_server.main`` (same server, no download step) and the browser test skips."""
    port = free_port()
    env_dir = tmp_path_factory.mktemp("visdom_env")
    offline_page = assets_ok(check_start=False)
    args = ["-port", str(port), "-env_path", str(env_dir), "-bind_local", "-logging_level", "WARNING"]
    if offline_page:
        cmd = [sys.executable, "-m", "visdom.server"] + args
    else:
        cmd = [sys.executable, "-c", "from visdom.server.run_server import main; main()"] + args
    log = open(env_dir / "server.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=str(env_dir))
    deadline = time.monotonic() + 45
    while probe_visdom("127.0.0.1", port, timeout_s=0.2) is not None:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"visdom server did not start: {(env_dir / 'server.log').read_text()[-2000:]}")
        time.sleep(0.1)
    info = {"port": port, "proc": proc, "offline_page": offline_page, "env_dir": env_dir}
    yield info
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=10)
    log.close()


def _windows(sink):
    return json.loads(sink.vis.get_window_data(env=ENV))


def _decode_png(src: str) -> np.ndarray:
    assert src.startswith("data:image/png;base64,")
    buf = np.frombuffer(base64.b64decode(src.split(",", 1)[1]), np.uint8)
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _color_pixels(rgb, color, tol=40):
    return int(np.all(np.abs(rgb.astype(int) - np.array(color)) <= tol, axis=-1).sum())


def _wait(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


class _Page:
    """A websocket to the server's /socket, as the visdom web page opens it: events go through the
    server to the Python client's /vis_socket (``forward_to_vis``)."""

    def __init__(self, port):
        import websocket

        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}/socket", timeout=10)

    def send_event(self, target, **event):
        packet = dict(event, target=target, eid=ENV, pane_data=False)
        self.ws.send(json.dumps({"cmd": "forward_to_vis", "data": packet}))

    def key(self, key):
        self.send_event("Tracking", event_type="KeyPress", key=key)

    def close(self):
        self.ws.close()


@pytest.fixture(scope="module")
def run_state(couple, server):
    """The stand-in tracker run over frames 0..7 of Couple with --debug 1 (shared by the tests below)."""
    frames, gt = couple
    sink = make_debug_sink(1, "standin", "standin", "Couple", visdom_port=server["port"], strict=True)
    assert isinstance(sink, VisdomDebugSink), "a running server must give the visdom backend"
    tracker = StandInOSTrack(params(1))
    tracker.debug_sink = sink
    run_frames(tracker, frames, gt, 0, 8)
    return {"sink": sink, "tracker": tracker, "frames": frames, "gt": gt}


def test_views_reach_the_server(run_state):
    sink, tracker, gt = run_state["sink"], run_state["tracker"], run_state["gt"]
    wins = _windows(sink)
    for title in OSTRACK_VIEWS + ("block_list", "Help"):
        assert title in wins, f"window '{title}' missing; server has {sorted(wins)}"
    assert "Status" not in wins, "a level-2 block must stay hidden at --debug 1"
    assert sink.frame == 8

    # the crops arrive pixel for pixel (PNG is lossless)
    np.testing.assert_array_equal(_decode_png(wins["template"]["content"]["src"]), tracker.z_patch)
    np.testing.assert_array_equal(_decode_png(wins["search_region"]["content"]["src"]), tracker.x_patch)

    # the frame at full size (320x240 < 480) with the ground truth in green and the prediction in red
    frame = _decode_png(wins["Tracking"]["content"]["src"])
    assert frame.shape == (240, 320, 3)
    x, y, w, h = (int(round(v)) for v in gt[7])
    assert _color_pixels(frame[y - 1:y + 2, x:x + w], (0, 255, 0), tol=60) >= w // 2  # top edge of the GT box
    assert _color_pixels(frame, (255, 0, 0), tol=60) > 2 * (tracker.state[2] + tracker.state[3])
    assert "Couple" in wins["Tracking"]["content"]["caption"]

    # heatmaps: the last score maps, row 0 drawn on top (plotly's origin is at the bottom)
    for title, data in (("score_map", tracker.score_map), ("score_map_hann", tracker.score_map_hann)):
        trace = wins[title]["content"]["data"][0]
        assert trace["type"] == "heatmap"
        np.testing.assert_allclose(np.array(trace["z"], dtype=np.float64), np.flipud(data), rtol=1e-6, atol=1e-7)

    names = {e["name"]: e["value"] for e in wins["block_list"]["content"]}
    assert names == {"Help": True, "template": True, "search_region": True, "score_map": True,
                     "score_map_hann": True, "Status": False}


def test_space_pauses_and_right_arrow_steps(run_state, server):
    sink, tracker, frames, gt = (run_state[k] for k in ("sink", "tracker", "frames", "gt"))
    page = _Page(server["port"])
    try:
        page.key(" ")
        assert _wait(lambda: sink.paused), "space on the Tracking window must pause"
        frame0 = sink.frame
        worker = threading.Thread(target=run_frames, args=(tracker, frames, gt, 8, 9), daemon=True)
        worker.start()
        worker.join(1.0)
        assert worker.is_alive(), "frame_done must wait while paused"
        assert sink.frame == frame0
        page.key("ArrowRight")
        worker.join(15)
        assert not worker.is_alive(), "the right arrow must release exactly one frame"
        assert sink.frame == frame0 + 1 and sink.paused
        page.key(" ")
        assert _wait(lambda: not sink.paused), "a second space resumes"
        run_frames(tracker, frames, gt, 9, 10)  # runs through
        assert sink.frame == frame0 + 2
    finally:
        page.close()


def test_block_list_shows_and_hides_blocks(run_state, server):
    sink = run_state["sink"]
    names = [e["name"] for e in sink.block_list]
    page = _Page(server["port"])
    try:
        page.send_event("block_list", event_type="PropertyUpdate", propertyId=names.index("Status"), value=True)
        assert _wait(lambda: "Status" in _windows(sink)), "ticking a hidden block must show it"
        text = _windows(sink)["Status"]["content"]
        assert "max score" in text and "frame" in text
        page.send_event("block_list", event_type="PropertyUpdate", propertyId=names.index("template"), value=False)
        assert _wait(lambda: "template" not in _windows(sink)), "unticking a block must close its window"
        assert {e["name"]: e["value"] for e in _windows(sink)["block_list"]["content"]}["template"] is False
        # back to the --debug 1 state for the browser test
        page.send_event("block_list", event_type="PropertyUpdate", propertyId=names.index("template"), value=True)
        page.send_event("block_list", event_type="PropertyUpdate", propertyId=names.index("Status"), value=False)
        assert _wait(lambda: "template" in _windows(sink) and "Status" not in _windows(sink))
    finally:
        page.close()


_PAGE_STATE_JS = """(() => {
  const imgs = Array.from(document.querySelectorAll('img.content-image'));
  return {titles: Array.from(document.querySelectorAll('div.pull-right')).map(e => e.textContent.trim()),
          images: imgs.length, images_loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
          heatmaps: document.querySelectorAll('g.heatmaplayer image').length};
})()"""


def test_browser_renders_the_debug_windows(run_state, server, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent (install Debian's chromium, e.g. bash install.sh --with-chromium)")
    if not server["offline_page"]:
        pytest.skip("visdom's web assets are not installed (python tracking/visdom_assets.py), so the page "
                    "cannot load offline")
    from tests.chromium_cdp import HeadlessChromium

    expected = set(OSTRACK_VIEWS) | {"Block List", "Help"}
    ready = (f"(() => {{ const s = {_PAGE_STATE_JS}; const want = {json.dumps(sorted(expected))};"
             " return want.every(t => s.titles.includes(t)) && s.images_loaded >= 3 && s.heatmaps >= 2; })()")
    with HeadlessChromium(f"http://127.0.0.1:{server['port']}/", tmp_path / "profile") as page:
        rendered = page.wait_for(ready, timeout_s=45)
        state = page.evaluate(_PAGE_STATE_JS)
        shot = page.screenshot(tmp_path / "visdom.png")
    assert rendered, f"the debug windows did not render: {state}"
    assert expected <= set(state["titles"]) and "Status" not in state["titles"]
    assert state["images_loaded"] == state["images"] >= 3  # Tracking, template, search_region
    img = cv2.cvtColor(cv2.imread(str(shot)), cv2.COLOR_BGR2RGB)
    assert img.shape[:2] == (1400, 1600)
    assert img.std() > 20, "blank screenshot"
    codes = (img[..., 0].astype(np.int32) << 16) | (img[..., 1].astype(np.int32) << 8) | img[..., 2]
    assert len(np.unique(codes)) > 2000, "the screenshot holds no image content (too few colours)"
    assert _color_pixels(img, (0, 255, 0), tol=50) > 50, "ground-truth box (green) not on the page"
    assert _color_pixels(img, (253, 231, 37), tol=40) + _color_pixels(img, (68, 1, 84), tol=30) > 20, \
        "no viridis heatmap colours on the page"


def test_real_ostrack_views_reach_the_server(couple, server):
    """The real OSTrack network (random weights: the views do not depend on them) over 3 frames of Couple,
    through the runner's loop, into its own visdom environment: every OSTrack view is a window holding an
    image or a heatmap, and the Hann-windowed score map is the raw one times the Hann window."""
    from lib.test.evaluation.data import Sequence
    from lib.test.evaluation.tracker import track_sequence
    from lib.test.tracker import get_tracker_class
    from lib.test.tracker.base import TrackerParams
    from lib.utils.crop import hann2d

    frames, gt = couple
    config, env = "vitb_256_mae_ce_32x4_ep300", "ostrack_real"
    params = TrackerParams.create("ostrack", config, checkpoint=None, require_checkpoint=False, device="cpu", debug=1)
    tracker = get_tracker_class("ostrack")(params, "otb")
    sink = make_debug_sink(1, "ostrack", config, "Couple", visdom_port=server["port"], env=env, strict=True)
    assert isinstance(sink, VisdomDebugSink)
    tracker.debug_sink = sink
    try:
        out = track_sequence(tracker, Sequence("Couple", frames[:3], "otb", gt[:3]), debug=1)
    finally:
        sink.close()
    assert sink.frame == 3 and len(out["target_bbox"]) == 3
    wins = json.loads(sink.vis.get_window_data(env=env))
    images = {"Tracking": (240, 320), "template": (128, 128), "search_region": (256, 256),
              "masked_search": (256, (256 + 8) * 4)}  # the search region and one copy per CE stage
    for title, shape in images.items():
        assert title in wins, f"window '{title}' missing; server has {sorted(wins)}"
        assert _decode_png(wins[title]["content"]["src"]).shape[:2] == shape, title
    frame = _decode_png(wins["Tracking"]["content"]["src"])
    assert _color_pixels(frame, (0, 255, 0), tol=60) > gt[2][2], "ground truth (green) not drawn"
    maps = {}
    for title in ("score_map", "score_map_hann"):
        trace = wins[title]["content"]["data"][0]
        assert trace["type"] == "heatmap"
        maps[title] = np.flipud(np.array(trace["z"], dtype=np.float64))
        assert maps[title].shape == (16, 16)
    assert ((maps["score_map"] >= 0) & (maps["score_map"] <= 1)).all()  # a sigmoid score map
    np.testing.assert_allclose(maps["score_map_hann"], maps["score_map"] * hann2d((16, 16)).squeeze().numpy(),
                               rtol=1e-5, atol=1e-7)


def test_lost_server_falls_back_to_png_without_blocking(run_state, server, tmp_path):
    """Runs last: stops the server mid-run, paused; the run goes on and writes PNG files, warning once."""
    frames, gt = run_state["frames"], run_state["gt"]
    _WARNED.clear()
    sink = make_debug_sink(1, "standin", "standin", "Couple", visdom_port=server["port"], out_dir=tmp_path,
                           strict=True)
    assert isinstance(sink, VisdomDebugSink)
    tracker = StandInOSTrack(params(1))
    tracker.debug_sink = sink
    run_frames(tracker, frames, gt, 0, 2)
    sink.paused = True  # as if the user had pressed space
    server["proc"].terminate()
    server["proc"].wait(timeout=10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        worker = threading.Thread(target=run_frames, args=(tracker, frames, gt, 2, 5), daemon=True)
        worker.start()
        worker.join(30)
    assert not worker.is_alive(), "a lost server must not keep the run waiting"
    seq_dir = tmp_path / "standin" / "standin" / "Couple"
    msgs = [str(w.message) for w in caught if issubclass(w.category, DebugViewWarning)]
    assert len(msgs) == 1 and "stopped answering" in msgs[0] and str(seq_dir) in msgs[0], msgs
    written = sorted(p.name for p in seq_dir.glob("*.png"))
    assert "00004_Tracking.png" in written and "00004_score_map.png" in written, written
    assert sink.frame == 5
