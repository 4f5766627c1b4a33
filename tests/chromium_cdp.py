"""A minimal headless-Chromium driver for tests: start Debian's ``chromium`` with a fresh profile, talk
to the page over the DevTools protocol (a websocket), evaluate JavaScript, take a screenshot."""

import base64
import itertools
import json
import subprocess
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class HeadlessChromium:
    """``with HeadlessChromium(url, profile_dir) as page: page.evaluate(js); page.screenshot()``."""

    def __init__(self, url: str, profile_dir: Path, width: int = 1600, height: int = 1400, timeout_s: float = 30.0):
        self.profile = Path(profile_dir)
        self.profile.mkdir(parents=True, exist_ok=True)
        cmd = [CHROMIUM] + FLAGS + [f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
                                    "--remote-debugging-address=127.0.0.1", f"--window-size={width},{height}", url]
        self.log_path = self.profile.parent / f"{self.profile.name}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._log)
        self._ids = itertools.count(1)
        self.ws = None
        try:
            port = self._devtools_port(timeout_s)
            self.ws = self._connect_page(port, timeout_s)
            self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                      mobile=False)
        except BaseException:
            self.close()
            raise

    def _devtools_port(self, timeout_s: float) -> int:
        marker = self.profile / "DevToolsActivePort"
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited: {self.log_path.read_text(errors='replace')[-2000:]}")
            if marker.is_file():
                text = marker.read_text().split()
                if text:
                    return int(text[0])
            time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port")

    def _connect_page(self, port: int, timeout_s: float):
        import websocket

        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                pages = [t for t in json.loads(r.read()) if t.get("type") == "page"]
            if pages:
                return websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=timeout_s,
                                                   suppress_origin=True)
            time.sleep(0.1)
        raise TimeoutError("chromium opened no page")

    def call(self, method: str, **params):
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression: str):
        """Value of a JavaScript expression (JSON-serialisable)."""
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return res.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout_s: float = 30.0, interval_s: float = 0.2) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.evaluate(expression):
                return True
            time.sleep(interval_s)
        return bool(self.evaluate(expression))

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self) -> None:
        if self.ws is not None:
            try:
                self.ws.close()
            except Exception:
                pass
            self.ws = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
