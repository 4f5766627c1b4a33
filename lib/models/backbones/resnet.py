"""ResNet backbone truncated after ``layer3`` (stride 16) with frozen BatchNorm, joined with position
encodings: the backbone of STARK and AiATrack.

The network is torchvision's ResNet (``torchvision.models.resnet50/101``) with
``torchvision.ops.FrozenBatchNorm2d``; ``IntermediateLayerGetter`` keeps the children up to
``layer3`` (``layer4``, ``avgpool`` and ``fc`` are dropped), so the state_dict keys are those of the
official trackers: ``backbone.0.body.{conv1,bn1,layer1,layer2,layer3}.*`` once wrapped in
:class:`Joiner` (``backbone.1`` is the parameter-free position encoding).

Source: DETR ``models/backbone.py``; STARK ``lib/models/stark/backbone.py`` and ``resnet.py``
(``last_layer='layer3'``, freezing every parameter outside ``layer2``/``layer3``, eps 1e-5 in the
frozen BN, the padding mask nearest-resized to the feature size); AiATrack
``lib/models/aiatrack/backbone.py`` (a Joiner with two position encodings).
"""

from __future__ import annotations

import os
import warnings
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.ops import FrozenBatchNorm2d

from lib.models.backbones.pretrained import pretrained_dir
from lib.utils.misc import NestedTensor

__all__ = ["FrozenBatchNorm2d", "ResNetBackbone", "Joiner", "build_resnet", "build_backbone",
           "pretrained_resnet_path", "RESNET_PRETRAINED_FILES"]

#: ImageNet weights of torchvision, under the file names of their download URLs (the official code
#: downloads these; here they are read from ``pretrained_models/``).
RESNET_PRETRAINED_FILES = {
    "resnet18": "resnet18-5c106cde.pth",
    "resnet34": "resnet34-333f7ec4.pth",
    "resnet50": "resnet50-19c8e357.pth",
    "resnet101": "resnet101-5d3b4d8f.pth",
}

_CHANNELS_LAYER3 = {"resnet18": 256, "resnet34": 256, "resnet50": 1024, "resnet101": 1024}


def pretrained_resnet_path(name: str) -> Optional[str]:
    """Path of the ImageNet weights of ``name`` in ``pretrained_models/``, or None if absent.

    Looks for the torchvision download name (``resnet50-19c8e357.pth``) and then ``<name>.pth``.
    """
    folder = pretrained_dir()
    for filename in (RESNET_PRETRAINED_FILES.get(name, ""), f"{name}.pth"):
        if filename and os.path.isfile(os.path.join(folder, filename)):
            return os.path.join(folder, filename)
    return None


def build_resnet(name: str, dilation: bool = False, freeze_bn: bool = True,
                 pretrained_path: Optional[str] = None) -> nn.Module:
    """A torchvision ResNet with frozen (or regular) BatchNorm, optionally loaded with ImageNet weights.

    Args:
        name: ``resnet18``, ``resnet34``, ``resnet50`` or ``resnet101``.
        dilation: replace the stride of ``layer3`` by dilation (stride 8 instead of 16).
        freeze_bn: ``FrozenBatchNorm2d`` (True in every shipped config) or ``nn.BatchNorm2d``.
        pretrained_path: a torchvision state_dict file to load (``layer4``/``fc`` weights in it are fine).

    Raises:
        ValueError: unknown ``name``.
        lib.utils.checkpoint.CheckpointError: the weights file is unreadable or lacks keys up to layer3.
    """
    if name not in _CHANNELS_LAYER3:
        raise ValueError(f"MODEL.BACKBONE.TYPE '{name}' is not supported (expected one of "
                         f"{', '.join(_CHANNELS_LAYER3)})")
    norm_layer = FrozenBatchNorm2d if freeze_bn else nn.BatchNorm2d
    net = getattr(torchvision.models, name)(weights=None, norm_layer=norm_layer,
                                            replace_stride_with_dilation=[False, dilation, False])
    if pretrained_path is not None:
        from lib.utils.checkpoint import CheckpointError, extract_state_dict, safe_load

        state_dict = extract_state_dict(safe_load(pretrained_path), f"pretrained weights '{pretrained_path}'")
        state_dict = {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
        needed = [k for k in net.state_dict() if not k.startswith(("layer4.", "fc.")) and not k.endswith(
            "num_batches_tracked")]
        missing = [k for k in needed if k not in state_dict]
        if missing:
            raise CheckpointError(f"pretrained weights '{pretrained_path}' lack {len(missing)} ResNet keys, "
                                  f"e.g. {missing[:5]}")
        net.load_state_dict({k: state_dict[k] for k in needed}, strict=False)
    return net


class ResNetBackbone(nn.Module):
    """ResNet body up to ``layer3`` returning a :class:`NestedTensor` per output layer.

    Parameters outside ``layer2`` and ``layer3`` (``conv1`` and ``layer1``; with regular BatchNorm also
    ``bn1``) get ``requires_grad=False``; with ``train_backbone=False`` every parameter does.

    Args:
        name: ResNet name (see :func:`build_resnet`).
        train_backbone: ``TRAIN.BACKBONE_MULTIPLIER > 0``.
        return_interm_layers: return layer1, layer2 and layer3 (strides 4, 8, 16) instead of layer3 only.
        dilation, freeze_bn, pretrained_path: see :func:`build_resnet`.

    Attributes:
        body: ``IntermediateLayerGetter`` over the ResNet children up to ``layer3``.
        num_channels: channels of layer3 (1024 for ResNet-50/101).
    """

    def __init__(self, name: str = "resnet50", train_backbone: bool = True, return_interm_layers: bool = False,
                 dilation: bool = False, freeze_bn: bool = True, pretrained_path: Optional[str] = None):
        super().__init__()
        resnet = build_resnet(name, dilation, freeze_bn, pretrained_path)
        for pname, parameter in resnet.named_parameters():
            if not train_backbone or ("layer2" not in pname and "layer3" not in pname):
                parameter.requires_grad_(False)
        return_layers = ({"layer1": "0", "layer2": "1", "layer3": "2"} if return_interm_layers
                         else {"layer3": "0"})
        self.body = IntermediateLayerGetter(resnet, return_layers=return_layers)
        self.num_channels = _CHANNELS_LAYER3[name]

    def forward(self, tensor_list: NestedTensor) -> Dict[str, NestedTensor]:
        """Features of each returned layer with the padding mask resized to their size.

        Args:
            tensor_list: images ``(B, 3, H, W)`` (ImageNet-normalised) and mask ``(B, H, W)`` bool,
                True on padding.

        Returns:
            ``{'0': NestedTensor((B, 1024, H/16, W/16), (B, H/16, W/16))}`` (plus '1', '2' with
            intermediate layers); the mask is resized with nearest-neighbour interpolation.

        Raises:
            ValueError: the mask is missing.
        """
        if tensor_list.mask is None:
            raise ValueError("ResNetBackbone needs the padding mask of the NestedTensor (got None)")
        xs = self.body(tensor_list.tensors)
        out: Dict[str, NestedTensor] = {}
        for name, x in xs.items():
            mask = F.interpolate(tensor_list.mask[None].float(), size=x.shape[-2:]).to(torch.bool)[0]
            out[name] = NestedTensor(x, mask)
        return out


class Joiner(nn.Sequential):
    """A backbone followed by one or more position encodings (``self[0]`` backbone, ``self[1:]``
    encodings), so the backbone's keys start with ``0.`` as in DETR.

    ``forward`` returns ``(features, pos)`` with one encoding (STARK) and ``(features, pos, inr)`` with
    two (AiATrack); each is a list over the backbone's output layers.

    Attributes:
        num_channels: channels of the backbone output.
    """

    def __init__(self, backbone: nn.Module, *position_embeddings: nn.Module):
        if not position_embeddings:
            raise ValueError("Joiner needs at least one position encoding")
        super().__init__(backbone, *position_embeddings)
        self.num_channels = getattr(backbone, "num_channels", None)

    def forward(self, tensor_list: NestedTensor):
        """Features and position encodings.

        Returns:
            ``(out, pos_1[, pos_2, ...])``: ``out`` a list of :class:`NestedTensor`, each ``pos_k`` a
            list of ``(B, C_k, h, w)`` tensors in the features' dtype.
        """
        xs = self[0](tensor_list)
        out: List[NestedTensor] = []
        encodings: List[List[torch.Tensor]] = [[] for _ in range(len(self) - 1)]
        for x in xs.values():
            out.append(x)
            for k in range(1, len(self)):
                encodings[k - 1].append(self[k](x).to(x.tensors.dtype))
        return (out, *encodings)


def build_backbone(cfg, position_embeddings: Optional[List[nn.Module]] = None, training: bool = False) -> Joiner:
    """The :class:`Joiner` of a STARK/AiATrack config.

    Reads ``MODEL.BACKBONE.TYPE`` and ``DILATION``, ``MODEL.PREDICT_MASK`` (intermediate layers),
    ``TRAIN.BACKBONE_MULTIPLIER`` (> 0: train layer2/layer3), ``TRAIN.FREEZE_BACKBONE_BN``, and
    ``MODEL.HIDDEN_DIM`` / ``MODEL.POSITION_EMBEDDING`` for the default encoding.

    Args:
        cfg: the config.
        position_embeddings: encodings to join (default: the sine encoding of ``MODEL.HIDDEN_DIM``).
        training: load the ImageNet weights from ``pretrained_models/`` when there, else warn.
            Inference builds never read a file.
    """
    from lib.models.layers.position_encoding import build_position_encoding

    if position_embeddings is None:
        position_embeddings = [build_position_encoding(cfg.MODEL.HIDDEN_DIM, cfg.MODEL.POSITION_EMBEDDING)]
    name = cfg.MODEL.BACKBONE.TYPE
    pretrained_path = None
    if training:
        pretrained_path = pretrained_resnet_path(name)
        if pretrained_path is None:
            warnings.warn(f"ImageNet weights of {name} not found in '{pretrained_dir()}' (expected "
                          f"{RESNET_PRETRAINED_FILES.get(name, name + '.pth')}): the backbone starts from "
                          f"random weights", stacklevel=2)
    backbone = ResNetBackbone(name, train_backbone=cfg.TRAIN.BACKBONE_MULTIPLIER > 0,
                              return_interm_layers=cfg.MODEL.PREDICT_MASK, dilation=cfg.MODEL.BACKBONE.DILATION,
                              freeze_bn=cfg.TRAIN.FREEZE_BACKBONE_BN, pretrained_path=pretrained_path)
    return Joiner(backbone, *position_embeddings)
