"""AiATrack building blocks: AiA attention against a per-head/per-frame loop written from the paper,
the target/background region, the IoU head and the checkpoint round trip."""

import math

import pytest
import torch
from torch import nn

from lib.models import build_network, get_network_spec
from lib.models.aiatrack import AiAModule, IoUNet, target_background_region
from lib.utils.checkpoint import save_checkpoint_atomic


def _fill(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return module


def naive_aia(m: AiAModule, query, key, value, pos_emb):
    """AiA written out with explicit loops over batch, heads and key frames (paper, section 3.1)."""
    nq, B, C = query.shape
    h, d = m.num_heads, m.head_dim
    inner = m.inner_attn
    fs, D = inner.feat_size, inner.match_dim
    frames = key.shape[0] // fs
    w_q, w_k, w_v = m.in_proj_weight.chunk(3)
    b_q, b_k, b_v = m.in_proj_bias.chunk(3)
    ia = inner.corr_attn
    out = torch.zeros(nq, B, C, dtype=query.dtype)
    for b in range(B):
        heads = []
        for head in range(h):
            sl = slice(head * d, (head + 1) * d)
            q = query[:, b] @ w_q[sl].T + b_q[sl]
            k = key[:, b] @ w_k[sl].T + b_k[sl]
            v = value[:, b] @ w_v[sl].T + b_v[sl]
            logits = q @ k.T / math.sqrt(d)
            refined = logits.clone()
            for f in range(frames):
                ks = slice(f * fs, (f + 1) * fs)
                tokens = logits[:, ks].T  # one token per key: its correlations with all queries
                qk = inner.feat_norm1(inner.corr_proj(tokens)) + pos_emb[ks, b]
                a = ((qk @ ia.q_proj_weight.T + ia.q_proj_bias) @ (qk @ ia.k_proj_weight.T + ia.k_proj_bias).T
                     / math.sqrt(D)).softmax(-1)
                r = a @ inner.feat_norm2(tokens)
                r = r + ia.out_proj(r)
                refined[:, ks] = logits[:, ks] + r.T
            heads.append(refined.softmax(-1) @ v)
        out[:, b] = m.out_proj(torch.cat(heads, dim=1))
    return out


@pytest.mark.parametrize("frames", [1, 3])
def test_aia_matches_the_loop_reference_and_ignores_masks(frames):
    torch.manual_seed(0)
    m = _fill(AiAModule(16, 2, dropout=0.1, match_dim=8, feat_size=9), 1).eval()
    B = 2
    query = torch.randn(9, B, 16)
    key = torch.randn(9 * frames, B, 16)
    value = torch.randn(9 * frames, B, 16)
    pos = torch.randn(9 * frames, B, 8)
    out, weights = m(query, key, value, pos_emb=pos)
    with torch.no_grad():
        ref = naive_aia(m, query, key, value, pos)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    assert weights.shape == (B, 9, 9 * frames)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, 9))
    # The official AiA computes but never applies the padding mask: results do not change.
    masked, _ = m(query, key, value, pos_emb=pos, key_padding_mask=torch.ones(B, 9 * frames, dtype=torch.bool))
    assert torch.equal(masked, out)


def test_aia_without_inner_attention_is_plain_multihead_attention():
    m = _fill(AiAModule(16, 4, use_AiA=False), 2).eval()
    mha = nn.MultiheadAttention(16, 4).eval()
    mha.load_state_dict(m.state_dict())
    q, k, v = torch.randn(5, 3, 16), torch.randn(7, 3, 16), torch.randn(7, 3, 16)
    torch.testing.assert_close(m(q, k, v)[0], mha(q, k, v)[0], rtol=1e-5, atol=1e-6)
    assert not hasattr(m, "inner_attn")


def test_aia_rejects_token_counts_that_do_not_fit_feat_size():
    m = AiAModule(16, 2, match_dim=8, feat_size=9)
    with pytest.raises(ValueError, match="FEAT_SIZE"):
        m(torch.randn(8, 1, 16), torch.randn(9, 1, 16), torch.randn(9, 1, 16), pos_emb=torch.randn(9, 1, 8))
    with pytest.raises(ValueError, match="position encoding"):
        m(torch.randn(9, 1, 16), torch.randn(9, 1, 16), torch.randn(9, 1, 16), pos_emb=None)


def test_aia_dropout_is_active_only_in_training():
    m = _fill(AiAModule(16, 2, dropout=0.5, match_dim=8, feat_size=9), 3)
    x, pos = torch.randn(9, 1, 16), torch.randn(9, 1, 8)
    m.eval()
    assert torch.equal(m(x, x, x, pos_emb=pos)[0], m(x, x, x, pos_emb=pos)[0])
    m.train()
    torch.manual_seed(0)
    a = m(x, x, x, pos_emb=pos)[0]
    torch.manual_seed(1)
    assert not torch.allclose(a, m(x, x, x, pos_emb=pos)[0])


def test_target_background_region():
    region = target_background_region(torch.tensor([0.4, 0.4, 0.2, 0.2]), 20)
    fg = region[:, 0].reshape(20, 20)
    assert region.shape == (400, 2) and torch.equal(region.sum(1), torch.ones(400))
    assert fg.sum() == 16 and fg[8:12, 8:12].all()
    # round(0.35 * 20) = 7, round(0.25 * 20) = 5 (x: 7..11); y: round(8.4) = 8, round(3.6) = 4 (y: 8..11)
    fg = target_background_region(torch.tensor([[0.35, 0.42, 0.25, 0.18]]), 20)[0, :, 0].reshape(20, 20)
    assert torch.nonzero(fg).min(0).values.tolist() == [8, 7] and torch.nonzero(fg).max(0).values.tolist() == [11, 11]
    # Clipped at the crop border; a box wholly outside selects nothing.
    fg = target_background_region(torch.tensor([-0.1, 0.9, 0.3, 0.3]), 20)[:, 0].reshape(20, 20)
    assert fg.sum() == 4 * 2 and fg[18:, :4].all()
    assert target_background_region(torch.tensor([0.2, -0.5, 0.2, 0.2]), 20)[:, 0].sum() == 0


def test_iou_head_pools_normalised_xywh_boxes_with_prroi():
    torch.manual_seed(0)
    head = IoUNet(8, pool_size=4, feat_sz=20.0).eval()
    feat = torch.randn(2, 8, 20, 20)
    proposals = torch.tensor([[[[0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 1.0, 1.0], [-0.1, 0.8, 0.3, 0.3]]],
                              [[[0.5, 0.5, 0.2, 0.1], [0.3, 0.3, 0.0, 0.2], [0.2, 0.2, 0.5, 0.5]]]])
    pred = head(feat, proposals)
    assert pred.shape == (2, 1, 3)
    # Same prediction box by box and image by image (no cross-talk in the batch).
    single = head(feat[1:], proposals[1:, :, 2:])
    torch.testing.assert_close(pred[1, 0, 2], single[0, 0, 0])
    with pytest.raises(ValueError, match="num_proposals"):
        head(feat, proposals[0])


def test_checkpoint_round_trip_strict(tmp_path):
    net = build_network("aiatrack", "baseline")
    assert get_network_spec("aiatrack").net_type == "AIATRACK"
    path = tmp_path / "AIATRACK_ep0500.pth.tar"
    save_checkpoint_atomic({"net": net.state_dict(), "net_type": "AIATRACK", "epoch": 500}, path)
    other = build_network("aiatrack", "baseline", checkpoint=str(path))
    for (k, a), (_, b) in zip(net.state_dict().items(), other.state_dict().items()):
        assert torch.equal(a, b), k
    assert not other.training


def test_whole_network_runs_on_the_meta_device():
    # Device-agnostic: no tensor is created on a fixed device (meta inputs clash with CPU tensors).
    from lib.utils.misc import NestedTensor

    net = build_network("aiatrack", "baseline").to("meta").eval()
    img = torch.randn(1, 3, 320, 320, device="meta")
    mask = torch.zeros(1, 320, 320, dtype=torch.bool, device="meta")
    with torch.no_grad():
        search = net.forward_backbone(NestedTensor(img, mask))
        refs = [net.forward_backbone(NestedTensor(img, mask)) for _ in range(2)]
        regions = [target_background_region(torch.tensor([[0.4, 0.4, 0.2, 0.2]]), 20).to("meta")] * 2
        out_embed = net.forward_transformer(search_dic=search, refer_dic_list=refs, refer_reg_list=regions)[0]
        out, coord = net.forward_box_head(out_embed)
        iou = net.forward_iou_head(out_embed, coord[None, None])["pred_iou"]
    assert out_embed.device.type == "meta" and out_embed.shape == (1, 400, 1, 256)
    assert out["pred_boxes"].shape == (1, 1, 4) and iou.shape == (1, 1, 1)
