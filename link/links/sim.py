"""The simulated link: Alice's symbols → GNU Radio TX → one simulated channel branch per role → RX chains.

    zeromq.pull_source → TxChain ─┬→ ChannelBranch(SNR_b, Bob's impairments) → RxChain → Bob
                                 └→ ChannelBranch(SNR_e, Eve's impairments) → RxChain → Eve

(:class:`flowgraphs.loopback.SimLoopback`). The flowgraph stops once every synchroniser has consumed
the whole stream (allowing for the worst sample-rate offset), or nothing moves for a while.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from link.links import Carried, Link, timed
from link.links.flowgraph import run_flowgraph
from link.sender import TAIL_SYMBOLS, SenderThread
from radio.impairments import Impairments


@dataclass
class SimOptions:
    """The simulated channel of each role."""

    snr_b_db: float = 10.0
    snr_e_db: float = 10.0
    bob: Impairments = field(default_factory=Impairments)
    eve: Impairments = field(default_factory=Impairments)
    seed: int = 0                        # channel noise: 2·seed (Bob), 2·seed + 1 (Eve) ...
    noise_seeds: dict | None = None      # ... unless given per role

    def impairments(self) -> dict:
        return {"bob": self.bob.to_dict(), "eve": self.eve.to_dict()}


class SimLink(Link):
    kind = "sim"

    def __init__(self, opts: SimOptions = SimOptions()):
        self.opts = opts

    def build(self, outputs: dict, pulse, equalizer_taps: int = 0):
        from flowgraphs.loopback import SimLoopback
        from radio.transport import free_tcp_address

        o = self.opts
        self.tx_address = free_tcp_address()
        return SimLoopback(self.tx_address, outputs.get("bob"), outputs.get("eve"), snr_b_db=o.snr_b_db,
                           snr_e_db=o.snr_e_db, bob_impairments=o.bob, eve_impairments=o.eve, pulse=pulse,
                           seed=o.seed, equalizer_taps=equalizer_taps, roles=tuple(outputs),
                           noise_seeds=o.noise_seeds)

    def tap(self, tb):
        return tb.branches["bob"]["channel"]

    def recording_device(self, tb) -> dict:
        return {"device": "sim", "hw": "jscec simulated loopback (GNU Radio channels.channel_model)", "uri": "sim",
                "snr_db": self.opts.snr_b_db, "impairments": self.opts.bob.to_dict()}

    def recording_fields(self) -> dict:
        return {"link": "sim", "snr_b_db": self.opts.snr_b_db}

    def carry(self, tb, tx, timeout_s: float, log=print) -> Carried:
        o, pulse = self.opts, tx.pulse
        sender = SenderThread(self.tx_address, tx.stream)     # an array, or symbols made as they are sent
        stream = sender.stream
        worst_rate = 1 - 2e-6 * max(abs(imp.sro_ppm) for role, imp in (("bob", o.bob), ("eve", o.eve))
                                    if role in tb.branches)
        expected = int((stream.size - TAIL_SYMBOLS // 2) * pulse.sps * worst_rate)
        try:
            drained, seconds, t0, t0_perf = timed(lambda: run_flowgraph(
                tb, tb.samples_consumed, lambda now: sender.failed or (bool(now) and min(now.values()) >= expected),
                timeout_s=timeout_s, total=expected, desc="loopback", on_start=sender.start))
        except BaseException:
            sender.abort()
            raise
        sender.close()      # the source's error, if it failed (the flowgraph stopped at once)
        if not drained:
            log(f"warning: the flowgraph stopped before consuming the whole stream ({tb.samples_consumed()})")
        return Carried(drained, seconds, t0, t0_perf, {"samples_per_branch": int(stream.size * pulse.sps)})

    def report_fields(self, tb, carried: Carried) -> dict:
        o = self.opts
        return {"snr_b_db": o.snr_b_db, "snr_e_db": o.snr_e_db, "impairments": o.impairments(),
                "samples_per_branch": carried.fields["samples_per_branch"], "seconds": carried.seconds,
                "sync": tb.sync_stats()}
