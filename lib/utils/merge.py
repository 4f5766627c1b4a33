"""Concatenation of template and search-region token sequences (STARK's ``merge_template_search``).

Source: STARK ``lib/utils/merge.py``.
"""

from __future__ import annotations

from typing import Dict, Sequence

import torch

__all__ = ["merge_template_search"]


def merge_template_search(inp_list: Sequence[Dict[str, torch.Tensor]], return_search: bool = False,
                          return_template: bool = False) -> Dict[str, torch.Tensor]:
    """Concatenate the token dicts of the templates and the search region along the token axis.

    The search region must be the LAST entry: the box head reads the last ``feat_sz**2`` tokens of
    the encoder memory.

    Args:
        inp_list: dicts with ``feat`` ``(L_i, B, C)``, ``mask`` ``(B, L_i)`` and ``pos`` ``(L_i, B, C)``
            (the output of ``forward_backbone``), templates first, search last.
        return_search: also return the search entries as ``feat_x``, ``mask_x``, ``pos_x``.
        return_template: also return the first template as ``feat_z``, ``mask_z``, ``pos_z``.

    Returns:
        ``{'feat': (sum L_i, B, C), 'mask': (B, sum L_i), 'pos': (sum L_i, B, C)}`` (plus the extras).

    Raises:
        ValueError: an empty list.
    """
    if len(inp_list) == 0:
        raise ValueError("merge_template_search needs at least one feature dict")
    seq_dict = {"feat": torch.cat([x["feat"] for x in inp_list], dim=0),
                "mask": torch.cat([x["mask"] for x in inp_list], dim=1),
                "pos": torch.cat([x["pos"] for x in inp_list], dim=0)}
    if return_search:
        x = inp_list[-1]
        seq_dict.update({"feat_x": x["feat"], "mask_x": x["mask"], "pos_x": x["pos"]})
    if return_template:
        z = inp_list[0]
        seq_dict.update({"feat_z": z["feat"], "mask_z": z["mask"], "pos_z": z["pos"]})
    return seq_dict
