"""The public Python API (``lib/api.py``): imported from another folder it tracks a real OTB sequence with the
boxes ``tracking/test.py`` writes; missing checkpoints, bad frames and bad options are user errors; no local.py
is read when a checkpoint is given; ``dataset`` selects the per-benchmark settings.

The network is the small seeded ``tiny_cpu`` STARK-ST (its boxes move from frame to frame and it has a
confidence score), saved as a checkpoint so that both paths load the same weights (conftest fixtures)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from tests.conftest import PROJECT_ROOT, need_shared

SEQUENCE = "Football1"  # 74 frames of 352x288, comma-separated ground truth


API_SCRIPT = textwrap.dedent("""
    import glob, json, sys
    from lib.api import load_tracker, TrackResult
    from lib.utils.image import imread_rgb
    from PIL import Image
    import numpy as np

    seq, checkpoint, out = sys.argv[1:4]
    gt = np.loadtxt(seq + "/groundtruth_rect.txt", delimiter=",")
    frames = sorted(glob.glob(seq + "/img/*.jpg"))[:len(gt)]  # OTB lists 74 of the 81 images
    tracker = load_tracker("stark_st", "tiny_cpu", checkpoint=checkpoint, device="cpu", dataset="otb")
    first = tracker.initialize(Image.open(frames[0]), gt[0].tolist())   # a PIL image
    boxes, scores = [first.box], [first.score]
    for path in frames[1:]:
        result = tracker.track(imread_rgb(path))                         # an RGB uint8 array
        assert isinstance(result, TrackResult)
        boxes.append(result.box)
        scores.append(result.score)
    json.dump({"boxes": boxes, "scores": scores, "module": sys.modules["lib.api"].__file__}, open(out, "w"))
""")


def test_api_from_another_folder_equals_test_py(tmp_path, stark_st_tiny_checkpoint, stark_st_tiny_otb_result):
    otb = need_shared("data", "otb")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "use_api.py").write_text(API_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), TRACKING_RESULTS_PATH=str(tmp_path / "results"),
               TRACKING_RESULT_PLOT_PATH=str(tmp_path / "plots"), TRACKING_SAVE_DIR=str(tmp_path / "out"))
    api = subprocess.run([sys.executable, "use_api.py", str(otb / SEQUENCE), str(stark_st_tiny_checkpoint),
                          str(tmp_path / "api.json")], cwd=elsewhere, env=env, capture_output=True, text=True,
                         timeout=600)
    assert api.returncode == 0, api.stderr[-3000:]
    got = json.loads((tmp_path / "api.json").read_text())
    assert got["module"] == str(PROJECT_ROOT / "lib" / "api.py")
    boxes = np.asarray(got["boxes"])
    expected = np.loadtxt(stark_st_tiny_otb_result, delimiter="\t")
    assert boxes.shape == expected.shape == (74, 4)
    assert len({tuple(b) for b in boxes.tolist()}) > 10  # the boxes move: the comparison means something
    np.testing.assert_array_equal(boxes.astype(int), expected)  # the result file holds boxes.astype(int)
    assert got["scores"][0] is None
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in got["scores"][1:])  # STARK-ST conf_score


def test_no_local_py_read_when_a_checkpoint_is_given(monkeypatch, stark_st_tiny_checkpoint):
    from lib.api import load_tracker
    from lib.utils.local_settings import SettingsBase

    def no_local(*_, **__):
        raise AssertionError("local.py was read")

    monkeypatch.setattr(SettingsBase, "load", classmethod(no_local))  # both local.py files are read through it
    tracker = load_tracker("stark_st", "tiny_cpu", checkpoint=stark_st_tiny_checkpoint, device="cpu")
    frame = np.zeros((120, 160, 3), np.uint8)
    tracker.initialize(frame, [40, 30, 20, 20])
    result = tracker.track(frame)
    assert len(result.box) == 4 and all(isinstance(v, float) for v in result.box)
    assert tracker.checkpoint == str(stark_st_tiny_checkpoint)


def test_missing_checkpoint_is_a_user_error_naming_the_path(tmp_path, monkeypatch):
    from lib.api import load_tracker
    from lib.utils.errors import UserError

    monkeypatch.setenv("TRACKING_SAVE_DIR", str(tmp_path / "out"))
    with pytest.raises(UserError) as info:
        load_tracker("ostrack", "tiny_cpu", device="cpu")  # no checkpoint, random weights not asked for
    expected = tmp_path / "out" / "checkpoints" / "train" / "ostrack" / "tiny_cpu" / "OSTrack_ep0020.pth.tar"
    assert str(expected) in str(info.value) and "random_weights=True" in str(info.value)
    with pytest.raises(UserError, match="does not exist"):
        load_tracker("ostrack", "tiny_cpu", checkpoint=tmp_path / "nope.pth.tar", device="cpu")
    with pytest.raises(UserError, match="not both"):
        load_tracker("ostrack", "tiny_cpu", checkpoint=tmp_path / "nope.pth.tar", random_weights=True)
    with pytest.raises(UserError, match="precision"):
        load_tracker("ostrack", "tiny_cpu", precision="fp8", random_weights=True)
    with pytest.raises(UserError, match="unknown tracker"):
        load_tracker("siamfc", "tiny_cpu", random_weights=True)
    with pytest.raises(UserError, match="unknown dataset"):
        load_tracker("ostrack", "tiny_cpu", random_weights=True, dataset="otb2013x")


def test_frames_and_boxes_are_checked():
    from PIL import Image

    from lib.api import as_rgb_array, load_tracker
    from lib.utils.errors import UserError

    rgb = (np.arange(6 * 8 * 3) % 256).astype(np.uint8).reshape(6, 8, 3)
    np.testing.assert_array_equal(as_rgb_array(Image.fromarray(rgb)), rgb)
    grey = rgb[:, :, 0]
    assert as_rgb_array(grey).shape == (6, 8, 3) and (as_rgb_array(grey)[:, :, 2] == grey).all()
    for bad, what in ((rgb.astype(np.float32), "uint8"), (rgb[:, :, :2], "shape"), ([[0]], "PIL image")):
        with pytest.raises(UserError, match=what):
            as_rgb_array(bad)
    torch.manual_seed(0)
    tracker = load_tracker("ostrack", "tiny_cpu", device="cpu", random_weights=True)
    with pytest.raises(UserError, match="before initialize"):
        tracker.track(rgb)
    with pytest.raises(UserError, match="zero or negative size"):
        tracker.initialize(rgb, [1, 1, 0, 3])
    first = tracker.initialize(np.zeros((64, 64, 3), np.uint8), [10, 10, 20, 20])
    assert first.box == [10.0, 10.0, 20.0, 20.0] and first.score is None
    assert tracker.track(np.zeros((64, 64, 3), np.uint8)).score is None  # OSTrack has no confidence score


def test_dataset_selects_the_per_benchmark_settings():
    from lib.api import load_tracker

    default = load_tracker("aiatrack", "tiny_cpu", device="cpu", random_weights=True)
    lasot = load_tracker("aiatrack", "tiny_cpu", device="cpu", random_weights=True, dataset="LaSOT")
    assert default.dataset is None and lasot.dataset == "lasot"
    assert default.tracker.hyper_key == "DEFAULT" and lasot.tracker.hyper_key == "LASOT"
    got10k = load_tracker("stark_st", "tiny_cpu", device="cpu", random_weights=True, dataset="got10k")
    assert got10k.dataset == "got10k_test" and got10k.tracker.dataset_name == "got10k_test"


def test_entry_scripts_run_as_package_modules(tmp_path):
    """``pip install -e .``'s console commands import the scripts as ``tracking.<script>``: their
    ``import _init_paths`` must work that way too, and every ``[project.scripts]`` entry must name a command of
    :mod:`tracking.cli` whose script has a ``main``."""
    import importlib
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    from tracking import cli

    scripts = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == set(cli.COMMANDS)
    for command, target in scripts.items():
        module, attr = target.split(":")
        assert module == "tracking.cli" and callable(getattr(cli, attr)), command
        if (PROJECT_ROOT / (cli.COMMANDS[command].replace(".", "/") + ".py")).is_file():
            assert callable(importlib.import_module(cli.COMMANDS[command]).main), command
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    run = subprocess.run([sys.executable, "-c", "import sys; from tracking.cli import test; "
                          "sys.argv = ['tracking-test', 'ostrack', 'tiny_cpu', '--dataset', 'nosuchset']; "
                          "sys.exit(test())"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "unknown dataset 'nosuchset'" in run.stderr and "Traceback" not in run.stderr
