"""Helpers of the training tests: real shared sequences laid out (by links) as GOT-10k and LaSOT training
sets, a small OSTrack-like configuration and a tiny stand-in network with OSTrack's output contract."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import torch
from torch import nn

from lib.config import Config
from lib.train.dataset.demo_layout import read_benchmark_gt as read_gt  # noqa: F401
from lib.train.dataset.demo_layout import write_dataspec as make_dataspec  # noqa: F401
from lib.train.dataset.demo_layout import write_got10k as make_got10k  # noqa: F401
from lib.train.dataset.demo_layout import write_lasot as make_lasot  # noqa: F401


def small_cfg(search: int = 64, template: int = 32, batch: int = 4, samples: int = 8, epochs: int = 3) -> Config:
    """An OSTrack-like configuration (official keys, small crops and epochs) for the stand-in network."""
    return Config({
        "MODEL": {"PRETRAIN_FILE": "", "BACKBONE": {"TYPE": "standin", "STRIDE": 16, "CE_LOC": [], "CE_KEEP_RATIO": [],
                                                    "CE_TEMPLATE_RANGE": "ALL"},
                  "HEAD": {"TYPE": "CENTER", "NUM_CHANNELS": 8}},
        "TRAIN": {"LR": 1e-3, "WEIGHT_DECAY": 1e-4, "EPOCH": epochs, "LR_DROP_EPOCH": 2, "BATCH_SIZE": batch,
                  "NUM_WORKER": 0, "OPTIMIZER": "ADAMW", "BACKBONE_MULTIPLIER": 0.1, "GIOU_WEIGHT": 2.0,
                  "L1_WEIGHT": 5.0, "PRINT_INTERVAL": 1, "VAL_EPOCH_INTERVAL": 2, "GRAD_CLIP_NORM": 0.1, "AMP": False,
                  "CE_START_EPOCH": 20, "CE_WARM_EPOCH": 80, "SCHEDULER": {"TYPE": "step", "DECAY_RATE": 0.1}},
        "DATA": {"SAMPLER_MODE": "causal", "MEAN": [0.485, 0.456, 0.406], "STD": [0.229, 0.224, 0.225],
                 "MAX_SAMPLE_INTERVAL": 200,
                 "TRAIN": {"DATASETS_NAME": ["LASOT", "GOT10K_train_full"], "DATASETS_RATIO": [1, 1],
                           "SAMPLE_PER_EPOCH": samples},
                 "VAL": {"DATASETS_NAME": ["GOT10K_train_full"], "DATASETS_RATIO": [1], "SAMPLE_PER_EPOCH": batch},
                 "SEARCH": {"SIZE": search, "FACTOR": 4.0, "CENTER_JITTER": 3, "SCALE_JITTER": 0.25, "NUMBER": 1},
                 "TEMPLATE": {"NUMBER": 1, "SIZE": template, "FACTOR": 2.0, "CENTER_JITTER": 0, "SCALE_JITTER": 0}},
    })


class StandInOSTrack(nn.Module):
    """A tiny network with OSTrack's forward signature and output dict (``pred_boxes`` (B,1,4) cxcywh
    normalised, ``score_map`` (B,1,H,W) in (0,1), ``size_map``, ``offset_map``), parameters under
    ``backbone.`` and ``box_head.``, dropout for RNG use, for trainer tests without the real network."""

    def __init__(self, channels: int = 8, stride: int = 16, dropout: float = 0.1, bn: bool = True):
        super().__init__()
        self.stride = stride
        self.backbone = nn.Sequential(nn.Conv2d(3, channels, stride, stride), nn.ReLU(), nn.Dropout(dropout))
        self.box_head = nn.ModuleDict({"ctr": nn.Conv2d(2 * channels, 1, 3, padding=1),
                                       "size": nn.Conv2d(2 * channels, 2, 3, padding=1),
                                       "offset": nn.Conv2d(2 * channels, 2, 3, padding=1),
                                       "bn": nn.BatchNorm2d(2 * channels) if bn else nn.Identity()})

    def forward(self, template, search, ce_template_mask=None, ce_keep_rate=None, return_last_attn=False):
        z = self.backbone(template).mean(dim=(2, 3), keepdim=True)
        x = self.backbone(search)
        feat = self.box_head["bn"](torch.cat([x, x * z], dim=1))
        score = torch.sigmoid(self.box_head["ctr"](feat)).clamp(1e-4, 1 - 1e-4)
        size = torch.sigmoid(self.box_head["size"](feat))
        offset = torch.sigmoid(self.box_head["offset"](feat))
        B, _, H, W = score.shape
        idx = score.flatten(1).argmax(dim=1)
        row, col = (idx // W).float(), (idx % W).float()
        gather = idx.view(B, 1, 1).expand(B, 2, 1)
        sz = size.flatten(2).gather(2, gather).squeeze(-1)
        off = offset.flatten(2).gather(2, gather).squeeze(-1)
        boxes = torch.stack([(col + off[:, 0]) / W, (row + off[:, 1]) / H, sz[:, 0], sz[:, 1]], dim=1)
        return {"pred_boxes": boxes.view(B, 1, 4), "score_map": score, "size_map": size, "offset_map": offset,
                "backbone_feat": x}


class FakeEnv:
    """Train-side environment settings pointing at test folders."""

    FIELDS = (("workspace_dir", ""), ("tensorboard_dir", ""), ("dataspec_path", ""), ("lasot_dir", ""),
              ("got10k_dir", ""), ("lasot_lmdb_dir", ""), ("got10k_lmdb_dir", ""), ("pretrained_networks", ""))

    def __init__(self, **kwargs):
        for k, _ in self.FIELDS:
            setattr(self, k, "")
        for k, v in kwargs.items():
            setattr(self, k, str(v))

    def replace(self, **kwargs) -> "FakeEnv":
        """A copy with some fields changed."""
        return FakeEnv(**{**{k: getattr(self, k) for k, _ in self.FIELDS}, **kwargs})

    def require(self, field, must_exist=True, what=""):
        value = getattr(self, field, "")
        if not value:
            raise RuntimeError(f"'{field}' is not set")
        return value


class MemoryDataset:
    """In-memory video dataset for sampler tests: sequences of given lengths and visibility, constant
    frames, boxes in the image centre. Records every frame-id request in ``requests``."""

    def __init__(self, visible_lists, size=(48, 64), name="memory", video=True):
        from lib.train.dataset.base_video_dataset import empty_object_meta

        self._meta = empty_object_meta("thing")
        self.visible_lists = [torch.tensor(v, dtype=torch.uint8) for v in visible_lists]
        self.size = size
        self.name = name
        self.video = video
        self.requests = []

    def __len__(self):
        return len(self.visible_lists)

    def get_num_sequences(self):
        return len(self.visible_lists)

    def is_video_sequence(self):
        return self.video

    def get_name(self):
        return self.name

    def get_sequence_info(self, seq_id):
        vis = self.visible_lists[seq_id]
        H, W = self.size
        bbox = torch.tensor([[W / 4, H / 4, W / 2, H / 2]] * len(vis), dtype=torch.float32)
        valid = torch.ones(len(vis), dtype=torch.bool)
        return {"bbox": bbox, "valid": valid, "visible": vis.clone()}

    def get_frames(self, seq_id, frame_ids, anno=None):
        self.requests.append((seq_id, list(frame_ids)))
        anno = anno or self.get_sequence_info(seq_id)
        H, W = self.size
        frames = [np.full((H, W, 3), (seq_id * 10 + f) % 255, np.uint8) for f in frame_ids]
        if not self.video:
            return frames, {k: [v[0] for _ in frame_ids] for k, v in anno.items()}, self._meta
        return frames, {k: [v[f].clone() for f in frame_ids] for k, v in anno.items()}, self._meta


def build_layout(shared: Path, tmp: Path) -> Dict:
    """GOT-10k (4 sequences, 3 frames of Crossing absent) and LaSOT (3 sequences) training layouts of real
    shared frames, plus a data_specs folder; returns the paths and a matching :class:`FakeEnv`."""
    got = make_got10k(shared, tmp / "got10k", ["Couple", "Crossing", "bag", "person11"], absent={"Crossing": [5, 6, 7]})
    las, names = make_lasot(shared, tmp / "lasot", {"person-1": "Couple", "bag-1": "bag", "person-2": "Crossing"})
    spec = make_dataspec(tmp / "specs", names)
    env = FakeEnv(workspace_dir=tmp, got10k_dir=got, lasot_dir=las, dataspec_path=spec, tensorboard_dir=tmp / "tb")
    return {"tmp": tmp, "got": got, "lasot": las, "spec": spec, "lasot_names": names, "env": env}


def ddp_test_trainer(env, out, batch, samples, local_rank=-1, rank=0, world=1, device="cpu"):
    """The trainer of the DDP comparison: stand-in without batch norm or dropout (their statistics and
    random masks are per process), per-index sample seeds and no shuffling, so that a DDP run and a single
    process see the same global batch."""
    from lib.train.run_training import make_settings
    from lib.train.train_script import build_trainer

    settings = make_settings("ostrack", "ddp", out, local_rank, rank, world, torch.device(device), seed=5, env=env,
                             num_workers=0)
    settings.sample_seed = 11
    settings.shuffle = False
    settings.console = False
    settings.progress_bar = False
    cfg = small_cfg(batch=batch, samples=samples, epochs=1)
    del cfg.DATA["VAL"]
    torch.manual_seed(0)
    trainer, _ = build_trainer(settings, cfg=cfg, net=StandInOSTrack(dropout=0.0, bn=False))
    return trainer


def kill_at(epoch: int, iteration: int):
    """An ``on_iteration`` hook raising KeyboardInterrupt after training iteration ``iteration`` of ``epoch``
    (a simulated kill)."""
    def hook(trainer, loader, i):
        if trainer.epoch == epoch and i == iteration and loader.training:
            raise KeyboardInterrupt("simulated kill")
    return hook


@pytest.fixture(autouse=False)
def one_torch_thread():
    """Run a test with one torch thread (restored afterwards): on a shared 2-core machine, OpenMP's
    two spinning threads make small CPU training steps tens of times slower whenever another process
    holds a core; one thread keeps the training tests' time steady."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
