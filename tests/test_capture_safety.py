"""Capture-safety without a GPU (issue 15): every tracker's accelerated per-frame step (what ``--cuda_graph``
captures, :meth:`BaseTracker.accelerated`) runs under ``FakeTensorMode``, where any data-dependent operation
(``nonzero``, boolean-mask indexing, ``.item()``, ``.tolist()``, a Python branch on a tensor value) raises
``DataDependentOutputException`` / ``DynamicOutputShapeException``: exactly what breaks a CUDA-graph capture
(a host synchronisation, or a shape the graph cannot hold). Small ``tiny_cpu`` networks, real OTB frames.

OSTrack runs with the official candidate-elimination template range CTR_POINT (an 8x8 template grid), whose
boolean row selection (the official ``attn_t[box_mask_z]``) was such a ``nonzero``; the tracker now passes the
mask's indices, selected with a ``gather`` of static shape, and the scores stay bit-identical.
"""

from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._pytree import tree_map

from lib.models.layers.candidate_elimination import candidate_elimination, ce_template_index, ce_template_mask
from lib.test.tracker import get_tracker_class
from lib.test.tracker.base import BaseTracker, TrackerParams
from lib.test.utils.profiling import load_sequence_frames
from tests.conftest import need_shared, tiny_config

CTR_POINT = {"MODEL.BACKBONE.CE_TEMPLATE_RANGE": "CTR_POINT", "DATA.TEMPLATE.SIZE": 128, "TEST.TEMPLATE_SIZE": 128}
TRACKERS = [("ostrack", "ostrack", CTR_POINT), ("ostrack", "ostrack", {}), ("grm", "grm", {}),
            ("stark_s", "stark_s", {}), ("stark_st", "stark_st2", {}), ("aiatrack", "aiatrack", {}),
            ("sparsett", "sparsett", {})]


def fake_run(fn, args, kwargs):
    """Run ``fn(*args, **kwargs)`` on fake copies of its tensor arguments (parameters and buffers of the
    network are faked on first use); returns the exception a data-dependent operation raised, or None."""
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    fargs, fkwargs = tree_map(lambda x: mode.from_tensor(x) if isinstance(x, torch.Tensor) else x, (args, kwargs))
    try:
        with mode, torch.no_grad():
            fn(*fargs, **fkwargs)
    except Exception as exc:  # DataDependentOutputException, DynamicOutputShapeException, ...
        return exc
    return None


@pytest.fixture(scope="module")
def frames():
    return load_sequence_frames(str(need_shared("data", "otb", "Crossing")), 4)


def _checked_steps(monkeypatch):
    """Patch :meth:`BaseTracker.accelerated` so that every step it wraps also runs under FakeTensorMode
    (after the real call, so lazily built caches hold real tensors); returns the list of (name, exception)."""
    seen = []

    def accelerated(self, fn, name="per-frame step"):
        def step(*args, **kwargs):
            out = fn(*args, **kwargs)
            seen.append((name, fake_run(fn, args, kwargs)))
            return out
        return step

    monkeypatch.setattr(BaseTracker, "accelerated", accelerated)
    return seen


@pytest.mark.parametrize("name,script,changes", TRACKERS,
                         ids=[f"{t[0]}{'_ctr_point' if t[2] else ''}" for t in TRACKERS])
def test_accelerated_step_has_no_data_dependent_operation(name, script, changes, frames, tmp_path, monkeypatch):
    images, box = frames
    seen = _checked_steps(monkeypatch)
    torch.manual_seed(0)
    params = TrackerParams.create(name, tiny_config(tmp_path, script, f"{script}_capture", **changes), require_checkpoint=False, device="cpu",
                                  device_crop=True)
    tracker = get_tracker_class(name)(params, "otb")
    tracker.initialize(images[0], {"init_bbox": box})
    for image in images[1:3]:
        tracker.track(image)
    assert seen, f"{name}: no accelerated step ran"
    failures = [(n, f"{type(e).__name__}: {e}") for n, e in seen if e is not None]
    assert not failures, f"{name}: data-dependent operations in the captured step: {failures[:1]}"


def test_fake_mode_catches_the_boolean_template_selection():
    """The check is not vacuous: the official boolean row selection (a nonzero) fails under FakeTensorMode,
    the index form passes and gives bit-identical tokens and indices."""
    torch.manual_seed(0)
    B, H, lt, ls, C = 2, 3, 64, 64, 8
    attn = torch.rand(B, H, lt + ls, lt + ls).softmax(-1)
    tokens = torch.randn(B, lt + ls, C)
    gidx = torch.arange(ls, dtype=torch.float32).repeat(B, 1)
    for rng in ("CTR_POINT", "CTR_REC"):
        mask = ce_template_mask(rng, B, 128, 16)
        index = ce_template_index(mask)
        assert index.dtype == torch.int64 and index.shape == (B, int(mask[0].sum()))
        err = fake_run(candidate_elimination, (attn, tokens, lt, 0.7, gidx, mask), {})
        assert err is not None and "nonzero" in f"{type(err).__name__} {err}".lower() or \
            type(err).__name__ in ("DynamicOutputShapeException", "DataDependentOutputException"), err
        assert fake_run(candidate_elimination, (attn, tokens, lt, 0.7, gidx, index), {}) is None
        ref, got = candidate_elimination(attn, tokens, lt, 0.7, gidx, mask), \
            candidate_elimination(attn, tokens, lt, 0.7, gidx, index)
        for a, b in zip(ref, got):
            assert torch.equal(a, b)


def test_template_index_needs_equal_counts():
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[0, 3] = True
    mask[1, 3:5] = True
    with pytest.raises(ValueError, match="same, non-zero number"):
        ce_template_index(mask)
    assert ce_template_index(None) is None
