"""Shared test fixtures: paths of the real data in ../shared, skipped with a reason where absent."""

import os
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


def need_shared(*parts) -> Path:
    """Path below ../shared, or skip the calling test with a reason."""
    return _need(SHARED.joinpath(*parts))
