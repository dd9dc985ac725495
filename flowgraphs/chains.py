"""The link's hierarchical blocks, made of GNU Radio's own blocks (plus ``FrameSync``).

* :class:`TxChain` — frame symbols → RRC pulse shaping (``interp_fir_filter_ccf``), unit mean power
  per sample.
* :class:`ChannelBranch` — one simulated channel: complex gain, phase noise, then GNU Radio's
  ``channels.channel_model`` for fractional delay (its FIR taps), sample-rate offset (``epsilon``),
  carrier frequency offset and complex AWGN of the voltage that gives the wanted symbol SNR (eq. 2)
  after the matched filter.
* :class:`RxFrontEnd` — a receiver's analogue faults, for tests and benchmarks: IQ imbalance (an image
  at a set rejection) and a DC offset, added to what a channel branch outputs.
* :class:`RxChain` — samples → detection filter (``fir_filter_ccf`` with ``radio.sync.detection_taps``,
  a low-pass that passes the signal at any carrier offset up to ½ cycle per symbol) → ``FrameSync``,
  which matched-filters each frame itself once its offset is removed; PDUs on the ``frames`` message port.
"""
from __future__ import annotations

import numpy as np
from gnuradio import analog, blocks, channels, filter as gr_filter, gr

from flowgraphs.blocks import FRAMES_PORT, FrameSync
from radio.impairments import Impairments
from radio.pulse import PulseShape
from radio.sync import detection_taps

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


class RxFrontEnd(gr.hier_block2):
    """Samples in → r + ρ·conj(r) + dc out: a receiver's IQ imbalance and DC offset.

    ``image_rejection_db``: the image's level below the signal (|ρ|² = 10^(−IRR/10)), at angle
    ``image_phase`` (radians); ``dc``: the complex DC offset added after it (device units). The noise of
    a channel branch upstream goes through the imbalance too, as in a real receiver.
    """

    def __init__(self, image_rejection_db: float | None = None, image_phase: float = 0.0, dc: complex = 0j):
        gr.hier_block2.__init__(self, "jscec_rx_front_end", gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signature(1, 1, gr.sizeof_gr_complex))
        head = self
        if image_rejection_db is not None:
            rho = complex(10 ** (-image_rejection_db / 20) * np.exp(1j * image_phase))
            self.conj = blocks.conjugate_cc()
            self.image = blocks.multiply_const_cc(rho)
            self.add = blocks.add_cc(1)
            self.connect(self, (self.add, 0))
            self.connect(self, self.conj, self.image, (self.add, 1))
            head = self.add
        self.dc = blocks.add_const_cc(complex(dc))
        self.connect(head, self.dc, self)


class RxChain(gr.hier_block2):
    """Samples in → detection filter → ``FrameSync``; frames leave on the ``frames`` message port.

    ``sync_process``: finish frames in a worker process (``FrameSync(process=True)``).
    """

    def __init__(self, pulse: PulseShape = PulseShape(), equalizer_taps: int = 0, sync_process: bool = False):
        gr.hier_block2.__init__(self, "jscec_rx_chain", gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signature(0, 0, 0))
        self.message_port_register_hier_out(FRAMES_PORT)
        # The stream FrameSync detects preambles on (its input 1): the matched filter would cut a signal
        # offset by ½ cycle per symbol; FrameSync filters each frame itself after removing its offset.
        self.det = gr_filter.fir_filter_ccf(1, list(detection_taps(pulse)))
        widen_output_buffer(self.det)
        self.sync = FrameSync(pulse.sps, pulse.rolloff, pulse.span, equalizer_taps=equalizer_taps,
                              process=sync_process)
        self.connect(self, (self.sync, 0))
        self.connect(self, self.det, (self.sync, 1))
        self.msg_connect(self.sync.publisher, FRAMES_PORT, self, FRAMES_PORT)
