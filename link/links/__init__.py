"""Links: how frames travel from Alice's symbol stream to one RX chain per receiving role.

Every link delivers synchronised frames per receiving role, as frame PDUs on ZMQ (``docs/interface.md``)
or to a collector in the runner's process:

* ``awgn`` (:class:`link.links.awgn.AwgnLink`) — numpy: RRC-shaped frames + complex AWGN per role → the
  project's synchroniser (no GNU Radio; the ideal channel);
* ``sim`` (:class:`link.links.sim.SimLink`) — TX → simulated channel branches → RX chains;
* ``ota`` (:class:`link.links.ota.OtaLink`) — TX → radios (or the CI fakes) → RX chains;
* ``replay`` (:class:`link.links.replay.ReplayLink`) — a SigMF recording → RX chains (nothing is sent).

:func:`link.runner.run` drives any application over any of them through the one interface below. (The
symbol-level AWGN simulations of ``jscec eval`` and ``jscec baseline --link awgn`` have no frames at all:
they live with each application, in ``models.evaluate`` and ``baseline.pipeline.simulate``.)
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Carried:
    """What a link reports of one run of its flowgraph."""

    drained: bool                 # the receivers consumed everything the link expected
    seconds: float                # from the flowgraph's start to its stop
    t0: float = 0.0               # time.monotonic() at the start
    t0_perf: float = 0.0          # time.perf_counter() at the start
    fields: dict = field(default_factory=dict)   # link-specific figures for the report


class Link:
    """One way for frames to travel. Subclasses set ``kind`` and implement the methods below.

    The runner calls, in order: :meth:`open` (acquire devices or check the recording: every refusal
    happens here, before any process starts or file is written), :meth:`roles`, :meth:`build`,
    :meth:`carry`, then :meth:`report_fields`; :meth:`close` always.
    """

    kind = ""
    #: False for a link that plays back what was sent before (the application then reads its
    #: transmission from the recording instead of making one).
    sends = True

    def open(self, stack: contextlib.ExitStack) -> None:
        """Acquire what the link needs (closed by ``stack``); refuse with ``UserError``."""

    def roles(self, wanted: tuple[str, ...]) -> list[str]:
        """The receiving roles of ``wanted`` this link serves (e.g. ``ota`` has Eve only with ``--eve``)."""
        return list(wanted)

    def build(self, outputs: dict, pulse, equalizer_taps: int = 0):
        """The flowgraph: one RX chain per role of ``outputs`` (role → ZMQ address of its frame PDUs, or
        None: frames only inside the process, e.g. for a collector). Its ``branches[role]["rx"]`` is
        the RX chain; it has ``samples_consumed()`` and ``sync_stats()``."""
        raise NotImplementedError

    def tap(self, tb):
        """The block whose output enters Bob's RX chain (what a capture records); None: the device's
        source, recorded with ``tb.add_recorder``."""
        return None

    def recording_device(self, tb) -> dict:
        """The ``device`` description a capture of this link writes."""
        raise NotImplementedError

    def recording_fields(self) -> dict:
        """Global ``jscec:`` fields a capture of this link writes (``link`` and the like)."""
        return {"link": self.kind}

    def carry(self, tb, tx, timeout_s: float, log=print) -> Carried:
        """Run the flowgraph with the transmission ``tx`` (its ``stream`` of frame symbols — an array, or a
        :class:`link.sender.SymbolStream` whose symbols are made while they are sent, of known ``size`` — and
        ``pulse``; a replay sends nothing) until the receivers have it all."""
        raise NotImplementedError

    def collect(self, tb, role: str):
        """For an in-process receiver: connect to ``role``'s RX chain (before the run) and return a function
        that gives its frames (``SyncedFrame`` / ``DroppedFrame``) in arrival order."""
        from gnuradio import blocks

        from flowgraphs.blocks import FRAMES_PORT
        from flowgraphs.pdu import pdu_to_frame

        dbg = blocks.message_debug()
        tb.msg_connect(tb.branches[role]["rx"], FRAMES_PORT, dbg, "store")
        return lambda: [pdu_to_frame(dbg.get_message(i)) for i in range(dbg.num_messages())]

    def report_fields(self, tb, carried: Carried) -> dict:
        """The link's part of the report: ``snr_b_db``/``snr_e_db`` and whatever describes the run."""
        raise NotImplementedError

    def close(self, tb) -> None:
        if tb is not None and hasattr(tb, "close"):
            tb.close()


def mean_snr(frames: list[dict]):
    """The mean pilot SNR estimate of a frame log's frames (None without one)."""
    v = [f["snr_db"] for f in frames if np.isfinite(f["snr_db"])]
    return float(np.mean(v)) if v else None


def timed(run) -> tuple[object, float, float, float]:
    """``(run(), seconds, t0, t0_perf)``."""
    t0, t0_perf = time.monotonic(), time.perf_counter()
    out = run()
    return out, time.monotonic() - t0, t0, t0_perf
