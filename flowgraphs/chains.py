"""The link's hierarchical blocks, made of GNU Radio's own blocks (plus ``FrameSync``).

* :class:`TxChain` — frame symbols → RRC pulse shaping (``interp_fir_filter_ccf``), unit mean power
  per sample.
* :class:`ChannelBranch` — one simulated channel: complex gain, phase noise, then GNU Radio's
  ``channels.channel_model`` for fractional delay (its FIR taps), sample-rate offset (``epsilon``),
  carrier frequency offset and complex AWGN of the voltage that gives the wanted symbol SNR (eq. 2)
  after the matched filter.
* :class:`RxChain` — samples → matched filter (``fir_filter_ccf``) → ``FrameSync`` → PDUs on the
  ``frames`` message port.
"""
from __future__ import annotations

import numpy as np
from gnuradio import analog, blocks, channels, filter as gr_filter, gr

from flowgraphs.blocks import FRAMES_PORT, FrameSync
from radio.impairments import Impairments
from radio.pulse import PulseShape

#: Half length (samples) of the windowed-sinc fractional-delay filter of the channel.
DELAY_HALF = 16
#: Output buffer (items) of the blocks feeding ``FrameSync``: each call into the Python block then
#: carries up to this many samples instead of a few thousand (measured on a replay: the flowgraph's
#: CPU time falls by a third).
STREAM_BUFFER_ITEMS = 1 << 16


def widen_output_buffer(block, items: int = STREAM_BUFFER_ITEMS) -> None:
    """Give ``block``'s outputs at least ``items`` of buffer (without GNU Radio's info-level log line)."""
    level = block.log_level()
    block.set_log_level("warn")
    block.set_min_output_buffer(items)
    block.set_log_level(level)


def fractional_delay_taps(delay: float, half: int = DELAY_HALF) -> list[complex]:
    """Kaiser-windowed sinc delaying by ``half + delay`` samples (the constant ``half`` is bulk delay)."""
    n = np.arange(2 * half + 1 + int(np.floor(delay)))
    frac = delay - np.floor(delay)
    centre = half + np.floor(delay) + frac
    h = np.sinc(n - centre) * np.kaiser(n.size, 8.0)
    h /= h.sum()
    return [complex(v) for v in h]


class TxChain(gr.hier_block2):
    """Frame symbols in (one per item) → RRC-shaped samples out (``sps`` per symbol)."""

    def __init__(self, pulse: PulseShape = PulseShape()):
        gr.hier_block2.__init__(self, "jscec_tx_chain", gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signature(1, 1, gr.sizeof_gr_complex))
        self.interp = gr_filter.interp_fir_filter_ccf(pulse.sps, list(pulse.taps))
        self.connect(self, self.interp, self)


class ChannelBranch(gr.hier_block2):
    """Samples in → impaired, noisy samples out, at symbol SNR ``snr_db`` after the matched filter."""

    def __init__(self, snr_db: float, impairments: Impairments = Impairments(), pulse: PulseShape = PulseShape(),
                 seed: int = 0):
        gr.hier_block2.__init__(self, "jscec_channel_branch", gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signature(1, 1, gr.sizeof_gr_complex))
        imp = impairments
        self.gain = blocks.multiply_const_cc(complex(imp.gain * np.exp(1j * imp.phase)))
        voltage = pulse.noise_voltage(snr_db, imp.gain) if np.isfinite(snr_db) else 0.0
        self.channel = channels.channel_model(noise_voltage=voltage, frequency_offset=imp.cfo / pulse.sps,
                                              epsilon=1.0 + imp.sro_ppm * 1e-6,
                                              taps=fractional_delay_taps(imp.delay), noise_seed=float(seed + 1),
                                              block_tags=False)
        head = self.gain
        self.connect(self, self.gain)
        if imp.phase_noise > 0:
            # Filtered Gaussian phase: std of a single-pole IIR output is mag·sqrt(α / (2 − α)).
            a = imp.phase_noise_alpha
            mag = imp.phase_noise * np.sqrt((2 - a) / a)
            self.pn_source = analog.noise_source_f(analog.GR_GAUSSIAN, mag, seed + 7919)
            self.pn_filter = gr_filter.single_pole_iir_filter_ff(a, 1)
            self.pn_phasor = analog.phase_modulator_fc(1.0)
            self.pn_mult = blocks.multiply_cc(1)
            self.connect(self.pn_source, self.pn_filter, self.pn_phasor, (self.pn_mult, 1))
            self.connect(head, (self.pn_mult, 0))
            head = self.pn_mult
        self.connect(head, self.channel, self)


class RxChain(gr.hier_block2):
    """Samples in → matched filter → ``FrameSync``; frames leave on the ``frames`` message port.

    ``sync_process``: finish frames in a worker process (``FrameSync(process=True)``).
    """

    def __init__(self, pulse: PulseShape = PulseShape(), equalizer_taps: int = 0, sync_process: bool = False):
        gr.hier_block2.__init__(self, "jscec_rx_chain", gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signature(0, 0, 0))
        self.message_port_register_hier_out(FRAMES_PORT)
        self.mf = gr_filter.fir_filter_ccf(1, list(pulse.taps))
        widen_output_buffer(self.mf)
        self.sync = FrameSync(pulse.sps, pulse.rolloff, pulse.span, equalizer_taps=equalizer_taps,
                              process=sync_process)
        self.connect(self, (self.sync, 0))
        self.connect(self, self.mf, (self.sync, 1))
        self.msg_connect(self.sync.publisher, FRAMES_PORT, self, FRAMES_PORT)
