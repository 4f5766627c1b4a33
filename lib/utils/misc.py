"""Small shared helpers: :class:`NestedTensor` (DETR/STARK), atomic file writes, device selection."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Iterator, Optional, Union

if TYPE_CHECKING:  # torch is imported where it is used, so tools that only need atomic_write start fast
    import torch

__all__ = ["NestedTensor", "atomic_write", "make_temp_file", "current_umask", "resolve_device", "autocast_context",
           "wait_for_device", "file_sha256"]


class NestedTensor:
    """A batch of images with its padding mask, as DETR's ``util/misc.py`` and STARK use it.

    Args:
        tensors: ``(B, C, H, W)`` images or features.
        mask: ``(B, H, W)`` bool, True on padded pixels; may be None.
    """

    def __init__(self, tensors: torch.Tensor, mask: Optional[torch.Tensor]):
        self.tensors = tensors
        self.mask = mask

    def to(self, device: Union[str, torch.device], non_blocking: bool = False) -> "NestedTensor":
        mask = self.mask.to(device, non_blocking=non_blocking) if self.mask is not None else None
        return NestedTensor(self.tensors.to(device, non_blocking=non_blocking), mask)

    def decompose(self):
        """Return ``(tensors, mask)``."""
        return self.tensors, self.mask

    def __repr__(self) -> str:
        return f"NestedTensor(tensors={tuple(self.tensors.shape)}, mask={None if self.mask is None else tuple(self.mask.shape)})"


def current_umask() -> int:
    """The process umask (from ``/proc/self/status`` where it is listed, else by setting and restoring it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def make_temp_file(path: Union[str, os.PathLike], suffix: str = ".tmp") -> tuple:
    """A temporary file beside ``path`` (same folder, created if needed) with the permissions a plain
    ``open(path, 'w')`` would give (``0o666 & ~umask``; ``tempfile.mkstemp`` alone gives ``0o600``).

    Returns:
        ``(fd, temporary path)``; the caller renames it onto ``path`` or removes it.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=suffix, dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    except (AttributeError, OSError):  # no fchmod (Windows): the mode stays the default
        pass
    return fd, tmp


@contextmanager
def atomic_write(path: Union[str, os.PathLike], mode: str = "w") -> Iterator:
    """Open a temporary file next to ``path`` and rename it onto ``path`` when the block succeeds.

    Readers never see a half-written file; on an exception the temporary file is removed and
    ``path`` keeps its old content (or stays absent). The file gets the permissions of a plain
    ``open()`` (``0o666 & ~umask``), not ``mkstemp``'s owner-only ``0o600``.
    """
    path = os.fspath(path)
    fd, tmp = make_temp_file(path)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except FileNotFoundError:
            pass
        raise


def resolve_device(device: Union[str, torch.device, None] = None) -> torch.device:
    """``None`` or ``'auto'`` -> CUDA when available, else CPU; anything else is passed to torch.device.

    Raises:
        RuntimeError: if CUDA is asked for and not available.
    """
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device '{device}' was asked for, but CUDA is not available on this machine")
    return dev


def autocast_context(device: Union[str, torch.device], precision: str = "fp32"):
    """Inference precision as a context: ``torch.autocast`` to float16 (``'fp16'``) or bfloat16 (``'bf16'``)
    on ``device``'s type; a no-op for ``'fp32'``.

    Raises:
        ValueError: another precision name.
    """
    if precision == "fp32":
        return nullcontext()
    import torch

    dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16}
    if precision not in dtypes:
        raise ValueError(f"precision must be fp32, fp16 or bf16, got '{precision}'")
    return torch.autocast(device_type=torch.device(device).type, dtype=dtypes[precision])


def wait_for_device(device) -> None:
    """Wait for the work queued on ``device``'s current stream with a blocking CUDA event: the host thread
    sleeps until the GPU is done instead of spinning in the driver (what a synchronising ``.tolist()`` or
    ``torch.cuda.synchronize`` does), so a CUDA tracker spends little host CPU time per frame. A no-op
    elsewhere."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return
    event = torch.cuda.Event(blocking=True)
    event.record(torch.cuda.current_stream(device))
    event.synchronize()


_SHA256_MEMO: dict = {}


def file_sha256(path: str, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file's contents, remembered per process for an unchanged file (same real path, size and
    modification time): checkpoints are hashed once per run although trackers are built per sequence.

    Raises:
        OSError: the file cannot be read.
    """
    import hashlib

    st = os.stat(path)
    memo_key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if memo_key not in _SHA256_MEMO:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(chunk), b""):
                digest.update(block)
        _SHA256_MEMO[memo_key] = digest.hexdigest()
    return _SHA256_MEMO[memo_key]
