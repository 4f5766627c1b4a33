"""Playback of saved results on a real OTB sequence with the published ATOM and SiamRPN++ results."""

import runpy
import sys

import cv2
import numpy as np
import pytest

from lib.test.evaluation.data import Sequence, SequenceList
from lib.vis.draw import GT_COLOR, PALETTE
from lib.utils.errors import UserError
from lib.vis.playback import (find_result_file, load_result_boxes, load_tracker_results, play_sequence,
                              render_playback_frame)
from lib.vis.video import VideoFileWriter, read_video
from tests.conftest import PROJECT_ROOT, need_shared

TRACKERS = ["ATOM", "SiamRPN++"]


@pytest.fixture(scope="module")
def couple():
    root = need_shared("data", "otb", "Couple")
    gt = np.loadtxt(root / "groundtruth_rect.txt", delimiter="\t")
    frames = sorted(str(p) for p in (root / "img").glob("*.jpg"))
    return Sequence("Couple", frames, "otb", gt)


@pytest.fixture(scope="module")
def results_dir():
    return need_shared("data", "results", "otb100")


def test_result_files_are_matched_across_spellings(results_dir, tmp_path):
    assert find_result_file(results_dir / "ATOM", "Couple").name == "couple.txt"
    assert find_result_file(results_dir / "SiamRPN++", "Couple").name == "Couple.txt"
    assert find_result_file(results_dir / "ATOM", "Jogging-1").name == "jogging_1.txt"
    assert find_result_file(results_dir / "SiamRPN++", "Jogging-1").name == "Jogging-1.txt"
    assert find_result_file(results_dir / "ATOM", "NoSuchSequence") is None
    assert find_result_file(tmp_path / "absent", "Couple") is None

    (tmp_path / "jogging_1.txt").write_text("1,2,3,4\n")
    (tmp_path / "Jogging-1.txt").write_text("1,2,3,4\n")
    assert find_result_file(tmp_path, "Jogging-1").name == "Jogging-1.txt"  # the exact name wins
    with pytest.raises(ValueError, match="several result files"):
        find_result_file(tmp_path, "JOGGING_1")


def test_result_boxes_are_read_with_any_separator(results_dir, tmp_path):
    atom = load_result_boxes(results_dir / "ATOM" / "couple.txt")
    siam = load_result_boxes(results_dir / "SiamRPN++" / "Couple.txt")
    assert atom.shape == siam.shape == (140, 4)
    np.testing.assert_array_equal(atom[0], [51, 47, 25, 62])
    np.testing.assert_allclose(siam[1], [48.93640181534363, 41.3303537139908, 25.36336022391174, 63.231474922177085])
    bad = tmp_path / "bad.txt"
    bad.write_text("1\t2\t3\t4\n\n5 6 7\n")
    with pytest.raises(ValueError, match=r"bad\.txt:3: expected 4 numbers"):
        load_result_boxes(bad)


def test_frames_carry_ground_truth_trackers_and_legend(couple, results_dir):
    results = load_tracker_results(TRACKERS + ["NoSuchTracker"], couple.name, results_dir)
    assert [r.boxes is not None for r in results] == [True, True, False]
    image = cv2.cvtColor(cv2.imread(couple.frames[60]), cv2.COLOR_BGR2RGB)
    out = render_playback_frame(image, 60, couple.ground_truth_rect[60], results)
    assert out.shape == image.shape
    for color in (GT_COLOR, PALETTE[0], PALETTE[1]):
        assert np.all(out == color, axis=-1).sum() > 60  # each box (and its legend swatch) is drawn
    x, y, w, h = (int(round(v)) for v in results[0].boxes[60])
    assert np.all(out[y, x:x + w] == PALETTE[0], axis=-1).mean() > 0.5  # ATOM's top edge, frame 61


def test_video_of_a_sequence(couple, results_dir, tmp_path):
    results = load_tracker_results(TRACKERS, couple.name, results_dir)
    out = tmp_path / "couple.mp4"
    n = play_sequence(couple, results, save_video=out, fps=30)
    assert n == len(couple.frames) == 140
    frames = read_video(out)
    assert len(frames) == 140 and frames[0].shape == (240, 320, 3)
    expected = render_playback_frame(cv2.cvtColor(cv2.imread(couple.frames[99]), cv2.COLOR_BGR2RGB), 99,
                                     couple.ground_truth_rect[99], results, seq_name="Couple")
    mse = np.mean((frames[99].astype(np.float64) - expected) ** 2)
    assert 10 * np.log10(255.0 ** 2 / mse) > 25  # the drawn frame, up to MPEG-4 compression
    assert sorted(p.name for p in tmp_path.iterdir()) == ["couple.mp4"]  # no temporary file left


def test_writer_leaves_nothing_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with VideoFileWriter(tmp_path / "x.avi", fps=5) as w:
            w.write(np.zeros((16, 16, 3), np.uint8))
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="extension"):
        VideoFileWriter(tmp_path / "x.gif")


def test_cli_writes_the_video(couple, results_dir, tmp_path, monkeypatch, capsys):
    import lib.test.evaluation.datasets as datasets

    class OneSequence:  # the OTB dataset class lands on another branch; the CLI goes through the registry
        def get_sequence_list(self):
            return SequenceList([couple])

    monkeypatch.setattr(datasets, "load_dataset", lambda name, base_path=None, **kwargs: OneSequence())
    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "tracking"))
    main = runpy.run_path(str(PROJECT_ROOT / "tracking" / "play_results.py"), run_name="play_results")["main"]
    out = tmp_path / "c.avi"
    assert main(["--dataset", "otb", "--sequence", "couple", "--trackers", *TRACKERS, "--results_dir",
                 str(results_dir), "--save_video", str(out), "--stop", "20"]) == 0
    assert "20 frames of Couple with ATOM, SiamRPN++" in capsys.readouterr().out
    assert len(read_video(out)) == 20
    with pytest.raises(UserError, match="not in dataset"):
        main(["--dataset", "otb", "--sequence", "Nope", "--trackers", "ATOM", "--results_dir", str(results_dir),
              "--save_video", str(out)])
    if sys.platform.startswith("linux") and not cv2.getBuildInformation().count("GTK"):
        monkeypatch.delenv("DISPLAY", raising=False)
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        with pytest.raises(RuntimeError, match="--save_video"):
            main(["--dataset", "otb", "--sequence", "Couple", "--trackers", "ATOM", "--results_dir",
                  str(results_dir), "--stop", "2"])
