"""GOT-10k and TrackingNet submission zips: run the runner on generated test layouts, pack, unpack and
check the contents; incomplete or malformed result sets are refused with the missing names."""

import os
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest

from lib.test.evaluation.running import run_tracker
from lib.test.tracker import TRACKER_MODULES_ENV, add_tracker_module
from lib.test.utils.submission import GOT10K_TEST_NAMES, SubmissionError, pack_got10k, pack_trackingnet
from tests.conftest import PROJECT_ROOT


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKING_RESULTS_PATH", str(tmp_path / "results"))
    monkeypatch.setenv("TRACKING_RESULT_PLOT_PATH", str(tmp_path / "plots"))
    monkeypatch.setenv(TRACKER_MODULES_ENV, "tests.dummy_trackers")
    add_tracker_module("tests.dummy_trackers")
    return tmp_path


def _frames(folder, names):
    os.makedirs(folder, exist_ok=True)
    for n in names:
        cv2.imwrite(os.path.join(folder, n), np.zeros((16, 16, 3), np.uint8))


def make_got10k_test(root, n_seqs=3, n_frames=5):
    names = [f"GOT-10k_Test_{i:06d}" for i in range(1, n_seqs + 1)]
    os.makedirs(root / "test")
    (root / "test" / "list.txt").write_text("\n".join(names) + "\n")
    for k, name in enumerate(names):
        _frames(str(root / "test" / name), [f"{i:08d}.jpg" for i in range(1, n_frames + 1)])
        (root / "test" / name / "groundtruth.txt").write_text(f"{3 + k}.6,4,5,6\n")
    return names


def unzip(path):
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n).decode() for n in zf.namelist()}


def test_got10k_zip_contents_and_refusals(env):
    root = env / "got10k"
    names = make_got10k_test(root)
    res = run_tracker("dummy_static", "cfg", dataset_name="got10k_test", dataset_path=str(root), progress=False)
    assert all(r.status == "done" for r in res)
    raw = env / "results" / "dummy_static" / "cfg" / "got10k"
    before = sorted(os.listdir(raw))
    path = pack_got10k("dummy_static", "cfg", dataset_path=str(root))
    assert path == str(env / "results" / "dummy_static" / "cfg" / "got10k_submit.zip")
    files = unzip(path)
    assert sorted(files) == sorted([f"{n}/{n}_001.txt" for n in names] + [f"{n}/{n}_time.txt" for n in names])
    for k, n in enumerate(names):
        rows = files[f"{n}/{n}_001.txt"].splitlines()
        assert len(rows) == 5 and rows[0] == f"{3 + k},4,5,6"
        np.testing.assert_array_equal(np.loadtxt(rows, delimiter=","), np.loadtxt(raw / f"{n}.txt", delimiter="\t"))
        assert files[f"{n}/{n}_time.txt"] == (raw / f"{n}_time.txt").read_text()
    assert sorted(os.listdir(raw)) == before  # raw results kept

    # the official 180-name list applies when no dataset is given: 177 sequences missing
    with pytest.raises(SubmissionError, match=r"354 file\(s\) missing: GOT-10k_Test_000004.txt, "
                                              r"GOT-10k_Test_000004_time.txt"):
        pack_got10k("dummy_static", "cfg")
    assert len(GOT10K_TEST_NAMES) == 180 and GOT10K_TEST_NAMES[-1] == "GOT-10k_Test_000180"
    os.remove(raw / f"{names[1]}_time.txt")
    with pytest.raises(SubmissionError, match=rf"1 file\(s\) missing: {names[1]}_time.txt"):
        pack_got10k("dummy_static", "cfg", dataset_path=str(root))
    (raw / f"{names[1]}_time.txt").write_text("0.1\n" * 5)
    (raw / f"{names[2]}.txt").write_text("1\t2\t3\t4\n1\t2\t3\n")
    with pytest.raises(SubmissionError, match=rf"{names[2]}.txt, line 2: expected 4 finite numbers"):
        pack_got10k("dummy_static", "cfg", dataset_path=str(root))
    (raw / f"{names[2]}.txt").write_text("1\t2\t3\t4\n")
    with pytest.raises(SubmissionError, match=r"1 boxes for a sequence of 5 frames"):
        pack_got10k("dummy_static", "cfg", dataset_path=str(root))
    with pytest.raises(SubmissionError, match="no GOT-10k results"):
        pack_got10k("other", "cfg", dataset_path=str(root))


def test_trackingnet_zip_contents_and_refusals(env):
    root = env / "trackingnet"
    names = ["zz_video_1", "aa_video_0"]
    for n in names:
        os.makedirs(root / "TEST" / "anno", exist_ok=True)
        (root / "TEST" / "anno" / f"{n}.txt").write_text("2.5,3,4,5\n")
        _frames(str(root / "TEST" / "frames" / n), [f"{i}.jpg" for i in range(11)])
    res = run_tracker("dummy_static", "cfg", dataset_name="trackingnet", dataset_path=str(root), run_id=2,
                      progress=False)
    assert [r.frames for r in res] == [11, 11]
    raw = env / "results" / "dummy_static" / "cfg_002" / "trackingnet"
    files = unzip(pack_trackingnet("dummy_static", "cfg", run_id=2, dataset_path=str(root)))
    assert sorted(files) == sorted(f"{n}.txt" for n in names)
    rows = files["aa_video_0.txt"].splitlines()
    assert len(rows) == 11 and rows[0] == "2,3,4,5" and all(r.count(",") == 3 for r in rows)
    assert os.path.isfile(raw / "aa_video_0.txt") and os.path.isfile(raw / "aa_video_0_time.txt")
    # without a sequence list the set must hold all 511 sequences
    with pytest.raises(SubmissionError, match=r"holds 2 result files, the TrackingNet TEST set has 511"):
        pack_trackingnet("dummy_static", "cfg", run_id=2)
    listing = env / "list.txt"
    listing.write_text("aa_video_0\nzz_video_1\nmm_video_9\n")
    with pytest.raises(SubmissionError, match=r"1 file\(s\) missing: mm_video_9.txt"):
        pack_trackingnet("dummy_static", "cfg", run_id=2, sequence_list=str(listing))


def test_transform_scripts_command_line(env, capsys):
    root = env / "got10k"
    names = make_got10k_test(root, n_seqs=2, n_frames=3)
    raw = env / "results" / "trk" / "cfg" / "got10k"
    os.makedirs(raw)
    for n in names:
        (raw / f"{n}.txt").write_text("1\t2\t3\t4\n5,6,7,8\n9\t10\t11\t12.5\n")
        (raw / f"{n}_time.txt").write_text("0.1\n0.2\n0.3\n")
    cmd = [sys.executable, str(PROJECT_ROOT / "lib" / "test" / "utils" / "transform_got10k.py"),
           "--tracker_name", "trk", "--cfg_name", "cfg", "--dataset_path", str(root), "--output", str(env / "sub.zip")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert proc.returncode == 0, proc.stderr
    files = unzip(env / "sub.zip")
    assert files[f"{names[0]}/{names[0]}_001.txt"] == "1,2,3,4\n5,6,7,8\n9,10,11,12.500\n"
    os.remove(raw / f"{names[1]}.txt")
    from lib.test.utils.submission import main_transform

    assert main_transform("got10k", cmd[2:]) == 2  # same command line, in this process
    assert "transform_got10k.py: error: incomplete result set" in capsys.readouterr().err
    assert main_transform("trackingnet", ["--tracker_name", "trk", "--cfg_name", "cfg"]) == 2
    assert "no TrackingNet results" in capsys.readouterr().err
