"""The sending side of the live view: one ZMQ PUSH socket per process, never waiting.

A message is two ZMQ frames: a JSON header (``kind``, ``src`` — the run's process id —, ``t`` — the
sender's ``time.time()`` — and the kind's fields) and a binary part (possibly empty: constellation
points as complex64, spectrum samples as complex64, an image as uint8 HWC). Sends never block: with
the live view's hub slow or gone, messages beyond the high-water mark are dropped and counted
(``dropped``), so a run goes at its own pace whatever the page does.

What is sent is what the page shows — counters, per-frame figures, a few payload points per frame,
decoded images, the names of files and settings — never a key, a seed or a key file's path
(:func:`run_meta` takes its fields one by one from public attributes).
"""
from __future__ import annotations

import atexit
import json
import os
import time

import numpy as np

#: Messages a publisher queues before it drops (the hub reads them in microseconds).
HIGH_WATER = 4000
#: Milliseconds a closing publisher waits for its last messages to leave.
LINGER_MS = 1000
#: Payload points per frame sent for the constellation.
POINTS_PER_FRAME = 128


class Publisher:
    """PUSH (connect) to the hub's PULL address; ``src`` names the run's process (the runner's pid)."""

    def __init__(self, address: str, src: str):
        import zmq

        self.address = address
        self.src = src
        self.pid = os.getpid()
        self.sent = 0
        self.dropped = 0
        self._zmq = zmq
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.PUSH)
        self._sock.setsockopt(zmq.SNDHWM, HIGH_WATER)
        self._sock.setsockopt(zmq.LINGER, LINGER_MS)
        self._sock.setsockopt(zmq.IMMEDIATE, 0)
        self._sock.connect(address)

    def send(self, kind: str, fields: dict | None = None, blob: bytes | memoryview = b"") -> bool:
        head = {"kind": kind, "src": self.src, "t": time.time()}
        if fields:
            head.update(fields)
        try:
            self._sock.send_multipart([json.dumps(head, allow_nan=False, default=_plain).encode(), blob],
                                      flags=self._zmq.NOBLOCK, copy=len(blob) < 65536)
        except self._zmq.Again:
            self.dropped += 1
            return False
        except self._zmq.ZMQError:
            return False
        self.sent += 1
        return True

    # -- what the receive chains send ------------------------------------------------------------
    def frame(self, role: str, record: dict, payload: np.ndarray | None = None) -> None:
        """One frame a chain handled (its record: counter, image, chunk, MER, SNR, CFO, SRO, ok, reason)
        and up to :data:`POINTS_PER_FRAME` of its payload symbols, evenly spaced."""
        pts = b""
        if payload is not None and payload.size:
            step = max(1, payload.size // POINTS_PER_FRAME)
            pts = np.ascontiguousarray(payload[::step][:POINTS_PER_FRAME], np.complex64).tobytes()
        self.send("frame", {"role": role, "rec": record}, pts)

    def images(self, role: str, indices, images: np.ndarray) -> None:
        """Decoded images (uint8 N×H×W×3), one message each."""
        for index, img in zip(indices, images):
            img = np.ascontiguousarray(img, np.uint8)
            self.send("image", {"role": role, "index": int(index), "shape": list(img.shape)}, img.tobytes())

    def scores(self, role: str, indices, scores: dict) -> None:
        """Scores of decoded images: ``scores`` key → values per index (``psnr``, ``ssim``, …)."""
        rows = [{"index": int(i), **{k: _finite(v[n]) for k, v in scores.items()}} for n, i in enumerate(indices)]
        self.send("scores", {"role": role, "rows": rows})

    def labels(self, role: str, rows: list[dict]) -> None:
        """A classifier's predictions: per image ``index``, ``label``, ``confidence`` and, where the true
        label is known, ``correct`` (sent as scores: the page shows them in place of a decoded image)."""
        self.send("scores", {"role": role, "rows": [
            {"index": int(r["index"]), "label": int(r["label"]), "confidence": _finite(r["confidence"]),
             **({"correct": bool(r["correct"])} if r.get("correct") is not None else {})} for r in rows]})

    @property
    def closed(self) -> bool:
        return self._sock.closed

    def close(self) -> None:
        if not self._sock.closed:
            self._sock.close()
            self._ctx.term()


def _finite(v):
    v = float(v)
    return v if np.isfinite(v) else None


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


_publisher: Publisher | None = None


def get(env: str) -> Publisher | None:
    """This process's publisher to the address in ``$env`` (None: no live view). Made on first use
    (per process: a forked child makes its own) and closed at exit, letting its last messages out."""
    global _publisher
    address = os.environ.get(env)
    if not address:
        return None
    if (_publisher is None or _publisher.address != address or _publisher.pid != os.getpid()
            or _publisher.closed):
        src = os.environ.get("JSCEC_PARENT_PID") or str(os.getpid())   # a receive chain: its runner's
        _publisher = Publisher(address, src)
        atexit.register(_publisher.close)
    return _publisher
