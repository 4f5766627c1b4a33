"""Two-process DDP with gloo (torchrun) on CPU: the averaged gradients equal the single-process gradients
of the same global batch, and rank 0 writes the checkpoint with every rank's generator states."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from tests.conftest import PROJECT_ROOT, need_shared
from tests.train_helpers import build_layout, ddp_test_trainer, one_torch_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")
from tests.ddp_train_worker import trainer_gradients


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_ddp_matches_single_process(tmp_path):
    layout = build_layout(need_shared("data"), tmp_path / "data")
    env = layout["env"]
    fields = {k: getattr(env, k) for k, _ in env.FIELDS}
    out = tmp_path / "ddp"
    out.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(PROJECT_ROOT / "tests" / "ddp_train_worker.py"),
           "--env", json.dumps(fields), "--out", str(out), "--global_batch", "4"]
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]

    single = ddp_test_trainer(env, str(tmp_path / "single"), batch=4, samples=4)
    grads, batch = trainer_gradients(single)
    # the same global batch: rank r holds samples r, r + 2 (DistributedSampler without shuffling)
    anno = batch["search_anno"][0]
    assert torch.equal(ranks[0]["search_anno"][0], anno[0::2]) and torch.equal(ranks[1]["search_anno"][0], anno[1::2])
    assert grads.keys() == ranks[0]["grads"].keys()
    for name, g in grads.items():
        assert torch.allclose(ranks[0]["grads"][name], g, rtol=1e-5, atol=1e-7), name
        assert torch.allclose(ranks[1]["grads"][name], g, rtol=1e-5, atol=1e-7), name
    # rank 0 wrote the checkpoint, holding both ranks' generator states
    ckpt = torch.load(out / "checkpoints/train/ostrack/ddp/StandInOSTrack_ep0001.pth.tar", weights_only=True)
    assert len(ckpt["rng_state"]) == 2 and not any(k.startswith("module.") for k in ckpt["net"])
    assert ckpt["settings"]["world_size"] == 2
    # validation loss averaged over all ranks: (1 x 1 + 2 x 2) / 3 on both
    for r in range(2):
        val = torch.load(out / f"val{r}.pt", weights_only=True)
        assert val["count"] == 3 and val["avg"] == pytest.approx(5 / 3)
