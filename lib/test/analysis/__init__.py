"""The toolkit's one metrics module: success / precision / normalized precision (OTB, LaSOT, UAV, NfS,
...), GOT-10k AO / SR, under two protocols — ``pytracking`` (the rules of pytracking's / OSTrack's analysis
code) and ``official`` (each benchmark's own toolkit). See README.md "Analysis" for the differences.

Modules:
    protocols: :class:`FrameRules`, the per-frame rules of each toolkit as one parameter object.
    metrics: vectorised IoU / centre errors / threshold counts (the only implementation of those rules).
    results: where raw results come from (own runs, external folders with name matching).
    extract: per-sequence curves for every (sequence, tracker) pair, cached in eval_data.npz.
    report: dataset scores, per-attribute / per-sequence tables, JSON summary.
    plots: PNG/PDF curves (matplotlib Agg, no LaTeX).
    run: :func:`analyse` used by ``tracking/analysis_results.py``.
"""

from .extract import EvalData, MissingResultError, ResultFileError, extract_results
from .metrics import box_iou, frame_errors, got10k_frame_ious, prepare_predictions, sequence_counts
from .protocols import PROTOCOLS, FrameRules, UnsupportedDatasetError, get_rules
from .report import compute_scores, per_attribute_scores, per_sequence_scores, summary_dict
from .results import TrackerResults, external_tracker_results, normalize_name, own_tracker_results
from .run import analyse

__all__ = ["EvalData", "MissingResultError", "ResultFileError", "extract_results", "box_iou", "frame_errors",
           "got10k_frame_ious", "prepare_predictions", "sequence_counts", "PROTOCOLS", "FrameRules",
           "UnsupportedDatasetError", "get_rules", "compute_scores", "per_attribute_scores", "per_sequence_scores",
           "summary_dict", "TrackerResults", "external_tracker_results", "normalize_name", "own_tracker_results",
           "analyse"]
