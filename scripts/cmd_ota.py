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
               "(--bob fake-pluto:rx1_noise_std=2e-3 --eve fake-pluto:rx1_noise_std=2e-3#1), and a hardware model drawn "
               "from the URI's seed (bench=0, or JSCEC_FAKE_BENCH=0, turns it off): oscillator error, DC, IQ "
               "imbalance, carrier leakage, gain-dependent noise, 12-bit converters (radio.devices.hardware). Profiles from `jscec calibrate` put every receiver on the transmitter's "
               "clock (--no-xo-correction: not) and --snr-b DB sets the TX gain from Bob's profile. Prints a table "
               "and writes panel.png, constellation.png and result.json (with device counters) into --out.")


def add_arguments(p):
    from scripts.arguments import add_link_arguments, add_radio_arguments

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
    from link.apps.classify import app_for
    from link.links.ota import OtaLink
    from link.runner import RunOptions, run as run_link
    from scripts.arguments import (image_options, live_view, print_devices, print_report, print_snr_request,
                                   radio_options)

    radio = radio_options(args, tx=args.tx, bob=args.bob, eve=args.eve, freq=args.freq, rate=args.rate)
    with live_view(args):
        report = run_link(app_for(image_options(args), args.task), OtaLink(radio),
                          RunOptions(out_dir=args.out, equalizer_taps=args.equalizer, timeout_s=args.timeout))
    print_report(report, args.json)
    print_snr_request(report)
    print_devices(report["devices"])
    print(f"{report['samples_transmitted']} samples sent in {report['seconds']:.1f} s; "
          f"wrote {report['files']['panel']}, {report['files']['constellation']}")
    return 0
