"""``DemoFrames``: an endless stream of the link's frames, to see a receiver work in GNU Radio Companion
without Alice (``flowgraphs/grc/sim_loopback_gui.grc``).

Each frame is a real frame of the link (``radio.frame.build_frame``: preamble, Golay-coded header with
CRC-32, pilots, postamble) around a payload of random Z_p symbols on 4096-QAM, with a made-up public
header (mode ``mask``, key id ``0000d3e0``, model 0, 32×32 image): it synchronises like any frame and
shows the constellation, but carries no image and no key — a receive chain drops it (``other key``).
``count`` distinct frames, each followed by ``gap`` idle symbols, repeat forever.

The GRC definition is ``flowgraphs/grc/jscec_demo_frames.block.yml``.
"""
from __future__ import annotations

import numpy as np
from gnuradio import gr

from radio.frame import FrameHeader, build_frame
from radio.zp_qam import modulate

#: The demo header's key id (no key has it: it is public and made up).
DEMO_KEY_ID = "0000d3e0"


def demo_frames(count: int = 16, payload_len: int = 512, gap: int = 256, seed: int = 0) -> np.ndarray:
    """``count`` frames of random 4096-QAM payloads, each followed by ``gap`` zero symbols (complex64)."""
    if count < 1 or payload_len < 1 or gap < 0:
        raise ValueError("count and payload_len must be positive, gap not negative")
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(count):
        h = FrameHeader(counter=i, mode="mask", key_id=DEMO_KEY_ID, model_id=0, constellation="zp4096",
                        image_index=i, chunk_index=0, chunk_count=1, height=32, width=32)
        parts += [build_frame(h, modulate(rng.integers(0, 4093, payload_len))), np.zeros(gap, np.complex64)]
    return np.concatenate(parts).astype(np.complex64)


class DemoFrames(gr.sync_block):
    """Source: :func:`demo_frames`, one symbol per item, repeated forever (throttle it in a flowgraph)."""

    def __init__(self, count: int = 16, payload_len: int = 512, gap: int = 256, seed: int = 0):
        gr.sync_block.__init__(self, name="jscec_demo_frames", in_sig=None, out_sig=[np.complex64])
        self.symbols = demo_frames(count, payload_len, gap, seed)
        self._pos = 0

    def work(self, input_items, output_items):
        out = output_items[0]
        n, done, sym = len(out), 0, self.symbols
        while done < n:
            take = min(n - done, sym.size - self._pos)
            out[done:done + take] = sym[self._pos:self._pos + take]
            done += take
            self._pos = (self._pos + take) % sym.size
        return n
