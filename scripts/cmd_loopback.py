"""`jscec loopback`: the main job — images through the simulated GNU Radio loopback to Bob and Eve."""
from __future__ import annotations

NAME = "loopback"
HELP = "send images through the simulated GNU Radio loopback to Bob and Eve (the main job)"
DESCRIPTION = ("Alice encodes images with the bundled DeepJSCEC model, encrypts and frames them as 4096-QAM; a GNU Radio "
               "flowgraph shapes them (RRC), passes them through two simulated channels (Bob at --snr-b, Eve at "
               "--snr-e, each with CFO, sample-rate offset, phase noise, fractional delay and gain) and synchronises "
               "them; Bob's and Eve's chains (separate processes) decode. Prints a table and writes panel.png, "
               "constellation.png and result.json into --out.")


def add_arguments(p):
    from scripts.arguments import add_link_arguments, add_sim_arguments

    add_link_arguments(p, "out/loopback")
    add_sim_arguments(p)
    p.add_argument("--chains", default="bob,eve",
                   help="which receive chains run: bob, eve or bob,eve (bob: a model without Eve's decoder yet)")


def run(args) -> int:
    from link.apps.classify import app_for
    from link.links.sim import SimLink
    from link.runner import RunOptions, run as run_link
    from scripts.arguments import image_options, live_view, print_report, sim_options

    with live_view(args):
        report = run_link(app_for(image_options(args), args.task), SimLink(sim_options(args)),
                          RunOptions(out_dir=args.out, equalizer_taps=args.equalizer, timeout_s=900.0))
    print_report(report, args.json)
    print(f"{report['samples_per_branch']} samples per branch in {report['seconds']:.1f} s; "
          f"wrote {report['files']['panel']}, {report['files']['constellation']}")
    return 0
