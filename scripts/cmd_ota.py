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


def add_radio_arguments(p, tx: bool = True):
    g = p.add_argument_group("radio settings (every device)")
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


def add_link_arguments(p, out: str):
    p.add_argument("--model", default=None, help="bundled model name or checkpoint path (default: cifar10-<mode>)")
    p.add_argument("--mode", choices=["lwe", "lwe-pk", "mask"], default="lwe", help="cipher mode")
    p.add_argument("--data", nargs="?", const="", default=None,
                   help="send test images of a dataset instead of the sample photographs (no PATH: the CIFAR-10 copy)")
    p.add_argument("--images", type=int, default=3, help="number of images")
    p.add_argument("--sps", type=int, default=4, help="samples per symbol")
    p.add_argument("--rolloff", type=float, default=0.25, help="RRC roll-off")
    p.add_argument("--equalizer", type=int, default=0, help="T-spaced equaliser taps (0 = off; odd)")
    p.add_argument("--key", default=None, help="Bob's secret key file (default: fresh keys in <out>/keys, mode 0600)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first frame counter (and the channel noise)")
    p.add_argument("--out", default=out, help="folder for panel.png, constellation.png, result.json")
    p.add_argument("--json", default=None, help="also write the result JSON here")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per process")
    p.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")


def add_arguments(p):
    p.add_argument("--tx", default="pluto:ip:192.168.2.1",
                   help="transmitting radio (device URI: pluto:ip:…, pluto:usb:…, soapy:driver=…, fake-pluto, fake-soapy)")
    p.add_argument("--bob", default="pluto:ip:192.168.2.1",
                   help="Bob's receiving radio (device URI; equal to --tx for one radio looped back by cable)")
    p.add_argument("--eve", default=None,
                   help="Eve's receiving radio (device URI; may equal --bob; BOB_URI#1 = channel 1 of Bob's radio; "
                        "default: none)")
    add_radio_arguments(p)
    add_link_arguments(p, "out/ota")


def model_and_data(args) -> tuple[str, str | None]:
    model = args.model or f"cifar10-{'lwe' if args.mode == 'lwe-pk' else args.mode}"
    data = None if args.data is None else (args.data or "default")
    return model, data


def print_report(report: dict, json_path: str | None) -> None:
    import json

    from link.report import table

    print(f"{report['model']} ({report['mode']}), {report['images']}")
    print(table(report))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")


def run(args) -> int:
    from link.ota import OtaOptions, run_ota

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
