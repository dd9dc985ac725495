"""Benchmark: replay speed of a recording of the simulated loopback, at a nominal 1 MS/s.

    python benchmarks/bench_replay.py                                        # records 1 photo with cifar10-lwe first
    python benchmarks/bench_replay.py --model cifar10-lwe --images 3 --repeat 3
    python benchmarks/bench_replay.py --recording out/capture/capture.sigmf-meta --key out/capture/keys/bob.key

Two figures, in samples per second of wall-clock time and × real time at the recording's rate
(target: ≥ 5× real time at 1 MS/s):

* **RX DSP only** — FileDevice → DeviceSource → RxChain (matched filter + FrameSync) → frame log,
  no receive chains: what the GNU Radio RX flowgraph sustains, with the synchroniser's second stage
  in a worker process (replay's default) and, for comparison, all in the flowgraph's process; timed
  from the flowgraph's start to the synchroniser's last sample or frame;
* **full replay** — ``jscec replay`` in-process (``link.runner.run`` over ``link.links.replay.ReplayLink``): the flowgraph plus
  Bob's and Eve's chains (soft demapping, decryption, decoding, metrics, plots), from the start of
  the flowgraph to the written result; the receivers' start-up (loading torch and the model in two
  processes) is reported separately. Within it, the RX flowgraph's own time to its last frame while
  the chains demap and decrypt beside it on the same two cores (the figure ``jscec replay`` prints).

Single numbers from one machine shared with other jobs; repeat with ``--repeat`` and take the best.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def record(args, work: Path) -> tuple[Path, Path]:
    from link.apps.deepjscec import DeepJscecApp, ImageOptions
    from link.capture import CaptureOptions, run_capture
    from link.links.sim import SimLink
    from link.runner import RunOptions
    from scripts.arguments import sim_options

    ns = argparse.Namespace(cfo=0.01, sro_ppm=20.0, phase_noise=0.002, gain=0.8, delay=None, snr_b=20.0, snr_e=10.0,
                            seed=0)
    report = run_capture(DeepJscecApp(ImageOptions(model=args.model, data=args.data, images=args.images)),
                         SimLink(sim_options(ns)), RunOptions(out_dir=str(work / "capture")),
                         CaptureOptions(recording=str(work / "rec"), rate=args.rate), log=lambda *a: None)
    return Path(report["recording"]["meta"]), Path(report["key_file"])


def dsp_only(meta: Path, sync_process: bool) -> dict:
    from flowgraphs.device_link import DeviceLink
    from link.links.flowgraph import run_flowgraph
    from radio.devices import RadioSettings, open_device
    from radio.pulse import PulseShape
    from radio.recording import open_recording

    with open_recording(meta) as rec:
        n, rate, g = len(rec), rec.sample_rate, dict(rec.global_info)
    pulse = PulseShape(g.get("jscec:pulse", {}).get("sps", 4), g.get("jscec:pulse", {}).get("rolloff", 0.25))
    dev = open_device(f"file:{meta}", RadioSettings(center_freq_hz=2.4e9, sample_rate_hz=rate, buffer_size=65536))
    tb = DeviceLink({"bob": (dev, None)}, pulse=pulse, sync_process=sync_process)
    sync = tb.branches["bob"]["rx"].sync
    w0 = time.perf_counter()
    if sync_process:
        sync.sync.wait_ready()   # the worker's start (imports), once per run: reported apart
    worker_start = time.perf_counter() - w0
    t0, c0 = time.perf_counter(), time.process_time()
    run_flowgraph(tb, tb.samples_consumed, lambda now: now["bob"] >= n, timeout_s=600, total=n, desc="rx dsp")
    cpu = time.process_time() - c0   # this process only (with the 0.2 s idle wait of the runner)
    # Done when the synchroniser consumed its last sample and published its last frame (not when
    # the runner's 50 ms poll noticed).
    seconds = sync.last_activity - t0
    dev.close()
    return {"samples": n, "seconds": seconds, "samples_per_s": n / seconds, "x_real_time": n / seconds / rate,
            "cpu_seconds_main_process": cpu, "sync_process": sync_process, "worker_start_seconds": worker_start,
            "frames": len(tb.branches["bob"]["log"].frames)}


def full(meta: Path, key: Path, model: str | None, work: Path, i: int) -> dict:
    from link.apps.deepjscec import DeepJscecApp, ImageOptions
    from link.links.replay import ReplayLink, ReplayOptions
    from link.runner import RunOptions, run

    t0 = time.perf_counter()
    report = run(DeepJscecApp(ImageOptions(model=model, key=str(key))), ReplayLink(ReplayOptions(str(meta))),
                 RunOptions(out_dir=str(work / f"r{i}")), log=lambda *a: None)
    wall = time.perf_counter() - t0
    t = report["timing"]
    n, rate = report["recording"]["samples"], report["recording"]["sample_rate_hz"]
    return {"samples": n, "seconds": t["seconds"], "samples_per_s": n / t["seconds"],
            "x_real_time": n / t["seconds"] / rate, "dsp_seconds": t["dsp_seconds"], "rx_seconds": t["rx_seconds"],
            "rx_x_real_time": t["x_real_time"],
            "chains_seconds": t["chains_seconds"], "with_startup_seconds": wall,
            "x_real_time_with_startup": n / wall / rate, "bob_psnr": report["bob"]["psnr"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recording", default=None, help="an existing recording (default: record one first)")
    p.add_argument("--key", default=None, help="Bob's key for --recording")
    p.add_argument("--model", default=None,
                   help="model for recording/replay (default: the recording's; cifar10-lwe when recording one)")
    p.add_argument("--data", default=None, help="dataset for the recorded images (default: sample photos)")
    p.add_argument("--images", type=int, default=1, help="images to record (a 512×512 photo ≈ 0.74 M samples)")
    p.add_argument("--rate", type=float, default=1e6, help="nominal sample rate of the recording")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_replay.") as tmp:
        work = Path(tmp)
        if args.recording:
            meta, key = Path(args.recording), Path(args.key) if args.key else None
            if key is None:
                p.error("--recording needs --key")
        else:
            args.model = args.model or "cifar10-lwe"
            meta, key = record(args, work)
        dsp1 = max((dsp_only(meta, False) for _ in range(args.repeat)), key=lambda r: r["samples_per_s"])
        dsp = max((dsp_only(meta, True) for _ in range(args.repeat)), key=lambda r: r["samples_per_s"])
        rep = max((full(meta, key, args.model, work, i) for i in range(args.repeat)), key=lambda r: r["samples_per_s"])
    print(f"recording: {dsp['samples']} samples ({dsp['frames']} frames) at {args.rate / 1e6:g} MS/s nominal")
    for label, r in (("RX DSP, synchroniser in one process", dsp1), ("RX DSP (replay's default: worker process)", dsp)):
        print(f"{label:42s}: {r['samples_per_s'] / 1e6:6.2f} MS/s = {r['x_real_time']:5.1f}x real time "
              f"({r['seconds']:.3f} s" + (f"; worker start-up {r['worker_start_seconds']:.2f} s before it)"
                                           if r["sync_process"] else ")"))
    print(f"full replay : {rep['samples_per_s'] / 1e6:6.2f} MS/s = {rep['x_real_time']:5.1f}x real time "
          f"({rep['seconds']:.2f} s: RX flowgraph to its last frame {rep['rx_seconds']:.2f} s = "
          f"{rep['rx_x_real_time']:.1f}x real time beside the chains, stopped at {rep['dsp_seconds']:.2f} s, chains done at "
          f"{rep['chains_seconds']:.2f} s, then plots; with receiver start-up {rep['with_startup_seconds']:.2f} s = "
          f"{rep['x_real_time_with_startup']:.1f}x)")
    print(f"target >= 5x real time: DSP {'met' if dsp['x_real_time'] >= 5 else 'NOT met'}, "
          f"full replay {'met' if rep['x_real_time'] >= 5 else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rx_dsp": dsp, "rx_dsp_one_process": dsp1, "full_replay": rep},
                                              indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
