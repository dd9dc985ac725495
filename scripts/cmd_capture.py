"""`jscec capture`: run an experiment and record Bob's raw RX IQ as a SigMF recording."""
from __future__ import annotations

NAME = "capture"
HELP = "run the link (simulated or over the air) and record Bob's raw RX samples to SigMF"
DESCRIPTION = ("Runs `jscec loopback` (--link sim, the default) or `jscec ota` (--link ota --rx URI --tx URI) and "
               "records the samples entering Bob's RX chain as <recording>.sigmf-data/.sigmf-meta (cf32_le), with "
               "one annotation per synchronised frame, and the transmitted images as <recording>.reference.npz. "
               "Bob's key stays in <out>/keys (mode 0600); its path is printed. Replay with `jscec replay`. "
               "Several --freq values with --dwell (or --dwell-samples) retune every dwell, cyclically: each retune "
               "starts a new SigMF capture segment (core:frequency, core:datetime) at its sample; over radios every "
               "device of the run moves together, with --link sim only the segments change. --rx/--eve URIs may "
               "name a channel with #N (e.g. --rx pluto:ip:192.168.2.1 --eve pluto:ip:192.168.2.1#1: Eve on "
               "channel 1 of Bob's radio). With --link ota, --snr-b sets the TX gain from Bob's calibration profile "
               "(jscec calibrate) and the profiles correct the receivers' oscillators.")


def add_arguments(p):
    from scripts.arguments import add_link_arguments, add_radio_arguments, add_sim_arguments

    p.add_argument("--link", choices=["sim", "ota"], default="sim", help="simulated loopback or radios")
    p.add_argument("--recording", default=None, help="recording base path (default: <out>/capture)")
    p.add_argument("--rx", default=None, help="--link ota: Bob's receiving radio (device URI)")
    p.add_argument("--tx", default=None, help="--link ota: transmitting radio (device URI; default: --rx)")
    p.add_argument("--eve", default=None,
                   help="--link ota: Eve's receiving radio (optional; URI#1 = channel 1 of that radio)")
    add_link_arguments(p, "out/capture")   # model, images, key, seed, out, json, threads
    add_sim_arguments(p)
    add_radio_arguments(p, title="radio settings (--link ota; --rate and --freq are also the sim "
                        "recording's nominal values)", retune=True, snr_b=False)
    p.set_defaults(snr_b=None)   # --link ota: an --snr-b given sets the TX gain from Bob's profile
    p.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")


def run(args) -> int:
    import dataclasses

    from jscec.errors import UserError
    from link.apps.classify import app_for
    from link.capture import CaptureOptions, run_capture
    from link.links.ota import OtaLink
    from link.links.sim import SimLink
    from link.runner import RunOptions
    from scripts.arguments import (image_options, live_view, print_report, print_snr_request, radio_options,
                                   sim_options)

    if args.link == "sim":
        if args.rx or args.tx or args.eve:
            raise UserError("--rx/--tx/--eve are for --link ota")
        if args.snr_b is None:
            args.snr_b = 10.0
        link = SimLink(sim_options(args))
    else:
        if not args.rx:
            raise UserError("--link ota needs --rx URI (Bob's receiving radio)")
        radio = radio_options(args, tx=args.tx or args.rx, bob=args.rx, eve=args.eve, freq=args.freq[0], rate=args.rate)
        link = OtaLink(dataclasses.replace(radio, snr_b=args.snr_b))
    capture = CaptureOptions(recording=args.recording, rate=args.rate, freq=list(args.freq), dwell_s=args.dwell,
                             dwell_samples=args.dwell_samples)
    with live_view(args):
        report = run_capture(app_for(image_options(args), args.task), link,
                             RunOptions(out_dir=args.out, equalizer_taps=args.equalizer, timeout_s=args.timeout),
                             capture)
    print_report(report, args.json)
    if args.link == "ota":
        print_snr_request(report)
    r = report["recording"]
    print(f"recorded {r['samples']} samples at {r['sample_rate_hz']:g} S/s, {r['frames_annotated']} frames annotated: "
          f"{r['meta']}")
    segs = r["segments"]
    if len(segs) > 1:
        freqs = sorted({seg["frequency_hz"] for seg in segs})
        print(f"{len(segs)} capture segments over {', '.join(f'{f / 1e6:g}' for f in freqs)} MHz "
              f"(a retune every {segs[1]['sample_start']} samples)")
    print(f"reference images: {r['reference']}")
    print(f"Bob's key (secret, mode 0600; not in the recording): {report['key_file']}")
    return 0
