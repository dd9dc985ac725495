"""GNU Radio blocks of the link that GNU Radio itself does not have.

``FrameSync`` wraps :class:`radio.sync.StreamSync` (synchronisation from the known symbols; GNU
Radio's own tracking loops are too noisy for 4096-QAM and its Costas loop stops at 8-PSK; its band-edge
FLL, ``digital.fll_band_edge_cc``, wanders over ±0.5 cycles per symbol in the idle gaps between bursts
and, with a loop fast enough to pull in within a preamble, leaves 7–13 dB of MER at 30 dB SNR). It takes
two aligned streams — the raw samples and the detection filter's output
(``fir_filter_ccf(1, radio.sync.detection_taps(sps, rolloff, span))``; the RRC matched filter's output
works too, with a narrower carrier-offset range) — and publishes one PDU per frame on its ``frames``
message port (``flowgraphs.pdu.frame_to_pdu``), which the flowgraph connects to a
``zeromq.push_msg_sink``. It also exposes the synchroniser's counters, ``cfo_out_of_range`` among them:
frames dropped because the carrier offset exceeds what the receiver accepts (``advice()`` words the
line a run should end with).

With ``process=True`` the second half of the synchroniser runs in a worker process
(``radio.sync_process``; same frames bit for bit, on two cores instead of one) and a thread of the
block publishes the frames it returns, in stream order, on the ``frames`` port of ``publisher``, a
message-only :class:`FramePublisher` (connect that one, as ``RxChain`` does). Publishing from a
stream block would lose the frames finished after its input ended: GNU Radio ends the message
blocks downstream (the ZMQ sink) when their publishers are done.

The GRC definition is ``flowgraphs/grc/jscec_frame_sync.block.yml``.
"""
from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pmt
from gnuradio import gr

from threadpoolctl import threadpool_limits

from radio.pulse import PulseShape
from radio.sync import DroppedFrame, StreamSync, SyncConfig, cfo_advice
from radio.sync_process import ProcessSync, SyncWorkerError
from flowgraphs.pdu import frame_to_pdu

FRAMES_PORT = "frames"
#: Seconds ``FrameSync.stop`` waits for the frames still in the worker process.
DRAIN_TIMEOUT_S = 30.0

# The synchroniser's matrix products are small; with BLAS threads they lose more to thread hand-offs
# between GNU Radio's block threads than they gain (measured: 0.46 → 1.5 M samples/s on 2 cores).
threadpool_limits(1, user_api="blas")


class FramePublisher(gr.basic_block):
    """Message-only block: the ``frames`` port a ``FrameSync(process=True)`` publishes on."""

    def __init__(self):
        gr.basic_block.__init__(self, name="jscec_frame_publisher", in_sig=None, out_sig=None)
        self.message_port_register_out(pmt.intern(FRAMES_PORT))


class FrameSync(gr.sync_block):
    """Inputs: 0 raw samples, 1 detection-filter output (same rate); output: PDUs on ``frames``.

    Stream tags named ``rx_drop`` or ``rx_overflow`` on input 0 (from a device source) mark a sample
    discontinuity: a frame that spans one is dropped (counted as ``discontinuity`` drops).
    """

    def __init__(self, sps: int = 4, rolloff: float = 0.25, span: int = 12, equalizer_taps: int = 0,
                 track_span: float = 128.0, chunk: int = 4096, process: bool = False):
        gr.sync_block.__init__(self, name="jscec_frame_sync", in_sig=[np.complex64, np.complex64], out_sig=None)
        self.message_port_register_out(pmt.intern(FRAMES_PORT))
        pulse = PulseShape(sps, rolloff, span)
        config = SyncConfig(equalizer_taps=equalizer_taps, track_span=track_span)
        self.sync = ProcessSync(pulse, config=config) if process else StreamSync(pulse, config=config)
        self._core: StreamSync = self.sync.sync if process else self.sync
        self.process = bool(process)
        self.error: BaseException | None = None   # the worker's failure, if any
        self._published = 0
        self._stopping = threading.Event()
        self._receiver: threading.Thread | None = None
        self.publisher = FramePublisher() if process else self
        self.last_activity = 0.0   # time.perf_counter() of the last input consumed or frame published
        self.frames = 0
        self.dropped = 0
        self.discontinuities: list[int] = []
        self.mer_db: list[float] = []
        # The synchroniser's float results depend (in the last digits) on how the stream is cut into
        # pushes; GNU Radio's scheduler cuts it differently on every run. Pushing fixed blocks of
        # ``chunk`` samples (0: as delivered) makes a replay of a recording bit-for-bit repeatable
        # and equal to the live run, at a latency of < ``chunk`` samples.
        self.chunk = int(chunk)
        self._pend_raw: list[np.ndarray] = []
        self._pend_det: list[np.ndarray] = []
        self._pend_n = 0
        #: The latest raw input samples (at least ``chunk`` when chunked; never modified once set): what a
        #: live view draws the spectrum before synchronisation from (read from another thread).
        self.recent: np.ndarray | None = None

    def work(self, input_items, output_items):
        raw, det = input_items[0], input_items[1]
        n = len(raw)
        for tag in self.get_tags_in_window(0, 0, n):
            if pmt.symbol_to_string(tag.key) in ("rx_drop", "rx_overflow"):
                self.discontinuities.append(int(tag.offset))
        self._add(det[:n], raw[:n])
        self.last_activity = time.perf_counter()
        return n

    def _add(self, det: np.ndarray, raw: np.ndarray) -> None:
        if self.chunk <= 0:
            self.recent = np.array(raw[-4096:])
            self._feed(det, raw)
            return
        self._pend_raw.append(np.array(raw))
        self._pend_det.append(np.array(det))
        self._pend_n += raw.size
        if self._pend_n >= self.chunk:
            allraw, alldet = np.concatenate(self._pend_raw), np.concatenate(self._pend_det)
            self.recent = allraw
            full = (allraw.size // self.chunk) * self.chunk
            for k in range(0, full, self.chunk):
                self._feed(alldet[k:k + self.chunk], allraw[k:k + self.chunk])
            self._pend_raw, self._pend_det = [allraw[full:]], [alldet[full:]]
            self._pend_n = allraw.size - full

    def _feed(self, det: np.ndarray, raw: np.ndarray) -> None:
        if self.process:
            if self.error is None:
                try:
                    self.sync.submit(det, raw)
                except SyncWorkerError as exc:
                    self._fail(exc)
            return
        for item in self.sync.push(det, raw):
            self._publish(item)

    # -- worker process mode -----------------------------------------------------------------------
    def start(self):
        if self.process:
            self.sync.wait_ready()
            self._stopping.clear()
            self._receiver = threading.Thread(target=self._receive, name="jscec-sync-receive", daemon=True)
            self._receiver.start()
        return True

    def _receive(self) -> None:
        """Publish the worker's frames, in stream order, as they come back (on ``publisher``), and
        send it the jobs that waited too long for their batch (the input may have paused or ended)."""
        while not self._stopping.is_set():
            try:
                item = self.sync.receive(self.sync.hold_s / 2)
                self.sync.release(self.sync.hold_s)
            except SyncWorkerError as exc:
                self._fail(exc)
                return
            if item is not None:
                self._publish(item)
                self._published += 1
                self.last_activity = time.perf_counter()

    def _fail(self, exc: SyncWorkerError) -> None:
        """The worker is gone: stop feeding it; the runner reports ``error`` (one line)."""
        if self.error is None:
            self.error = exc
            print(f"jscec_frame_sync: {exc}", file=sys.stderr)

    def stop(self):
        # GNU Radio calls this when the block's input has ended, too: let the worker's last frames
        # out first (they take milliseconds).
        if self.process:
            try:
                self.sync.release()
            except SyncWorkerError as exc:
                self._fail(exc)
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            while (self._published < self.sync.found and self.error is None and self._receiver is not None
                   and self._receiver.is_alive() and time.monotonic() < deadline):
                time.sleep(0.002)
            self._stopping.set()
            if self._receiver is not None:
                self._receiver.join()
            self.sync.close()
            # Nothing more will come: finish the publisher, and with it the message blocks it feeds
            # (else a flowgraph run with ``tb.run()`` would never end).
            self.publisher._post(pmt.intern("system"), pmt.cons(pmt.intern("done"), pmt.from_long(1)))
        return True

    def close(self) -> None:
        """Release the worker process of a synchroniser that may never have run (idempotent; a run's
        ``stop`` releases it too)."""
        if self.process:
            self.sync.close()

    def samples_done(self) -> int:
        """Input samples consumed with every frame found in them published (one less while the
        worker still has frames; after a worker failure, ``error``, all of them)."""
        n = self.nitems_read(0)
        waiting = self.process and self.error is None and self._published < self.sync.found
        return n - 1 if n and waiting else n

    def _touches_discontinuity(self, item) -> bool:
        if not self.discontinuities or isinstance(item, DroppedFrame):
            return False
        first = int(item.start)
        core = self._core
        span = core.fmt.frame_len(item.header.payload_len, item.header.d_len, item.header.tagged) * core.sps * 1.01
        return any(first - core.delay <= d <= first + span for d in self.discontinuities)

    def _publish(self, item) -> None:
        if self._touches_discontinuity(item):
            item = DroppedFrame(start=item.start, reason="discontinuity", metric=item.metric, snr_db=item.snr_db)
        if isinstance(item, DroppedFrame):
            self.dropped += 1
        else:
            self.frames += 1
            self.mer_db.append(item.mer_db)
        self.publisher.message_port_pub(pmt.intern(FRAMES_PORT), frame_to_pdu(item))

    def stats(self) -> dict:
        out = self.sync.stats.as_dict()
        out.update(frames_published=self.frames, dropped_published=self.dropped,
                   discontinuities=len(self.discontinuities))
        return out

    def advice(self, sample_rate_hz: float | None = None) -> str | None:
        """The one line to end a run with when frames were dropped for their carrier offset (it names
        ``jscec calibrate``), else None (:func:`radio.sync.cfo_advice`)."""
        core = self._core
        return cfo_advice(self.sync.stats.as_dict(), sample_rate_hz, core.sps, core.cfg.max_cfo)
