"""GNU Radio blocks of the link that GNU Radio itself does not have.

``FrameSync`` wraps :class:`radio.sync.StreamSync` (synchronisation from the known symbols; GNU
Radio's own tracking loops are too noisy for 4096-QAM and its Costas loop stops at 8-PSK). It takes
two aligned streams — the raw samples and the matched-filter output — and publishes one PDU per
frame on its ``frames`` message port (``radio.transport.frame_to_pdu``), which the flowgraph connects
to a ``zeromq.push_msg_sink``. It also exposes the synchroniser's counters.

The GRC definition is ``flowgraphs/grc/jscec_frame_sync.block.yml``.
"""
from __future__ import annotations

import numpy as np
import pmt
from gnuradio import gr

from threadpoolctl import threadpool_limits

from radio.pulse import PulseShape
from radio.sync import DroppedFrame, StreamSync, SyncConfig
from radio.transport import frame_to_pdu

FRAMES_PORT = "frames"

# The synchroniser's matrix products are small; with BLAS threads they lose more to thread hand-offs
# between GNU Radio's block threads than they gain (measured: 0.46 → 1.5 M samples/s on 2 cores).
threadpool_limits(1, user_api="blas")


class FrameSync(gr.sync_block):
    """Inputs: 0 raw samples, 1 matched-filter output (same rate); output: PDUs on ``frames``.

    Stream tags named ``rx_drop`` or ``rx_overflow`` on input 0 (from a device source) mark a sample
    discontinuity: a frame that spans one is dropped (counted as ``discontinuity`` drops).
    """

    def __init__(self, sps: int = 4, rolloff: float = 0.25, span: int = 12, equalizer_taps: int = 0,
                 track_span: float = 128.0, chunk: int = 4096):
        gr.sync_block.__init__(self, name="jscec_frame_sync", in_sig=[np.complex64, np.complex64], out_sig=None)
        self.message_port_register_out(pmt.intern(FRAMES_PORT))
        self.sync = StreamSync(PulseShape(sps, rolloff, span),
                               config=SyncConfig(equalizer_taps=equalizer_taps, track_span=track_span))
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
        self._pend_mf: list[np.ndarray] = []
        self._pend_n = 0

    def work(self, input_items, output_items):
        raw, mf = input_items[0], input_items[1]
        n = len(raw)
        start = self.nitems_read(0)
        for tag in self.get_tags_in_window(0, 0, n):
            if pmt.symbol_to_string(tag.key) in ("rx_drop", "rx_overflow"):
                self.discontinuities.append(int(tag.offset))
        if self.chunk <= 0:
            for item in self.sync.push(mf[:n], raw[:n]):
                self._publish(item, start)
            return n
        self._pend_raw.append(np.array(raw[:n]))
        self._pend_mf.append(np.array(mf[:n]))
        self._pend_n += n
        if self._pend_n >= self.chunk:
            allraw, allmf = np.concatenate(self._pend_raw), np.concatenate(self._pend_mf)
            full = (allraw.size // self.chunk) * self.chunk
            for k in range(0, full, self.chunk):
                for item in self.sync.push(allmf[k:k + self.chunk], allraw[k:k + self.chunk]):
                    self._publish(item, start)
            self._pend_raw, self._pend_mf = [allraw[full:]], [allmf[full:]]
            self._pend_n = allraw.size - full
        return n

    def _touches_discontinuity(self, item) -> bool:
        if not self.discontinuities or isinstance(item, DroppedFrame):
            return False
        first = int(item.start)
        span = self.sync.fmt.frame_len(item.header.payload_len, item.header.d_len) * self.sync.sps * 1.01
        return any(first - self.sync.delay <= d <= first + span for d in self.discontinuities)

    def _publish(self, item, start: int) -> None:
        if self._touches_discontinuity(item):
            item = DroppedFrame(start=item.start, reason="discontinuity", metric=item.metric, snr_db=item.snr_db)
        if isinstance(item, DroppedFrame):
            self.dropped += 1
        else:
            self.frames += 1
            self.mer_db.append(item.mer_db)
        self.message_port_pub(pmt.intern(FRAMES_PORT), frame_to_pdu(item))

    def stats(self) -> dict:
        out = self.sync.stats.as_dict()
        out.update(frames_published=self.frames, dropped_published=self.dropped,
                   discontinuities=len(self.discontinuities))
        return out
