"""Alice's side of a ZMQ-fed TX flowgraph: the frame symbols as one stream, fed from a background thread.

* :class:`SymbolStream` — a symbol stream of known length whose symbols are produced as they are sent
  (a DeepJSCEC run makes its frames image by image while the link consumes them, so the sender never
  holds the whole run: :func:`frames_as_stream`); an array is a stream too (:meth:`SymbolStream.of`);
* :func:`frame_stream` — a list of frames as one array with idle lead and tail (the tail lets the last
  frame complete);
* :func:`whole_buffers` — padding so a radio's TX samples fill whole hardware buffers;
* :func:`spooled` — a stream made in full into a temporary file first, for links fed in real time (radios);
* :class:`SenderThread` — pushes a stream into the flowgraph's ``zeromq.pull_source``, in messages of
  :data:`MESSAGE_SYMBOLS` (the same messages whether the stream was an array or produced on the way).
"""
from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

import numpy as np

#: Idle symbols before the first frame and after the last (the tail lets the last frame complete).
LEAD_SYMBOLS = 256
TAIL_SYMBOLS = 2048
#: Symbols per ZMQ message into the TX flowgraph.
MESSAGE_SYMBOLS = 1 << 15


class SymbolStream:
    """``size`` complex64 symbols, produced chunk by chunk by ``chunks`` as they are sent (one pass only).

    The size is known before the first symbol is made, so a link can set its stop rule and a recording its
    metadata up front; a source that then yields more or fewer symbols is an error (``RuntimeError``), never
    a silently shorter run. ``held`` / ``peak_held`` count the symbols produced but not yet handed on by
    :meth:`messages` (what bounded memory means for a sender: at most a message and one chunk).
    """

    def __init__(self, size: int, chunks: Iterable[np.ndarray]):
        self.size = int(size)
        self._chunks = chunks
        self._taken = False
        self.produced = 0      # symbols drawn from the source so far
        self.handed = 0        # symbols handed on by messages()
        self.peak_held = 0
        self.in_memory = False  # an array already (SymbolStream.of): nothing is made as it is sent

    @classmethod
    def of(cls, symbols) -> "SymbolStream":
        """A stream of an array's symbols (the array is sent from where it lies, not copied)."""
        symbols = np.ascontiguousarray(symbols, dtype=np.complex64).ravel()
        out = cls(symbols.size, [symbols])
        out.in_memory = True
        return out

    @property
    def held(self) -> int:
        return self.produced - self.handed

    def chunks(self) -> Iterator[np.ndarray]:
        """The symbols as the source makes them (complex64 arrays); checks their total against ``size``."""
        if self._taken:
            raise RuntimeError("a symbol stream can be sent only once")
        self._taken = True
        for chunk in self._chunks:
            chunk = np.ascontiguousarray(chunk, dtype=np.complex64).ravel()
            self.produced += chunk.size
            if self.produced > self.size:
                raise RuntimeError(f"the symbol source gave more than the {self.size} symbols it announced")
            self.peak_held = max(self.peak_held, self.held)
            yield chunk
        if self.produced != self.size:
            raise RuntimeError(f"the symbol source gave {self.produced} of the {self.size} symbols it announced")

    def messages(self, n: int = MESSAGE_SYMBOLS) -> Iterator[np.ndarray]:
        """The stream cut into messages of ``n`` symbols (the last may be shorter), whatever the chunks."""
        parts, have = [], 0
        for chunk in self.chunks():
            if not parts and chunk.size >= n:          # whole messages straight from a large chunk
                full = chunk.size - chunk.size % n
                for i in range(0, full, n):
                    self.handed += n
                    yield chunk[i:i + n]
                chunk = chunk[full:]
                if not chunk.size:
                    continue
            parts.append(chunk)
            have += chunk.size
            while have >= n:
                joined = np.concatenate(parts)
                self.handed += n
                yield joined[:n]
                rest = joined[n:]
                parts, have = ([rest] if rest.size else []), rest.size
        if have:
            self.handed += have
            yield np.concatenate(parts)

    def array(self) -> np.ndarray:
        """The whole stream as one array (for a link that works on whole signals, such as ``awgn``)."""
        return np.concatenate(list(self.chunks()) or [np.zeros(0, np.complex64)])

    def padded(self, extra: int) -> "SymbolStream":
        """This stream followed by ``extra`` idle (zero) symbols."""
        extra = int(extra)
        tail = [np.zeros(extra, np.complex64)] if extra > 0 else []
        return _Derived(self, self.size + max(extra, 0), tail)


class _Derived(SymbolStream):
    """A stream and some symbols after it; its accounting is the inner stream's plus its own."""

    def __init__(self, inner: SymbolStream, size: int, after: list):
        super().__init__(size, _chain(inner, after))
        self.inner = inner


def _chain(inner: SymbolStream, after: list):
    yield from inner.chunks()
    yield from after


def spooled(stream, directory=None) -> SymbolStream:
    """``stream`` made in full before the first symbol is sent, into an anonymous temporary file (gone with
    the process), then read back a message at a time: for a link that must be fed in real time (radios, whose
    DAC would underflow and cut a frame in two if Alice encoded slower than the air consumes), with the memory
    of a message. An array is returned as a stream as it is (nothing to make)."""
    import tempfile

    stream = as_stream(stream)
    if stream.in_memory:
        return stream
    f = tempfile.TemporaryFile(dir=directory)
    try:
        for part in stream.messages():
            f.write(part.tobytes())
        f.flush()
        f.seek(0)
    except BaseException:
        f.close()
        raise

    def chunks():
        with f:
            while block := f.read(MESSAGE_SYMBOLS * 8):
                yield np.frombuffer(block, np.complex64)

    out = SymbolStream(stream.size, chunks())
    out.inner = stream
    return out


def as_stream(stream) -> SymbolStream:
    """A :class:`SymbolStream` of ``stream`` (a stream already, or an array)."""
    return stream if isinstance(stream, SymbolStream) else SymbolStream.of(stream)


def frame_stream(frames: list[np.ndarray]) -> np.ndarray:
    """Alice's frames as one symbol stream, with idle zeros before and after."""
    return np.concatenate([np.zeros(LEAD_SYMBOLS, np.complex64), *frames, np.zeros(TAIL_SYMBOLS, np.complex64)])


def frames_as_stream(frames: Iterable[np.ndarray], frame_symbols: int) -> SymbolStream:
    """:func:`frame_stream` of frames made as they are sent: ``frames`` yields them in order and
    ``frame_symbols`` is their total length, known in advance (the same symbols, never all held at once)."""
    def chunks():
        yield np.zeros(LEAD_SYMBOLS, np.complex64)
        yield from frames
        yield np.zeros(TAIL_SYMBOLS, np.complex64)

    return SymbolStream(LEAD_SYMBOLS + int(frame_symbols) + TAIL_SYMBOLS, chunks())


#: Idle symbols a :class:`SenderThread` sends as the stream's last ZMQ message, for real-time devices.
IDLE_TAIL_SYMBOLS = 1024


def whole_buffers(stream, sps: int, buffer_size: int):
    """``stream`` with idle symbols appended so that its TX samples fill whole hardware buffers (an array
    for an array, a :class:`SymbolStream` for a stream).

    A radio adapter holds back a partial buffer until the end-of-stream flush, which comes a poll later;
    meanwhile the receiver hears silence, so a frame straddling the start of that last buffer would be
    cut in two. Padded, every frame leaves in a full buffer as soon as it is shaped.
    """
    size = stream.size
    samples = -(-size * sps // buffer_size) * buffer_size
    extra = -(-samples // sps) - size
    if isinstance(stream, SymbolStream):
        return stream.padded(extra)
    return np.concatenate([stream, np.zeros(extra, np.complex64)])


class SenderThread:
    """Feeds a symbol stream (an array or a :class:`SymbolStream`) to a TX flowgraph's
    ``zeromq.pull_source`` from a background thread, producing its symbols as it goes.

    ``tail`` (for real-time devices) is sent after the stream as messages of its own: gr-zeromq
    3.10.5's ``pull_source`` hands on the last items of the last message it has received only when its
    next poll times out (100 ms later), so a radio would pause there and the receiver hear silence in
    the middle of a frame. With an idle tail, what waits is idle.

    The socket's high-water mark bounds what waits in ZMQ; the stream's own buffer is a message. A
    source that fails (or announced another length) ends the thread: ``failed`` tells a link's stop rule
    at once, and :meth:`close` raises the error. :meth:`abort` (an interrupted run) stops the thread
    between messages without raising.
    """

    def __init__(self, address: str, stream, tail: np.ndarray | None = None):
        from radio.transport import SymbolSender

        self.sender = SymbolSender(address)
        self.stream = as_stream(stream)
        self.tail = tail
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="jscec-sender", daemon=True)

    def _run(self):
        try:
            for part in self.stream.messages():
                if self._stop.is_set():
                    return
                self.sender.send(part, stop=self._stop)
            if self.tail is not None and not self._stop.is_set():
                self.sender.send(self.tail, stop=self._stop)
        except BaseException as exc:  # noqa: BLE001 - re-raised by close()
            self.errors.append(exc)

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    def start(self):
        self.thread.start()

    def _end(self, wait_s: float) -> None:
        if self.thread.ident is not None:
            self.thread.join(wait_s)
        if not self.thread.is_alive():
            self.sender.close()

    def close(self) -> None:
        """After the flowgraph stopped: end the thread (it has sent everything, or waits on a peer that
        stopped reading) and raise the source's or the socket's error, if any."""
        self._stop.set()
        self._end(5.0)
        if self.errors:
            raise self.errors[0]

    def abort(self) -> None:
        """The run failed or was interrupted: stop sending, raise nothing."""
        self._stop.set()
        self._end(2.0)
