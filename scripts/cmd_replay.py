"""`jscec replay`: a SigMF recording through the RX flowgraph and Bob's / Eve's chains."""
from __future__ import annotations

NAME = "replay"
HELP = "replay a SigMF recording through the RX flowgraph and Bob's/Eve's chains"
DESCRIPTION = ("Feeds RECORDING.sigmf-meta (from `jscec capture`, or any cf32_le/ci16_le SigMF recording of the link) "
               "through the same RX flowgraph as loopback/ota (matched filter, FrameSync) into Bob's chain (needs "
               "--key) and Eve's. Prints a table and writes panel.png, constellation.png, result.json and Bob's and "
               "Eve's images (bob-images.npz, eve-images.npz) into --out, scored where reference images exist; "
               "the same recording always gives the same images and JSON (wall-clock figures under 'timing').")


def add_arguments(p):
    from scripts.arguments import add_live_arguments, add_task_argument

    p.add_argument("recording", help="the recording (x.sigmf-meta, x.sigmf-data or the base name x)")
    p.add_argument("--chains", default="bob,eve", help="which chains: bob, eve or bob,eve")
    p.add_argument("--key", default=None, help="Bob's secret key file (printed by jscec capture)")
    p.add_argument("--reference", default=None,
                   help="npz of the transmitted images, to score Bob's and Eve's against (default: "
                        "<recording>.reference.npz beside it; with none there, the images are decoded and saved in "
                        "<out>/bob-images.npz and eve-images.npz but not scored)")
    p.add_argument("--model", default=None, help="model name or checkpoint (default: the one the recording names)")
    add_task_argument(p)
    p.add_argument("--mode", choices=["lwe", "lwe-pk", "mask"], default=None, help="cipher mode (default: recorded)")
    p.add_argument("--equalizer", type=int, default=0, help="T-spaced equaliser taps (0 = off; odd)")
    p.add_argument("--sync-in-process", action="store_true",
                   help="run the whole synchroniser in the flowgraph's process (default on a machine with more than one "
                        "core: frames are finished in a worker process, on a second core; the results are the same bit "
                        "for bit)")
    p.add_argument("--out", default="out/replay", help="folder for panel.png, constellation.png, result.json")
    p.add_argument("--json", default=None, help="also write the result JSON here")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per process")
    p.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
    add_live_arguments(p)


def run(args) -> int:
    from link.apps.classify import app_for
    from link.apps.deepjscec import ImageOptions
    from link.links.replay import ReplayLink, ReplayOptions
    from link.runner import RunOptions, run as run_link
    from scripts.arguments import live_view, print_report

    chains = tuple(c.strip() for c in args.chains.split(",") if c.strip())
    app = app_for(ImageOptions(model=args.model, mode=args.mode, key=args.key, chains=chains,
                               reference=args.reference, threads=args.threads), args.task, recording=args.recording)
    link = ReplayLink(ReplayOptions(args.recording))
    if args.sync_in_process:
        link.opts.sync_process = False
    with live_view(args):
        report = run_link(app, link, RunOptions(out_dir=args.out, equalizer_taps=args.equalizer,
                                                timeout_s=args.timeout))
    print_report(report, args.json)
    r, t = report["recording"], report["timing"]
    print(f"{r['samples']} samples, {r['frames_found']} frames; RX flowgraph {t['rx_seconds']:.2f} s to its last frame "
          f"({t['x_real_time']:.1f}x real time; {t['dsp_seconds']:.2f} s with start/stop), whole replay "
          f"{t['seconds']:.1f} s; wrote {report['files']['panel']}")
    return 0
