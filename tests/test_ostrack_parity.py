"""OSTrack network against the official one: state_dict keys of all six configs, and the outputs of
the recipe-filled network on the reference inputs (``../shared/reference/parity``, OSTRACK_GRM.md section 8).

Run with ``-s`` to see the measured max abs / rel errors per output.
"""

import math

import pytest
import torch

from lib.config import load_config
from lib.models import build_network, get_network_spec
from lib.models.backbones.vit import Attention
from lib.models.layers.candidate_elimination import candidate_elimination, restore_eliminated_tokens
from lib.utils.crop import hann2d
from tests.conftest import need_shared
from tests.parity_utils import (assert_close_report, check_checksums, fill_state_dict_recipe, load_reference_keys,
                                recipe_state_dict)

CONFIGS = ["vitb_256_mae_32x4_ep300", "vitb_256_mae_ce_32x4_ep300", "vitb_256_mae_ce_32x4_got10k_ep100",
           "vitb_384_mae_32x4_ep300", "vitb_384_mae_ce_32x4_ep300", "vitb_384_mae_ce_32x4_got10k_ep100"]
FIXTURE = "vitb_256_mae_ce_32x4_ep300"
MAPS = ["pred_boxes", "score_map", "size_map", "offset_map", "backbone_feat"]


def _parity_file(suffix):
    return need_shared("reference", "parity", f"ostrack__{FIXTURE}__{suffix}")


@pytest.mark.parametrize("config", CONFIGS)
def test_state_dict_keys_and_shapes_equal_official(config):
    ref = load_reference_keys(need_shared("reference", "keys", f"ostrack__{config}.json"))
    with torch.device("meta"):  # the module tree and every shape, without allocating ViT-B weights
        net = get_network_spec("ostrack").builder(load_config("ostrack", config), training=False)
    sd = net.state_dict()
    assert list(sd) == list(ref), "key names or order differ from the official state_dict"
    bad = {k: (list(v.shape), ref[k]) for k, v in sd.items() if list(v.shape) != ref[k]}
    assert not bad, f"shapes differ: {bad}"


@pytest.fixture(scope="module")
def fixture_io():
    inputs = torch.load(_parity_file("inputs.pt"), weights_only=True)
    outputs = torch.load(_parity_file("outputs.pt"), weights_only=True)
    return inputs, outputs


@pytest.fixture(scope="module")
def filled_ce_net():
    net = fill_state_dict_recipe(build_network("ostrack", FIXTURE))
    check_checksums(net, _parity_file("checksums.json"))
    return net


def _run(net, inputs, keep_rate):
    with torch.no_grad():
        return net(inputs["template"], inputs["search"], ce_template_mask=inputs["ce_or_template_mask"],
                   ce_keep_rate=keep_rate)


def _compare_maps(tag, out, ref, net):
    report = {}
    for key in MAPS:
        assert_close_report(key, out[key], ref[key], report=report)
    window = hann2d((16, 16))
    torch.testing.assert_close(window, ref["hann_window"], rtol=0, atol=0)
    after_hann = net.box_head.cal_bbox(window * out["score_map"], out["size_map"], out["offset_map"])
    assert_close_report("pred_box_after_hann", after_hann, ref["pred_box_after_hann"], report=report)
    print(f"\n[{tag}] max abs / max rel error (rel = |a-e| / max(|e|, 1e-5)):")
    for key, (abs_err, rel_err) in report.items():
        print(f"  {key:>20}: {abs_err:.3e} / {rel_err:.3e}")


def test_parity_without_elimination(filled_ce_net, fixture_io):
    inputs, outputs = fixture_io
    out = _run(filled_ce_net, inputs, 1.0)
    assert out["removed_indexes_s"] == [None, None, None]
    assert out["attn"].shape == (1, 12, 320, 320)
    _compare_maps("keep_rate_1.0", out, outputs["keep_rate_1.0"], filled_ce_net)


def test_parity_with_candidate_elimination(filled_ce_net, fixture_io):
    inputs, outputs = fixture_io
    ref = outputs["default"]
    out = _run(filled_ce_net, inputs, None)
    removed = out["removed_indexes_s"]
    assert [r.shape[1] for r in removed] == [76, 54, 37]
    assert all(r.dtype == torch.float32 for r in removed)
    for stage, (mine, theirs) in enumerate(zip(removed, ref["removed_indexes_s"])):
        # Discrete step: compare the sets first (a near-tie could flip the order, not here), then the order.
        assert set(mine[0].long().tolist()) == set(theirs[0].long().tolist()), f"CE stage {stage}: removed sets differ"
        assert mine.long().tolist() == theirs.long().tolist(), f"CE stage {stage}: removal order differs"
    assert out["attn"].shape == (1, 12, 64 + 89, 64 + 89)
    # Eliminated search positions hold exact zeros after restoration; kept ones do not.
    all_removed = torch.cat(removed, dim=1)[0].long()
    search_feat = out["backbone_feat"][0, 64:]
    assert torch.count_nonzero(search_feat[all_removed]) == 0
    kept = torch.ones(256, dtype=torch.bool)
    kept[all_removed] = False
    assert (search_feat[kept].abs().sum(-1) > 0).all()
    _compare_maps("default", out, ref, filled_ce_net)


def test_plain_backbone_equals_official_without_elimination(fixture_io):
    """The plain config has the CE config's keys, so the recipe gives it the same weights; the official
    CE network with keep rate 1 computes exactly the plain ViT."""
    inputs, outputs = fixture_io
    net = build_network("ostrack", "vitb_256_mae_32x4_ep300")
    net.load_state_dict(recipe_state_dict(net), strict=True)
    with torch.no_grad():
        out = net(inputs["template"], inputs["search"], ce_template_mask=inputs["ce_or_template_mask"])
    assert out["attn"] is None and "removed_indexes_s" not in out
    _compare_maps("plain ViT vs keep_rate_1.0", out, outputs["keep_rate_1.0"], net)


def test_fused_and_explicit_attention_agree():
    torch.manual_seed(0)
    attn = Attention(64, num_heads=4, qkv_bias=True).eval()
    x = torch.randn(2, 30, 64)
    fused, none = attn(x)
    explicit, weights = attn(x, return_attention=True)
    assert none is None and weights.shape == (2, 4, 30, 30)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 30))
    torch.testing.assert_close(fused, explicit, rtol=1e-5, atol=1e-6)
    mask = torch.zeros(2, 30, dtype=torch.bool)
    mask[:, -5:] = True
    fused_m, _ = attn(x, key_padding_mask=mask)
    explicit_m, w = attn(x, key_padding_mask=mask, return_attention=True)
    assert torch.all(w[..., -5:] == 0)
    torch.testing.assert_close(fused_m, explicit_m, rtol=1e-5, atol=1e-6)


def test_candidate_elimination_order_and_restoration():
    """Kept tokens follow the descending template attention; restoration puts them back in raster
    order with zeros at the removed positions. 384 token counts: 576 -> 404 -> 283 -> 199."""
    B, H, lens_t, lens_s, C = 1, 2, 3, 10, 4
    scores = torch.tensor([0.5, 0.9, 0.1, 0.7, 0.3, 0.8, 0.2, 0.6, 0.4, 0.05])
    attn = torch.zeros(B, H, lens_t + lens_s, lens_t + lens_s)
    attn[:, :, 1, lens_t:] = scores  # only template row 1 is selected by the mask
    attn[:, :, 0, lens_t:] = scores.flip(0)
    ramp = torch.linspace(0, 0.009, lens_s)
    attn[:, :, 2, lens_t:] = ramp
    mask = torch.tensor([[False, True, False]])
    tokens = torch.arange(lens_t + lens_s, dtype=torch.float32).view(1, -1, 1).repeat(1, 1, C)
    index = torch.arange(lens_s, dtype=torch.float32).view(1, -1)
    new, keep, removed = candidate_elimination(attn, tokens, lens_t, 0.7, index, mask)
    assert keep.tolist() == [[1, 5, 3, 7, 0, 8, 4]]  # ceil(7.0) = 7 kept, by descending score
    assert removed.tolist() == [[6, 2, 9]]
    assert new[0, :lens_t, 0].tolist() == [0, 1, 2]
    assert new[0, lens_t:, 0].tolist() == [lens_t + k for k in [1, 5, 3, 7, 0, 8, 4]]
    restored = restore_eliminated_tokens(new[:, lens_t:] * 0 + 1 + keep.unsqueeze(-1), keep, [removed], lens_s)
    expected = torch.tensor([1.0 + i if i not in (6, 2, 9) else 0.0 for i in range(lens_s)])
    assert torch.equal(restored[0, :, 0], expected)
    # Without a mask every template row counts: the order follows the mean of both rows.
    _, keep_all, _ = candidate_elimination(attn, tokens, lens_t, 0.7, index, None)
    assert keep_all[0].tolist() == torch.sort(scores + scores.flip(0) + ramp, descending=True)[1][:7].tolist()
    counts = [576]
    for _ in range(3):
        counts.append(math.ceil(0.7 * counts[-1]))
    assert counts == [576, 404, 283, 199]


class _DivisionAttention(Attention):
    """Stand-in for GRM's division attention: only its extra module, to check the key layout."""

    def __init__(self, dim, **kwargs):
        super().__init__(dim, **kwargs)
        self.divide_predict = torch.nn.Sequential(torch.nn.Linear(2 * dim, 384), torch.nn.GELU(),
                                                  torch.nn.Linear(384, 192), torch.nn.GELU(),
                                                  torch.nn.Linear(192, 2), torch.nn.LogSoftmax(dim=-1))


def test_vit_stack_hosts_the_grm_backbone_layout():
    """GRM builds on this ViT: a per-block attention class and the x-before-z position embeddings
    reproduce the official GRM backbone keys and shapes exactly."""
    from lib.models.backbones.vit import VisionTransformer

    class GRMLikeBackbone(VisionTransformer):
        pos_embed_order = ("x", "z")

    ref = {k[len("backbone."):]: v for k, v in
           load_reference_keys(need_shared("reference", "keys", "grm__vitb_256_ep300.json")).items()
           if k.startswith("backbone.")}
    with torch.device("meta"):
        bb = GRMLikeBackbone(attn_layer=[Attention] + [_DivisionAttention] * 11, weight_init=False)
        bb.finetune_track(search_size=256, template_size=128)
    sd = bb.state_dict()
    assert list(sd) == list(ref)
    assert all(list(v.shape) == ref[k] for k, v in sd.items())


def test_template_indices_give_the_official_elimination(filled_ce_net, fixture_io):
    """The tracker's static-shape form of the CE template selection (``ce_template_index``: a gather instead of
    the official boolean indexing) removes the official token sets and gives bit-identical maps."""
    from lib.models.layers.candidate_elimination import ce_template_index

    inputs, outputs = fixture_io
    mask = inputs["ce_or_template_mask"]
    if mask is None:
        pytest.skip("the fixture's config averages over every template token (no mask)")
    indexed = dict(inputs, ce_or_template_mask=ce_template_index(mask))
    out, ref = _run(filled_ce_net, indexed, None), _run(filled_ce_net, inputs, None)
    for mine, theirs in zip(out["removed_indexes_s"], outputs["default"]["removed_indexes_s"]):
        assert mine.long().tolist() == theirs.long().tolist()
    for key in MAPS:
        assert torch.equal(out[key], ref[key]), key
    _compare_maps("template indices", out, outputs["default"], filled_ce_net)
