"""``jscec replay``: a SigMF recording through the same RX flowgraph and Bob's / Eve's chains.

    file:RECORDING → FileDevice → DeviceSource → RxChain → push_msg_sink → Bob's / Eve's chain

Both chains listen to the one synchroniser (the same samples synchronise the same way). The pulse,
model, mode and frame count come from the recording's ``jscec:`` metadata when it has them;
``--key`` (Bob's key file) is needed for Bob's chain, the reference images default to
``<base>.reference.npz`` beside the recording.

A replay is deterministic: the same recording gives bit-identical decoded images and JSON, except
for wall-clock figures, which live under the report's ``timing`` key. Malformed input is refused
with one line and leaves no output behind: everything is written into a hidden staging folder
that becomes ``--out`` only when the replay succeeded, and a recording in which the synchroniser
finds no frame is refused with "no DeepJSCEC frames found in RECORDING".
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from link.capture import reference_path
from link.output import commit_stage, load_reference, staged_output
from link.links.flowgraph import run_flowgraph
from link.apps.deepjscec import Receivers, link_report
from link.report import write_report
from jscec.errors import UserError
from radio.transport import free_tcp_address

CHAINS = ("bob", "eve")
REPLAY_BUFFER = 65536
#: Replays finish frames in a worker process (radio.sync_process): the same frames, on two cores; of
#: no use on one.
SYNC_PROCESS_DEFAULT = (os.cpu_count() or 1) > 1


@dataclass
class ReplayOptions:
    recording: str
    chains: tuple = CHAINS
    key: str | None = None
    reference: str | None = None
    model: str | None = None          # default: the recording's jscec:model_path / jscec:model
    mode: str | None = None           # default: the recording's (or the key's)
    sps: int | None = None            # default: the recording's pulse (else 4)
    rolloff: float | None = None
    equalizer_taps: int = 0
    sync_process: bool = SYNC_PROCESS_DEFAULT
    out_dir: str = "out/replay"
    timeout_s: float = 900.0
    threads: int = 1


@dataclass(frozen=True)
class RecordingInfo:
    """What a replay needs to know of a recording before it opens it as a device."""

    global_info: dict
    samples: int
    sample_rate: float
    center_freq: float | None
    meta_path: Path
    segments: list      # [sample_start, core:frequency] per capture segment (one per retune)


def recording_info(path: str) -> RecordingInfo:
    """Open and validate the recording (UserError on malformed input) and read its global facts."""
    from radio.recording import open_recording

    with open_recording(path) as rec:
        return RecordingInfo(dict(rec.global_info), len(rec), rec.sample_rate, rec.center_freq, rec.meta_path,
                             [[int(c.get("core:sample_start", 0)), c.get("core:frequency")] for c in rec.captures])


def run_replay(opts: ReplayOptions, log=print) -> dict:
    from flowgraphs.device_link import DeviceLink
    from link.links.ota import mean_snr
    from models.checkpoint import resolve_model
    from crypto.cipher import CipherKeys
    from radio.devices import RadioSettings, open_device
    from radio.pulse import PulseShape

    chains = tuple(opts.chains)
    if not chains or any(c not in CHAINS for c in chains):
        raise UserError(f"--chains takes bob, eve or bob,eve; got {','.join(chains) or 'nothing'}")
    info = recording_info(opts.recording)
    g, n_samples, rate, freq, meta_path = info.global_info, info.samples, info.sample_rate, info.center_freq, info.meta_path
    name = meta_path.name
    if g.get("jscec:payload") == "digital-baseline":
        raise UserError(f"{name} is a digital-baseline recording: replay it with "
                        "`jscec baseline --link replay --recording ... --key ...`")
    if n_samples == 0:
        raise UserError(f"no DeepJSCEC frames found in {name} (it holds no samples)")
    pulse_meta = g.get("jscec:pulse") if isinstance(g.get("jscec:pulse"), dict) else {}
    pulse = PulseShape(int(opts.sps or pulse_meta.get("sps", 4)), float(opts.rolloff or pulse_meta.get("rolloff", 0.25)))

    keys = key_path = None
    if "bob" in chains:
        if not opts.key:
            raise UserError("replaying through Bob's chain needs --key (Bob's key file, printed by jscec capture); "
                            "or use --chains eve")
        key_path = Path(opts.key)
        if not key_path.is_file():
            raise UserError(f"no key file {key_path}")
        try:
            keys = CipherKeys.load(key_path)
        except Exception as exc:  # noqa: BLE001 - never echo key material: say only what failed
            raise UserError(f"cannot read key file {key_path} ({type(exc).__name__})") from None
    mode = opts.mode or (keys.mode if keys else None) or g.get("jscec:mode")
    k = int(keys.k if keys else g.get("jscec:k", 512))
    model = opts.model or g.get("jscec:model_path") or g.get("jscec:model")
    if not model:
        raise UserError(f"{name} does not say which model sent it; pass --model")
    model_path = resolve_model(model)
    if keys is not None and g.get("jscec:key_id") not in (None, keys.key_id):
        log(f"warning: the key's id {keys.key_id} differs from the recording's {g.get('jscec:key_id')}")
    ref = Path(opts.reference) if opts.reference else reference_path(meta_path)
    if not ref.is_file():
        raise UserError(f"no reference images {ref}" + ("" if opts.reference else "; pass --reference NPZ"))
    originals = load_reference(ref)
    frames_sent = g.get("jscec:frames_sent")

    out_dir = Path(opts.out_dir)
    settings = RadioSettings(center_freq_hz=freq or 1.0, sample_rate_hz=rate, buffer_size=REPLAY_BUFFER)
    with staged_output(out_dir) as stage:
        dev = open_device(f"file:{meta_path}", settings)
        tb = None
        try:
            addr = {c: free_tcp_address() for c in chains}
            # The flowgraph first: its synchroniser worker starts while the chains load their models.
            tb = DeviceLink({c: (dev, addr[c]) for c in chains}, pulse=pulse,
                            equalizer_taps=opts.equalizer_taps, sync_process=opts.sync_process)
            with Receivers(addr, stage, model_path, key_path=key_path, ref_path=ref, k=k,
                           mode=mode or "lwe", threads=opts.threads) as rx:
                t0, t0_perf = time.monotonic(), time.perf_counter()
                drained = run_flowgraph(tb, tb.samples_consumed,
                                        lambda now: bool(now) and min(now.values()) >= n_samples,
                                        timeout_s=opts.timeout_s, total=n_samples, desc="replay")
                dsp_seconds = time.monotonic() - t0
                # to the synchroniser's last sample or frame (the runner polls, and waits before stopping)
                rx_seconds = max(b["rx"].sync.last_activity for b in tb.branches.values()) - t0_perf
                tb.raise_device_error(f"reading {name}")
                if not drained:
                    log(f"warning: replay stopped before the end of {name} ({tb.samples_consumed()} of {n_samples})")
                frame_log = tb.branches[chains[0]]["log"]
                if not frame_log.frames:
                    raise UserError(f"no DeepJSCEC frames found in {name}")
                results = rx.finish(frames_sent if frames_sent is not None else len(frame_log.frames), tb)
                chains_seconds = time.monotonic() - t0
        finally:
            if tb is not None:
                tb.close()
            dev.close()
        commit_stage(stage, out_dir)

    snr = mean_snr(frame_log.frames)
    report = link_report(
        results, snr_b_db=snr, snr_e_db=snr, mode=mode or "lwe", params=g.get("jscec:params"),
        model=model_path.stem, images=g.get("jscec:image_source", f"{len(originals)} reference images"),
        image_sizes=[list(im.shape) for im in originals], key_id=keys.key_id if keys else g.get("jscec:key_id"),
        pulse=pulse, link="replay", snr_estimated=True, chains=list(chains),
        recording={"meta": str(meta_path), "samples": n_samples, "sample_rate_hz": rate, "center_freq_hz": freq,
                   "segments": info.segments, "link": g.get("jscec:link"), "recorded_snr_b_db": g.get("jscec:snr_b_db"),
                   "frames_found": len(frame_log.frames), "drops_found": len(frame_log.drops)},
        sync=tb.sync_stats()[chains[0]],
        timing={"dsp_seconds": dsp_seconds, "rx_seconds": rx_seconds, "chains_seconds": chains_seconds,
                "samples_per_s": n_samples / max(rx_seconds, 1e-9), "x_real_time": n_samples / max(rx_seconds, 1e-9) / rate})
    write_report(report, originals, results, out_dir)
    report["timing"]["seconds"] = time.monotonic() - t0
    report["timing"]["full_x_real_time"] = n_samples / report["timing"]["seconds"] / rate
    (out_dir / "result.json").write_text(json.dumps(report, indent=1) + "\n")
    return report
