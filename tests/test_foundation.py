"""Box ops, crops, config merging and safe checkpoint loading: the shared foundation."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from lib.config import Config, ConfigError, merge_strict
from lib.utils import box_ops
from lib.utils.checkpoint import (CheckpointError, InertObject, check_state_dict, extract_state_dict, safe_load,
                                  save_checkpoint_atomic)
from lib.utils.crop import clip_box, hann2d, map_box_back, sample_target, transform_image_to_crop


def test_box_formats_round_trip():
    xywh = torch.tensor([[10.0, 20.0, 30.0, 40.0]])
    assert box_ops.box_xywh_to_xyxy(xywh).tolist() == [[10, 20, 40, 60]]
    assert box_ops.box_xywh_to_cxcywh(xywh).tolist() == [[25, 40, 30, 40]]
    assert torch.equal(box_ops.box_cxcywh_to_xywh(box_ops.box_xywh_to_cxcywh(xywh)), xywh)


def test_paired_giou_matches_definition():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [2.0, 2.0, 3.0, 3.0]])
    giou, iou = box_ops.paired_generalized_box_iou(a, b)
    assert iou[0].item() == pytest.approx(1 / 7)
    assert giou[0].item() == pytest.approx(1 / 7 - (9 - 7) / 9)
    assert iou[1].item() == 0.0 and giou[1].item() == pytest.approx(0 - (9 - 2) / 9)
    with pytest.raises(ValueError):
        box_ops.paired_generalized_box_iou(torch.tensor([[2.0, 2.0, 1.0, 1.0]]), b[:1])


def test_sample_target_pads_and_masks():
    im = np.full((100, 200, 3), 7, np.uint8)
    crop, factor, mask = sample_target(im, [0, 0, 20, 20], 2.0, output_sz=40)
    assert crop.shape == (40, 40, 3) and factor == pytest.approx(1.0)
    # crop side 40 centred on (10, 10): x1 = y1 = -10, so the top-left 10 px are padding
    assert mask[:10].all() and mask[:, :10].all() and not mask[20:, 20:].any()
    assert (crop[:10] == 0).all() and (crop[20:, 20:] == 7).all()
    with pytest.raises(ValueError):
        sample_target(im, [5, 5, 0, 0], 2.0, 40)


def test_sample_target_drops_last_column_like_official():
    im = np.arange(10 * 10 * 3, dtype=np.uint8).reshape(10, 10, 3)
    crop, _, mask = sample_target(im, [5, 0, 5, 10], 1.0)  # side ceil(sqrt(50)) = 8, x1 = round(3.5) = 4
    assert crop.shape[:2] == (8, 8)
    # x2 = 12 > W: the pad is x2 - W + 1 = 3 columns, so image column 9 is replaced by zeros
    assert mask[:, 5:].all() and not mask[:, :5].any()


def test_transform_and_map_back_are_inverse():
    prev = [50.0, 60.0, 20.0, 10.0]
    im = np.zeros((300, 300, 3), np.uint8)
    _, rf, _ = sample_target(im, prev, 4.0, 256)
    box = torch.tensor([55.0, 62.0, 18.0, 12.0])
    crop_box = transform_image_to_crop(box, torch.tensor(prev), rf, torch.tensor([256.0, 256.0]))
    cx, cy = crop_box[0] + crop_box[2] / 2 + 0.5, crop_box[1] + crop_box[3] / 2 + 0.5
    back = map_box_back([cx / rf, cy / rf, crop_box[2] / rf, crop_box[3] / rf], prev, 256, rf)
    assert np.allclose(back, box.tolist(), atol=1e-3)


def test_clip_box_margin():
    assert clip_box([-5, -5, 3, 3], 100, 100, margin=10) == [0, 0, 10, 10]
    assert clip_box([95, 95, 20, 20], 100, 100, margin=10) == [90, 90, 10, 10]


def test_hann2d_positive_and_symmetric():
    w = hann2d((16, 16))
    assert w.shape == (1, 1, 16, 16) and (w > 0).all()
    assert torch.allclose(w, w.flip(-1)) and torch.allclose(w, w.flip(-2))


def test_merge_strict_rejects_unknown_keys():
    base = Config({"MODEL": {"HEAD": {"TYPE": "CENTER"}}, "TRAIN": {"LR": 1e-4}})
    merge_strict(base, {"TRAIN": {"LR": 4e-4}})
    assert base.TRAIN.LR == 4e-4
    with pytest.raises(ConfigError, match="MODEL.HEAD.NUM_CHANNELS"):
        merge_strict(base, {"MODEL": {"HEAD": {"NUM_CHANNELS": 256}}}, source="x.yaml")
    with pytest.raises(ConfigError, match="must be a mapping"):
        merge_strict(base, {"MODEL": 3})


class _Settings:  # stands for the official pickled lib.train.admin.settings.Settings
    def __init__(self):
        self.script_name = "ostrack"


def test_safe_load_reads_official_layout_with_pickled_objects(tmp_path):
    sd = {"w": torch.arange(6.0).view(2, 3)}
    path = tmp_path / "OSTrack_ep0300.pth.tar"
    torch.save({"net": sd, "settings": _Settings(), "epoch": 300, "net_type": "OSTrack"}, path)
    obj = safe_load(path)
    assert isinstance(obj["settings"], InertObject)
    assert "_Settings" in obj["settings"].pickled_global
    assert torch.equal(extract_state_dict(obj)["w"], sd["w"])


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_safe_load_never_runs_code_from_the_file(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"net": {"w": torch.zeros(1)}, "payload": _Exploit(marker)}, path)
    # Sanity: the file really is an exploit when unpickled without restriction.
    check = subprocess.run([sys.executable, "-c",
                            f"import torch; torch.load({str(path)!r}, weights_only=False)"],
                           capture_output=True)
    assert check.returncode == 0 and marker.exists()
    marker.unlink()
    obj = safe_load(path)
    assert not marker.exists()
    assert isinstance(obj["payload"], InertObject) and obj["payload"].pickled_global.endswith("system")


def test_safe_load_rejects_non_checkpoints(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.txt"):
        safe_load(p)
    with pytest.raises(FileNotFoundError):
        safe_load(tmp_path / "missing.pth")


def test_check_state_dict_lists_every_problem():
    expected = {"a": torch.zeros(2), "b": torch.zeros(3)}
    given = {"a": torch.zeros(4), "c": torch.zeros(1)}
    with pytest.raises(CheckpointError) as err:
        check_state_dict(expected, given, "ckpt.pth", "OSTrack")
    msg = str(err.value)
    assert "missing keys (1): b" in msg and "unexpected keys (1): c" in msg and "a: checkpoint (4,)" in msg


def test_save_checkpoint_atomic(tmp_path):
    path = tmp_path / "sub" / "ck.pth.tar"
    save_checkpoint_atomic({"x": torch.ones(2)}, path)
    assert torch.equal(safe_load(path)["x"], torch.ones(2))
    assert [p.name for p in path.parent.iterdir()] == ["ck.pth.tar"]
