"""`jscec ota`: the loopback's experiment over radios (PlutoSDR, SoapySDR/USRP, or the CI fakes)."""
from __future__ import annotations

NAME = "ota"
HELP = "send images over the air: TX radio → Bob's (and Eve's) RX radio, same outputs as loopback"
DESCRIPTION = ("Alice encodes, encrypts and frames images as 4096-QAM; a GNU Radio flowgraph shapes them (RRC) into "
               "the --tx radio; Bob's (--bob) and optionally Eve's (--eve) radios receive, and the same RX chains as "
               "`jscec loopback` synchronise and decode. Devices are URIs: pluto, pluto:ip:HOST, pluto:usb:B.D.I, "
               "soapy:driver=uhd[,serial=…], fake-pluto, fake-soapy (CI fakes sharing one simulated air; options "
               "e.g. fake-pluto:noise_std=1e-4,cfo_hz=300). The same URI twice is the same radio. A URI ending in "
               "#N names RX channel N of that radio: --bob pluto:ip:192.168.2.1 --eve pluto:ip:192.168.2.1#1 opens "
               "it once and streams channels 0 and 1 together (a Pluto must be an AD9361-based 2R2T variant; a "
               "single-channel radio is refused); the fakes offer two RX channels, each with its own path "
               "(--bob fake-pluto:rx1_noise_std=2e-3 --eve fake-pluto:rx1_noise_std=2e-3#1). Prints a table and "
               "writes panel.png, constellation.png and result.json (with device counters) into --out.")


def add_radio_arguments(p, tx: bool = True, title: str = "radio settings (every device)", retune: bool = False):
    """Device settings; with ``retune`` (capture) ``--freq`` takes several frequencies visited in turn."""
    g = p.add_argument_group(title)
    if retune:
        g.add_argument("--freq", type=float, nargs="+", default=[2.4e9], metavar="HZ",
                       help="centre frequency, Hz; several: visit them in turn (needs --dwell or --dwell-samples), "
                            "one SigMF capture segment per retune")
        dwell = g.add_mutually_exclusive_group()
        dwell.add_argument("--dwell", type=float, default=None, metavar="SECONDS",
                           help="time on each --freq before retuning, seconds of samples at --rate")
        dwell.add_argument("--dwell-samples", type=int, default=None, metavar="N",
                           help="time on each --freq before retuning, in samples")
    else:
        g.add_argument("--freq", type=float, default=2.4e9, help="centre frequency, Hz")
    g.add_argument("--rate", type=float, default=1e6, help="sample rate, S/s (symbol rate = rate / sps)")
    g.add_argument("--bw", type=float, default=None, help="RF bandwidth, Hz (default: the sample rate)")
    if tx:
        g.add_argument("--tx-gain", type=float, default=-10.0, help="TX gain, dB (Pluto: attenuation <= 0)")
        g.add_argument("--tx-level", type=float, default=0.25,
                       help="RMS amplitude of the TX samples relative to the device's nominal level (backoff)")
    g.add_argument("--rx-gain", type=float, default=30.0, help="RX gain, dB (manual)")
    g.add_argument("--agc", action="store_true", help="RX automatic gain control instead of --rx-gain")
    g.add_argument("--buffer", type=int, default=32768, help="samples per hardware buffer")


def add_arguments(p):
    from scripts.cmd_loopback import add_link_arguments

    p.add_argument("--tx", default="pluto:ip:192.168.2.1",
                   help="transmitting radio (device URI: pluto:ip:…, pluto:usb:…, soapy:driver=…, fake-pluto, fake-soapy)")
    p.add_argument("--bob", default="pluto:ip:192.168.2.1",
                   help="Bob's receiving radio (device URI; equal to --tx for one radio looped back by cable)")
    p.add_argument("--eve", default=None,
                   help="Eve's receiving radio (device URI; may equal --bob; BOB_URI#1 = channel 1 of Bob's radio; "
                        "default: none)")
    add_radio_arguments(p)
    add_link_arguments(p, "out/ota", timeout=600.0)


def run(args) -> int:
    from link.links.ota import OtaOptions, run_ota
    from scripts.cmd_loopback import model_and_data, print_report

    model, data = model_and_data(args)
    opts = OtaOptions(tx=args.tx, bob=args.bob, eve=args.eve, freq=args.freq, rate=args.rate, bw=args.bw,
                      tx_gain=args.tx_gain, rx_gain=args.rx_gain, agc=args.agc, buffer=args.buffer,
                      tx_level=args.tx_level, model=model, mode=args.mode, data=data, images=args.images,
                      sps=args.sps, rolloff=args.rolloff, equalizer_taps=args.equalizer, key=args.key,
                      seed=args.seed, out_dir=args.out, timeout_s=args.timeout, threads=args.threads)
    report = run_ota(opts)
    print_report(report, args.json)
    for uri, d in report["devices"].items():
        c = d["counters"]
        print(f"{uri} ({'/'.join(d['roles'])}): overflows {c['overflows']}, underflows {c['underflows']}, "
              f"drops {c['drops']}, timeouts {c['timeouts']}, TX clipped {c['tx_clipped']}")
    print(f"{report['samples_transmitted']} samples sent in {report['seconds']:.1f} s; "
          f"wrote {report['files']['panel']}, {report['files']['constellation']}")
    return 0
