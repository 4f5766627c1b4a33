"""mmtracking's STARK checkpoints -> the official STARK state_dict layout.

mmtracking (``mmtrack/models/sot/stark.py``, ``track_heads/stark_head.py``; configs
``stark_st{1,2}_r50_*``) re-implements STARK-ST50 with mmdet/mmcv building blocks. Its files are
``{'state_dict': ..., 'meta': ...}`` with these key families (left) for the official ones (right):

==============================================================  ======================================
``backbone.<resnet key>`` (plain BN: extra num_batches_tracked)  ``backbone.0.body.<resnet key>``
``neck.convs.0.conv.{weight,bias}``                              ``bottleneck.{weight,bias}``
``head.query_embedding.weight``                                  ``query_embed.weight``
``head.transformer.encoder.layers.i.attentions.0.attn.*``        ``transformer.encoder.layers.i.self_attn.*``
``head.transformer.decoder.layers.i.attentions.{0,1}.attn.*``    ``...decoder.layers.i.{self_attn,multihead_attn}.*``
``...layers.i.ffns.0.layers.0.0.*`` / ``ffns.0.layers.1.*``      ``...layers.i.linear1.*`` / ``linear2.*``
``...layers.i.norms.{0,1,2}.*``                                  ``...layers.i.norm{1,2,3}.*``
``head.transformer.decoder.post_norm.*``                         ``transformer.decoder.norm.*``
``head.bbox_head.{tl,br}_corner_pred.{0..3}.{conv,bn}.*``        ``box_head.conv{1..4}_{tl,br}.{0,1}.*``
``head.bbox_head.{tl,br}_corner_pred.4.*``                       ``box_head.conv5_{tl,br}.*``
``head.cls_head.layers.{0,1,2}.*`` (stage 2 only)                ``cls_head.layers.{0,1,2}.*``
==============================================================  ======================================

mmtracking normalises images with mean/std in 0-255 units (the same transform as the official
0-1 ImageNet mean/std), so converted weights are used unchanged. Stage-1 files have no score head:
they fit STARK-S's modules exactly.
"""

from __future__ import annotations

import os
import re
from typing import Any, Dict, Mapping, Optional

import torch

from lib.utils.checkpoint import CheckpointError, check_state_dict, extract_state_dict, safe_load, save_checkpoint_atomic

__all__ = ["is_mmtracking_stark", "mmtracking_to_official", "checkpoint_filter", "convert_mmtracking_checkpoint"]

_TRANSFORMER = r"head\.transformer\.(encoder|decoder)\.layers\.(\d+)\."

# (pattern, replacement) tried in order; the first that matches wins.
_RULES = [
    (re.compile(r"^backbone\.(.+)$"), r"backbone.0.body.\1"),
    (re.compile(r"^neck\.convs\.0\.conv\.(weight|bias)$"), r"bottleneck.\1"),
    (re.compile(r"^head\.query_embedding\.weight$"), r"query_embed.weight"),
    (re.compile(r"^head\.transformer\.encoder\.layers\.(\d+)\.attentions\.0\.attn\.(.+)$"),
     r"transformer.encoder.layers.\1.self_attn.\2"),
    (re.compile(r"^head\.transformer\.decoder\.layers\.(\d+)\.attentions\.0\.attn\.(.+)$"),
     r"transformer.decoder.layers.\1.self_attn.\2"),
    (re.compile(r"^head\.transformer\.decoder\.layers\.(\d+)\.attentions\.1\.attn\.(.+)$"),
     r"transformer.decoder.layers.\1.multihead_attn.\2"),
    (re.compile("^" + _TRANSFORMER + r"ffns\.0\.layers\.0\.0\.(weight|bias)$"), r"transformer.\1.layers.\2.linear1.\3"),
    (re.compile("^" + _TRANSFORMER + r"ffns\.0\.layers\.1\.(weight|bias)$"), r"transformer.\1.layers.\2.linear2.\3"),
    (re.compile(r"^head\.transformer\.decoder\.post_norm\.(weight|bias)$"), r"transformer.decoder.norm.\1"),
    (re.compile(r"^head\.bbox_head\.(tl|br)_corner_pred\.4\.(weight|bias)$"), r"box_head.conv5_\1.\2"),
    (re.compile(r"^head\.cls_head\.layers\.(\d+)\.(weight|bias)$"), r"cls_head.layers.\1.\2"),
]
_NORM = re.compile("^" + _TRANSFORMER + r"norms\.(\d+)\.(weight|bias)$")
_CORNER = re.compile(r"^head\.bbox_head\.(tl|br)_corner_pred\.([0-3])\.(conv|bn)\.(.+)$")


def is_mmtracking_stark(state_dict: Mapping[str, Any]) -> bool:
    """True if the keys follow mmtracking's STARK layout (``neck.convs.0`` / ``head.transformer``)."""
    return any(k.startswith(("neck.convs.0.", "head.transformer.", "head.bbox_head.")) for k in state_dict)


def _map_key(key: str) -> Optional[str]:
    m = _NORM.match(key)
    if m:
        return f"transformer.{m.group(1)}.layers.{m.group(2)}.norm{int(m.group(3)) + 1}.{m.group(4)}"
    m = _CORNER.match(key)
    if m:
        corner, idx, part, rest = m.groups()
        return f"box_head.conv{int(idx) + 1}_{corner}.{0 if part == 'conv' else 1}.{rest}"
    for pattern, repl in _RULES:
        if pattern.match(key):
            return pattern.sub(repl, key)
    return None


def mmtracking_to_official(state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint") -> Dict[str, torch.Tensor]:
    """Rename an mmtracking STARK state_dict to the official keys.

    The backbone's ``num_batches_tracked`` buffers (mmdet uses plain BatchNorm with frozen statistics;
    the official backbone uses FrozenBatchNorm2d, which has none) are dropped; the box head's are kept.

    Raises:
        CheckpointError: keys that belong to no known mmtracking STARK module (listed), or two keys
            mapping onto one.
    """
    out: Dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        if key.startswith("backbone.") and key.endswith(".num_batches_tracked"):
            continue
        new = _map_key(key)
        if new is None:
            unknown.append(key)
            continue
        if new in out:
            raise CheckpointError(f"{source}: keys map twice onto '{new}'")
        out[new] = value
    if unknown:
        raise CheckpointError(f"{source}: {len(unknown)} keys are not part of mmtracking's STARK "
                              f"(backbone/neck/head): {', '.join(unknown[:8])}")
    return out


def checkpoint_filter(state_dict: Dict[str, torch.Tensor], loaded: Any = None) -> Dict[str, torch.Tensor]:
    """``checkpoint_filter`` of the STARK networks: mmtracking layouts are renamed, others pass through."""
    if is_mmtracking_stark(state_dict):
        return mmtracking_to_official(state_dict, "mmtracking checkpoint")
    return state_dict


def convert_mmtracking_checkpoint(src: str, dst: str, script: str = "stark_st2", config: str = "baseline") -> dict:
    """Convert an mmtracking STARK checkpoint file into this toolkit's (official) layout.

    The keys are renamed with :func:`mmtracking_to_official` and checked strictly against the network of
    ``experiments/<script>/<config>.yaml``; the output is plain data ``{'net': state_dict, 'net_type',
    'script', 'config', 'converted_from', 'source_file'}`` written atomically.

    Args:
        src: mmtracking ``.pth`` file (``state_dict`` + ``meta``), read with the safe loader.
        dst: output file.
        script: ``stark_st2`` (stage-2 files, with score head), ``stark_st1``, or ``stark_s`` (stage-1 files).
        config: the config whose network must fit (``baseline``: ResNet-50).

    Returns:
        A summary: the saved fields except ``net``, plus ``num_keys``.

    Raises:
        FileNotFoundError: ``src`` is missing.
        CheckpointError: not an mmtracking STARK file, a stage-1 file (no score head) for a STARK-ST
            script, or keys/shapes that do not fit the network.
    """
    from lib.config import load_config
    from lib.models import get_network_spec

    obj = safe_load(src)
    state_dict = extract_state_dict(obj, f"checkpoint '{src}'")
    if not is_mmtracking_stark(state_dict):
        raise CheckpointError(f"'{src}' is not an mmtracking STARK checkpoint (no 'neck.convs.0.*' or "
                              f"'head.transformer.*' keys; found e.g. {list(state_dict)[:3]})")
    converted = mmtracking_to_official(state_dict, f"checkpoint '{src}'")
    spec = get_network_spec(script)
    with torch.device("meta"):  # keys and shapes only
        expected = spec.builder(load_config(script, config)).state_dict()
    if any(k.startswith("cls_head.") for k in expected) and not any(k.startswith("cls_head.") for k in converted):
        raise CheckpointError(f"'{src}' has no score head (head.cls_head.*): it is an mmtracking stage-1 file "
                              f"(stark_st1_r50_500e_*); {script} needs a stage-2 file (stark_st2_r50_50e_*), "
                              f"or convert it with --tracker stark_s to use its weights without the score head")
    check_state_dict(expected, converted, f"converted checkpoint '{src}'", spec.net_type)
    meta = obj.get("meta") if isinstance(obj, Mapping) else None
    result = {
        "net": {k: v.detach().cpu().contiguous() for k, v in converted.items()},
        "net_type": spec.net_type,
        "script": script,
        "config": config,
        "converted_from": "mmtracking",
        "source_file": os.path.basename(os.fspath(src)),
    }
    if isinstance(meta, Mapping) and isinstance(meta.get("epoch"), int):
        result["epoch"] = int(meta["epoch"])
    save_checkpoint_atomic(result, dst)
    return {k: v for k, v in result.items() if k != "net"} | {"num_keys": len(converted)}
