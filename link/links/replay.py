"""The replay link: a SigMF recording through the same RX flowgraph as a live run.

    file:RECORDING → FileDevice → DeviceSource → RxChain → frame PDUs → the application's receivers

Nothing is sent: the application reads what was transmitted (its model, keys or truth, the reference
images) from the recording's ``jscec:`` metadata and ``<base>.reference.npz``. Every role listens to
the one synchroniser (the same samples synchronise the same way). A replay is deterministic: the same
recording gives bit-identical results, except for wall-clock figures (the report's ``timing``). Its
output is staged (:func:`link.output.staged_output`): malformed input leaves nothing behind.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from link.links import Carried, Link, mean_snr, timed
from link.links.flowgraph import run_flowgraph

REPLAY_BUFFER = 65536
#: Replays finish frames in a worker process (radio.sync_process): the same frames, on two cores; of
#: no use on one.
SYNC_PROCESS_DEFAULT = (os.cpu_count() or 1) > 1


@dataclass(frozen=True)
class RecordingInfo:
    """What a replay needs to know of a recording before it opens it as a device."""

    global_info: dict
    samples: int
    sample_rate: float
    center_freq: float | None
    meta_path: Path
    segments: list      # [sample_start, core:frequency] per capture segment (one per retune)

    @property
    def name(self) -> str:
        return self.meta_path.name


def recording_info(path: str) -> RecordingInfo:
    """Open and validate the recording (UserError on malformed input) and read its global facts."""
    from radio.recording import open_recording

    with open_recording(path) as rec:
        return RecordingInfo(dict(rec.global_info), len(rec), rec.sample_rate, rec.center_freq, rec.meta_path,
                             [[int(c.get("core:sample_start", 0)), c.get("core:frequency")] for c in rec.captures])


@dataclass
class ReplayOptions:
    recording: str
    sync_process: bool = SYNC_PROCESS_DEFAULT


class ReplayLink(Link):
    kind = "replay"
    sends = False
    staged = True

    def __init__(self, opts: ReplayOptions):
        self.opts = opts
        self.info: RecordingInfo | None = None
        self.device = None

    def open(self, stack: contextlib.ExitStack) -> None:
        self.info = recording_info(self.opts.recording)
        stack.callback(self._close_device)

    def build(self, outputs: dict, pulse, equalizer_taps: int = 0):
        from flowgraphs.device_link import DeviceLink
        from radio.devices import RadioSettings, open_device

        info = self.info
        settings = RadioSettings(center_freq_hz=info.center_freq or 1.0, sample_rate_hz=info.sample_rate,
                                 buffer_size=REPLAY_BUFFER)
        self.device = open_device(f"file:{info.meta_path}", settings)
        self.outputs = dict(outputs)
        return DeviceLink({r: (self.device, a) for r, a in outputs.items()}, pulse=pulse,
                          equalizer_taps=equalizer_taps, sync_process=self.opts.sync_process)

    def _close_device(self) -> None:
        if self.device is not None:
            self.device.close()

    def carry(self, tb, tx, timeout_s: float, log=print) -> Carried:
        n, name = self.info.samples, self.info.name
        drained, dsp_seconds, t0, t0_perf = timed(lambda: run_flowgraph(
            tb, tb.samples_consumed, lambda now: bool(now) and min(now.values()) >= n, timeout_s=timeout_s,
            total=n, desc="replay"))
        # to the synchroniser's last sample or frame (the runner polls, and waits before stopping)
        rx_seconds = max(b["rx"].sync.last_activity for b in tb.branches.values()) - t0_perf
        tb.raise_device_error(f"reading {name}")
        if not drained:
            log(f"warning: replay stopped before the end of {name} ({tb.samples_consumed()} of {n})")
        return Carried(drained, dsp_seconds, t0, t0_perf, {"rx_seconds": rx_seconds})

    def frame_log(self, tb):
        """The frames the (one) synchroniser found."""
        return tb.branches[next(iter(self.outputs))]["log"]

    def report_fields(self, tb, carried: Carried) -> dict:
        info, g = self.info, self.info.global_info
        n, rate = info.samples, info.sample_rate
        log = self.frame_log(tb)
        snr = mean_snr(log.frames)
        rx_seconds = carried.fields["rx_seconds"]
        return {
            "snr_b_db": snr, "snr_e_db": snr, "link": "replay", "snr_estimated": True, "chains": list(self.outputs),
            "recording": {"meta": str(info.meta_path), "samples": n, "sample_rate_hz": rate,
                          "center_freq_hz": info.center_freq, "segments": info.segments, "link": g.get("jscec:link"),
                          "recorded_snr_b_db": g.get("jscec:snr_b_db"), "frames_found": len(log.frames),
                          "drops_found": len(log.drops)},
            "sync": tb.sync_stats()[next(iter(self.outputs))],
            "timing": {"dsp_seconds": carried.seconds, "rx_seconds": rx_seconds,
                       "chains_seconds": time.monotonic() - carried.t0,
                       "samples_per_s": n / max(rx_seconds, 1e-9), "x_real_time": n / max(rx_seconds, 1e-9) / rate},
        }

    def complete(self, report: dict, carried: Carried, out_dir: Path | None) -> None:
        """The whole replay's wall-clock time (report and figures included) under ``timing``."""
        if "timing" not in report or out_dir is None:
            return
        info = self.info
        report["timing"]["seconds"] = time.monotonic() - carried.t0
        report["timing"]["full_x_real_time"] = info.samples / report["timing"]["seconds"] / info.sample_rate
        (Path(out_dir) / "result.json").write_text(json.dumps(report, indent=1) + "\n")
