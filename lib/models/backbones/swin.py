"""Swin Transformer with mmdet 2.x's key layout and padding semantics (SparseTT's backbone).

SparseTT (``videoanalyst/model/backbone/backbone_impl/swin_transformer.py``) carries a copy of mmdet 2.x's
``SwinTransformer`` (``mmdet/models/backbones/swin.py`` with ``mmdet/models/utils/transformer.py``'s
``PatchEmbed``/``PatchMerging`` and mmcv's ``FFN``) wrapped as ``basemodel.net``. Its state_dict keys differ
from timm's (``stages.{i}.blocks.{j}.attn.w_msa.qkv``, ``ffn.layers.0.0``, ``patch_embed.projection``,
``downsample.reduction``, one ``norm{i}`` per output stage) and it accepts inputs whose size is not a
multiple of the patch or window size (SparseTT: 127 and 289 pixels), which timm's ``SwinTransformer``
does not. So the modules here are our own, with timm's ``DropPath``, ``window_partition``,
``window_reverse`` and ``get_relative_position_index`` inside (timm's ``WindowAttention`` does not fit either: it
keeps ``relative_position_index`` out of the state_dict, while the official checkpoints hold it and the
network uses the loaded values). The padding rules are mmdet's, exactly:

* ``PatchEmbed``: zero-pad the image at the bottom/right to a multiple of the patch size ("corner"
  adaptive padding), conv ``kernel = stride = patch``, flatten, LayerNorm.
* window attention: LayerNorm'ed tokens are zero-padded at the bottom/right to a multiple of the window;
  the padded tokens take part in the attention as keys (no padding mask), only the shifted-window mask
  (-100 between regions of the padded, rolled map) is applied; the output is cropped back.
* ``PatchMerging``: zero-pad to an even size ("corner"), gather 2x2 neighbourhoods in ``nn.Unfold`` order
  (channel-major: feature ``c*4 + 2*dy + dx``), LayerNorm(4C), Linear(4C, 2C, no bias).

Tensors are ``(B, L, C)`` token sequences with ``L = H*W`` row-major unless said otherwise.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn
from timm.layers import DropPath
from timm.models.swin_transformer import get_relative_position_index, window_partition, window_reverse

__all__ = ["mmdet_relative_position_index", "WindowMSA", "ShiftWindowMSA", "SwinFFN", "SwinBlock",
           "SwinBlockSequence", "PatchEmbed", "PatchMerging", "SwinTransformer",
           "convert_microsoft_swin_checkpoint", "load_pretrained_swin"]


def mmdet_relative_position_index(window_size: Tuple[int, int]) -> torch.Tensor:
    """``(Wh*Ww, Wh*Ww)`` int64 index into the ``((2Wh-1)(2Ww-1), heads)`` relative position bias table.

    Entry ``[i, j]`` is ``(dy + Wh - 1) * (2Ww - 1) + (dx + Ww - 1)`` with ``(dy, dx)`` the offset of window
    position ``i`` from ``j`` (values ``0 .. (2Wh-1)(2Ww-1)-1``). mmdet builds it with ``double_step_seq``
    and a flip; the table is the same as Microsoft's and timm's, so timm's helper builds it.
    """
    return get_relative_position_index(int(window_size[0]), int(window_size[1]))


class WindowMSA(nn.Module):
    """Multi-head self-attention inside ``Wh x Ww`` windows with a relative position bias (mmdet ``WindowMSA``).

    Args:
        embed_dims: channels C.
        num_heads: heads (C must divide by it).
        window_size: ``(Wh, Ww)``.
        qkv_bias: bias of the qkv projection.
        qk_scale: logit scale; ``head_dim ** -0.5`` when None.
        attn_drop_rate / proj_drop_rate: dropout on the attention weights / the output.

    State: ``relative_position_bias_table`` ``((2Wh-1)(2Ww-1), heads)`` parameter and the
    ``relative_position_index`` ``(Wh*Ww, Wh*Ww)`` int64 buffer, both in the state_dict as in the official
    checkpoints (the index is used as loaded).

    Fast path (:attr:`fused_attn`, on by default): ``F.scaled_dot_product_attention`` with the relative
    position bias (plus the shifted-window mask) as its additive mask: the same softmax attention
    (``tests/test_sparsett_parity.py`` keeps passing); the explicit product is used in training with
    attention dropout or with ``fused_attn = False``.
    """

    #: use ``F.scaled_dot_product_attention`` (bias and mask as an additive mask).
    fused_attn: bool = True

    def __init__(self, embed_dims: int, num_heads: int, window_size: Tuple[int, int], qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, attn_drop_rate: float = 0.0, proj_drop_rate: float = 0.0):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f"WindowMSA: embed_dims {embed_dims} is not divisible by num_heads {num_heads}")
        self.embed_dims = embed_dims
        self.window_size = tuple(window_size)
        self.num_heads = num_heads
        self.scale = qk_scale or (embed_dims // num_heads) ** -0.5
        wh, ww = self.window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * wh - 1) * (2 * ww - 1), num_heads))
        self.register_buffer("relative_position_index", mmdet_relative_position_index(self.window_size))
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop_rate)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop_rate)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Args: ``x`` ``(num_windows*B, N, C)`` with ``N = Wh*Ww``; ``mask`` ``(num_windows, N, N)`` additive
        (0 or -100) or None. Returns ``(num_windows*B, N, C)``."""
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(N, N, -1)
        bias = bias.permute(2, 0, 1).contiguous().unsqueeze(0)  # (1, heads, N, N)
        if self.fused_attn and not (self.training and self.attn_drop.p > 0):
            # softmax(q k^T * scale + bias + mask) v: the fused kernel with the bias (and shift mask) additive
            if mask is not None:
                nw = mask.shape[0]
                bias = (bias + mask.unsqueeze(1)).unsqueeze(0).expand(B // nw, -1, -1, -1, -1).reshape(
                    B, self.num_heads, N, N)
            # (q scaled first, as the explicit product: the same logits to the last bit)
            x = F.scaled_dot_product_attention(q * self.scale, k, v, attn_mask=bias.to(q.dtype), scale=1.0)
            return self.proj_drop(self.proj(x.transpose(1, 2).reshape(B, N, C)))
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn + bias
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(B // nw, nw, self.num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.num_heads, N, N)
        attn = self.attn_drop(attn.softmax(dim=-1))
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))


def _shift_window_mask(h_pad: int, w_pad: int, window: int, shift: int, device: torch.device) -> torch.Tensor:
    """``(num_windows, window**2, window**2)`` additive mask (0 inside a region, -100 across regions) of a
    ``h_pad x w_pad`` map rolled by ``-shift`` (mmdet ``ShiftWindowMSA``; regions of the padded map)."""
    img_mask = torch.zeros((1, h_pad, w_pad, 1), device=device)
    slices = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    cnt = 0
    for hs in slices:
        for ws in slices:
            img_mask[:, hs, ws, :] = cnt
            cnt += 1
    mask_windows = window_partition(img_mask, (window, window)).view(-1, window * window)
    attn_mask = mask_windows.unsqueeze(1) - mask_windows.unsqueeze(2)
    return attn_mask.masked_fill(attn_mask != 0, -100.0).masked_fill(attn_mask == 0, 0.0)


class ShiftWindowMSA(nn.Module):
    """(Shifted-)window attention on a token map, with mmdet's padding (module ``attn`` of a Swin block).

    Args:
        embed_dims, num_heads, window_size (int), qkv_bias, qk_scale, attn_drop_rate, proj_drop_rate: as
            :class:`WindowMSA`.
        shift_size: cyclic shift (0 for W-MSA, ``window_size // 2`` for SW-MSA).
        drop_path_rate: stochastic depth on the output (timm ``DropPath``).

    Raises:
        ValueError: ``shift_size`` not in ``[0, window_size)``.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, shift_size: int = 0,
                 qkv_bias: bool = True, qk_scale: Optional[float] = None, attn_drop_rate: float = 0.0,
                 proj_drop_rate: float = 0.0, drop_path_rate: float = 0.0):
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError(f"ShiftWindowMSA: shift_size {shift_size} must be in [0, {window_size})")
        self.window_size = window_size
        self.shift_size = shift_size
        self.w_msa = WindowMSA(embed_dims, num_heads, (window_size, window_size), qkv_bias, qk_scale,
                               attn_drop_rate, proj_drop_rate)
        self.drop = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def _cached_shift_mask(self, h_pad: int, w_pad: int, device: torch.device) -> torch.Tensor:
        """:func:`_shift_window_mask` of this block, built once per map size and device (it depends on
        nothing else; rebuilding it cost a dozen small kernels per block and frame)."""
        key = (h_pad, w_pad, str(device))
        cache = self.__dict__.setdefault("_shift_masks", {})
        if key not in cache:
            cache[key] = _shift_window_mask(h_pad, w_pad, self.window_size, self.shift_size, device)
        return cache[key]

    def forward(self, query: torch.Tensor, hw_shape: Tuple[int, int]) -> torch.Tensor:
        """Args: ``query`` ``(B, H*W, C)``, ``hw_shape`` ``(H, W)``. Returns ``(B, H*W, C)``.

        Raises:
            ValueError: ``H*W`` differs from the sequence length.
        """
        B, L, C = query.shape
        H, W = hw_shape
        if L != H * W:
            raise ValueError(f"ShiftWindowMSA: {L} tokens do not form the {H}x{W} map")
        ws = self.window_size
        query = query.view(B, H, W, C)
        pad_r = (ws - W % ws) % ws
        pad_b = (ws - H % ws) % ws
        query = F.pad(query, (0, 0, 0, pad_r, 0, pad_b))
        h_pad, w_pad = query.shape[1], query.shape[2]
        if self.shift_size > 0:
            query = torch.roll(query, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
            attn_mask = self._cached_shift_mask(h_pad, w_pad, query.device)
        else:
            attn_mask = None
        windows = window_partition(query, (ws, ws)).view(-1, ws * ws, C)
        windows = self.w_msa(windows, mask=attn_mask).view(-1, ws, ws, C)
        x = window_reverse(windows, (ws, ws), h_pad, w_pad)
        if self.shift_size > 0:
            x = torch.roll(x, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        if pad_r > 0 or pad_b > 0:
            x = x[:, :H, :W, :].contiguous()
        return self.drop(x.view(B, H * W, C))


class SwinFFN(nn.Module):
    """mmcv ``FFN`` with two fcs: ``identity + drop_path(fc2(drop(gelu(fc1(x)))))``.

    Keys: ``layers.0.0`` (fc1, C -> hidden), ``layers.1`` (fc2, hidden -> C), as the official checkpoints.
    timm's ``Mlp`` computes the same but names its layers ``fc1``/``fc2``.
    """

    def __init__(self, embed_dims: int, feedforward_channels: int, ffn_drop: float = 0.0,
                 drop_path_rate: float = 0.0):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(embed_dims, feedforward_channels), nn.GELU(), nn.Dropout(ffn_drop)),
            nn.Linear(feedforward_channels, embed_dims),
            nn.Dropout(ffn_drop),
        )
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, identity: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``(..., C) -> (..., C)``; ``identity`` defaults to ``x``."""
        return (x if identity is None else identity) + self.drop_path(self.layers(x))


class SwinBlock(nn.Module):
    """Pre-norm Swin block: ``x + attn(norm1(x))`` then ``x + ffn(norm2(x))`` (mmdet ``SwinBlock``).

    Args:
        embed_dims, num_heads: channels and heads.
        feedforward_channels: FFN hidden width (``mlp_ratio * C``).
        window_size: window side; ``shift`` selects SW-MSA (shift ``window_size // 2``).
        qkv_bias, qk_scale, drop_rate, attn_drop_rate, drop_path_rate: as mmdet.
        with_cp: gradient checkpointing while training.
    """

    def __init__(self, embed_dims: int, num_heads: int, feedforward_channels: int, window_size: int = 7,
                 shift: bool = False, qkv_bias: bool = True, qk_scale: Optional[float] = None,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 with_cp: bool = False):
        super().__init__()
        self.with_cp = with_cp
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = ShiftWindowMSA(embed_dims, num_heads, window_size, window_size // 2 if shift else 0,
                                   qkv_bias, qk_scale, attn_drop_rate, drop_rate, drop_path_rate)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.ffn = SwinFFN(embed_dims, feedforward_channels, drop_rate, drop_path_rate)

    def _inner(self, x: torch.Tensor, hw_shape: Tuple[int, int]) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), hw_shape)
        return self.ffn(self.norm2(x), identity=x)

    def forward(self, x: torch.Tensor, hw_shape: Tuple[int, int]) -> torch.Tensor:
        """``(B, H*W, C) -> (B, H*W, C)``."""
        if self.with_cp and x.requires_grad:
            return torch.utils.checkpoint.checkpoint(self._inner, x, hw_shape, use_reentrant=False)
        return self._inner(x, hw_shape)


class PatchEmbed(nn.Module):
    """Image to patch tokens: corner zero-padding to a multiple of ``patch_size``, conv, flatten, LayerNorm.

    Keys ``projection`` (Conv2d, bias) and ``norm``. ``(B, 3, H, W) -> ((B, ceil(H/p)*ceil(W/p), C), (h, w))``.
    """

    def __init__(self, in_channels: int = 3, embed_dims: int = 96, patch_size: int = 4, patch_norm: bool = True):
        super().__init__()
        self.patch_size = patch_size
        self.projection = nn.Conv2d(in_channels, embed_dims, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dims) if patch_norm else None

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        p = self.patch_size
        pad_h, pad_w = (-x.shape[2]) % p, (-x.shape[3]) % p
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        x = self.projection(x)
        hw = (x.shape[2], x.shape[3])
        x = x.flatten(2).transpose(1, 2)
        if self.norm is not None:
            x = self.norm(x)
        return x, hw


class PatchMerging(nn.Module):
    """2x2 patch merging in ``nn.Unfold`` order (mmdet 2.x): ``(B, H*W, C) -> (B, ceil(H/2)*ceil(W/2), out)``.

    The map is zero-padded at the bottom/right to even sides; the merged feature of output cell ``(i, j)``
    is ``[x[c, 2i+dy, 2j+dx] for c, dy, dx]`` (channel-major), then ``norm`` (LayerNorm 4C) and
    ``reduction`` (Linear 4C -> out, no bias).
    """

    def __init__(self, in_channels: int, out_channels: int, patch_norm: bool = True):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.norm = nn.LayerNorm(4 * in_channels) if patch_norm else None
        self.reduction = nn.Linear(4 * in_channels, out_channels, bias=False)

    def forward(self, x: torch.Tensor, hw_shape: Tuple[int, int]) -> Tuple[torch.Tensor, Tuple[int, int]]:
        B, L, C = x.shape
        H, W = hw_shape
        if L != H * W:
            raise ValueError(f"PatchMerging: {L} tokens do not form the {H}x{W} map")
        x = x.view(B, H, W, C)
        if H % 2 or W % 2:
            x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
        h2, w2 = x.shape[1] // 2, x.shape[2] // 2
        x = x.view(B, h2, 2, w2, 2, C).permute(0, 1, 3, 5, 2, 4).reshape(B, h2 * w2, 4 * C)
        if self.norm is not None:
            x = self.norm(x)
        return self.reduction(x), (h2, w2)


class SwinBlockSequence(nn.Module):
    """One stage: ``depth`` blocks alternating W-MSA / SW-MSA, then an optional :class:`PatchMerging`.

    ``forward`` returns ``(x_down, down_hw, x, hw)``: the merged map for the next stage (the stage output
    itself when there is no downsample) and the stage output before merging.
    """

    def __init__(self, embed_dims: int, num_heads: int, feedforward_channels: int, depth: int,
                 window_size: int = 7, qkv_bias: bool = True, qk_scale: Optional[float] = None,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rates: Sequence[float] = (),
                 downsample: Optional[PatchMerging] = None, with_cp: bool = False):
        super().__init__()
        rates = list(drop_path_rates) or [0.0] * depth
        if len(rates) != depth:
            raise ValueError(f"SwinBlockSequence: {len(rates)} drop-path rates for {depth} blocks")
        self.blocks = nn.ModuleList([
            SwinBlock(embed_dims, num_heads, feedforward_channels, window_size, shift=i % 2 == 1,
                      qkv_bias=qkv_bias, qk_scale=qk_scale, drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
                      drop_path_rate=rates[i], with_cp=with_cp)
            for i in range(depth)])
        self.downsample = downsample

    def forward_blocks(self, x: torch.Tensor, hw_shape: Tuple[int, int]) -> torch.Tensor:
        """The blocks only: ``(B, H*W, C) -> (B, H*W, C)``."""
        for block in self.blocks:
            x = block(x, hw_shape)
        return x

    def forward(self, x: torch.Tensor, hw_shape: Tuple[int, int]):
        x = self.forward_blocks(x, hw_shape)
        if self.downsample is not None:
            x_down, down_hw = self.downsample(x, hw_shape)
            return x_down, down_hw, x, hw_shape
        return x, hw_shape, x, hw_shape


class SwinTransformer(nn.Module):
    """mmdet 2.x Swin Transformer (the ``basemodel.net`` of SparseTT): patch embedding, 4 stages, one
    LayerNorm ``norm{i}`` per output stage.

    Args:
        in_channels: image channels.
        embed_dims: stage-0 channels (96 for Swin-T); stage ``i`` has ``embed_dims * 2**i``.
        patch_size: patch side (4); ``strides[0]`` of mmdet.
        window_size: attention window side (7).
        mlp_ratio: FFN width ratio (4).
        depths / num_heads: blocks and heads per stage (Swin-T: (2, 2, 6, 2) / (3, 6, 12, 24)).
        out_indices: stages whose (normed) output is returned (SparseTT: ``(2,)``).
        qkv_bias, qk_scale, drop_rate, attn_drop_rate: as mmdet.
        drop_path_rate: stochastic depth, rising linearly from 0 over all blocks.
        patch_norm: LayerNorm after patch embedding and merging.
        with_cp: gradient checkpointing in training.

    Every stage and merging layer is built, so the state_dict holds all of mmdet's keys (strict loading of
    official checkpoints). The official forward also *runs* the stages after the last output index
    (SparseTT: stage 2's merging and stage 3) and discards their result; ``forward`` here stops after the
    last output stage, which gives the same outputs with less work.

    ``forward(x)``: ``(B, 3, H, W)`` (any H, W) -> list of ``(B, C_i, H_i, W_i)`` maps, one per
    ``out_indices`` entry, with ``H_0 = ceil(H/4)`` and ``H_{i+1} = ceil(H_i/2)`` (127 -> 32, 16, 8;
    289 -> 73, 37, 19).
    """

    def __init__(self, in_channels: int = 3, embed_dims: int = 96, patch_size: int = 4, window_size: int = 7,
                 mlp_ratio: float = 4, depths: Sequence[int] = (2, 2, 6, 2), num_heads: Sequence[int] = (3, 6, 12, 24),
                 out_indices: Sequence[int] = (0, 1, 2, 3), qkv_bias: bool = True, qk_scale: Optional[float] = None,
                 patch_norm: bool = True, drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.1, with_cp: bool = False):
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f"SwinTransformer: {len(depths)} depths but {len(num_heads)} num_heads")
        num_layers = len(depths)
        self.out_indices = tuple(int(i) for i in out_indices)
        if not self.out_indices or any(not 0 <= i < num_layers for i in self.out_indices):
            raise ValueError(f"SwinTransformer: out_indices {out_indices} must lie in [0, {num_layers})")
        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size, patch_norm)
        self.drop_after_pos = nn.Dropout(p=drop_rate)
        dpr = [v.item() for v in torch.linspace(0, drop_path_rate, sum(depths))]
        self.stages = nn.ModuleList()
        channels = embed_dims
        for i in range(num_layers):
            downsample = PatchMerging(channels, 2 * channels, patch_norm) if i < num_layers - 1 else None
            self.stages.append(SwinBlockSequence(
                channels, num_heads[i], int(mlp_ratio * channels), depths[i], window_size, qkv_bias, qk_scale,
                drop_rate, attn_drop_rate, dpr[sum(depths[:i]):sum(depths[:i + 1])], downsample, with_cp))
            if downsample is not None:
                channels = downsample.out_channels
        self.num_features = [int(embed_dims * 2 ** i) for i in range(num_layers)]
        for i in self.out_indices:
            self.add_module(f"norm{i}", nn.LayerNorm(self.num_features[i]))
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # mmdet's from-scratch init (training without the ImageNet checkpoint).
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        x, hw = self.patch_embed(x)
        x = self.drop_after_pos(x)
        outs = []
        last = max(self.out_indices)
        for i, stage in enumerate(self.stages):
            if i == last:
                # The downsample of the last output stage only feeds the discarded later stages.
                out, out_hw = stage.forward_blocks(x, hw), hw
            else:
                x, hw, out, out_hw = stage(x, hw)
            if i in self.out_indices:
                out = getattr(self, f"norm{i}")(out)
                outs.append(out.view(-1, *out_hw, self.num_features[i]).permute(0, 3, 1, 2).contiguous())
            if i == last:
                break
        return outs


def convert_microsoft_swin_checkpoint(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Map a Microsoft Swin checkpoint (``layers.*``, ``attn.*``, ``mlp.fc1`` ...) onto this module's keys.

    As mmdet's ``swin_converter``: ``layers`` -> ``stages``, ``attn.`` -> ``attn.w_msa.``, ``mlp.fc1.`` ->
    ``ffn.layers.0.0.``, ``mlp.fc2.`` -> ``ffn.layers.1.``, ``patch_embed.proj`` -> ``patch_embed.projection``;
    the classifier ``head.*`` is dropped; the merging ``reduction`` weight ``(out, 4C)`` and ``norm`` ``(4C,)``
    are permuted from Swin's ``[x0, x1, x2, x3]`` concatenation ((dy, dx) = (0,0), (1,0), (0,1), (1,1)) to the
    channel-major unfold order of :class:`PatchMerging`.
    """
    out: Dict[str, torch.Tensor] = {}
    for k, v in state_dict.items():
        if k.startswith("head"):
            continue
        if k.startswith("layers"):
            if "attn." in k:
                k = k.replace("attn.", "attn.w_msa.")
            elif "mlp.fc1." in k:
                k = k.replace("mlp.fc1.", "ffn.layers.0.0.")
            elif "mlp.fc2." in k:
                k = k.replace("mlp.fc2.", "ffn.layers.1.")
            elif "mlp." in k:
                k = k.replace("mlp.", "ffn.")
            elif "downsample" in k and "reduction." in k:
                o, i = v.shape
                v = v.reshape(o, 4, i // 4)[:, [0, 2, 1, 3], :].transpose(1, 2).reshape(o, i)
            elif "downsample" in k and "norm." in k:
                i = v.shape[0]
                v = v.reshape(4, i // 4)[[0, 2, 1, 3], :].transpose(0, 1).reshape(i)
            k = k.replace("layers", "stages", 1)
        elif k.startswith("patch_embed") and "proj" in k:
            k = k.replace("proj", "projection")
        out[k] = v
    return out


def load_pretrained_swin(model: SwinTransformer, path: str, convert: bool = True) -> Tuple[List[str], List[str]]:
    """Load ImageNet Swin weights (Microsoft release, ``{'model': ...}``) into ``model`` as mmdet does.

    Keys are converted (``convert``), relative position bias tables of another window size are resized
    bicubically, and the load is non-strict (the classifier, the final ``norm`` and the ``attn_mask`` buffers
    of the release have no counterpart). The file is read with the safe loader.

    Returns:
        ``(missing_keys, unexpected_keys)`` of the non-strict load.

    Raises:
        FileNotFoundError, CheckpointError: unreadable file.
    """
    from lib.utils.checkpoint import extract_state_dict, safe_load

    sd = extract_state_dict(safe_load(path), f"pretrained Swin '{path}'")
    if convert:
        sd = convert_microsoft_swin_checkpoint(sd)
    own = model.state_dict()
    for key in [k for k in sd if k.endswith("relative_position_bias_table") and k in own]:
        table, target = sd[key], own[key]
        if table.shape[1] == target.shape[1] and table.shape[0] != target.shape[0]:
            s1, s2 = int(table.shape[0] ** 0.5), int(target.shape[0] ** 0.5)
            resized = F.interpolate(table.permute(1, 0).reshape(1, -1, s1, s1), size=(s2, s2), mode="bicubic")
            sd[key] = resized.view(-1, s2 * s2).permute(1, 0).contiguous()
    sd = {k: v for k, v in sd.items() if k not in own or tuple(v.shape) == tuple(own[k].shape)}
    result = model.load_state_dict(sd, strict=False)
    return list(result.missing_keys), list(result.unexpected_keys)
