"""Shared test fixtures: paths of the real data in ../shared, skipped with a reason where absent."""

import contextlib
import os
import socket
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

SHARED = Path(os.environ.get("TRACKING_SHARED_DIR", PROJECT_ROOT.parent / "shared"))
SHARED_DATA = SHARED / "data"
REFERENCE = SHARED / "reference"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data '{path}' is absent (tests read ../shared beside the project)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real sequences, ground truth, published results)."""
    return _need(SHARED_DATA)


@pytest.fixture(scope="session")
def reference() -> Path:
    """``../shared/reference`` (key maps, sequence lists, parity fixtures)."""
    return _need(REFERENCE)


def free_port() -> int:
    """A loopback TCP port nothing listens on (bound once, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie that nobody reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True



def tiny_config(tmp_path, script: str, name: str, **changes) -> str:
    """``experiments/<script>/tiny_cpu.yaml`` with ``changes`` ({'MODEL.BACKBONE.CE_LOC': [], ...}, dotted keys) as
    ``<tmp_path>/<name>.yaml``; returns its path."""
    import yaml

    with open(PROJECT_ROOT / "experiments" / script / "tiny_cpu.yaml") as f:
        data = yaml.safe_load(f)
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)

def need_shared(*parts) -> Path:
    """Path below ../shared, or skip the calling test with a reason."""
    return _need(SHARED.joinpath(*parts))


OSTRACK_CE_CONFIG = "vitb_256_mae_ce_32x4_ep300"


class OfficialSettings:
    """Stands for the official pickled ``lib.train.admin.settings.Settings`` object of a checkpoint."""

    def __init__(self):
        self.script_name = "ostrack"
        self.config_name = OSTRACK_CE_CONFIG


@pytest.fixture(scope="session")
def ostrack_recipe_checkpoint(tmp_path_factory) -> Path:
    """An official-layout OSTrack checkpoint of ``vitb_256_mae_ce_32x4_ep300`` (``net`` plus pickled
    ``settings`` and the trainer's other entries), filled with the parity recipe; written once per session."""
    from lib.models import build_network
    from lib.utils.checkpoint import save_checkpoint_atomic
    from tests.parity_utils import recipe_state_dict

    net = build_network("ostrack", OSTRACK_CE_CONFIG)
    path = tmp_path_factory.mktemp("ckpt") / "OSTrack_ep0300.pth.tar"
    save_checkpoint_atomic({"epoch": 300, "actor_type": "OSTrackActor", "net_type": "OSTrack",
                            "net": recipe_state_dict(net), "net_info": None, "constructor": None,
                            "optimizer": {"state": {}, "param_groups": []}, "stats": None,
                            "settings": OfficialSettings()}, path)
    return path


@pytest.fixture(scope="session")
def stark_st_tiny_checkpoint(tmp_path_factory) -> Path:
    """The small ``tiny_cpu`` STARK-ST (``stark_st2`` config) with seeded random weights, saved as a checkpoint: its
    boxes move from frame to frame on real sequences and it has a confidence score (API / toolkit adapter tests)."""
    import torch

    from lib.models import build_network

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("stark_st_tiny") / "STARKST_ep0005.pth.tar"
    torch.save({"net": build_network("stark_st2", "tiny_cpu").state_dict(), "net_type": "STARKST"}, path)
    return path


@pytest.fixture(scope="session")
def stark_st_tiny_otb_result(tmp_path_factory, stark_st_tiny_checkpoint) -> Path:
    """``tracking/test.py stark_st tiny_cpu --dataset otb --sequence Football1`` with that checkpoint on
    ``../shared/data/otb``: the path of its result file (74 integer boxes, tab-separated)."""
    import subprocess

    otb = need_shared("data", "otb")
    tmp = tmp_path_factory.mktemp("stark_st_tiny_otb")
    env = dict(os.environ, TRACKING_RESULTS_PATH=str(tmp / "results"), TRACKING_RESULT_PLOT_PATH=str(tmp / "plots"),
               TRACKING_SAVE_DIR=str(tmp / "out"))
    run = subprocess.run([sys.executable, "tracking/test.py", "stark_st", "tiny_cpu", "--dataset", "otb",
                          "--dataset_path", str(otb), "--sequence", "Football1", "--checkpoint",
                          str(stark_st_tiny_checkpoint), "--device", "cpu", "--no_progress"], cwd=PROJECT_ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return tmp / "results" / "stark_st" / "tiny_cpu" / "Football1.txt"


# -- a stand-in of torch.cuda's graph API: CUDA-graph code paths on the CPU ----------------------------------
class FakeCUDAGraph:
    """Records the step run during 'capture'; replay re-runs it on the captured inputs and writes the
    results into the captured outputs, as a CUDA graph replay does."""

    capturing = None

    def __init__(self):
        self.replays = 0
        self.fn = None

    def pool(self):
        return "pool"

    def replay(self):
        import torch

        self.replays += 1
        new = self.fn(*self.args)
        for static, value in zip(torch.utils._pytree.tree_leaves(self.out), torch.utils._pytree.tree_leaves(new)):
            static.copy_(value)


class _FakeStream:
    def wait_stream(self, other):
        pass


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch.cuda's stream and graph API replaced by :class:`FakeCUDAGraph` stand-ins: graph code runs on the CPU."""
    import torch

    @contextlib.contextmanager
    def graph(g, pool=None):
        FakeCUDAGraph.capturing = g
        try:
            yield
        finally:
            FakeCUDAGraph.capturing = None

    monkeypatch.setattr(torch.cuda, "Stream", lambda *a, **k: _FakeStream())
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "current_stream", lambda *a, **k: _FakeStream())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", FakeCUDAGraph)
    monkeypatch.setattr(torch.cuda, "graph", graph)


def recording_step(fn):
    """A step that registers itself with the graph being captured (what the real capture records)."""

    def step(*args):
        out = fn(*args)
        g = FakeCUDAGraph.capturing
        if g is not None:
            g.fn, g.args, g.out = fn, args, out
        return out

    return step
