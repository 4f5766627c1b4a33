"""Every tracker's debug views, from the real networks on real frames, through the runner's loop into the PNG
sink: the common views (Tracking, template, search region, score maps where the tracker has them) and each
tracker's own (OSTrack masked search, STARK-ST confidence and template updates, AiATrack reference memory and
IoU, SparseTT fc/conv score maps and penalty). The ground truth is drawn, never used: the boxes are the same
with a wrong ground truth in debug mode as without debug."""

import cv2
import numpy as np
import pytest

from lib.test.evaluation.data import Sequence
from lib.test.evaluation.tracker import track_sequence
from lib.test.tracker import get_tracker_class
from lib.test.tracker.base import TrackerParams
from lib.test.utils.debug import PngDebugSink
from lib.vis.draw import GT_COLOR
from tests.conftest import need_shared

N_FRAMES = 3
COMMON = ("Tracking", "template", "search_region")
CASES = {
    # tracker: (config, images, text views)
    "ostrack": ("vitb_256_mae_ce_32x4_ep300", COMMON + ("score_map", "score_map_hann", "masked_search"), ()),
    "stark_s": ("baseline", COMMON, ()),
    "stark_st": ("baseline", COMMON + ("confidence", "dynamic_templates"), ("template_update",)),
    "aiatrack": ("baseline", ("Tracking", "search_region", "reference_memory", "predicted_iou"), ("memory",)),
    "sparsett": ("sparsett_swin_fulldata", COMMON + ("score_map", "score_map_hann", "penalty", "score_map_fc",
                                                     "score_map_conv"), ()),
}


@pytest.fixture(scope="module")
def crossing():
    root = need_shared("data", "otb", "Crossing")
    gt = np.loadtxt(root / "groundtruth_rect.txt", delimiter="\t")[:N_FRAMES]
    frames = [str(root / "img" / f"{i:04d}.jpg") for i in range(1, N_FRAMES + 1)]
    return frames, gt


@pytest.mark.parametrize("name", sorted(CASES))
def test_tracker_debug_views(name, crossing, tmp_path):
    config, images, texts = CASES[name]
    frames, gt = crossing
    params = TrackerParams.create(name, config, checkpoint=None, require_checkpoint=False, device="cpu", debug=1)
    tracker = get_tracker_class(name)(params, "otb")  # random weights: the views do not depend on them

    wrong_gt = gt + np.array([40.0, 25.0, 0.0, 0.0])  # drawn in the Tracking view, must not move the tracker
    seq = Sequence("Crossing", frames, "otb", wrong_gt, init_data={0: {"bbox": gt[0].tolist()}})
    tracker.debug_sink = PngDebugSink(1, name, config, "Crossing", out_dir=tmp_path, strict=True)
    with_debug = track_sequence(tracker, seq, debug=1)["target_bbox"]

    seq_dir = tmp_path / name / config / "Crossing"
    written = {p.name for p in seq_dir.iterdir()}
    for frame in range(1, N_FRAMES):
        missing = [v for v in images if f"{frame:05d}_{v}.png" not in written]
        assert not missing, f"{name}: views {missing} of frame {frame} not written; got {sorted(written)}"
    for view in texts:
        lines = (seq_dir / f"{view}.txt").read_text().splitlines()
        assert len(lines) == N_FRAMES - 1 and lines[-1].startswith(f"frame {N_FRAMES - 1:05d}:"), lines

    # the Tracking view: the (wrong) ground truth in green, where it was given
    tracking = cv2.cvtColor(cv2.imread(str(seq_dir / f"{N_FRAMES - 1:05d}_Tracking.png")), cv2.COLOR_BGR2RGB)
    x, y, w, h = (int(round(v)) for v in wrong_gt[-1])
    top_edge = np.all(tracking[y, x:x + w] == GT_COLOR, axis=-1)
    assert top_edge.mean() > 0.5, f"{name}: ground-truth box not drawn in the Tracking view"

    # the same network without debug (no sink, no ground truth) gives the same boxes (first tracked frame)
    tracker.debug_sink = None
    plain = Sequence("Crossing", frames[:2], "otb", gt[:1], init_data={0: {"bbox": gt[0].tolist()}})
    without_debug = track_sequence(tracker, plain, debug=0)["target_bbox"]
    assert with_debug[:2] == without_debug, f"{name}: the ground truth given for drawing changed the boxes"
