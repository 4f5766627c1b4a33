"""GRM network against the official one: state_dict keys of the three configs, the outputs and per-block
division decisions of the recipe-filled ViT-B/256 network on the reference inputs
(``../shared/reference/parity/grm__vitb_256_ep300__*``, OSTRACK_GRM.md sections 3 and 8), and the pieces of
the token division on hand-made inputs.

Run with ``-s`` to see the measured max abs / rel errors per output.
"""

import pytest
import torch

from lib.config import load_config
from lib.models import build_network, get_network_spec
from lib.models.grm import DivisionAttention, generate_mask_cond, softmax_with_policy
from lib.models.grm.division import divide_tokens, policy_attention_mask, target_representation, token_policy
from lib.utils.crop import hann2d
from tests.conftest import need_shared
from tests.train_helpers import one_torch_thread  # noqa: F401
from tests.parity_utils import (assert_close_report, check_checksums, fill_state_dict_recipe, load_reference_keys)

CONFIGS = ["vitb_256_ep300", "vitb_256_got_ep100", "vitl_320_ep300"]
FIXTURE = "vitb_256_ep300"
MAPS = ["pred_boxes", "score_map", "size_map", "offset_map"]
RUNS = {"threshold_0": 0, "threshold_0.4": 0.4}

# one torch thread: on a shared 2-core machine OpenMP spinning makes two threads several times slower
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _parity_file(suffix):
    return need_shared("reference", "parity", f"grm__{FIXTURE}__{suffix}")


@pytest.mark.parametrize("config", CONFIGS)
def test_state_dict_keys_and_shapes_equal_official(config):
    ref = load_reference_keys(need_shared("reference", "keys", f"grm__{config}.json"))
    with torch.device("meta"):  # the module tree and every shape, without allocating the weights
        net = get_network_spec("grm").builder(load_config("grm", config), training=False)
    sd = net.state_dict()
    assert list(sd) == list(ref), "key names or order differ from the official state_dict"
    bad = {k: (list(v.shape), ref[k]) for k, v in sd.items() if list(v.shape) != ref[k]}
    assert not bad, f"shapes differ: {bad}"
    depth = len(net.backbone.blocks)
    assert sum(".divide_predict." in k for k in sd) == 6 * (depth - 1)
    assert not isinstance(net.backbone.blocks[0].attn, DivisionAttention)


@pytest.fixture(scope="module")
def fixture_io():
    inputs = torch.load(_parity_file("inputs.pt"), weights_only=True)
    outputs = torch.load(_parity_file("outputs.pt"), weights_only=True)
    return inputs, outputs


@pytest.fixture(scope="module")
def filled_net():
    net = fill_state_dict_recipe(build_network("grm", FIXTURE))
    check_checksums(net, _parity_file("checksums.json"))
    return net


def test_template_mask_equals_the_fixture(fixture_io):
    inputs, _ = fixture_io
    mask = generate_mask_cond(load_config("grm", FIXTURE), 1, "cpu", inputs["template_box_norm_xywh"])
    assert mask.dtype == torch.float32 and torch.equal(mask, inputs["ce_or_template_mask"])
    # box (0.25, 0.25, 0.5, 0.5) on the 8x8 grid: rows and columns int(2) .. min(int(2 + 4 + 1), 8) - 1
    assert mask.view(8, 8).nonzero().unique(dim=0).tolist() == [[r, c] for r in range(2, 7) for c in range(2, 7)]


@pytest.mark.parametrize("tag", list(RUNS))
def test_parity_with_the_official_network(filled_net, fixture_io, tag):
    inputs, outputs = fixture_io
    ref = outputs[tag]
    decisions = {}
    hooks = [blk.attn.register_forward_hook(lambda m, i, o, idx=idx: decisions.__setitem__(idx, o[1]))
             for idx, blk in enumerate(filled_net.backbone.blocks) if isinstance(blk.attn, DivisionAttention)]
    try:
        with torch.no_grad():
            out = filled_net(inputs["template"], inputs["search"], template_mask=inputs["ce_or_template_mask"],
                             threshold=RUNS[tag])
    finally:
        for h in hooks:
            h.remove()
    assert out["decisions"] == [] and set(out) == set(MAPS) | {"decisions"}

    # Discrete step first: the per-block division decisions (one-hot, int64) are equal.
    assert sorted(decisions) == sorted(ref["division_onehot_per_block"]) == list(range(1, 12))
    flipped = {}
    for block, theirs in ref["division_onehot_per_block"].items():
        mine = decisions[block]
        assert mine.dtype == torch.int64 and mine.shape == theirs.shape == (1, 256, 2)
        flipped[block] = int((mine != theirs).any(-1).sum())
    assert not any(flipped.values()), f"division decisions differ (tokens per block): {flipped}"

    report = {}
    for key in MAPS:
        assert_close_report(key, out[key], ref[key], report=report)
    window = hann2d((16, 16))
    torch.testing.assert_close(window, ref["hann_window"], rtol=0, atol=0)
    after_hann = filled_net.box_head.cal_bbox(window * out["score_map"], out["size_map"], out["offset_map"])
    assert_close_report("pred_box_after_hann", after_hann, ref["pred_box_after_hann"], report=report)
    attend_all = [int(decisions[b][0, :, 1].sum()) for b in range(1, 12)]
    print(f"\n[{tag}] attend-to-all tokens per block 1..11: {attend_all} (all equal to the official)")
    print(f"[{tag}] max abs / max rel error (rel = |a-e| / max(|e|, 1e-5)):")
    for key, (abs_err, rel_err) in report.items():
        print(f"  {key:>20}: {abs_err:.3e} / {rel_err:.3e}")


def test_thresholds_change_the_division(fixture_io):
    """The two fixture runs differ (argmax sends tokens of 8 blocks to the attend-to-all class, threshold 0.4
    none), so the threshold really reaches every block."""
    _, outputs = fixture_io
    argmax = [int(d[0, :, 1].sum()) for d in outputs["threshold_0"]["division_onehot_per_block"].values()]
    thresholded = [int(d[0, :, 1].sum()) for d in outputs["threshold_0.4"]["division_onehot_per_block"].values()]
    assert sum(argmax) > 0 and sum(thresholded) == 0


# -- the pieces on hand-made inputs ------------------------------------------------------------------------
def test_policy_mask_keeps_template_and_search_only_tokens_apart():
    # tokens: 2 template, then search tokens with decisions S, A, S
    decision = torch.tensor([[[1, 0], [0, 1], [1, 0]]])
    policy = token_policy(decision, num_template=2)
    assert policy.tolist() == [[[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0]]]
    mask = policy_attention_mask(policy)[0, 0]
    T, S, A = [0, 1], [2, 4], [3]
    for q in range(5):
        for k in range(5):
            allowed = (q in T and k in T) or (q in S and k in S) or q in A or k in A or q == k
            assert mask[q, k] == float(allowed), (q, k)


def test_masked_softmax_leaves_the_official_small_weight_on_masked_entries():
    torch.manual_seed(0)
    B, H, N = 1, 2, 5
    logits = torch.randn(B, H, N, N) * 3
    policy = token_policy(torch.tensor([[[1, 0], [0, 1], [1, 0]]]), num_template=2)
    attn = softmax_with_policy(logits, policy)
    mask = policy_attention_mask(policy)
    e = (logits - logits.max(-1, keepdim=True).values).exp() * mask
    expected = (e + 1e-6 / N) / (e.sum(-1, keepdim=True) + 1e-6)
    torch.testing.assert_close(attn, expected, rtol=0, atol=0)
    torch.testing.assert_close(attn.sum(-1), torch.ones(B, H, N))
    blocked = mask.expand_as(attn) == 0
    row_sums = e.sum(-1, keepdim=True).expand_as(attn)
    masked = attn[blocked]
    assert masked.numel() > 0 and torch.all(masked > 0)  # never exactly zero
    torch.testing.assert_close(masked, (1e-6 / N) / (row_sums[blocked] + 1e-6), rtol=1e-6, atol=0)
    # The row max is taken over masked entries too: where it is allowed, the masked weight is below eps / N.
    row_max_allowed = mask.expand_as(attn).gather(-1, logits.argmax(-1, keepdim=True)).expand_as(attn) == 1
    assert torch.all(attn[blocked & row_max_allowed] < 1e-6 / N)
    assert softmax_with_policy(logits.half(), policy).dtype == torch.float16


def test_division_decisions_in_eval_and_training():
    p0 = torch.tensor([0.9, 0.55, 0.45, 0.1])
    log_probs = torch.stack([p0, 1 - p0], dim=-1).log().unsqueeze(0)  # (1, 4, 2)
    assert divide_tokens(log_probs, training=False)[0, :, 1].tolist() == [0, 0, 1, 1]  # argmax
    assert divide_tokens(log_probs, training=False, threshold=0.5)[0, :, 1].tolist() == [0, 0, 1, 1]
    assert divide_tokens(log_probs, training=False, threshold=0.2)[0, :, 1].tolist() == [0, 0, 0, 1]
    assert divide_tokens(log_probs, training=False, threshold=0.6)[0, :, 1].tolist() == [0, 1, 1, 1]
    assert divide_tokens(log_probs, training=False).dtype == torch.int64
    logits = log_probs.clone().requires_grad_(True)
    torch.manual_seed(0)
    hard = divide_tokens(logits, training=True)  # Gumbel-softmax, straight-through
    assert hard.dtype == torch.float32 and torch.equal(hard.detach().sum(-1), torch.ones(1, 4))
    assert set(hard.detach().flatten().tolist()) <= {0.0, 1.0}
    (hard[..., 1] * torch.arange(4.0)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_target_representations():
    tokens = torch.tensor([[[1.0, -2.0], [3.0, 0.0], [-1.0, 5.0]]])  # (1, 3, 2)
    mask = torch.tensor([[1.0, 0.0, 1.0]])
    assert target_representation(tokens, "allmax").tolist() == [[[3.0, 5.0]]]
    assert target_representation(tokens, "allavg").tolist() == [[[1.0, 1.0]]]
    assert target_representation(tokens, "roimax", mask).tolist() == [[[1.0, 5.0]]]
    torch.testing.assert_close(target_representation(tokens, "roiavg", mask), torch.tensor([[[0.0, 1.0]]]))
    with pytest.raises(ValueError, match="TGT_TYPE 'max'"):
        target_representation(tokens, "max")
    with pytest.raises(ValueError, match="template box mask"):
        target_representation(tokens, "roimax")


def test_training_mode_returns_the_division_fractions_per_block():
    torch.manual_seed(0)
    net = build_network("grm", "tiny_cpu", training=False).train()
    template, search = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 128, 128)
    mask = generate_mask_cond(load_config("grm", "tiny_cpu"), 2, "cpu", torch.tensor([[0.25, 0.25, 0.5, 0.5]] * 2))
    out = net(template, search, template_mask=mask)
    fractions = out["decisions"]
    assert fractions.shape == (2, 3)  # blocks 1..3 divide
    counts = fractions * 64  # 8x8 search tokens
    torch.testing.assert_close(counts, counts.round())
    assert torch.all((fractions >= 0) & (fractions <= 1))
    out["pred_boxes"].sum().backward()  # the division predictors receive gradients through the masks
    grad = net.backbone.blocks[1].attn.divide_predict[0].weight.grad
    assert grad is not None and grad.abs().sum() > 0
    net.eval()
    with torch.no_grad():
        assert net(template, search, template_mask=mask)["decisions"] == []
