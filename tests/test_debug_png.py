"""Debug views without a visdom server: PNG files under <out>/<tracker>/<config>/<seq>/, said once,
never blocking; the drawing helpers; the sink's contract with BaseTracker."""

import http.server
import threading
import warnings

import cv2
import numpy as np
import pytest
import torch

from lib.test.utils.debug import (DebugViewWarning, PngDebugSink, _WARNED, make_debug_sink, probe_visdom,
                                  render_tracking)
from lib.vis.draw import GT_COLOR, PALETTE, colorize_heatmap, draw_boxes, tile_channels, to_hwc_uint8
from tests.conftest import free_port, need_shared
from tests.debug_standin import StandInOSTrack, couple_sequence, params, run_frames


@pytest.fixture(scope="module")
def couple():
    return couple_sequence(need_shared("data", "otb", "Couple"))


def _read_rgb(path):
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, path
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _on_box_outline(frame, box, color):
    """Fraction of the outline of ``box`` (xywh) drawn in ``color``."""
    x1, y1 = int(round(box[0])), int(round(box[1]))
    x2, y2 = int(round(box[0] + box[2])), int(round(box[1] + box[3]))
    hit = np.all(frame == color, axis=-1)
    edges = [hit[y1, x1:x2 + 1], hit[y2, x1:x2 + 1], hit[y1:y2 + 1, x1], hit[y1:y2 + 1, x2]]
    return float(np.concatenate(edges).mean())


def _run(debug, seq, out_dir, port, frames, gt, n):
    sink = make_debug_sink(debug, "standin", "cfg", seq, visdom_port=port, out_dir=out_dir, strict=True)
    tracker = StandInOSTrack(params(debug))
    tracker.debug_sink = sink
    run_frames(tracker, frames, gt, 0, n)
    return sink, tracker


def test_no_server_writes_png_files_and_says_so_once(couple, tmp_path):
    frames, gt = couple
    port = free_port()  # nothing listens there
    _WARNED.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = {}
        worker = threading.Thread(target=lambda: done.update(
            a=_run(1, "Couple", tmp_path, port, frames, gt, 4), b=_run(1, "Couple-b", tmp_path, port, frames, gt, 2)))
        worker.start()
        worker.join(60)
    assert not worker.is_alive(), "the PNG fallback must never block"
    msgs = [str(w.message) for w in caught if issubclass(w.category, DebugViewWarning)]
    assert len(msgs) == 1, msgs  # two sequences, one notice
    assert f"127.0.0.1:{port}" in msgs[0] and str(tmp_path / "standin" / "cfg") in msgs[0]

    sink, tracker = done["a"]
    assert isinstance(sink, PngDebugSink) and sink.frame == 4
    seq_dir = tmp_path / "standin" / "cfg" / "Couple"
    names = sorted(p.name for p in seq_dir.iterdir())
    expected = ["00000_template.png"] + [f"{i:05d}_{v}.png" for i in (1, 2, 3)
                                         for v in ("Tracking", "search_region", "template", "score_map",
                                                   "score_map_hann")]
    assert names == sorted(expected), names  # the level-2 'Status' view is not written at --debug 1
    assert sorted(p.name for p in (tmp_path / "standin" / "cfg" / "Couple-b").iterdir()) == [
        "00000_template.png", "00001_Tracking.png", "00001_score_map.png", "00001_score_map_hann.png",
        "00001_search_region.png", "00001_template.png"]

    # the frame at full size with the ground truth (green) and the prediction (red)
    frame = _read_rgb(seq_dir / "00003_Tracking.png")
    assert frame.shape == (240, 320, 3)
    assert _on_box_outline(frame, gt[3], GT_COLOR) > 0.1  # the prediction covers much of it
    np.testing.assert_array_equal(frame, render_tracking((_read_rgb(frames[3]), tracker.state), gt_bbox=gt[3]))
    assert _on_box_outline(frame, tracker.state, PALETTE[0]) > 0.9
    assert np.all(frame == PALETTE[0], axis=-1).sum() > 2 * (tracker.state[2] + tracker.state[3])
    # crops are written unchanged; score maps colourised and enlarged to >= 128 px
    np.testing.assert_array_equal(_read_rgb(seq_dir / "00003_search_region.png"), tracker.x_patch)
    hm = _read_rgb(seq_dir / "00003_score_map.png")
    assert hm.shape == (128, 128, 3)
    np.testing.assert_array_equal(hm, colorize_heatmap(tracker.score_map, min_side=128))


def test_debug_level_selects_blocks(couple, tmp_path):
    frames, gt = couple
    _WARNED.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DebugViewWarning)
        _run(2, "Couple", tmp_path, free_port(), frames, gt, 3)
    lines = (tmp_path / "standin" / "cfg" / "Couple" / "Status.txt").read_text().splitlines()
    assert len(lines) == 2 and lines[0].startswith("frame 00001: max_score=") and lines[1].endswith("frame=2")


def test_probe_rejects_a_server_that_is_not_visdom(tmp_path):
    class NotVisdom(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), NotVisdom)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        port = httpd.server_address[1]
        reason = probe_visdom("127.0.0.1", port, timeout_s=0.5)
        assert reason is not None and "not as a visdom server" in reason
        _WARNED.clear()
        with pytest.warns(DebugViewWarning, match="not as a visdom server"):
            sink = make_debug_sink(1, "t", "c", "s", visdom_port=port, out_dir=tmp_path)
        assert isinstance(sink, PngDebugSink)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert "nothing answers" in probe_visdom("127.0.0.1", free_port(), timeout_s=0.2)


def test_debug_zero_attaches_nothing():
    assert make_debug_sink(0, "t", "c", "s") is None
    tracker = StandInOSTrack(params(0))
    tracker.debug_show(np.zeros((4, 4, 3), np.uint8), "image", 1, "x")  # no sink: a no-op


def test_ground_truth_is_for_drawing_only(couple, tmp_path):
    """The same boxes with and without ground truth; the sink sees it only in the Tracking view."""
    frames, gt = couple

    class Recorder(PngDebugSink):
        def _draw(self, block):
            seen.append((block.title, dict(block.kwargs)))

    seen = []
    boxes = []
    for with_gt in (True, False):
        tracker = StandInOSTrack(params(1))
        tracker.debug_sink = Recorder(1, out_dir=tmp_path)
        for i in range(4):
            tracker.set_debug_ground_truth(gt[i] if with_gt else None)
            if i == 0:
                tracker.initialize(imread := cv2.cvtColor(cv2.imread(frames[0]), cv2.COLOR_BGR2RGB),
                                   {"init_bbox": list(gt[0])})
            else:
                out = tracker.track(cv2.cvtColor(cv2.imread(frames[i]), cv2.COLOR_BGR2RGB))
            tracker.debug_frame_done()
        boxes.append(out["target_bbox"])
        assert not any(np.allclose(v, gt[3]) for k, v in vars(tracker).items()
                       if k != "_debug_gt" and isinstance(v, (list, np.ndarray)) and np.shape(v) == (4,))
    assert imread.shape == (240, 320, 3)
    assert boxes[0] == boxes[1]
    with_gt = [kw for title, kw in seen[: len(seen) // 2] if title == "Tracking"]
    assert [kw["gt_bbox"] for kw in with_gt] == [list(map(float, gt[i])) for i in (1, 2, 3)]
    assert all("gt_bbox" not in kw for title, kw in seen if title != "Tracking")


def test_sink_errors(tmp_path):
    sink = PngDebugSink(1, out_dir=tmp_path, strict=True)
    with pytest.raises(ValueError, match="unknown debug view mode 'bogus'"):
        sink.register(1, "bogus", 1, "x")
    with pytest.raises(ValueError, match="must be 2-D"):
        sink.register(np.zeros((2, 3, 4)), "heatmap", 1, "hm")
    sink.register(np.zeros((2, 3)), "heatmap", 1, "hm2")
    with pytest.raises(ValueError, match="registered as 'heatmap'"):
        sink.register(np.zeros((4, 4, 3), np.uint8), "image", 1, "hm2")

    _WARNED.clear()
    lenient = PngDebugSink(1, out_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            lenient.register(np.zeros((2, 3, 4)), "heatmap", 1, "bad")
            lenient.frame_done()
    assert len([w for w in caught if issubclass(w.category, DebugViewWarning)]) == 1

    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    _WARNED.clear()
    broken = PngDebugSink(1, out_dir=blocker)
    with pytest.warns(DebugViewWarning, match="could not be written"):
        broken.register(np.zeros((8, 8, 3), np.uint8), "image", 1, "img")
    broken.register(np.zeros((8, 8, 3), np.uint8), "image", 1, "img")  # silent, no exception


def test_drawing_helpers():
    hwc = (np.arange(4 * 5 * 3) % 256).astype(np.uint8).reshape(4, 5, 3)
    chw_float = torch.from_numpy(hwc).permute(2, 0, 1).float() / 255.0
    np.testing.assert_array_equal(to_hwc_uint8(chw_float), hwc)
    np.testing.assert_array_equal(to_hwc_uint8(torch.from_numpy(hwc).permute(2, 0, 1)[None]), hwc)
    assert to_hwc_uint8(np.zeros((4, 5))).shape == (4, 5, 3)
    with pytest.raises(ValueError, match="expected an image"):
        to_hwc_uint8(np.zeros((2, 4, 5, 3)))

    img = np.zeros((100, 120, 3), np.uint8)
    out = draw_boxes(img, [[10, 20, 30, 40], None, [np.nan, 0, 1, 1]], thickness=1, legend=False)
    assert (out[20, 10:41] == PALETTE[0]).all() and (out[20:61, 40] == PALETTE[0]).all()
    assert (out[21:60, 11:40] == 0).all() and img.sum() == 0  # inside untouched, input not modified
    tr = render_tracking((img, [50, 50, 20, 20]), gt_bbox=[10, 10, 20, 20])
    assert (tr == GT_COLOR).all(axis=-1).any() and (tr == PALETTE[0]).all(axis=-1).any()
    big = render_tracking(np.zeros((960, 1280, 3), np.uint8), max_side=480)
    assert big.shape == (360, 480, 3)

    grid = tile_channels(torch.arange(5 * 3 * 2, dtype=torch.float32).reshape(5, 3, 2))
    assert grid.shape == (2 * (3 + 1) - 1, 3 * (2 + 1) - 1) and np.isnan(grid[3]).all()  # 2 rows x 3 columns
    hm = colorize_heatmap(np.array([[0.0, 1.0]]), min_side=10)
    assert hm.shape == (10, 20, 3) and (hm[0, 0] != hm[0, -1]).any()


def test_failed_probe_is_not_repeated_for_every_sequence(tmp_path, monkeypatch):
    import lib.test.utils.debug as debug

    port = free_port()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DebugViewWarning)
        assert isinstance(make_debug_sink(1, "t", "c", "s1", visdom_port=port, out_dir=tmp_path), PngDebugSink)
        monkeypatch.setattr(debug, "probe_visdom", lambda *a, **k: pytest.fail("probed again"))
        assert isinstance(make_debug_sink(1, "t", "c", "s2", visdom_port=port, out_dir=tmp_path), PngDebugSink)
        monkeypatch.setattr(debug, "PROBE_RETRY_S", 0.0)
        monkeypatch.setattr(debug, "probe_visdom", lambda *a, **k: "still nothing")
        assert isinstance(make_debug_sink(1, "t", "c", "s3", visdom_port=port, out_dir=tmp_path), PngDebugSink)


def test_info_dict_needs_a_mapping(tmp_path):
    with pytest.raises(ValueError, match="needs a mapping"):
        PngDebugSink(1, out_dir=tmp_path, strict=True).register([1, 2], "info_dict", 1, "Status")
    _WARNED.clear()
    with pytest.warns(DebugViewWarning, match="needs a mapping"):
        PngDebugSink(1, out_dir=tmp_path).register([1, 2], "info_dict", 1, "Status")


def test_tracking_view_conventions(tmp_path):
    """(image, pred) and OSTrack's (image, self._debug_gt, pred) draw the same: GT green, prediction red."""
    image = np.full((60, 80, 3), 90, np.uint8)
    gt, pred = [5.0, 6.0, 20.0, 15.0], [40.0, 30.0, 25.0, 20.0]
    drawn = []
    for with_gt_slot in (False, True):
        tracker = StandInOSTrack(params(1))
        tracker.debug_sink = PngDebugSink(1, out_dir=tmp_path / str(with_gt_slot), strict=True)
        tracker.set_debug_ground_truth(gt)
        data = (image, tracker._debug_gt, pred) if with_gt_slot else (image, pred)
        tracker.debug_show(data, "Tracking", 1, "Tracking")
        drawn.append(_read_rgb(tmp_path / str(with_gt_slot) / "tracker" / "config" / "sequence"
                               / "00000_Tracking.png"))
        tracker.set_debug_ground_truth(None)  # no ground truth: the slot holds None
        tracker.debug_show((image, tracker._debug_gt, pred), "Tracking", 1, "Tracking")
    np.testing.assert_array_equal(drawn[0], drawn[1])
    np.testing.assert_array_equal(drawn[0], render_tracking((image, pred), gt_bbox=gt))
    assert _on_box_outline(drawn[0], gt, GT_COLOR) == 1.0 and _on_box_outline(drawn[0], pred, PALETTE[0]) == 1.0
