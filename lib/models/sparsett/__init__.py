"""SparseTT (Fu et al., "SparseTT: Visual Tracking with Sparse Transformers", IJCAI 2022).

Registers the ``sparsett`` network: ``build_network("sparsett", "sparsett_swin_got10k")``. Official snapshots
(``epoch-19.pkl`` holding ``model_state_dict``) load strictly through :func:`checkpoint_filter`.
"""

from __future__ import annotations

from typing import Any, Dict

import torch

from lib.models import register_network
from lib.models.backbones.swin import mmdet_relative_position_index

from .head import DoubleConvFCBBoxHead
from .neck import TransformerNeck
from .sparsett import SiamTrack, SwinBackbone, build_sparsett, fuse_scores, profiling_step

__all__ = ["SiamTrack", "SwinBackbone", "TransformerNeck", "DoubleConvFCBBoxHead", "build_sparsett",
           "fuse_scores", "checkpoint_filter", "profiling_step"]


def checkpoint_filter(state_dict: Dict[str, torch.Tensor], loaded: Any = None) -> Dict[str, torch.Tensor]:
    """Adapt a SparseTT state_dict before the strict load.

    The official snapshots need nothing (their ``model_state_dict`` has exactly the network's keys). A
    state_dict written by code that keeps Swin's ``relative_position_index`` out of the state_dict (timm
    style: it is a constant) gets the constant back, derived from the window size of the matching
    ``relative_position_bias_table``; every other key is left to the strict check.
    """
    out = dict(state_dict)
    suffix = ".relative_position_bias_table"
    for key, table in state_dict.items():
        if key.startswith("basemodel.net.") and key.endswith(suffix):
            index_key = key[:-len(suffix)] + ".relative_position_index"
            if index_key not in out:
                side = (int(round(table.shape[0] ** 0.5)) + 1) // 2
                out[index_key] = mmdet_relative_position_index((side, side))
    return out


register_network("sparsett", net_type="SiamTrack", checkpoint_filter=checkpoint_filter)(build_sparsett)
