"""ONNX export and the ONNX Runtime backend (``lib/models/onnx_export.py``, ``BaseTracker.onnx_step``,
``tracking/export_onnx.py``).

Regular suite (tiny configs, a few frames of the shared OTB sequence Crossing): every tracker gives the same boxes
with ``backend='onnxruntime'`` as with PyTorch, each exported step's outputs match PyTorch on the same inputs
within rtol 1e-4 / atol 1e-5, and the manifest lists the files with static shapes and official names.
Weights: the fixtures' deterministic recipe (parameters only; buffers as built), so that no position
embedding is zero (zero embeddings give exact ties in candidate elimination's sort on padded crops).

Full-size parity on the official fixtures (``../shared/reference/parity``): ``TRACKING_ONNX_FULL=1`` runs
:func:`test_full_fixture_parity` (ViT-B / ResNet-50 / Swin-T exports take minutes on 2 cores); ``-s`` prints
the errors per step and output.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from lib.config import load_config
from lib.models import build_network
from lib.models.onnx_export import OPSET, OnnxExportError, OnnxStep, onnxruntime_available
from lib.test.tracker import get_tracker_class
from lib.test.tracker.base import TrackerParams, check_backend
from lib.test.utils.profiling import load_sequence_frames
from lib.utils.misc import NestedTensor
from tests.conftest import need_shared
from tests.parity_utils import recipe_value
from tests.train_helpers import one_torch_thread  # noqa: F401

pytestmark = [pytest.mark.skipif(not onnxruntime_available(), reason="onnx / onnxruntime not installed"),
              pytest.mark.usefixtures("one_torch_thread")]

#: tracker -> files its steps export, with their input and output names
STEPS = {
    "ostrack": {"forward.onnx": (["template", "search"],
                                 ["pred_boxes", "score_map", "size_map", "offset_map", "attn", "removed_indexes_s.0",
                                  "removed_indexes_s.1", "backbone_feat", "response", "tracked_boxes"])},
    "grm": {"forward.onnx": (["template", "search", "template_mask"],
                             ["pred_boxes", "score_map", "size_map", "offset_map", "response", "tracked_boxes"])},
    "stark_s": {"template.onnx": (["input.tensors", "input.mask"], ["feat", "mask", "pos"]),
                "search.onnx": (["img", "mask", "templates.0.feat", "templates.0.mask", "templates.0.pos"],
                                ["pred_boxes"])},
    "stark_st": {"template.onnx": (["input.tensors", "input.mask"], ["feat", "mask", "pos"]),
                 "search.onnx": (["img", "mask"] + [f"templates.{i}.{k}" for i in (0, 1) for k in ("feat", "mask", "pos")],
                                 ["pred_logits", "pred_boxes"])},
    "aiatrack": {"reference_backbone.onnx": (["input.tensors", "input.mask"], ["feat", "mask", "pos", "inr"]),
                 "reference_encoder.onnx": (["feat", "mask", "pos_emb", "inr_emb"], ["refer_mem"]),
                 "embedding.onnx": (["region"], ["refer_emb"]),
                 "search.onnx": (["img", "mask"] + [f"{k}.{i}" for k in ("mems", "embs", "poss", "msks")
                                                    for i in range(4)],
                                 ["pred_boxes", "coord_in_crop", "pred_iou", "search_mem", "pos_emb", "key_mask"])},
    "sparsett": {"feature.onnx": (["template"], ["enc_output"]),
                 "track.onnx": (["search", "memory.0"], ["score", "bbox", "cls_fc", "cls_conv"])},
}


def _fill_parameters(net: torch.nn.Module) -> None:
    """The fixtures' recipe on every parameter; buffers (BN statistics, index tables, anchor grids) as built."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(recipe_value(name, p.shape))


def _tracker(name, backend, config="tiny_cpu", **extra):
    params = TrackerParams.create(name, config, require_checkpoint=False, device="cpu", backend=backend, **extra)
    tracker = get_tracker_class(name)(params, "otb")
    _fill_parameters(tracker.network)
    return tracker


def _onnx_steps(tracker):
    return {key[len("onnx:"):]: step for key, step in tracker._shared_steps.items() if key.startswith("onnx:")}


@pytest.mark.parametrize("name", sorted(STEPS))
def test_onnxruntime_backend_gives_the_pytorch_boxes(name, tmp_path):
    frames, box = load_sequence_frames(str(need_shared("data", "otb", "Crossing")), 4)
    boxes = {}
    for backend in ("pytorch", "onnxruntime"):
        extra = {"onnx_dir": str(tmp_path), "onnx_verify": True} if backend == "onnxruntime" else {}
        tracker = _tracker(name, backend, **extra)
        tracker.initialize(frames[0], {"init_bbox": box})
        boxes[backend] = np.array([tracker.track(f)["target_bbox"] for f in frames[1:]], dtype=np.float64)
    np.testing.assert_allclose(boxes["onnxruntime"], boxes["pytorch"], rtol=0, atol=1e-3)

    # every step's outputs against PyTorch on the same inputs (verify mode)
    steps = _onnx_steps(tracker)
    assert steps, "no step ran in ONNX Runtime"
    for step_name, step in steps.items():
        assert step.errors, step_name
        for out, (abs_err, _, ratio) in step.errors.items():
            assert ratio <= 1.0, f"{name} {step_name} {out}: max abs error {abs_err:.2e} beyond rtol 1e-4 / atol 1e-5"

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["opset"] == OPSET >= 17 and manifest["script"] == tracker.params.script
    assert manifest["checkpoint_sha256"] == "random weights" and manifest["config"] == "tiny_cpu"
    files = {e["file"]: e for e in manifest["files"]}
    assert sorted(files) == sorted(STEPS[name])
    for file, (inputs, outputs) in STEPS[name].items():
        entry = files[file]
        assert [i["name"] for i in entry["inputs"]] == inputs, file
        assert [o["name"] for o in entry["outputs"]] == outputs, file
        assert all(isinstance(d, int) for t in entry["inputs"] + entry["outputs"] for d in t["shape"])  # static
        assert (tmp_path / file).is_file()


def test_files_are_reused_and_a_folder_of_another_network_is_refused(tmp_path):
    net = build_network("stark_s", "tiny_cpu")
    _fill_parameters(net)
    img = NestedTensor(torch.randn(1, 3, 64, 64), torch.zeros(1, 64, 64, dtype=torch.bool))
    info = {"script": "stark_s", "checkpoint_sha256": "a" * 64}
    first = OnnxStep(net.forward_backbone, "template", str(tmp_path), manifest_info=info)
    out = first(img)
    mtime = (tmp_path / "template.onnx").stat().st_mtime_ns
    # a new session on the same folder runs the listed file without exporting (export=False would refuse)
    again = OnnxStep(net.forward_backbone, "template", str(tmp_path), manifest_info=info, export=False)
    torch.testing.assert_close(again(img)["feat"], out["feat"], rtol=0, atol=0)
    assert (tmp_path / "template.onnx").stat().st_mtime_ns == mtime
    # another shape is another file; without export it is refused with the shapes named
    small = NestedTensor(torch.randn(1, 3, 32, 32), torch.zeros(1, 32, 32, dtype=torch.bool))
    with pytest.raises(OnnxExportError, match=r"input.tensors \(1, 3, 32, 32\)"):
        again(small)
    first(small)
    assert sorted(e["file"] for e in json.loads((tmp_path / "manifest.json").read_text())["files"]) == [
        "template.onnx", "template__2.onnx"]
    other = OnnxStep(net.forward_backbone, "template", str(tmp_path),
                     manifest_info={"script": "stark_s", "checkpoint_sha256": "b" * 64})
    with pytest.raises(OnnxExportError, match="another network"):
        other(img)


def test_export_keeps_every_module_in_its_mode(tmp_path):
    """A wrapper in train mode around a network in eval mode (profile_model's StepModule): the export runs in
    eval mode and leaves each module as it was (BatchNorm on batch 1 fails in train mode)."""
    from lib.models.profiling import StepModule

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.BatchNorm2d(4)).eval()
    wrapper = StepModule(net, lambda model, x: model(x))
    assert wrapper.training and not net.training
    step = OnnxStep(wrapper, "wrapped", str(tmp_path), owner=wrapper, verify=True)
    out = step(torch.randn(1, 3, 8, 8))
    assert out.shape == (1, 4, 1, 1) and step.errors["output"][2] <= 1
    assert wrapper.training and not any(m.training for m in net.modules())


def test_verify_treats_index_lists_in_another_order_as_equal(tmp_path):
    """Candidate elimination's removed indices sorted by exactly tied scores may come in another order from
    ONNX Runtime's TopK than from torch.sort: the same values in another order count as equal (and are listed);
    other values do not."""
    ref = torch.tensor([[5.0, 2.0, 9.0, 1.0]])
    step = OnnxStep(lambda x: {"removed": ref, "maps": x}, "idx", str(tmp_path), verify=True)
    x = torch.ones(1, 2)
    step._compare((x,), {}, [torch.tensor([[2.0, 5.0, 9.0, 1.0]]), x], ["removed", "maps"])
    assert step.errors["removed"] == (0.0, 0.0, 0.0) and step.reordered == {"removed"}
    step._compare((x,), {}, [torch.tensor([[2.0, 5.0, 9.0, 3.0]]), x + 0.5], ["removed", "maps"])
    assert step.errors["removed"][0] == 3.0 and step.errors["maps"][0] == 0.5  # |[2, 5, 9, 3] - [5, 2, 9, 1]|


def test_backend_checks():
    params = TrackerParams.create("stark_s", "tiny_cpu", require_checkpoint=False, backend="onnxruntime")
    assert check_backend(params) == "onnxruntime"
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        check_backend(TrackerParams.create("stark_s", "tiny_cpu", require_checkpoint=False, backend="tensorrt"))
    with pytest.raises(ValueError, match="--precision fp16 is not supported"):
        check_backend(TrackerParams.create("stark_s", "tiny_cpu", require_checkpoint=False, backend="onnxruntime",
                                           precision="fp16"))
    with pytest.raises(ValueError, match="--compile"):
        check_backend(TrackerParams.create("stark_s", "tiny_cpu", require_checkpoint=False, backend="onnxruntime",
                                           compile=True))


def _ce_config():
    """tiny_cpu OSTrack with a template mask (GT_BOX: the tiny 4x4 template grid has no CTR_POINT cell)."""
    cfg = load_config("ostrack", "tiny_cpu")
    cfg.MODEL.BACKBONE.CE_TEMPLATE_RANGE = "GT_BOX"
    return cfg


def _ce_export(tmp_path):
    from lib.models.layers.candidate_elimination import generate_mask_cond

    cfg = _ce_config()
    net = build_network("ostrack", cfg)
    _fill_parameters(net)
    g = torch.Generator().manual_seed(0)
    inputs = {"template": torch.randn(1, 3, 64, 64, generator=g), "search": torch.randn(1, 3, 128, 128, generator=g),
              "ce_template_mask": generate_mask_cond(cfg, 1, "cpu", torch.tensor([[0.25, 0.25, 0.5, 0.5]]))}
    assert 0 < int(inputs["ce_template_mask"].sum()) < 16
    step = OnnxStep(lambda network_inputs: net(**network_inputs), "forward", str(tmp_path), owner=net, verify=True)
    return net, step, inputs


def test_candidate_elimination_with_a_template_mask_matches_pytorch(tmp_path):
    net, step, inputs = _ce_export(tmp_path)
    out = step(inputs)
    with torch.no_grad():
        ref = net(**inputs)
    # discrete step first: the removed indices (sets and order) of each stage, then the maps
    assert len(out["removed_indexes_s"]) == 2
    for mine, theirs in zip(out["removed_indexes_s"], ref["removed_indexes_s"]):
        assert mine.long().tolist() == theirs.long().tolist()
    for key in ("pred_boxes", "score_map", "size_map", "offset_map", "backbone_feat"):
        torch.testing.assert_close(out[key], ref[key], rtol=1e-4, atol=1e-5)


def test_candidate_elimination_exports_without_nonzero(tmp_path):
    """The template selection as (B, K) indices, as the tracker passes it (issue 15): static shapes, no NonZero;
    the bool mask form still exports a NonZero (the official boolean indexing)."""
    from lib.models.layers.candidate_elimination import ce_template_index

    net, step, inputs = _ce_export(tmp_path / "mask")
    step(inputs)
    (entry,) = step.files()
    assert "NonZero" in entry["nodes"]
    inputs["ce_template_mask"] = ce_template_index(inputs["ce_template_mask"])
    step = OnnxStep(lambda network_inputs: net(**network_inputs), "forward", str(tmp_path / "index"), owner=net,
                    verify=True)
    out = step(inputs)
    (entry,) = step.files()
    assert "NonZero" not in entry["nodes"], "candidate elimination exports a dynamic-shape NonZero node"
    with torch.no_grad():
        ref = net(**inputs)
    for mine, theirs in zip(out["removed_indexes_s"], ref["removed_indexes_s"]):
        assert mine.long().tolist() == theirs.long().tolist()


def test_export_cli(tmp_path, monkeypatch, capsys):
    import importlib

    from lib.utils.errors import run_cli
    from tests.conftest import PROJECT_ROOT

    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "tracking"))  # as `python tracking/export_onnx.py` runs
    cli = importlib.import_module("export_onnx")
    out = tmp_path / "grm"
    argv = ["--script", "grm", "--config", "tiny_cpu", "--random_weights", "--output", str(out)]
    assert run_cli(cli.main, prog="export_onnx.py", argv=argv) == 0
    printed = capsys.readouterr().out
    assert "forward.onnx" in printed and "vs PyTorch pred_boxes" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tracker"] == "grm" and manifest["random_weights"] and manifest["dataset"] == "otb"
    (entry,) = manifest["files"]
    assert entry["constants"] == {"threshold": 0.0}  # GRM's division threshold is a graph constant
    assert all(ratio <= 1 for _, _, ratio in entry["parity_vs_pytorch"].values())
    bad = argv[:4] + ["--checkpoint", str(tmp_path / "missing.pth"), "--output", str(out)]
    assert run_cli(cli.main, prog="export_onnx.py", argv=bad) == 2
    assert "missing.pth' does not exist" in capsys.readouterr().err
    # user errors: one message (exit status 2 through run_cli), checked before any work
    from lib.test.onnx_export import export_tracker_onnx
    from lib.utils.errors import UserError

    with pytest.raises(UserError, match="missing.pth' does not exist"):
        export_tracker_onnx("grm", "tiny_cpu", str(out), checkpoint=str(tmp_path / "missing.pth"))
    with pytest.raises(UserError, match="--checkpoint PATH"):
        export_tracker_onnx("grm", "tiny_cpu", str(out))
    with pytest.raises(UserError, match="config 'nope' of script 'grm' not found"):
        export_tracker_onnx("grm", "nope", str(out), random_weights=True)
    wrong = tmp_path / "stark.pth.tar"
    torch.save({"net": build_network("stark_s", "tiny_cpu").state_dict()}, wrong)
    with pytest.raises(UserError, match="stark.pth.tar"):  # another network's checkpoint
        export_tracker_onnx("grm", "tiny_cpu", str(tmp_path / "y"), checkpoint=str(wrong))
    with pytest.raises(UserError, match="no tracker runs the configs of script 'stark_st1'"):
        export_tracker_onnx("stark_st1", "tiny_cpu", str(tmp_path / "x"), random_weights=True)


# -- full-size parity on the official fixtures (TRACKING_ONNX_FULL=1) -------------------------------------
FULL = {"ostrack": "vitb_256_mae_ce_32x4_ep300", "grm": "vitb_256_ep300", "stark_st": "baseline",
        "aiatrack": "baseline", "sparsett": "sparsett_swin_got10k"}


def _compare(report, tag, ours, official):
    """Record (max abs, max rel) of an ONNX Runtime output against the official fixture and assert rtol 1e-4."""
    from tests.parity_utils import max_errors

    assert tuple(ours.shape) == tuple(official.shape), tag
    report[tag] = max_errors(ours, official)
    torch.testing.assert_close(ours.float(), official.float(), rtol=1e-4, atol=1e-5, msg=lambda m: f"{tag}: {m}")


def _run_full(name, tracker, folder):
    from tests.parity_utils import fill_ostrack_recipe, fill_stark_recipe, recipe_state_dict

    report = {}
    net = tracker.network
    if name in ("ostrack", "grm"):
        prefix = f"{name}__{FULL[name]}__"
        inputs = torch.load(folder / f"{prefix}inputs.pt", weights_only=True)
        outputs = torch.load(folder / f"{prefix}outputs.pt", weights_only=True)
        net.load_state_dict(recipe_state_dict(net), strict=True)
        step = tracker._network_step()
        runs = {"default": {"ce_template_mask": inputs["ce_or_template_mask"]}} if name == "ostrack" else {
            tag: {"template_mask": inputs["ce_or_template_mask"], "threshold": t}
            for tag, t in (("threshold_0", 0.0), ("threshold_0.4", 0.4))}
        for tag, extra in runs.items():
            out = step({"template": inputs["template"], "search": inputs["search"], **extra})
            ref = outputs[tag]
            if name == "ostrack":
                for stage, (mine, theirs) in enumerate(zip(out["removed_indexes_s"], ref["removed_indexes_s"])):
                    assert set(mine[0].long().tolist()) == set(theirs[0].long().tolist()), f"CE stage {stage} set"
                    assert mine.long().tolist() == theirs.long().tolist(), f"CE stage {stage} order"
                    report[f"{tag}/removed_indexes_s.{stage}"] = (0.0, 0.0)
            for key in ("pred_boxes", "score_map", "size_map", "offset_map") + (("backbone_feat",) if name == "ostrack"
                                                                                 else ()):
                _compare(report, f"forward.onnx {tag}/{key}", out[key], ref[key])
    elif name == "stark_st":
        inputs = torch.load(folder / "stark_st50_inputs.pt", weights_only=True)
        expected = torch.load(folder / "stark_st50_outputs.pt", weights_only=True)
        fill_stark_recipe(net)
        template = tracker.onnx_step(net.forward_backbone, "template")
        z0 = template(NestedTensor(inputs["template0"], inputs["template_mask"]))
        z1 = template(NestedTensor(inputs["template1"], inputs["template_mask"]))
        _compare(report, "template.onnx feat (template0_feat)", z0["feat"], expected["template0_feat"])
        out = tracker.accelerated(tracker._search_step, "search backbone + transformer")(
            inputs["search"], inputs["search_mask"], [z0, z1])
        _compare(report, "search.onnx pred_boxes", out["pred_boxes"], expected["pred_boxes_cxcywh_norm"])
        _compare(report, "search.onnx pred_logits", out["pred_logits"], expected["pred_logits"])
    elif name == "aiatrack":
        refs = torch.load(folder / "aiatrack_inputs_references.pt", weights_only=True)["references"]
        inp = torch.load(folder / "aiatrack_inputs_search.pt", weights_only=True)
        expected = torch.load(folder / "aiatrack_outputs.pt", weights_only=True)
        fill_stark_recipe(net)
        backbone = tracker.onnx_step(net.forward_backbone, "reference_backbone")
        encoder = tracker.onnx_step(net.transformer.run_encoder, "reference_encoder")
        no_pad = torch.zeros(1, 320, 320, dtype=torch.bool)
        mems, embs, poss, msks = [], [], [], []
        for i in range(refs.shape[0]):
            d = backbone(NestedTensor(refs[i:i + 1], no_pad))
            mems.append(encoder(d["feat"], d["mask"], d["pos"], d["inr"]))
            embs.append(tracker._embedding(inp["reference_boxes_xywh_norm"][i]))
            poss.append(d["inr"])
            msks.append(d["mask"])
        out_dict, coord, pred_iou, search_mem, _, _ = tracker.accelerated(
            tracker._search_step, "search encoding + decoding + heads")(inp["search"], inp["mask"], mems, embs, poss, msks)
        _compare(report, "search.onnx pred_boxes", out_dict["pred_boxes"], expected["pred_boxes_cxcywh_norm"])
        _compare(report, "search.onnx coord_in_crop", coord, expected["coord_in_crop_xywh_norm"])
        _compare(report, "search.onnx pred_iou", pred_iou["pred_iou"], expected["pred_iou_for_pred_box"])
        _compare(report, "search.onnx search_mem", search_mem, expected["search_memory"])
    elif name == "sparsett":
        inputs = torch.load(folder / "sparsett__got10k__inputs.pt", weights_only=True)
        ref = torch.load(folder / "sparsett__got10k__outputs.pt", weights_only=True)["recipe_const_buffers"]
        own = net.state_dict()
        const = (lambda k: k.endswith(".relative_position_index") or k == "head.fm_ctr")
        net.load_state_dict({k: own[k] if const(k) else v for k, v in fill_ostrack_recipe(own).items()}, strict=True)
        feats = tracker.onnx_step(tracker._feature_step, "feature")(inputs["template"])
        _compare(report, "feature.onnx enc_output", feats[0], ref["enc_output"])
        score, bbox, extra = tracker.accelerated(tracker._search_step, "phase 'track'")(inputs["search"], feats)
        _compare(report, "track.onnx score", score, ref["score"])
        _compare(report, "track.onnx bbox", bbox, ref["bbox"])
        _compare(report, "track.onnx cls_fc (sigmoid)", extra["cls_fc"], ref["cls_fc_logits"].sigmoid())
        _compare(report, "track.onnx cls_conv (sigmoid)", extra["cls_conv"], ref["cls_conv_logits"].sigmoid())
    return report


@pytest.mark.skipif(os.environ.get("TRACKING_ONNX_FULL") != "1",
                    reason="full-size ONNX exports take minutes on 2 cores: set TRACKING_ONNX_FULL=1")
@pytest.mark.parametrize("name", sorted(FULL))
def test_full_fixture_parity(name, tmp_path):
    folder = need_shared("reference", "parity")
    tracker = get_tracker_class(name)(TrackerParams.create(
        name, FULL[name], require_checkpoint=False, device="cpu", backend="onnxruntime", onnx_dir=str(tmp_path),
        onnx_verify=True), "otb")
    with torch.no_grad():
        report = _run_full(name, tracker, folder)
    print(f"\n[{name} {FULL[name]}] ONNX Runtime vs the official fixture: max abs / max rel (|a-e| / max(|e|, 1e-5))")
    for tag, (abs_err, rel_err) in report.items():
        print(f"  {tag:<45} {abs_err:.3e} / {rel_err:.3e}")
    print(f"[{name}] ONNX Runtime vs our PyTorch on the same inputs: max abs / max rel / |a-e|/(1e-5+1e-4|e|)")
    for step_name, step in _onnx_steps(tracker).items():
        files = ",".join(e["file"] for e in step.files())
        for out, (abs_err, rel_err, ratio) in step.errors.items():
            print(f"  {files + ' ' + out:<45} {abs_err:.3e} / {rel_err:.3e} / {ratio:.3f}")
            if name == "sparsett" and files == "track.onnx":
                # The decoder's top-k has 32nd/33rd logit gaps down to 8e-9 here (SPARSETT_FIXTURE.md), below
                # float32 rounding: PyTorch and ONNX Runtime may pick another 32nd key in a row (ONNX Runtime
                # matches the official outputs above); the fixture note bounds such a flip's effect.
                assert abs_err <= 1e-4, f"{step_name} {out}"
            else:
                assert ratio <= 1.0, f"{step_name} {out}"


def test_run_tracker_with_the_onnxruntime_backend(tmp_path, monkeypatch):
    """``tracking/test.py --backend onnxruntime``'s path: the exports go to the cache folder of config +
    checkpoint, and the result file equals the PyTorch backend's; a backend the run cannot use stops it before
    any sequence."""
    from lib.test.evaluation.running import SetupError, run_tracker

    otb = need_shared("data", "otb")
    monkeypatch.setenv("TRACKING_ONNX_CACHE", str(tmp_path / "cache"))
    net = build_network("stark_s", "tiny_cpu")
    _fill_parameters(net)
    checkpoint = tmp_path / "STARKS_ep0020.pth.tar"
    torch.save({"net": net.state_dict(), "net_type": "STARKS"}, checkpoint)
    files = {}
    for run_id, backend in ((1, "pytorch"), (2, "onnxruntime")):
        (result,) = run_tracker("stark_s", "tiny_cpu", dataset_name="otb", sequence="Football1", run_id=run_id,
                                checkpoint=str(checkpoint), device="cpu", dataset_path=str(otb), progress=False,
                                results_path=str(tmp_path / "results"), backend=backend)
        assert result.status == "done", result.error
        files[backend] = (tmp_path / "results" / "stark_s" / f"tiny_cpu_{run_id:03d}" / "Football1.txt").read_text()
    assert files["onnxruntime"] == files["pytorch"] and len(files["pytorch"].splitlines()) == 74
    (cache,) = (tmp_path / "cache").iterdir()
    assert cache.name.startswith("stark_s__tiny_cpu__")
    assert sorted(p.name for p in cache.glob("*.onnx")) == ["search.onnx", "template.onnx"]
    with pytest.raises(SetupError, match="--precision bf16 is not supported"):
        run_tracker("stark_s", "tiny_cpu", dataset_name="otb", sequence="Football1", checkpoint=str(checkpoint),
                    dataset_path=str(otb), results_path=str(tmp_path / "results"), backend="onnxruntime",
                    precision="bf16")
