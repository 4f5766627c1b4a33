"""The GOT-10k toolkit drives our trackers (``lib/test/toolkits/got10k_adapter.py``, ``tracking/run_got10k_toolkit.py``):
the adapter's ``track(img_files, box)`` on a real OTB sequence gives ``tracking/test.py``'s boxes, and the toolkit's
``ExperimentOTB`` report on its own result files equals our analysis of the same files.

``ExperimentOTB`` needs all 100 OTB-2015 folders: the test builds a root of links in which the shared sequences
with frames hold their frames and the others only their ground truth (``../shared/data/otb100_anno``), and runs
the experiment on one sequence (``--sequences``)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import PROJECT_ROOT, need_shared

pytest.importorskip("got10k", reason="the GOT-10k toolkit (pip install got10k six) is not installed")

SEQUENCE = "Football1"


def make_otb_root(dst, otb, anno):
    """A folder with every OTB-2015 sequence of the toolkit's list: links to the frames and ground truth of the
    sequences in ``otb``, to the ground truth alone (``anno``) for the others."""
    from got10k.datasets import OTB

    for name in OTB._OTB__version_dict[2015]:
        folder = dst / name
        folder.mkdir(parents=True)
        source = otb / name if (otb / name / "img").is_dir() else anno / name
        for entry in source.iterdir():
            if entry.name == "img" or entry.name.startswith("groundtruth"):
                os.symlink(entry, folder / entry.name)
    return dst


def test_adapter_track_equals_test_py(stark_st_tiny_checkpoint, stark_st_tiny_otb_result):
    from got10k.trackers import Tracker

    from lib.test.toolkits.got10k_adapter import Got10kTracker

    otb = need_shared("data", "otb")
    gt = np.loadtxt(otb / SEQUENCE / "groundtruth_rect.txt", delimiter=",")
    img_files = sorted(str(p) for p in (otb / SEQUENCE / "img").glob("*.jpg"))[:len(gt)]
    tracker = Got10kTracker.load("stark_st", "tiny_cpu", checkpoint=stark_st_tiny_checkpoint, device="cpu",
                                 dataset="otb")
    assert isinstance(tracker, Tracker) and tracker.name == "stark_st_tiny_cpu" and tracker.is_deterministic
    boxes, times = tracker.track(img_files, gt[0])
    expected = np.loadtxt(stark_st_tiny_otb_result, delimiter="\t")
    assert boxes.shape == expected.shape == (74, 4) and times.shape == (74,)
    assert len({tuple(b) for b in boxes.tolist()}) > 10  # the boxes move: the comparison means something
    np.testing.assert_array_equal(boxes.astype(int), expected)  # the result file holds boxes.astype(int)
    # init / update on PIL images, as the toolkit's own loops call them
    from PIL import Image

    tracker.init(Image.open(img_files[0]), gt[0])
    np.testing.assert_array_equal(tracker.update(Image.open(img_files[1])).astype(int), expected[1])


def test_experiment_otb_report_equals_our_analysis(tmp_path, stark_st_tiny_checkpoint):
    otb = need_shared("data", "otb")
    root = make_otb_root(tmp_path / "OTB100", otb, need_shared("data", "otb100_anno"))
    env = dict(os.environ, TRACKING_RESULTS_PATH=str(tmp_path / "ours"), TRACKING_RESULT_PLOT_PATH=str(tmp_path / "plots"))
    run = subprocess.run([sys.executable, str(PROJECT_ROOT / "tracking" / "run_got10k_toolkit.py"), "stark_st", "tiny_cpu",
                          "--experiment", "otb", "--root", str(root), "--sequences", SEQUENCE, "--checkpoint",
                          str(stark_st_tiny_checkpoint), "--device", "cpu"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-3000:]
    results = tmp_path / "results" / "OTB2015" / "stark_st_tiny_cpu"
    assert np.loadtxt(results / f"{SEQUENCE}.txt", delimiter=",").shape == (74, 4)  # comma-separated, as it reads
    report = json.loads((tmp_path / "reports" / "OTB2015" / "stark_st_tiny_cpu" / "performance.json").read_text())
    overall = report["stark_st_tiny_cpu"]["overall"]
    assert "stark_st_tiny_cpu on ExperimentOTB (1 sequences): success_score" in run.stdout

    ours = subprocess.run([sys.executable, "tracking/analysis_results.py", "--results_dir", str(results.parent),
                           "--trackers", "stark_st_tiny_cpu", "--dataset", "otb", "--dataset_path", str(otb),
                           "--skip_missing", "--json", str(tmp_path / "ours.json")], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert ours.returncode == 0, ours.stderr[-3000:]
    scores = json.loads((tmp_path / "ours.json").read_text())["trackers"]["stark_st_tiny_cpu"]
    assert scores["auc"] == pytest.approx(100 * overall["success_score"], abs=1e-6)
    assert scores["precision"] == pytest.approx(100 * overall["precision_score"], abs=1e-6)


def test_partial_otb_root_is_refused_before_any_download(tmp_path):
    otb = need_shared("data", "otb")
    run = subprocess.run([sys.executable, "tracking/run_got10k_toolkit.py", "stark_st", "tiny_cpu", "--experiment",
                          "otb", "--root", str(otb), "--random_weights"], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "ExperimentOTB needs all 98 sequence folders of OTB 2015" in run.stderr and "Traceback" not in run.stderr
    run = subprocess.run([sys.executable, "tracking/run_got10k_toolkit.py", "stark_st", "tiny_cpu", "--experiment",
                          "lasot", "--root", str(tmp_path), "--random_weights"], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, timeout=120)
    import got10k.experiments

    if not hasattr(got10k.experiments, "ExperimentLaSOT"):
        assert run.returncode == 2 and "has no ExperimentLaSOT" in run.stderr, run.stderr[-2000:]
