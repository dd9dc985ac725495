"""Argument groups and printing that several `jscec` commands share (the ``cmd_*`` modules import this,
never each other)."""
from __future__ import annotations


def add_link_arguments(p, out: str, timeout: float | None = None):
    """Options every experiment over the link shares (loopback, ota, capture): model, images, pulse, keys, output."""
    p.add_argument("--model", default=None, help="bundled model name or checkpoint path (default: cifar10-<mode>; "
                   "with --task classify cifar10-classify-<mode>); a classifier's card makes the run a classification")
    add_task_argument(p)
    p.add_argument("--mode", choices=["lwe", "lwe-pk", "mask"], default="lwe",
                   help="cipher mode (lwe-pk uses the lwe model and sends d in a protected block)")
    p.add_argument("--input", nargs="+", default=None, metavar="PATH",
                   help="send these image files, and every image file in these folders (name order)")
    p.add_argument("--data", nargs="?", const="", default=None,
                   help="send test images of a dataset instead of the sample photographs (no PATH: the CIFAR-10 copy)")
    p.add_argument("--images", type=int, default=None,
                   help="number of images (default: every --input image, else 3; a classifier: 16)")
    p.add_argument("--sps", type=int, default=4, help="samples per symbol")
    p.add_argument("--rolloff", type=float, default=0.25, help="RRC roll-off")
    p.add_argument("--equalizer", type=int, default=0, help="T-spaced equaliser taps (0 = off; odd)")
    p.add_argument("--key", default=None, help="Bob's secret key file (default: fresh keys in <out>/keys, mode 0600)")
    p.add_argument("--seed", type=int, default=0, help="seed of the channel noise and delays (frame counters never "
                   "repeat under a key: they come from the counter state kept beside the key file)")
    p.add_argument("--out", default=out, help="folder for panel.png, constellation.png, result.json")
    p.add_argument("--json", default=None, help="also write the result JSON here")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per process")
    p.add_argument("--no-eve-game", action="store_true",
                   help="do not play the IND-CPA game on the run's frames (by default Eve also guesses per frame which "
                        "of two candidate images was sent; the report scores her guesses: eve_distinguisher)")
    if timeout is not None:
        p.add_argument("--timeout", type=float, default=timeout, help="give up after this many seconds")
    add_live_arguments(p)


def add_task_argument(p) -> None:
    """``--task``: what the model does, checked against its card (or a recording's ``jscec:task``)."""
    p.add_argument("--task", choices=["image", "classify"], default=None,
                   help="image transmission or remote classification (default: the model's card says; given, it "
                        "is checked). classify: labelled test images of --data (default: the CIFAR-10 copy) go "
                        "out as a classifier's features; Bob and Eve print and store their predicted labels and "
                        "accuracy; panel.png shows the images with their labels")


def add_live_arguments(p) -> None:
    """``--live`` and ``--live-port``: the live view of the run (:mod:`link.live`)."""
    g = p.add_argument_group("live view")
    g.add_argument("--live", action="store_true",
                   help="serve a live view of the run on http://127.0.0.1:PORT/ (address printed; off by default): "
                        "spectrum before synchronisation, constellation of the last frames, MER/SNR/CFO/SRO against "
                        "time per receiver, frame counters and drop reasons, Bob's and Eve's images as they decode, "
                        "requested and measured SNR; no key or seed is served")
    g.add_argument("--live-port", type=int, default=8765, metavar="PORT",
                   help="port of the live view on 127.0.0.1 (0: any free port)")


def live_view(args):
    """The live view for ``with``: :class:`link.live.view.LiveView` with ``--live``, else nothing."""
    import contextlib

    if not getattr(args, "live", False):
        return contextlib.nullcontext()
    from link.live.view import LiveView

    return LiveView(args.live_port)


def model_and_data(args) -> tuple[str, str | None]:
    """The model (``cifar10-<mode>`` by default, ``cifar10-classify-<mode>`` with ``--task classify``; lwe-pk uses
    the lwe model) and dataset (``default``: the CIFAR-10 copy)."""
    task = "classify-" if getattr(args, "task", None) == "classify" else ""
    model = args.model or f"cifar10-{task}{'lwe' if args.mode == 'lwe-pk' else args.mode}"
    data = None if args.data is None else (args.data or "default")
    return model, data


def print_report(report: dict, json_path: str | None) -> None:
    """The experiment's table, and its JSON with ``--json``."""
    from link.report import table
    from scripts.output import write_json

    print(f"{report['model']} ({report['mode']}), {report['images']}")
    if report.get("task") == "classify":
        from link.apps.classify import label_lines, table as classify_table

        print(label_lines(report))
        print(classify_table(report))
    else:
        print(table(report))
    if json_path:
        write_json(json_path, report)


def print_snr_request(report: dict, indent: str = "") -> None:
    """With ``--snr-b``: the requested SNR, the TX gain chosen for it, and the SNRs measured from the pilots."""
    if report.get("snr_b_requested_db") is None:
        return

    def db(v):
        return "-" if v is None else f"{v:.2f} dB"

    print(f"{indent}SNR: Bob requested {report['snr_b_requested_db']:g} dB (TX gain {report['radio']['tx_gain_db']:g} dB,"
          f" expected {db(report.get('snr_b_predicted_db'))}), measured {db(report.get('snr_b_db'))}; "
          f"Eve measured {db(report.get('snr_e_db'))}"
          + (f" (expected {db(report['snr_e_predicted_db'])})" if report.get("snr_e_predicted_db") is not None else ""))


def print_devices(devices: dict, indent: str = "") -> None:
    """One line per device URI: its roles and stream counters."""
    for uri, d in devices.items():
        c = d["counters"]
        print(f"{indent}{uri} ({'/'.join(d['roles'])}): overflows {c['overflows']}, underflows {c['underflows']}, "
              f"drops {c['drops']}, timeouts {c['timeouts']}, TX clipped {c['tx_clipped']}")


def add_sim_arguments(p) -> None:
    """The simulated link's two channel branches (loopback, capture --link sim)."""
    p.add_argument("--snr-b", type=float, default=10.0, help="Bob's channel SNR in dB")
    p.add_argument("--snr-e", type=float, default=10.0, help="Eve's channel SNR in dB")
    g = p.add_argument_group("impairments (both branches; Eve's delay and phase noise are drawn independently)")
    g.add_argument("--cfo", type=float, default=0.01, help="carrier frequency offset, cycles per symbol")
    g.add_argument("--sro-ppm", type=float, default=20.0, help="sample-rate offset, ppm")
    g.add_argument("--phase-noise", type=float, default=0.002, help="rms phase noise, radians")
    g.add_argument("--delay", type=float, default=None, help="delay in samples (default: random fractional)")
    g.add_argument("--gain", type=float, default=0.8, help="channel amplitude gain")


def sim_options(args):
    """:class:`link.links.sim.SimOptions` from :func:`add_sim_arguments`' options: each branch's delay (unless
    given) and carrier phase drawn from ``--seed``."""
    import numpy as np

    from link.links.sim import SimOptions
    from radio.impairments import Impairments

    rng = np.random.default_rng([args.seed, 17])
    sides = []
    for _ in range(2):
        delay = float(rng.uniform(0, 4)) if args.delay is None else args.delay
        sides.append(Impairments(cfo=args.cfo, sro_ppm=args.sro_ppm, phase_noise=args.phase_noise, gain=args.gain,
                                 delay=delay, phase=float(rng.uniform(-3.14159, 3.14159))))
    return SimOptions(snr_b_db=args.snr_b, snr_e_db=args.snr_e, bob=sides[0], eve=sides[1], seed=args.seed)


def image_options(args):
    """:class:`link.apps.deepjscec.ImageOptions` from :func:`add_link_arguments`' options."""
    from link.apps.deepjscec import ImageOptions

    model, data = model_and_data(args)
    chains = tuple(c.strip() for c in getattr(args, "chains", "bob,eve").split(",") if c.strip())
    return ImageOptions(model=model, mode=args.mode, data=data, images=args.images, inputs=args.input, key=args.key,
                        seed=args.seed, chains=chains,
                        threads=args.threads, sps=args.sps, rolloff=args.rolloff,
                        eve_game=not getattr(args, "no_eve_game", False))


def radio_options(args, *, tx: str, bob: str, eve: str | None, freq: float, rate: float):
    """:class:`link.links.ota.RadioOptions` from :func:`add_radio_arguments`' options."""
    from link.links.ota import RadioOptions

    return RadioOptions(tx=tx, bob=bob, eve=eve, freq=freq, rate=rate, bw=args.bw, tx_gain=args.tx_gain,
                        rx_gain=args.rx_gain, agc=args.agc, buffer=args.buffer, tx_level=args.tx_level,
                        snr_b=getattr(args, "ota_snr_b", None), profiles=getattr(args, "profiles", None),
                        profile_files=tuple(getattr(args, "profile", None) or ()),
                        xo_correction=not getattr(args, "no_xo_correction", False),
                        profile_max_age_h=getattr(args, "profile_max_age", 24.0), sps=getattr(args, "sps", 4))


def add_radio_arguments(p, tx: bool = True, title: str = "radio settings (every device)", retune: bool = False,
                        snr_b: bool = True):
    """Device settings; with ``retune`` (capture) ``--freq`` takes several frequencies visited in turn. Calibration
    profiles (``jscec calibrate``): ``--snr-b`` (unless ``snr_b`` is False: the command has its own), ``--profiles``,
    ``--profile``, ``--no-xo-correction``, ``--profile-max-age``."""
    c = p.add_argument_group("calibration profiles (jscec calibrate)")
    if snr_b:
        c.add_argument("--snr-b", dest="ota_snr_b", type=float, default=None, metavar="DB",
                       help="Bob's SNR per symbol to set, dB: the TX gain comes from Bob's profile curve against the "
                            "--tx radio (overrides --tx-gain); the SNRs measured from the pilots are reported beside it")
    c.add_argument("--profiles", default=None, metavar="DIR",
                   help="folder of device profiles, <serial>.json (None: calibration/profiles, or $JSCEC_PROFILES)")
    c.add_argument("--profile", action="append", default=None, metavar="FILE",
                   help="a device profile to use before the folder's (repeatable)")
    c.add_argument("--no-xo-correction", action="store_true",
                   help="do not correct the receivers' oscillators from the profiles")
    c.add_argument("--profile-max-age", type=float, default=24.0, metavar="HOURS",
                   help="warn about profiles older than this")
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
        g.add_argument("--tx-gain", type=float, default=None,
                       help="TX gain, dB (default: the TX radio's, 10 dB below its full output: -10 on a Pluto, whose "
                            "TX gain is an attenuation <= 0; 79.75 on a USRP B210, whose UHD gain runs 0 ... 89.75)")
        g.add_argument("--tx-level", type=float, default=0.25,
                       help="RMS amplitude of the TX samples relative to the device's nominal level (backoff)")
    g.add_argument("--rx-gain", type=float, default=30.0, help="RX gain, dB (manual)")
    g.add_argument("--agc", action="store_true", help="RX automatic gain control instead of --rx-gain")
    g.add_argument("--buffer", type=int, default=32768, help="samples per hardware buffer")


class Renamed:
    """An argument parser (or group) that renames options as they are added: ``jscec ota``'s radio options
    (:func:`add_radio_arguments`) here, where ``--rate`` is the LDPC code rate."""

    def __init__(self, target, names: dict):
        self.target, self.names = target, names

    def add_argument_group(self, *a, **kw):
        return Renamed(self.target.add_argument_group(*a, **kw), self.names)

    def add_argument(self, *flags, **kw):
        return self.target.add_argument(*(self.names.get(f, f) for f in flags), **kw)
