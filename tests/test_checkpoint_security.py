"""A checkpoint file never runs code (issue 14, section 1).

The attacks are built here: pickle ``__reduce__`` payloads (``os.system``, ``builtins.exec``,
``subprocess.check_call``, ``subprocess.Popen``) at the top level, nested in ``net`` and in ``model``, in the zip
and the legacy ``torch.save`` formats, and a TorchScript archive whose scripted ``__setstate__`` writes a file
with ``torch.from_file(path, True, n).copy_``. A sanity check proves that each payload fires when the file is
loaded the unsafe way; then :func:`safe_load`, the pretrained-backbone loaders and every command line that takes
a checkpoint must leave no marker file behind, and the command lines stop with one message and exit status 2.
Good checkpoints (a bare state_dict, an official layout with a pickled settings object) still load.
"""

import argparse
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Tuple

import numpy as np
import pytest
import torch

from lib.utils.checkpoint import (CheckpointError, CheckpointNotFoundError, InertObject, extract_state_dict,
                                  safe_load, verify_checkpoint)
from lib.utils.errors import is_user_error
from tests.conftest import PROJECT_ROOT


class _Reduce:
    """Unpickles as ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


class _Settings:  # stands for the official lib.train.admin.settings.Settings / easydict / Namespace objects
    def __init__(self):
        self.script_name = "ostrack"
        self.cfg = {"TRAIN": {"EPOCH": 300}}


class _EasyDictLike(dict):  # a dict subclass with attributes, as easydict.EasyDict
    def __init__(self, **kw):
        super().__init__(**kw)
        self.__dict__.update(kw)


class EvilScript(torch.nn.Module):
    """A TorchScript module whose ``__setstate__`` (run by ``torch.jit.load``) writes 5 bytes to ``marker``."""

    def __init__(self, marker: str):
        super().__init__()
        self.marker = marker
        self.w = torch.nn.Parameter(torch.zeros(2))

    def forward(self, x):
        return x

    @torch.jit.export
    def __getstate__(self) -> Tuple[str, bool, torch.Tensor]:
        return (self.marker, self.training, self.w)

    @torch.jit.export
    def __setstate__(self, state: Tuple[str, bool, torch.Tensor]) -> None:
        written = torch.from_file(state[0], True, 5, dtype=torch.uint8)
        written.copy_(torch.tensor([80, 87, 78, 69, 68], dtype=torch.uint8))
        self.marker = state[0] + str(int(written.sum().item()))
        self.training = state[1]
        self.w = state[2]


def _payloads(marker_dir: Path):
    """name -> (payload object, marker path it creates when unpickled unsafely)."""
    m = {k: marker_dir / f"pwned_{k}" for k in ("system", "exec", "check_call", "popen")}
    return {
        "system": (_Reduce(os.system, f"touch {m['system']}"), m["system"]),
        "exec": (_Reduce(exec, f"open({str(m['exec'])!r}, 'w').close()"), m["exec"]),
        "check_call": (_Reduce(subprocess.check_call, ["touch", str(m["check_call"])]), m["check_call"]),
        "popen": (_Reduce(subprocess.Popen, ["touch", str(m["popen"])]), m["popen"]),
    }


def _layouts(payload):
    sd = {"w": torch.arange(4.0)}
    return {
        "top": {"net": sd, "settings": payload, "epoch": 3},
        "in_net": {"net": {**sd, "evil": payload}, "epoch": 3},
        "in_model": {"model": {**sd, "evil": payload}},
    }


@pytest.fixture(scope="module")
def attacks(tmp_path_factory):
    """Every payload x layout x format as files, the TorchScript archive, and their markers; the sanity check
    (one subprocess) shows that each file creates its marker when loaded the unsafe way."""
    root = tmp_path_factory.mktemp("attacks")
    files, markers = [], []
    for kind, (payload, marker) in _payloads(root).items():
        markers.append(marker)
        for layout, obj in _layouts(payload).items():
            for legacy in (False, True):
                path = root / f"{kind}_{layout}_{'legacy' if legacy else 'zip'}.pth.tar"
                torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
                files.append((path, marker))
    ts_marker = root / "pwned_torchscript"
    ts_path = root / "scripted.pth.tar"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit deprecation warnings
        torch.jit.save(torch.jit.script(EvilScript(str(ts_marker))), str(ts_path))
    markers.append(ts_marker)
    unsafe = ("import sys, time, torch\n"
              "for p in sys.argv[1:]:\n"
              "    try:\n"
              "        torch.load(p, weights_only=False)\n"
              "    except Exception:\n"
              "        pass\n"
              "time.sleep(0.5)\n")
    proc = subprocess.run([sys.executable, "-c", unsafe, *[str(p) for p, _ in files], str(ts_path)],
                          capture_output=True, text=True, timeout=300)
    deadline = time.time() + 10
    while not all(m.exists() for m in markers) and time.time() < deadline:  # Popen runs asynchronously
        time.sleep(0.2)
    assert all(m.exists() for m in markers), (proc.stderr[-2000:], [m.name for m in markers if not m.exists()])
    assert ts_marker.read_bytes() == b"PWNED"
    for m in markers:
        m.unlink()
    return {"files": files, "torchscript": ts_path, "markers": markers, "root": root}


def _no_markers(attacks):
    time.sleep(0.3)
    left = [m.name for m in attacks["markers"] if m.exists()]
    assert not left, f"code from a checkpoint ran: {left}"


def test_pickle_payloads_stay_inert_in_every_layout_and_format(attacks):
    for path, _marker in attacks["files"]:
        if "_top_" in path.name:
            obj = safe_load(path)
            assert isinstance(obj["settings"], InertObject), path.name
            assert torch.equal(extract_state_dict(obj)["w"], torch.arange(4.0))
        else:  # a payload inside the weights: inert, and the weights are refused (not tensors)
            obj = safe_load(path)
            inner = obj["net"] if "net" in obj else obj["model"]
            assert isinstance(inner["evil"], InertObject), path.name
            with pytest.raises(CheckpointError, match="not tensors: \\['evil'\\]"):
                verify_checkpoint(path)
    _no_markers(attacks)


def test_torchscript_archive_is_refused_and_never_loaded(attacks):
    path = attacks["torchscript"]
    with pytest.raises(CheckpointError) as err:
        safe_load(path)
    msg = str(err.value)
    assert "TorchScript archive" in msg and str(path) in msg and "\n" not in msg
    _no_markers(attacks)


def test_pretrained_backbone_loaders_refuse_the_attacks(attacks):
    from lib.models.backbones.pretrained import load_full_model_weights
    from lib.models.backbones.vit import vit_tiny_patch16_4blocks_ce

    vit = vit_tiny_patch16_4blocks_ce()
    nested = next(p for p, _ in attacks["files"] if p.name == "system_in_model_legacy.pth.tar")
    for path in (attacks["torchscript"], nested):
        with pytest.raises(CheckpointError):
            load_full_model_weights(torch.nn.Linear(2, 2), str(path))
    with pytest.raises(CheckpointError, match="TorchScript"):
        vit.load_pretrained(str(attacks["torchscript"]))
    vit.load_pretrained(str(nested))  # an MAE-style 'model' dict: its tensors load, the payload stays inert
    _no_markers(attacks)


def test_unreadable_files_get_their_own_one_line_message(tmp_path):
    cases = {}
    (tmp_path / "empty.pth").write_bytes(b"")
    cases["empty.pth"] = "empty file"
    (tmp_path / "folder").mkdir()
    cases["folder"] = "is a directory"
    import pickle

    (tmp_path / "plain.pkl").write_bytes(pickle.dumps({"net": {"w": 1}}))
    cases["plain.pkl"] = "plain Python pickle"
    torch.save({"net": {"w": torch.zeros(1000)}}, tmp_path / "good.pth")
    data = (tmp_path / "good.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    cases["cut.pth"] = "truncated or corrupt zip"
    torch.save({"net": {"w": torch.zeros(1000)}}, tmp_path / "good_legacy.pth", _use_new_zipfile_serialization=False)
    data = (tmp_path / "good_legacy.pth").read_bytes()
    (tmp_path / "cut_legacy.pth").write_bytes(data[: len(data) - 100])
    cases["cut_legacy.pth"] = "truncated"
    (tmp_path / "notes.txt").write_text("hello")
    cases["notes.txt"] = "not a PyTorch checkpoint"
    for name, expected in cases.items():
        with pytest.raises(CheckpointError) as err:
            safe_load(tmp_path / name)
        msg = str(err.value)
        assert expected in msg and name in msg and "\n" not in msg, msg
        assert is_user_error(err.value)
    with pytest.raises(CheckpointNotFoundError) as err:
        safe_load(tmp_path / "missing.pth")
    assert isinstance(err.value, FileNotFoundError) and is_user_error(err.value)


def test_good_checkpoints_still_load(tmp_path):
    w = torch.arange(12.0).view(3, 4)
    for legacy in (False, True):
        bare = tmp_path / f"bare_{legacy}.pth"
        torch.save({"a.weight": w, "a.bias": w[:, 1]}, bare, _use_new_zipfile_serialization=not legacy)
        sd = verify_checkpoint(bare)
        assert torch.equal(sd["a.weight"], w) and torch.equal(sd["a.bias"], w[:, 1])
        official = tmp_path / f"official_{legacy}.pth.tar"
        torch.save({"net": {"a.weight": w.half(), "p": torch.nn.Parameter(torch.ones(2))}, "epoch": 300,
                    "net_type": "OSTrack", "settings": _Settings(), "cfg": _EasyDictLike(LR=1e-4),
                    "args": argparse.Namespace(config="x"), "stats": {"loss": np.float64(0.5)},
                    "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]}},
                   official, _use_new_zipfile_serialization=not legacy)
        obj = safe_load(official)
        assert torch.equal(obj["net"]["a.weight"], w.half()) and obj["net"]["a.weight"].dtype == torch.float16
        assert isinstance(obj["settings"], InertObject) and obj["settings"].script_name == "ostrack"
        assert obj["settings"].cfg == {"TRAIN": {"EPOCH": 300}}
        assert isinstance(obj["cfg"], InertObject) and obj["cfg"].LR == 1e-4
        assert obj["args"].config == "x" and obj["stats"]["loss"] == 0.5
        assert obj["epoch"] == 300 and obj["optimizer"]["param_groups"][0]["params"] == [0, 1]


# ------------------------------------------------------------------------------------ command lines
def _cli(args, tmp_path):
    env = dict(os.environ, TRACKING_SAVE_DIR=str(tmp_path / "out"), TRACKING_RESULTS_PATH=str(tmp_path / "res"),
               TRACKING_RESULT_PLOT_PATH=str(tmp_path / "plots"), PYTHONWARNINGS="ignore")
    env.pop("TRACKING_VERBOSE", None)
    return subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def _frames(tmp_path):
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir(exist_ok=True)
    for i in range(2):
        cv2.imwrite(str(folder / f"{i:04d}.jpg"), np.full((64, 64, 3), 100, np.uint8))
    return folder


CLIS = {
    "test.py": lambda ck, t: ["tracking/test.py", "ostrack", "tiny_cpu", "--dataset_path", str(t), "--checkpoint", ck],
    "video_demo.py": lambda ck, t: ["tracking/video_demo.py", "ostrack", "tiny_cpu", str(_frames(t)), "--init_box",
                                    "10", "10", "20", "20", "--no_display", "--max_frames", "1", "--checkpoint", ck],
    "profile_model.py": lambda ck, t: ["tracking/profile_model.py", "--script", "ostrack", "--config", "tiny_cpu",
                                       "--frames", "0", "--no_macs", "--iters", "1", "--warmup", "0",
                                       "--checkpoint", ck],
    "convert_checkpoint.py": lambda ck, t: ["tracking/convert_checkpoint.py", "--from", "mmtracking", "--tracker",
                                            "stark_st2", ck, str(t / "converted.pth")],
    "train.py": lambda ck, t: ["tracking/train.py", "--script", "ostrack", "--config", "tiny_cpu", "--mode", "single",
                               "--save_dir", str(t / "train"), "--resume", ck],
}


@pytest.mark.parametrize("cli", sorted(CLIS))
def test_every_command_line_refuses_a_torchscript_checkpoint(cli, attacks, tmp_path):
    proc = _cli(CLIS[cli](str(attacks["torchscript"]), tmp_path), tmp_path)
    _no_markers(attacks)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(f"{cli}: error:") and "TorchScript archive" in lines[0]


@pytest.mark.parametrize("cli", ["test.py", "train.py"])
def test_command_lines_refuse_a_payload_in_the_weights(cli, attacks, tmp_path):
    path = next(p for p, _ in attacks["files"] if p.name == "exec_in_net_legacy.pth.tar")
    proc = _cli(CLIS[cli](str(path), tmp_path), tmp_path)
    _no_markers(attacks)
    assert proc.returncode == 2 and "not tensors: ['evil']" in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr


def test_trainer_resume_folder_is_checked_before_training(attacks, tmp_path):
    folder = tmp_path / "train" / "checkpoints" / "train" / "ostrack" / "tiny_cpu"
    folder.mkdir(parents=True)
    (folder / "OSTrack_ep0001.pth.tar").write_bytes(b"")  # an older, empty one: not the one resumed from
    (folder / "OSTrack_ep0002.pth.tar").write_bytes(attacks["torchscript"].read_bytes())
    proc = _cli(["tracking/train.py", "--script", "ostrack", "--config", "tiny_cpu", "--mode", "single",
                 "--save_dir", str(tmp_path / "train")], tmp_path)
    _no_markers(attacks)
    assert proc.returncode == 2 and "OSTrack_ep0002.pth.tar' is a TorchScript archive" in proc.stderr, proc.stderr
