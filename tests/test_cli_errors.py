"""Every entry script reports a user error as one readable message naming the file / option / field and exits with
status 2, without a traceback (``--verbose`` keeps it). The processes are started together by a module fixture and
each fails before any network is built, so the whole file costs about as much as a few Python starts."""

import os
import runpy
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT, SHARED_DATA, need_shared

OTB = str(SHARED_DATA / "otb")
VIDEO = str(SHARED_DATA / "videos" / "bag.avi")


def _cases(tmp):
    bad_size = tmp / "bad_size.yaml"
    bad_size.write_text("DATA:\n  SEARCH:\n    SIZE: big\n")
    zero = tmp / "zero.yaml"
    zero.write_text("TEST:\n  SEARCH_SIZE: 0\n")
    epoch = tmp / "epoch.yaml"
    epoch.write_text("TEST:\n  EPOCH: [2]\n")
    return {
        # name: (argv, fragments the message must hold)
        "test_config_not_found": (["tracking/test.py", "ostrack", "nope", "--dataset", "otb", "--dataset_path", OTB],
                                  ["config 'nope' of script 'ostrack' not found", "tiny_cpu"]),
        "test_config_type": (["tracking/test.py", "ostrack", str(bad_size), "--dataset", "otb", "--dataset_path", OTB],
                             [str(bad_size), "'DATA.SEARCH.SIZE' must be an integer", "'big'"]),
        "test_config_epoch": (["tracking/test.py", "ostrack", str(epoch), "--dataset", "otb", "--dataset_path", OTB],
                              [str(epoch), "'TEST.EPOCH' must be an integer", "[2]"]),
        "test_missing_checkpoint": (["tracking/test.py", "ostrack", "tiny_cpu", "--dataset", "otb", "--dataset_path",
                                     OTB, "--checkpoint", str(tmp / "none.pth")],
                                    [str(tmp / "none.pth"), "does not exist"]),
        "test_threads": (["tracking/test.py", "ostrack", "tiny_cpu", "--threads", "-1"], ["--threads", "-1"]),
        "train_unknown_script": (["tracking/train.py", "--script", "ostrak", "--mode", "single"],
                                 ["unknown script 'ostrak'", "known scripts:", "ostrack"]),
        "train_nproc": (["tracking/train.py", "--script", "ostrack", "--config", "tiny_cpu", "--nproc_per_node", "-2"],
                        ["--nproc_per_node must be a positive number, got -2"]),
        "train_config_range": (["tracking/train.py", "--script", "ostrack", "--config", str(zero), "--mode", "single"],
                               [str(zero), "'TEST.SEARCH_SIZE' must be a positive number, got 0"]),
        "video_demo_max_frames": (["tracking/video_demo.py", "ostrack", "tiny_cpu", VIDEO, "--init_box", "1", "2",
                                   "30", "40", "--max_frames", "0"], ["--max_frames", "got 0"]),
        "video_demo_source": (["tracking/video_demo.py", "ostrack", "tiny_cpu", str(tmp / "none.avi"), "--init_box",
                               "1", "2", "30", "40"], [str(tmp / "none.avi"), "does not exist"]),
        "profile_iters": (["tracking/profile_model.py", "--iters", "0"], ["--iters", "got 0"]),
        "profile_config": (["tracking/profile_model.py", "--script", "ostrack", "--config", str(bad_size)],
                           [str(bad_size), "DATA.SEARCH.SIZE"]),
        "play_results_sequence": (["tracking/play_results.py", "--dataset", "otb", "--dataset_path", OTB,
                                   "--sequence", "Nope", "--trackers", "ATOM", "--results_dir", str(tmp)],
                                  ["sequence 'Nope' is not in dataset 'otb'", "Couple"]),
        "analysis_results_dir": (["tracking/analysis_results.py", "--dataset", "otb", "--results_dir",
                                  str(tmp / "none")], [str(tmp / "none")]),
        "convert_checkpoint_input": (["tracking/convert_checkpoint.py", "--from", "mmtracking", "--tracker",
                                      "stark_st2", str(tmp / "in.pth"), str(tmp / "out.pth")],
                                     [str(tmp / "in.pth"), "does not exist"]),
        "make_lmdb_src": (["tracking/make_lmdb.py", "--dataset", "got10k", "--src", str(tmp / "none"), "--dst",
                           str(tmp / "l")], [str(tmp / "none")]),
        "train_trainer_error": (["tracking/train.py", "--script", "ostrack", "--config", "tiny_cpu", "--mode",
                                 "single", "--save_dir", str(tmp / "train")],
                                ["'lasot_dir'", str(tmp / "no_lasot"), "TRACKING_LASOT_DIR"]),
        "transform_got10k": (["lib/test/utils/transform_got10k.py", "--tracker_name", "trk", "--cfg_name", "cfg",
                              "--results_path", str(tmp / "none")], ["no GOT-10k results", str(tmp / "none")]),
        "make_demo_training_set": (["tracking/make_demo_training_set.py", "--shared", str(tmp), "--dst",
                                    str(tmp / "demo")], [str(tmp), "otb/"]),
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """All the cases' processes, started at once: {name: (argv, fragments, returncode, stderr)}."""
    need_shared("data", "otb")
    need_shared("data", "videos", "bag.avi")
    tmp = tmp_path_factory.mktemp("cli")
    env = dict(os.environ, TRACKING_RESULTS_PATH=str(tmp / "results"), TRACKING_RESULT_PLOT_PATH=str(tmp / "plots"),
               TRACKING_SAVE_DIR=str(tmp / "out"), TRACKING_VERBOSE="0", OMP_NUM_THREADS="1",
               TRACKING_WORKSPACE_DIR=str(tmp), TRACKING_LASOT_DIR=str(tmp / "no_lasot"))
    procs = {}
    cases = _cases(tmp)
    assert sorted(cases) == sorted(CASES + IN_PROCESS)
    for name in CASES:
        argv, fragments = cases[name]
        procs[name] = subprocess.Popen([sys.executable, *argv], cwd=PROJECT_ROOT, env=env, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = {}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        done[name] = (*cases[name], proc.returncode, err)
    return done


#: one process per entry script (a Python start with torch costs ~2 s of CPU); the other cases run in this process
CASES = ["test_config_not_found", "train_unknown_script", "train_nproc", "train_config_range", "video_demo_max_frames",
         "profile_iters", "play_results_sequence", "analysis_results_dir", "convert_checkpoint_input", "make_lmdb_src",
         "make_demo_training_set", "transform_got10k", "train_trainer_error"]
#: cases whose message comes from another program than the script started (train.py's trainer process)
PROG = {"train_trainer_error": "run_training.py"}
IN_PROCESS = ["test_config_type", "test_config_epoch", "test_missing_checkpoint", "test_threads", "video_demo_source",
              "profile_config"]


def _check(script, fragments, code, err):
    assert code == 2, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith(f"{script}: error: ")]
    assert len(lines) == 1, err[-2000:]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize("name", CASES)
def test_user_error_is_one_message_and_status_2(runs, name):
    argv, fragments, code, err = runs[name]
    _check(PROG.get(name, os.path.basename(argv[0])), fragments, code, err)


@pytest.mark.parametrize("name", IN_PROCESS)
def test_user_error_in_process(name, tmp_path, monkeypatch, capsys):
    from lib.utils.errors import run_cli

    need_shared("data", "otb")
    for field, sub in (("RESULTS_PATH", "results"), ("RESULT_PLOT_PATH", "plots"), ("SAVE_DIR", "out")):
        monkeypatch.setenv(f"TRACKING_{field}", str(tmp_path / sub))
    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "tracking"))
    argv, fragments = _cases(tmp_path)[name]
    main = runpy.run_path(str(PROJECT_ROOT / argv[0]), run_name="cli_under_test")["main"]
    script = os.path.basename(argv[0])
    code = run_cli(main, prog=script, argv=argv[1:])
    _check(script, fragments, code, capsys.readouterr().err)


def test_verbose_keeps_the_traceback():
    proc = subprocess.run([sys.executable, "tracking/train.py", "--script", "ostrak", "--mode", "single",
                           "--verbose"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "unknown script 'ostrak'" in proc.stderr


def test_video_demo_init_box_outside_the_image(tmp_path, monkeypatch, capsys):
    import torch

    from lib.models import build_network
    from lib.utils.errors import run_cli

    video = need_shared("data", "videos", "bag.avi")
    torch.manual_seed(0)
    checkpoint = tmp_path / "ostrack_random.pth"
    torch.save(build_network("ostrack", "tiny_cpu").state_dict(), checkpoint)
    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "tracking"))
    main = runpy.run_path(str(PROJECT_ROOT / "tracking" / "video_demo.py"), run_name="cli_under_test")["main"]
    code = run_cli(main, prog="video_demo.py", argv=["ostrack", "tiny_cpu", str(video), "--init_box", "5000", "5000",
                                                      "10", "10", "--checkpoint", str(checkpoint), "--no_display",
                                                      "--device", "cpu"])
    _check("video_demo.py", ["init box [5000.0, 5000.0, 10.0, 10.0] (xywh) lies outside the 480x360 image"], code,
           capsys.readouterr().err)


def test_the_project_error_classes_are_classified():
    """User errors (bad input) are registered where they are defined; a tracker's bad output stays internal."""
    from lib.config import ConfigError, ConfigNotFoundError
    from lib.models.acceleration import GraphCaptureError
    from lib.test.analysis.extract import MissingResultError, ResultFileError
    from lib.test.analysis.metrics import PredictionError
    from lib.test.analysis.protocols import UnsupportedDatasetError
    from lib.test.analysis.results import ResultsNotFoundError
    from lib.test.evaluation.annotations import AnnotationError, DatasetFolderError
    from lib.test.evaluation.data import MissingSequencesError
    from lib.test.evaluation.datasets import UnknownDatasetError
    from lib.test.evaluation.running import SetupError
    from lib.test.evaluation.tracker import TrackerOutputError
    from lib.test.tracker import UnknownTrackerError
    from lib.test.tracker.base import BatchingNotSupportedError, InitBoxError, MissingCheckpointError
    from lib.test.utils.submission import SubmissionError
    from lib.train.data.sampler import SamplingError
    from lib.train.dataset.base_video_dataset import DatasetError
    from lib.utils.errors import user_error_types
    from lib.utils.image import FrameReadError
    from lib.utils.lmdb_utils import LmdbError
    from lib.utils.local_settings import SettingsError
    from lib.vis.playback import PlaybackError
    from lib.vis.video import NoDisplayError, VideoFileError
    from lib.vis.visdom_assets import AssetError

    user = (ConfigError, ConfigNotFoundError, GraphCaptureError, MissingResultError, ResultFileError, PredictionError,
            UnsupportedDatasetError, ResultsNotFoundError, AnnotationError, DatasetFolderError, MissingSequencesError,
            UnknownDatasetError, SetupError, UnknownTrackerError, BatchingNotSupportedError, InitBoxError,
            MissingCheckpointError, SubmissionError, SamplingError, DatasetError, FrameReadError, LmdbError,
            SettingsError, PlaybackError, NoDisplayError, VideoFileError, AssetError)
    registered = user_error_types()
    assert [c.__name__ for c in user if not issubclass(c, registered)] == []
    assert not issubclass(TrackerOutputError, registered)
