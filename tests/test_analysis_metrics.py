"""Per-frame rules of the analysis protocols on hand-computed toy sequences (no shared data needed)."""

import math

import numpy as np
import pytest
import torch

from lib.test.analysis.metrics import (PredictionError, box_iou, frame_errors, got10k_frame_ious,
                                       prepare_predictions, sequence_counts)
from lib.test.analysis.protocols import (LASOT_TOOLKIT, PYSOT_OPE, PYTRACKING, FrameRules, ResultLengthError,
                                         UnsupportedDatasetError, get_rules, matlab_colon)

INF = math.inf
GT = np.array([[10, 10, 20, 20]] * 5, dtype=np.float64)


def _toy():
    """5 frames: frame 0 predicted far off; frame 2's GT touches the left border (x = 0); frame 3 is
    absent; frame 4 is predicted with zero width."""
    gt = GT.copy()
    gt[2] = [0, 10, 20, 20]
    pred = np.array([[100, 100, 20, 20], [10, 10, 20, 20], [0, 10, 20, 20], [10, 10, 20, 20], [10, 10, 0, 20]],
                    dtype=np.float64)
    visible = np.array([True, True, True, False, True])
    return pred, gt, visible


def test_iou_conventions_hand_computed():
    p = np.array([[0, 0, 4, 4], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 5]], dtype=np.float64)
    g = np.array([[2, 2, 4, 4], [10, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], dtype=np.float64)
    np.testing.assert_allclose(box_iou(p, g, "plus_one"), [4 / 28, 0.0, 1.0, 0.5])
    np.testing.assert_allclose(box_iou(p, g, "continuous"), [4 / 28, 0.0, 1.0, 0.5])


def test_plus_one_iou_equals_continuous_iou_for_proper_boxes():
    # min(x1 + w1 - 1, x2 + w2 - 1) - max(x1, x2) + 1 == min(x1 + w1, x2 + w2) - max(x1, x2): the "+1 pixel"
    # convention changes centres of nobody and IoUs of no proper box (it matters for degenerate ones only)
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.integers(0, 50, (500, 2)), rng.integers(1, 40, (500, 2))], 1).astype(np.float64)
    b = np.concatenate([rng.integers(0, 50, (500, 2)), rng.integers(1, 40, (500, 2))], 1).astype(np.float64)
    np.testing.assert_allclose(box_iou(a, b, "plus_one"), box_iou(a, b, "continuous"), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="convention"):
        box_iou(a, b, "square")


def test_pytracking_lasot_special_case_and_repairs():
    pred, gt, vis = _toy()
    iou, center, norm, valid = frame_errors(pred, gt, vis, get_rules("pytracking", "lasot"))
    # frame 0 replaced by GT, frame 2 valid under OSTrack's w,h > 0 test, frame 3 absent, frame 4 repaired
    np.testing.assert_array_equal(iou, [1, 1, 1, -1, 1])
    np.testing.assert_array_equal(valid, [True, True, True, False, True])
    assert center[3] == INF and norm[3] == INF          # 'lasot': absent frames fail both centre measures


def test_lasot_extension_subset_keeps_pytracking_quirk_official_does_not():
    pred, gt, vis = _toy()
    _, center, norm, _ = frame_errors(pred, gt, vis, get_rules("pytracking", "lasot_extension_subset"))
    assert center[3] == INF and norm[3] == -1.0          # absent frame counts as a norm-precision success
    _, center, norm, _ = frame_errors(pred, gt, vis, get_rules("official", "lasot_extension_subset"))
    assert center[3] == INF and norm[3] == INF


def test_lasot_toolkit_invalid_gt_is_precision_success():
    pred, gt, vis = _toy()
    iou, center, norm, valid = frame_errors(pred, gt, vis, LASOT_TOOLKIT)
    # x = 0 fails the toolkit's "all four values > 0" test: IoU -1 (failure), centre errors -1 (success)
    assert iou[2] == -1 and center[2] == -1 and norm[2] == -1 and not valid[2]
    assert iou[0] == 1 and iou[4] == 1
    s, p, q = sequence_counts(iou, center, norm, LASOT_TOOLKIT)
    assert s[10] == 3 and p[20] == 4 and q[20] == 4      # frames 0,1,4 succeed; frame 2 too in precision


def test_pysot_keeps_first_frame_and_zero_size_boxes():
    pred, gt, vis = _toy()
    iou, center, norm, _ = frame_errors(pred, gt, vis, PYSOT_OPE)
    assert iou[0] == 0.0                                 # no first-frame replacement
    assert iou[4] == 0.0                                 # zero width kept: intersection 0
    assert center[4] == pytest.approx(10.0)              # centre x 10 + (0-1)/2 vs 10 + 19/2
    assert iou[2] == 1.0 and center[2] == 0.0            # x = 0 is valid (w, h > 0; centre > 0)
    assert iou[3] == -1 and center[3] == INF             # absent rows are removed (failures)


def test_pysot_centre_validity_is_centre_positive():
    gt = np.array([[0, 0, 20, 20], [-30, 5, 20, 20]], dtype=np.float64)
    pred = np.array([[0, 0, 20, 20], [100, 100, 20, 20]], dtype=np.float64)
    iou, center, _, _ = frame_errors(pred, gt, None, PYSOT_OPE)
    assert center[1] == -1.0                             # GT centre x = -20.5 <= 0: counted as a success
    assert iou[1] == 0.0                                 # but IoU is computed (w, h > 0)
    _, center_pt, _, _ = frame_errors(pred, gt, None, PYTRACKING)
    assert center_pt[1] > 100                            # pytracking measures it


def test_uav_nan_ground_truth():
    gt = GT.copy()
    gt[2] = np.nan
    pred = GT.copy()
    pred[2] = [500, 500, 20, 20]
    iou, center, norm, valid = frame_errors(pred, gt, None, get_rules("pytracking", "uav"))
    assert iou[2] == -1 and center[2] == -1 and norm[2] == -1     # 'uav': centre error of invalid = success
    with pytest.raises(ValueError, match="NaN in the ground truth"):
        frame_errors(pred, gt, None, get_rules("pytracking", "otb"))
    _, center_otb, _, _ = frame_errors(pred, gt, None, get_rules("official", "uav"))
    assert center_otb[2] == -1                           # pysot: NaN centre is not > 0 -> success


def test_bad_predictions_per_protocol():
    pred = GT.copy()
    pred[1] = [12, 12, 20, 20]
    pred[2] = [np.nan, 10, 20, 20]
    pred[3] = [10, 10, -4, 20]
    with pytest.raises(PredictionError) as err:
        prepare_predictions(pred, GT, PYTRACKING)
    assert err.value.frame == 2
    repaired = prepare_predictions(pred, GT, LASOT_TOOLKIT)
    # NaN and negative width both take the last good box (frame 1), as the sequential MATLAB loop does
    np.testing.assert_array_equal(repaired[2], [12, 12, 20, 20])
    np.testing.assert_array_equal(repaired[3], [12, 12, 20, 20])
    iou, center, _, _ = frame_errors(pred, GT, None, PYSOT_OPE)
    assert np.isnan(iou[2]) and np.isnan(center[2])       # pysot keeps NaN: fails every threshold
    s, p, _ = sequence_counts(iou, center, center, PYSOT_OPE)
    assert s[0] == 3 and p[50] == 4                       # NaN fails both; the negative box has IoU 0


def test_zero_size_repair_is_skipped_when_gt_has_nan():
    gt = GT.copy()
    gt[2] = np.nan
    pred = GT.copy()
    pred[1] = [30, 30, 20, 20]
    pred[2] = [10, 10, 0, 0]
    out = prepare_predictions(pred, gt, get_rules("pytracking", "uav"))
    np.testing.assert_array_equal(out[2], [10, 10, 0, 0])
    gt2 = GT.copy()
    out = prepare_predictions(pred, gt2, PYTRACKING)
    np.testing.assert_array_equal(out[2], [30, 30, 20, 20])


def test_short_and_long_results():
    short = GT[:3].copy()
    short[2, 2] = 0  # a zero-size box is repaired first, the padded zero boxes after it are not
    out = prepare_predictions(short, GT, PYTRACKING)
    np.testing.assert_array_equal(out[2], GT[1])
    assert (out[3:] == 0).all() and out.shape == GT.shape
    for rules in (get_rules("pytracking", "lasot"), LASOT_TOOLKIT, PYSOT_OPE, get_rules("official", "got10k")):
        with pytest.raises(ResultLengthError, match=f"3 boxes for {len(GT)} frames"):
            prepare_predictions(GT[:3], GT, rules)
    long = np.concatenate([GT, [[0, 0, 1, 1]] * 3])
    for rules in (PYTRACKING, get_rules("pytracking", "lasot"), LASOT_TOOLKIT):
        np.testing.assert_array_equal(prepare_predictions(long, GT, rules)[1:], GT[1:])
    for rules in (PYSOT_OPE, get_rules("official", "got10k")):
        with pytest.raises(ResultLengthError, match="more rows than frames"):
            prepare_predictions(long, GT, rules)


def test_thresholds_are_strict_for_overlap_and_inclusive_for_error():
    gt = np.array([[0, 0, 10, 10]] * 2, dtype=np.float64)
    pred = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], dtype=np.float64)   # IoU exactly 0.5
    iou, center, norm, _ = frame_errors(pred, gt, None, PYTRACKING)
    assert iou[1] == 0.5
    s, p, _ = sequence_counts(iou, center, norm, PYTRACKING)
    assert s[9] == 2 and s[10] == 1                       # IoU > 0.45 yes, IoU > 0.50 no
    assert center[1] == 2.5 and p[2] == 1 and p[3] == 2   # error 2.5 <= 3 px
    assert s[20] == 0                                     # t = 1: nothing is > 1


def test_threshold_grids_follow_each_toolkit():
    assert list(PYTRACKING.thresholds_overlap) == torch.arange(0.0, 1.05, 0.05, dtype=torch.float64).tolist()
    assert list(PYSOT_OPE.thresholds_overlap) == np.arange(0, 1.05, 0.05).tolist()
    colon = matlab_colon(0.0, 0.05, 1.0)
    assert len(colon) == 21 and colon[3] == 3 * 0.05 and colon[12] == 0.6 and colon[20] == 1.0
    for rules in (PYTRACKING, LASOT_TOOLKIT, PYSOT_OPE):
        assert rules.overlap_index == {"op50": 10, "op75": 15}
        assert len(rules.thresholds_center) == 51 and rules.thresholds_center[20] == 20
        assert rules.thresholds_norm[20] == 0.2


def test_get_rules():
    assert get_rules("official", "lasot") is LASOT_TOOLKIT
    assert get_rules("official", "otb") is PYSOT_OPE
    assert get_rules("official", "avist").name == "pytracking"
    assert get_rules("official", "got10k").reports_curves is False
    with pytest.raises(UnsupportedDatasetError, match="server"):
        get_rules("pytracking", "trackingnet")
    with pytest.raises(ValueError, match="unknown protocol"):
        get_rules("vot", "otb")
    with pytest.raises(ValueError, match="iou"):
        FrameRules(name="x", description="x", iou="square")


def test_got10k_frame_ious_clip_cover_and_first_frame():
    gt = np.array([[0, 0, 10, 10], [90, 40, 20, 20], [10, 10, 10, 10], [10, 10, 10, 10]], dtype=np.float64)
    pred = np.array([[50, 50, 5, 5], [95, 40, 20, 20], [10, 10, 10, 20], [0, 0, 1, 1]], dtype=np.float64)
    cover = np.array([8, 8, 8, 0])
    ious = got10k_frame_ious(pred, gt, cover, (100, 50))
    # frame 0 skipped; frame 3 has cover 0; frame 1: both clipped at x = 100 -> GT [90,40,10,10], pred [95,40,5,10]
    assert len(ious) == 2
    assert ious[0] == pytest.approx(50 / 100)
    assert ious[1] == pytest.approx(100 / 200)
    with pytest.raises(PredictionError):
        got10k_frame_ious(pred[:3], gt, cover, (100, 50))
