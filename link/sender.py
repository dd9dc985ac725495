"""Alice's side of a ZMQ-fed TX flowgraph: the frame symbols as one stream, fed from a background thread.

* :func:`frame_stream` — the frames with idle lead and tail (the tail lets the last frame complete);
* :func:`whole_buffers` — padding so a radio's TX samples fill whole hardware buffers;
* :class:`SenderThread` — pushes the stream into the flowgraph's ``zeromq.pull_source``.
"""
from __future__ import annotations

import threading

import numpy as np

#: Idle symbols before the first frame and after the last (the tail lets the last frame complete).
LEAD_SYMBOLS = 256
TAIL_SYMBOLS = 2048


def frame_stream(frames: list[np.ndarray]) -> np.ndarray:
    """Alice's frames as one symbol stream, with idle zeros before and after."""
    return np.concatenate([np.zeros(LEAD_SYMBOLS, np.complex64), *frames, np.zeros(TAIL_SYMBOLS, np.complex64)])


#: Idle symbols a :class:`SenderThread` sends as the stream's last ZMQ message, for real-time devices.
IDLE_TAIL_SYMBOLS = 1024


def whole_buffers(stream: np.ndarray, sps: int, buffer_size: int) -> np.ndarray:
    """``stream`` with idle symbols appended so that its TX samples fill whole hardware buffers.

    A radio adapter holds back a partial buffer until the end-of-stream flush, which comes a poll later;
    meanwhile the receiver hears silence, so a frame straddling the start of that last buffer would be
    cut in two. Padded, every frame leaves in a full buffer as soon as it is shaped.
    """
    samples = -(-stream.size * sps // buffer_size) * buffer_size
    return np.concatenate([stream, np.zeros(-(-samples // sps) - stream.size, np.complex64)])


class SenderThread:
    """Feeds a symbol stream to a TX flowgraph's ``zeromq.pull_source`` from a background thread.

    ``tail`` (for real-time devices) is sent after the stream as messages of its own: gr-zeromq
    3.10.5's ``pull_source`` hands on the last items of the last message it has received only when its
    next poll times out (100 ms later), so a radio would pause there and the receiver hear silence in
    the middle of a frame. With an idle tail, what waits is idle.
    """

    def __init__(self, address: str, stream: np.ndarray, tail: np.ndarray | None = None):
        from radio.transport import SymbolSender

        self.sender = SymbolSender(address)
        self.stream = stream
        self.tail = tail
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            self.sender.send(self.stream)
            if self.tail is not None:
                self.sender.send(self.tail)
        except Exception as exc:  # noqa: BLE001 - re-raised by close()
            self.errors.append(exc)

    def start(self):
        self.thread.start()

    def close(self) -> None:
        self.sender.close()
        if self.errors:
            raise self.errors[0]
