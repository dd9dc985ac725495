"""`jscec baseline`: the digital separation baseline (codec + AES-128-CTR + 802.11ad LDPC + QAM) over AWGN, the
simulated radio link, radios, or a recording of them."""
from __future__ import annotations

NAME = "baseline"
HELP = ("simulate the digital baseline (HEVC/BPG/JPEG 2000 + AES-128-CTR + 802.11ad LDPC + QAM) over AWGN, the "
        "radio link, real radios or a recording")
DESCRIPTION = (
    "Compress each test image with the chosen codec at the highest quality whose payload, padded to the AES block, "
    "fits the frame that k = rho*H*W*3 channel uses carry at the chosen modulation and LDPC rate; encrypt it with "
    "AES-128-CTR (nonce = frame number), encode with the IEEE 802.11ad LDPC code (n = 672), map onto Gray QAM, add "
    "complex AWGN (SNR = P/sigma^2 per symbol), demap to exact LLRs, decode, decrypt and decompress. With --link "
    "sim each image's symbols are instead the payload of one radio frame (the link's preamble, header and pilots) "
    "sent through the GNU Radio simulated channel (RRC, AWGN at the SNR, optional --cfo/--sro-ppm/--delay) and "
    "synchroniser; the LLRs use the noise variance the receiver estimates from the pilots, and a lost frame counts "
    "as undecodable. --link ota sends the same frames from the --tx radio to the --bob radio (device URIs as in "
    "`jscec ota`: pluto:ip:HOST, soapy:driver=uhd, fake-pluto, fake-soapy); the SNR is then measured, not set, and "
    "--record BASE also writes Bob's RX samples as BASE.sigmf-meta/-data with BASE.reference.npz. --link replay "
    "--recording BASE.sigmf-meta --key KEYFILE decodes such a recording again (codec, modulation and rate come from "
    "it). An image with any wrong bit is undecodable and scored as the dataset's mean image (the cliff effect). Only "
    "the codec's payload is sent: the receiver rebuilds the container from fixed parameters. The AES key is random "
    "per run (or read from --key-file, mode 0600) and is never printed or written to the JSON or a recording; a "
    "recorded run saves its fresh key (mode 0600) in keys/ beside the recording and prints the path.")

CODECS = ("heif", "bpg", "jpeg2000")
LINKS = ("awgn", "sim", "ota", "replay")
DEFAULT_CODEC = "heif"
DEFAULT_MODS = ["16qam"]
DEFAULT_RATES = ["1/2", "3/4"]
DEFAULT_SNRS = [4.0, 6.0, 7.0, 8.0, 10.0, 12.0, 14.0]


def _fraction(text: str) -> float:
    from fractions import Fraction

    from jscec.errors import UserError
    try:
        v = float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise UserError(f"bad --rho {text!r}: give a number or a fraction such as 1/6") from None
    if not 0 < v <= 1:
        raise UserError(f"--rho must lie in (0, 1], got {text}")
    return v


class _Renamed:
    """An argument parser (or group) that renames options as they are added: ``jscec ota``'s radio options
    (:func:`scripts.cmd_ota.add_radio_arguments`) here, where ``--rate`` is the LDPC code rate."""

    def __init__(self, target, names: dict):
        self.target, self.names = target, names

    def add_argument_group(self, *a, **kw):
        return _Renamed(self.target.add_argument_group(*a, **kw), self.names)

    def add_argument(self, *flags, **kw):
        return self.target.add_argument(*(self.names.get(f, f) for f in flags), **kw)


def add_arguments(p):
    from scripts.cmd_ota import add_radio_arguments

    p.add_argument("--codec", default=DEFAULT_CODEC, help="source codec: heif (HEVC intra via pillow-heif), bpg "
                   "(bpgenc/bpgdec on PATH) or jpeg2000 (--link replay: the recording's)")
    p.add_argument("--mod", nargs="+", default=DEFAULT_MODS, help="modulation(s): bpsk, qpsk, 16qam, 64qam")
    p.add_argument("--rate", nargs="+", default=DEFAULT_RATES,
                   help="LDPC code rate(s): 1/2, 3/4 (also 5/8, 13/16)")
    p.add_argument("--snr", type=float, nargs="+", default=DEFAULT_SNRS,
                   help="channel SNR(s) in dB (P/sigma^2 per complex symbol); awgn and sim only (ota and replay "
                   "measure it)")
    p.add_argument("--images", type=int, default=100, help="test images (the first of the seeded test split)")
    p.add_argument("--rho", default="1/6", help="bandwidth ratio k/(H*W*C) (paper eq. 4)")
    p.add_argument("--data", default=None, help="dataset (default: $JSCEC_DATA or the CIFAR-10 JPEG copy)")
    p.add_argument("--link", default="awgn", help="awgn (symbols + complex AWGN in numpy), sim (one radio frame "
                   "per image through the GNU Radio TX chain, simulated channel and RX synchroniser), ota (the same "
                   "frames through the --tx and --bob radios) or replay (a --recording of an ota run)")
    p.add_argument("--ldpc-iters", type=int, default=20, help="maximum LDPC decoder iterations")
    p.add_argument("--decoder", default="nms", choices=("nms", "bp"), help="LDPC decoder: normalised min-sum or BP")
    p.add_argument("--key-file", "--key", dest="key_file", default=None, help="AES-128 key file (32 hex digits, "
                   "mode 0600); default: a fresh random key for this run, not stored (--record: saved beside the "
                   "recording); --link replay: required")
    p.add_argument("--seed", type=int, default=0, help="seed of the data split, the channel noise and (ota) the first "
                   "frame number")
    p.add_argument("--json", default=None, metavar="PATH", help="write every number as JSON here")
    g = p.add_argument_group("radio link (--link sim, ota, replay)")
    g.add_argument("--cfo", type=float, default=0.0, help="sim: carrier frequency offset, cycles per symbol")
    g.add_argument("--sro-ppm", type=float, default=0.0, help="sim: sample-rate offset, ppm")
    g.add_argument("--delay", type=float, default=0.0, help="sim: channel delay in samples (fractional part matters)")
    g.add_argument("--phase-noise", type=float, default=0.0, help="sim: rms phase noise, radians")
    g.add_argument("--sps", type=int, default=4, help="samples per symbol (replay: the recording's)")
    g.add_argument("--rolloff", type=float, default=0.25, help="RRC roll-off (replay: the recording's)")
    g.add_argument("--equalizer", type=int, default=0, help="T-spaced equaliser taps (0 = off; odd)")
    g = p.add_argument_group("radios (--link ota) and recordings (--link replay)")
    g.add_argument("--tx", default=None, help="transmitting radio (device URI: pluto:ip:…, pluto:usb:…, "
                   "soapy:driver=…, fake-pluto, fake-soapy; default: --bob, else pluto)")
    g.add_argument("--bob", default=None, help="receiving radio (device URI; default: --tx, else pluto)")
    g.add_argument("--record", default=None, metavar="BASE", help="ota: also record Bob's RX samples as "
                   "BASE.sigmf-meta/-data and the transmitted images and truth as BASE.reference.npz (one --mod "
                   "and one --rate)")
    g.add_argument("--recording", default=None, metavar="META", help="replay: the recording (BASE.sigmf-meta)")
    g.add_argument("--timeout", type=float, default=600.0, help="ota/replay: give up after this many seconds")
    add_radio_arguments(_Renamed(p, {"--rate": "--sample-rate"}))


def check_common(codec_names, mod, rate, ldpc_iters):
    """Validate the options shared with `jscec compare`; returns (codecs, mods, rates)."""
    from baseline.pipeline import MODULATIONS, parse_rate
    from jscec.errors import UserError
    from baseline.source_codec import get_codec

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
    from crypto.aes_ctr import load_key, new_key
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
    estimated = False
    for r in res["results"]:
        snr = "n/a" if r["snr_db"] is None else f"{r['snr_db']:.2f}" + ("*" if r.get("snr_estimated") else "")
        estimated |= bool(r.get("snr_estimated"))
        line = (f"  {snr:>7} {r['psnr']:>8.2f} {r['ssim']:>6.3f} "
                f"{r['undecodable']:>6}/{r['images']:<5} {r['undetected_errors']:>10}")
        if radio:
            mer = "n/a" if r["mer_db"] is None else f"{r['mer_db']:.2f}"
            line += f" {r['frames_received']:>7}/{r['frames_sent']:<6} {r['frames_dropped']:>7} {mer:>7}"
        lines.append(line)
    if estimated:
        lines.append("  * SNR estimated by the receiver from the pilots (mean over the received frames)")
    else:
        thr = res["threshold_snr_db"]
        lines.append(f"  threshold (half of the fitting images undecodable): "
                     f"{'n/a' if thr is None else f'{thr:.2f} dB'}; mean image {res['mean_image']['psnr']:.2f} dB")
    return "\n".join(lines)


def _radio(args):
    from link.apps.baseline import RadioOptions
    from jscec.errors import UserError
    from radio.pulse import PulseShape

    if args.phase_noise < 0:
        raise UserError(f"--phase-noise must not be negative, got {args.phase_noise}")
    if args.delay < 0:
        raise UserError(f"--delay must not be negative, got {args.delay}")
    if args.equalizer < 0 or (args.equalizer and args.equalizer % 2 == 0):
        raise UserError(f"--equalizer takes 0 or an odd number of taps, got {args.equalizer}")
    try:
        PulseShape(args.sps, args.rolloff)
    except ValueError as e:
        raise UserError(f"bad pulse shape: {e}") from None
    return RadioOptions(sps=args.sps, rolloff=args.rolloff, equalizer_taps=args.equalizer, impairments={
        "cfo": args.cfo, "sro_ppm": args.sro_ppm, "delay": args.delay, "phase_noise": args.phase_noise})


def _check_link_options(args) -> None:
    """Refuse options that belong to another --link than the one chosen."""
    from jscec.errors import UserError

    link = args.link
    if link not in LINKS:
        raise UserError(f"unknown --link {link!r}: choose one of {', '.join(LINKS)}")
    given = {"--tx": args.tx, "--bob": args.bob, "--record": args.record}
    if link != "ota" and any(v is not None for v in given.values()):
        raise UserError(f"{'/'.join(k for k, v in given.items() if v is not None)} are for --link ota")
    if link != "replay" and args.recording is not None:
        raise UserError("--recording is for --link replay (to record, use --link ota --record BASE)")
    if link != "sim" and any((args.cfo, args.sro_ppm, args.delay, args.phase_noise)):
        raise UserError("--cfo/--sro-ppm/--delay/--phase-noise set the simulated channel of --link sim")
    if link in ("ota", "replay") and args.snr != DEFAULT_SNRS:
        raise UserError(f"--snr sets a simulated channel; with --link {link} the SNR is measured from the pilots")
    if link == "replay":
        if not args.recording:
            raise UserError("--link replay needs --recording BASE.sigmf-meta (written by --link ota --record)")
        if not args.key_file:
            raise UserError("--link replay needs --key KEYFILE (the AES key the recorded run printed)")
        if args.codec != DEFAULT_CODEC or args.mod != DEFAULT_MODS or args.rate != DEFAULT_RATES:
            raise UserError("--codec/--mod/--rate come from the recording in --link replay")


def _ota_options(args):
    from link.links.ota import OtaOptions

    _radio(args)    # the pulse and equaliser checks
    default = OtaOptions()
    return OtaOptions(tx=args.tx or args.bob or default.tx, bob=args.bob or args.tx or default.bob, freq=args.freq,
                      rate=args.sample_rate, bw=args.bw, tx_gain=args.tx_gain, rx_gain=args.rx_gain, agc=args.agc,
                      buffer=args.buffer, tx_level=args.tx_level, sps=args.sps, rolloff=args.rolloff,
                      equalizer_taps=args.equalizer, seed=args.seed, timeout_s=args.timeout)


def _print_radio(res: dict) -> None:
    for uri, d in res.get("devices", {}).items():
        c = d["counters"]
        print(f"  {uri} ({'/'.join(d['roles'])}): overflows {c['overflows']}, underflows {c['underflows']}, "
              f"drops {c['drops']}, timeouts {c['timeouts']}, TX clipped {c['tx_clipped']}")
    rec = res.get("recording")
    if rec and "data" in rec:
        print(f"  recorded {rec['samples']} samples at {rec['sample_rate_hz']:g} S/s, {rec['frames_annotated']} "
              f"frames annotated: {rec['meta']}; reference: {rec['reference']}")
        print(f"  AES key (secret, mode 0600; not in the recording): {rec['key_file']}")


def _write(args, doc: dict) -> None:
    from scripts.output import write_json

    if args.json:
        print(f"wrote {write_json(args.json, doc)}")


def _replay(args) -> int:
    from link.apps.baseline_radio import run_replay

    import math

    _radio(args)    # the equaliser check
    res = run_replay(args.recording, args.key_file, equalizer_taps=args.equalizer, max_iter=args.ldpc_iters,
                     method=args.decoder, timeout_s=args.timeout)
    rec = res["recording"]
    print(f"baseline: replay of {rec['meta']} ({rec['samples']} samples, {rec['frames_found']} frames found), "
          f"{res['images']} images of {rec['image_source']}")
    print(table(res))
    k = res["budget"]["k_symbols"]
    _write(args, {"command": "baseline", "link": "replay", "dataset": rec["image_source"],
                  "rho": k / math.prod(rec["image_shape"]), "k_symbols": k, "images": res["images"],
                  "note": NOTE_RADIO, "runs": [res]})
    return 0


NOTE = "failures (any wrong bit, or no quality fits) are scored as the mean image of the train split"
NOTE_RADIO = ("failures (any wrong bit, no quality fits, or a lost frame) are scored as the mean image of the train "
              "split")


def run(args) -> int:
    import sys

    from baseline.pipeline import channel_uses, eval_images, simulate
    from jscec.errors import UserError

    _check_link_options(args)
    if args.link == "replay":
        return _replay(args)
    (codec,), mods, rates = check_common([args.codec], args.mod, args.rate, args.ldpc_iters)
    rho = _fraction(args.rho)
    radio = _radio(args) if args.link == "sim" else None
    ota = _ota_options(args) if args.link == "ota" else None
    if args.record and len(mods) * len(rates) > 1:
        raise UserError("--record takes one --mod and one --rate (one recording per transmission)")
    progress = sys.stderr.isatty()
    images, mean_u8, name = eval_images(args.data, args.images, seed=args.seed, progress=progress)
    k = channel_uses(rho, images.shape[1:])
    key = _key(args)
    runs = []
    print(f"baseline: {len(images)} test images of {name}, rho = {args.rho} -> k = {k} symbols, seed {args.seed}, "
          f"AES key {'from ' + args.key_file if args.key_file else 'random for this run'}, link {args.link}"
          + (f" ({ota.tx} -> {ota.bob})" if ota else ""))
    for mod in mods:
        for rate in rates:
            if ota is not None:
                from link.apps.baseline_radio import run_ota
                res = run_ota(images, mean_u8, codec, mod, rate, key, ota, k_symbols=k, record=args.record,
                              key_file=args.key_file, source=f"{name}: the first {len(images)} images of test split "
                              f"{args.seed}", max_iter=args.ldpc_iters, method=args.decoder, progress=progress)
            elif radio is None:
                res = simulate(images, mean_u8, codec, mod, rate, args.snr, key, k_symbols=k, seed=args.seed,
                               max_iter=args.ldpc_iters, method=args.decoder, progress=progress)
            else:
                from link.apps.baseline import simulate_link
                res = simulate_link(images, mean_u8, codec, mod, rate, args.snr, key, k_symbols=k, seed=args.seed,
                                    radio=radio, max_iter=args.ldpc_iters, method=args.decoder, progress=progress)
            runs.append(res)
            print(table(res))
            _print_radio(res)
    _write(args, {"command": "baseline", "link": args.link, "dataset": name, "rho": rho, "k_symbols": k,
                  "images": len(images), "seed": args.seed, "note": NOTE if args.link == "awgn" else NOTE_RADIO,
                  "runs": runs})
    return 0
