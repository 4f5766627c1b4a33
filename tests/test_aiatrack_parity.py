"""AiATrack network against the official outputs on deterministic weights (parity/aiatrack_*), and
the official state_dict keys and shapes of both shipped configs."""

import json

import pytest
import torch

from lib.config import load_config
from lib.models import build_network
from lib.models.aiatrack import target_background_region
from lib.utils.misc import NestedTensor
from tests.parity_utils import fill_stark_recipe, max_errors

CONFIGS = ["baseline", "baseline_got"]


@pytest.mark.parametrize("config", CONFIGS)
def test_state_dict_keys_and_shapes_are_official(reference, config):
    official = json.loads((reference / "keys" / f"aiatrack__{config}.json").read_text())
    net = build_network("aiatrack", config)
    ours = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert ours == official["state_dict"]
    assert sum(p.numel() for p in net.parameters()) == official["num_parameters"]
    # Frozen at build as the official: conv1 / bn1 / layer1 of the backbone (FrozenBN holds buffers only).
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert trainable == official["num_trainable_parameters_at_build"]


@pytest.fixture(scope="module")
def parity_run(reference):
    folder = reference / "parity"
    refs = torch.load(folder / "aiatrack_inputs_references.pt", weights_only=True)["references"]
    inp = torch.load(folder / "aiatrack_inputs_search.pt", weights_only=True)
    expected = torch.load(folder / "aiatrack_outputs.pt", weights_only=True)
    net = build_network("aiatrack", "baseline")
    fill_stark_recipe(net)
    net.eval()
    no_pad = torch.zeros(1, 320, 320, dtype=torch.bool)
    with torch.no_grad():
        search = net.forward_backbone(NestedTensor(inp["search"], inp["mask"]))
        refer_dic_list = [net.forward_backbone(NestedTensor(refs[i:i + 1], no_pad)) for i in range(refs.shape[0])]
        refer_reg_list = [target_background_region(box, 20)[None] for box in inp["reference_boxes_xywh_norm"]]
        out_embed, search_mem, inr, mask = net.forward_transformer(search_dic=search, refer_dic_list=refer_dic_list,
                                                                   refer_reg_list=refer_reg_list)
        out_dict, coord_in_crop = net.forward_box_head(out_embed)
        iou_pred_box = net.forward_iou_head(out_embed, coord_in_crop.unsqueeze(0).unsqueeze(0))["pred_iou"]
        iou_proposals = net.forward_iou_head(out_embed, inp["proposals_xywh_norm"])["pred_iou"]
        # Feature reuse (tracking path): cached reference memories give the same decoder output.
        refer_mem_list = [net.transformer.run_encoder(d["feat"], d["mask"], d["pos"], d["inr"]) for d in refer_dic_list]
        reuse_embed = net.forward_transformer(
            search_dic=search, refer_mem_list=refer_mem_list,
            refer_emb_list=[net.refer_embedding(r) for r in refer_reg_list],
            refer_pos_list=[d["inr"] for d in refer_dic_list], refer_msk_list=[d["mask"] for d in refer_dic_list])[0]
    ours = {
        "search_feat": search["feat"], "search_pos": search["pos"], "search_inr": search["inr"],
        "search_memory": search_mem, "decoder_out_embed": out_embed,
        "pred_boxes_cxcywh_norm": out_dict["pred_boxes"], "coord_in_crop_xywh_norm": coord_in_crop,
        "pred_iou_for_pred_box": iou_pred_box, "pred_iou_for_fixed_proposals": iou_proposals,
    }
    return ours, expected, {"inr": inr, "mask": mask, "reuse_embed": reuse_embed}


@pytest.mark.parametrize("name", ["search_feat", "search_pos", "search_inr", "search_memory", "decoder_out_embed",
                                  "pred_boxes_cxcywh_norm", "coord_in_crop_xywh_norm", "pred_iou_for_pred_box",
                                  "pred_iou_for_fixed_proposals"])
def test_outputs_match_official(parity_run, name):
    ours, expected, _ = parity_run
    assert set(ours) == set(expected)
    abs_err, rel_err = max_errors(ours[name], expected[name])
    print(f"\n[aiatrack baseline] {name:>30}: max abs {abs_err:.3e} / max rel {rel_err:.3e}")
    torch.testing.assert_close(ours[name], expected[name], rtol=1e-4, atol=1e-5)


def test_forward_transformer_returns_search_inr_and_mask_and_feature_reuse_agrees(parity_run):
    ours, expected, extra = parity_run
    assert torch.equal(extra["inr"], ours["search_inr"])
    assert extra["mask"].shape == (1, 400) and not extra["mask"].any()
    torch.testing.assert_close(extra["reuse_embed"], ours["decoder_out_embed"], rtol=0, atol=1e-6)


def test_fixed_values_quoted_in_the_reference_notes(parity_run):
    ours, _, _ = parity_run
    torch.testing.assert_close(ours["pred_boxes_cxcywh_norm"].flatten(),
                               torch.tensor([0.47513, 0.47500, -0.00036, -0.00026]), rtol=0, atol=1e-5)
    torch.testing.assert_close(ours["pred_iou_for_fixed_proposals"].flatten(),
                               torch.tensor([0.048678, 0.048702, 0.015850, -0.018947]), rtol=0, atol=1e-6)


def test_config_values_are_official():
    cfg = load_config("aiatrack", "baseline")
    t = cfg.MODEL.TRANSFORMER
    assert (t.ENC_LAYERS, t.DEC_LAYERS, t.NHEADS, t.DIM_FEEDFORWARD) == (3, 1, 4, 1024)
    assert (cfg.MODEL.AIA.MATCH_DIM, cfg.MODEL.AIA.FEAT_SIZE, cfg.TRAIN.BATCH_SIZE) == (64, 400, 15)
    assert cfg.TEST.HYPER.LASOT == [100, 4, 0.8] and cfg.TEST.HYPER.NFS == [80, 3, 0.6]
    got = load_config("aiatrack", "baseline_got")
    assert got.DATA.TRAIN.DATASETS_NAME == ["GOT10K_train"]
    assert got.TEST.HYPER.GOT10K_TEST == [80, 4, 0.7] and got.TEST.HYPER.DEFAULT == [100, 3, 0.7]
