"""Benchmark dataset classes: real files from ../shared/data where they exist (UAV123@10fps person11,
VOT bag), small generated folders in each official layout where they don't, and bad input."""

import os

import numpy as np
import pytest

from lib.test.evaluation.annotations import (AnnotationError, AnnotationWarning, DatasetFolderError, load_packaged_list, read_boxes,
                                             read_vot_regions)
from lib.test.evaluation.avistdataset import AVisTDataset
from lib.test.evaluation.data import Sequence
from lib.test.evaluation.datasets import DATASETS, UnknownDatasetError, canonical_name, get_dataset, load_dataset
from lib.test.evaluation.got10kdataset import GOT10KDataset
from lib.test.evaluation.nfsdataset import NFSDataset
from lib.test.evaluation.tc128dataset import TC128Dataset
from lib.test.evaluation.trackingnetdataset import TrackingNetDataset
from lib.test.evaluation.uavdataset import UAV10fpsDataset, UAVDataset, uav10fps_range
from lib.test.evaluation.votdataset import VOTDataset
from lib.utils.image import imread_rgb
from lib.utils.local_settings import SettingsError
from tests.conftest import need_shared


def write_rows(path, rows, sep=","):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        for r in rows:
            f.write(sep.join(str(v) for v in r) + "\n")


def boxes(n, start=(10, 20, 30, 40)):
    return [[start[0] + i, start[1], start[2], start[3]] for i in range(n)]


@pytest.fixture
def test_env(tmp_path, monkeypatch):
    """Results/plots paths through the environment, so no local.py is needed."""
    monkeypatch.setenv("TRACKING_RESULTS_PATH", str(tmp_path / "results"))
    monkeypatch.setenv("TRACKING_RESULT_PLOT_PATH", str(tmp_path / "plots"))
    return tmp_path


# -- packaged lists ---------------------------------------------------------------------------------------
def test_packaged_lists_have_official_sizes():
    assert len(load_packaged_list("uav")["sequences"]) == 123
    assert len(load_packaged_list("nfs")["sequences"]) == 100
    tc = load_packaged_list("tc128")
    assert len(tc["sequences"]) == 129 and len(tc["exclude_otb_keeps"]) == 85
    assert len(load_packaged_list("avist")["names"]) == 120
    vot = load_packaged_list("vot")["by_year"]
    assert {k: len(v) for k, v in vot.items()} == {"vot18": 60, "vot20": 60, "vot22": 62}
    assert vot["vot22"][-1] == "zebrafish1" and "m" not in vot["vot22"]


def test_packaged_lists_match_reference(reference):
    import json

    ref = json.loads((reference / "lists" / "pytracking__uav_info.json").read_text())
    assert load_packaged_list("uav")["sequences"] == ref
    ref = json.loads((reference / "lists" / "pytracking__nfs_info.json").read_text())
    assert load_packaged_list("nfs")["sequences"] == ref
    ref = json.loads((reference / "lists" / "pytracking__avist_names.json").read_text())
    assert load_packaged_list("avist")["names"] == ref


def test_registry_names_resolve_to_classes():
    assert canonical_name("UAV123_10fps") == "uav10fps" and canonical_name("got10k") == "got10k_test"
    with pytest.raises(UnknownDatasetError, match="registered datasets: .*uav10fps"):
        canonical_name("nope")
    import importlib

    for key, info in DATASETS.items():
        if info.module.endswith(("otbdataset", "lasotdataset")):
            continue  # built on the analysis branch
        assert hasattr(importlib.import_module(info.module), info.class_name), key


# -- UAV123 / UAV123@10fps ----------------------------------------------------------------------------------
def test_uav10fps_person11_real(shared_data, test_env):
    base = need_shared("data", "uav123_10fps")
    ds = load_dataset("uav10fps", base_path=str(base))
    assert len(ds) == 123
    seq = ds.get_sequence("uav10fps_person11")
    assert seq.dataset == "uav" and len(seq.frames) == 241 and seq.ground_truth_rect.shape == (241, 4)
    assert seq.frames[0].endswith("data_seq/UAV123_10fps/person11/000001.jpg")
    assert seq.frames[-1].endswith("data_seq/UAV123_10fps/person11/000241.jpg")
    assert all(os.path.isfile(f) for f in seq.frames)
    first = np.loadtxt(base / "anno" / "UAV123_10fps" / "person11.txt", delimiter=",")[0]
    np.testing.assert_array_equal(seq.ground_truth_rect[0], first)
    assert seq.init_info() == {"init_bbox": list(first)}
    assert imread_rgb(seq.frames[0]).shape == (720, 1280, 3)


def test_uav10fps_ranges_match_official_config(tmp_path):
    # Start/end frames of UAV123_10fps/configSeqs.m (the dataset's own configuration).
    official = {"person11": (1, 241), "car1_2": (251, 543), "car1_3": (543, 877), "car6_5": (1309, 1621),
                "uav1_3": (825, 1157), "bird1_2": (259, 493), "group3_4": (1457, 1843), "car1_s": (1, 492),
                "person1_s": (1, 534), "bike1": (1, 1029)}
    ds = UAV10fpsDataset(base_path=str(tmp_path))
    for name, rng in official.items():
        info = ds.infos["uav10fps_" + name]
        assert (info["startFrame"], info["endFrame"]) == rng, name
        assert info["path"].startswith("data_seq/UAV123_10fps/")
    assert uav10fps_range(1, 721) == (1, 241) and uav10fps_range(3925, 4861) == (1309, 1621)
    assert uav10fps_range(2, 6) == (2, 2) and uav10fps_range(3, 3) == (2, 1)  # 30 fps 4 -> 10 fps 2; none


def test_uav30fps_split_sequence_and_nan_rows(tmp_path):
    n = 1627 - 751 + 1
    rows = boxes(n)
    rows[5] = ["NaN"] * 4
    write_rows(str(tmp_path / "anno" / "UAV123" / "car1_2.txt"), rows)
    seq = UAVDataset(base_path=str(tmp_path)).get_sequence("uav_car1_2")
    assert len(seq.frames) == n and seq.frames[0].endswith("data_seq/UAV123/car1/000751.jpg")
    assert seq.frames[-1].endswith("data_seq/UAV123/car1/001627.jpg")
    assert np.isnan(seq.ground_truth_rect[5]).all() and seq.object_class == "car"
    write_rows(str(tmp_path / "anno" / "UAV123" / "car1_2.txt"), rows[:-1])
    with pytest.raises(AnnotationError, match=r"car1_2.txt: 876 boxes for 877 frames \(fewer boxes than frames"):
        UAVDataset(base_path=str(tmp_path)).get_sequence("uav_car1_2")


# -- NfS ---------------------------------------------------------------------------------------------------
def test_nfs_layout_and_bad_rows(tmp_path):
    info = {e["name"]: e for e in load_packaged_list("nfs")["sequences"]}["nfs_Gymnastics"]
    n = info["endFrame"]
    anno = str(tmp_path / "anno" / "nfs_Gymnastics.txt")
    write_rows(anno, boxes(n), sep="\t")
    seq = NFSDataset(base_path=str(tmp_path)).get_sequence("nfs_Gymnastics")
    assert seq.dataset == "nfs" and len(seq) == n and seq.frames[1].endswith("sequences/Gymnastics/00002.jpg")
    assert seq.object_class == "person" and seq.attributes == {"occlusion": False}
    rows = boxes(n)
    rows[2] = [1, 2, 3]
    write_rows(anno, rows, sep="\t")
    with pytest.raises(AnnotationError, match=r"nfs_Gymnastics.txt, line 3: expected 4 values"):
        NFSDataset(base_path=str(tmp_path)).get_sequence("nfs_Gymnastics")
    rows[2] = [1, 2, "NaN", 4]
    write_rows(anno, rows, sep="\t")
    with pytest.raises(AnnotationError, match=r"line 3: NaN"):
        NFSDataset(base_path=str(tmp_path)).get_sequence("nfs_Gymnastics")
    rows[2] = [1, 2, -3, 4]
    rows[6] = [1, 1, -1, -1]  # official files hold such rows (LaSOT lion-5): kept, reported
    write_rows(anno, rows, sep="\t")
    with pytest.warns(AnnotationWarning, match=r"nfs_Gymnastics.txt: negative width or height on line\(s\) 3, 7; kept"):
        seq = NFSDataset(base_path=str(tmp_path)).get_sequence("nfs_Gymnastics")
    np.testing.assert_array_equal(seq.ground_truth_rect[2], [1, 2, -3, 4])
    with pytest.raises(AnnotationError, match=r"line 3: negative width or height"):
        read_boxes(anno, negative="error")
    rows[2] = [1, "x", 3, 4]
    write_rows(anno, rows, sep="\t")
    with pytest.raises(AnnotationError, match=r"line 3: 'x' is not a number \(row '1\tx\t3\t4' is not a list of numbers\)"):
        NFSDataset(base_path=str(tmp_path)).get_sequence("nfs_Gymnastics")


# -- TC128 ------------------------------------------------------------------------------------------------
def test_tc128_official_and_pytracking_layouts(tmp_path):
    write_rows(str(tmp_path / "David" / "David_gt.txt"), boxes(471))
    with open(tmp_path / "David" / "David_frames.txt", "w") as f:
        f.write("300,770\n")
    write_rows(str(tmp_path / "tpl_Yo_yos_ce1" / "Yo-yos_ce1_gt.txt"), boxes(235), sep=" ")
    ds = TC128Dataset(base_path=str(tmp_path))
    assert len(ds) == 129 and "Yo-yos_ce1" in ds.sequence_names()
    david = ds.get_sequence("David")
    assert david.dataset == "tc128" and len(david) == 471
    assert david.frames[0].endswith(os.path.join("David", "img", "0300.jpg"))
    yoyo = ds.get_sequence("Yo-yos_ce1")
    assert len(yoyo) == 235 and yoyo.frames[0].endswith(os.path.join("tpl_Yo_yos_ce1", "img", "0001.jpg"))
    assert len(TC128Dataset(base_path=str(tmp_path), exclude_otb=True)) == 85
    assert len(load_dataset("tc128ce", base_path=str(tmp_path))) == 78
    with open(tmp_path / "David" / "David_frames.txt", "w") as f:
        f.write("300,771\n")
    with pytest.raises(AnnotationError, match=r"David_gt.txt: 471 boxes for 472 frames .*David_frames.txt"):
        ds.get_sequence("David")


# -- AVisT ------------------------------------------------------------------------------------------------
def test_avist_visibility(tmp_path):
    name = load_packaged_list("avist")["names"][0]
    write_rows(str(tmp_path / "anno" / f"{name}.txt"), boxes(5), sep=" ")
    write_rows(str(tmp_path / "full_occlusion" / f"{name}_full_occlusion.txt"), [[0, 1, 0, 0, 0]])
    write_rows(str(tmp_path / "out_of_view" / f"{name}_out_of_view.txt"), [[0, 0, 0, 1, 0]])
    seq = AVisTDataset(base_path=str(tmp_path)).get_sequence(0)
    assert seq.name == name and seq.dataset == "avist"
    assert seq.target_visible.tolist() == [True, False, True, False, True]
    assert seq.frames[4].endswith(os.path.join("sequences", name, "img_00005.jpg"))
    write_rows(str(tmp_path / "out_of_view" / f"{name}_out_of_view.txt"), [[0, 0, 0, 1]])
    with pytest.raises(AnnotationError, match=r"_out_of_view.txt: 4 out_of_view flags values for 5 frames"):
        AVisTDataset(base_path=str(tmp_path)).get_sequence(0)
    write_rows(str(tmp_path / "out_of_view" / f"{name}_out_of_view.txt"), [[0, 0, 2, 1, 0]])
    with pytest.raises(AnnotationError, match=r"line 1, value \d+: out_of_view flags must be 0 or 1, found '2'"):
        AVisTDataset(base_path=str(tmp_path)).get_sequence(0)


# -- VOT --------------------------------------------------------------------------------------------------
def test_vot_bag_real_polygons(shared_data):
    base = need_shared("data", "vot")
    seq = VOTDataset(base_path=str(base), year=18).get_sequence("bag")
    assert seq.dataset == "vot" and len(seq) == 196 and seq.ground_truth_rect.shape == (196, 4)
    assert all(os.path.isfile(f) for f in seq.frames[:3] + seq.frames[-1:])  # flat layout found
    # line 1: 334.02,128.36,438.19,188.78,396.39,260.83,292.23,200.41 -> min/max box
    np.testing.assert_allclose(seq.ground_truth_rect[0], [292.23, 128.36, 438.19 - 292.23, 260.83 - 128.36])
    poly = np.loadtxt(base / "bag" / "groundtruth.txt", delimiter=",")
    np.testing.assert_allclose(seq.ground_truth_rect[:, 2], poly[:, 0::2].max(1) - poly[:, 0::2].min(1))
    assert seq.result_base("R") == os.path.join("R", "vot2018", "bag")


def test_vot2020_workspace_rectangles_and_masks(tmp_path):
    root = tmp_path / "sequences" / "agility"
    os.makedirs(root / "color")
    with open(root / "groundtruth.txt", "w") as f:
        f.write("m10,20,30,40,5,7,100\n1.5,2.5,3.5,4.5\n0,0,10,0,10,10,0,10\n")
    ds = VOTDataset(base_path=str(tmp_path), year=20)
    seq = ds.get_sequence("agility")
    np.testing.assert_allclose(seq.ground_truth_rect, [[10, 20, 30, 40], [1.5, 2.5, 3.5, 4.5], [0, 0, 10, 10]])
    assert seq.frames[2] == str(root / "color" / "00000003.jpg") and seq.results_subdir == "vot2020"
    with open(root / "groundtruth.txt", "w") as f:
        f.write("1,2,3,4\n1,2,3\n")
    with pytest.raises(AnnotationError, match=r"groundtruth.txt, line 2: expected a rectangle"):
        ds.get_sequence("agility")
    with pytest.raises(ValueError, match="VOT year"):
        VOTDataset(base_path=str(tmp_path), year=19)


# -- GOT-10k ----------------------------------------------------------------------------------------------
def make_got10k(root, split, names, n_frames, full_gt, images=True):
    import cv2

    os.makedirs(root / split, exist_ok=True)
    with open(root / split / "list.txt", "w") as f:
        f.write("\n".join(names) + "\n")
    for k, name in enumerate(names):
        d = root / split / name
        os.makedirs(d, exist_ok=True)
        write_rows(str(d / "groundtruth.txt"), boxes(n_frames if full_gt else 1, start=(5 + k, 6, 10, 12)))
        if images:
            for i in range(1, n_frames + 1):
                cv2.imwrite(str(d / f"{i:08d}.jpg"), np.full((24, 32, 3), 40 * k, np.uint8))


def test_got10k_test_val_ltrval(tmp_path, monkeypatch):
    make_got10k(tmp_path, "test", ["GOT-10k_Test_000001", "GOT-10k_Test_000002"], 12, full_gt=False)
    make_got10k(tmp_path, "val", ["GOT-10k_Val_000001"], 6, full_gt=True, images=False)
    make_got10k(tmp_path, "train", [f"GOT-10k_Train_{i:06d}" for i in range(1, 6)], 3, full_gt=True, images=False)
    test = GOT10KDataset(base_path=str(tmp_path), split="test")
    seq = test.get_sequence("GOT-10k_Test_000002")
    assert seq.ground_truth_rect.shape == (1, 4) and len(seq) == 12 and seq.dataset == "got10k"
    assert [os.path.basename(f) for f in seq.frames[8:11]] == ["00000009.jpg", "00000010.jpg", "00000011.jpg"]
    assert seq.init_info() == {"init_bbox": [6.0, 6.0, 10.0, 12.0]}
    assert seq.result_base("R") == os.path.join("R", "got10k", "GOT-10k_Test_000002")
    val = GOT10KDataset(base_path=str(tmp_path), split="val").get_sequence_list()
    assert len(val) == 1 and len(val[0]) == 6 and val[0].frames[5].endswith("00000006.jpg")  # annotation-only
    specs = tmp_path / "specs"
    write_rows(str(specs / "got10k_val_split.txt"), [[3], [0]])
    ltr = GOT10KDataset(base_path=str(tmp_path), split="ltrval", dataspec_path=str(specs))
    assert ltr.sequence_names() == ["GOT-10k_Train_000004", "GOT-10k_Train_000001"]
    write_rows(str(specs / "got10k_val_split.txt"), [[3], [7]])
    with pytest.raises(AnnotationError, match=r"got10k_val_split.txt, line 2: '7' is not an index"):
        GOT10KDataset(base_path=str(tmp_path), split="ltrval", dataspec_path=str(specs))
    # the test split's only box initialises the tracker: a negative size is an error there
    write_rows(str(tmp_path / "test" / "GOT-10k_Test_000001" / "groundtruth.txt"), [[1, 2, -3, 4]])
    with pytest.raises(AnnotationError, match=r"GOT-10k_Test_000001/groundtruth.txt, line 1: negative width"):
        test.get_sequence(0)
    # the test split's box file may not hold more boxes than there are frames
    write_rows(str(tmp_path / "test" / "GOT-10k_Test_000001" / "groundtruth.txt"), boxes(13))
    with pytest.raises(AnnotationError, match="13 boxes for 12 frames"):
        test.get_sequence(0)


def test_got10k_ltrval_with_real_split_file(tmp_path, shared_data):
    split = need_shared("data", "data_specs", "got10k_val_split.txt")
    ids = [int(x) for x in split.read_text().split()]
    names = [f"GOT-10k_Train_{i + 1:06d}" for i in range(max(ids) + 1)]
    os.makedirs(tmp_path / "train")
    (tmp_path / "train" / "list.txt").write_text("\n".join(names) + "\n")
    ds = GOT10KDataset(base_path=str(tmp_path), split="ltrval", dataspec_path=str(split.parent))
    assert len(ds) == len(ids) and ds.sequence_names()[:3] == [names[i] for i in ids[:3]]


# -- TrackingNet ------------------------------------------------------------------------------------------
def test_trackingnet_test_set(tmp_path):
    import cv2

    for name in ("b_seq", "a_seq"):
        write_rows(str(tmp_path / "TEST" / "anno" / f"{name}.txt"), [[1, 2, 3, 4]])
        d = tmp_path / "TEST" / "frames" / name
        os.makedirs(d)
        for i in range(12):
            cv2.imwrite(str(d / f"{i}.jpg"), np.zeros((8, 8, 3), np.uint8))
    ds = TrackingNetDataset(base_path=str(tmp_path))
    assert ds.sequence_names() == ["a_seq", "b_seq"]
    seq = ds.get_sequence("a_seq")
    assert [os.path.basename(f) for f in seq.frames[:3]] + [os.path.basename(seq.frames[-1])] == \
        ["0.jpg", "1.jpg", "2.jpg", "11.jpg"]
    assert seq.dataset == "trackingnet" and seq.results_subdir == "trackingnet"


# -- missing folders and settings -------------------------------------------------------------------------
def test_missing_folders_and_fields_name_what_to_fix(tmp_path, test_env, monkeypatch):
    with pytest.raises(DatasetFolderError, match=r"dataset folder '.*nowhere' does not exist"):
        NFSDataset(base_path=str(tmp_path / "nowhere"))
    with pytest.raises(DatasetFolderError, match=r"sequence 'nfs_Gymnastics' is not in .*'.*anno/nfs_Gymnastics.txt' "
                                                 r"does not exist"):
        NFSDataset(base_path=str(tmp_path)).get_sequence("nfs_Gymnastics")
    with pytest.raises(DatasetFolderError, match=r"TrackingNet TEST annotations: folder '.*TEST/anno' does not exist"):
        TrackingNetDataset(base_path=str(tmp_path))
    with pytest.raises(DatasetFolderError, match=r"GOT-10k val sequence list: file '.*val/list.txt'"):
        GOT10KDataset(base_path=str(tmp_path), split="val")
    monkeypatch.setenv("TRACKING_NFS_PATH", str(tmp_path / "no_nfs"))
    with pytest.raises(SettingsError, match=r"'nfs_path'.*no_nfs', which does not exist: set 'nfs_path' in "
                                            r"lib/test/evaluation/local.py.*TRACKING_NFS_PATH"):
        get_dataset("nfs")
    with pytest.raises(IndexError, match=r"no sequence 'nfs_Gymnastic' .*similar names: nfs_Gymnastics"):
        NFSDataset(base_path=str(tmp_path)).get_sequence("nfs_Gymnastic")


def test_readers_edge_cases(tmp_path):
    p = tmp_path / "gt.txt"
    p.write_text("1,2,3,4\n\n5,6,7,8\n")
    with pytest.raises(AnnotationError, match=r"gt.txt, line 2: expected 4 values x, y, w, h, got 0 \(blank line\)"):
        read_boxes(str(p))
    p.write_text("1,2,3,4\n5\t6 7,8\n\n")  # mixed separators, trailing blank line
    np.testing.assert_array_equal(read_boxes(str(p)), [[1, 2, 3, 4], [5, 6, 7, 8]])
    p.write_text("")
    with pytest.raises(AnnotationError, match="empty"):
        read_boxes(str(p))
    p.write_text("1,2,3,4\nNaN,2,3,4\n")
    with pytest.raises(AnnotationError, match="line 2: partly NaN"):
        read_boxes(str(p), allow_nan="rows")
    p.write_text("1,2,3,4\n1,2,inf,4\n")
    with pytest.raises(AnnotationError, match="line 2: infinite"):
        read_boxes(str(p))
    p.write_text("m1,2\n")
    with pytest.raises(AnnotationError, match="line 1: mask region"):
        read_vot_regions(str(p))


def test_sequence_list_indexing_and_init_frames():
    seqs = [Sequence(f"s{i}", [f"{j}.jpg" for j in range(3)], "otb", np.ones((3, 4)) * (i + 1)) for i in range(3)]
    from lib.test.evaluation.data import SequenceList

    sl = SequenceList(seqs)
    assert sl["s1"] is seqs[1] and sl[[0, 2]].names() == ["s0", "s2"] and isinstance(sl[1:] + sl[:1], SequenceList)
    late = Sequence("late", ["a", "b", "c"], "otb", np.arange(12.0).reshape(3, 4), init_data={1: {"bbox": [1, 2, 3, 4]}})
    assert late.frames == ["b", "c"] and late.init_info() == {"init_bbox": [1, 2, 3, 4]} and len(late.ground_truth_rect) == 2


def test_get_sequence_on_a_list_only_dataset():
    from lib.test.evaluation.data import BaseDataset, SequenceList

    class ListOnly(BaseDataset):  # implements only the classic pytracking interface
        def get_sequence_list(self):
            return SequenceList([Sequence(n, ["f.jpg"], "otb", np.ones((1, 4))) for n in ("a", "b", "c")])

    ds = ListOnly()
    assert ds.get_sequence("b").name == "b" and ds.get_sequence(2).name == "c" and ds.get_sequence("0").name == "a"
    with pytest.raises(IndexError, match="no sequence 'd'"):
        ds.get_sequence("d")
