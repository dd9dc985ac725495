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


def add_arguments(p):
    from scripts.arguments import Renamed, add_radio_arguments

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
    add_radio_arguments(Renamed(p, {"--rate": "--sample-rate"}))


def _radio(args):
    """The sim link's impairments and the pulse, checked: (Impairments, PulseShape)."""
    from jscec.errors import UserError
    from radio.impairments import Impairments
    from radio.pulse import PulseShape

    if args.phase_noise < 0:
        raise UserError(f"--phase-noise must not be negative, got {args.phase_noise}")
    if args.delay < 0:
        raise UserError(f"--delay must not be negative, got {args.delay}")
    if args.equalizer < 0 or (args.equalizer and args.equalizer % 2 == 0):
        raise UserError(f"--equalizer takes 0 or an odd number of taps, got {args.equalizer}")
    try:
        pulse = PulseShape(args.sps, args.rolloff)
    except ValueError as e:
        raise UserError(f"bad pulse shape: {e}") from None
    return Impairments(cfo=args.cfo, sro_ppm=args.sro_ppm, delay=args.delay, phase_noise=args.phase_noise), pulse


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
    if link != "ota" and getattr(args, "ota_snr_b", None) is not None:
        raise UserError("--snr-b sets the TX gain from a calibration profile: it is for --link ota (use --snr)")
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


def _print_radio(res: dict, snr_b: float | None = None) -> None:
    from scripts.arguments import print_devices

    if snr_b is not None:
        measured = [r.get("snr_db") for r in res.get("results", []) if r.get("snr_db") is not None]
        tx = next((d["description"].get("tx_gain_db") for d in res.get("devices", {}).values()
                   if "tx" in d.get("roles", []) and d.get("description")), None)
        print(f"  SNR: Bob requested {snr_b:g} dB" + (f" (TX gain {tx:g} dB)" if tx is not None else "")
              + (f", measured {measured[-1]:.2f} dB" if measured else ", measured -"))
    print_devices(res.get("devices", {}), indent="  ")
    rec = res.get("recording")
    if rec and "data" in rec:
        print(f"  recorded {rec['samples']} samples at {rec['sample_rate_hz']:g} S/s, {rec['frames_annotated']} "
              f"frames annotated: {rec['meta']}; reference: {rec['reference']}")
        print(f"  AES key (secret, mode 0600; not in the recording): {rec['key_file']}")


def run(args) -> int:
    from baseline.report import table
    from link.apps.baseline_sweep import BaselineOptions, run_baseline
    from link.links.ota import RadioOptions
    from scripts.arguments import radio_options
    from scripts.output import write_json

    _check_link_options(args)
    impairments, pulse = _radio(args) if args.link != "awgn" else (None, None)
    radio = None
    if args.link == "ota":
        tx, bob = args.tx or args.bob or RadioOptions.tx, args.bob or args.tx or RadioOptions.bob
        radio = radio_options(args, tx=tx, bob=bob, eve=None, freq=args.freq, rate=args.sample_rate)
    opts = BaselineOptions(link=args.link, codec=args.codec, mods=args.mod, rates=args.rate, snrs_db=args.snr,
                           images=args.images, rho=_fraction(args.rho) if args.link != "replay" else 1 / 6,
                           rho_text=args.rho, data=args.data, ldpc_iters=args.ldpc_iters, decoder=args.decoder,
                           key_file=args.key_file, seed=args.seed, equalizer_taps=args.equalizer, radio=radio, record=args.record, recording=args.recording,
                           timeout_s=args.timeout)

    def show(res):
        print(table(res))
        _print_radio(res, getattr(args, "ota_snr_b", None))

    if impairments is not None:
        opts.impairments, opts.pulse = impairments, pulse
    doc = run_baseline(opts, on_result=show)
    if args.json:
        print(f"wrote {write_json(args.json, doc)}")
    return 0
