"""SparseTT network (``SiamTrack``): Swin-T backbone, feature adjusters, sparse transformer neck, double head.

Source: fzh0917/SparseTT ``videoanalyst/model/task_model/taskmodel_impl/sparsett_model.py`` (class
``SiamTrack``) and ``videoanalyst/model/backbone/backbone_impl/swin_transformer.py`` (wrapper
``SwinTransformer`` holding ``net``). The state_dict keys and shapes are the official ones (``basemodel.net.*``,
``neck.encoder.*``, ``neck.decoder.*``, ``head.*``, ``feat_adjuster_z.*``, ``feat_adjuster_x.*``), so the
released snapshots (``epoch-19.pkl``, ``{'epoch', 'model_state_dict', 'optimizer_state_dict'}``) load strictly.

Call forms (as the official tracker uses them)::

    feats = net(template, phase="feature")                   # [memory (64, B, 256)]
    score, bbox, extra = net(search, *feats, phase="track")  # (B, 361, 1), (B, 361, 4) xyxy crop pixels
    pred = net({"im_z": template, "im_x": search}, phase="train")   # dict of the four head outputs

Inputs are ImageNet-normalised RGB crops: template ``(B, 3, 127, 127)``, search ``(B, 3, 289, 289)``.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Dict, Optional

import torch
from torch import nn

from lib.models.backbones.swin import SwinTransformer, load_pretrained_swin
from lib.models.layers.conv_bn import ConvBNAct

from .head import DoubleConvFCBBoxHead
from .neck import TransformerNeck

__all__ = ["SwinBackbone", "SiamTrack", "build_sparsett", "fuse_scores", "profiling_step"]


def fuse_scores(p_fc: torch.Tensor, p_conv: torch.Tensor) -> torch.Tensor:
    """Test-time score of SparseTT from the two branch probabilities (sigmoid of the class logits):
    ``p_fc + p_conv * (1 - p_fc)``, a probabilistic OR (``SiamTrack.test_forward``). Any shape."""
    return p_fc + p_conv * (1 - p_fc)


class SwinBackbone(nn.Module):
    """video_analyst's backbone wrapper: ``net`` is the Swin Transformer; ``forward`` returns the last
    output map ``(B, C, H, W)`` (SparseTT: stage 2, 384 channels, stride 16)."""

    def __init__(self, **swin_kwargs):
        super().__init__()
        self.net = SwinTransformer(**swin_kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[-1]


class SiamTrack(nn.Module):
    """SparseTT's Siamese network.

    Args:
        backbone: module mapping an image to ``(B, in_channels, H, W)`` (shared by template and search).
        neck: :class:`~lib.models.sparsett.neck.TransformerNeck`.
        head: :class:`~lib.models.sparsett.head.DoubleConvFCBBoxHead`.
        in_channels / mid_channels: backbone channels (384) and adjusted channels (256).

    Feature adjusters ``feat_adjuster_{z,x}``: 1x1 conv (with bias) + BatchNorm (eps 1e-3), no activation.
    """

    support_phases = ("train", "feature", "track")

    def __init__(self, backbone: nn.Module, neck: TransformerNeck, head: DoubleConvFCBBoxHead,
                 in_channels: int = 384, mid_channels: int = 256):
        super().__init__()
        self.basemodel = backbone
        self.neck = neck
        self.head = head
        self._phase = "train"
        self.feat_adjuster_z = ConvBNAct(in_channels, mid_channels, 1, bias=True, bn_eps=1e-3)
        self.feat_adjuster_x = ConvBNAct(in_channels, mid_channels, 1, bias=True, bn_eps=1e-3)

    @property
    def phase(self) -> str:
        """Phase used when ``forward`` gets no ``phase``."""
        return self._phase

    @phase.setter
    def phase(self, p: str) -> None:
        if p not in self.support_phases:
            raise ValueError(f"unknown phase '{p}'; supported: {', '.join(self.support_phases)}")
        self._phase = p

    def template_features(self, template: torch.Tensor) -> torch.Tensor:
        """``(B, 3, 127, 127)`` -> adjusted template feature ``(B, 256, 8, 8)``."""
        return self.feat_adjuster_z(self.basemodel(template))

    def search_features(self, search: torch.Tensor) -> torch.Tensor:
        """``(B, 3, 289, 289)`` -> adjusted search feature ``(B, 256, 19, 19)``."""
        return self.feat_adjuster_x(self.basemodel(search))

    def train_forward(self, data: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Both branches at once: ``{'im_z', 'im_x'}`` -> ``{'cls_fc', 'bbox_fc', 'cls_conv', 'bbox_conv'}``
        (class logits, xyxy boxes in search-crop pixels)."""
        f_z = self.template_features(data["im_z"])
        f_x = self.search_features(data["im_x"])
        cls_fc, bbox_fc, cls_conv, bbox_conv = self.head(self.neck(f_x, f_z))
        return {"cls_fc": cls_fc, "bbox_fc": bbox_fc, "cls_conv": cls_conv, "bbox_conv": bbox_conv}

    def test_forward(self, f_x: torch.Tensor, memory: torch.Tensor, x_size: int):
        """Decoder and head on an adjusted search feature.

        Returns:
            ``(score (B, N, 1), bbox (B, N, 4), extra)``: the fused score :func:`fuse_scores`, the conv-branch
            xyxy boxes (search-crop pixels; the fc-branch boxes are not used at test time) and ``extra`` with
            the branch probabilities ``cls_fc`` / ``cls_conv`` ``(B, N, 1)`` (for debug views; the official
            ``extra`` is empty).
        """
        cls_fc, _bbox_fc, cls_conv, bbox_conv = self.head(self.neck.decode(f_x, memory), x_size)
        p_fc, p_conv = torch.sigmoid(cls_fc), torch.sigmoid(cls_conv)
        return fuse_scores(p_fc, p_conv), bbox_conv, {"cls_fc": p_fc, "cls_conv": p_conv}

    def forward(self, *args, phase: Optional[str] = None):
        """Dispatch on ``phase`` (``'feature'``, ``'track'``, ``'train'``; default :attr:`phase`).

        Raises:
            ValueError: unknown phase or wrong number of arguments.
        """
        phase = self._phase if phase is None else phase
        if phase == "feature":
            if len(args) != 1:
                raise ValueError(f"phase 'feature' takes one template tensor, got {len(args)} arguments")
            return [self.neck.encode(self.template_features(args[0]))]
        if phase == "track":
            if len(args) != 2:
                raise ValueError(f"phase 'track' takes (search, memory), got {len(args)} arguments")
            search, memory = args
            return self.test_forward(self.search_features(search), memory, search.size(-1))
        if phase == "train":
            if len(args) != 1 or not isinstance(args[0], dict):
                raise ValueError("phase 'train' takes one dict with 'im_z' and 'im_x'")
            return self.train_forward(args[0])
        raise ValueError(f"unknown phase '{phase}'; supported: {', '.join(self.support_phases)}")


def _swin_kwargs(b) -> Dict[str, Any]:
    return dict(embed_dims=int(b.EMBED_DIMS), depths=tuple(b.DEPTHS), num_heads=tuple(b.NUM_HEADS),
                out_indices=tuple(b.OUT_INDICES), window_size=int(b.WINDOW_SIZE), mlp_ratio=b.MLP_RATIO,
                qkv_bias=bool(b.QKV_BIAS), qk_scale=b.QK_SCALE, drop_rate=float(b.DROP_RATE),
                attn_drop_rate=float(b.ATTN_DROP_RATE), drop_path_rate=float(b.DROP_PATH_RATE),
                patch_norm=bool(b.PATCH_NORM), with_cp=bool(b.WITH_CP))


def build_sparsett(cfg, training: bool = False) -> SiamTrack:
    """Build SparseTT from a merged ``sparsett`` config.

    With ``training=True`` the ImageNet Swin-T weights ``pretrained_models/<MODEL.BACKBONE.PRETRAINED>`` are
    loaded when the file exists (a warning otherwise; an empty ``PRETRAINED`` asks for none, e.g. the small
    ``tiny_cpu`` config); ``training=False`` reads nothing.

    Raises:
        ValueError: a backbone/neck/head TYPE other than the official ones.
    """
    m = cfg.MODEL
    for part, official in (("BACKBONE", "SwinTransformer"), ("NECK", "TransformerNeck"),
                           ("HEAD", "DoubleConvFCBBoxHead")):
        if m[part].TYPE != official:
            raise ValueError(f"MODEL.{part}.TYPE '{m[part].TYPE}' is not supported (only '{official}')")
    backbone = SwinBackbone(**_swin_kwargs(m.BACKBONE))
    n = m.NECK
    neck = TransformerNeck(int(n.MID_CHANNELS_MODEL), int(n.MID_CHANNELS_FFN), int(n.NUM_HEADS),
                           int(n.NUM_ENCODER_LAYERS), int(n.NUM_DECODER_LAYERS), float(n.PROB_DROPOUT),
                           int(n.F_Z_SIZE), int(n.F_X_SIZE), None if n.TOP_K is None else int(n.TOP_K))
    h = m.HEAD
    head = DoubleConvFCBBoxHead(int(h.IN_CHANNELS), int(h.NUM_CONVS), int(h.X_SIZE), int(h.SCORE_SIZE),
                                int(h.TOTAL_STRIDE), bool(h.INPUT_SIZE_ADAPT))
    net = SiamTrack(backbone, neck, head, int(m.IN_CHANNELS), int(m.MID_CHANNELS))
    if training:
        _load_pretrained_swin(net.basemodel.net, m.BACKBONE)
    return net


def _load_pretrained_swin(swin: SwinTransformer, bcfg) -> None:
    """Load the ImageNet Swin checkpoint into the backbone when it is in the pretrained folder
    (``pretrained_networks`` of the train local.py, default ``<project>/pretrained_models``)."""
    from lib.models.backbones.pretrained import pretrained_dir

    if not bcfg.PRETRAINED:
        return
    path = os.path.join(pretrained_dir(), bcfg.PRETRAINED)
    if not os.path.isfile(path):
        warnings.warn(f"SparseTT: pretrained Swin '{path}' not found; the Swin backbone starts from scratch")
        return
    missing, _ = load_pretrained_swin(swin, path, convert=bool(bcfg.CONVERT_WEIGHTS))
    if missing:
        warnings.warn(f"SparseTT: pretrained Swin '{path}' lacks {len(missing)} backbone keys, e.g. {missing[:3]}")


def profiling_step(net: SiamTrack, cfg, device="cpu", dataset_name: Optional[str] = None):
    """The per-frame step of the SparseTT tracker, for ``tracking/profile_model.py``.

    Once per sequence: phase ``'feature'`` on the template crop (``TEST.TEMPLATE_SIZE``: backbone and
    encoder memory). Per frame: phase ``'track'`` on the search crop (``TEST.SEARCH_SIZE``) with that memory.

    Returns:
        :class:`~lib.models.profiling.ProfileStep` whose input is the search crop ``(1, 3, S, S)``.
    """
    from lib.models.profiling import ProfileStep, StepModule

    device = torch.device(device)
    zs, xs = int(cfg.TEST.TEMPLATE_SIZE), int(cfg.TEST.SEARCH_SIZE)
    z = torch.randn(1, 3, zs, zs, device=device)
    with torch.no_grad():
        memory = net(z, phase="feature")

    def step(model, x):
        return model(x, *memory, phase="track")

    return ProfileStep(f"phase 'track' on the search crop ({xs}x{xs}) with the template memory",
                       StepModule(net, step), (torch.randn(1, 3, xs, xs, device=device),),
                       once={f"phase 'feature' on the template ({zs}x{zs}, once per sequence)":
                             lambda: net(z, phase="feature")})
