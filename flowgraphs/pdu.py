"""Frame PDUs: what the RX flowgraph publishes per synchronised frame (GNU Radio's pmt wire format).

One PMT PDU per frame, published by the ``FrameSync`` block through gr-zeromq's ``push_msg_sink``
(sinks always bind). The PDU is ``(meta dict, c32vector payload)``; :func:`frame_to_pdu` /
:func:`pdu_to_frame` convert between it and :class:`radio.sync.SyncedFrame`. A header that failed its
CRC travels as a PDU whose meta has ``"dropped"`` (the reason) and an empty payload, so receivers can
count it. :class:`FrameReceiver` is a receive chain's PULL socket on those PDUs. The meta keys are
listed in ``docs/interface.md``.
"""
from __future__ import annotations

import json
import struct
import time

import numpy as np
import pmt
import zmq

from radio.frame import FrameHeader
from radio.sync import DroppedFrame, SyncedFrame

_FLOAT_FIELDS = ("noise_var", "mer_db", "snr_db", "cfo", "sro_ppm", "timing", "gain", "start", "metric")
_KEYS = {name: pmt.intern(name) for name in
         (*_FLOAT_FIELDS, "dropped", "header", "d_values", "d_ok", "tag", "tag_ok")}
#: pmt's serialisation of a c32vector: PST_UNIFORM_VECTOR, UVI_C32, length (u32, big-endian), one
#: byte of padding count and the pad; then the elements as big-endian float32 (re, im) pairs.
_C32VECTOR_HEAD = struct.Struct(">BBIBB")


def c32vector(x) -> "pmt.pmt_t":
    """complex64 samples → pmt c32vector, through pmt's own deserialiser: the pybind conversion of
    ``init_c32vector`` goes element by element (3× slower for a 512-symbol payload)."""
    x = np.ascontiguousarray(x, dtype=np.complex64)
    head = _C32VECTOR_HEAD.pack(0x0A, 0x0A, x.size, 1, 0)
    return pmt.deserialize_str(head + x.view(np.float32).astype(">f4").tobytes())


def frame_to_pdu(item) -> "pmt.pmt_t":
    """A :class:`SyncedFrame` or :class:`DroppedFrame` → PDU (meta dict, c32vector payload)."""
    meta = pmt.make_dict()
    if isinstance(item, DroppedFrame):
        meta = pmt.dict_add(meta, _KEYS["dropped"], pmt.intern(item.reason))
        for name in ("start", "metric", "snr_db"):
            meta = pmt.dict_add(meta, _KEYS[name], pmt.from_double(float(getattr(item, name))))
        return pmt.cons(meta, c32vector(np.zeros(0, np.complex64)))
    meta = pmt.dict_add(meta, _KEYS["header"], pmt.intern(json.dumps(item.header.to_dict())))
    for name in _FLOAT_FIELDS:
        meta = pmt.dict_add(meta, _KEYS[name], pmt.from_double(float(getattr(item, name))))
    if item.d_values is not None:
        meta = pmt.dict_add(meta, _KEYS["d_values"],
                            pmt.init_s32vector(item.d_values.size, item.d_values.astype(np.int32).tolist()))
        meta = pmt.dict_add(meta, _KEYS["d_ok"], pmt.from_bool(bool(item.d_ok)))
    if item.tag is not None:     # a version-2 frame's tag block: the MAC tag as hex, and its CRC-16
        meta = pmt.dict_add(meta, _KEYS["tag"], pmt.intern(bytes(item.tag).hex()))
        meta = pmt.dict_add(meta, _KEYS["tag_ok"], pmt.from_bool(bool(item.tag_ok)))
    return pmt.cons(meta, c32vector(item.payload))


def c32_elements(v) -> np.ndarray:
    """pmt c32vector → complex64 array, through pmt's serialisation (``c32vector_elements`` builds a
    Python list element by element: 3× slower for a 512-symbol payload)."""
    if not pmt.is_c32vector(v):
        raise ValueError("frame PDU payload is not a c32vector")
    raw = pmt.serialize_str(v)
    start = _C32VECTOR_HEAD.size - 1 + raw[_C32VECTOR_HEAD.size - 2]   # after the pad count and its pad
    return np.frombuffer(raw, dtype=">f4", offset=start).astype(np.float32).view(np.complex64)


def pdu_to_frame(pdu) -> SyncedFrame | DroppedFrame:
    """Inverse of :func:`frame_to_pdu`; raises ``ValueError`` on a PDU that is not one of ours."""
    if not pmt.is_pair(pdu) or not pmt.is_dict(pmt.car(pdu)):
        raise ValueError("not a frame PDU")
    meta = pmt.car(pdu)

    def ref(name):   # dict_ref of the fields used: pmt.to_python of the whole dict costs 2× more
        return pmt.dict_ref(meta, _KEYS[name], pmt.PMT_NIL)

    def num(name) -> float:
        v = ref(name)
        if pmt.is_null(v):
            raise KeyError(name)
        return pmt.to_double(v)   # ValueError on a non-number

    try:
        dropped = ref("dropped")
        if not pmt.is_null(dropped):
            return DroppedFrame(start=num("start"), reason=pmt.symbol_to_string(dropped), metric=num("metric"),
                                snr_db=num("snr_db"))
        header = ref("header")
        if pmt.is_null(header):
            raise ValueError("frame PDU without a header")
        d, d_ok, tag, tag_ok = ref("d_values"), ref("d_ok"), ref("tag"), ref("tag_ok")
        return SyncedFrame(header=FrameHeader.from_dict(json.loads(pmt.symbol_to_string(header))),
                           payload=c32_elements(pmt.cdr(pdu)),
                           d_values=None if pmt.is_null(d) else np.asarray(pmt.s32vector_elements(d), dtype=np.int64),
                           d_ok=None if pmt.is_null(d_ok) else pmt.to_bool(d_ok),
                           tag=None if pmt.is_null(tag) else bytes.fromhex(pmt.symbol_to_string(tag)),
                           tag_ok=None if pmt.is_null(tag_ok) else pmt.to_bool(tag_ok),
                           **{k: num(k) for k in _FLOAT_FIELDS})
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed frame PDU ({type(exc).__name__}: {exc})") from None


class FrameReceiver:
    """A receive chain's side of the RX flowgraph's ``push_msg_sink``: connects a PULL socket."""

    def __init__(self, address: str, context: zmq.Context | None = None):
        self.ctx = context or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.PULL)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(address)
        self.address = address
        self.malformed = 0
        self.messages = 0   # every message read, malformed ones included

    def recv(self, timeout_s: float) -> SyncedFrame | DroppedFrame | None:
        """The next frame, or None after ``timeout_s`` without one. Malformed messages are counted."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(max(1, int(left * 1000))):
                return None
            msg = self.sock.recv()
            self.messages += 1
            try:
                return pdu_to_frame(pmt.deserialize_str(msg))
            except Exception:  # noqa: BLE001 - anything unreadable is counted and skipped
                self.malformed += 1

    def close(self) -> None:
        self.sock.close()
