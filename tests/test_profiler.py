"""tracking/profile_model.py serves every tracker: the per-frame step of each network package (STARK's cached
templates, AiATrack's cached references, SparseTT's template phase once and track phase per frame), the
figures it prints, and the CSV rows it appends. OSTrack's figures are checked in tests/test_ostrack.py."""

import csv
import importlib.util
import sys

import pytest
import torch

from lib.config import PROJECT_ROOT, load_config
from lib.models import build_network
from lib.test.utils.profiling import append_csv_row, profiling_step
from tests.conftest import need_shared


def _profile_model():
    tracking_dir = str(PROJECT_ROOT / "tracking")
    if tracking_dir not in sys.path:
        sys.path.insert(0, tracking_dir)
    spec = importlib.util.spec_from_file_location("_profile_model", PROJECT_ROOT / "tracking" / "profile_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script,config,dataset,step_text,once_text,frames", [
    ("stark_s", "baseline", "otb", "transformer over 1 cached template(s) + corner head", "template backbone", 0),
    ("stark_st2", "baseline", "lasot", "over 2 cached template(s) + corner head and score head", "template backbone", 0),
    ("aiatrack", "baseline", "lasot", "decoder against 5 cached references (HYPER LASOT)", "reference encoding", 0),
    ("sparsett", "sparsett_swin_fulldata", "otb", "phase 'track' on the search crop (289x289)", "phase 'feature'", 3),
])
def test_profile_model_serves_every_tracker(script, config, dataset, step_text, once_text, frames, tmp_path, capsys):
    out_csv = tmp_path / "speed.csv"
    argv = ["--script", script, "--config", config, "--dataset", dataset, "--warmup", "0", "--iters", "1",
            "--frames", str(frames), "--csv", str(out_csv)]
    if frames:
        argv += ["--sequence", str(need_shared("data", "otb", "Crossing"))]
    if script != "stark_s":
        argv.append("--no_macs")  # thop on the step module is checked once, on STARK-S
    stats = _profile_model().main(argv)
    text = capsys.readouterr().out
    assert step_text in text and f"once: {once_text}" in text
    params = sum(p.numel() for p in build_network(script, config).parameters())
    assert f"parameters: {params:,}" in text
    assert "model forward latency: median" in text and "process CPU time" in text
    assert f"torch: {torch.__version__}" in text and "precision: fp32" in text and "threads: " in text
    assert len(stats.times_ms) == 1 and len(stats.cpu_ms) == 1 and stats.times_ms[0] > 0
    assert ("tracker end-to-end" in text) == bool(frames)
    with open(out_csv, newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["script"] == script and row["config"] == config and row["dataset"] == dataset
    assert int(row["params"]) == params and float(row["step_ms_median"]) > 0
    if script == "stark_s":
        assert 5.0 < float(row["macs_thop_g"]) < 20.0  # ResNet-50 on 320x320 plus the transformer, not zero
    if frames:
        assert float(row["tracker_fps"]) > 0 and int(row["tracker_frames"]) == frames - 2  # 2 warm-up frames


def test_steps_compute_what_the_trackers_use():
    """Each step returns what the tracker reads per frame (boxes, confidence, IoU, scores)."""
    with torch.no_grad():
        cfg = load_config("stark_st2", "baseline")
        step = profiling_step("stark_st2", build_network("stark_st2", cfg), cfg, "cpu", "otb")
        out, _, _ = step.module(*step.inputs)
        assert out["pred_boxes"].shape == (1, 1, 4) and out["pred_logits"].shape == (1, 1, 1)
        cfg = load_config("aiatrack", "baseline")
        step = profiling_step("aiatrack", build_network("aiatrack", cfg), cfg, "cpu", "vot20")
        assert "4 cached references" in step.description  # HYPER DEFAULT: 1 + 3 short-term
        assert step.module(*step.inputs)["pred_iou"].numel() == 1


def test_csv_rows_append_with_one_header(tmp_path):
    path = str(tmp_path / "rows.csv")
    append_csv_row(path, {"script": "a", "fps": 1.5})
    append_csv_row(path, {"script": "b", "fps": 2})
    with open(path) as f:
        assert f.read() == "script,fps\na,1.5\nb,2\n"
    with pytest.raises(ValueError, match="rows.csv: CSV columns"):
        append_csv_row(path, {"script": "c"})
