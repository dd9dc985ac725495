"""`jscec loopback`: the main job — images through the simulated GNU Radio loopback to Bob and Eve."""
from __future__ import annotations

NAME = "loopback"
HELP = "send images through the simulated GNU Radio loopback to Bob and Eve (the main job)"
DESCRIPTION = ("Alice encodes images with the bundled DeepJSCEC model, encrypts and frames them as 4096-QAM; a GNU Radio "
               "flowgraph shapes them (RRC), passes them through two simulated channels (Bob at --snr-b, Eve at "
               "--snr-e, each with CFO, sample-rate offset, phase noise, fractional delay and gain) and synchronises "
               "them; Bob's and Eve's chains (separate processes) decode. Prints a table and writes panel.png, "
               "constellation.png and result.json into --out.")


def add_link_arguments(p, out: str, timeout: float | None = None):
    """Options every experiment over the link shares (loopback, ota, capture): model, images, pulse, keys, output."""
    p.add_argument("--model", default=None, help="bundled model name or checkpoint path (default: cifar10-<mode>)")
    p.add_argument("--mode", choices=["lwe", "lwe-pk", "mask"], default="lwe",
                   help="cipher mode (lwe-pk uses the lwe model and sends d in a protected block)")
    p.add_argument("--data", nargs="?", const="", default=None,
                   help="send test images of a dataset instead of the sample photographs (no PATH: the CIFAR-10 copy)")
    p.add_argument("--images", type=int, default=3, help="number of images")
    p.add_argument("--sps", type=int, default=4, help="samples per symbol")
    p.add_argument("--rolloff", type=float, default=0.25, help="RRC roll-off")
    p.add_argument("--equalizer", type=int, default=0, help="T-spaced equaliser taps (0 = off; odd)")
    p.add_argument("--key", default=None, help="Bob's secret key file (default: fresh keys in <out>/keys, mode 0600)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first frame counter, channel noise and delays")
    p.add_argument("--out", default=out, help="folder for panel.png, constellation.png, result.json")
    p.add_argument("--json", default=None, help="also write the result JSON here")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per process")
    if timeout is not None:
        p.add_argument("--timeout", type=float, default=timeout, help="give up after this many seconds")


def model_and_data(args) -> tuple[str, str | None]:
    """The model (``cifar10-<mode>`` by default; lwe-pk uses the lwe model) and dataset (``default``: the CIFAR-10 copy)."""
    model = args.model or f"cifar10-{'lwe' if args.mode == 'lwe-pk' else args.mode}"
    data = None if args.data is None else (args.data or "default")
    return model, data


def print_report(report: dict, json_path: str | None) -> None:
    """The experiment's table, and its JSON with ``--json``."""
    from link.report import table
    from scripts.output import write_json

    print(f"{report['model']} ({report['mode']}), {report['images']}")
    print(table(report))
    if json_path:
        write_json(json_path, report)


def add_arguments(p):
    add_link_arguments(p, "out/loopback")
    p.add_argument("--snr-b", type=float, default=10.0, help="Bob's channel SNR in dB")
    p.add_argument("--snr-e", type=float, default=10.0, help="Eve's channel SNR in dB")
    g = p.add_argument_group("impairments (both branches; Eve's delay and phase noise are drawn independently)")
    g.add_argument("--cfo", type=float, default=0.01, help="carrier frequency offset, cycles per symbol")
    g.add_argument("--sro-ppm", type=float, default=20.0, help="sample-rate offset, ppm")
    g.add_argument("--phase-noise", type=float, default=0.002, help="rms phase noise, radians")
    g.add_argument("--delay", type=float, default=None, help="delay in samples (default: random fractional)")
    g.add_argument("--gain", type=float, default=0.8, help="channel amplitude gain")


def impairments_from_args(args, rng) -> tuple[dict, dict]:
    base = {"cfo": args.cfo, "sro_ppm": args.sro_ppm, "phase_noise": args.phase_noise, "gain": args.gain}
    sides = []
    for _ in range(2):
        d = dict(base)
        d["delay"] = float(rng.uniform(0, 4)) if args.delay is None else args.delay
        d["phase"] = float(rng.uniform(-3.14159, 3.14159))
        sides.append(d)
    return sides[0], sides[1]


def run(args) -> int:
    import numpy as np

    from link.links.sim import LoopbackOptions, run_loopback

    model, data = model_and_data(args)
    bob_imp, eve_imp = impairments_from_args(args, np.random.default_rng([args.seed, 17]))
    opts = LoopbackOptions(model=model, mode=args.mode, data=data, images=args.images, snr_b_db=args.snr_b,
                           snr_e_db=args.snr_e, bob_impairments=bob_imp, eve_impairments=eve_imp, sps=args.sps,
                           rolloff=args.rolloff, equalizer_taps=args.equalizer, key=args.key, seed=args.seed,
                           out_dir=args.out, threads=args.threads)
    report = run_loopback(opts)
    print_report(report, args.json)
    print(f"{report['samples_per_branch']} samples per branch in {report['seconds']:.1f} s; "
          f"wrote {report['files']['panel']}, {report['files']['constellation']}")
    return 0
