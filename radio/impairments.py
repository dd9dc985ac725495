"""What a simulated channel branch does to the signal: one dataclass for every link and tool.

The GNU Radio channel branch (:class:`flowgraphs.chains.ChannelBranch`) applies these; the option
classes of the runners (``link.links.sim``, the baseline over ``sim``) hold them typed, and every
report writes them with :meth:`Impairments.to_dict`. (The CI fakes' air, with its stream events and
per-channel paths in device units, is :class:`radio.devices.fakes.AirConditions`.)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Impairments:
    """One channel branch's impairments (all off by default)."""

    cfo: float = 0.0            # carrier frequency offset, cycles per symbol (0.05 = 5% of the symbol rate)
    sro_ppm: float = 0.0        # sample-rate offset, ppm (channel_model epsilon = 1 + sro_ppm·1e-6; FrameSync reports −sro_ppm, the RX clock against the TX clock)
    delay: float = 0.0          # extra delay in samples (fractional part is what matters)
    phase_noise: float = 0.0    # rms phase noise in radians (low-pass Gaussian, bandwidth set by alpha)
    phase_noise_alpha: float = 0.01
    gain: float = 1.0           # amplitude gain
    phase: float = 0.0          # carrier phase, radians

    def to_dict(self) -> dict:
        return asdict(self)
