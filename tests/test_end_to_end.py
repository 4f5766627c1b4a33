"""The issue's command line, end to end on the shared real data: ``tracking/test.py`` with OSTrack on OTB from
``../shared/data/otb`` with two worker threads, limited to one short sequence, then
``tracking/analysis_results.py`` on those results with ``--skip_missing`` (the folder holds 4 of OTB's 100
sequences; the run covers 1 of them). The network is the small ``tiny_cpu`` OSTrack (same code path, seeded
weights in an official-layout checkpoint) to keep the suite fast; the ViT-B tracker on a real sequence is
tested in ``tests/test_ostrack.py``."""

import json
import os
import subprocess
import sys

import numpy as np

import torch

from tests.conftest import PROJECT_ROOT, need_shared

CONFIG = "tiny_cpu"

SEQUENCE = "Football1"  # 74 frames of 352x288, comma-separated ground truth


def test_test_py_then_analysis_on_shared_otb(tmp_path):
    from lib.models import build_network

    otb = need_shared("data", "otb")
    torch.manual_seed(0)
    checkpoint = tmp_path / "OSTrack_ep0300.pth.tar"
    torch.save({"net": build_network("ostrack", CONFIG).state_dict(), "net_type": "OSTrack"}, checkpoint)
    env = dict(os.environ, TRACKING_RESULTS_PATH=str(tmp_path / "results"),
               TRACKING_RESULT_PLOT_PATH=str(tmp_path / "plots"), TRACKING_SAVE_DIR=str(tmp_path / "out"))
    run = subprocess.run(
        [sys.executable, "tracking/test.py", "ostrack", CONFIG, "--dataset", "otb", "--threads", "2",
         "--dataset_path", str(otb), "--checkpoint", str(checkpoint), "--sequence", SEQUENCE,
         "--no_progress"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "1 jobs: 1 done, 0 skipped (results existed), 0 failed" in run.stderr

    out_dir = tmp_path / "results" / "ostrack" / CONFIG
    assert sorted(os.listdir(out_dir)) == [f"{SEQUENCE}.txt", f"{SEQUENCE}_time.txt", "_provenance.json"]
    provenance = json.loads((out_dir / "_provenance.json").read_text())
    (record,) = provenance["records"].values()
    assert provenance["sequences"] == {SEQUENCE: next(iter(provenance["records"]))}
    assert record["checkpoint"]["path"] == str(checkpoint) and record["precision"] == "fp32"
    boxes = np.loadtxt(out_dir / f"{SEQUENCE}.txt", delimiter="\t")
    gt = np.loadtxt(otb / SEQUENCE / "groundtruth_rect.txt", delimiter=",")
    assert boxes.shape == (74, 4) and np.array_equal(boxes, np.round(boxes))  # integer rows, tab-separated
    assert boxes[0].tolist() == gt[0].tolist()  # frame 0 holds the initial box
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] > 0).all()
    assert (boxes[:, 0] + boxes[:, 2] <= 352).all() and (boxes[:, 1] + boxes[:, 3] <= 288).all()
    times = np.loadtxt(out_dir / f"{SEQUENCE}_time.txt")
    assert times.shape == (74,) and (times > 0).all()

    scores = tmp_path / "scores.json"
    analysis = subprocess.run(
        [sys.executable, "tracking/analysis_results.py", "--tracker_name", "ostrack", "--tracker_param",
         CONFIG, "--dataset", "otb", "--dataset_path", str(otb), "--skip_missing", "--json", str(scores)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert analysis.returncode == 0, analysis.stderr[-3000:]
    assert "96 of the benchmark's 100 sequences are missing" in analysis.stderr
    for name in ("Basketball", "Couple", "Crossing"):  # present in the folder, not run
        assert f"'{name}'" in analysis.stderr or name in analysis.stderr
    assert "Reporting results over 1 / 100 sequences" in analysis.stdout
    summary = json.loads(scores.read_text())
    assert summary["dataset"] == "otb" and summary["num_sequences"] == 1 and summary["num_sequences_total"] == 100
    result = summary["trackers"][f"ostrack_{CONFIG}"]
    assert 0 <= result["auc"] <= 100 and 0 <= result["precision"] <= 100
