"""Debug views of the trackers: a sink that :meth:`lib.test.tracker.base.BaseTracker.debug_show` feeds.

Two backends share one interface (:class:`DebugSink`):

* :class:`VisdomDebugSink` draws each view as a *block* in a visdom server (pytracking's
  ``pytracking/utils/visdom.py`` conventions): a block is created on first use and shown iff its level
  is <= the debug level; every block but ``'Tracking'`` is listed as a checkbox in the ``'Block List'``
  window, which shows/hides it. Select the ``'Tracking'`` window and press space to pause/resume;
  while paused, the right arrow tracks one frame (visdom key events, received over the server's
  ``/vis_socket``). The sink waits in :meth:`DebugSink.frame_done` / :meth:`DebugSink.wait_if_paused`
  while paused.
* :class:`PngDebugSink` writes the views of level <= the debug level as PNG files
  ``<out_dir>/<tracker>/<config>/<seq>/<frame:05d>_<title>.png`` (``text``/``info_dict`` views go to
  ``<title>.txt``, one line per frame). :func:`make_debug_sink` picks it when no visdom server answers
  and says so once; a visdom sink whose server stops answering switches to it.

Neither backend blocks on a dead server or crashes the run: the server is probed with a short timeout,
HTTP posts time out, the event socket gives up after a few failed reconnects (visdom's own client
retries forever), and a pause ends when the server goes away.

Modes and their data (``level`` is the block's debug level, ``title`` its name and window id):

=============  ============================================================================================
``Tracking``   ``image`` or ``(image, box, box, ...)``: the frame with the predicted box(es) (xywh pixels);
               keyword ``gt_bbox`` (set by ``BaseTracker`` from ``set_debug_ground_truth``, drawn in green)
               and ``labels`` (legend text per predicted box)
``image``      an image: ``(H, W, 3)`` RGB uint8, ``(3, H, W)`` tensor/array, ``(H, W)`` grey; float in [0, 1]
``heatmap``    a 2-D map (numpy or torch, e.g. the ``(1, 1, feat_sz, feat_sz)`` score map); row 0 on top
``featmap``    ``(C, H, W)`` feature maps: the first 16 channels tiled, each normalised
``info_dict``  ``{name: value}``; keys accumulate across calls (pytracking ``VisInfoDict``)
``text``       a string
``lineplot``   ``y`` or ``(y, x)`` 1-D sequences
=============  ============================================================================================
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import logging
import re
import socket
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from lib.utils.misc import atomic_write
from lib.vis.draw import (GT_COLOR, PALETTE, as_2d, colorize_heatmap, draw_boxes, resize_max_side, tile_channels,
                          to_hwc_uint8, to_numpy)

__all__ = ["MODES", "DebugViewWarning", "DebugSink", "PngDebugSink", "VisdomDebugSink", "make_debug_sink",
           "probe_visdom", "default_debug_dir", "render_tracking", "close_visdom_clients"]

logger = logging.getLogger(__name__)

MODES = ("Tracking", "image", "heatmap", "featmap", "info_dict", "text", "lineplot")
"""Modes a debug view may have (pytracking's box-tracker subset; cost volumes and bbreg are not used)."""

HELP_TEXT = ("Pause/resume: select the 'Tracking' window and press space. While paused, the right arrow "
             "tracks one frame. Show/hide a block: tick/untick it in the 'Block List' window.")


class DebugViewWarning(UserWarning):
    """A debug view could not be shown where asked (no visdom server, server lost, bad data, disk error)."""


_WARNED: set = set()
_WARN_LOCK = threading.Lock()


def _warn_once(key: Any, message: str) -> None:
    """Emit ``message`` as a :class:`DebugViewWarning` the first time ``key`` is seen in this process."""
    with _WARN_LOCK:
        if key in _WARNED:
            return
        _WARNED.add(key)
    warnings.warn(message, DebugViewWarning, stacklevel=3)


def default_debug_dir() -> Path:
    """``<save_dir>/debug`` from ``lib/test/evaluation/local.py`` (``./output/debug`` without one)."""
    save_dir = ""
    try:
        from lib.test.evaluation.environment import env_settings

        save_dir = env_settings().save_dir
    except Exception:  # no local.py: the documented default
        pass
    if not save_dir:
        from lib.config import PROJECT_ROOT

        save_dir = str(PROJECT_ROOT / "output")
    return Path(save_dir) / "debug"


def _safe_name(title: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(title)).strip("_") or "view"


def _split_tracking(data: Any) -> Tuple[Any, List[Any]]:
    """``image`` or ``(image, box, ...)`` -> (image, [boxes]) (None entries dropped)."""
    if isinstance(data, (tuple, list)):
        if not data:
            raise ValueError("a 'Tracking' view needs an image")
        return data[0], [b for b in data[1:] if b is not None]
    return data, []


def render_tracking(data: Any, gt_bbox: Optional[Sequence[float]] = None, labels: Optional[Sequence[str]] = None,
                    max_side: Optional[int] = None) -> np.ndarray:
    """The ``'Tracking'`` view: the frame with the ground truth (green) and the predicted boxes
    (red, blue, ... in order) and a legend.

    Args:
        data: ``image`` or ``(image, box, ...)``; boxes xywh pixels of the full-size image.
        gt_bbox: ground-truth box (xywh pixels) or None.
        labels: legend text per predicted box (default ``prediction`` / ``prediction i``).
        max_side: shrink the frame to this longer side first (pytracking shows 480); boxes follow.

    Returns:
        ``(H', W', 3)`` RGB uint8.
    """
    image, preds = _split_tracking(data)
    image = to_hwc_uint8(image)
    scale = 1.0
    if max_side:
        image, scale = resize_max_side(image, max_side)
    if labels is None:
        labels = ["prediction"] if len(preds) == 1 else [f"prediction {i + 1}" for i in range(len(preds))]
    boxes, colors, names = [], [], []
    if gt_bbox is not None:
        boxes.append(gt_bbox), colors.append(GT_COLOR), names.append("ground truth")
    for i, (b, lab) in enumerate(zip(preds, labels)):
        boxes.append(b), colors.append(PALETTE[i % len(PALETTE)]), names.append(str(lab))
    return draw_boxes(image, boxes, colors=colors, labels=names, scale=scale)


@dataclass
class _Block:
    title: str
    mode: str
    level: int
    show: bool
    data: Any = None
    kwargs: Dict[str, Any] = field(default_factory=dict)


class DebugSink:
    """What a tracker's debug views go to (see the module docstring for modes and data).

    Args:
        debug: debug level; blocks of level <= debug are shown.
        tracker_name, config_name, seq_name: identify the run (folders, captions).
        strict: raise on views that cannot be drawn (bad data) instead of warning once per block.

    Attributes:
        frame: index of the current frame (0 = the initialisation frame), advanced by :meth:`frame_done`.
        backend: ``'visdom'`` or ``'png'``.
    """

    backend = "none"

    def __init__(self, debug: int, tracker_name: str = "tracker", config_name: str = "config",
                 seq_name: str = "sequence", strict: bool = False):
        self.debug = int(debug)
        self.tracker_name = str(tracker_name)
        self.config_name = str(config_name)
        self.seq_name = str(seq_name)
        self.strict = bool(strict)
        self.frame = 0
        self.blocks: "OrderedDict[str, _Block]" = OrderedDict()
        self._tracking_this_frame = False
        self._closed = False
        self._lock = threading.RLock()

    # -- the interface the tracker and the runner use ------------------------------------------
    def register(self, data: Any, mode: str, level: int = 0, title: str = "Data", **kwargs) -> None:
        """Show ``data`` as block ``title`` (created on first use with ``mode`` and ``level``).

        A second ``'Tracking'`` view without :meth:`frame_done` in between starts a new frame.

        Raises:
            ValueError: unknown ``mode`` (the message lists :data:`MODES`), or a block re-registered
                with another mode.
        """
        if mode not in MODES:
            raise ValueError(f"unknown debug view mode '{mode}' for '{title}'; known modes: {', '.join(MODES)}")
        if mode == "Tracking":
            if self._tracking_this_frame:
                self.frame_done()
            self._tracking_this_frame = True
        with self._lock:
            block = self.blocks.get(title)
            if block is None:
                block = _Block(title=title, mode=mode, level=int(level), show=int(level) <= self.debug)
                self.blocks[title] = block
                self._on_new_block(block)
            elif block.mode != mode:
                raise ValueError(f"debug view '{title}' was registered as '{block.mode}', now as '{mode}'")
            if mode == "info_dict":
                if not hasattr(data, "items"):
                    if self.strict:
                        raise ValueError(f"an info_dict view needs a mapping, '{title}' got {type(data).__name__}")
                    _warn_once(("bad-data", id(self), title), f"debug view '{title}' (info_dict) needs a mapping, "
                                                               f"got {type(data).__name__}; skipped")
                    return
                merged = OrderedDict(block.data or {})
                merged.update(data.items())
                block.data = merged
            else:
                block.data = data
            block.kwargs = kwargs
            if block.show:
                self._draw_guarded(block)

    def frame_done(self) -> None:
        """End of a frame: wait while paused (visdom), then advance :attr:`frame`."""
        self.wait_if_paused()
        self.frame += 1
        self._tracking_this_frame = False

    def wait_if_paused(self) -> None:
        """Block while the user has paused the run (returns at once for the PNG backend)."""

    def close(self) -> None:
        """Release what the sink holds (idempotent)."""
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- backend hooks ----------------------------------------------------------------------------
    def _on_new_block(self, block: _Block) -> None:
        pass

    def _draw(self, block: _Block) -> None:
        raise NotImplementedError

    def _draw_guarded(self, block: _Block) -> None:
        try:
            self._draw(block)
        except (ValueError, TypeError, IndexError, cv2.error) as exc:
            if self.strict:
                raise
            _warn_once(("bad-data", id(self), block.title),
                       f"debug view '{block.title}' ({block.mode}) could not be drawn and is skipped: {exc}")


class PngDebugSink(DebugSink):
    """Writes the views as files under ``<out_dir>/<tracker>/<config>/<seq>/`` (see the module docstring).

    Images and the Tracking view keep their size; heatmaps and feature maps are colourised (viridis)
    and enlarged to at least 128 px; line plots are drawn with matplotlib. A write error warns once and
    stops the writing; it never raises.
    """

    backend = "png"

    def __init__(self, debug: int, tracker_name: str = "tracker", config_name: str = "config",
                 seq_name: str = "sequence", out_dir: Union[str, Path, None] = None, strict: bool = False):
        super().__init__(debug, tracker_name, config_name, seq_name, strict=strict)
        root = Path(out_dir) if out_dir is not None else default_debug_dir()
        self.seq_dir = root / _safe_name(self.tracker_name) / _safe_name(self.config_name) / _safe_name(self.seq_name)
        self._disabled = False

    def _path(self, title: str, ext: str = ".png") -> Path:
        return self.seq_dir / f"{self.frame:05d}_{_safe_name(title)}{ext}"

    def _write_png(self, path: Path, rgb: np.ndarray) -> None:
        ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OSError(f"PNG encoding of {path.name} failed")
        with atomic_write(path, "wb") as f:
            f.write(buf.tobytes())

    def _draw(self, block: _Block) -> None:
        if self._disabled or self._closed:
            return
        try:
            self._draw_file(block)
        except OSError as exc:
            self._disabled = True
            _warn_once(("png-write", str(self.seq_dir)),
                       f"debug views could not be written under '{self.seq_dir}' ({exc}); no more are written")

    def _draw_file(self, block: _Block) -> None:
        mode, data, kw = block.mode, block.data, block.kwargs
        if mode == "Tracking":
            self._write_png(self._path(block.title), render_tracking(data, kw.get("gt_bbox"), kw.get("labels")))
        elif mode == "image":
            self._write_png(self._path(block.title), to_hwc_uint8(data))
        elif mode == "heatmap":
            self._write_png(self._path(block.title), colorize_heatmap(data, min_side=128))
        elif mode == "featmap":
            self._write_png(self._path(block.title), colorize_heatmap(tile_channels(data), min_side=128))
        elif mode in ("text", "info_dict"):
            if mode == "text":
                line = str(data).replace("\n", " | ")
            else:
                line = ", ".join(f"{k}={_fmt_value(v)}" for k, v in data.items())
            self.seq_dir.mkdir(parents=True, exist_ok=True)
            with open(self.seq_dir / f"{_safe_name(block.title)}.txt", "a") as f:
                f.write(f"frame {self.frame:05d}: {line}\n")
        elif mode == "lineplot":
            self._write_png(self._path(block.title), _lineplot_png(data, block.title))


def _fmt_value(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, (str, int, np.integer, bool)):
        return str(value)
    try:
        return f"{float(to_numpy(value)):.4f}"
    except (TypeError, ValueError):
        return str(value)


def _line_xy(data: Any) -> Tuple[np.ndarray, np.ndarray]:
    if isinstance(data, (tuple, list)) and len(data) == 2 and np.ndim(to_numpy(data[0])) >= 1:
        y = np.asarray(to_numpy(data[0]), dtype=np.float64).reshape(-1)
        x = np.asarray(to_numpy(data[1]), dtype=np.float64).reshape(-1)
    else:
        y = np.asarray(to_numpy(data), dtype=np.float64).reshape(-1)
        x = np.arange(len(y), dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f"lineplot: x has {len(x)} values, y has {len(y)}")
    return y, x


def _lineplot_png(data: Any, title: str) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    y, x = _line_xy(data)
    fig = Figure(figsize=(4, 3), dpi=80)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(x, y)
    ax.set_title(title)
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


# ---------------------------------------------------------------------------------------------------
# visdom
# ---------------------------------------------------------------------------------------------------
def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _http_session(host: str):
    import requests

    s = requests.Session()
    s.trust_env = not _is_loopback(host)  # no proxy detour for a local server
    return s


def probe_visdom(server: str = "127.0.0.1", port: int = 8097, timeout_s: float = 0.5) -> Optional[str]:
    """Check quickly whether a visdom server answers at ``server:port``.

    A TCP connect with ``timeout_s``, then visdom's ``POST /env_state`` (which lists its environments).

    Returns:
        None when a visdom server answers, else the reason in words.
    """
    import requests

    host = server.split("://", 1)[-1].rstrip("/")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        return f"nothing answers at {host}:{port} ({exc})"
    try:
        with _http_session(host) as s:
            r = s.post(f"http://{host}:{port}/env_state", data="{}", timeout=(timeout_s, max(2.0, 4 * timeout_s)))
        envs = r.json() if r.status_code == 200 else None
    except (requests.RequestException, ValueError) as exc:
        return f"{host}:{port} answers, but not as a visdom server ({exc})"
    if not isinstance(envs, list):
        return f"{host}:{port} answers, but not as a visdom server (HTTP {r.status_code})"
    return None


_CLIENTS: Dict[Tuple[str, int, str], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _client_class():
    """visdom.Visdom with bounded networking (built lazily: importing visdom is slow)."""
    import visdom
    import websocket

    class BoundedVisdom(visdom.Visdom):
        """``visdom.Visdom`` whose HTTP posts time out and whose event socket stops after
        ``max_reconnects`` failed connections (or :meth:`shutdown`) instead of retrying forever."""

        max_reconnects = 3

        def __init__(self, host: str, port: int, env: str, timeout_s: float = 5.0):
            self._post_timeout = float(timeout_s)
            self._http = _http_session(host)
            self._stop = threading.Event()
            self._ws = None
            self._ws_thread: Optional[threading.Thread] = None
            self._round_alive = False
            super().__init__(server=f"http://{host}", port=int(port), env=env, raise_exceptions=True,
                             use_incoming_socket=True)

        def _handle_post(self, url, data=None):
            return self._http.post(url, data=data if data is not None else {}, timeout=self._post_timeout).text

        def _on_ws_message(self, ws, message):
            try:
                msg = json.loads(message)
            except ValueError:
                return
            if msg.get("command") == "alive" and msg.get("data") == "vis_alive":
                self.socket_alive = True
                self.socket_connection_achieved = True
                self._round_alive = True
            target = msg.get("target")
            if target is not None:
                for handler in list(self.event_handlers.get(target, [])):
                    try:
                        handler(msg)
                    except Exception:  # a handler must not kill the socket thread
                        logger.exception("debug view event handler failed on %s", msg.get("event_type"))

        def setup_socket(self, polling=False):
            url = f"ws://{self.server_base_name}:{self.port}{self.base_url}/vis_socket"

            def on_close(ws, *args):
                self.socket_alive = False

            def on_error(ws, error):
                logger.debug("visdom event socket: %s", error)

            def run():
                failures = 0
                while not self._stop.is_set():
                    self._round_alive = False
                    ws = websocket.WebSocketApp(url, on_message=self._on_ws_message, on_close=on_close,
                                                on_error=on_error)
                    self._ws = ws
                    try:
                        ws.run_forever()
                    except Exception as exc:  # pragma: no cover - websocket-client internals
                        logger.debug("visdom event socket stopped: %s", exc)
                    self.socket_alive = False
                    if self._stop.is_set():
                        break
                    failures = 0 if self._round_alive else failures + 1
                    if failures >= self.max_reconnects:
                        logger.info("visdom event socket at %s gave up after %d failed connections", url, failures)
                        break
                    self._stop.wait(1.0)
                self.use_socket = False  # also ends visdom's start-up wait early

            self._ws_thread = threading.Thread(target=run, name="visdom-debug-socket", daemon=True)
            self._ws_thread.start()

        def usable(self) -> bool:
            return (not self._stop.is_set() and self._ws_thread is not None and self._ws_thread.is_alive()
                    and self.socket_alive)

        def shutdown(self) -> None:
            self._stop.set()
            ws = self._ws
            if ws is not None:
                try:
                    ws.close()
                except Exception:  # pragma: no cover
                    pass
            if self._ws_thread is not None and self._ws_thread is not threading.current_thread():
                self._ws_thread.join(timeout=2.0)
            self._http.close()

    return BoundedVisdom


def _get_client(host: str, port: int, env: str, timeout_s: float):
    key = (host, int(port), env)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is not None and client.usable():
            return client
        if client is not None:
            client.shutdown()
        client = _client_class()(host, port, env, timeout_s=timeout_s)
        _CLIENTS[key] = client
        return client


def close_visdom_clients() -> None:
    """Stop every visdom client this process opened (also run at exit)."""
    with _CLIENTS_LOCK:
        clients = list(_CLIENTS.values())
        _CLIENTS.clear()
    for c in clients:
        c.shutdown()


atexit.register(close_visdom_clients)


class VisdomDebugSink(DebugSink):
    """Draws the views as blocks in a visdom server (see the module docstring).

    Args:
        client: a connected client from :func:`make_debug_sink` (shared by the sinks of one process).
        env: visdom environment the windows go to.
        fallback: called with the reason when the server stops answering; returns the sink that takes
            over (the factory passes a :class:`PngDebugSink` maker).
        max_side: the 'Tracking' frame is shrunk to this longer side (pytracking: 480).
    """

    backend = "visdom"
    BLOCK_LIST = "block_list"
    TRACKING = "Tracking"

    def __init__(self, debug: int, client, tracker_name: str = "tracker", config_name: str = "config",
                 seq_name: str = "sequence", env: str = "main",
                 fallback: Optional[Callable[[str], DebugSink]] = None, max_side: int = 480, strict: bool = False,
                 show_help: bool = True):
        super().__init__(debug, tracker_name, config_name, seq_name, strict=strict)
        self.vis = client
        self.env = env
        self.max_side = int(max_side)
        self.paused = False
        self._step = False
        self._fallback_factory = fallback
        self._fallback: Optional[DebugSink] = None
        self.block_list: List[Dict[str, Any]] = []
        # this sink now owns the shared client's UI events
        client.event_handlers[self.BLOCK_LIST] = [self._on_block_list]
        client.event_handlers[self.TRACKING] = [self._on_key]
        self._send(lambda: client.properties(self.block_list, win=self.BLOCK_LIST, env=env,
                                             opts={"title": "Block List"}))
        if not client.socket_alive:
            _warn_once(("no-socket", client.server, client.port),
                       "the visdom event socket is not connected: pause/step and Block List toggles are off")
        if show_help:
            self.register(f"{self.tracker_name} / {self.config_name} / {self.seq_name}<br>{HELP_TEXT}",
                          "text", 1, "Help")

    # -- UI events (socket thread) ------------------------------------------------------------------
    def _on_key(self, event: Dict[str, Any]) -> None:
        if event.get("event_type") != "KeyPress":
            return
        key = event.get("key")
        with self._lock:
            if key == " ":
                self.paused = not self.paused
                self._step = False
                logger.info("debug view %s", "paused" if self.paused else "resumed")
            elif key == "ArrowRight" and self.paused:
                self._step = True

    def _on_block_list(self, event: Dict[str, Any]) -> None:
        if event.get("event_type") != "PropertyUpdate":
            return
        with self._lock:
            idx = int(event.get("propertyId", -1))
            if not 0 <= idx < len(self.block_list):
                return
            entry = self.block_list[idx]
            entry["value"] = bool(event.get("value"))
            block = self.blocks.get(entry["name"])
            if block is None:
                return
            block.show = entry["value"]
            if block.show:
                if block.data is not None:
                    self._draw_guarded(block)
            else:
                self._send(lambda: self.vis.close(win=block.title, env=self.env))
            self._send(lambda: self.vis.properties(self.block_list, win=self.BLOCK_LIST, env=self.env,
                                                   opts={"title": "Block List"}))

    # -- drawing ------------------------------------------------------------------------------------
    def register(self, data: Any, mode: str, level: int = 0, title: str = "Data", **kwargs) -> None:
        if self._fallback is not None:
            if mode == "Tracking":
                if self._tracking_this_frame:
                    self.frame_done()
                self._tracking_this_frame = True
            self._fallback.frame = self.frame  # the fallback numbers files by this sink's frames
            self._fallback._tracking_this_frame = False
            self._fallback.register(data, mode, level, title, **kwargs)
            return
        super().register(data, mode, level, title, **kwargs)

    def _on_new_block(self, block: _Block) -> None:
        if block.title != self.TRACKING:
            self.block_list.append({"type": "checkbox", "name": block.title, "value": block.show})
            self._send(lambda: self.vis.properties(self.block_list, win=self.BLOCK_LIST, env=self.env,
                                                   opts={"title": "Block List"}))

    def _draw(self, block: _Block) -> None:
        vis, env, title, data, kw = self.vis, self.env, block.title, block.data, block.kwargs
        opts = {"title": title}
        if block.mode == "Tracking":
            img = render_tracking(data, kw.get("gt_bbox"), kw.get("labels"), max_side=self.max_side)
            opts["caption"] = kw.get("caption", f"{self.seq_name}  frame {self.frame}")
            self._send(lambda: vis.image(np.transpose(img, (2, 0, 1)), win=title, env=env, opts=opts))
        elif block.mode == "image":
            img = to_hwc_uint8(data)
            self._send(lambda: vis.image(np.transpose(img, (2, 0, 1)), win=title, env=env, opts=opts))
        elif block.mode in ("heatmap", "featmap"):
            arr = tile_channels(data) if block.mode == "featmap" else as_2d(data)
            self._send(lambda: vis.heatmap(np.ascontiguousarray(np.flipud(arr)), win=title, env=env, opts=opts))
        elif block.mode == "info_dict":
            html = "".join(f"<b>{str(k).replace('_', ' ')}</b>: {_fmt_value(v)}<br>" for k, v in data.items())
            self._send(lambda: vis.text(html, win=title, env=env, opts=opts))
        elif block.mode == "text":
            self._send(lambda: vis.text(str(data), win=title, env=env, opts=opts))
        elif block.mode == "lineplot":
            y, x = _line_xy(data)
            self._send(lambda: vis.line(Y=y, X=x, win=title, env=env, opts=opts))

    def _send(self, call: Callable[[], Any]) -> Any:
        """Run one client call; on a connection failure switch to the fallback (warned once)."""
        if self._fallback is not None or self._closed:
            return None
        import requests

        try:
            return call()
        except (ConnectionError, OSError, requests.RequestException) as exc:
            self._lose_server(f"the visdom server at {self.vis.server}:{self.vis.port} stopped answering ({exc})")
            return None

    def _lose_server(self, reason: str) -> None:
        if self._fallback is not None:
            return
        self.paused = False
        fb = self._fallback_factory(reason) if self._fallback_factory is not None else None
        self._fallback = fb if fb is not None else _NullSink(self.debug)
        self._fallback.frame = self.frame
        where = f"; debug views now go to '{fb.seq_dir}'" if isinstance(fb, PngDebugSink) else ""
        _warn_once(("lost", self.vis.server, self.vis.port), reason + where)

    def wait_if_paused(self) -> None:
        """Wait while paused; a right-arrow step or a resume ends the wait, and so does losing the
        server (or its event socket for more than 3 s)."""
        lost_since = None
        while self.paused and not self._closed and self._fallback is None:
            with self._lock:
                if self._step:
                    self._step = False
                    return
            if not self.vis.socket_alive:
                lost_since = lost_since or time.monotonic()
                if time.monotonic() - lost_since > 3.0:
                    self.paused = False
                    _warn_once(("pause-lost", self.vis.server, self.vis.port),
                               "the visdom event socket closed while paused: the run goes on")
                    return
            else:
                lost_since = None
            time.sleep(0.05)

    def close(self) -> None:
        """Detach this sink's UI handlers (the shared client stays open for the next sequence)."""
        if self._closed:
            return
        super().close()
        for target, handler in ((self.BLOCK_LIST, self._on_block_list), (self.TRACKING, self._on_key)):
            handlers = self.vis.event_handlers.get(target, [])
            if handler in handlers:
                handlers.remove(handler)
        if self._fallback is not None:
            self._fallback.close()


class _NullSink(DebugSink):
    backend = "none"

    def _draw(self, block: _Block) -> None:
        pass


PROBE_RETRY_S = 30.0
"""After a failed probe, the next sinks for that address go straight to PNG for this many seconds."""
_PROBE_FAILED: Dict[Tuple[str, int], Tuple[float, str]] = {}


def make_debug_sink(debug_level: int, tracker_name: str, config_name: str, seq_name: str,
                    visdom_server: str = "127.0.0.1", visdom_port: int = 8097,
                    out_dir: Union[str, Path, None] = None, use_visdom: bool = True, env: str = "main",
                    probe_timeout_s: float = 0.5, post_timeout_s: float = 5.0,
                    strict: bool = False) -> Optional[DebugSink]:
    """The debug sink of one sequence: visdom when a server answers at ``visdom_server:visdom_port``,
    else PNG files under ``<out_dir>/<tracker>/<config>/<seq>/`` (said once per process and address).

    Args:
        debug_level: ``--debug`` value; 0 returns None (no sink, no cost).
        tracker_name, config_name, seq_name: the run (PNG folders, captions).
        visdom_server, visdom_port: where the server listens (``--visdom_server``, ``--visdom_port``).
        out_dir: PNG root (default :func:`default_debug_dir`, ``<save_dir>/debug``).
        use_visdom: False writes PNG files without trying visdom.
        env: visdom environment.
        probe_timeout_s: connect timeout of the probe; post_timeout_s: timeout of each HTTP post.

    Returns:
        A :class:`VisdomDebugSink` or :class:`PngDebugSink`, or None for ``debug_level <= 0``.
    """
    if int(debug_level) <= 0:
        return None
    root = Path(out_dir) if out_dir is not None else default_debug_dir()

    def png(reason: Optional[str] = None) -> PngDebugSink:
        return PngDebugSink(debug_level, tracker_name, config_name, seq_name, out_dir=root, strict=strict)

    host = str(visdom_server).split("://", 1)[-1].rstrip("/")
    if use_visdom:
        key = (host, int(visdom_port))
        last_fail = _PROBE_FAILED.get(key)
        if last_fail is not None and time.monotonic() - last_fail[0] < PROBE_RETRY_S:
            reason = last_fail[1]  # do not pay the probe timeout again for every sequence
        else:
            reason = probe_visdom(host, visdom_port, timeout_s=probe_timeout_s)
            if reason is None:
                _PROBE_FAILED.pop(key, None)
            else:
                _PROBE_FAILED[key] = (time.monotonic(), reason)
        if reason is None:
            try:
                client = _get_client(host, int(visdom_port), env, post_timeout_s)
                return VisdomDebugSink(debug_level, client, tracker_name, config_name, seq_name, env=env,
                                       fallback=png, strict=strict)
            except Exception as exc:  # any failure to connect: fall back, never crash the run
                reason = f"connecting to the visdom server at {host}:{visdom_port} failed ({exc})"
        _warn_once(("no-visdom", host, int(visdom_port)),
                   f"{reason}; debug views are written as PNG files under "
                   f"'{root / _safe_name(tracker_name) / _safe_name(config_name)}/<sequence>/' "
                   f"(start a server with: python -m visdom.server -port {visdom_port})")
    return png()
