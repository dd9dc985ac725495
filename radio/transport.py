"""ZMQ transport between the Python endpoints and the GNU Radio flowgraphs (no GNU Radio import).

All traffic is PUSH/PULL (PUB/SUB would drop the first messages: slow joiner):

* **Symbols into the TX flowgraph**: raw complex64 items, what gr-zeromq's ``pull_source`` with
  ``pass_tags=False`` expects (8 bytes per item, no header). :class:`SymbolSender` binds (GNU Radio
  3.10.5 sources always connect).
* **Synchronised frames out of the RX flowgraph** are PMT PDUs: GNU Radio's wire format, so their code
  lives in :mod:`flowgraphs.pdu`.
* A control channel (:class:`ControlSocket`) carries small JSON messages from the runner to the
  receivers (``{"end": true, ...}`` once the flowgraph has drained).
* :class:`Drain` stands in for a receiver that went away: gr-zeromq's ``push_msg_sink`` (and any bound
  PUSH socket) blocks until a reader connects, which would stall the flowgraph and its stop.

:func:`check_address` refuses, in one line, an address a process can neither bind nor connect to
before anything else starts.

The interface reference (``docs/interface.md``) describes every endpoint and message format.
"""
from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass

import numpy as np
import zmq

from jscec.errors import UserError


def free_tcp_address(host: str = "127.0.0.1") -> str:
    """A ``tcp://host:port`` address whose port was free a moment ago (for local loopback runs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return f"tcp://{host}:{s.getsockname()[1]}"


def check_address(address: str, *, bind: bool, what: str = "address") -> None:
    """Refuse (``UserError``, one line naming ``what``) a ZMQ address this process cannot ``bind`` (a busy
    port, a host that is not ours) or connect to (not ``tcp://HOST:PORT``/``ipc://PATH``, an unknown host).

    A bind is tried on a private context, closed again before this returns (the caller binds it for
    real right after; another process could take the port in between — rare, and then its own bind fails).
    """
    scheme, sep, rest = str(address).partition("://")
    usage = "tcp://HOST:PORT or ipc://PATH"
    if not sep or scheme not in ("tcp", "ipc") or not rest:
        raise UserError(f"{what} {address!r} is not a ZMQ address between processes ({usage})")
    if scheme == "tcp":
        host, colon, port = rest.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UserError(f"{what} {address!r} is not a ZMQ address between processes ({usage}, port 1-65535)")
        if not bind:   # (a bind names an interface or address: ZMQ itself says what is wrong)
            try:
                socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError):
                raise UserError(f"{what} {address}: unknown host {host!r}") from None
    ctx = zmq.Context(1)
    try:
        sock = ctx.socket(zmq.PULL)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.bind(address) if bind else sock.connect(address)
        except zmq.ZMQError as exc:
            raise UserError(f"cannot {'bind' if bind else 'connect'} {what} {address}: {exc.strerror}") from None
        finally:
            sock.close()
    finally:
        ctx.term()   # waits for the socket's listener to close: the port is free again


class Drain:
    """Connects a PULL socket to ``address`` and discards what arrives, in a thread, until :meth:`close`
    (``received``: how many messages it took). A stand-in for a reader that died."""

    def __init__(self, address: str):
        self.address = address
        self.received = 0
        self._stop = threading.Event()
        self._sock = zmq.Context.instance().socket(zmq.PULL)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(address)
        self._thread = threading.Thread(target=self._run, name="jscec-drain", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self._sock.poll(100):
                    self._sock.recv()
                    self.received += 1
        finally:
            self._sock.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class SymbolSender:
    """Alice's side of the TX flowgraph's ``pull_source``: binds a PUSH socket, sends complex64 items."""

    def __init__(self, address: str, context: zmq.Context | None = None, hwm: int = 64):
        self.ctx = context or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.PUSH)
        self.sock.setsockopt(zmq.SNDHWM, hwm)
        self.sock.setsockopt(zmq.LINGER, 2000)
        try:
            self.sock.bind(address)
        except zmq.ZMQError as exc:
            self.sock.close()
            raise UserError(f"cannot bind the symbol stream to {address}: {exc}") from None
        self.address = address
        self.items_sent = 0

    def send(self, symbols: np.ndarray, chunk: int = 1 << 15, timeout_s: float = 30.0, stop=None) -> None:
        """Send symbols in messages of at most ``chunk`` items; a peer that never reads is an error.
        ``stop`` (a ``threading.Event``): return early, between polls, once it is set."""
        symbols = np.ascontiguousarray(symbols, dtype=np.complex64)
        step_ms = int(timeout_s * 1000) if stop is None else 100
        for i in range(0, symbols.size, chunk):
            part = symbols[i:i + chunk]
            waited = 0
            while not self.sock.poll(step_ms, zmq.POLLOUT):
                waited += step_ms
                if stop is not None and stop.is_set():
                    return
                if waited >= timeout_s * 1000:
                    raise UserError(f"the TX flowgraph at {self.address} takes no symbols (unreachable ZMQ peer?)")
            self.sock.send(part.tobytes(), copy=False)
            self.items_sent += part.size

    def close(self) -> None:
        self.sock.close()


@dataclass
class ControlSocket:
    """Small JSON messages runner → receiver; the receiver binds, the runner connects."""

    address: str
    bind: bool

    def __post_init__(self):
        self.sock = zmq.Context.instance().socket(zmq.PULL if self.bind else zmq.PUSH)
        self.sock.setsockopt(zmq.LINGER, 1000)
        if self.bind:
            self.sock.bind(self.address)
        else:
            self.sock.connect(self.address)

    def send(self, message: dict) -> None:
        self.sock.send(json.dumps(message).encode())

    def poll(self) -> dict | None:
        if self.sock.poll(0):
            return json.loads(self.sock.recv())
        return None

    def close(self) -> None:
        self.sock.close()
