"""The synchroniser split over two processes: detection and headers here, the rest of every frame in a
worker process.

:class:`radio.sync.StreamSync` is Python and numpy around a few compiled loops and holds the GIL for
most of its time, so in one process it runs on one core however many the machine has. Its work per
frame falls in two stages of similar cost: detection, fine CFO and header decoding (which must run in
stream order, as a decoded header tells the detector where the next frame can start), and the rest —
timing drift, gain/phase tracking, MER, payload (:class:`radio.sync.FrameFinisher`).
:class:`ProcessSync` runs the first stage in the caller's process and streams
:class:`radio.sync.FinishJob` objects to a worker process that runs the second, in order, so the two
stages overlap on two cores.

The results are the frames ``StreamSync`` gives in one process, bit for bit and in the same order
(dropped headers included): the worker does the same arithmetic on the same samples, with BLAS
pinned to one thread as in the flowgraph. The worker is started with ``spawn`` (the caller may be a
GNU Radio process with running threads, where ``fork`` is unsafe) and ends when the pipe closes.
"""
from __future__ import annotations

import multiprocessing as mp
import select
import threading
import time
from collections import deque

try:
    from fcntl import F_SETPIPE_SZ, fcntl
except ImportError:   # not Linux: the system's pipe size
    F_SETPIPE_SZ = fcntl = None

import numpy as np

from radio.frame import DEFAULT_FORMAT, FrameFormat
from radio.pulse import PulseShape
from radio.sync import DroppedFrame, FinishJob, FrameFinisher, StreamSync, SyncConfig, SyncStats

#: Seconds to wait for the worker to exit on ``close`` before terminating it.
CLOSE_TIMEOUT_S = 5.0
#: Pipe capacity asked for (Linux allows an unprivileged process up to 1 MiB by default). A job
#: carries a frame's samples (up to ~160 kB); with the default 64 kB pipe the first stage would wait
#: in ``write`` for the worker to finish the previous frame, and the stages would not overlap.
PIPE_BYTES = 1 << 20
#: Jobs sent to the worker together, and the longest a found job waits for its batch (seconds, checked
#: at every ``submit`` and ``release``). One message per frame cost a pipe write, a wake-up of the
#: worker, a result message and a wake-up of the publishing thread, each a hand-over of the GIL in the
#: flowgraph's process: eight per message replay 500 CIFAR-10 frames ~15 % faster.
BATCH_JOBS = 8
HOLD_S = 0.05


def _widen(conn) -> None:
    if fcntl is not None:
        try:
            fcntl(conn.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass   # a lower limit: slower, not wrong


def _serve(jobs, results, pulse: PulseShape, fmt: FrameFormat, config: SyncConfig) -> None:
    """Worker loop: FinishJob → SyncedFrame, anything else echoed, until ``None`` or a closed pipe."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    finisher = FrameFinisher(pulse, fmt, config)
    results.send(("ready", None))
    while True:
        try:
            batch = jobs.recv()
        except (EOFError, OSError):
            return
        if batch is None:
            return
        try:
            out = [finisher.finish(item) if isinstance(item, FinishJob) else item for item in batch]
        except Exception as exc:  # noqa: BLE001 - reported in the parent as one line
            results.send(("error", f"{type(exc).__name__}: {exc}"))
            return
        results.send(("ok", out))


class SyncWorkerError(RuntimeError):
    """The worker process failed or went away."""


class ProcessSync:
    """A :class:`StreamSync` whose frames are finished in a worker process.

    ``submit(det, raw)`` runs the first stage and queues what it found, sent to the worker
    ``BATCH_JOBS`` at a time or once the oldest has waited ``HOLD_S`` (``release``, which the
    receiving side calls as it polls, sends what is held); ``receive()`` returns the next item in
    stream order (``SyncedFrame`` or ``DroppedFrame``) once it is ready. ``push`` / ``flush`` behave
    like ``StreamSync``'s, returning what is ready (``flush``: everything). One thread may submit
    while another receives and releases (the GNU Radio block does).
    """

    def __init__(self, pulse: PulseShape = PulseShape(), fmt: FrameFormat = DEFAULT_FORMAT,
                 config: SyncConfig = SyncConfig(), batch: int = BATCH_JOBS, hold_s: float = HOLD_S):
        self.sync = StreamSync(pulse, fmt, config, defer_finish=True)
        ctx = mp.get_context("spawn")
        job_recv, self._jobs = ctx.Pipe(duplex=False)
        self._results, result_send = ctx.Pipe(duplex=False)
        _widen(self._jobs)
        _widen(self._results)
        # One poll object for the results pipe: Connection.poll builds a selector per call (~15 µs,
        # once per frame in the publishing thread).
        self._poller = select.poll()
        self._poller.register(self._results.fileno(), select.POLLIN)
        self._proc = ctx.Process(target=_serve, name="jscec-sync-finish", daemon=True,
                                 args=(job_recv, result_send, pulse, fmt, config))
        self._proc.start()
        job_recv.close()
        result_send.close()
        self._ready = False
        self._items: deque = deque()
        self.batch = max(1, int(batch))
        self.hold_s = float(hold_s)
        self._held: list = []
        self._held_at = 0.0
        self._send_lock = threading.Lock()   # the submitting and the releasing thread both send
        self.found = 0           # items the first stage found so far (held or sent)
        self.submitted = 0       # items sent to the worker so far
        self.received = 0        # items returned by ``receive`` so far
        self.frames = 0

    @property
    def outstanding(self) -> int:
        """Items submitted and not yet returned by ``receive``."""
        return self.submitted - self.received

    @property
    def stats(self) -> SyncStats:
        st = SyncStats(**self.sync.stats.as_dict())
        st.frames = self.frames
        return st

    def submit(self, det: np.ndarray, raw: np.ndarray) -> int:
        """First stage on a chunk; its finds go to the worker (in batches). Returns how many it found."""
        return self._hold(self.sync.push(det, raw))

    def _hold(self, items: list) -> int:
        with self._send_lock:
            if items:
                if not self._held:
                    self._held_at = time.monotonic()
                self._held += items
                self.found += len(items)
            if self._held and (len(self._held) >= self.batch or time.monotonic() - self._held_at >= self.hold_s):
                self._send_held()
        return len(items)

    def release(self, waited_s: float = 0.0) -> None:
        """Send the held jobs now if the oldest has waited ``waited_s`` seconds (0: in any case)."""
        with self._send_lock:
            if self._held and time.monotonic() - self._held_at >= waited_s:
                self._send_held()

    def _send_held(self) -> None:
        items, self._held = self._held, []
        self.submitted += len(items)   # before sending (the results may come back at once)
        try:
            self._jobs.send(items)
        except (BrokenPipeError, OSError) as exc:
            raise SyncWorkerError(f"synchroniser worker: {exc}") from None

    def _take(self, timeout: float | None) -> bool:
        """Take one message from the worker into ``_items``; False if none came within ``timeout``."""
        if timeout is not None and not self._poller.poll(max(0.0, timeout) * 1000):
            return False
        try:
            kind, value = self._results.recv()
        except (EOFError, OSError):
            raise SyncWorkerError("synchroniser worker exited unexpectedly") from None
        if kind == "error":
            raise SyncWorkerError(f"synchroniser worker failed: {value}")
        if kind == "ready":
            self._ready = True
        else:
            self._items.extend(value)
        return True

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the worker has started (call before any ``receive`` runs in another thread)."""
        if not self._ready and not self._take(timeout):
            raise SyncWorkerError(f"synchroniser worker did not start within {timeout:g} s")

    def receive(self, timeout: float | None = None):
        """The next item in stream order, or None if none came within ``timeout`` (None: wait)."""
        while not self._items:
            if not self._take(timeout):
                return None
        item = self._items.popleft()
        self.received += 1   # written by the receiving thread only
        if not isinstance(item, DroppedFrame):
            self.frames += 1
        return item

    def _ready_items(self, timeout: float | None) -> list:
        out = []
        while self.outstanding:
            item = self.receive(timeout)
            if item is None:
                break
            out.append(item)
        return out

    def push(self, det: np.ndarray, raw: np.ndarray) -> list:
        self.submit(det, raw)
        return self._ready_items(0)

    def flush(self) -> list:
        """End of stream: the first stage's flush, then every frame still held or in the worker."""
        self._hold(self.sync.flush())
        self.release()
        return self._ready_items(None)

    def close(self) -> None:
        """Stop the worker (idempotent)."""
        if self._proc is None:
            return
        try:
            self._jobs.send(None)
        except (BrokenPipeError, OSError):
            pass
        self._proc.join(CLOSE_TIMEOUT_S)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join()
        self._jobs.close()
        self._results.close()
        self._proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
