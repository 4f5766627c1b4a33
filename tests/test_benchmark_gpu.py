"""tracking/benchmark_gpu.py on the CPU (tiny config, a few frames): every figure of a mode is printed, with the
device and versions, and fp16 boxes are compared with fp32 eager; limit_host_threads only lowers."""

from __future__ import annotations

import re
import sys

import torch

from tests.conftest import PROJECT_ROOT, need_shared


def test_benchmark_gpu_prints_every_figure(capsys):
    seq = need_shared("data", "otb", "Crossing")
    sys.path.insert(0, str(PROJECT_ROOT / "tracking"))
    import benchmark_gpu

    threads = torch.get_num_threads()
    try:
        rc = benchmark_gpu.main(["--device", "cpu", "--trackers", "stark_s:tiny_cpu", "--modes", "fp32", "bf16",
                                 "--frames", "2", "--warmup", "1", "--sequence", str(seq)])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert rc == 0
    lines = [ln for ln in out.splitlines() if ln.startswith("stark_s tiny_cpu")]
    assert len(lines) == 2, out
    ref, bf16 = lines
    for line in lines:
        assert re.search(r"step +[\d.]+ ms \| e2e +[\d.]+ ms = +[\d.]+ fps \| host +[\d.]+ ms", line), line
        assert f"torch {torch.__version__}" in line
    assert re.search(r"\| ops \d+ \|", ref) and "reference" in ref
    assert re.search(r"dev vs fp32 eager: max [\d.e+-]+ px", bf16), bf16


def test_limit_host_threads_only_lowers():
    from lib.test.tracker.base import limit_host_threads

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert limit_host_threads(8) == 2
        assert limit_host_threads(1) == 1
    finally:
        torch.set_num_threads(threads)
