"""``--live``: the command's side of the live view — the page's port, the hub process, ``$JSCEC_LIVE``."""
from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

from jscec.errors import UserError
from link.live import ENV

#: The page's port when ``--live-port`` is not given.
DEFAULT_PORT = 8765
#: Seconds the hub may take to start.
START_TIMEOUT_S = 30.0


def listen(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:``port`` (0: any free port); a port in use is refused in one line."""
    if not 0 <= int(port) <= 65535:
        raise UserError(f"--live-port takes 0–65535, got {port}")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # not a listening one: only TIME_WAIT
        sock.bind(("127.0.0.1", int(port)))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise UserError(f"live view: cannot serve on 127.0.0.1:{port} ({exc.strerror or exc}); pick another "
                        "port with --live-port PORT (0: any free port)") from None
    return sock


class LiveView:
    """The live view of whatever runs inside ``with LiveView(port):`` in this process and its children.

    Entering binds the page's port (refusing a busy one), starts the hub (``python -m link.live``) on
    it, sets ``$JSCEC_LIVE`` for the processes the run starts and prints the page's address; leaving
    stops the hub (the page keeps what it shows and says the command ended)."""

    def __init__(self, port: int = DEFAULT_PORT, log=print):
        self.port = int(port)
        self.log = log
        self.url = None
        self.address = None
        self.proc = None
        self._old_env = None

    def __enter__(self):
        sock = listen(self.port)
        root = Path(__file__).resolve().parents[2]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
        env.pop(ENV, None)
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "link.live", "--http-fd", str(sock.fileno())],
                                         pass_fds=(sock.fileno(),), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         cwd=root, env=env, text=True)
            self.port = sock.getsockname()[1]
        finally:
            sock.close()      # the hub holds it now
        self.address = self._ready()
        self._old_env = os.environ.get(ENV)
        os.environ[ENV] = self.address
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log(f"live view: {self.url}")
        sys.stdout.flush()
        return self

    def _ready(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise UserError(f"live view: its server exited at start (exit code {self.proc.returncode})")
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                line = self.proc.stdout.readline().strip()
                if line.startswith("ready "):
                    return line.split(" ", 1)[1]
        self._stop()
        raise UserError(f"live view: its server did not start within {START_TIMEOUT_S:.0f} s")

    def _stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()       # the hub folds in the last messages, tells the pages, exits
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()

    def __exit__(self, *exc):
        from link.live import publisher

        pub = publisher()
        if pub is not None:
            pub.close()             # this process's last messages leave before the hub stops
        if self._old_env is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = self._old_env
        self._stop()
        return False
