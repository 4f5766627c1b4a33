"""OSTrack's early candidate elimination (CE): dropping search tokens the template does not attend to.

Functions:

* :func:`candidate_elimination`: one elimination step inside a block (official
  ``lib/models/layers/attn_blocks.py::candidate_elimination``).
* :func:`restore_eliminated_tokens`: put the kept tokens back in raster order with zeros at the
  eliminated positions (end of official ``VisionTransformerCE.forward_features``).
* :func:`ce_template_mask` / :func:`generate_mask_cond`: which template tokens score the search
  tokens (official ``lib/utils/ce_utils.py::generate_mask_cond``).
* :func:`ce_template_index`: the same selection as ``(B, K)`` token indices, computed once per sequence,
  so that the per-frame step has static shapes and no ``nonzero`` (CUDA graphs, ONNX export).
* :func:`adjust_keep_rate`: the training schedule of the keep ratio (official ``ce_utils.adjust_keep_rate``).

Paper: Ye et al., ECCV 2022, Sec. 3.3 ("Early Candidate Elimination").
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

__all__ = ["candidate_elimination", "restore_eliminated_tokens", "ce_template_mask", "ce_template_index",
           "generate_mask_cond", "adjust_keep_rate"]


def candidate_elimination(attn: torch.Tensor, tokens: torch.Tensor, lens_t: int, keep_ratio: float,
                          global_index: torch.Tensor, box_mask_z: Optional[torch.Tensor] = None
                          ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Keep the ``ceil(keep_ratio * L_s)`` search tokens most attended by the template.

    The score of a search token is its attention weight from the template queries (rows of ``attn``
    for template tokens, columns for search tokens), averaged over the template rows selected by
    ``box_mask_z`` (all rows when None) and then over the heads. Scores are sorted in descending
    order with a full ``torch.sort`` (not ``topk``), and the kept tokens are gathered **in that
    order** (their spatial order is lost; ``global_index`` carries their original positions).

    Args:
        attn: ``(B, H, L_t + L_s, L_t + L_s)`` post-softmax attention of the block.
        tokens: ``(B, L_t + L_s, C)`` residual stream after the attention half of the block.
        lens_t: number of template tokens ``L_t`` (they are never eliminated).
        keep_ratio: fraction of the current search tokens to keep.
        global_index: ``(B, L_s)`` original (raster) indices of the current search tokens, float.
        box_mask_z: optional template selection, either a ``(B, L_t)`` bool mask with the same number of
            True entries in every sample (the official boolean indexing: a ``nonzero``, i.e. a host
            synchronisation with a data-dependent shape), or the ``(B, K)`` int64 indices of those entries
            in ascending order (:func:`ce_template_index`): a ``gather`` with static shapes that selects the
            same rows in the same order, so the scores are bit-identical; this form captures into a CUDA
            graph and exports without ``NonZero``.

    Returns:
        ``(tokens_new (B, L_t + K, C), keep_index (B, K), removed_index (B, L_s - K))`` with indices
        from ``global_index``; when ``K == L_s`` the inputs are returned unchanged with
        ``removed_index = None``.
    """
    lens_s = attn.shape[-1] - lens_t
    bs, hn = attn.shape[0], attn.shape[1]
    lens_keep = math.ceil(keep_ratio * lens_s)
    if lens_keep == lens_s:
        return tokens, global_index, None

    attn_t = attn[:, :, :lens_t, lens_t:]
    if box_mask_z is not None and box_mask_z.dtype == torch.bool:
        rows = box_mask_z.unsqueeze(1).unsqueeze(-1).expand(-1, hn, -1, lens_s)
        attn_t = attn_t[rows].view(bs, hn, -1, lens_s)
    elif box_mask_z is not None:  # (B, K) indices: the same rows, static shapes
        rows = box_mask_z.to(torch.int64).view(bs, 1, -1, 1).expand(-1, hn, -1, lens_s)
        attn_t = attn_t.gather(dim=2, index=rows)
    attn_t = attn_t.mean(dim=2).mean(dim=1)  # (B, H, rows, L_s) -> (B, L_s)

    _, indices = torch.sort(attn_t, dim=1, descending=True)
    topk_idx, non_topk_idx = indices[:, :lens_keep], indices[:, lens_keep:]
    keep_index = global_index.gather(dim=1, index=topk_idx)
    removed_index = global_index.gather(dim=1, index=non_topk_idx)

    tokens_t, tokens_s = tokens[:, :lens_t], tokens[:, lens_t:]
    B, _, C = tokens_s.shape
    attentive = tokens_s.gather(dim=1, index=topk_idx.unsqueeze(-1).expand(B, -1, C))
    return torch.cat([tokens_t, attentive], dim=1), keep_index, removed_index


def restore_eliminated_tokens(x: torch.Tensor, keep_index: torch.Tensor, removed_indexes: Sequence[torch.Tensor],
                              lens_x: int) -> torch.Tensor:
    """Scatter the kept search tokens back to their raster positions; eliminated positions get zeros.

    The kept tokens (in their current order) are followed by ``L_x - K`` zero vectors; together with
    the index list ``[keep_index ; removed stage 1 ; stage 2 ; ...]`` they are scattered into a zero
    tensor, so the eliminated positions hold exact zeros (they are not normalised).

    Args:
        x: ``(B, K, C)`` kept search tokens (after the final LayerNorm).
        keep_index: ``(B, K)`` their original indices (float).
        removed_indexes: the ``(B, removed_k)`` removed original indices of each stage, in stage order.
        lens_x: number of search tokens ``L_x`` before elimination.

    Returns:
        ``(B, L_x, C)`` search tokens in raster order.
    """
    B, K, C = x.shape
    pad = x.new_zeros(B, lens_x - K, C)
    x = torch.cat([x, pad], dim=1)
    index_all = torch.cat([keep_index, *removed_indexes], dim=1)
    index = index_all.unsqueeze(-1).expand(B, -1, C).to(torch.int64)
    return torch.zeros_like(x).scatter_(dim=1, index=index, src=x)


def ce_template_mask(template_range: str, bs: int, template_size: int, stride: int,
                     device: torch.device | str = "cpu", box_norm: Optional[torch.Tensor] = None
                     ) -> Optional[torch.Tensor]:
    """Template tokens whose attention scores the search tokens in candidate elimination.

    Args:
        template_range: ``'ALL'`` (None: every template token), ``'CTR_POINT'`` (the centre token: row and
            column 3 of an 8x8 or 7x7 grid, 5 of 12x12, 6 of 14x14), ``'CTR_REC'`` (rows/cols 3:5 of 8x8,
            5:7 of 12x12, 3:4 of 7x7) or ``'GT_BOX'`` (the template box rasterised at pixel level,
            bilinearly downsampled by ``1/stride``, any non-zero cell counts).
        bs: batch size.
        template_size: template crop side in pixels (``DATA.TEMPLATE.SIZE``).
        stride: patch stride (16).
        device: device of the mask.
        box_norm: ``(B, 4)`` template box xywh normalised to the template crop (``GT_BOX`` only).

    Returns:
        ``(bs, (template_size // stride) ** 2)`` bool mask (row-major token order), or None for ALL.

    Raises:
        ValueError: unknown range, a grid size with no official centre, or GT_BOX without a box.
    """
    feat = template_size // stride
    if template_range == "ALL":
        return None
    if template_range in ("CTR_POINT", "CTR_REC"):
        table = ({8: slice(3, 4), 12: slice(5, 6), 7: slice(3, 4), 14: slice(6, 7)} if template_range == "CTR_POINT"
                 else {8: slice(3, 5), 12: slice(5, 7), 7: slice(3, 4)})
        if feat not in table:
            raise ValueError(f"CE_TEMPLATE_RANGE {template_range} is not defined for a {feat}x{feat} template grid "
                             f"(defined for {sorted(table)})")
        index = table[feat]
        mask = torch.zeros([bs, feat, feat], device=device)
        mask[:, index, index] = 1
        return mask.flatten(1).to(torch.bool)
    if template_range == "GT_BOX":
        if box_norm is None:
            raise ValueError("CE_TEMPLATE_RANGE GT_BOX needs the normalised template box")
        mask = torch.zeros([bs, template_size, template_size], device=device)
        for i, b in enumerate((box_norm * template_size).tolist()):
            mask[i, int(b[1]):int(b[1] + b[3] - 1), int(b[0]):int(b[0] + b[2] - 1)] = 1
        mask = F.interpolate(mask.unsqueeze(1), scale_factor=1.0 / stride, mode="bilinear", align_corners=False)
        return mask.flatten(1).to(torch.bool)
    raise ValueError(f"unknown CE_TEMPLATE_RANGE '{template_range}' (ALL, CTR_POINT, CTR_REC or GT_BOX)")


def ce_template_index(mask: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """The True entries of a template mask as indices: ``(B, N_z)`` bool -> ``(B, K)`` int64, ascending.

    The template mask is fixed for a sequence (the first-frame template), so a tracker converts it once at
    initialisation (one host read) and passes the indices with every search region: candidate elimination
    then selects the template rows with a ``gather`` of static shape (see :func:`candidate_elimination`).
    None (``CE_TEMPLATE_RANGE`` ALL) stays None.

    Raises:
        ValueError: samples with different numbers of True entries (they cannot share one ``(B, K)`` tensor),
            or a mask without any True entry.
    """
    if mask is None:
        return None
    mask = mask.to(torch.bool)
    counts = mask.sum(dim=1).tolist()
    if len(set(counts)) != 1 or counts[0] == 0:
        raise ValueError(f"ce_template_index: every sample needs the same, non-zero number of template tokens, "
                         f"got {counts}")
    return mask.nonzero()[:, 1].view(mask.shape[0], counts[0])


def generate_mask_cond(cfg, bs: int, device, gt_bbox: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """:func:`ce_template_mask` with the range, template size and stride of an OSTrack config
    (``MODEL.BACKBONE.CE_TEMPLATE_RANGE``, ``DATA.TEMPLATE.SIZE``, ``MODEL.BACKBONE.STRIDE``);
    ``gt_bbox`` is the ``(B, 4)`` normalised xywh template box."""
    return ce_template_mask(cfg.MODEL.BACKBONE.CE_TEMPLATE_RANGE, bs, cfg.DATA.TEMPLATE.SIZE,
                            cfg.MODEL.BACKBONE.STRIDE, device, gt_bbox)


def adjust_keep_rate(epoch: int, warmup_epochs: int, total_epochs: int, iters_per_epoch: int = 1,
                     base_keep_rate: float = 0.5, max_keep_rate: float = 1.0, iters: int = -1) -> float:
    """Keep ratio of candidate elimination during training (cosine from ``max_keep_rate`` down to
    ``base_keep_rate`` between ``warmup_epochs`` and ``total_epochs``).

    OSTrack calls it with ``warmup_epochs = CE_START_EPOCH``, ``total_epochs = CE_START_EPOCH +
    CE_WARM_EPOCH``, ``iters_per_epoch = 1`` and ``base_keep_rate = CE_KEEP_RATIO[0]``; epochs count from 1.

    Returns:
        1 before ``warmup_epochs``; ``base_keep_rate`` from ``total_epochs`` on; otherwise
        ``base + (max - base) * (cos(pi * t) + 1) / 2`` with ``t`` the fraction of the warm-up done.
    """
    if epoch < warmup_epochs:
        return 1
    if epoch >= total_epochs:
        return base_keep_rate
    if iters == -1:
        iters = epoch * iters_per_epoch
    total_iters = iters_per_epoch * (total_epochs - warmup_epochs)
    iters = iters - iters_per_epoch * warmup_epochs
    return base_keep_rate + (max_keep_rate - base_keep_rate) * (math.cos(iters / total_iters * math.pi) + 1) * 0.5
