"""The simulated loopback flowgraph: one TX, two independent channel branches, Bob's and Eve's RX.

    zeromq.pull_source (frame symbols) → TxChain ─┬→ ChannelBranch(SNR_b) → RxChain → push_msg_sink (Bob)
                                                 └→ ChannelBranch(SNR_e) → RxChain → push_msg_sink (Eve)

The same blocks exist as GNU Radio Companion flowgraphs in ``flowgraphs/grc/`` (``sim_loopback.grc``);
this module builds it in Python so the runner can set every parameter and watch progress. A
flowgraph fed by ZMQ never finishes by itself: :func:`run_until_drained` stops it once both
synchronisers have consumed the expected number of samples (or nothing moves for a while).
"""
from __future__ import annotations

import time

from gnuradio import blocks, gr, zeromq

from flowgraphs.chains import ChannelBranch, Impairments, RxChain, TxChain
from radio.pulse import PulseShape

#: gr-zeromq source timeout (ms): how often the source wakes up to check for stop.
ZMQ_TIMEOUT_MS = 100


class SimLoopback(gr.top_block):
    """Symbols from ``tx_address`` → two simulated branches → PDUs to ``bob_address`` / ``eve_address``."""

    def __init__(self, tx_address: str, bob_address: str, eve_address: str | None, *, snr_b_db: float,
                 snr_e_db: float, bob_impairments: Impairments = Impairments(),
                 eve_impairments: Impairments = Impairments(), pulse: PulseShape = PulseShape(), seed: int = 0,
                 equalizer_taps: int = 0):
        gr.top_block.__init__(self, "jscec_sim_loopback", catch_exceptions=False)
        self.source = zeromq.pull_source(gr.sizeof_gr_complex, 1, tx_address, ZMQ_TIMEOUT_MS, False, -1)
        self.tx = TxChain(pulse)
        self.connect(self.source, self.tx)
        self.branches = {}
        for name, addr, snr, imp, s in (("bob", bob_address, snr_b_db, bob_impairments, 2 * seed),
                                        ("eve", eve_address, snr_e_db, eve_impairments, 2 * seed + 1)):
            if addr is None:
                continue
            channel = ChannelBranch(snr, imp, pulse, seed=s)
            rx = RxChain(pulse, equalizer_taps)
            sink = zeromq.push_msg_sink(addr, ZMQ_TIMEOUT_MS, True)
            self.connect(self.tx, channel, rx)
            self.msg_connect(rx, "frames", sink, "in")
            self.branches[name] = {"channel": channel, "rx": rx, "sink": sink}

    def samples_consumed(self) -> dict[str, int]:
        return {name: int(b["rx"].sync.nitems_read(0)) for name, b in self.branches.items()}

    def sync_stats(self) -> dict[str, dict]:
        return {name: b["rx"].sync.stats() for name, b in self.branches.items()}


class RecordingTap(gr.hier_block2):
    """A file sink of raw complex64 samples (``cf32_le``, what SigMF calls it) on a branch."""

    def __init__(self, path: str):
        gr.hier_block2.__init__(self, "jscec_recording_tap", gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signature(0, 0, 0))
        self.sink = blocks.file_sink(gr.sizeof_gr_complex, path, False)
        self.sink.set_unbuffered(False)
        self.connect(self, self.sink)


def run_until_drained(tb: gr.top_block, consumed, expected: int, *, timeout_s: float = 600.0,
                      stall_s: float = 10.0, progress=None, on_start=None) -> bool:
    """Start ``tb``; stop it when every counter from ``consumed()`` reaches ``expected`` samples.

    ``on_start`` runs right after the flowgraph started (e.g. starting the thread that feeds it).
    Returns False when it stopped on ``timeout_s`` or after ``stall_s`` seconds without progress.
    """
    tb.start()
    if on_start:
        on_start()
    t0 = last_move = time.monotonic()
    last = None
    done = False
    try:
        while True:
            time.sleep(0.05)
            now = consumed()
            if progress:
                progress(min(now.values()) if now else 0)
            if now and min(now.values()) >= expected:
                done = True
                break
            if now != last:
                last, last_move = now, time.monotonic()
            if time.monotonic() - last_move > stall_s or time.monotonic() - t0 > timeout_s:
                break
    finally:
        time.sleep(0.2)  # let the last PDUs leave the message sinks
        tb.stop()
        tb.wait()
    return done
