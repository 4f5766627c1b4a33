"""Shared test fixtures: paths of the real data in ../shared, skipped with a reason where absent."""

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
