"""Reading and writing the lmdb copies of training datasets (OSTrack/STARK ``lib/utils/lmdb_utils.py``).

An lmdb dataset holds every file of the original dataset folder under its relative path as the key
(``train/GOT-10k_Train_000001/00000001.jpg``, ``airplane/airplane-1/groundtruth.txt``, ...) and the
file's bytes as the value; the key layouts of each dataset are in TOOLKIT.md section D and in
:mod:`lib.train.dataset`. Environments are opened read-only, without locking, once per process
(one cached read transaction per path), as the official helper does.
"""

from __future__ import annotations

import json
import os
from typing import Dict, Iterable, Iterator, Optional, Tuple

from lib.utils.errors import register_user_error
from lib.utils.image import imdecode_rgb

__all__ = ["LmdbError", "get_lmdb_handle", "lmdb_has_key", "read_bytes", "decode_img", "decode_str", "decode_json",
           "imdecode_rgb", "write_lmdb", "close_all"]


@register_user_error
class LmdbError(IOError):
    """An lmdb file that is missing, unreadable, or lacks a key (the message names both)."""


_ENVS: Dict[str, object] = {}
_TXNS: Dict[str, object] = {}
_OWNER_PID = [os.getpid()]


def get_lmdb_handle(path: str):
    """A read transaction on the lmdb environment at ``path`` (cached per process).

    Raises:
        LmdbError: ``path`` does not exist or is not an lmdb environment.
    """
    if _OWNER_PID[0] != os.getpid():  # a forked worker: never reuse the parent's transactions
        _TXNS.clear()
        _ENVS.clear()
        _OWNER_PID[0] = os.getpid()
    txn = _TXNS.get(path)
    if txn is None:
        import lmdb

        if not os.path.exists(path):
            raise LmdbError(f"lmdb '{path}' does not exist (build it with tracking/make_lmdb.py)")
        try:
            env = lmdb.open(path, readonly=True, lock=False, readahead=False, meminit=False,
                            subdir=os.path.isdir(path))
        except lmdb.Error as exc:
            raise LmdbError(f"'{path}' is not a readable lmdb environment: {exc}") from exc
        _ENVS[path] = env
        txn = env.begin(write=False)
        _TXNS[path] = txn
    return txn


def close_all() -> None:
    """Close every cached environment (needed before a forked worker re-opens them, and in tests)."""
    for txn in _TXNS.values():
        try:
            txn.abort()
        except Exception:
            pass
    for env in _ENVS.values():
        try:
            env.close()
        except Exception:
            pass
    _TXNS.clear()
    _ENVS.clear()


def lmdb_has_key(path: str, key: str) -> bool:
    """True if the lmdb at ``path`` holds ``key``."""
    return get_lmdb_handle(path).get(key.encode()) is not None


def read_bytes(path: str, key: str) -> bytes:
    """The value stored under ``key``.

    Raises:
        LmdbError: the key is absent (the message names the lmdb and the key).
    """
    value = get_lmdb_handle(path).get(key.encode())
    if value is None:
        raise LmdbError(f"lmdb '{path}' has no key '{key}'")
    return bytes(value)


def decode_img(path: str, key: str) -> np.ndarray:
    """The image stored under ``key`` as ``(H, W, 3)`` RGB uint8 (official ``decode_img``)."""
    return imdecode_rgb(read_bytes(path, key), name=f"{path}:{key}")


def decode_str(path: str, key: str) -> str:
    """The text stored under ``key`` (UTF-8)."""
    return read_bytes(path, key).decode()


def decode_json(path: str, key: str):
    """The JSON document stored under ``key``."""
    try:
        return json.loads(decode_str(path, key))
    except json.JSONDecodeError as exc:
        raise LmdbError(f"lmdb '{path}' key '{key}' is not valid JSON: {exc}") from exc


def write_lmdb(dst: str, items: Iterable[Tuple[str, bytes]], map_size: Optional[int] = None,
               commit_every: int = 1000) -> int:
    """Write ``(key, bytes)`` pairs into a new lmdb environment at ``dst``.

    The environment is written under ``dst + '.tmp'`` and renamed onto ``dst`` when complete, so an
    interrupted conversion never leaves a half-written lmdb under the final name.

    Args:
        dst: output folder (must not exist).
        items: the keys (relative file paths, '/'-separated) and values.
        map_size: lmdb map size in bytes (default 1 TiB; only virtual address space is reserved).
        commit_every: keys per write transaction.

    Returns:
        The number of keys written.

    Raises:
        FileExistsError: ``dst`` exists already.
    """
    import shutil

    import lmdb

    if os.path.exists(dst):
        raise FileExistsError(f"'{dst}' exists already; remove it or choose another destination")
    tmp = dst + ".tmp"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    env = lmdb.open(tmp, map_size=map_size or (1 << 40), subdir=True)
    count = 0
    try:
        txn = env.begin(write=True)
        for key, value in items:
            txn.put(key.encode(), value)
            count += 1
            if count % commit_every == 0:
                txn.commit()
                txn = env.begin(write=True)
        txn.commit()
        env.sync()
    except BaseException:
        env.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    env.close()
    os.replace(tmp, dst)
    return count


def iter_folder(root: str, prefix: str = "", skip: Iterable[str] = ()) -> Iterator[Tuple[str, bytes]]:
    """``(key, bytes)`` for every file below ``root`` (sorted), the key being ``prefix`` + the relative path."""
    skip = set(skip)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for fn in sorted(filenames):
            full = os.path.join(dirpath, fn)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if rel in skip:
                continue
            with open(full, "rb") as f:
                yield prefix + rel, f.read()
