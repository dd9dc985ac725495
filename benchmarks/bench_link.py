"""Benchmark of the radio link (issue 4's targets); prints figures, optionally writes JSON.

1. MER after synchronisation at SNR 30 dB with CFO up to ±5 % of the symbol rate, random fractional
   timing, 100 ppm sample-rate offset and mild phase noise (target: MER ≥ SNR − 0.5 dB).
2. Frame loss at SNR 5 and 10 dB under the same impairments (target ≤ 0.1 %).
3. False frames on noise-only input (target: none in 60 s at 1 M samples/s).
4. DSP throughput of the whole simulated loopback — TX, both channel branches, both RX chains, no
   neural networks (target ≥ 1 M samples/s), from GNU Radio flowgraphs fed by a vector source.
5. Images per second end to end (`jscec loopback` on CIFAR-10 test images), when ``--e2e`` is given.
6. Wide carrier offsets (issue 16: two Plutos at 2.4 GHz, up to ±0.5 cycles per symbol at 1 MS/s): MER at
   SNR 30 dB and frame loss at 5 dB with |CFO| drawn in [``--wide-cfo-min``, ``--wide-cfo``] (either
   sign) and the sample-rate offset tied to it as one oscillator error makes it (Δppm = CFO_Hz / f_c,
   2.4 GHz, 1 MS/s, sps 4).
7. Receiver faults: MER at SNR 30 dB with 25 dB image rejection and a −30 dBc DC offset
   (``RxFrontEnd``) against the same impairment draws without them (target: within 1 dB).
8. Beyond the range: frames at CFO 0.8 and 1.16 cycles per symbol (5.8 GHz, uncalibrated) at 20 dB are
   dropped and counted, and the run's one line (``FrameSync.advice``) names `jscec calibrate`.

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
from flowgraphs.chains import ChannelBranch, Impairments, RxChain, RxFrontEnd, TxChain  # noqa: E402
from link.sender import frame_stream as link_frame_stream  # noqa: E402
from radio.frame import random_frames  # noqa: E402
from radio.pulse import PulseShape  # noqa: E402
from flowgraphs.pdu import pdu_to_frame  # noqa: E402

PULSE = PulseShape()


def frame_stream(n_frames: int, payload_len: int, rng) -> tuple[np.ndarray, list[np.ndarray]]:
    frames, sent = random_frames(n_frames, payload_len, rng)
    return link_frame_stream(frames), sent


def random_impairments(rng) -> Impairments:
    return Impairments(cfo=float(rng.uniform(-0.05, 0.05)), sro_ppm=float(rng.choice([-100.0, 100.0])),
                       delay=float(rng.uniform(0, 4)), phase_noise=0.002, gain=float(rng.uniform(0.3, 1.0)),
                       phase=float(rng.uniform(-np.pi, np.pi)))


#: CFO (cycles per symbol) per ppm of oscillator error at 2.4 GHz, 1 MS/s, sps 4 (250 k symbols/s).
CFO_PER_PPM = 2.4e9 * 1e-6 / 250e3


def wide_impairments(rng, lo: float, hi: float) -> Impairments:
    """|CFO| in [lo, hi], either sign, the sample-rate offset tied to it (one oscillator error), random
    timing, phase, gain and mild phase noise."""
    cfo = float(rng.uniform(lo, hi) * rng.choice([-1.0, 1.0]))
    return Impairments(cfo=cfo, sro_ppm=cfo / CFO_PER_PPM, delay=float(rng.uniform(0, 4)), phase_noise=0.002,
                       gain=float(rng.uniform(0.3, 1.0)), phase=float(rng.uniform(-np.pi, np.pi)))


def run_branch(symbols: np.ndarray, snr_db: float, imp: Impairments, seed: int, front_end: dict | None = None):
    tb = gr.top_block()
    src = blocks.vector_source_c(symbols, False)
    tx, ch, rx = TxChain(PULSE), ChannelBranch(snr_db, imp, PULSE, seed=seed), RxChain(PULSE)
    dbg = blocks.message_debug()
    if front_end is not None:
        fe = RxFrontEnd(**front_end)
        tb.connect(src, tx, ch, fe, rx)
    else:
        tb.connect(src, tx, ch, rx)
    tb.msg_connect(rx, "frames", dbg, "store")
    t0 = time.perf_counter()
    tb.run()
    seconds = time.perf_counter() - t0
    items = [pdu_to_frame(dbg.get_message(i)) for i in range(dbg.num_messages())]
    return items, rx.sync.stats(), seconds, rx.sync.advice()


def _mer(args, rng, draw, label: str, tag: str, front_end=None, draws=None) -> dict:
    mers, ests, cfos, kept = [], [], [], []
    for trial in range(args.mer_trials):
        imp = draw(rng) if draws is None else draws[trial][0]
        symbols, sent = frame_stream(10, 2048, rng) if draws is None else draws[trial][1]
        kept.append((imp, (symbols, sent)))
        items = run_branch(symbols, 30.0, imp, seed=trial, front_end=front_end)[0]
        for f in items:
            if hasattr(f, "payload"):
                ref = sent[f.counter]
                mers.append(mer_db(ref, f.payload))
                ests.append(f.mer_db)
                cfos.append(abs(f.cfo - imp.cfo))
    sent_n = 10 * args.mer_trials
    out = {"snr_db": 30.0, "frames": len(mers), "frames_sent": sent_n, "mer_db_mean": float(np.mean(mers)),
           "mer_db_min": float(np.min(mers)),
           "mer_estimate_error_db": float(np.mean(np.abs(np.array(ests) - np.array(mers)))),
           "cfo_error_max": float(np.max(cfos))}
    print(f"[{tag}] MER at SNR 30 dB over {out['frames']}/{sent_n} frames ({args.mer_trials} {label}): mean "
          f"{out['mer_db_mean']:.2f} dB, min {out['mer_db_min']:.2f} dB (target ≥ 29.5); pilot MER estimate "
          f"off by {out['mer_estimate_error_db']:.2f} dB on average; max CFO error {out['cfo_error_max']:.2e}")
    out["_draws"] = kept
    return out


def mer_test(args, rng) -> dict:
    out = _mer(args, rng, random_impairments, "random impairment sets", "1")
    out.pop("_draws")
    return out


def _loss(args, rng, draw, snrs, label: str, tag: str) -> list[dict]:
    rows = []
    for snr in snrs:
        lost = total = 0
        per = 100
        for trial in range(max(1, args.frames // per)):
            symbols, _ = frame_stream(per, 512, rng)
            items = run_branch(symbols, snr, draw(rng), seed=1000 + trial)[0]
            got = {f.counter for f in items if hasattr(f, "payload")}
            lost += per - len(got)
            total += per
        rows.append({"snr_db": snr, "frames": total, "lost": lost, "loss_rate": lost / total})
        print(f"[{tag}] frame loss at SNR {snr:.0f} dB{label}: {lost}/{total} = {100 * lost / total:.3f} % "
              f"(target ≤ 0.1 %)")
    return rows


def loss_test(args, rng) -> list[dict]:
    return _loss(args, rng, random_impairments, (5.0, 10.0), "", "2")


def wide_test(args, rng) -> dict:
    def draw(r):
        return wide_impairments(r, args.wide_cfo_min, args.wide_cfo)

    span = f"|CFO| {args.wide_cfo_min:g}–{args.wide_cfo:g} cycles/symbol"
    mer = _mer(args, rng, draw, f"draws, {span}, SRO tied", "6")
    mer.pop("_draws")
    loss = _loss(args, rng, draw, (5.0,), f", {span}", "6")
    return {"cfo_min": args.wide_cfo_min, "cfo_max": args.wide_cfo, "mer": mer, "frame_loss": loss}


def front_end_test(args, rng) -> dict:
    """The same impairment draws and frames with and without the receiver's faults (|CFO| up to
    ``--wide-cfo``): 25 dB image rejection, and a DC offset 30 dB below the received signal."""
    clean = _mer(args, rng, lambda r: wide_impairments(r, 0.0, args.wide_cfo), "draws, no receiver faults", "7")
    draws = clean.pop("_draws")
    mers, ests = [], []
    for trial, (imp, (symbols, sent)) in enumerate(draws):
        dc = imp.gain * 10 ** (-30 / 20) * np.exp(1j * (0.3 + trial))
        fe = {"image_rejection_db": 25.0, "image_phase": 0.7 + trial, "dc": complex(dc)}
        for f in run_branch(symbols, 30.0, imp, seed=trial, front_end=fe)[0]:
            if hasattr(f, "payload"):
                mers.append(mer_db(sent[f.counter], f.payload))
                ests.append(f.mer_db)
    faulty = {"frames": len(mers), "mer_db_mean": float(np.mean(mers)), "mer_db_min": float(np.min(mers)),
              "mer_estimate_error_db": float(np.mean(np.abs(np.array(ests) - np.array(mers))))}
    print(f"[7] with 25 dB image rejection and −30 dBc DC: {faulty['frames']}/{10 * len(draws)} frames, MER mean "
          f"{faulty['mer_db_mean']:.2f} dB, min {faulty['mer_db_min']:.2f} dB against {clean['mer_db_mean']:.2f} dB "
          f"without them (target: within 1 dB)")
    return {"clean": clean, "faulty": faulty, "image_rejection_db": 25.0, "dc_dbc": -30.0}


def range_test(args, rng) -> dict:
    rows = []
    for cfo in (0.8, -1.16):
        symbols, _ = frame_stream(20, 512, rng)
        imp = Impairments(cfo=cfo, sro_ppm=cfo / CFO_PER_PPM, delay=1.7, gain=0.5, phase=0.4)
        items, stats, _, advice = run_branch(symbols, 20.0, imp, seed=7)
        frames = sum(hasattr(f, "payload") for f in items)
        rows.append({"cfo": cfo, "frames_sent": 20, "frames": frames, "cfo_out_of_range": stats["cfo_out_of_range"],
                     "cfo_out_of_range_mean": stats["cfo_out_of_range_mean"], "advice": advice})
        print(f"[8] CFO {cfo:+.2f} cycles/symbol at 20 dB: {frames} frames delivered, "
              f"{stats['cfo_out_of_range']}/20 dropped as out of range; the run's line: {advice}")
    return {"rows": rows}


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
    p.add_argument("--wide-cfo", type=float, default=0.5, help="largest |CFO| of parts 6 and 7 (cycles/symbol)")
    p.add_argument("--wide-cfo-min", type=float, default=0.3, help="smallest |CFO| of part 6")
    p.add_argument("--only", default="1,2,3,4,6,7,8", help="which parts to run (comma-separated numbers)")
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
    if "6" in parts:
        out["wide_cfo"] = wide_test(args, rng)
    if "7" in parts:
        out["front_end"] = front_end_test(args, rng)
    if "8" in parts:
        out["out_of_range"] = range_test(args, rng)
    if args.e2e:
        out["end_to_end"] = e2e_test(args)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
