"""What the entry scripts do with partial inputs: the README's play_results command on a partial OTB folder,
--per_attribute without attribute files, --threads above the work or the cores, a video that ends early."""

import os
import runpy

import numpy as np
import pytest

from tests.conftest import PROJECT_ROOT, need_shared


def _main(script, monkeypatch):
    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "tracking"))
    return runpy.run_path(str(PROJECT_ROOT / "tracking" / script), run_name="cli_under_test")["main"]


def test_play_results_readme_command_plays_a_sequence_of_a_partial_dataset(tmp_path, monkeypatch, capsys):
    otb = need_shared("data", "otb")  # 4 of OTB's 100 sequences
    results = need_shared("data", "results", "otb100")
    out = tmp_path / "couple.avi"
    main = _main("play_results.py", monkeypatch)
    assert main(["--dataset", "otb", "--sequence", "Couple", "--trackers", "ATOM", "SiamRPN++", "--dataset_path",
                 str(otb), "--results_dir", str(results), "--save_video", str(out), "--stop", "3"]) == 0
    assert "3 frames of Couple with ATOM, SiamRPN++" in capsys.readouterr().out and out.is_file()


def test_per_attribute_without_attribute_files_warns_and_still_reports(tmp_path, monkeypatch, capsys):
    otb = need_shared("data", "otb")
    results = need_shared("data", "results", "otb100")
    monkeypatch.setenv("TRACKING_RESULT_PLOT_PATH", str(tmp_path / "plots"))
    main = _main("analysis_results.py", monkeypatch)
    with pytest.warns(UserWarning, match="--per_attribute: no attribute information for the sequences of 'otb'"):
        assert main(["--results_dir", str(results), "--trackers", "ATOM", "--dataset", "otb", "--dataset_path",
                     str(otb), "--skip_missing", "--per_attribute", "--plot", "--json", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "Reporting results over 4 / 100 sequences" in out and "ATOM" in out
    assert len(list((tmp_path / "plots" / "otb").glob("run_*/success_plot.png"))) == 1  # an unnamed run's folder
    assert (tmp_path / "s.json").is_file()


def test_threads_above_the_sequences_or_cores_says_what_it_uses(capsys, monkeypatch):
    from lib.test.evaluation.running import worker_count

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert worker_count(8, 3, device="cpu") == 3
    assert capsys.readouterr().err.strip() == "note: --threads 8: using 3 worker processes (3 sequences to track)"
    assert worker_count(8, 100, device="cpu") == 4
    assert capsys.readouterr().err.strip() == "note: --threads 8: using 4 worker processes (4 CPU cores)"
    assert worker_count(2, 100, device="cpu") == 2 and capsys.readouterr().err == ""


def test_a_video_that_ends_early_names_the_frame(capsys):
    from lib.test.utils.video import FrameSource

    class Capture:  # a file whose header announces 10 frames and whose data holds 4
        def __init__(self):
            self.left = 4

        def read(self):
            self.left -= 1
            return (True, np.zeros((8, 8, 3), np.uint8)) if self.left >= 0 else (False, None)

        def release(self):
            pass

    source = FrameSource("video file 'cut.avi'", num_frames=10, capture=Capture())
    assert len(list(source)) == 4
    err = capsys.readouterr().err
    assert "video file 'cut.avi' ended early: frame 5 (1-based) could not be read" in err and "10 frames" in err
