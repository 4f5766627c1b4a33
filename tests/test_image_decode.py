"""lib/utils/image.py: a truncated JPEG is a corrupt frame, named in the error; complete files decode as before."""

import cv2
import numpy as np
import pytest

from lib.utils.image import FrameReadError, imdecode_rgb, imread_rgb, jpeg_is_complete


def _jpeg_bytes(seed=0, progressive=False):
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), (7, 7), 0)
    params = [cv2.IMWRITE_JPEG_QUALITY, 90] + ([cv2.IMWRITE_JPEG_PROGRESSIVE, 1] if progressive else [])
    ok, buf = cv2.imencode(".jpg", img, params)
    assert ok
    return img, buf.tobytes()


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("keep", [0.3, 0.9, -2])
def test_truncated_jpeg_is_a_frame_read_error_naming_the_file(tmp_path, progressive, keep):
    _, data = _jpeg_bytes(progressive=progressive)
    cut = data[:keep] if keep < 0 else data[:int(len(data) * keep)]
    path = tmp_path / "00000042.jpg"
    path.write_bytes(cut)
    for backend in ("auto", "opencv"):
        with pytest.raises(FrameReadError, match=r"00000042\.jpg.*truncated JPEG"):
            imread_rgb(str(path), backend=backend)
    with pytest.raises(FrameReadError, match="lmdb:key/0001.jpg"):
        imdecode_rgb(cut, name="lmdb:key/0001.jpg")


def test_complete_jpegs_decode_with_padding_and_trailing_bytes(tmp_path):
    img, data = _jpeg_bytes(seed=1)
    reference = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    for tail in (b"", b"\x00" * 100, b"\r\n", b"garbage after the image"):
        path = tmp_path / "frame.jpg"
        path.write_bytes(data + tail)
        assert jpeg_is_complete(data + tail)
        np.testing.assert_array_equal(imread_rgb(str(path)), reference)
        np.testing.assert_array_equal(imread_rgb(str(path), backend="opencv"), reference)
    assert np.abs(reference.astype(int) - img[..., ::-1]).mean() < 8  # it is the image (RGB), not grey fill


def test_real_frames_are_complete():
    from tests.conftest import need_shared

    otb = need_shared("data", "otb", "Couple", "img")
    files = sorted(otb.glob("*.jpg"))[:20]
    assert files and all(jpeg_is_complete(p.read_bytes()) for p in files)
