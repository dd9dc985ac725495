"""The live view: what a run shows while it runs, on a local web page (``--live``).

    receive chains (processes) ──frame, image, scores──┐
    runner: watch() ──run, spectrum, sync counters──────┼─ZMQ PUSH→ hub (python -m link.live) ──HTTP/SSE→ page
    campaign ──cell progress────────────────────────────┘        127.0.0.1:PORT

* :class:`link.live.view.LiveView` (the CLI's ``--live``) binds the page's port on 127.0.0.1 (a busy
  port is refused in one line), starts the hub process (:mod:`link.live.hub`) and puts the hub's ZMQ
  address (an ``ipc://`` socket in a private folder) in ``$JSCEC_LIVE``; every process of the run
  inherits it: the receive chains, a campaign's workers and their chains.
* Every sender uses :func:`publisher` (:mod:`link.live.publish`): sends never block and are dropped
  when the hub lags, so the run keeps its pace; without ``$JSCEC_LIVE`` it is None and nothing runs.
* The runner calls :func:`watch` around its receivers (run start and end, and a thread that sends the
  synchronisers' latest input samples for the spectrum and their counters, 4 times a second) and
  :func:`finished` with the report; the receive chains send each frame they handle and each image
  they decode; a campaign sends its progress (:func:`campaign`).
* The hub (:mod:`link.live.state`) folds the messages into a view per run, computes the spectra and
  PNGs, and pushes updates to the page (``link/live/page.html``) as server-sent events, ≤ 0.1 s apart.

Nothing secret travels: the messages hold counters, figures, payload points, decoded images and
public settings, never a key, a seed or a key file's path (:func:`run_meta` picks its fields one by
one).
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np

#: The environment variable holding the hub's ZMQ address.
ENV = "JSCEC_LIVE"
#: Seconds between the runner's spectrum/counter messages.
SPECTRUM_EVERY_S = 0.25
#: Input samples per spectrum message.
SPECTRUM_SAMPLES = 16384


def publisher():
    """This process's :class:`link.live.publish.Publisher`, or None without a live view."""
    from link.live.publish import get

    return get(ENV)


def enabled() -> bool:
    import os

    return bool(os.environ.get(ENV))


def _num(v):
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def run_meta(app, link, tx, tb, out_dir=None) -> dict:
    """The public description of a run the page shows: application, link, roles, requested SNRs,
    frames and images sent, sample rate, the reference images' file. Never keys or seeds."""
    o = getattr(link, "opts", None)
    info = getattr(link, "info", None)
    requested = {"bob": _num(getattr(o, "snr_b_db", getattr(o, "snr_b", None))),
                 "eve": _num(getattr(o, "snr_e_db", None))}
    if info is not None and requested["bob"] is None:      # a replay: what the recording says was set
        requested["bob"] = _num((getattr(info, "global_info", None) or {}).get("jscec:snr_b_db"))
    rate = getattr(o, "rate", None) or getattr(info, "sample_rate", None)
    images = getattr(tx, "images", None)
    ref = getattr(tx, "ref_path", None)
    return {"app": str(getattr(app, "name", type(app).__name__)), "link": str(getattr(link, "kind", "")),
            "roles": list(getattr(tb, "branches", None) or ()), "requested_snr_db": requested,
            "sample_rate_hz": _num(rate), "frames_sent": getattr(tx, "frames_sent", None),
            "images": len(images) if images is not None else None,
            "model": str(getattr(tx, "model_name", "") or ""), "mode": str(getattr(tx, "mode", "") or ""),
            "out": str(out_dir) if out_dir is not None else None,
            "reference": str(ref) if ref is not None else None}


class _Spectra(threading.Thread):
    """Every :data:`SPECTRUM_EVERY_S`: each synchroniser's latest input samples (``FrameSync.recent``)
    and its counters, one message per role."""

    def __init__(self, pub, tb):
        super().__init__(name="jscec-live-spectra", daemon=True)
        self.pub = pub
        self.tb = tb
        self.stop = threading.Event()

    def run(self):
        last = {}
        while not self.stop.wait(SPECTRUM_EVERY_S):
            self.once(last)

    def once(self, last: dict) -> None:
        for role, branch in list((getattr(self.tb, "branches", None) or {}).items()):
            sync = getattr(branch.get("rx"), "sync", None)
            if sync is None:
                continue
            recent = getattr(sync, "recent", None)
            blob = b""
            if recent is not None and last.get(role) is not recent:
                last[role] = recent
                blob = np.ascontiguousarray(recent[-SPECTRUM_SAMPLES:], np.complex64).tobytes()
            try:
                stats = {k: v for k, v in sync.stats().items() if isinstance(v, (int, float))}
            except Exception:     # a synchroniser being torn down: skip this look
                stats = {}
            self.pub.send("spectrum", {"role": role, "stats": stats}, blob)


@contextlib.contextmanager
def watch(app, link, tx, tb, out_dir=None):
    """Around a run's receivers: ``run`` (start) before them, the spectrum thread while they run,
    ``run_end`` (with the error's one line, if any) after. Without a live view: nothing."""
    pub = publisher()
    if pub is None:
        yield
        return
    pub.send("run", run_meta(app, link, tx, tb, out_dir))
    spectra = _Spectra(pub, tb)
    spectra.start()
    try:
        yield
    except BaseException as exc:
        spectra.stop.set()
        spectra.join()
        pub.send("run_end", {"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__})
        raise
    spectra.stop.set()
    spectra.join()
    spectra.once({})     # the final counters
    pub.send("run_end", {})


_REPORT_KEYS = ("snr_b_db", "snr_e_db", "snr_b_requested_db", "seconds", "samples_per_branch")
_SIDE_KEYS = ("psnr", "ssim", "ms_ssim", "mer_db", "frames_sent", "frames_ok", "frames_received",
              "frames_dropped", "error")


def finished(report: dict) -> None:
    """The run's report, the public figures of it (PSNR, SSIM, MER, frame counts, SNRs)."""
    pub = publisher()
    if pub is None or not isinstance(report, dict):
        return
    summary = {k: report[k] for k in _REPORT_KEYS if k in report}
    for role in ("bob", "eve"):
        if isinstance(report.get(role), dict):
            summary[role] = {k: report[role][k] for k in _SIDE_KEYS if k in report[role]}
    pub.send("report", {"report": summary})


def campaign(event: str, **fields) -> None:
    """A campaign's progress: ``start`` (plan, cells, to run), ``cell`` (done, total, line), ``end``."""
    pub = publisher()
    if pub is not None:
        pub.send("campaign", {"event": event, **fields})
