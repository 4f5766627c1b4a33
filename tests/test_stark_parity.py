"""STARK-ST50 (stark_st2/baseline) against the official network on the parity fixture.

The fixture (../shared/reference/parity/stark_st50_*.pt, STARK_AIATRACK.md section 9) holds the
official outputs for weights filled by the STARK/AiATrack recipe and three random inputs: every saved
tensor (backbone tokens, position encoding, encoder memory, decoder embedding, box, logit,
confidence) must match at rtol 1e-4 / atol 1e-5.
"""

import pytest
import torch

from lib.models import build_network
from lib.utils.merge import merge_template_search
from lib.utils.misc import NestedTensor
from tests.conftest import need_shared
from tests.parity_utils import fill_stark_recipe, max_errors

RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def fixture_run():
    folder = need_shared("reference", "parity")
    inputs = torch.load(folder / "stark_st50_inputs.pt", weights_only=True)
    expected = torch.load(folder / "stark_st50_outputs.pt", weights_only=True)
    net = build_network("stark_st2", "baseline")
    fill_stark_recipe(net)
    with torch.no_grad():
        z0 = net.forward_backbone(NestedTensor(inputs["template0"], inputs["template_mask"]))
        z1 = net.forward_backbone(NestedTensor(inputs["template1"], inputs["template_mask"]))
        x = net(img=NestedTensor(inputs["search"], inputs["search_mask"]), mode="backbone")
        seq_dict = merge_template_search([z0, z1, x])
        out_dict, outputs_coord, output_embed = net.forward_transformer(seq_dict=seq_dict, run_box_head=True,
                                                                        run_cls_head=True)
        memory = net.transformer(seq_dict["feat"], seq_dict["mask"], net.query_embed.weight, seq_dict["pos"],
                                 mode="encoder")
    got = {
        "search_feat": x["feat"],
        "search_pos": x["pos"],
        "template0_feat": z0["feat"],
        "encoder_memory": memory,
        "decoder_embed": output_embed,
        "pred_boxes_cxcywh_norm": out_dict["pred_boxes"],
        "pred_logits": out_dict["pred_logits"],
        "conf_score_sigmoid": out_dict["pred_logits"].sigmoid(),
    }
    return net, seq_dict, got, expected, outputs_coord


SAVED = ["search_feat", "search_pos", "template0_feat", "encoder_memory", "decoder_embed",
         "pred_boxes_cxcywh_norm", "pred_logits", "conf_score_sigmoid"]


def test_fixture_lists_the_expected_tensors(fixture_run):
    _, _, _, expected, _ = fixture_run
    assert sorted(expected) == sorted(SAVED)


@pytest.mark.parametrize("name", SAVED)
def test_saved_tensor_matches_official(fixture_run, name):
    _, _, got, expected, _ = fixture_run
    assert got[name].shape == expected[name].shape, name
    err, rel_err = max_errors(got[name], expected[name])
    print(f"\n[stark_st2 baseline] {name:>25}: max abs {err:.3e} / max rel {rel_err:.3e}")
    assert torch.allclose(got[name], expected[name], rtol=RTOL, atol=ATOL), f"{name}: max abs error {err:.3e}"


def test_call_shapes_and_heads_switch(fixture_run):
    net, seq_dict, got, _, outputs_coord = fixture_run
    assert seq_dict["feat"].shape == (528, 1, 256) and seq_dict["mask"].shape == (1, 528)
    assert torch.equal(outputs_coord, got["pred_boxes_cxcywh_norm"])
    with torch.no_grad():
        out_cls, coord, embed = net(seq_dict=seq_dict, mode="transformer", run_cls_head=True)
    assert set(out_cls) == {"pred_logits"} and coord is None and embed.shape == (1, 1, 1, 256)
    assert torch.allclose(out_cls["pred_logits"], got["pred_logits"], rtol=RTOL, atol=ATOL)
    with pytest.raises(TypeError):
        net.forward_backbone(torch.zeros(1, 3, 128, 128))
    with pytest.raises(ValueError):
        net(mode="decoder")
