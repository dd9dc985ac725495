"""`jscec calibrate`: measure radios on the bench and write their device profiles."""
from __future__ import annotations

NAME = "calibrate"
HELP = "measure the radios (oscillator offset, noise floor, SNR against TX gain) and write device profiles"
DESCRIPTION = (
    "The --tx radio sends a comb of tones; every --rx radio (device URIs as in `jscec ota`, #N naming a channel; "
    "several --rx at once) measures, in turn: the noise floor at each RX gain with the TX off, and the residual DC; "
    "the offset of its reference oscillator against the transmitter's, from the carrier offset and from the "
    "sample-rate offset together (they must agree); the IQ image rejection; and SNR against TX gain (a sweep). "
    "Each device gets a profile, <serial>.json in calibration/profiles (or --profiles DIR, $JSCEC_PROFILES; --out "
    "PATH for one receiver's file), versioned JSON documented in calibration/profile.py, with the device "
    "temperature where the radio reports it, the time and the software versions; a PNG plots SNR against TX gain. "
    "`jscec ota`, `capture --link ota` and `baseline --link ota` then put each receiver on the transmitter's clock "
    "(the AD936x's xo_correction, else digitally) and --snr-b DB picks the TX gain from Bob's curve. --verify "
    "applies the new profiles and measures the carrier offset left.")


def add_arguments(p):
    p.add_argument("--tx", default="pluto:ip:192.168.2.1", help="transmitting radio (device URI)")
    p.add_argument("--rx", action="append", default=None, metavar="URI",
                   help="receiving radio (device URI; repeat for several; URI#N = channel N)")
    g = p.add_argument_group("radio settings")
    g.add_argument("--freq", type=float, default=2.4e9, help="centre frequency, Hz")
    g.add_argument("--rate", type=float, default=1e6, help="sample rate, S/s")
    g.add_argument("--bw", type=float, default=None, help="RF bandwidth, Hz (default: the sample rate)")
    g.add_argument("--rx-gain", type=float, default=30.0, help="RX gain of the SNR sweep and the offset measurement, dB")
    g.add_argument("--tx-gain", type=float, default=None,
                   help="TX gain of the offset measurement, dB (default: 10 dB below the sweep's top)")
    g.add_argument("--tx-level", type=float, default=0.25,
                   help="RMS amplitude of the comb relative to the device's nominal level (as jscec ota's --tx-level)")
    g.add_argument("--buffer", type=int, default=32768, help="samples per hardware buffer")
    m = p.add_argument_group("measurement")
    m.add_argument("--tx-gains", type=float, nargs="+", default=None, metavar="DB",
                   help="TX gains of the SNR sweep (default: the top of the TX range, down 60 dB in 5 dB steps)")
    m.add_argument("--rx-gains", type=float, nargs="+", default=None, metavar="DB",
                   help="RX gains of the noise floor (default: the RX range in 10 dB steps, its ends and --rx-gain)")
    m.add_argument("--xo-samples", type=int, default=2 ** 20, help="samples for the oscillator offset")
    m.add_argument("--sweep-samples", type=int, default=65536, help="samples per point of the sweeps")
    m.add_argument("--verify", action="store_true",
                   help="then apply the profiles and measure the carrier offset left")
    o = p.add_argument_group("output")
    o.add_argument("--profiles", default=None, metavar="DIR",
                   help="profiles folder (None: calibration/profiles, or $JSCEC_PROFILES)")
    o.add_argument("--out", default=None, metavar="PATH",
                   help="write here instead: a .json file (one receiver) or a folder")
    o.add_argument("--plot", default=None, metavar="PNG", help="the SNR plot (default: beside the profiles)")
    o.add_argument("--json", default=None, metavar="PATH", help="also write the calibration report as JSON")


def run(args) -> int:
    from calibration.calibrate import CalibrateOptions, run_calibration, verify_calibration
    from jscec.errors import UserError
    from scripts.output import write_json

    if not args.rx:
        raise UserError("calibrate needs at least one --rx URI (the receiving radio)")
    opts = CalibrateOptions(tx=args.tx, rx=list(args.rx), freq=args.freq, rate=args.rate, bw=args.bw,
                            tx_gain=args.tx_gain, rx_gain=args.rx_gain, tx_level=args.tx_level, buffer=args.buffer,
                            xo_samples=args.xo_samples, sweep_samples=args.sweep_samples, tx_gains=args.tx_gains,
                            rx_gains=args.rx_gains, folder=args.profiles, out=args.out, plot=args.plot)
    report = run_calibration(opts)
    print(f"TX {report['tx']} (serial {report['tx_serial']}) at {report['center_freq_hz'] / 1e6:g} MHz, "
          f"{report['sample_rate_hz'] / 1e6:g} MS/s")
    for serial, r in report["receivers"].items():
        xo = r["xo"]
        temp = "" if r["temperature_c"] is None else f", {r['temperature_c']:.1f} °C"
        print(f"RX {r['uri']} (serial {serial}{temp}):")
        if xo.get("same_device"):
            print("  oscillator: the transmitter itself")
        else:
            print(f"  oscillator {xo['ppm']:+.4f} ppm against the TX (carrier {xo['ppm_from_cfo']:+.4f}, sample rate "
                  f"{xo['ppm_from_sro']:+.4f} ± {xo['ppm_from_sro_std']:.4f}: "
                  f"{'agree' if xo['agree'] else 'DISAGREE'}); CFO {xo['cfo_hz']:+.1f} Hz")
        for ch, curve in r["snr_curve"].items():
            dc = r["dc_dbfs"][ch]
            irr = r["image_rejection_db"][ch]
            floor = {p["rx_gain_db"]: p["noise_dbfs"] for p in r["noise_floor"][ch]}
            snr = ", ".join(f"{p['tx_gain_db']:g}: {p['snr_db']:.1f}" for p in curve)
            print(f"  channel {ch}: DC {dc:.1f} dBFS, image rejection {irr:.1f} dB, noise floor "
                  + ", ".join(f"{g:g} dB: {v:.1f}" for g, v in floor.items()) + " dBFS")
            print(f"    SNR per sample (dB) at TX gain: {snr}")
    for serial, path in report["profiles"].items():
        print(f"wrote {path}")
    print(f"wrote {report['plot']}")
    if args.verify:
        report["verify"] = verify_calibration(opts)
        for serial, v in report["verify"].items():
            c = v["correction"] or {}
            print(f"verify {v['uri']}: {c.get('method') or 'no'} correction, carrier offset left "
                  f"{v['residual_cfo_hz']:+.1f} Hz ({v['residual_ppm']:+.4f} ppm)")
    if args.json:
        print(f"wrote {write_json(args.json, report)}")
    return 0
