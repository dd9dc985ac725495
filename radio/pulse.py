"""Root-raised-cosine pulse shaping shared by the transmitter, the channel calibration and the receiver.

Normalisation: the taps have Σh² = sps, the same as GNU Radio's
``firdes.root_raised_cosine(sps, sps, 1.0, rolloff, ntaps)``. A unit-power symbol stream shaped with
them has unit mean power per sample, and the matched filter (the same taps) puts a symbol's peak at
Σh² = sps while white noise of variance σ_n² per sample comes out with variance σ_n²·Σh². The symbol
SNR after the matched filter (eq. 2) is therefore Σh²/σ_n² = sps/σ_n² (see :meth:`PulseShape.noise_voltage`).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np


def rrc(t, rolloff: float) -> np.ndarray:
    """The continuous root-raised-cosine pulse at times ``t`` (in symbols), peak 1 − β + 4β/π."""
    t = np.asarray(t, dtype=np.float64)
    b = float(rolloff)
    out = np.empty_like(t)
    zero = np.abs(t) < 1e-9
    if b > 0:
        sing = np.abs(np.abs(t) - 1.0 / (4.0 * b)) < 1e-9
    else:
        sing = np.zeros_like(zero)
    reg = ~(zero | sing)
    tr = t[reg]
    num = np.sin(np.pi * tr * (1 - b)) + 4 * b * tr * np.cos(np.pi * tr * (1 + b))
    den = np.pi * tr * (1 - (4 * b * tr) ** 2)
    out[reg] = num / den
    out[zero] = 1 - b + 4 * b / np.pi
    if b > 0:
        out[sing] = b / np.sqrt(2) * ((1 + 2 / np.pi) * np.sin(np.pi / (4 * b))
                                      + (1 - 2 / np.pi) * np.cos(np.pi / (4 * b)))
    return out


def rrc_taps(sps: int, rolloff: float, span: int) -> np.ndarray:
    """RRC taps (float64, length 2·span·sps + 1, ±span symbols) normalised to Σh² = sps."""
    sps, span = int(sps), int(span)
    n = np.arange(-span * sps, span * sps + 1)
    h = rrc(n / sps, rolloff)
    return h * np.sqrt(sps / np.sum(h * h))


@dataclass(frozen=True)
class PulseShape:
    """Samples per symbol, roll-off and filter half-length (symbols) of the link's RRC pulse."""

    sps: int = 4
    rolloff: float = 0.25
    span: int = 12

    def __post_init__(self):
        if int(self.sps) != self.sps or self.sps < 2:
            raise ValueError(f"sps must be an integer >= 2, got {self.sps}")
        if not 0.05 <= self.rolloff <= 1.0:
            raise ValueError(f"rolloff must lie in [0.05, 1], got {self.rolloff}")
        if int(self.span) != self.span or self.span < 2:
            raise ValueError(f"span must be an integer >= 2, got {self.span}")

    @cached_property
    def taps(self) -> np.ndarray:
        """TX and matched-filter taps (Σh² = sps)."""
        t = rrc_taps(self.sps, self.rolloff, self.span)
        t.setflags(write=False)
        return t

    @property
    def delay(self) -> int:
        """Group delay of one filter in samples ((ntaps − 1) / 2)."""
        return self.span * self.sps

    @cached_property
    def composite(self) -> np.ndarray:
        """TX ⊗ matched filter (length 4·span·sps + 1), peak Σh² = sps at index 2·delay."""
        c = np.convolve(self.taps, self.taps)
        c.setflags(write=False)
        return c

    def noise_voltage(self, snr_db: float, gain: float = 1.0) -> float:
        """Per-sample complex noise std σ_n giving symbol SNR ``snr_db`` after the matched filter.

        For a received signal of amplitude ``gain`` relative to the unit-power transmitter output.
        """
        energy = float(np.sum(self.taps ** 2))
        return float(abs(gain) * np.sqrt(energy / 10 ** (snr_db / 10)))

    def isi_db(self) -> float:
        """Residual ISI of the truncated composite pulse at the symbol instants (dB below the peak)."""
        c = self.composite
        mid = 2 * self.delay
        side = np.concatenate([c[mid % self.sps::self.sps]])
        peak = c[mid]
        isi = np.sum(side ** 2) - peak ** 2
        return float(10 * np.log10(max(isi, 1e-30) / peak ** 2))


def shape(symbols, pulse: PulseShape) -> np.ndarray:
    """Upsample by ``pulse.sps`` and filter (numpy TX for tests; output delayed by ``pulse.delay``).

    The output has ``len(symbols)·sps + 2·delay`` samples: the full convolution.
    """
    symbols = np.asarray(symbols, dtype=np.complex128)
    up = np.zeros(symbols.size * pulse.sps, dtype=np.complex128)
    up[::pulse.sps] = symbols
    return np.convolve(up, pulse.taps)[: up.size + 2 * pulse.delay]


#: The carrier offset the detection filter is designed for (cycles per symbol): its passband reaches the
#: band edge of a signal offset this far (Pluto XOs, ±25 ppm each, at 2.4 GHz and 1 MS/s: up to ≈ 0.48).
DESIGN_CFO = 0.5


@lru_cache(maxsize=8)
def _detection_taps(sps: int, rolloff: float, span: int) -> np.ndarray:
    n = 2 * span * sps + 1
    # Passband to the band edge of a signal offset by DESIGN_CFO, kept below Nyquist.
    cutoff = min(DESIGN_CFO + (1 + rolloff) / 2, 0.45 * sps) / sps     # cycles per sample
    k = np.arange(n) - (n - 1) / 2
    h = 2 * cutoff * np.sinc(2 * cutoff * k) * np.kaiser(n, 6.0)
    h /= h.sum()
    h.setflags(write=False)
    return h


def detection_taps(sps=4, rolloff: float = 0.25, span: int = 12) -> np.ndarray:
    """Taps (float64, unit DC gain) of the detection filter whose output :class:`StreamSync` takes beside
    the raw samples: a Kaiser-windowed-sinc low-pass (β 6) with the matched filter's length, 2·span·sps + 1
    taps (so the same delay), cut off at DESIGN_CFO + (1 + rolloff)/2 cycles per symbol: the band edge of
    a signal offset by ½ cycle per symbol. ``sps`` may be a :class:`PulseShape` (its sps, roll-off, span).

    Measured at sps 4, roll-off 0.25, 5 dB SNR (detection metric ρ, mean / 1 % quantile; threshold
    0.15): CFO 0 → 0.48 / 0.33, 0.5 → 0.48 / 0.32, 0.75 → 0.29 / 0.19 (the RRC matched filter: 0.67 /
    0.56, 0.19 / 0.11, 0.07 / 0.04); on noise the same tail as the matched filter's.
    """
    if isinstance(sps, PulseShape):
        sps, rolloff, span = sps.sps, sps.rolloff, sps.span
    return _detection_taps(int(sps), float(rolloff), int(span))
