"""The one runner: any application over any link.

An **application** (:class:`link.apps.deepjscec.DeepJscecApp`, :class:`link.apps.baseline.BaselineApp`)
decides what is sent and how it is scored; a **link** (:mod:`link.links`: ``awgn``, ``sim``, ``ota``, ``replay``)
decides how the frames travel. :func:`run` joins them::

    link.open           devices or recording; every refusal comes here, before anything is written
    app.transmission    what is sent (Alice's frames), or what a recording says was sent
    link.build          the flowgraph: one RX chain per role the link serves
    app.receivers       what listens to each RX chain (processes on ZMQ, or an in-process collector)
    recorder.attach     (capture) a SigMF tap on Bob's RX input
    link.carry          the frames through the flowgraph
    app.finish          the receivers' results
    app.report          the result, from the application's scores and the link's figures

With a live view (``--live``, :mod:`link.live`), :func:`link.live.watch` around the receivers tells it the
run started and ended and sends the synchronisers' spectra and counters; without one it does nothing.

Output: a replay's folder appears only when it succeeds (staged); a sending run that is refused
removes the folder it created, so either way a refused run leaves nothing behind.

A receiver that dies (``app.receivers`` names it in its ``failures``: role → one line) does not stop the
link: the run goes to its end, the report is written with the dead receiver's side marked (``error``,
``exit_code``), and then :class:`RunFailed` says which receiver died and where the partial report is.
An interrupted run (Ctrl-C, or SIGTERM/SIGHUP through the CLI) unwinds the same ``with`` blocks: the
receivers are stopped, staged folders and unfinished recordings removed; keys stay.
"""
from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from jscec.errors import UserError
from link import live
from link.output import commit_stage, staged_output


class RunFailed(UserError):
    """A run that went to its end but lost a receiver; ``report`` is the partial report it wrote."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


@dataclass
class RunOptions:
    """What every run shares, whatever the application and link."""

    out_dir: str | None = "out/run"      # None: the application writes no folder (e.g. the baseline)
    equalizer_taps: int = 0
    timeout_s: float = 900.0


def _stopped(tb) -> None:
    """Make sure a GNU Radio flowgraph no longer runs: one interrupted just after its ``start()`` would
    otherwise be dropped running, and its destructor waits for block threads that need the interpreter
    lock it holds (a hang). A no-op for one already stopped or never started, and for a link without
    a flowgraph."""
    stop, wait = getattr(tb, "stop", None), getattr(tb, "wait", None)
    if callable(stop) and callable(wait):
        stop()
        wait()


def _cfo_advice(tb, link, tx):
    """``(no frame synchronised at all, the one line naming jscec calibrate)`` when a synchroniser dropped
    frames for their carrier offset (:func:`radio.sync.cfo_advice`), else None."""
    from radio.sync import cfo_advice

    stats = tb.sync_stats() if hasattr(tb, "sync_stats") else {}
    rate = getattr(getattr(link, "opts", None), "rate", None) or getattr(getattr(link, "info", None),
                                                                         "sample_rate", None)
    lines = [line for s in stats.values() if (line := cfo_advice(s, rate, tx.pulse.sps)) is not None]
    if not lines:
        return None
    return all(int(s.get("frames", 0)) == 0 for s in stats.values()), lines[0]


def run(app, link, opts: RunOptions, *, recorder=None, log=print) -> dict:
    """Run ``app`` over ``link`` once; returns the application's report."""
    out_dir = Path(opts.out_dir) if opts.out_dir else None
    existed = out_dir is None or out_dir.exists()
    staged = getattr(link, "staged", False) and out_dir is not None
    failures = {}
    try:
        with contextlib.ExitStack() as stack:
            link.open(stack)
            work = stack.enter_context(staged_output(out_dir)) if staged else out_dir
            tx = app.transmission(link, work)
            outputs = app.outputs(link.roles(app.roles(tx)))
            tb = None
            try:
                tb = link.build(outputs, tx.pulse, opts.equalizer_taps)
                with live.watch(app, link, tx, tb, out_dir), app.receivers(tx, tb, link, outputs, work) as rx:
                    if recorder is not None:
                        recorder.attach(tb, link, tx, app)
                    try:
                        carried = link.carry(tb, tx, opts.timeout_s, log)
                    except BaseException:
                        _stopped(tb)   # while the receivers still read: a link's sink waits for its reader
                        raise
                    recording = recorder.finish(tb) if recorder is not None else None
                    results = app.finish(rx, tx, tb, link)
                    failures = dict(getattr(rx, "failures", None) or {})
                fields = link.report_fields(tb, carried)
                advice = _cfo_advice(tb, link, tx)
            finally:
                _stopped(tb)
                link.close(tb)
            if staged:
                commit_stage(work, out_dir)
        report = app.report(tx, results, fields, recording, out_dir)
        live.finished(report)
        if hasattr(link, "complete"):
            link.complete(report, carried, out_dir)
    except UserError:
        if not existed and not staged:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    if advice is not None:
        lost, line = advice
        if lost:      # nothing synchronised: the offset is why; the report is written
            raise RunFailed(line, report)
        log(f"warning: {line}")
    if failures:
        written = out_dir / "result.json" if out_dir is not None else None
        where = (f"partial report in {written}" if written is not None and written.is_file()
                 else "no report written")
        raise RunFailed("; ".join(failures.values()) + f"; {where}", report)
    return report
