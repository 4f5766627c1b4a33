"""The VOT toolkit drives our trackers over TraX (``tracking/vot_tracker.py``, ``lib/test/toolkits/vot.py``) in a
workspace written by ``tracking/make_vot_workspace.py`` from ``../shared/data/vot`` (no download).

The toolkit (vot-toolkit 0.7.4, attributee 0.1.9) lives in its own environment, ``.venv-vot``, made by install.sh
(it pulls opencv-python, numba and llvmlite, which must not sit beside opencv-python-headless in ``.venv``). The
end-to-end test runs ``.venv-vot/bin/vot`` as a subprocess, which starts our tracker with this interpreter (``.venv``,
TraX bindings from vot-trax), reads the toolkit's text trajectories itself, and is skipped only where ``.venv-vot``
is absent. The workspace and region tests need no toolkit."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import PROJECT_ROOT, need_shared

FRAMES = 20  # of bag's 196
VOT_ENV = PROJECT_ROOT / ".venv-vot" / "bin"


def make_workspace(tmp_path, checkpoint, *extra):
    workspace = tmp_path / "workspace"
    run = subprocess.run([sys.executable, "tracking/make_vot_workspace.py", "--workspace", str(workspace),
                          "--sequences_root", str(need_shared("data", "vot")), "--frames", str(FRAMES), "--tracker",
                          "stark_st", "tiny_cpu", "--checkpoint", str(checkpoint), "--device", "cpu", "--dataset",
                          "vot18", *extra], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return workspace


def test_workspace_layout_and_trackers_ini(tmp_path, stark_st_tiny_checkpoint):
    workspace = make_workspace(tmp_path, stark_st_tiny_checkpoint)
    bag = workspace / "sequences" / "bag"
    assert (workspace / "sequences" / "list.txt").read_text().split() == ["bag"]
    assert "channels.color=color/%08d.jpg" in (bag / "sequence").read_text()
    frames = sorted(os.listdir(bag / "color"))
    assert len(frames) == FRAMES and frames[0] == "00000001.jpg" and os.path.islink(bag / "color" / frames[0])
    shared_gt = (need_shared("data", "vot", "bag") / "groundtruth.txt").read_text().splitlines()
    assert (bag / "groundtruth.txt").read_text().splitlines() == shared_gt[:FRAMES]
    assert "stack: stack.yaml" in (workspace / "config.yaml").read_text()
    assert "type: unsupervised" in (workspace / "stack.yaml").read_text()
    ini = (workspace / "trackers.ini").read_text()
    assert ini.startswith("[stark_st_tiny_cpu]\n") and "protocol = trax" in ini
    assert f"tracking/vot_tracker.py stark_st tiny_cpu --device cpu --precision fp32 --checkpoint {stark_st_tiny_checkpoint}" in ini
    again = subprocess.run([sys.executable, "tracking/make_vot_workspace.py", "--workspace", str(workspace),
                            "--sequences_root", str(tmp_path / "nowhere"), "--tracker", "stark_st", "tiny_cpu",
                            "--random_weights"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "already holds a workspace" in again.stderr


def test_polygons_reduce_to_the_min_max_box_as_the_loader_does():
    from lib.test.evaluation.annotations import polygon_to_box, read_vot_regions

    gt = need_shared("data", "vot", "bag") / "groundtruth.txt"
    first = [float(v) for v in gt.read_text().splitlines()[0].split(",")]
    assert len(first) == 8  # bag's regions are rotated rectangles (polygons)
    box = polygon_to_box(first)
    assert box == read_vot_regions(str(gt))[0].tolist()
    xs, ys = first[0::2], first[1::2]
    assert box == [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
    assert polygon_to_box([(0, 0), (4, 1), (2, 5)]) == [0.0, 0.0, 4.0, 5.0]
    with pytest.raises(ValueError):
        polygon_to_box([1, 2, 3, 4])


def test_trax_regions_give_the_same_boxes():
    from lib.test.evaluation.annotations import polygon_to_box

    import trax  # vot-trax, in requirements.txt
    from lib.test.toolkits.vot import region_to_box

    first = [float(v) for v in (need_shared("data", "vot", "bag") / "groundtruth.txt").read_text().split()[0].split(",")]
    box = polygon_to_box(first)

    assert region_to_box(trax.Rectangle.create(3, 4, 10, 20)) == [3.0, 4.0, 10.0, 20.0]
    points = [(first[i], first[i + 1]) for i in range(0, 8, 2)]
    np.testing.assert_allclose(region_to_box(trax.Polygon.create(points)), box, atol=1e-4)  # TraX sends float32


def read_text_trajectory(path):
    """The boxes (xywh, pixels) of a VOT toolkit text trajectory: one region a line, ``x,y,w,h`` for a rectangle or a
    one-number code for a special frame (``1``: initialisation), returned as ``None``."""
    regions = []
    for line in path.read_text().splitlines():
        values = [float(v) for v in line.split(",")]
        assert len(values) in (1, 4), f"{path}: unexpected region {line!r}"
        regions.append(values if len(values) == 4 else None)
    return regions


@pytest.mark.slow
def test_vot_evaluate_and_analysis_equal_test_py(tmp_path, stark_st_tiny_checkpoint):
    if not (VOT_ENV / "vot").is_file():
        pytest.skip(f"the VOT toolkit environment {VOT_ENV.parent} is absent (bash install.sh makes it; it needs PyPI)")
    version = subprocess.run([str(VOT_ENV / "python"), "-c", "import vot; print(vot.__version__)"],
                             capture_output=True, text=True, timeout=120)
    assert version.returncode == 0, version.stderr[-2000:]

    workspace = make_workspace(tmp_path, stark_st_tiny_checkpoint)  # trackers.ini starts this interpreter (.venv)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["VOT_RESULTS_BINARY"] = "false"  # text trajectories, which this test reads without the toolkit
    for command in ("evaluate", "analysis"):
        run = subprocess.run([str(VOT_ENV / "vot"), command, "--workspace", str(workspace), "stark_st_tiny_cpu"],
                             cwd=workspace, env=env, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0 and "successful" in run.stdout + run.stderr, (run.stdout + run.stderr)[-3000:]
    trajectory = read_text_trajectory(workspace / "results" / "stark_st_tiny_cpu" / "unsupervised" / "bag" / "bag_001.txt")
    assert len(trajectory) == FRAMES and trajectory[0] is None  # frame 0: the initialisation mark
    boxes = np.array(trajectory[1:])
    assert len({tuple(b) for b in boxes.tolist()}) > 10  # the boxes move: the comparison means something

    env = dict(os.environ, TRACKING_RESULTS_PATH=str(tmp_path / "results"), TRACKING_RESULT_PLOT_PATH=str(tmp_path / "plots"),
               TRACKING_SAVE_DIR=str(tmp_path / "out"))
    run = subprocess.run([sys.executable, "tracking/test.py", "stark_st", "tiny_cpu", "--dataset", "vot18",
                          "--dataset_path", str(workspace / "sequences"), "--sequence", "bag", "--checkpoint",
                          str(stark_st_tiny_checkpoint), "--device", "cpu", "--no_progress"], cwd=PROJECT_ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    expected = np.loadtxt(tmp_path / "results" / "stark_st" / "tiny_cpu" / "vot2018" / "bag.txt", delimiter="\t")
    assert expected.shape == (FRAMES, 4)
    np.testing.assert_array_equal(boxes.astype(int), expected[1:])  # the result file holds boxes.astype(int)

    reports = sorted((workspace / "analysis").glob("*.json"))
    assert reports, "vot analysis wrote no report"
    report = json.loads(reports[-1].read_text())
    assert report["toolkit"] == version.stdout.strip()
    accuracy = report["results"]["unsupervised"]["results"][0][0][0]
    assert 0.0 <= accuracy <= 1.0
