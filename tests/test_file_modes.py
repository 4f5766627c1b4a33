"""Files written atomically (results, JSON, checkpoints, videos, debug PNGs) get the permissions of a plain
``open()``, ``0o666 & ~umask``, not ``mkstemp``'s owner-only ``0o600``."""

import os
import stat

import numpy as np
import pytest
import torch

from lib.test.utils.debug import PngDebugSink
from lib.utils.checkpoint import save_checkpoint_atomic
from lib.utils.misc import atomic_write, current_umask
from lib.vis.video import VideoFileWriter


@pytest.fixture(params=[0o022, 0o027, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_respect_the_umask(tmp_path, umask):
    assert current_umask() == umask
    expected = 0o666 & ~umask
    with open(tmp_path / "plain.txt", "w") as f:
        f.write("x")
    assert _mode(tmp_path / "plain.txt") == expected  # what every writer below must match

    with atomic_write(tmp_path / "sub" / "boxes.txt") as f:
        f.write("1\t2\t3\t4\n")
    with atomic_write(tmp_path / "blob.bin", "wb") as f:
        f.write(b"\x00")
    save_checkpoint_atomic({"net": {"w": torch.zeros(2)}}, tmp_path / "ckpt.pth.tar")
    with VideoFileWriter(tmp_path / "out.avi", fps=5) as writer:
        for _ in range(2):
            writer.write(np.zeros((16, 16, 3), np.uint8))
    sink = PngDebugSink(1, "t", "c", "s", out_dir=tmp_path / "debug", strict=True)
    sink.register(np.zeros((8, 8, 3), np.uint8), "image", 1, "view")
    png = tmp_path / "debug" / "t" / "c" / "s" / "00000_view.png"

    for path in (tmp_path / "sub" / "boxes.txt", tmp_path / "blob.bin", tmp_path / "ckpt.pth.tar",
                 tmp_path / "out.avi", png):
        assert _mode(path) == expected, f"{path.name}: {oct(_mode(path))} != {oct(expected)}"
    leftovers = [p.name for p in tmp_path.rglob(".*") if p.is_file()]
    assert leftovers == [], leftovers  # no temporary file is left behind


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "result.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["result.txt"]
