"""The live view's hub: ``python -m link.live --http-fd FD`` (started by :class:`link.live.view.LiveView`).

It reads the run's messages on a ZMQ PULL socket it binds at ``--zmq`` (an ``ipc://`` socket in a private
folder the command made, removed at exit), folds them into a :class:`link.live.state.LiveState`, and serves,
on the listening socket it inherits (``--http-fd``, bound to 127.0.0.1 by the command):

* ``/`` — the page (``link/live/page.html``: plain JavaScript drawing on canvases, nothing fetched from elsewhere);
* ``/api/snapshot`` — everything the page draws, as JSON;
* ``/api/events?since=SEQ`` — server-sent events: each a JSON list of updates after ``SEQ`` (an
  ``event: reset`` when the hub's log no longer reaches back that far: fetch a snapshot again);
* ``/image/RUN/ROLE/INDEX.png`` — a decoded image (``bob``/``eve``) or the transmitted one (``original``).

Requests whose ``Host`` is not this address (another site's page reaching 127.0.0.1 by DNS
rebinding) are refused. It stops when its standard input closes (the command ended or died),
after the last messages are folded in and the pages told.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from link.live.state import LiveState

#: Seconds between the hub's flushes of updates to the pages (at most).
FLUSH_S = 0.05
#: Seconds an idle event stream waits before a keep-alive comment.
KEEPALIVE_S = 10.0
_IMAGE = re.compile(r"^/image/([0-9A-Za-z_-]+)/(bob|eve|original)/(\d+)\.png$")


class Hub:
    def __init__(self, http_sock: socket.socket):
        self.state = LiveState()
        self.stopping = threading.Event()
        self.page = (Path(__file__).with_name("page.html")).read_bytes()
        port = http_sock.getsockname()[1]
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self), bind_and_activate=False)
        self.server.socket.close()
        self.server.socket = http_sock
        self.server.server_address = http_sock.getsockname()
        self.server.daemon_threads = True

    def serve(self):
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="jscec-live-http",
                         daemon=True).start()

    def pump(self, pull) -> None:
        """Fold messages into the state, flushing updates ≤ ``FLUSH_S`` apart, until ``stopping``."""
        import zmq

        last_flush = 0.0
        while True:
            if pull.poll(int(FLUSH_S * 1000)):
                for _ in range(5000):
                    try:
                        parts = pull.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    try:
                        head = json.loads(parts[0])
                    except ValueError:
                        continue
                    self.state.apply(head, parts[1] if len(parts) > 1 else b"")
            now = time.monotonic()
            if now - last_flush >= FLUSH_S:
                self.state.flush()
                last_flush = now
            if self.stopping.is_set():
                return

    def close(self) -> None:
        """Tell the pages (the last updates and ``closed``), then stop serving."""
        with self.state.lock:
            self.state.pending.append({"type": "closed"})
        self.state.flush()
        with self.state.lock:
            self.state.closed = True
            self.state.changed.notify_all()
        time.sleep(0.05)     # let the event streams send it
        self.server.shutdown()


def _handler(hub: Hub):
    class Handler(BaseHTTPRequestHandler):
        server_version = "jscec-live"

        def log_message(self, *args):      # quiet: the command's output is the run's
            pass

        def _send(self, code: int, body: bytes, ctype: str, cache: str = "no-store"):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", cache)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.headers.get("Host") not in hub.hosts:
                self._send(403, b"forbidden\n", "text/plain")
                return
            url = urlsplit(self.path)
            try:
                if url.path in ("/", "/index.html"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(hub.page)))
                    self.send_header("Cache-Control", "no-store")
                    self.send_header("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; "
                                     "style-src 'unsafe-inline'; img-src 'self'; connect-src 'self'")
                    self.end_headers()
                    self.wfile.write(hub.page)
                elif url.path == "/api/snapshot":
                    self._send(200, hub.state.snapshot_json(), "application/json")
                elif url.path == "/api/events":
                    since = parse_qs(url.query).get("since", ["0"])[0]
                    self._events(int(since) if since.lstrip("-").isdigit() else 0)
                elif url.path == "/api/health":
                    self._send(200, b"ok\n", "text/plain")
                elif (m := _IMAGE.match(url.path)) is not None:
                    png = hub.state.png(m.group(1), m.group(2), int(m.group(3)))
                    if png is None:
                        self._send(404, b"no such image\n", "text/plain")
                    else:
                        self._send(200, png, "image/png", cache="max-age=3600")
                else:
                    self._send(404, b"not found\n", "text/plain")
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _events(self, cursor: int):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            st = hub.state
            while True:
                with st.changed:
                    st.changed.wait_for(lambda: st.seq > cursor or st.closed, timeout=KEEPALIVE_S)
                    seq, ups = st.since(cursor)
                    closed = st.closed
                if ups is None:
                    chunk = "event: reset\ndata: {}\n\n"
                elif ups:
                    chunk = f"id: {seq}\ndata: [{','.join(ups)}]\n\n"
                else:
                    chunk = ": keep-alive\n\n"
                cursor = seq
                self.wfile.write(chunk.encode())
                self.wfile.flush()
                if closed:
                    return

    return Handler


def main(argv=None) -> int:
    import zmq

    p = argparse.ArgumentParser(prog="python -m link.live", description=__doc__.splitlines()[0])
    p.add_argument("--http-fd", type=int, required=True, help="listening socket (bound to 127.0.0.1) to serve on")
    p.add_argument("--zmq", required=True, help="ZMQ address to bind for the run's messages (ipc:// in a private folder)")
    args = p.parse_args(argv)
    http_sock = socket.socket(fileno=args.http_fd)
    hub = Hub(http_sock)
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVHWM, 20000)
    pull.setsockopt(zmq.LINGER, 0)
    try:
        pull.bind(args.zmq)
    except zmq.ZMQError as exc:
        print(f"live view: cannot bind {args.zmq}: {exc}", file=sys.stderr)
        return 2
    hub.serve()

    def wait_stdin():
        try:
            while sys.stdin.buffer.read(65536):
                pass
        except OSError:
            pass
        hub.stopping.set()

    threading.Thread(target=wait_stdin, name="jscec-live-stdin", daemon=True).start()
    hub.pump(pull)
    deadline = time.monotonic() + 0.5          # the messages still on their way
    while time.monotonic() < deadline and pull.poll(20):
        try:
            parts = pull.recv_multipart(zmq.NOBLOCK)
            hub.state.apply(json.loads(parts[0]), parts[1] if len(parts) > 1 else b"")
        except (zmq.Again, ValueError):
            pass
    hub.close()
    pull.close()
    ctx.term()
    folder = Path(args.zmq.removeprefix("ipc://")).parent
    if args.zmq.startswith("ipc://") and folder.name.startswith("jscec-live-"):
        shutil.rmtree(folder, ignore_errors=True)       # the private folder of the socket
    return 0
