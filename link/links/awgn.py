"""The numpy link: Alice's frames RRC-shaped, complex AWGN per role, the project's synchroniser — no GNU Radio.

    stream ─shape (RRC)→ samples ─+ CN(0, σ²) at SNR_b→ synchronize → Bob's frames
                                 └+ CN(0, σ²) at SNR_e→ synchronize → Eve's frames

SNR = P̄/σ² per symbol after the matched filter (eq. 2; :meth:`radio.pulse.PulseShape.noise_voltage`).
No other impairment: this is the ideal channel against which ``sim`` and ``ota`` are measured, and the
fastest way to run an application's whole receive path (frames, headers, pilots, Bob's and Eve's
chains) in a test or a campaign. Frames reach the receivers as the RX flowgraph's would: as frame
PDUs on a bound ZMQ PUSH socket (``docs/interface.md``), or kept in this process for a collector.
It works on whole signals: a streamed transmission (:class:`link.sender.SymbolStream`) is gathered first, so
its memory grows with the run (the ``sim`` and ``ota`` links send as the symbols are made).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from link.links import Carried, Link, timed


@dataclass
class AwgnOptions:
    snr_b_db: float = 10.0
    snr_e_db: float = 10.0
    seed: int = 0                      # noise: [seed, 0] (Bob), [seed, 1] (Eve)


class _Branch:
    """One role's frames and the synchroniser's counts, shaped as an RX chain's for the runner."""

    def __init__(self, address):
        self.address = address
        self.frames: list = []
        self.stats: dict = {}
        self.samples = 0


class AwgnChannel:
    """What :meth:`AwgnLink.build` returns: per role its frames and sync stats (the runner's ``tb``)."""

    def __init__(self, outputs: dict, pulse, equalizer_taps: int):
        self.pulse = pulse
        self.equalizer_taps = equalizer_taps
        self.branches = {role: {"rx": _Branch(addr)} for role, addr in outputs.items()}

    def samples_consumed(self) -> dict[str, int]:
        return {r: b["rx"].samples for r, b in self.branches.items()}

    def sync_stats(self) -> dict[str, dict]:
        return {r: dict(b["rx"].stats) for r, b in self.branches.items()}


class AwgnLink(Link):
    kind = "awgn"

    def __init__(self, opts: AwgnOptions = AwgnOptions()):
        self.opts = opts

    def build(self, outputs: dict, pulse, equalizer_taps: int = 0) -> AwgnChannel:
        return AwgnChannel(outputs, pulse, equalizer_taps)

    def collect(self, tb: AwgnChannel, role: str):
        branch = tb.branches[role]["rx"]
        return lambda: list(branch.frames)

    def carry(self, tb: AwgnChannel, tx, timeout_s: float, log=print) -> Carried:
        return Carried(*timed(lambda: self._carry(tb, tx))[:2])

    def _carry(self, tb: AwgnChannel, tx) -> bool:
        from radio.channel import awgn
        from radio.pulse import shape
        from radio.sync import DroppedFrame, SyncConfig, synchronize

        from link.sender import as_stream

        pulse = tx.pulse
        clean = shape(as_stream(tx.stream).array(), pulse).astype(np.complex64)
        energy = float(np.sum(pulse.taps ** 2))
        snr = {"bob": self.opts.snr_b_db, "eve": self.opts.snr_e_db}
        for role, b in tb.branches.items():
            rx = b["rx"]
            noisy = awgn(clean, snr[role], np.random.default_rng([self.opts.seed, ("bob", "eve").index(role)]),
                         signal_power=energy)
            frames, stats = synchronize(noisy, pulse, config=SyncConfig(equalizer_taps=tb.equalizer_taps))
            rx.frames, rx.samples = frames, int(noisy.size)
            dropped = sum(isinstance(f, DroppedFrame) for f in frames)
            rx.stats = {**stats.as_dict(), "frames_published": len(frames) - dropped, "dropped_published": dropped,
                        "discontinuities": 0}
            if rx.address is not None:
                _publish(rx.address, frames)
        return True

    def report_fields(self, tb: AwgnChannel, carried: Carried) -> dict:
        return {"snr_b_db": self.opts.snr_b_db, "snr_e_db": self.opts.snr_e_db, "link": "awgn",
                "seconds": carried.seconds, "sync": tb.sync_stats()}


def _publish(address: str, frames: list) -> None:
    """Every frame as a PDU on a PUSH socket bound at ``address`` (as gr-zeromq's ``push_msg_sink`` does)."""
    import pmt
    import zmq

    from flowgraphs.pdu import frame_to_pdu

    sock = zmq.Context.instance().socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 10000)
    try:
        sock.bind(address)
        for f in frames:
            sock.send(pmt.serialize_str(frame_to_pdu(f)))
    finally:
        sock.close()
