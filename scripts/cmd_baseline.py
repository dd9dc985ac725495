"""`jscec baseline`: the digital separation baseline (codec + AES-128-CTR + 802.11ad LDPC + QAM) over AWGN or the
simulated radio link."""
from __future__ import annotations

NAME = "baseline"
HELP = ("simulate the digital baseline (HEVC/BPG/JPEG 2000 + AES-128-CTR + 802.11ad LDPC + QAM) over AWGN or the "
        "radio link")
DESCRIPTION = (
    "Compress each test image with the chosen codec at the highest quality whose payload, padded to the AES block, "
    "fits the frame that k = rho*H*W*3 channel uses carry at the chosen modulation and LDPC rate; encrypt it with "
    "AES-128-CTR (nonce = frame number), encode with the IEEE 802.11ad LDPC code (n = 672), map onto Gray QAM, add "
    "complex AWGN (SNR = P/sigma^2 per symbol), demap to exact LLRs, decode, decrypt and decompress. With --link "
    "sim each image's symbols are instead the payload of one radio frame (the link's preamble, header and pilots) "
    "sent through the GNU Radio simulated channel (RRC, AWGN at the SNR, optional --cfo/--sro-ppm/--delay) and "
    "synchroniser; the LLRs use the noise variance the receiver estimates from the pilots, and a lost frame counts "
    "as undecodable. An image with any wrong bit is undecodable and scored as the dataset's mean image (the cliff "
    "effect). Only the codec's payload is sent: the receiver rebuilds the container from fixed parameters. The AES "
    "key is random per run (or read from --key-file) and is never printed or written to the JSON.")

CODECS = ("heif", "bpg", "jpeg2000")
LINKS = ("awgn", "sim", "ota", "replay")


def _fraction(text: str) -> float:
    from fractions import Fraction

    from radio.errors import UserError
    try:
        v = float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise UserError(f"bad --rho {text!r}: give a number or a fraction such as 1/6") from None
    if not 0 < v <= 1:
        raise UserError(f"--rho must lie in (0, 1], got {text}")
    return v


def add_arguments(p):
    p.add_argument("--codec", default="heif", help="source codec: heif (HEVC intra via pillow-heif), bpg "
                   "(bpgenc/bpgdec on PATH) or jpeg2000")
    p.add_argument("--mod", nargs="+", default=["16qam"], help="modulation(s): bpsk, qpsk, 16qam, 64qam")
    p.add_argument("--rate", nargs="+", default=["1/2", "3/4"], help="LDPC code rate(s): 1/2, 3/4 (also 5/8, 13/16)")
    p.add_argument("--snr", type=float, nargs="+", default=[4.0, 6.0, 7.0, 8.0, 10.0, 12.0, 14.0],
                   help="channel SNR(s) in dB (P/sigma^2 per complex symbol)")
    p.add_argument("--images", type=int, default=100, help="test images (the first of the seeded test split)")
    p.add_argument("--rho", default="1/6", help="bandwidth ratio k/(H*W*C) (paper eq. 4)")
    p.add_argument("--data", default=None, help="dataset (default: $JSCEC_DATA or the CIFAR-10 JPEG copy)")
    p.add_argument("--link", default="awgn", help="awgn (symbols + complex AWGN in numpy) or sim (one radio frame "
                   "per image through the GNU Radio TX chain, simulated channel and RX synchroniser); ota and replay "
                   "are not wired for the baseline yet")
    p.add_argument("--ldpc-iters", type=int, default=20, help="maximum LDPC decoder iterations")
    p.add_argument("--decoder", default="nms", choices=("nms", "bp"), help="LDPC decoder: normalised min-sum or BP")
    p.add_argument("--key-file", default=None, help="AES-128 key file (32 hex digits, mode 0600); default: a fresh "
                   "random key for this run, not stored")
    p.add_argument("--seed", type=int, default=0, help="seed of the data split and the channel noise")
    p.add_argument("--json", default=None, metavar="PATH", help="write every number as JSON here")
    g = p.add_argument_group("radio link (--link sim)")
    g.add_argument("--cfo", type=float, default=0.0, help="carrier frequency offset, cycles per symbol")
    g.add_argument("--sro-ppm", type=float, default=0.0, help="sample-rate offset, ppm")
    g.add_argument("--delay", type=float, default=0.0, help="channel delay in samples (fractional part matters)")
    g.add_argument("--phase-noise", type=float, default=0.0, help="rms phase noise, radians")
    g.add_argument("--sps", type=int, default=4, help="samples per symbol")
    g.add_argument("--rolloff", type=float, default=0.25, help="RRC roll-off")


def check_common(codec_names, mod, rate, ldpc_iters):
    """Validate the options shared with `jscec compare`; returns (codecs, mods, rates)."""
    from link.baseline import MODULATIONS, parse_rate
    from radio.errors import UserError
    from radio.source_codec import get_codec

    for c in codec_names:
        if c not in CODECS:
            raise UserError(f"unknown codec {c!r}: choose one of {', '.join(CODECS)}")
    mods = list(dict.fromkeys(m.lower() for m in mod))
    for m in mods:
        if m not in MODULATIONS:
            raise UserError(f"unknown modulation {m!r}: choose one of {', '.join(MODULATIONS)}")
    rates = [parse_rate(r) for r in dict.fromkeys(rate)]
    if ldpc_iters < 1:
        raise UserError(f"--ldpc-iters must be at least 1, got {ldpc_iters}")
    return [get_codec(c) for c in dict.fromkeys(codec_names)], mods, rates


def _key(args) -> bytes:
    from radio.aes_ctr import load_key, new_key
    return load_key(args.key_file) if args.key_file else new_key()


def table(res: dict) -> str:
    b = res["budget"]
    head = (f"{res['codec']} + AES-128-CTR + LDPC {res['rate']} + {res['mod'].upper()}: {b['symbols']} of "
            f"{b['k_symbols']} symbols, {b['codewords']} codeword(s), {b['info_bits']} info bits, "
            f"capacity {b['capacity_bytes']} bytes")
    if res["fits"]:
        head += (f"; mean payload {res['mean_payload_bytes']:.1f} B at mean quality {res['mean_quality']:.1f}; "
                 f"error-free {res['error_free']['psnr']:.2f} dB / SSIM {res['error_free']['ssim']:.3f}")
    lines = [head]
    if res["fits"] < res["images"]:
        lines.append(f"  {res['images'] - res['fits']} of {res['images']} images fit at no quality "
                     "(scored as the mean image at every SNR)")
    radio = "radio" in res
    head = f"  {'SNR dB':>7} {'PSNR dB':>8} {'SSIM':>6} {'undecodable':>12} {'undetected':>10}"
    lines.append(head + (f" {'frames rx/sent':>14} {'dropped':>7} {'MER dB':>7}" if radio else ""))
    for r in res["results"]:
        line = (f"  {r['snr_db']:>7.2f} {r['psnr']:>8.2f} {r['ssim']:>6.3f} "
                f"{r['undecodable']:>6}/{r['images']:<5} {r['undetected_errors']:>10}")
        if radio:
            mer = "n/a" if r["mer_db"] is None else f"{r['mer_db']:.2f}"
            line += f" {r['frames_received']:>7}/{r['frames_sent']:<6} {r['frames_dropped']:>7} {mer:>7}"
        lines.append(line)
    thr = res["threshold_snr_db"]
    lines.append(f"  threshold (half of the fitting images undecodable): "
                 f"{'n/a' if thr is None else f'{thr:.2f} dB'}; mean image {res['mean_image']['psnr']:.2f} dB")
    return "\n".join(lines)


def _radio(args):
    from link.baseline_link import RadioOptions
    from radio.errors import UserError
    from radio.pulse import PulseShape

    if args.phase_noise < 0:
        raise UserError(f"--phase-noise must not be negative, got {args.phase_noise}")
    if args.delay < 0:
        raise UserError(f"--delay must not be negative, got {args.delay}")
    try:
        PulseShape(args.sps, args.rolloff)
    except ValueError as e:
        raise UserError(f"bad pulse shape: {e}") from None
    return RadioOptions(sps=args.sps, rolloff=args.rolloff, impairments={
        "cfo": args.cfo, "sro_ppm": args.sro_ppm, "delay": args.delay, "phase_noise": args.phase_noise})


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    from link.baseline import channel_uses, eval_images, simulate
    from radio.errors import UserError

    if args.link not in LINKS:
        raise UserError(f"unknown --link {args.link!r}: choose awgn or sim")
    if args.link in ("ota", "replay"):
        raise UserError(f"--link {args.link} is not wired for the baseline yet (it needs a radio device or a "
                        "recording path); use --link awgn or --link sim")
    (codec,), mods, rates = check_common([args.codec], args.mod, args.rate, args.ldpc_iters)
    rho = _fraction(args.rho)
    radio = _radio(args) if args.link == "sim" else None
    progress = sys.stderr.isatty()
    images, mean_u8, name = eval_images(args.data, args.images, seed=args.seed, progress=progress)
    k = channel_uses(rho, images.shape[1:])
    key = _key(args)
    runs = []
    print(f"baseline: {len(images)} test images of {name}, rho = {args.rho} -> k = {k} symbols, seed {args.seed}, "
          f"AES key {'from ' + args.key_file if args.key_file else 'random for this run'}, link {args.link}")
    for mod in mods:
        for rate in rates:
            if radio is None:
                res = simulate(images, mean_u8, codec, mod, rate, args.snr, key, k_symbols=k, seed=args.seed,
                               max_iter=args.ldpc_iters, method=args.decoder, progress=progress)
            else:
                from link.baseline_link import simulate_link
                res = simulate_link(images, mean_u8, codec, mod, rate, args.snr, key, k_symbols=k, seed=args.seed,
                                    radio=radio, max_iter=args.ldpc_iters, method=args.decoder, progress=progress)
            runs.append(res)
            print(table(res))
    if args.json:
        doc = {"command": "baseline", "link": args.link, "dataset": name, "rho": rho, "k_symbols": k,
               "images": len(images), "seed": args.seed,
               "note": "failures (any wrong bit, or no quality fits" + (", or a lost frame" if radio else "")
               + ") are scored as the mean image of the train split",
               "runs": runs}
        path = Path(args.json)
        if path.parent != Path(""):
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {path}")
    return 0
