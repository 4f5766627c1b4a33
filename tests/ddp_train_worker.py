"""One rank of the DDP test (launched by torchrun from tests/test_train_ddp.py).

Computes the gradient of one global batch split over the ranks through the toolkit's DDP path
(process group from the torchrun environment, DistributedSampler, MultiGPU wrapper), saves rank 0's
gradients and this rank's batch, then runs one training epoch (rank 0 writes the checkpoint).
"""
import argparse
import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

from lib.train.admin import multigpu  # noqa: E402
from lib.train.run_training import init_seeds  # noqa: E402
from tests.train_helpers import FakeEnv, ddp_test_trainer  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", required=True, help="JSON of the FakeEnv fields")
    parser.add_argument("--out", required=True)
    parser.add_argument("--global_batch", type=int, default=4)
    args = parser.parse_args()
    local_rank, rank, world, device = multigpu.init_distributed()
    init_seeds(0)
    env = FakeEnv(**json.loads(args.env))
    trainer = ddp_test_trainer(env, args.out, args.global_batch // world, args.global_batch, local_rank, rank, world,
                               device)
    assert isinstance(trainer.actor.net, torch.nn.parallel.DistributedDataParallel)
    grads, batch = trainer_gradients(trainer)
    torch.save({"search_anno": batch["search_anno"], "grads": grads}, os.path.join(args.out, f"rank{rank}.pt"))
    trainer.train(1)
    # validation statistics are averaged over the ranks: rank r saw r + 1 samples of loss r + 1
    from types import SimpleNamespace

    from lib.train.admin.stats import AverageMeter

    meter = AverageMeter()
    meter.update(float(rank + 1), rank + 1)
    trainer.stats["val"] = {"Loss/total": meter}
    trainer._reduce_stats(SimpleNamespace(name="val"))
    torch.save({"avg": meter.avg, "count": meter.count}, os.path.join(args.out, f"val{rank}.pt"))
    multigpu.cleanup_distributed(barrier=True)


def trainer_gradients(trainer):
    loader = trainer.loaders[0]
    loader.set_epoch(1)
    batch = next(iter(loader)).to(trainer.device)
    batch["epoch"] = 1
    trainer.actor.train(True)
    loss, _ = trainer.actor(batch)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in trainer.net.named_parameters()}
    trainer.optimizer.zero_grad()
    return grads, batch


if __name__ == "__main__":
    main()
