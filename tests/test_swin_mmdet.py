"""mmdet-layout Swin Transformer: output sizes for non-multiple inputs, skipped late stages, the relative
position index, and loading Microsoft's ImageNet checkpoint layout (key names and the 2x2 merging order)."""

from __future__ import annotations

import pytest
import torch
from lib.models.backbones.swin import (PatchMerging, SwinTransformer, convert_microsoft_swin_checkpoint,
                                       load_pretrained_swin, mmdet_relative_position_index)
from lib.utils.checkpoint import save_checkpoint_atomic


def _tiny(**kw):
    torch.manual_seed(0)
    return SwinTransformer(embed_dims=8, depths=(1, 2, 2, 1), num_heads=(1, 2, 2, 4), window_size=7,
                           out_indices=kw.pop("out_indices", (2,)), drop_path_rate=0.0, **kw).eval()


def test_output_sizes_padding_and_late_stages_not_run():
    net = _tiny()
    ran = []
    net.stages[3].register_forward_hook(lambda *a: ran.append("stage3"))
    net.stages[2].downsample.register_forward_hook(lambda *a: ran.append("merge2"))
    with torch.no_grad():
        assert net(torch.randn(1, 3, 127, 127))[0].shape == (1, 32, 8, 8)   # 127 -> 32 -> 16 -> 8
        assert net(torch.randn(2, 3, 289, 289))[0].shape == (2, 32, 19, 19)  # 289 -> 73 -> 37 -> 19
    assert ran == []
    assert "stages.3.blocks.0.attn.w_msa.qkv.weight" in net.state_dict()
    assert "stages.2.downsample.reduction.weight" in net.state_dict() and "norm2.weight" in net.state_dict()
    outs = _tiny(out_indices=(0, 1, 2, 3))(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 8, 16, 16), (1, 16, 8, 8), (1, 32, 4, 4), (1, 64, 2, 2)]


def test_padding_is_zero_padding_at_bottom_right():
    # PatchEmbed pads 127 -> 128 with zeros: the same image with an explicit zero border gives the same map.
    net = _tiny()
    x = torch.randn(1, 3, 127, 127)
    with torch.no_grad():
        a, hw_a = net.patch_embed(x)
        b, hw_b = net.patch_embed(torch.nn.functional.pad(x, (0, 1, 0, 1)))
    assert hw_a == hw_b == (32, 32) and torch.equal(a, b)


def test_relative_position_index_is_the_standard_table():
    idx = mmdet_relative_position_index((7, 7))
    assert idx.dtype == torch.int64 and idx.shape == (49, 49)
    # mmdet's construction: double_step_seq(2 * Ww - 1, Wh, 1, Ww), plus its transpose, flipped left-right
    seq = (torch.arange(0, 13 * 7, 13)[:, None] + torch.arange(7)[None, :]).reshape(1, -1)
    assert torch.equal(idx, (seq + seq.T).flip(1))
    assert int(idx.sum()) == 201684  # the fixture's checksum of the constructed buffer
    assert int(idx.min()) == 0 and int(idx.max()) == 168 and int(idx[0, 0]) == 84  # zero offset -> centre row


def test_microsoft_merging_layout_converts_to_unfold_order():
    torch.manual_seed(0)
    C, H, W = 6, 5, 7  # odd sizes: zero-padded to 6 x 8
    x = torch.randn(2, H * W, C)
    ms = {"layers.0.downsample.norm.weight": torch.randn(4 * C), "layers.0.downsample.norm.bias": torch.randn(4 * C),
          "layers.0.downsample.reduction.weight": torch.randn(2 * C, 4 * C)}
    # Microsoft's PatchMerging: cat of x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]
    xm = torch.nn.functional.pad(x.view(2, H, W, C), (0, 0, 0, 1, 0, 1))
    cat = torch.cat([xm[:, 0::2, 0::2], xm[:, 1::2, 0::2], xm[:, 0::2, 1::2], xm[:, 1::2, 1::2]], -1).view(2, -1, 4 * C)
    cat = torch.nn.functional.layer_norm(cat, (4 * C,), ms["layers.0.downsample.norm.weight"],
                                         ms["layers.0.downsample.norm.bias"])
    expected = cat @ ms["layers.0.downsample.reduction.weight"].T
    conv = convert_microsoft_swin_checkpoint(ms)
    merge = PatchMerging(C, 2 * C)
    merge.load_state_dict({k.replace("stages.0.downsample.", ""): v for k, v in conv.items()})
    out, hw = merge(x, (H, W))
    assert hw == (3, 4) and torch.allclose(out, expected, atol=1e-5)


def test_load_pretrained_microsoft_checkpoint(tmp_path):
    net = _tiny(out_indices=(3,))
    own = net.state_dict()
    ms = {"head.weight": torch.zeros(10, 64), "norm.weight": torch.ones(64), "norm.bias": torch.zeros(64),
          "layers.0.blocks.1.attn_mask": torch.zeros(1)}
    for k, v in own.items():
        if k.startswith("norm3"):
            continue
        k2 = (k.replace("stages", "layers", 1).replace("attn.w_msa.", "attn.").replace("ffn.layers.0.0.", "mlp.fc1.")
              .replace("ffn.layers.1.", "mlp.fc2.").replace("patch_embed.projection", "patch_embed.proj"))
        ms[k2] = torch.randn_like(v.float()).to(v.dtype) if "index" not in k else v
    save_checkpoint_atomic({"model": ms}, tmp_path / "swin.pth")
    missing, unexpected = load_pretrained_swin(net, str(tmp_path / "swin.pth"))
    assert missing == ["norm3.weight", "norm3.bias"]  # the released file has one final norm, not per-stage norms
    assert set(unexpected) == {"norm.weight", "norm.bias", "stages.0.blocks.1.attn_mask"}
    got = net.state_dict()
    assert torch.equal(got["stages.1.blocks.0.ffn.layers.0.0.weight"], ms["layers.1.blocks.0.mlp.fc1.weight"])
    assert torch.equal(got["patch_embed.projection.weight"], ms["patch_embed.proj.weight"])
    assert not torch.equal(got["stages.0.downsample.reduction.weight"], ms["layers.0.downsample.reduction.weight"])
    with pytest.raises(FileNotFoundError):
        load_pretrained_swin(net, str(tmp_path / "absent.pth"))
