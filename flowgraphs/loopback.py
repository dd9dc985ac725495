"""The simulated loopback flowgraph: one TX, two independent channel branches, Bob's and Eve's RX.

    zeromq.pull_source (frame symbols) → TxChain ─┬→ ChannelBranch(SNR_b) → RxChain → push_msg_sink (Bob)
                                                 └→ ChannelBranch(SNR_e) → RxChain → push_msg_sink (Eve)

The same blocks exist as GNU Radio Companion flowgraphs in ``flowgraphs/grc/`` (``sim_loopback.grc``);
this module builds it in Python so the runner can set every parameter and watch progress. A
flowgraph fed by ZMQ never finishes by itself: ``link.links.flowgraph.run_flowgraph`` stops it once both
synchronisers have consumed the expected number of samples (or nothing moves for a while).
"""
from __future__ import annotations

from gnuradio import gr, zeromq

from flowgraphs.chains import ChannelBranch, RxChain, TxChain
from radio.impairments import Impairments
from radio.pulse import PulseShape

#: gr-zeromq source timeout (ms): how often the source wakes up to check for stop.
ZMQ_TIMEOUT_MS = 100


class SimLoopback(gr.top_block):
    """Symbols from ``tx_address`` → two simulated branches → PDUs to ``bob_address`` / ``eve_address``."""

    def __init__(self, tx_address: str, bob_address: str | None, eve_address: str | None, *, snr_b_db: float,
                 snr_e_db: float, bob_impairments: Impairments = Impairments(),
                 eve_impairments: Impairments = Impairments(), pulse: PulseShape = PulseShape(), seed: int = 0,
                 equalizer_taps: int = 0, roles: tuple = ("bob", "eve"), noise_seeds: dict | None = None):
        """``roles``: the branches built; a role whose address is None publishes its frames on its RX
        chain's ``frames`` port only. ``noise_seeds``: role → channel noise seed (default 2·seed for Bob,
        2·seed + 1 for Eve)."""
        gr.top_block.__init__(self, "jscec_sim_loopback", catch_exceptions=False)
        self.source = zeromq.pull_source(gr.sizeof_gr_complex, 1, tx_address, ZMQ_TIMEOUT_MS, False, -1)
        self.tx = TxChain(pulse)
        self.connect(self.source, self.tx)
        self.branches = {}
        seeds = {"bob": 2 * seed, "eve": 2 * seed + 1, **(noise_seeds or {})}
        for name, addr, snr, imp in (("bob", bob_address, snr_b_db, bob_impairments),
                                     ("eve", eve_address, snr_e_db, eve_impairments)):
            if name not in roles:
                continue
            channel = ChannelBranch(snr, imp, pulse, seed=seeds[name])
            rx = RxChain(pulse, equalizer_taps)
            self.connect(self.tx, channel, rx)
            self.branches[name] = {"channel": channel, "rx": rx}
            if addr is not None:
                sink = zeromq.push_msg_sink(addr, ZMQ_TIMEOUT_MS, True)
                self.msg_connect(rx, "frames", sink, "in")
                self.branches[name]["sink"] = sink

    def samples_consumed(self) -> dict[str, int]:
        return {name: int(b["rx"].sync.samples_done()) for name, b in self.branches.items()}

    def sync_stats(self) -> dict[str, dict]:
        return {name: b["rx"].sync.stats() for name, b in self.branches.items()}
