"""OTB-2015, LaSOT and LaSOT-ext dataset classes: real annotation folders (skipped if ../shared is absent),
generated trees for bad input, and the box/flag file readers."""

import json
import os

import numpy as np
import pytest

from lib.test.evaluation.datasets import load_dataset
from lib.test.evaluation.frames import FramePaths
from lib.test.evaluation.lasotdataset import LASOT_ATTRIBUTES, LaSOTDataset, LaSOTExtensionSubsetDataset
from lib.test.evaluation.otbdataset import OTBDataset, load_otb_info
from lib.test.evaluation.annotations import AnnotationError, DatasetFolderError, read_boxes, read_flags
from lib.test.evaluation.data import MissingSequencesError

from .conftest import need_shared


# --- generated trees ------------------------------------------------------------------------------------------------

def make_otb_tree(root, rng=None, delimiter=","):
    """All 100 OTB annotation files with random boxes, one row per frame startFrame..endFrame."""
    rng = rng or np.random.default_rng(0)
    for e in load_otb_info():
        n = e["endFrame"] - e["startFrame"] + 1
        boxes = np.concatenate([rng.integers(1, 200, (n, 2)), rng.integers(5, 60, (n, 2))], 1)
        path = os.path.join(root, e["anno_path"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        np.savetxt(path, boxes, fmt="%d", delimiter=delimiter)
    return root


def make_lasot_tree(root, names, n=6, attributes=True):
    """LaSOT layout with ``n`` frames per sequence; frame 3 occluded, frame 4 out of view."""
    for i, name in enumerate(names):
        d = os.path.join(root, name.rsplit("-", 1)[0], name)
        os.makedirs(d, exist_ok=True)
        boxes = np.array([[10 + i, 20, 30, 40]] * n)
        np.savetxt(os.path.join(d, "groundtruth.txt"), boxes, fmt="%d", delimiter=",")
        occ, oov = [0] * n, [0] * n
        occ[3], oov[4] = 1, 1
        for fname, flags in (("full_occlusion.txt", occ), ("out_of_view.txt", oov)):
            with open(os.path.join(d, fname), "w") as f:
                f.write(",".join(map(str, flags)) + "\n")
        if attributes:
            os.makedirs(os.path.join(root, "_attributes"), exist_ok=True)
            with open(os.path.join(root, "_attributes", f"{name}.txt"), "w") as f:
                f.write(",".join(str((i + k) % 2) for k in range(14)) + "\n")
    return root


def _names(key):
    path = os.path.join(os.path.dirname(__file__), "..", "lib", "test", "evaluation", "lists", f"{key}.json")
    with open(path) as f:
        return json.load(f)["names"]


@pytest.fixture
def otb_tree(tmp_path):
    return make_otb_tree(str(tmp_path / "otb"))


@pytest.fixture
def lasot_tree(tmp_path):
    return make_lasot_tree(str(tmp_path / "lasot"), _names("lasot"))


# --- OTB ----------------------------------------------------------------------------------------------------------

def test_otb_info_list():
    info = load_otb_info()
    assert len(info) == 100 and len({e["name"] for e in info}) == 100
    by = {e["name"]: e for e in info}
    assert by["Tiger1"]["initOmit"] == 5 and by["Board"]["nz"] == 5
    assert (by["BlurCar1"]["startFrame"], by["BlurCar1"]["endFrame"]) == (247, 988)
    assert (by["David"]["startFrame"], by["David"]["endFrame"]) == (300, 770)
    assert by["Jogging_2"]["anno_path"] == "Jogging/groundtruth_rect.2.txt"
    assert by["Human4_2"]["path"] == "Human4/img"
    assert by["KiteSurf"]["alternatives"] == [{"path": "KiteSurf/jpg", "ext": "png"}]


def test_otb_real_annotations():
    root = str(need_shared("data", "otb100_anno"))
    seqs = OTBDataset(root).get_sequence_list()
    assert len(seqs) == 100
    tiger = seqs["Tiger1"]
    assert len(tiger.frames) == len(tiger.ground_truth_rect) == 349
    assert tiger.frames[0].endswith("Tiger1/img/0006.jpg")
    np.testing.assert_array_equal(tiger.ground_truth_rect[0], [282, 104, 67, 84])   # first real box
    assert seqs["Board"].frames[0].endswith("Board/img/00001.jpg")
    car = seqs["BlurCar1"]
    assert car.frames[0].endswith("0247.jpg") and car.frames[-1].endswith("0988.jpg") and len(car) == 742
    assert seqs["David"].frames[0].endswith("David/img/0300.jpg")
    j1, j2 = seqs["Jogging_1"], seqs["Jogging_2"]
    assert j1.frames == j2.frames and not np.array_equal(j1.ground_truth_rect, j2.ground_truth_rect)
    assert seqs["Human4_2"].frames[0].endswith("Human4/img/0001.jpg")
    assert all(s.dataset == "otb" for s in seqs)
    for s in seqs:
        assert len(s.frames) == len(s.ground_truth_rect), s.name
    # the JSON of the same ground truth agrees with what the class reads
    with open(os.path.join(root, "OTB2015.json")) as f:
        js = {k.lower().replace("-", "_"): v for k, v in json.load(f).items()}
    for s in seqs:
        np.testing.assert_array_equal(np.array(js[s.name.lower()]["gt_rect"], dtype=float), s.ground_truth_rect)


def test_otb_tab_delimited_real_sequence():
    root = str(need_shared("data", "otb"))
    gt = read_boxes(os.path.join(root, "Couple", "groundtruth_rect.txt"))
    assert gt.shape == (140, 4)
    np.testing.assert_array_equal(gt[0], [51, 47, 25, 62])


def test_otb_generated_tree_delimiters_and_attributes(tmp_path):
    root = make_otb_tree(str(tmp_path / "otb"), delimiter="\t")
    with open(os.path.join(root, "Couple", "attrs.txt"), "w") as f:
        f.write("SV, DEF, FM, OPR, BC")
    seqs = OTBDataset(root).get_sequence_list()
    assert seqs["Couple"].attributes["SV"] and not seqs["Couple"].attributes["IV"]
    assert seqs["Basketball"].attributes is None
    with open(os.path.join(root, "Couple", "attrs.txt"), "w") as f:
        f.write("SV, XX")
    with pytest.raises(ValueError, match="unknown OTB attribute"):
        OTBDataset(root).get_sequence_list()


def test_otb_kitesurf_alternative_folder(otb_tree):
    os.makedirs(os.path.join(otb_tree, "KiteSurf", "jpg"))
    assert OTBDataset(otb_tree).get_sequence_list()["KiteSurf"].frames[0].endswith("KiteSurf/jpg/0001.png")
    os.makedirs(os.path.join(otb_tree, "KiteSurf", "img"))
    assert OTBDataset(otb_tree).get_sequence_list()["KiteSurf"].frames[0].endswith("KiteSurf/img/0001.jpg")


def test_otb_bad_input(otb_tree):
    path = os.path.join(otb_tree, "Crossing", "groundtruth_rect.txt")
    lines = open(path).read().splitlines()
    with open(path, "w") as f:
        f.write("\n".join(lines[:6] + ["1,2,3"] + lines[7:]) + "\n")
    with pytest.raises(AnnotationError, match=r"Crossing/groundtruth_rect.txt, line 7: expected 4 values"):
        OTBDataset(otb_tree).get_sequence_list()
    with open(path, "w") as f:
        f.write("\n".join(lines[:-1]) + "\n")
    with pytest.raises(AnnotationError, match=r"Crossing/groundtruth_rect.txt: 119 boxes for the 120 frames 1..120"):
        OTBDataset(otb_tree).get_sequence_list()
    with open(path, "w") as f:
        f.write("\n".join(lines[:3] + ["1,nan,3,4"] + lines[4:]) + "\n")
    with pytest.raises(AnnotationError, match=r"line 4: .* NaN"):
        OTBDataset(otb_tree).get_sequence_list()
    with open(path, "w") as f:
        f.write("\n".join(lines[:9] + ["1,2,-3,4"] + lines[10:]) + "\n")
    with pytest.raises(AnnotationError, match=r"Crossing/groundtruth_rect.txt, line 10: negative width/height"):
        OTBDataset(otb_tree).get_sequence_list()
    os.remove(path)
    with pytest.raises(MissingSequencesError, match=r"otb: 1 of the benchmark's 100 sequences is missing .*"
                                                    r"Crossing/groundtruth_rect.txt' does not exist\): Crossing\. "
                                                    r".*--skip_missing"):
        OTBDataset(otb_tree).get_sequence_list()
    with pytest.raises(DatasetFolderError, match="OTB-2015 root .*_nowhere' does not exist"):
        OTBDataset(otb_tree + "_nowhere")


def test_default_base_path_from_environment(otb_tree, monkeypatch, tmp_path):
    monkeypatch.setenv("TRACKING_RESULTS_PATH", str(tmp_path / "r"))
    monkeypatch.setenv("TRACKING_RESULT_PLOT_PATH", str(tmp_path / "p"))
    monkeypatch.setenv("TRACKING_OTB_PATH", otb_tree)
    ds = load_dataset("otb")
    assert isinstance(ds, OTBDataset) and ds.base_path == otb_tree and len(ds) == 100
    monkeypatch.setenv("TRACKING_LASOT_PATH", str(tmp_path / "missing"))
    with pytest.raises(RuntimeError, match="lasot_path"):
        load_dataset("lasot")


# --- LaSOT --------------------------------------------------------------------------------------------------------

def test_lasot_real_annotations():
    root = str(need_shared("data", "lasot"))
    seqs = LaSOTDataset(root).get_sequence_list()
    assert len(seqs) == 280 and len(LaSOTDataset(root)) == 280
    with open(os.path.join(root, "testing_set.txt")) as f:
        assert sorted(s.name for s in seqs) == sorted(l.strip() for l in f if l.strip())
    s = seqs["airplane-1"]
    assert s.dataset == "lasot" and s.object_class == "airplane" and len(s.frames) == len(s.ground_truth_rect)
    assert s.frames[0].endswith("airplane/airplane-1/img/00000001.jpg")
    assert s.attributes == dict(zip(LASOT_ATTRIBUTES, [bool(int(v)) for v in "01000100100010"]))
    absent = sum(int((~q.target_visible).sum()) for q in seqs)
    assert absent > 0
    # tiger-6 frame 118 has a negative height in the official annotation: kept, scored as an invalid frame
    assert seqs["tiger-6"].ground_truth_rect[117, 3] == -11


def test_lasot_generated_tree(lasot_tree):
    seqs = LaSOTDataset(lasot_tree).get_sequence_list()
    s = seqs["airplane-1"]
    np.testing.assert_array_equal(s.target_visible, [True, True, True, False, False, True])
    assert s.attributes["IV"] is False and s.attributes["POC"] is True
    assert isinstance(s.frames, FramePaths) and s.frames[-1].endswith("img/00000006.jpg")


def test_lasot_extension_subset(tmp_path):
    names = _names("lasot_extension_subset")
    assert len(names) == 150
    root = make_lasot_tree(str(tmp_path / "ext"), names, attributes=False)
    seqs = LaSOTExtensionSubsetDataset(root).get_sequence_list()
    assert len(seqs) == 150 and all(s.dataset == "lasot_extension_subset" for s in seqs)
    assert seqs[0].attributes is None
    assert load_dataset("lasot_ext", base_path=root).name == "lasot_extension_subset"


def test_lasot_bad_input(lasot_tree):
    d = os.path.join(lasot_tree, "zebra", "zebra-10")
    with open(os.path.join(d, "out_of_view.txt"), "w") as f:
        f.write("0,0,0,0,0\n")
    with pytest.raises(AnnotationError, match=r"zebra-10/out_of_view.txt: 5 out_of_view values for 6 frames"):
        LaSOTDataset(lasot_tree).get_sequence_list()
    with open(os.path.join(d, "out_of_view.txt"), "w") as f:
        f.write("0,0,2x,0,0,0\n")
    with pytest.raises(AnnotationError, match=r"out_of_view.txt, line 1, value 3: out_of_view must be 0 or 1, found '2x'"):
        LaSOTDataset(lasot_tree).get_sequence_list()
    with open(os.path.join(d, "groundtruth.txt"), "w") as f:
        f.write("1,2,3,4\n1,2,3,4\n\n1,2,3,4\n")
    with pytest.raises(AnnotationError, match=r"zebra-10/groundtruth.txt, line 3: expected 4 values .*blank line"):
        LaSOTDataset(lasot_tree).get_sequence_list()
    os.rename(d, d + "_moved")
    with pytest.raises(MissingSequencesError, match=r"lasot: 1 of the benchmark's 280 sequences is missing .*"
                                                    r"zebra/zebra-10/groundtruth.txt' does not exist\): zebra-10\."):
        LaSOTDataset(lasot_tree).get_sequence_list()


# --- readers ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["1,2,3,4\n5,6,7,8\n", "1\t2\t3\t4\n5\t6\t7\t8", "1 2 3 4\n5 6 7 8\n\n\n",
                                  "1, 2, 3, 4\n5, 6, 7, 8\n", "1,2,3,4,\n5,6,7,8,\n", "1.0,2e0,3,4\r\n5,6,7,8\r\n"])
def test_read_box_file_delimiters(tmp_path, text):
    p = tmp_path / "b.txt"
    p.write_text(text)
    np.testing.assert_array_equal(read_boxes(str(p)), [[1, 2, 3, 4], [5, 6, 7, 8]])


@pytest.mark.parametrize("text,pattern", [
    ("1,2,3,4\n5,6,7\n", r"line 2: expected 4 values"),
    ("1,2,3,4\n5,6,x,8\n", r"line 2: 'x' is not a number"),
    ("1,2,3,4\n5,6,inf,8\n", r"line 2: .* infinite"),
    ("1,2,3,4\n\n5,6,7,8\n", r"line 2: expected 4 values .*blank line"),
    ("", r"empty"),
])
def test_read_box_file_errors(tmp_path, text, pattern):
    p = tmp_path / "b.txt"
    p.write_text(text)
    with pytest.raises(AnnotationError, match=pattern):
        read_boxes(str(p), what="result")
    with pytest.raises(DatasetFolderError, match="does not exist"):
        read_boxes(str(tmp_path / "nope.txt"))


def test_read_box_file_nan(tmp_path):
    p = tmp_path / "b.txt"
    p.write_text("1,2,3,4\nnan,nan,nan,nan\n")
    assert np.isnan(read_boxes(str(p), allow_nan=True)[1]).all()
    with pytest.raises(AnnotationError, match="line 2: .* NaN"):
        read_boxes(str(p))


def test_read_flags(tmp_path):
    p = tmp_path / "f.txt"
    p.write_text("0,1,0\n")
    np.testing.assert_array_equal(read_flags(str(p), num_frames=3), [False, True, False])
    p.write_text("0\n1\n1\n")
    np.testing.assert_array_equal(read_flags(str(p)), [False, True, True])
    p.write_text("0, 1,,1\n")
    np.testing.assert_array_equal(read_flags(str(p)), [False, True, True])
    for bad in ("0,1,-1\n", "0,1,10\n"):
        p.write_text(bad)
        with pytest.raises(AnnotationError, match="line 1, value 3: flag must be 0 or 1"):
            read_flags(str(p), what="flag")


def test_frame_paths_behaves_like_a_list():
    f = FramePaths("/d/img", range(3, 8), 4, "jpg")
    as_list = [f"/d/img/{i:04d}.jpg" for i in range(3, 8)]
    assert len(f) == 5 and f[0] == as_list[0] and f[-1] == as_list[-1] and list(f) == as_list
    assert f[1:3] == as_list[1:3] and f == as_list
    with pytest.raises(IndexError):
        f[5]
