"""Reading frames as RGB uint8 arrays, from files (``imread_rgb``) or encoded bytes such as lmdb values
(``imdecode_rgb``): jpeg4py (libturbojpeg) for JPEG data where it works, OpenCV otherwise. Both give the same RGB
pixels for baseline JPEGs (both decode with libjpeg-turbo).

A truncated JPEG (a partly copied or partly downloaded file) is a corrupt frame: libjpeg would decode the part
that is there, fill the rest with grey and only print "Premature end of JPEG file" without the file name. Before
decoding, JPEG data must hold the end-of-image marker (FF D9) after its last start-of-scan marker (FF DA); both
markers cannot occur inside entropy-coded data (0xFF is byte-stuffed there), so the test has no false alarms on
complete files, trailing padding or an EXIF thumbnail included.
"""

from __future__ import annotations

import os
from typing import Optional

import cv2
import numpy as np

from lib.utils.errors import register_user_error

__all__ = ["imread_rgb", "imdecode_rgb", "jpeg4py_available", "jpeg_is_complete", "FrameReadError"]


@register_user_error
class FrameReadError(IOError):
    """A frame that does not exist or cannot be decoded (the message names the file)."""


_JPEG4PY_OK: Optional[bool] = None


def jpeg4py_available() -> bool:
    """True when jpeg4py imports and its libturbojpeg can be loaded."""
    global _JPEG4PY_OK
    if _JPEG4PY_OK is None:
        try:
            import ctypes

            ctypes.CDLL("libturbojpeg.so.0")  # jpeg4py needs it; probing first avoids its noisy __del__
            import jpeg4py

            jpeg4py.JPEG  # noqa: B018 - attribute access only
            _JPEG4PY_OK = True
            # libturbojpeg is loaded lazily by the first decode; try one tiny image.
            ok, buf = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
            jpeg4py.JPEG(np.frombuffer(buf.tobytes(), np.uint8)).decode()
        except Exception:
            _JPEG4PY_OK = False
    return bool(_JPEG4PY_OK)


def jpeg_is_complete(data: bytes) -> bool:
    """True if JPEG ``data`` holds an end-of-image marker (FF D9) after its last start-of-scan marker (FF DA).

    A file cut anywhere after its headers fails the test (its last EOI, if any, is an embedded thumbnail's,
    which lies before the image's scans). Data without any scan marker returns False too.
    """
    return data.rfind(b"\xff\xd9") > data.rfind(b"\xff\xda") >= 0


def imread_rgb(path: str, backend: str = "auto") -> np.ndarray:
    """Read an image file as an ``(H, W, 3)`` RGB uint8 array.

    Args:
        path: image file.
        backend: ``'auto'`` (jpeg4py for .jpg/.jpeg when available, else OpenCV), ``'jpeg4py'`` or ``'opencv'``.

    Raises:
        FrameReadError: the file is missing, cannot be read or decoded, or is a truncated JPEG.
    """
    if not os.path.isfile(path):
        raise FrameReadError(f"frame '{path}' does not exist")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise FrameReadError(f"frame '{path}' could not be read: {exc}") from exc
    return imdecode_rgb(data, name=path, backend=backend)


def imdecode_rgb(data: bytes, name: str = "<bytes>", backend: str = "auto") -> np.ndarray:
    """Decode encoded image bytes into an ``(H, W, 3)`` RGB uint8 array.

    jpeg4py (libturbojpeg) is used for JPEG data when available (``backend='auto'``), OpenCV otherwise;
    both give the same pixels for baseline JPEGs.

    Raises:
        FrameReadError: the bytes are not a decodable image, or a truncated JPEG (the message names ``name``).
    """
    data = bytes(data)
    is_jpeg = len(data) > 2 and data[:2] == b"\xff\xd8"
    if is_jpeg and not jpeg_is_complete(data):
        raise FrameReadError(f"frame '{name}' is a truncated JPEG ({len(data)} bytes, no end-of-image marker after "
                             f"its last scan): a corrupt or partly copied file")
    buf = np.frombuffer(data, np.uint8)
    return _decode_rgb(buf, is_jpeg, name, backend, lambda: cv2.imdecode(buf, cv2.IMREAD_COLOR))


def _decode_rgb(jpeg_source, is_jpeg: bool, name: str, backend: str, opencv_decode) -> np.ndarray:
    """The one decoder behind :func:`imread_rgb` and :func:`imdecode_rgb`: jpeg4py on ``jpeg_source`` (a uint8
    buffer) for JPEG data when asked or available, else (or when jpeg4py fails under ``'auto'``)
    ``opencv_decode()`` (BGR or None) converted to RGB.

    Raises:
        FrameReadError: not decodable (the message names ``name``).
    """
    if backend == "jpeg4py" or (backend == "auto" and is_jpeg and jpeg4py_available()):
        try:
            import jpeg4py

            img = jpeg4py.JPEG(jpeg_source).decode()
            if img.ndim == 2:
                img = np.stack([img] * 3, axis=-1)
            return img
        except Exception as exc:
            if backend == "jpeg4py":
                raise FrameReadError(f"frame '{name}' could not be decoded by jpeg4py: {exc}") from exc
    img = opencv_decode()
    if img is None:
        raise FrameReadError(f"frame '{name}' could not be decoded (corrupt or not an image)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
