"""``jscec capture``: run an experiment and record Bob's raw RX samples as a SigMF recording.

The recording holds the samples entering Bob's RX chain (``cf32_le``), exactly what
``jscec replay`` feeds back into the same chain:

* ``--link sim`` — the simulated link (:class:`link.links.sim.SimLink`), tapped after Bob's
  channel branch; the sample rate written is the nominal ``--rate`` (symbol rate × sps);
* ``--link ota`` — the over-the-air link (:class:`link.links.ota.OtaLink`), tapped after Bob's device.

Any application records this way (:func:`link.runner.run` with a :class:`Recorder`): the DeepJSCEC
images (``jscec capture``) and the digital baseline (``jscec baseline --link ota --record``).

Metadata: sample rate, centre frequency, gains, the device's description, software version, the
link's public parameters (model, mode, key id, pulse, frames sent), one capture segment per
tuning, and one annotation per synchronised frame (start sample of its
first preamble symbol, length, frame counter, image/chunk, MER and SNR estimates, from the RX
chain's frame PDUs). Never a key or a seed. The transmitted images are saved beside the recording
(``<base>.reference.npz``) so a replay can score them; Bob's key stays in the run's folder (mode
0600) and its path is printed.

**Retuning** (``--freq F1 F2 … --dwell SECONDS`` or ``--dwell-samples N``): the run starts on F1
and moves to the next frequency every dwell, cyclically, until it ends. Each retune starts a new
SigMF capture segment at the first recorded sample after it, with its ``core:frequency`` (read
back from Bob's device) and ``core:datetime``. Over radios (``--link ota``) Bob's DeviceSource
retunes between reads — every device of the run (TX, Bob, Eve) moves together, so the link keeps
working — and tags ``rx_freq``; samples the radios had already buffered still come from the old
frequency. With ``--link sim`` nothing physical moves: a :class:`RetuneTagger` marks the same
boundaries on Bob's recorded stream. A replay reads a multi-segment recording as one stream.
"""
from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from jscec.errors import UserError

REFERENCE_SUFFIX = ".reference.npz"


def reference_path(base: Path) -> Path:
    base = Path(base)
    name = base.name
    for ext in (".sigmf-meta", ".sigmf-data"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    return base.with_name(name + REFERENCE_SUFFIX)


class Recorder:
    """Taps a running flowgraph's Bob RX input and writes the SigMF recording when the run ends.

    Any application over the ``sim`` or ``ota`` link: :func:`link.runner.run` calls :meth:`attach`
    before the flowgraph starts and :meth:`finish` after it stopped.
    """

    def __init__(self, base: Path, *, sample_rate: float, center_freq: float, extra_global: dict | None = None,
                 overwrite: bool = True, retune: tuple | None = None):
        """``sample_rate``/``center_freq``: what a link without a device (``sim``) records as nominal.
        ``retune``: ``(frequencies, dwell_samples)`` to visit in turn (the first is ``center_freq``)."""
        self.base = Path(base)
        self.sample_rate = float(sample_rate)
        self.center_freq = float(center_freq)
        self.device = {}
        self.extra_global = dict(extra_global or {})
        self.overwrite = overwrite
        self.retune = retune
        self.schedule = None
        self.writer = None
        self.key_path = None
        self.meta_path = None
        self.ref_path = None

    def attach(self, tb, link, tx, app) -> None:
        """Describe the device from ``link``, the transmission ``tx`` from ``app``, and open the recording."""
        dev = link.recording_device(tb)
        self.sample_rate = float(dev.get("sample_rate_hz", self.sample_rate))
        self.center_freq = float(dev.get("center_freq_hz", self.center_freq))
        self.device = {"center_freq_hz": self.center_freq, "sample_rate_hz": self.sample_rate, **dev}
        self.key_path = getattr(tx, "key_path", None)
        self.ref_path = tx.ref_path
        extra = app.recording_fields(tx, self.sample_rate)
        self.extra_global = {**link.recording_fields(), **self.extra_global}
        self._open(tb, link.tap(tb), tb.branches["bob"]["rx"], extra, tx.pulse.sps)

    def _open(self, tb, tap, rx_chain, extra: dict, sps: int) -> None:
        """Open the SigMF writer (global fields ``extra``, then ``extra_global``), connect ``tap`` (None:
        Bob's DeviceSource) into it with the retune schedule if any, and log ``rx_chain``'s frames."""
        from flowgraphs.blocks import FRAMES_PORT
        from flowgraphs.device_blocks import RetuneSchedule, RetuneTagger
        from flowgraphs.device_link import FrameLog, RecordingSink
        from radio.recording import RecordingWriter

        extra = dict(extra)
        if self.retune is not None:
            freqs, dwell = self.retune
            self.schedule = RetuneSchedule(freqs, dwell)
            extra["retune"] = {"frequencies_hz": self.schedule.freqs, "dwell_samples": self.schedule.dwell}
        extra.update(self.extra_global)
        self.base.parent.mkdir(parents=True, exist_ok=True)
        self.writer = RecordingWriter(self.base, self.sample_rate, self.center_freq, self.device, extra,
                                      overwrite=self.overwrite)
        if tap is None:
            self.sink = tb.add_recorder("bob", self.writer)
            if self.schedule is not None:
                tb.set_retune("bob", self.schedule)
        else:
            if self.schedule is not None:   # no device to move: tag the boundaries on the recorded stream
                self.tagger = RetuneTagger(self.schedule)
                tb.connect(tap, self.tagger)
                tap = self.tagger
            self.sink = RecordingSink(self.writer)
            tb.connect(tap, self.sink)
        self.log = FrameLog(sps)
        tb.msg_connect(rx_chain, FRAMES_PORT, self.log, "in")

    def finish(self, tb) -> dict:
        """Annotate the frames, close the recording and save the reference images beside it."""
        if getattr(self.sink, "error", None) is not None:
            raise UserError(f"recording failed: {str(self.sink.error).splitlines()[0]}")
        n = self.writer.count
        frames = sorted(self.log.frames, key=lambda f: f["start"])
        for f in frames:
            start = max(0, int(math.floor(f["start"])))
            length = min(f["length"], n - start)
            if length <= 0:
                continue
            fields = {k: f[k] for k in ("counter", "image", "chunk")}
            fields.update({k: round(f[k], 3) for k in ("mer_db", "snr_db") if math.isfinite(f[k])})
            self.writer.annotate(start, length, label="jscec frame", **fields)
        segments = [{"sample_start": c["core:sample_start"], "frequency_hz": c["core:frequency"]}
                    for c in self.writer.metadata()["captures"]]
        self.meta_path = self.writer.close()
        ref = reference_path(self.base)
        tmp = ref.with_name(f".{ref.name}.{os.getpid()}.tmp")
        try:
            shutil.copyfile(self.ref_path, tmp)
            os.replace(tmp, ref)
        except BaseException:   # interrupted or failed: no half-written copy stays behind
            tmp.unlink(missing_ok=True)
            raise
        return {"meta": str(self.meta_path), "data": str(self.writer.data_path), "reference": str(ref),
                "samples": int(n), "frames_annotated": len(frames), "sample_rate_hz": self.sample_rate,
                "segments": segments}

    def abort(self) -> None:
        """The run failed or was interrupted: remove the unfinished recording's temporary files (a
        recording already closed stays, as do the keys)."""
        if self.writer is not None and self.meta_path is None:
            self.writer.abort()


@dataclass
class CaptureOptions:
    recording: str | None = None      # base path (default <out>/capture)
    rate: float = 1e6                 # nominal sample rate of a sim capture
    freq: float | list = 2.4e9        # centre frequency (sim: nominal); several: retune every dwell
    dwell_s: float | None = None      # time on each frequency, seconds ...
    dwell_samples: int | None = None  # ... or samples
    extra: dict = field(default_factory=dict)


def retune_plan(freq, rate: float, dwell_s: float | None = None, dwell_samples: int | None = None):
    """``(frequencies, retune)`` from the options: ``retune`` is ``(frequencies, dwell samples)`` or
    None for one frequency; refuses (``UserError``) a dwell without several frequencies and vice versa."""
    freqs = [float(f) for f in (freq if isinstance(freq, (list, tuple)) else [freq])]
    if not freqs or any(not (f > 0 and math.isfinite(f)) for f in freqs):
        raise UserError(f"--freq takes positive frequencies in Hz, got {freqs}")
    if dwell_s is not None and dwell_samples is not None:
        raise UserError("give --dwell (seconds) or --dwell-samples, not both")
    dwelling = dwell_s is not None or dwell_samples is not None
    if len(freqs) == 1:
        if dwelling:
            raise UserError("--dwell/--dwell-samples need several --freq values to retune between")
        return freqs, None
    if not dwelling:
        raise UserError(f"{len(freqs)} --freq values need --dwell SECONDS or --dwell-samples N (time on each)")
    dwell = int(dwell_samples) if dwell_samples is not None else int(round(float(dwell_s) * rate))
    if dwell < 1:
        raise UserError(f"the dwell must be at least one sample, got {dwell_s if dwell_samples is None else dwell}")
    return freqs, (freqs, dwell)


def run_capture(app, link, run_opts, opts: CaptureOptions, log=print) -> dict:
    """Run ``app`` over ``link`` (``sim`` or ``ota``) with Bob's RX input recorded; the report gains
    ``recording`` and ``key_file`` (Bob's key, kept out of the recording)."""
    from link.runner import run

    freqs, retune = retune_plan(opts.freq, opts.rate, opts.dwell_s, opts.dwell_samples)
    if link.kind not in ("sim", "ota"):
        raise UserError(f"unknown --link {link.kind} (use sim or ota)")
    if link.kind == "ota":
        link.opts.freq = freqs[0]
    base = Path(opts.recording) if opts.recording else Path(run_opts.out_dir) / "capture"
    rec = Recorder(base, sample_rate=opts.rate, center_freq=freqs[0], extra_global=opts.extra, retune=retune)
    try:
        report = run(app, link, run_opts, recorder=rec, log=log)
    except BaseException:
        rec.abort()
        raise
    report["key_file"] = str(rec.key_path)
    return report
