"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``): no
websocket, no extra package. Enough for the tests: open a page, evaluate JavaScript, take a screenshot."""
from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _high(fd: int, lowest: int = 10) -> int:
    """``fd`` moved to a number ≥ ``lowest``."""
    import fcntl

    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest)
    os.close(fd)
    return new


class Browser:
    """One headless Chromium with one page. ``evaluate(js)`` returns the expression's value (JSON)."""

    def __init__(self, width: int = 1400, height: int = 1700):
        binary = chromium_binary()
        if binary is None:
            raise FileNotFoundError("no chromium binary")
        self._profile = tempfile.mkdtemp(prefix="jscec-chromium-")
        cmd_r, self._cmd_w = os.pipe()      # our commands → the browser's fd 3
        self._res_r, res_w = os.pipe()      # the browser's fd 4 → our replies
        cmd_r, res_w = _high(cmd_r), _high(res_w)   # never 3 or 4 themselves
        flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-extensions", "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe",
                 f"--user-data-dir={self._profile}", f"--window-size={width},{height}", "about:blank"]
        # bash puts the pipes on fds 3 and 4, where --remote-debugging-pipe expects them.
        self.proc = subprocess.Popen(["/bin/bash", "-c", f'exec "$0" "$@" 3<&{cmd_r} 4>&{res_w} {cmd_r}<&- {res_w}>&-',
                                      binary, *flags], pass_fds=(cmd_r, res_w), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(res_w)
        self._buf = b""
        self._id = 0
        self.session = None
        self.width, self.height = width, height

    def call(self, method: str, params: dict | None = None, *, session: bool = True, timeout: float = 30.0) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise TimeoutError(f"{method}: no reply from chromium")
            r, _, _ = select.select([self._res_r], [], [], left)
            if r:
                chunk = os.read(self._res_r, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed its pipe")
                self._buf += chunk

    def open(self, url: str) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                         "deviceScaleFactor": 1, "mobile": False})
        self.call("Page.enable")
        self.call("Page.navigate", {"url": url})
        if not self.wait_for(f"document.readyState === 'complete' && location.href === {json.dumps(url)}"):
            raise TimeoutError(f"{url} did not load")

    def evaluate(self, expression: str):
        res = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in res:
            raise RuntimeError(f"JavaScript: {res['exceptionDetails'].get('text')} in {expression[:80]}")
        return res["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0, every: float = 0.1):
        """Evaluate ``expression`` until it is truthy; its value (None after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(every)
        return None

    def screenshot(self, path) -> None:
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.call("Browser.close", session=False, timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._cmd_w, self._res_r):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
