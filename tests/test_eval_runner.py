"""The test runner: result layout and format, crash safety (a sequence that raises, a killed run
rerun), resume, worker devices, the tracker registry's errors and the test.py command line."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from lib.test.evaluation.got10kdataset import GOT10KDataset
from lib.test.evaluation.running import SetupError, run_dataset, run_tracker, worker_device
from lib.test.evaluation.tracker import Tracker
from lib.test.tracker import TRACKER_MODULES_ENV, UnknownTrackerError, add_tracker_module
from tests.conftest import PROJECT_ROOT, free_port, need_shared, process_alive as _alive

N_FRAMES = 7


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKING_RESULTS_PATH", str(tmp_path / "results"))
    monkeypatch.setenv("TRACKING_RESULT_PLOT_PATH", str(tmp_path / "plots"))
    monkeypatch.setenv("TRACKING_SAVE_DIR", str(tmp_path / "out"))  # debug PNG views go below it
    monkeypatch.setenv(TRACKER_MODULES_ENV, "tests.dummy_trackers")
    add_tracker_module("tests.dummy_trackers")
    return tmp_path


def make_val(root, n_seqs=4, widths=None):
    """GOT-10k val layout: frames are solid BGR (10, 10, 200) so red = 200 in RGB."""
    split = root / "got10k" / "val"
    names = [f"GOT-10k_Val_{i:06d}" for i in range(1, n_seqs + 1)]
    os.makedirs(split)
    (split / "list.txt").write_text("\n".join(names) + "\n")
    for k, name in enumerate(names):
        d = split / name
        os.makedirs(d)
        for i in range(1, N_FRAMES + 1):
            cv2.imwrite(str(d / f"{i:08d}.jpg"), np.full((24, 32, 3), (10, 10, 200), np.uint8))
        w = (widths or {}).get(k, 10)
        np.savetxt(d / "groundtruth.txt", np.tile([5.7, 6, w, 12], (N_FRAMES, 1)), fmt="%g", delimiter=",")
    return root / "got10k", names


def read_result(path):
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f]


def test_results_layout_format_and_resume(env):
    base, names = make_val(env)
    seqs = GOT10KDataset(base_path=str(base), split="val").get_sequence_list()
    trk = Tracker("dummy_static", "cfg", "got10k_val", run_id=3)
    res = run_dataset(seqs, [trk], progress=False)
    assert [r.status for r in res] == ["done"] * 4 and all(r.frames == N_FRAMES for r in res)
    out_dir = env / "results" / "dummy_static" / "cfg_003" / "got10k"
    rows = read_result(out_dir / f"{names[0]}.txt")
    # frame 0 = init box truncated to int; later frames shifted by round(red / 64) = 3 (frames read as RGB)
    assert rows[0] == ["5", "6", "10", "12"] and rows[1] == ["8", "6", "10", "12"] and len(rows) == N_FRAMES
    times = np.loadtxt(out_dir / f"{names[0]}_time.txt")
    assert times.shape == (N_FRAMES,) and (times >= 0).all()
    assert sorted(os.listdir(out_dir)) == sorted([f"{n}.txt" for n in names] + [f"{n}_time.txt" for n in names])
    mtime = os.path.getmtime(out_dir / f"{names[1]}.txt")
    os.remove(out_dir / f"{names[2]}.txt")
    res = run_dataset(seqs, [trk], progress=False)
    assert sorted(r.status for r in res) == ["done", "skipped", "skipped", "skipped"]
    assert [r.sequence for r in res if r.status == "done"] == [names[2]]
    assert os.path.getmtime(out_dir / f"{names[1]}.txt") == mtime


def test_failing_sequence_is_logged_and_run_goes_on(env):
    base, names = make_val(env, widths={1: 13})
    seqs = GOT10KDataset(base_path=str(base), split="val").get_sequence_list()
    res = {r.sequence: r for r in run_dataset(seqs, [Tracker("dummy_raise", "cfg")], progress=False)}
    out_dir = env / "results" / "dummy_raise" / "cfg" / "got10k"
    assert res[names[1]].status == "failed" and "dummy failure on frame 2" in res[names[1]].error
    log = (out_dir / f"{names[1]}_error.log").read_text()
    assert "Traceback" in log and "RuntimeError: dummy failure on frame 2" in log
    assert not (out_dir / f"{names[1]}.txt").exists() and not (out_dir / f"{names[1]}_time.txt").exists()
    assert all(res[n].status == "done" and (out_dir / f"{n}.txt").exists() for n in names if n != names[1])
    # a sequence whose first box cannot initialise a tracker fails with a message naming it
    bad = seqs[0].__class__("zero_box", seqs[0].frames, "got10k", [[1, 2, 0, 5]])
    res = run_dataset([bad], [Tracker("dummy_static", "cfg")], progress=False)
    assert res[0].status == "failed" and "sequence 'zero_box': cannot initialise" in res[0].error
    # a tracker that returns NaN fails the sequence with a message naming the frame
    res = run_dataset(seqs[:1], [Tracker("dummy_nan", "cfg")], progress=False)
    assert res[0].status == "failed" and "frame 1" in res[0].error and "4 finite numbers" in res[0].error
    # a later successful run of the same sequence removes the stale log
    (env / "results" / "dummy_static" / "cfg" / "got10k").mkdir(parents=True, exist_ok=True)
    stale = env / "results" / "dummy_static" / "cfg" / "got10k" / f"{names[1]}_error.log"
    stale.write_text("old")
    run_dataset(seqs[1:2], [Tracker("dummy_static", "cfg")], progress=False)
    assert not stale.exists()


def test_ground_truth_reaches_debug_view_only(env, monkeypatch):
    probe = env / "probe.jsonl"
    monkeypatch.setenv("DUMMY_PROBE_FILE", str(probe))
    port = free_port()  # no visdom server answers there: the views go to PNG files
    base, names = make_val(env, n_seqs=1)
    result = env / "results" / "dummy_gt_probe" / "cfg" / "got10k" / f"{names[0]}.txt"
    for debug in (1, 0):
        run_tracker("dummy_gt_probe", "cfg", dataset_name="got10k_val", dataset_path=str(base), debug=debug,
                    precision="bf16", visdom_server="127.0.0.1", visdom_port=port, progress=False)
        assert result.exists() == (debug == 0)  # debug runs save nothing (official behaviour)
    pngs = sorted((env / "out" / "debug" / "dummy_gt_probe" / "cfg" / names[0]).glob("*.png"))
    assert len(pngs) == N_FRAMES - 1  # one 'Tracking' view per tracked frame, from the debug run only
    calls = [json.loads(line) for line in probe.read_text().splitlines()]
    assert len(calls) == 2 * N_FRAMES
    for c in calls:
        assert c["keys"] == (["init_bbox"] if c["kind"] == "init" else ["previous_output"])
        assert c["precision"] == "bf16" and c["visdom"] == {"server": "127.0.0.1", "port": port}
        assert c["dataset"] == "got10k_val" and c["device"] == "cpu"
    assert all(c["debug_gt"] == [5.7, 6.0, 10.0, 12.0] and c["debug"] == 1 for c in calls[:N_FRAMES])
    assert all(c["debug_gt"] is None and c["debug"] == 0 for c in calls[N_FRAMES:])


def test_debug_run_raises_and_saves_nothing(env):
    base, names = make_val(env, n_seqs=2, widths={1: 13})
    with pytest.raises(RuntimeError, match="dummy failure"):
        run_tracker("dummy_raise", "cfg", dataset_name="got10k_val", dataset_path=str(base), sequence=1, debug=1,
                    progress=False)
    res = run_tracker("dummy_static", "cfg", dataset_name="got10k_val", dataset_path=str(base), sequence=names[0],
                      debug=1, progress=False)
    assert res[0].status == "done" and not (env / "results" / "dummy_static").exists()


def test_sequence_selection_and_setup_errors(env):
    base, names = make_val(env, n_seqs=3)
    res = run_tracker("dummy_static", "cfg", dataset_name="got10k_val", dataset_path=str(base), sequence="2",
                      progress=False)
    assert [r.sequence for r in res] == [names[2]]
    res = run_tracker("dummy_static", "cfg", dataset_name="GOT10K_VAL", dataset_path=str(base), sequence=names[0],
                      progress=False)
    assert [r.sequence for r in res] == [names[0]]
    with pytest.raises(SetupError, match=r"unknown tracker 'nope'; registered trackers: .*dummy_static"):
        run_tracker("nope", "cfg", dataset_name="got10k_val", dataset_path=str(base))
    with pytest.raises(UnknownTrackerError):
        Tracker("nope", "cfg")
    with pytest.raises(SetupError, match="unknown dataset 'gotcha'"):
        run_tracker("dummy_static", "cfg", dataset_name="gotcha")
    with pytest.raises(SetupError, match=r"sequence index 7 out of range"):
        run_tracker("dummy_static", "cfg", dataset_name="got10k_val", dataset_path=str(base), sequence=7)
    with pytest.raises(SetupError, match=r"dataset folder '.*missing' does not exist"):
        run_tracker("dummy_static", "cfg", dataset_name="got10k_val", dataset_path=str(env / "missing"))
    with pytest.raises(SetupError, match=r"plugin module 'no_such_plugin'"):
        run_tracker("dummy_static", "cfg", dataset_name="got10k_val", tracker_modules=["no_such_plugin"])


def test_worker_device_assignment(monkeypatch):
    import torch

    assert worker_device(5, 2, device="cuda:7") == "cuda:7"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert worker_device(3, 2) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert [worker_device(k, 2) for k in range(5)] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]
    assert [worker_device(k, None) for k in (0, 3, 5)] == ["cuda:0", "cuda:3", "cuda:1"]
    assert worker_device(1, 0) == "cpu"


def test_real_vot_bag_results(env, shared_data):
    base = need_shared("data", "vot")
    res = run_tracker("dummy_static", "cfg", dataset_name="vot18", dataset_path=str(base), sequence="bag",
                      progress=False)
    assert res[0].status == "done" and res[0].frames == 196
    rows = read_result(env / "results" / "dummy_static" / "cfg" / "vot2018" / "bag.txt")
    assert len(rows) == 196 and rows[0] == ["292", "128", "145", "132"]  # polygon box, truncated


def _test_py_main(monkeypatch):
    """``main`` of tracking/test.py, imported in this process (a subprocess would import torch again)."""
    import importlib.util

    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "tracking"))
    spec = importlib.util.spec_from_file_location("tracking_test_entry", PROJECT_ROOT / "tracking" / "test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_cli_spawned_workers_failure_exit_status(env, capfd, monkeypatch):
    base, names = make_val(env, widths={1: 13})
    main = _test_py_main(monkeypatch)
    args = ["dummy_raise", "cfg", "--dataset_name", "got10k_val", "--dataset_path", str(base), "--threads", "2",
            "--tracker_module", "tests.dummy_trackers", "--no_progress"]
    assert main(args) == 1
    err = capfd.readouterr().err
    assert f"failed: dummy_raise/cfg {names[1]}: RuntimeError: dummy failure on frame 2" in err
    assert "4 jobs: 3 done, 0 skipped (results existed), 1 failed" in err
    assert "Traceback" in err  # the worker printed the traceback
    out_dir = env / "results" / "dummy_raise" / "cfg" / "got10k"
    assert sorted(p for p in os.listdir(out_dir) if p.endswith(".txt") and "_time" not in p) == \
        [f"{n}.txt" for n in names if n != names[1]]
    from lib.utils.errors import run_cli

    assert run_cli(main, prog="test.py", argv=["nope", "cfg", "--dataset", "got10k_val", "--dataset_path",
                                               str(base)]) == 2
    assert "test.py: error: unknown tracker 'nope'; registered trackers:" in capfd.readouterr().err


def test_worker_that_dies_loses_only_its_own_sequence(env):
    base, names = make_val(env, n_seqs=3, widths={1: 17})
    seqs = GOT10KDataset(base_path=str(base), split="val").get_sequence_list()
    res = {r.sequence: r for r in run_dataset(seqs, [Tracker("dummy_exit", "cfg")], threads=1, progress=False)}
    assert res[names[1]].status == "failed"
    assert re.fullmatch(r"worker process \d+ died \(exited with status 3\) while tracking this sequence",
                        res[names[1]].error)
    assert res[names[0]].status == "done" and res[names[2]].status == "done"  # a new worker took over
    out_dir = env / "results" / "dummy_exit" / "cfg" / "got10k"
    assert sorted(f for f in os.listdir(out_dir) if not f.endswith("_time.txt")) == [f"{names[0]}.txt",
                                                                                       f"{names[2]}.txt"]


def test_cli_killed_run_is_resumed(env, capsys, monkeypatch):
    base, names = make_val(env, n_seqs=4)
    out_dir = env / "results" / "dummy_sleep" / "cfg" / "got10k"
    args = ["dummy_sleep", "cfg", "--dataset", "got10k_val", "--dataset_path", str(base),
            "--tracker_module", "tests.dummy_trackers", "--no_progress"]
    env_vars = dict(os.environ, DUMMY_SLEEP_S="0.1")
    env_vars.pop(TRACKER_MODULES_ENV, None)
    proc = subprocess.Popen([sys.executable, str(PROJECT_ROOT / "tracking" / "test.py")] + args, cwd=str(PROJECT_ROOT),
                            env=env_vars, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and not (out_dir / f"{names[0]}.txt").exists():
            time.sleep(0.02)
        time.sleep(0.15)  # kill in the middle of the next sequence
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finished = sorted(f for f in os.listdir(out_dir) if f.endswith(".txt") and "_time" not in f)
    assert 1 <= len(finished) < 4
    for f in finished:  # only complete files, never a partial one
        assert len(read_result(out_dir / f)) == N_FRAMES
        assert len(np.loadtxt(out_dir / f.replace(".txt", "_time.txt"))) == N_FRAMES
    mtimes = {f: os.path.getmtime(out_dir / f) for f in finished}
    monkeypatch.setenv("DUMMY_SLEEP_S", "0")
    assert _test_py_main(monkeypatch)(args) == 0
    assert f"4 jobs: {4 - len(finished)} done, {len(finished)} skipped" in capsys.readouterr().err
    assert all(os.path.getmtime(out_dir / f) == t for f, t in mtimes.items())
    assert all(len(read_result(out_dir / f"{n}.txt")) == N_FRAMES for n in names)


def _worker_pids(pid_dir, count, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        pids = [int(p) for p in os.listdir(pid_dir)]
        if len(pids) >= count:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"workers did not start within {timeout} s: {os.listdir(pid_dir)}")


def _results(out_dir):
    return sorted(os.listdir(out_dir)) if os.path.isdir(out_dir) else []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGINT], ids=["SIGTERM", "SIGKILL", "Ctrl-C"])
def test_killed_parent_stops_its_workers(env, sig):
    """SIGTERM / SIGKILL to the parent only; Ctrl-C (SIGINT to the whole process group, as a terminal sends it) once
    the first sequences are finished."""
    base, names = make_val(env, n_seqs=4, widths={k: 10 + k for k in range(4)})
    pid_dir = env / "pids"
    pid_dir.mkdir()
    out_dir = env / "results" / "dummy_sleep" / "cfg" / "got10k"
    args = ["dummy_sleep", "cfg", "--dataset", "got10k_val", "--dataset_path", str(base), "--threads", "2",
            "--tracker_module", "tests.dummy_trackers", "--no_progress"]
    env_vars = dict(os.environ, DUMMY_SLEEP_S="0.3", DUMMY_PID_DIR=str(pid_dir))  # 2 s per sequence
    env_vars.pop(TRACKER_MODULES_ENV, None)
    proc = subprocess.Popen([sys.executable, str(PROJECT_ROOT / "tracking" / "test.py")] + args,
                            cwd=str(PROJECT_ROOT), env=env_vars, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        workers = _worker_pids(pid_dir, 2)  # both workers are tracking their first sequence
        if sig == signal.SIGINT:
            deadline = time.time() + 60
            while time.time() < deadline and not all(f"{n}.txt" in _results(out_dir) for n in names[:2]):
                time.sleep(0.02)
            time.sleep(0.1)
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)  # the parent only, not its process group
        _, err = proc.communicate(timeout=20)
        deadline = time.time() + 5
        while time.time() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.05)
        assert not [p for p in workers if _alive(p)], "workers outlived their parent"
        written = _results(out_dir)
        time.sleep(2.5)  # longer than a sequence: a surviving worker would write its result now
        assert _results(out_dir) == written
        finished = [n for n in names if n + ".txt" in written]
        if sig == signal.SIGINT:  # Ctrl-C keeps the finished sequences
            assert names[0] in finished and names[1] in finished and len(finished) < 4
        else:
            assert not finished
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM
        assert "interrupted by SIGTERM: 4 not finished, 4 jobs: 0 done" in err
        assert "Run the same command to resume:\n  python " in err and "--threads 2" in err
    if sig == signal.SIGINT:
        assert proc.returncode == 130
        assert f"interrupted by SIGINT: {4 - len(finished)} not finished, 4 jobs: {len(finished)} done" in err
        assert "test.py: stopped by SIGINT; the finished sequences are kept. Run the same command to resume:" in err
        assert "Traceback" not in err


def test_worker_killed_by_the_os_loses_only_its_sequence(env, monkeypatch):
    import threading

    base, names = make_val(env, n_seqs=4, widths={k: 10 + k for k in range(4)})
    pid_dir = env / "pids"
    pid_dir.mkdir()
    monkeypatch.setenv("DUMMY_SLEEP_S", "0.15")
    monkeypatch.setenv("DUMMY_PID_DIR", str(pid_dir))
    seqs = GOT10KDataset(base_path=str(base), split="val").get_sequence_list()
    killed = []

    def kill_the_worker_of_sequence_1():
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            for p in os.listdir(pid_dir):
                if "11" in (pid_dir / p).read_text().split():
                    os.kill(int(p), signal.SIGKILL)
                    killed.append(int(p))
                    break
            time.sleep(0.02)

    killer = threading.Thread(target=kill_the_worker_of_sequence_1)
    killer.start()
    res = {r.sequence: r for r in run_dataset(seqs, [Tracker("dummy_sleep", "cfg")], threads=2, progress=False)}
    killer.join()
    assert killed
    assert res[names[1]].status == "failed"
    assert res[names[1]].error == f"worker process {killed[0]} died (killed by SIGKILL) while tracking this sequence"
    assert all(res[n].status == "done" for n in names if n != names[1])


# -- checks before tracking and result provenance ---------------------------------------------------------------
def _cli(monkeypatch, capfd, args):
    """Run tracking/test.py's main in this process through run_cli; returns (exit status, stderr)."""
    from lib.utils.errors import run_cli

    status = run_cli(_test_py_main(monkeypatch), prog="test.py",
                     argv=args + ["--tracker_module", "tests.dummy_trackers", "--no_progress"])
    return status, capfd.readouterr().err


def _tiny_ostrack_checkpoint(path, drop=None):
    import torch

    from lib.models import build_network

    torch.manual_seed(0)
    sd = build_network("ostrack", "tiny_cpu").state_dict()
    if drop:
        sd.pop(drop)
        sd["box_head.extra.weight"] = torch.zeros(3, 3)
    torch.save({"net": sd, "net_type": "OSTrack"}, path)
    return str(path)


def test_preflight_results_folder_not_writable(env, monkeypatch, capfd):
    base, names = make_val(env, n_seqs=2)
    probe = env / "probe.jsonl"
    monkeypatch.setenv("DUMMY_PROBE_FILE", str(probe))
    (env / "not_a_folder").write_text("x")
    monkeypatch.setenv("TRACKING_RESULTS_PATH", str(env / "not_a_folder"))
    status, err = _cli(monkeypatch, capfd, ["dummy_gt_probe", "cfg", "--dataset", "got10k_val", "--dataset_path",
                                            str(base), "--threads", "2"])
    assert status == 2 and not probe.exists()  # nothing tracked
    assert f"test.py: error: cannot write results to '{env}/not_a_folder/dummy_gt_probe/cfg/got10k'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_preflight_checkpoint_missing_or_not_fitting(env, monkeypatch, capfd):
    base, names = make_val(env, n_seqs=2)
    args = ["ostrack", "tiny_cpu", "--dataset", "got10k_val", "--dataset_path", str(base), "--threads", "2"]
    status, err = _cli(monkeypatch, capfd, args + ["--checkpoint", str(env / "nope.pth.tar")])
    assert status == 2 and err.strip() == (f"test.py: error: checkpoint file '{env}/nope.pth.tar' (--checkpoint) "
                                           f"does not exist")
    status, err = _cli(monkeypatch, capfd, args + ["--checkpoint", str(env)])
    assert status == 2 and "is a directory, not a checkpoint file" in err
    bad = _tiny_ostrack_checkpoint(env / "bad.pth.tar", drop="box_head.conv1_ctr.0.weight")
    status, err = _cli(monkeypatch, capfd, args + ["--checkpoint", bad])
    assert status == 2 and "Traceback" not in err
    assert f"test.py: error: checkpoint '{bad}' does not fit the network of tracker 'ostrack'" in err
    assert "missing keys (1): box_head.conv1_ctr.0.weight" in err
    assert "unexpected keys (1): box_head.extra.weight" in err
    assert not (env / "results").exists()  # no worker started, nothing written


def test_preflight_sequences_without_frames(env, monkeypatch, capfd):
    base, names = make_val(env, n_seqs=4)
    for name in names[1:3]:
        for f in (base / "val" / name).glob("*.jpg"):
            f.unlink()
    status, err = _cli(monkeypatch, capfd, ["dummy_static", "cfg", "--dataset", "got10k_val", "--dataset_path",
                                            str(base), "--threads", "2"])
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert f"2 of the 4 sequences to track have no frames (first frame missing): {names[1]} (" in err
    assert f"{names[2]} ('{base}/val/{names[2]}/00000001.jpg')" in err
    assert not (env / "results" / "dummy_static" / "cfg" / "got10k").exists()


def test_provenance_mismatch_stops_and_overwrite_reruns(env, monkeypatch, capfd):
    base, names = make_val(env, n_seqs=2)
    out = env / "results" / "dummy_static" / "cfg"
    args = ["dummy_static", "cfg", "--dataset", "got10k_val", "--dataset_path", str(base)]
    assert _cli(monkeypatch, capfd, args)[0] == 0
    record = json.loads((out / "_provenance.json").read_text())
    assert sorted(record["sequences"]) == [f"got10k/{n}" for n in names]
    (rec,) = record["records"].values()
    assert rec["precision"] == "fp32" and rec["tracker"] == "dummy_static" and rec["dataset"] == "got10k_val"
    mtimes = [os.path.getmtime(out / "got10k" / f"{n}.txt") for n in names]
    status, err = _cli(monkeypatch, capfd, args + ["--precision", "bf16"])
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert f"test.py: error: 2 existing results in '{out}' were made differently from this run: precision: fp32 " \
           f"(results) vs bf16 (now) (2 sequences" in err and "--overwrite" in err
    assert [os.path.getmtime(out / "got10k" / f"{n}.txt") for n in names] == mtimes
    status, err = _cli(monkeypatch, capfd, args + ["--precision", "bf16", "--overwrite"])
    assert status == 0 and "2 jobs: 2 done, 0 skipped" in err
    (rec,) = json.loads((out / "_provenance.json").read_text())["records"].values()
    assert rec["precision"] == "bf16"
    status, err = _cli(monkeypatch, capfd, args + ["--precision", "bf16"])  # same settings: skipped as before
    assert status == 0 and "2 jobs: 0 done, 2 skipped" in err
    # results without a record (older runs): one note, kept and skipped
    (out / "_provenance.json").unlink()
    status, err = _cli(monkeypatch, capfd, args)
    assert status == 0 and "2 jobs: 0 done, 2 skipped" in err
    assert err.count("2 existing results in") == 1 and "have no provenance record" in err


def test_provenance_of_config_contents_and_checkpoint(env, monkeypatch, capfd):
    import shutil

    base, names = make_val(env, n_seqs=1)
    cfg = env / "mine.yaml"
    shutil.copy(PROJECT_ROOT / "experiments" / "ostrack" / "tiny_cpu.yaml", cfg)
    ckpt = _tiny_ostrack_checkpoint(env / "a.pth.tar")
    args = ["ostrack", str(cfg), "--dataset", "got10k_val", "--dataset_path", str(base)]
    assert _cli(monkeypatch, capfd, args + ["--checkpoint", ckpt])[0] == 0
    with open(cfg, "a") as f:
        f.write("\n# a comment changes nothing\n")
    assert _cli(monkeypatch, capfd, args + ["--checkpoint", ckpt])[0] == 0  # same resolved config: skipped
    text = cfg.read_text()
    assert "SEARCH_FACTOR: 4.0" in text
    cfg.write_text(text.replace("SEARCH_FACTOR: 4.0", "SEARCH_FACTOR: 4.5"))
    status, err = _cli(monkeypatch, capfd, args + ["--checkpoint", ckpt])
    assert status == 2 and f"config contents: sha256 " in err and f" of {cfg} (results) vs sha256 " in err
    cfg.write_text(text)
    other = env / "b.pth.tar"
    shutil.copy(ckpt, other)  # the same contents under another name: the same checkpoint
    assert _cli(monkeypatch, capfd, args + ["--checkpoint", str(other)])[0] == 0
    import torch

    sd = torch.load(other, weights_only=True)
    sd["net"]["box_head.conv1_ctr.0.weight"] += 1
    torch.save(sd, other)
    status, err = _cli(monkeypatch, capfd, args + ["--checkpoint", str(other)])
    assert status == 2 and "checkpoint contents: sha256 " in err and f"('{other}') (now)" in err
