"""``--live``: the command's side of the live view — the page's port, the hub process, ``$JSCEC_LIVE``."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from jscec.errors import UserError
from link.live import ENV

#: The page's port when ``--live-port`` is not given.
DEFAULT_PORT = 8765
#: Seconds a command waits for the hub to end after the run.
STOP_TIMEOUT_S = 5.0


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

    Entering binds the page's port (refusing a busy one), starts the hub (``python -m link.live``) on it
    without waiting for it (a page's requests wait in the socket's queue; messages in ZMQ's until the hub
    binds its address, a socket in a private folder), sets ``$JSCEC_LIVE`` for the processes the run
    starts and prints the page's address. Leaving lets this process's last messages out and closes the
    hub's input: the hub folds them in, tells the pages the command ended (they keep what they show)
    and exits (~0.1 s)."""

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
        folder = tempfile.mkdtemp(prefix="jscec-live-")          # 0700: only this user reaches the hub
        self.address = f"ipc://{folder}/hub"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
        env.pop(ENV, None)
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "link.live", "--http-fd", str(sock.fileno()),
                                          "--zmq", self.address], pass_fds=(sock.fileno(),), stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, cwd=root, env=env)
            self.port = sock.getsockname()[1]
        except OSError as exc:
            os.rmdir(folder)
            raise UserError(f"live view: cannot start its server ({exc.strerror or exc})") from None
        finally:
            sock.close()      # the hub holds it now
        self._old_env = os.environ.get(ENV)
        os.environ[ENV] = self.address
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log(f"live view: {self.url}")
        sys.stdout.flush()
        return self

    def __exit__(self, *exc):
        from link.live import publisher

        pub = publisher()
        if pub is not None:
            pub.close()             # this process's last messages leave before the hub stops
        if self._old_env is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = self._old_env
        if self.proc is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                rc = self.proc.wait(STOP_TIMEOUT_S)     # ~0.1 s: the last messages in, the pages told
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
            if rc != 0 and not any(exc):
                self.log(f"warning: the live view's server failed (exit code {rc})")
        return False

    def wait(self, timeout_s: float = 10.0) -> int | None:
        """The hub's exit status once it ended (None: still running after ``timeout_s``)."""
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None
