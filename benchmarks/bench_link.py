"""Benchmark of the radio link (issue 4's targets); prints figures, optionally writes JSON.

1. MER after synchronisation at SNR 30 dB with CFO up to ±5 % of the symbol rate, random fractional
   timing, 100 ppm sample-rate offset and mild phase noise (target: MER ≥ SNR − 0.5 dB).
2. Frame loss at SNR 5 and 10 dB under the same impairments (target ≤ 0.1 %).
3. False frames on noise-only input (target: none in 60 s at 1 M samples/s).
4. DSP throughput of the whole simulated loopback — TX, both channel branches, both RX chains, no
   neural networks (target ≥ 1 M samples/s), from GNU Radio flowgraphs fed by a vector source.
5. Images per second end to end (`jscec loopback` on CIFAR-10 test images), when ``--e2e`` is given.

    .venv/bin/python benchmarks/bench_link.py [--frames 1000] [--noise-seconds 60] [--e2e] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gnuradio import analog, blocks, gr  # noqa: E402

from calibration.snr import mer_db  # noqa: E402
from flowgraphs.chains import ChannelBranch, Impairments, RxChain, TxChain  # noqa: E402
from link.sender import frame_stream as link_frame_stream  # noqa: E402
from radio.frame import random_frames  # noqa: E402
from radio.pulse import PulseShape  # noqa: E402
from radio.transport import pdu_to_frame  # noqa: E402

PULSE = PulseShape()


def frame_stream(n_frames: int, payload_len: int, rng) -> tuple[np.ndarray, list[np.ndarray]]:
    frames, sent = random_frames(n_frames, payload_len, rng)
    return link_frame_stream(frames), sent


def random_impairments(rng) -> Impairments:
    return Impairments(cfo=float(rng.uniform(-0.05, 0.05)), sro_ppm=float(rng.choice([-100.0, 100.0])),
                       delay=float(rng.uniform(0, 4)), phase_noise=0.002, gain=float(rng.uniform(0.3, 1.0)),
                       phase=float(rng.uniform(-np.pi, np.pi)))


def run_branch(symbols: np.ndarray, snr_db: float, imp: Impairments, seed: int):
    tb = gr.top_block()
    src = blocks.vector_source_c(symbols, False)
    tx, ch, rx = TxChain(PULSE), ChannelBranch(snr_db, imp, PULSE, seed=seed), RxChain(PULSE)
    dbg = blocks.message_debug()
    tb.connect(src, tx, ch, rx)
    tb.msg_connect(rx, "frames", dbg, "store")
    t0 = time.perf_counter()
    tb.run()
    seconds = time.perf_counter() - t0
    items = [pdu_to_frame(dbg.get_message(i)) for i in range(dbg.num_messages())]
    return items, rx.sync.stats(), seconds


def mer_test(args, rng) -> dict:
    mers, ests, cfos = [], [], []
    for trial in range(args.mer_trials):
        imp = random_impairments(rng)
        symbols, sent = frame_stream(10, 2048, rng)
        items, _, _ = run_branch(symbols, 30.0, imp, seed=trial)
        for f in items:
            if hasattr(f, "payload"):
                ref = sent[f.counter]
                mers.append(mer_db(ref, f.payload))
                ests.append(f.mer_db)
                cfos.append(abs(f.cfo - imp.cfo))
    out = {"snr_db": 30.0, "frames": len(mers), "mer_db_mean": float(np.mean(mers)), "mer_db_min": float(np.min(mers)),
           "mer_estimate_error_db": float(np.mean(np.abs(np.array(ests) - np.array(mers)))),
           "cfo_error_max": float(np.max(cfos))}
    print(f"[1] MER at SNR 30 dB over {out['frames']} frames ({args.mer_trials} random impairment sets): mean "
          f"{out['mer_db_mean']:.2f} dB, min {out['mer_db_min']:.2f} dB (target ≥ 29.5); pilot MER estimate "
          f"off by {out['mer_estimate_error_db']:.2f} dB on average; max CFO error {out['cfo_error_max']:.2e}")
    return out


def loss_test(args, rng) -> list[dict]:
    rows = []
    for snr in (5.0, 10.0):
        lost = total = 0
        per = 100
        for trial in range(max(1, args.frames // per)):
            symbols, _ = frame_stream(per, 512, rng)
            items, stats, _ = run_branch(symbols, snr, random_impairments(rng), seed=1000 + trial)
            got = {f.counter for f in items if hasattr(f, "payload")}
            lost += per - len(got)
            total += per
        rows.append({"snr_db": snr, "frames": total, "lost": lost, "loss_rate": lost / total})
        print(f"[2] frame loss at SNR {snr:.0f} dB: {lost}/{total} = {100 * lost / total:.3f} % (target ≤ 0.1 %)")
    return rows


def noise_test(args) -> dict:
    n = int(args.noise_seconds * args.rate)
    tb = gr.top_block()
    src = analog.noise_source_c(analog.GR_GAUSSIAN, 1.0, 1234)
    head = blocks.head(gr.sizeof_gr_complex, n)
    rx = RxChain(PULSE)
    dbg = blocks.message_debug()
    tb.connect(src, head, rx)
    tb.msg_connect(rx, "frames", dbg, "store")
    t0 = time.perf_counter()
    tb.run()
    seconds = time.perf_counter() - t0
    stats = rx.sync.stats()
    out = {"samples": n, "seconds_of_signal": args.noise_seconds, "sample_rate": args.rate,
           "false_frames": stats["frames"], "false_detections": stats["detections"],
           "header_failures": stats["header_failures"], "rx_samples_per_s": n / seconds}
    print(f"[3] noise only, {n / 1e6:.0f} M samples ({args.noise_seconds:g} s at {args.rate / 1e6:g} MS/s): "
          f"{out['false_frames']} false frames, {out['false_detections']} preamble detections, "
          f"{out['header_failures']} header CRC rejections (RX chain alone {n / seconds / 1e6:.2f} M samples/s)")
    return out


def throughput_test(args, rng) -> dict:
    symbols, _ = frame_stream(args.throughput_frames, 2048, rng)
    tb = gr.top_block()
    src = blocks.vector_source_c(symbols, False)
    tx = TxChain(PULSE)
    tb.connect(src, tx)
    keep = []
    for i, snr in enumerate((25.0, 10.0)):
        ch, rx, dbg = ChannelBranch(snr, random_impairments(rng), PULSE, seed=i), RxChain(PULSE), blocks.message_debug()
        tb.connect(tx, ch, rx)
        tb.msg_connect(rx, "frames", dbg, "store")
        keep.append((ch, rx, dbg))
    t0 = time.perf_counter()
    tb.run()
    seconds = time.perf_counter() - t0
    n = symbols.size * PULSE.sps
    frames = [k[2].num_messages() for k in keep]
    out = {"samples_per_branch": n, "seconds": seconds, "samples_per_s": n / seconds, "frames": frames,
           "frames_sent": args.throughput_frames}
    print(f"[4] DSP chain (TX + 2 channel branches + 2 RX, sps {PULSE.sps}): {n / 1e6:.1f} M samples per branch "
          f"in {seconds:.2f} s = {n / seconds / 1e6:.2f} M samples/s (target ≥ 1); frames {frames} of "
          f"{args.throughput_frames}")
    return out


def e2e_test(args) -> dict:
    from link.apps.deepjscec import DeepJscecApp, ImageOptions
    from link.links.sim import SimLink, SimOptions
    from link.runner import RunOptions, run
    from radio.impairments import Impairments

    link = SimLink(SimOptions(bob=Impairments(cfo=0.01, sro_ppm=20, delay=1.3),
                              eve=Impairments(cfo=0.01, sro_ppm=20, delay=2.1)))
    t0 = time.perf_counter()
    rep = run(DeepJscecApp(ImageOptions(data="default", images=args.e2e_images)), link,
              RunOptions(out_dir="/tmp/bench_link_e2e"), log=lambda *a: None)
    seconds = time.perf_counter() - t0
    out = {"images": args.e2e_images, "seconds": seconds, "images_per_s": args.e2e_images / seconds,
           "bob_psnr": rep["bob"].get("psnr"), "eve_psnr": rep["eve"].get("psnr")}
    print(f"[5] end to end: {args.e2e_images} CIFAR-10 images in {seconds:.1f} s = {out['images_per_s']:.2f} "
          f"images/s (model loading and process start included); Bob {out['bob_psnr']:.2f} dB, Eve "
          f"{out['eve_psnr']:.2f} dB")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=1000, help="frames per SNR for the loss test")
    p.add_argument("--mer-trials", type=int, default=10, help="random impairment sets for the MER test")
    p.add_argument("--noise-seconds", type=float, default=60.0)
    p.add_argument("--rate", type=float, default=1e6, help="nominal sample rate for the noise test")
    p.add_argument("--throughput-frames", type=int, default=200)
    p.add_argument("--e2e", action="store_true", help="also time `jscec loopback` on CIFAR-10 images")
    p.add_argument("--e2e-images", type=int, default=64)
    p.add_argument("--only", default="1,2,3,4", help="which parts to run (comma-separated numbers)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    parts = set(args.only.split(","))
    out = {}
    if "1" in parts:
        out["mer"] = mer_test(args, rng)
    if "2" in parts:
        out["frame_loss"] = loss_test(args, rng)
    if "3" in parts:
        out["noise"] = noise_test(args)
    if "4" in parts:
        out["throughput"] = throughput_test(args, rng)
    if args.e2e:
        out["end_to_end"] = e2e_test(args)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
