"""Training data: datasets on real frames (GOT-10k / LaSOT layouts linked from ../shared), lmdb copies,
split files, bad input, sampler modes, processing, transforms and the loader."""

import json
import os
import shutil

import cv2
import numpy as np
import pytest
import torch

from lib.train.data import LTRLoader, SamplingError, STARKProcessing, TensorDict, TrackingSampler
from lib.train.data import transforms as tfm
from lib.train.dataset import (DatasetError, Got10k, Got10k_lmdb, ImagenetVID, ImagenetVID_lmdb, Lasot, Lasot_lmdb,
                               MSCOCOSeq, MSCOCOSeq_lmdb, TrackingNet, TrackingNet_lmdb, names2datasets)
from lib.train.dataset.make_lmdb import make_lmdb
from lib.utils.image import FrameReadError, imdecode_rgb, imread_rgb, jpeg4py_available
from lib.utils.lmdb_utils import close_all
from tests.conftest import need_shared
from tests.train_helpers import FakeEnv, MemoryDataset, make_dataspec, make_got10k, make_lasot, read_gt
from tests.train_helpers import one_torch_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPECS = ["Couple", "Crossing", "bag", "person11"]


@pytest.fixture(scope="module")
def shared():
    return need_shared("data")


@pytest.fixture(scope="module")
def layout(shared, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train_layout")
    got = make_got10k(shared, tmp / "got10k", SPECS, absent={"Crossing": [5, 6, 7]})
    las, names = make_lasot(shared, tmp / "lasot", {"person-1": "Couple", "bag-1": "bag", "person-2": "Crossing"})
    spec = make_dataspec(tmp / "specs", names)
    return {"tmp": tmp, "got": got, "lasot": las, "spec": spec, "lasot_names": names}


# ---------------------------------------------------------------------------------------------- datasets
def test_got10k_reads_real_sequences_and_visibility(layout, shared):
    ds = Got10k(str(layout["got"]))
    assert ds.get_name() == "got10k" and ds.get_num_sequences() == 4
    info = ds.get_sequence_info(1)  # Crossing, frames 5-7 written absent
    gt = read_gt(shared, "Crossing")
    assert info["bbox"].shape == (len(gt), 4) and info["bbox"].dtype == torch.float32
    assert np.allclose(info["bbox"].numpy(), gt, atol=1e-3)
    assert info["visible"][[5, 6, 7]].tolist() == [0, 0, 0] and int(info["visible"].sum()) == len(gt) - 3
    frames, anno, meta = ds.get_frames(1, [0, 10], info)
    assert frames[0].shape == (240, 360, 3) and frames[0].dtype == np.uint8
    ref = cv2.cvtColor(cv2.imread(str(shared / "otb/Crossing/img/0011.jpg")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(frames[1], ref)
    assert torch.equal(anno["bbox"][1], info["bbox"][10]) and meta["object_class_name"] == "crossing"


def test_lasot_train_split_from_dataspec(layout, shared):
    ds = Lasot(str(layout["lasot"]), split="train", dataspec_path=str(layout["spec"]))
    assert sorted(ds.sequence_list) == sorted(layout["lasot_names"]) and ds.get_name() == "lasot"
    seq = ds.sequence_list.index("bag-1")
    info = ds.get_sequence_info(seq)
    assert info["visible"].all() and info["bbox"].shape[0] == 196
    frames, _, meta = ds.get_frames(seq, [0])
    assert frames[0].shape == (360, 480, 3) and meta["object_class_name"] == "bag"


def test_official_split_files_are_read(shared):
    from lib.train.dataset import read_split_file

    spec = str(need_shared("data", "data_specs"))
    sizes = {"got10k_train_split.txt": 7934, "got10k_val_split.txt": 1401, "got10k_vot_train_split.txt": 7086,
             "got10k_vot_val_split.txt": 1249}
    for name, n in sizes.items():
        ids = read_split_file(spec, name, as_int=True)
        assert len(ids) == n and min(ids) >= 0 and max(ids) < 9335
    assert len(read_split_file(spec, "lasot_train_split.txt", as_int=False)) == 1120


def test_got10k_split_index_beyond_list_is_a_clear_error(layout):
    spec = str(need_shared("data", "data_specs"))
    with pytest.raises(DatasetError, match="list.txt"):
        Got10k(str(layout["got"]), split="vottrain", dataspec_path=spec)
    # train_full needs no split file (the data_specs folder has none): every listed sequence
    assert Got10k(str(layout["got"]), split="train_full", dataspec_path=spec).get_num_sequences() == 4


def test_missing_split_file_names_file_and_field(layout, tmp_path):
    with pytest.raises(DatasetError, match=r"got10k_vot_val_split\.txt.*dataspec_path"):
        Got10k(str(layout["got"]), split="votval", dataspec_path=str(tmp_path))


def test_missing_or_wrong_dataset_folder(layout, tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        Got10k(str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match=r"list\.txt"):
        Got10k(str(layout["lasot"]))  # a LaSOT folder is not a GOT-10k train folder
    with pytest.raises(DatasetError, match=r"person-9"):
        spec = make_dataspec(tmp_path / "spec", ["person-9"])
        Lasot(str(layout["lasot"]), split="train", dataspec_path=str(spec))


def test_annotation_with_fewer_rows_than_frames(shared, tmp_path):
    got = make_got10k(shared, tmp_path / "g", ["Couple"])
    seq = got / "GOT-10k_Train_000001"
    lines = (seq / "groundtruth.txt").read_text().splitlines()
    (seq / "groundtruth.txt").write_text("\n".join(lines[:-3]) + "\n")
    ds = Got10k(str(got))
    with pytest.raises(DatasetError, match=r"groundtruth\.txt' has 137 rows.*fewer rows than frames"):
        ds.get_sequence_info(0)
    (seq / "groundtruth.txt").write_text("\n".join(lines[:-3] + ["1,2,3"]) + "\n")
    with pytest.raises(DatasetError, match=r"groundtruth\.txt"):
        ds.get_sequence_info(0)


def test_corrupt_frame_is_an_error_naming_the_file(shared, tmp_path):
    got = make_got10k(shared, tmp_path / "g", ["Couple"])
    bad = got / "GOT-10k_Train_000001" / "00000003.jpg"
    bad.unlink()
    bad.write_bytes(b"not a jpeg at all")
    ds = Got10k(str(got))
    with pytest.raises(FrameReadError, match="00000003.jpg"):
        ds.get_frames(0, [2])


def test_jpeg4py_and_opencv_decode_the_same_pixels(shared):
    if not jpeg4py_available():
        pytest.skip("libturbojpeg is not installed: only the OpenCV path exists")
    for rel in ("otb/Couple/img/0001.jpg", "vot/bag/00000001.jpg",
                "uav123_10fps/data_seq/UAV123_10fps/person11/000001.jpg"):
        a = imread_rgb(str(shared / rel), backend="jpeg4py")
        b = imread_rgb(str(shared / rel), backend="opencv")
        assert a.shape == b.shape and np.array_equal(a, b), rel
        c = imdecode_rgb((shared / rel).read_bytes(), backend="jpeg4py")
        assert np.array_equal(c, b)


# ---------------------------------------------------------------------------------------------- lmdb
def test_lmdb_copies_read_like_the_folders(layout, tmp_path):
    got_root = layout["got"].parent
    make_lmdb("got10k", str(got_root), str(tmp_path / "got_lmdb"))
    make_lmdb("lasot", str(layout["lasot"]), str(tmp_path / "lasot_lmdb"))
    try:
        a, b = Got10k(str(layout["got"])), Got10k_lmdb(str(tmp_path / "got_lmdb"))
        assert b.sequence_list == a.sequence_list and b.get_name() == "got10k_lmdb"
        for seq in range(4):
            ia, ib = a.get_sequence_info(seq), b.get_sequence_info(seq)
            assert all(torch.equal(ia[k], ib[k]) for k in ia)
        fa, _, ma = a.get_frames(3, [0, 100])
        fb, _, mb = b.get_frames(3, [0, 100])
        assert all(np.array_equal(x, y) for x, y in zip(fa, fb)) and ma == mb
        la = Lasot(str(layout["lasot"]), split="train", dataspec_path=str(layout["spec"]))
        lb = Lasot_lmdb(str(tmp_path / "lasot_lmdb"), split="train", dataspec_path=str(layout["spec"]))
        ia, ib = la.get_sequence_info(1), lb.get_sequence_info(1)
        assert all(torch.equal(ia[k], ib[k]) for k in ia)
        assert np.array_equal(la.get_frames(1, [5])[0][0], lb.get_frames(1, [5])[0][0])
        # the official key layout
        from lib.utils.lmdb_utils import lmdb_has_key

        for key in ("train/list.txt", "train/GOT-10k_Train_000001/00000001.jpg",
                    "train/GOT-10k_Train_000001/absence.label", "train/GOT-10k_Train_000004/meta_info.ini"):
            assert lmdb_has_key(str(tmp_path / "got_lmdb"), key), key
        with pytest.raises(FileExistsError):
            make_lmdb("lasot", str(layout["lasot"]), str(tmp_path / "lasot_lmdb"))
    finally:
        close_all()


def _make_trackingnet(shared, root):
    gt = read_gt(shared, "Couple")[:30]
    for k, vid in ((0, "vidA"), (0, "vidB"), (1, "vidC")):
        (root / f"TRAIN_{k}" / "anno").mkdir(parents=True, exist_ok=True)
        np.savetxt(root / f"TRAIN_{k}" / "anno" / f"{vid}.txt", gt, fmt="%.2f", delimiter=",")
        for i in range(len(gt)):
            dst = root / f"TRAIN_{k}" / "frames" / vid / f"{i}.jpg"
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(shared / "otb/Couple/img" / f"{i + 1:04d}.jpg", dst)


def test_trackingnet_folder_and_lmdb(shared, tmp_path):
    _make_trackingnet(shared, tmp_path / "tn")
    spec = need_shared("data", "data_specs")
    a = TrackingNet(str(tmp_path / "tn"), set_ids=[0, 1], dataspec_path=str(spec))
    assert a.sequence_list == [(0, "vidA"), (0, "vidB"), (1, "vidC")]
    make_lmdb("trackingnet", str(tmp_path / "tn"), str(tmp_path / "tn_lmdb"))
    try:
        seq_list = json.loads((tmp_path / "tn_lmdb" / "seq_list.json").read_text())
        assert seq_list == [[0, "vidA"], [0, "vidB"], [1, "vidC"]]
        b = TrackingNet_lmdb(str(tmp_path / "tn_lmdb"), set_ids=[0, 1])
        assert b.sequence_list == a.sequence_list
        assert torch.equal(a.get_sequence_info(2)["bbox"], b.get_sequence_info(2)["bbox"])
        assert np.array_equal(a.get_frames(2, [7])[0][0], b.get_frames(2, [7])[0][0])
    finally:
        close_all()
    with pytest.raises(DatasetError, match="TRAIN_5"):
        TrackingNet(str(tmp_path / "tn"), set_ids=[5])


def test_coco_and_vid_folder_and_lmdb(shared, tmp_path):
    coco = tmp_path / "coco"
    (coco / "images" / "train2017").mkdir(parents=True)
    (coco / "annotations").mkdir()
    shutil.copy(shared / "vot/bag/00000001.jpg", coco / "images/train2017/000000000001.jpg")
    anns = {"images": [{"id": 1, "file_name": "000000000001.jpg", "height": 360, "width": 480}],
            "categories": [{"id": 3, "name": "bag", "supercategory": "thing"}],
            "annotations": [
                {"id": 10, "image_id": 1, "category_id": 3, "iscrowd": 0, "bbox": [240, 80, 90, 120],
                 "segmentation": [[240, 80, 330, 80, 330, 200, 240, 200]]},
                {"id": 11, "image_id": 1, "category_id": 3, "iscrowd": 1, "bbox": [0, 0, 5, 5], "segmentation": {}},
                {"id": 12, "image_id": 1, "category_id": 3, "iscrowd": 0, "bbox": [10, 10, 20, 20],
                 "segmentation": [[10, 10, 30, 10, 30, 30]]}]}
    (coco / "annotations" / "instances_train2017.json").write_text(json.dumps(anns))
    ds = MSCOCOSeq(str(coco), version="2017")
    assert not ds.is_video_sequence() and ds.sequence_list == [10, 12]
    info = ds.get_sequence_info(0)
    assert info["valid"].tolist() == [True] and ds.get_sequence_info(1)["valid"].tolist() == [False]  # w,h > 50 only
    assert info["mask"].shape == (1, 360, 480) and info["mask"][0, 140, 285] == 1 and info["mask"][0, 10, 10] == 0
    frames, anno, meta = ds.get_frames(0, [1, 1])
    assert len(frames) == 2 and np.array_equal(frames[0], frames[1]) and meta["object_class_name"] == "bag"
    make_lmdb("coco", str(coco), str(tmp_path / "coco_lmdb"), version="2017")

    vid = tmp_path / "vid"
    frames_dir = vid / "Data/VID/train/ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000"
    anno_dir = vid / "Annotations/VID/train/ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000"
    frames_dir.mkdir(parents=True)
    anno_dir.mkdir(parents=True)
    gt = read_gt(shared, "bag")[:25]
    for i, (x, y, w, h) in enumerate(gt):
        os.symlink(shared / "vot/bag" / f"{i + 1:08d}.jpg", frames_dir / f"{i:06d}.JPEG")
        occluded = 1 if i == 3 else 0
        (anno_dir / f"{i:06d}.xml").write_text(
            f"<annotation><size><width>480</width><height>360</height></size><object><trackid>0</trackid>"
            f"<name>n02773838</name><bndbox><xmax>{int(x + w)}</xmax><xmin>{int(x)}</xmin><ymax>{int(y + h)}</ymax>"
            f"<ymin>{int(y)}</ymin></bndbox><occluded>{occluded}</occluded></object></annotation>")
    v = ImagenetVID(str(vid))
    assert v.get_num_sequences() == 1 and (vid / "cache.json").is_file()
    info = v.get_sequence_info(0)
    assert info["bbox"].shape == (25, 4) and info["visible"][3] == 0 and int(info["visible"].sum()) == 24
    make_lmdb("vid", str(vid), str(tmp_path / "vid_lmdb"))
    try:
        c = MSCOCOSeq_lmdb(str(tmp_path / "coco_lmdb"), version="2017")
        assert np.array_equal(c.get_frames(0, [1])[0][0], frames[0])
        w = ImagenetVID_lmdb(str(tmp_path / "vid_lmdb"))
        assert torch.equal(w.get_sequence_info(0)["bbox"], info["bbox"])
        assert np.array_equal(w.get_frames(0, [4])[0][0], v.get_frames(0, [4])[0][0])
    finally:
        close_all()


def test_names2datasets_uses_env_fields(layout):
    env = FakeEnv(got10k_dir=layout["got"], lasot_dir=layout["lasot"], dataspec_path=layout["spec"])
    ds = names2datasets(["LASOT", "GOT10K_train_full", "GOT10K_train"], env)
    assert [d.get_name() for d in ds] == ["lasot", "got10k", "got10k"]
    with pytest.raises(KeyError, match="GOT10K_bogus"):
        names2datasets(["GOT10K_bogus"], env)
    with pytest.raises(RuntimeError, match="got10k_lmdb_dir"):
        names2datasets(["GOT10K_votval"], env, use_lmdb=True)


# ---------------------------------------------------------------------------------------------- sampler
def _sampler(datasets, mode="causal", max_gap=10, n_t=1, **kw):
    return TrackingSampler(datasets, None, samples_per_epoch=50, max_gap=max_gap, num_search_frames=1,
                           num_template_frames=n_t, frame_sample_mode=mode, **kw)


def test_causal_sampling_respects_order_gap_and_visibility():
    vis = [1] * 60
    vis[20:30] = [0] * 10
    ds = MemoryDataset([vis, [1] * 40])
    s = _sampler([ds], "causal", max_gap=10, n_t=2)
    for i in range(50):
        s[i]
    for seq_id, ids in ds.requests:
        visible = ds.visible_lists[seq_id]
        assert all(visible[f] for f in ids)
    pairs = list(zip(ds.requests[0::2], ds.requests[1::2]))
    for (sq, templ), (sq2, search) in pairs:
        assert sq == sq2 and len(templ) == 2 and len(search) == 1
        assert templ[0] < search[0]  # causal: search after the base frame
        assert templ[1] <= templ[0]  # extra template before the base frame


def test_trident_and_stark_sample_dynamic_templates():
    vis = [1] * 50
    vis[10:15] = [0] * 5
    ds = MemoryDataset([vis])
    for mode in ("trident", "trident_pro", "stark", "interval"):
        ds.requests.clear()
        s = _sampler([ds], mode, max_gap=[8] if mode != "interval" else 8, n_t=2)
        for i in range(30):
            s[i]
        templ_reqs = ds.requests[0::2]
        search_reqs = ds.requests[1::2]
        for (_, t), (_, sr) in zip(templ_reqs, search_reqs):
            assert len(t) == 2
            if mode == "interval":  # around the base frame on both sides
                assert abs(t[1] - t[0]) <= 8 and abs(sr[0] - t[0]) <= 8
            else:  # the dynamic template lies within the gap of the search frame
                assert abs(t[1] - sr[0]) <= 8
            if mode in ("trident", "stark"):
                assert vis[t[0]] and vis[sr[0]]
            if mode == "trident":
                assert vis[t[1]]


def test_train_cls_draws_negatives_with_center_box():
    vis = [1] * 30 + [0] * 10
    ds = MemoryDataset([vis], size=(64, 96))
    s = _sampler([ds], "trident_pro", max_gap=[10], n_t=2, train_cls=True, pos_prob=0.5)
    labels = []
    for i in range(40):
        d = s[i]
        labels.append(int(d["label"].item()))
        if labels[-1] == 0:
            assert d["search_anno"][0].tolist() == [42, 28, 12, 8]  # 1/8 of the 96x64 image at its centre
    assert 0 < sum(labels) < 40
    with pytest.raises(ValueError, match="train_cls"):
        _sampler([ds], "causal", train_cls=True)


def test_dataset_ratios_and_image_datasets():
    a, b = MemoryDataset([[1] * 30], name="a"), MemoryDataset([[1]] * 3, name="b", video=False)
    s = TrackingSampler([a, b], [1, 3], samples_per_epoch=10, max_gap=5, num_search_frames=1)
    names = [s[i]["dataset"] for i in range(400)]
    assert 0.65 < names.count("b") / 400 < 0.85
    assert all(ids == [1] for _, ids in b.requests)  # image datasets repeat their image (official frame id 1)


def test_sampler_gives_up_after_retries_with_a_report():
    ds = MemoryDataset([[1] * 30])
    s = TrackingSampler([ds], None, 10, 5, 1, processing=lambda d: TensorDict(dict(d, valid=False)))
    with pytest.raises(SamplingError, match="100 attempts.*100 rejected"):
        s[0]
    short = MemoryDataset([[1] * 10])  # no sequence with 20 frames
    with pytest.raises(SamplingError, match="at least 20 frames"):
        TrackingSampler([short], None, 10, 5, 1)[0]


def test_bad_data_raises_or_is_skipped(shared, tmp_path, caplog):
    got = make_got10k(shared, tmp_path / "g", ["Couple"])
    for f in (got / "GOT-10k_Train_000001").glob("0000*.jpg"):
        f.unlink()
        f.write_bytes(b"broken")
    ds = Got10k(str(got))
    with pytest.raises(FrameReadError, match="GOT-10k_Train_000001"):
        TrackingSampler([ds], None, 4, 50, 1)[0]
    with pytest.raises(SamplingError, match=r"FrameReadError.*\.jpg"):
        TrackingSampler([ds], None, 4, 50, 1, skip_bad_data=True)[0]
    assert "skipping broken training data" in caplog.text


def test_per_index_seed_makes_samples_reproducible(layout):
    ds = Got10k(str(layout["got"]))
    s = TrackingSampler([ds], None, 10, 50, 1, sample_seed=7)
    s.set_epoch(3)
    state = torch.get_rng_state()
    a, b = s[5], s[5]
    assert torch.equal(torch.get_rng_state(), state)  # the global generators are left untouched
    assert a["template_anno"][0].tolist() == b["template_anno"][0].tolist()
    s.set_epoch(4)
    later = [s[i]["search_anno"][0].tolist() for i in range(5)]
    s.set_epoch(3)
    assert [s[i]["search_anno"][0].tolist() for i in range(5)] != later  # another epoch, other samples


# ---------------------------------------------------------------------------------------------- processing
def _processing(transform=None, joint=None, search=64, template=32, cj=0.0, sj=0.0):
    return STARKProcessing(search_area_factor={"template": 2.0, "search": 4.0},
                           output_sz={"template": template, "search": search},
                           center_jitter_factor={"template": 0, "search": cj},
                           scale_jitter_factor={"template": 0, "search": sj}, mode="sequence",
                           transform=transform or tfm.Transform(tfm.ToTensor()), joint_transform=joint)


def _sample(ds, seq, ids):
    frames, anno, _ = ds.get_frames(seq, ids)
    H, W, _ = frames[0].shape
    return TensorDict({"template_images": frames[:1], "template_anno": anno["bbox"][:1],
                       "template_masks": [torch.zeros(H, W)], "search_images": frames[1:],
                       "search_anno": anno["bbox"][1:],
                       "search_masks": [torch.zeros(H, W)], "dataset": "got10k", "test_class": None})


def test_processing_crops_real_frames_around_the_target(layout, shared):
    ds = Got10k(str(layout["got"]))
    out = _processing()(_sample(ds, 0, [0, 5]))
    assert out["valid"] and out["template_images"].shape == (1, 3, 32, 32)
    assert out["search_images"].shape == (1, 3, 64, 64)
    assert out["search_att"].dtype == torch.bool and out["search_att"].shape == (1, 64, 64)
    # no jitter: the target is centred, its side is 1/factor of the crop (sqrt(w h) normalisation)
    x, y, w, h = out["search_anno"][0].tolist()
    assert abs(x + w / 2 - 31.5 / 64) < 1e-5 and abs(y + h / 2 - 31.5 / 64) < 1e-5
    gw, gh = read_gt(shared, "Couple")[5, 2:]
    side = np.ceil(np.sqrt(gw * gh) * 4)  # crop side in frame pixels
    assert w == pytest.approx(gw / side, abs=1e-6) and h == pytest.approx(gh / side, abs=1e-6)
    # the crop shows the frame: the centre pixel equals the frame's pixel at the box centre (bilinear)
    frame = imread_rgb(str(shared / "otb/Couple/img/0006.jpg")).astype(np.float32) / 255
    gx, gy = read_gt(shared, "Couple")[5, :2] + read_gt(shared, "Couple")[5, 2:] / 2
    centre = out["search_images"][0, :, 32, 32].numpy()
    assert np.abs(centre - frame[int(gy), int(gx)]).max() < 0.25


def test_processing_rejects_all_padding_crops():
    ds = MemoryDataset([[1] * 30], size=(100, 100))
    data = _sample(ds, 0, [0, 1])
    data["search_anno"] = [torch.tensor([-400.0, -400.0, 20.0, 20.0])]  # the crop lies outside the image
    assert not _processing()(data)["valid"]
    data = _sample(ds, 0, [0, 1])
    data["search_anno"] = [torch.tensor([10.0, 10.0, 0.0, 0.0])]
    assert not _processing()(data)["valid"]


def test_flip_transforms_image_and_boxes_consistently(layout):
    ds = Got10k(str(layout["got"]))
    base = _sample(ds, 2, [3, 9])
    plain = _processing()(base.copy())
    flip = tfm.Transform(tfm.ToTensor(), tfm.RandomHorizontalFlip_Norm(probability=1.0))
    flipped = _processing(transform=flip)(base.copy())
    x, y, w, h = plain["search_anno"][0].tolist()
    fx, fy, fw, fh = flipped["search_anno"][0].tolist()
    assert abs(fx - (1 - x - w)) < 1e-6 and (fy, fw, fh) == pytest.approx((y, w, h))
    assert torch.equal(flipped["search_images"][0], plain["search_images"][0].flip(-1))
    assert torch.equal(flipped["search_att"][0], plain["search_att"][0].flip(-1))
    # the joint (pixel-box) flip: x -> W - 1 - x on the corners
    joint = tfm.Transform(tfm.RandomHorizontalFlip(probability=1.0))
    img = np.zeros((10, 20, 3), np.uint8)
    _, box = joint(image=img, bbox=torch.tensor([2.0, 1.0, 5.0, 4.0]))
    assert box.tolist() == [12.0, 1.0, 5.0, 4.0]


def test_grayscale_and_brightness_jitter():
    img = (np.random.RandomState(0).rand(8, 8, 3) * 255).astype(np.uint8)
    g = tfm.Transform(tfm.ToGrayscale(probability=1.0))(image=img)
    assert np.array_equal(g[..., 0], g[..., 1]) and np.array_equal(g[..., 0], cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))
    np.random.seed(3)
    t = tfm.Transform(tfm.ToTensorAndJitter(0.2))(image=img)
    np.random.seed(3)
    factor = np.random.uniform(0.8, 1.2)
    assert torch.allclose(t, (torch.from_numpy(img).permute(2, 0, 1).float() * factor / 255).clamp(0, 1))


# ---------------------------------------------------------------------------------------------- loader
def _loader(ds, workers, seed=0):
    proc = _processing(transform=tfm.Transform(tfm.ToTensorAndJitter(0.2), tfm.RandomHorizontalFlip_Norm(0.5)),
                       joint=tfm.Transform(tfm.ToGrayscale(0.05), tfm.RandomHorizontalFlip(0.5)), cj=3, sj=0.25)
    sampler = TrackingSampler([ds], None, 6, 50, 1, processing=proc)
    return LTRLoader("train", sampler, batch_size=3, num_workers=workers, stack_dim=1, drop_last=True, seed=seed)


def test_loader_stacks_on_dim1_and_seeds_workers(layout):
    ds = Got10k(str(layout["got"]))
    loader = _loader(ds, workers=2)
    loader.set_epoch(1)
    batches = [b for b in loader]
    assert len(batches) == 2
    b = batches[0]
    assert b["template_images"].shape == (1, 3, 3, 32, 32) and b["search_anno"].shape == (1, 3, 4)
    assert b["dataset"] == ["got10k"] * 3 and b["valid"].tolist() == [True] * 3
    again = [x for x in _loader(ds, workers=2) if x is not None]
    again_loader = _loader(ds, workers=2)
    again_loader.set_epoch(1)
    again = list(again_loader)
    assert all(torch.equal(x["search_images"], y["search_images"]) for x, y in zip(batches, again))
    other = _loader(ds, workers=2)
    other.set_epoch(2)
    assert not torch.equal(next(iter(other))["search_anno"], b["search_anno"])


def test_stark_st2_config_gives_two_templates_and_labels(layout):
    """The same pipeline serves STARK-ST stage 2: trident_pro sampling, two templates, negative samples."""
    from lib.config import load_config
    from lib.train.base_functions import build_dataloaders, update_settings
    from lib.train.run_training import make_settings

    try:
        cfg = load_config("stark_st2", "baseline")
    except (KeyError, FileNotFoundError) as exc:
        pytest.skip(f"STARK configs are not available: {exc}")
    cfg.DATA.TRAIN.DATASETS_NAME, cfg.DATA.TRAIN.DATASETS_RATIO = ["GOT10K_train_full", "LASOT"], [1, 1]
    cfg.DATA.VAL.DATASETS_NAME = ["GOT10K_train_full"]
    cfg.DATA.SEARCH.SIZE, cfg.TRAIN.BATCH_SIZE, cfg.DATA.TRAIN.SAMPLE_PER_EPOCH = 160, 8, 8
    env = FakeEnv(got10k_dir=layout["got"], lasot_dir=layout["lasot"], dataspec_path=layout["spec"])
    settings = make_settings("stark_st2", "baseline", str(layout["tmp"] / "st2"), env=env, num_workers=0)
    update_settings(settings, cfg)
    loader, val = build_dataloaders(cfg, settings)
    assert loader.dataset.frame_sample_mode == "trident_pro" and loader.dataset.train_cls and val.epoch_interval == 10
    batch = next(iter(loader))
    assert batch["template_images"].shape == (2, 8, 3, 128, 128) and batch["search_images"].shape == (1, 8, 3, 160, 160)
    assert batch["label"].shape == (1, 8) and set(batch["label"].flatten().tolist()) <= {0.0, 1.0}
