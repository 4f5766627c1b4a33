"""The one Vision Transformer stack of the one-stream trackers (OSTrack plain and CE, GRM).

A ViT-B/16 (or ViT-L/16) whose template and search region are embedded by one patch embedding,
each with its own position embedding (``pos_embed_z`` / ``pos_embed_x``, interpolated from the
224-pixel ``pos_embed`` by :meth:`VisionTransformer.finetune_track`), concatenated as
``[template tokens ; search tokens]`` and run through pre-norm transformer blocks.

Building blocks come from timm (``PatchEmbed``, ``Mlp``, ``DropPath``, ``trunc_normal_``). The
attention and block are this module's own because the trackers need what timm's do not give: the
attention map (candidate elimination) and a replaceable attention (GRM's division predictor with a
masked softmax). Parameter names are those of the official checkpoints: ``patch_embed.proj``,
``cls_token``, ``pos_embed``, ``pos_embed_z``, ``pos_embed_x``, ``blocks.<i>.{norm1, attn.qkv, attn.proj,
norm2, mlp.fc1, mlp.fc2}``, ``norm``.

Extension points:

* :class:`Attention` splits its work into :meth:`~Attention.project_qkv`,
  :meth:`~Attention.attention_logits`, :meth:`~Attention.attention_weights` and
  :meth:`~Attention.project_out`; a subclass (GRM's division attention) adds its own modules
  (``attn.divide_predict``, registered after ``qkv``/``proj`` as officially) and overrides ``forward``
  to build its policy and replace the softmax, reusing the other steps.
* :class:`Block` takes ``attn_layer``; :class:`VisionTransformer` takes one attention class or one per
  block, and exposes :meth:`~Block.forward_attention` / :meth:`~Block.forward_mlp` so a backbone can act
  between the two halves of a block (OSTrack's candidate elimination, :class:`VisionTransformerCE`).
* A backbone subclass overrides ``forward`` (the block loop) and may set :attr:`VisionTransformer.pos_embed_order`
  (GRM registers ``pos_embed_x`` before ``pos_embed_z``). ``Block.forward(x, **kwargs)`` hands ``kwargs`` to its
  attention and returns ``(x, aux)``.

Sources: OSTrack ``lib/models/ostrack/{vit.py, vit_ce.py, base_backbone.py}``,
``lib/models/layers/{attn.py, attn_blocks.py}`` (botaoye/OSTrack @ 33b5e12); GRM ``lib/models/grm/vit.py``;
timm ``vision_transformer.py``. Paper: Ye et al., "Joint Feature Learning and Relation Modeling for
Tracking: A One-Stream Framework", ECCV 2022, Sec. 3.1-3.2.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type, Union

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, PatchEmbed, trunc_normal_
from torch import nn

from lib.models.layers.candidate_elimination import candidate_elimination, restore_eliminated_tokens

__all__ = ["Attention", "Block", "VisionTransformer", "VisionTransformerCE", "vit_base_patch16_224",
           "vit_base_patch16_224_ce", "vit_large_patch16_224_ce"]

_logger = logging.getLogger(__name__)


class Attention(nn.Module):
    """Multi-head self-attention, ``softmax(q k^T / sqrt(d)) v``, that can return its attention map.

    Without ``return_attention`` (and with :attr:`fused_attn` True) the product runs through
    ``F.scaled_dot_product_attention``, which computes the same function; with it, the weights are
    formed explicitly as in the official code (logits, softmax, dropout) and returned.

    Args:
        dim: token width C.
        num_heads: heads H (head width ``C // H``).
        qkv_bias: bias of the ``qkv`` projection.
        attn_drop: dropout on the attention weights.
        proj_drop: dropout after the output projection.

    Shapes: input ``(B, N, C)``; output ``(B, N, C)`` and, when asked, the post-softmax (and
    post-dropout) attention ``(B, H, N, N)``.
    """

    #: use ``F.scaled_dot_product_attention`` where no attention map is needed.
    fused_attn: bool = True

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = False, attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"Attention: dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def project_qkv(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(B, N, C)`` tokens -> ``q, k, v``, each ``(B, H, N, C // H)``."""
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        return q, k, v

    def attention_logits(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """``q k^T / sqrt(D)``: ``(B, H, N, N)`` from ``q, k`` ``(B, H, N, D)``."""
        return (q @ k.transpose(-2, -1)) * self.scale

    def attention_weights(self, q: torch.Tensor, k: torch.Tensor,
                          key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Post-softmax, post-dropout attention ``(B, H, N, N)``.

        Args:
            q, k: ``(B, H, N, D)``.
            key_padding_mask: optional ``(B, N)`` bool, True for keys nobody may attend to.
        """
        attn = self.attention_logits(q, k)
        if key_padding_mask is not None:
            attn = attn.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        attn = attn.softmax(dim=-1)
        return self.attn_drop(attn)

    def project_out(self, heads: torch.Tensor) -> torch.Tensor:
        """``(B, H, N, D)`` attended values -> ``(B, N, C)`` through ``proj`` and its dropout."""
        B, H, N, D = heads.shape
        x = heads.transpose(1, 2).reshape(B, N, H * D)
        return self.proj_drop(self.proj(x))

    def forward(self, x: torch.Tensor, key_padding_mask: Optional[torch.Tensor] = None,
                return_attention: bool = False) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Attend over ``x`` ``(B, N, C)``; returns ``(out (B, N, C), attn (B, H, N, N) or None)``."""
        q, k, v = self.project_qkv(x)
        if return_attention or not self.fused_attn:
            attn = self.attention_weights(q, k, key_padding_mask)
            return self.project_out(attn @ v), (attn if return_attention else None)
        mask = None if key_padding_mask is None else ~key_padding_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                             dropout_p=self.attn_drop.p if self.training else 0.0)
        return self.project_out(out), None


class Block(nn.Module):
    """Pre-norm transformer block: ``x + DropPath(Attn(LN1(x)))``, then ``x + DropPath(MLP(LN2(x)))``.

    Args:
        dim, num_heads, mlp_ratio, qkv_bias: width, heads, MLP hidden ratio, qkv bias.
        drop: dropout after the attention projection and inside the MLP.
        attn_drop: dropout on the attention weights.
        drop_path: stochastic-depth rate of this block.
        act_layer, norm_layer: MLP activation (exact GELU) and normalisation (LayerNorm, eps 1e-6 in the ViT).
        attn_layer: attention class, called as ``attn_layer(dim, num_heads=..., qkv_bias=..., attn_drop=...,
            proj_drop=...)``; its ``forward(x, **kwargs)`` returns ``(out, aux)``.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = False, drop: float = 0.0,
                 attn_drop: float = 0.0, drop_path: float = 0.0, act_layer: Type[nn.Module] = nn.GELU,
                 norm_layer: Callable[[int], nn.Module] = nn.LayerNorm, attn_layer: Callable[..., nn.Module] = Attention):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = attn_layer(dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=act_layer, drop=drop)

    def forward_attention(self, x: torch.Tensor, **attn_kwargs) -> Tuple[torch.Tensor, Any]:
        """First half: ``x + DropPath(attn(norm1(x)))``; returns it with the attention's aux output
        (the attention map, GRM's decisions, or None)."""
        out, aux = self.attn(self.norm1(x), **attn_kwargs)
        return x + self.drop_path(out), aux

    def forward_mlp(self, x: torch.Tensor) -> torch.Tensor:
        """Second half: ``x + DropPath(mlp(norm2(x)))``."""
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def forward(self, x: torch.Tensor, **attn_kwargs) -> Tuple[torch.Tensor, Any]:
        """Both halves; returns ``(x (B, N, C), aux of the attention)``."""
        x, aux = self.forward_attention(x, **attn_kwargs)
        return self.forward_mlp(x), aux


def _init_vit_weights(module: nn.Module) -> None:
    """timm's original ViT init: truncated normal (std 0.02) Linear weights, zero biases, unit norms."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.zeros_(module.bias)
        nn.init.ones_(module.weight)


AttnLayers = Union[Callable[..., nn.Module], Sequence[Callable[..., nn.Module]]]


class VisionTransformer(nn.Module):
    """Plain one-stream ViT backbone (official ``VisionTransformer`` of OSTrack with ``BaseBackbone``).

    ``cls_token`` ``(1, 1, C)`` and ``pos_embed`` ``(1, 1 + (img_size/patch)^2, C)`` are kept from the
    224-pixel ViT (they are in the checkpoints and MAE weights) but are not used in the forward pass;
    :meth:`finetune_track` derives ``pos_embed_z`` and ``pos_embed_x`` from ``pos_embed``.

    Args:
        img_size: the pretraining image size (224) that ``pos_embed`` is laid out for.
        patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio, qkv_bias: ViT shape
            (ViT-B/16: 16, 3, 768, 12, 12, 4, True).
        drop_rate: dropout after the embedding and in the blocks; attn_drop_rate: on attention weights.
        drop_path_rate: stochastic depth, rising linearly from 0 at the first block to this value at the last.
        norm_layer: default ``LayerNorm(eps=1e-6)``; act_layer: default exact ``GELU``.
        attn_layer: one attention class for every block, or a sequence of ``depth`` classes (GRM: plain
            for block 0, division attention for the others).
        weight_init: apply timm's ViT initialisation (truncated normal, about 2 s for ViT-B on 2 CPU
            cores). Builders pass ``training``: at test time every weight comes from a checkpoint, so
            PyTorch's default initialisation is kept.
    """

    #: order in which :meth:`finetune_track` registers the two position embeddings (state_dict order):
    #: OSTrack registers ``pos_embed_z`` first, GRM ``pos_embed_x`` first.
    pos_embed_order: Tuple[str, str] = ("z", "x")

    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768,
                 depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 norm_layer: Optional[Callable[[int], nn.Module]] = None, act_layer: Optional[Type[nn.Module]] = None,
                 attn_layer: AttnLayers = Attention, weight_init: bool = True):
        super().__init__()
        norm_layer = norm_layer or partial(nn.LayerNorm, eps=1e-6)
        act_layer = act_layer or nn.GELU
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.patch_size = patch_size
        self.in_chans = in_chans
        self.num_features = self.embed_dim = embed_dim
        self.cat_mode = "direct"

        self.patch_embed = PatchEmbed(img_size=self.img_size, patch_size=patch_size, in_chans=in_chans,
                                      embed_dim=embed_dim, strict_img_size=False)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.pos_drop = nn.Dropout(p=drop_rate)
        self.pos_embed_z: Optional[nn.Parameter] = None
        self.pos_embed_x: Optional[nn.Parameter] = None

        if isinstance(attn_layer, (list, tuple)):
            if len(attn_layer) != depth:
                raise ValueError(f"attn_layer: {len(attn_layer)} classes given for {depth} blocks")
            attn_layers = list(attn_layer)
        else:
            attn_layers = [attn_layer] * depth
        dpr = [v.item() for v in torch.linspace(0, drop_path_rate, depth, device="cpu")]
        self.blocks = nn.Sequential(*[
            Block(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, drop=drop_rate,
                  attn_drop=attn_drop_rate, drop_path=dpr[i], norm_layer=norm_layer, act_layer=act_layer,
                  attn_layer=attn_layers[i])
            for i in range(depth)])
        self.norm = norm_layer(embed_dim)
        if weight_init:
            self.init_weights()

    # -- construction ---------------------------------------------------------------------------
    def init_weights(self) -> None:
        """timm's default ViT init (``pos_embed``/``cls_token`` truncated normal, std 0.02)."""
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        self.apply(_init_vit_weights)

    def load_pretrained(self, path: Union[str, os.PathLike], strict: bool = False) -> Tuple[List[str], List[str]]:
        """Load a pretrained ViT (an MAE ``mae_pretrain_vit_base.pth``: its ``model`` dict) non-strictly.

        Must run before :meth:`finetune_track`, which derives the tracking position embeddings from
        the loaded ``pos_embed``. The file is read with the safe loader (no code from it runs).

        Returns:
            ``(missing_keys, unexpected_keys)``, also logged as a warning when not empty.

        Raises:
            FileNotFoundError / CheckpointError: unreadable file; RuntimeError: shape mismatches.
        """
        from lib.utils.checkpoint import safe_load

        obj = safe_load(path)
        state = obj.get("model", obj) if isinstance(obj, dict) else obj
        state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
        missing, unexpected = self.load_state_dict(state, strict=strict)
        missing = [k for k in missing if not k.startswith(("pos_embed_z", "pos_embed_x"))]
        if missing or unexpected:
            _logger.warning("pretrained '%s': missing keys %s; unexpected keys %s", os.fspath(path), missing,
                            unexpected)
        _logger.info("loaded pretrained backbone from '%s'", os.fspath(path))
        return list(missing), list(unexpected)

    def finetune_track(self, search_size: int, template_size: int, stride: int = 16,
                       patch_start_index: int = 1) -> None:
        """Adapt the 224-pixel ViT to tracking (official ``BaseBackbone.finetune_track``).

        The patch part of ``pos_embed`` (tokens ``patch_start_index..``), as a ``(1, C, 14, 14)`` grid,
        is interpolated bicubically (``align_corners=False``) to the search grid ``(S_x/stride)^2`` and
        the template grid ``(S_z/stride)^2`` and flattened row-major into the new parameters
        ``pos_embed_x`` ``(1, N_x, C)`` and ``pos_embed_z`` ``(1, N_z, C)``. If ``stride`` differs from the
        patch size, the patch-embedding kernel is interpolated bicubically to ``stride`` first.

        Args:
            search_size, template_size: crop sides in pixels (``DATA.SEARCH.SIZE``, ``DATA.TEMPLATE.SIZE``).
            stride: ``MODEL.BACKBONE.STRIDE``.
            patch_start_index: number of class/distillation tokens in front of ``pos_embed`` (1).
        """
        if stride != self.patch_size:
            _logger.warning("patch size %d differs from stride %d: interpolating the patch embedding",
                            self.patch_size, stride)
            old = self.patch_embed.proj
            weight = F.interpolate(old.weight.detach(), size=(stride, stride), mode="bicubic", align_corners=False)
            self.patch_embed = PatchEmbed(img_size=self.img_size, patch_size=stride, in_chans=self.in_chans,
                                          embed_dim=self.embed_dim, strict_img_size=False)
            self.patch_embed.proj.weight = nn.Parameter(weight)
            self.patch_embed.proj.bias = old.bias
        grid_h, grid_w = self.img_size[0] // self.patch_size, self.img_size[1] // self.patch_size
        patch_pos = self.pos_embed.detach()[:, patch_start_index:, :].transpose(1, 2)
        patch_pos = patch_pos.reshape(1, self.embed_dim, grid_h, grid_w)

        def resized(side: int) -> nn.Parameter:
            n = side // stride
            grid = F.interpolate(patch_pos, size=(n, n), mode="bicubic", align_corners=False)
            return nn.Parameter(grid.flatten(2).transpose(1, 2).contiguous())

        new = {"z": resized(template_size), "x": resized(search_size)}
        for which in self.pos_embed_order:
            setattr(self, f"pos_embed_{which}", new[which])

    # -- forward --------------------------------------------------------------------------------
    def embed_tokens(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Template ``(B, 3, H_z, W_z)`` and search ``(B, 3, H_x, W_x)`` (normalised images) ->
        ``[z tokens ; x tokens]`` ``(B, N_z + N_x, C)`` with their position embeddings."""
        if self.pos_embed_z is None or self.pos_embed_x is None:
            raise RuntimeError("VisionTransformer: call finetune_track() before the forward pass")
        x = self.patch_embed(x) + self.pos_embed_x
        z = self.patch_embed(z) + self.pos_embed_z
        return self.pos_drop(torch.cat([z, x], dim=1))

    def forward(self, z: torch.Tensor, x: torch.Tensor, ce_template_mask: Optional[torch.Tensor] = None,
                ce_keep_rate: Optional[float] = None, return_last_attn: bool = False
                ) -> Tuple[torch.Tensor, Dict[str, Any]]:
        """Joint feature extraction and relation modelling.

        Args:
            z: template ``(B, 3, H_z, W_z)``; x: search region ``(B, 3, H_x, W_x)``.
            ce_template_mask, ce_keep_rate, return_last_attn: accepted and ignored (as the official
                plain backbone does), so both backbones share one call.

        Returns:
            ``(tokens (B, N_z + N_x, C) after the final LayerNorm, {"attn": None})``.
        """
        tokens = self.embed_tokens(z, x)
        for blk in self.blocks:
            tokens, _ = blk(tokens)
        return self.norm(tokens), {"attn": None}


class VisionTransformerCE(VisionTransformer):
    """One-stream ViT with candidate elimination (official ``VisionTransformerCE`` with ``CEBlock``).

    In each block listed in ``ce_loc`` the search tokens least attended by the template (see
    :func:`~lib.models.layers.candidate_elimination.candidate_elimination`) are dropped after the
    attention half and before the MLP half of the block. After the final LayerNorm the kept tokens
    are put back in raster order and the dropped ones restored as zero vectors.

    Args:
        ce_loc: 0-based indices of the eliminating blocks (``MODEL.BACKBONE.CE_LOC``, ``[3, 6, 9]``).
        ce_keep_ratio: keep ratio of each of them (``MODEL.BACKBONE.CE_KEEP_RATIO``, ``[0.7] * 3``).
        Other arguments: see :class:`VisionTransformer`.

    Raises:
        ValueError: fewer keep ratios than CE locations, or a location outside ``0..depth-1``.
    """

    def __init__(self, *args, ce_loc: Optional[Sequence[int]] = None, ce_keep_ratio: Optional[Sequence[float]] = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.ce_loc = [int(i) for i in (ce_loc or [])]
        ratios = list(ce_keep_ratio or [])
        if len(ratios) < len(self.ce_loc):
            raise ValueError(f"CE_KEEP_RATIO {ratios} has fewer entries than CE_LOC {self.ce_loc}")
        depth = len(self.blocks)
        if any(not 0 <= i < depth for i in self.ce_loc):
            raise ValueError(f"CE_LOC {self.ce_loc} must index blocks 0..{depth - 1}")
        self.keep_ratio_search = [1.0] * depth
        for k, i in enumerate(self.ce_loc):
            self.keep_ratio_search[i] = float(ratios[k])

    def forward(self, z: torch.Tensor, x: torch.Tensor, ce_template_mask: Optional[torch.Tensor] = None,
                ce_keep_rate: Optional[float] = None, return_last_attn: bool = False
                ) -> Tuple[torch.Tensor, Dict[str, Any]]:
        """Forward with candidate elimination.

        Args:
            z: template ``(B, 3, H_z, W_z)``; x: search region ``(B, 3, H_x, W_x)`` (normalised images).
            ce_template_mask: ``(B, N_z)`` bool, the template tokens whose attention scores the search
                tokens (CTR_POINT: the centre token), or their ``(B, K)`` int64 indices
                (:func:`~lib.models.layers.candidate_elimination.ce_template_index`: static shapes, the same
                result); None averages over all template tokens.
            ce_keep_rate: one keep ratio for every eliminating block (training schedule); None uses
                each block's own ratio; a value >= 1 disables elimination.
            return_last_attn: ignored; the last block's attention is always returned, as officially.

        Returns:
            ``(tokens, aux)``: tokens ``(B, N_z + N_x, C)`` in the original order (eliminated search
            positions hold exact zeros); ``aux = {"attn": (B, H, N_z + kept, N_z + kept) attention of the
            last block, "removed_indexes_s": [one (B, removed_k) float tensor of original search indices,
            or None when nothing was removed, per eliminating block]}``.
        """
        tokens = self.embed_tokens(z, x)
        B = tokens.shape[0]
        lens_z = self.pos_embed_z.shape[1]
        lens_x = self.pos_embed_x.shape[1]
        global_index_s = torch.arange(lens_x, device=tokens.device, dtype=torch.float32).repeat(B, 1)

        removed_indexes_s: List[Optional[torch.Tensor]] = []
        attn = None
        last = len(self.blocks) - 1
        for i, blk in enumerate(self.blocks):
            ratio = self.keep_ratio_search[i]
            eliminate = ratio < 1 and (ce_keep_rate is None or ce_keep_rate < 1)
            tokens, attn = blk.forward_attention(tokens, return_attention=eliminate or i == last)
            removed = None
            if eliminate:
                ratio = ratio if ce_keep_rate is None else ce_keep_rate
                tokens, global_index_s, removed = candidate_elimination(attn, tokens, lens_z, ratio, global_index_s,
                                                                        ce_template_mask)
            tokens = blk.forward_mlp(tokens)
            if i in self.ce_loc:
                removed_indexes_s.append(removed)

        tokens = self.norm(tokens)
        z_tokens, x_tokens = tokens[:, :lens_z], tokens[:, lens_z:]
        removed_any = [r for r in removed_indexes_s if r is not None]
        if removed_any:
            x_tokens = restore_eliminated_tokens(x_tokens, global_index_s, removed_any, lens_x)
        return torch.cat([z_tokens, x_tokens], dim=1), {"attn": attn, "removed_indexes_s": removed_indexes_s}


def vit_base_patch16_224(**kwargs) -> VisionTransformer:
    """ViT-B/16 (768 wide, 12 blocks, 12 heads) plain tracking backbone."""
    return VisionTransformer(patch_size=16, embed_dim=768, depth=12, num_heads=12, **kwargs)


def vit_base_patch16_224_ce(**kwargs) -> VisionTransformerCE:
    """ViT-B/16 with candidate elimination (``ce_loc``, ``ce_keep_ratio``)."""
    return VisionTransformerCE(patch_size=16, embed_dim=768, depth=12, num_heads=12, **kwargs)


def vit_large_patch16_224_ce(**kwargs) -> VisionTransformerCE:
    """ViT-L/16 (1024 wide, 24 blocks, 16 heads) with candidate elimination."""
    return VisionTransformerCE(patch_size=16, embed_dim=1024, depth=24, num_heads=16, **kwargs)


def vit_tiny_patch16_4blocks_ce(**kwargs) -> VisionTransformerCE:
    """ViT-Tiny width (192 wide, 3 heads) with only 4 blocks and candidate elimination: the backbone of
    the CPU training configuration ``experiments/ostrack/tiny_cpu.yaml`` (not an official model; no
    pretrained weights exist for it)."""
    return VisionTransformerCE(patch_size=16, embed_dim=192, depth=4, num_heads=3, **kwargs)
