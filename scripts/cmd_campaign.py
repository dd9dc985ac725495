"""`jscec campaign PLAN`: run an experiment plan's cells into an SQLite store (resumable)."""
from __future__ import annotations

NAME = "campaign"
HELP = "run an experiment plan (TOML) into an SQLite results store; resumable, --jobs N in parallel"
DESCRIPTION = (
    "Read PLAN (TOML: [campaign], [link], [grid], [[deepjscec]], [[baseline]]; see plans/*.toml), refuse unknown "
    "keys and impossible combinations with the line named, and run every cell (one system at one grid point, one "
    "repeat) through the project's runner or its symbol-level simulations. Each finished cell is stored in one "
    "transaction in STORE (SQLite, WAL): settings, per-image Bob/Eve PSNR/SSIM, per-frame MER/SNR/CFO/SRO and drop "
    "reasons, timings, recordings, software versions. Running the same plan again skips stored cells; Ctrl-C or "
    "SIGTERM loses at most the cells in progress. A store made by another plan is refused unless --force. "
    "Simulated cells run in --jobs processes; cells over radios run one at a time. Then: jscec report STORE.")


def add_arguments(p):
    from scripts.arguments import add_live_arguments

    p.add_argument("plan", nargs="?", default="plans/fig3-sim.toml", help="the plan (TOML)")
    p.add_argument("--store", default=None, help="SQLite store (default: out/campaigns/<plan name>.sqlite, with "
                   "-images<N>/-repeats<R> when overridden)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes for simulated cells")
    p.add_argument("--images", type=int, default=None, help="override [campaign] images (a quick run)")
    p.add_argument("--repeats", type=int, default=None, help="override [campaign] repeats (the first seeds)")
    p.add_argument("--force", action="store_true", help="adopt this plan in a store made by another plan (shared "
                   "cells kept, the others left out of reports)")
    p.add_argument("--dry-run", action="store_true", help="validate the plan and list the cells to run")
    add_live_arguments(p)


def run(args) -> int:
    import sys

    from link.campaign.execute import CampaignOptions, run_campaign
    from scripts.arguments import live_view

    opts = CampaignOptions(store=args.store, jobs=args.jobs, force=args.force, images=args.images,
                           repeats=args.repeats, dry_run=args.dry_run, argv=sys.argv)
    with live_view(args):
        res = run_campaign(args.plan, opts)
    if args.dry_run:
        return 0
    print(f"campaign: {res['ran']} cells run, {res['skipped']} already stored, {res['failed']} failed in "
          f"{res['seconds']:.1f} s; store {res['store']}" + ("" if not res["failed"] else
                                                              " (run the same command again to retry)"))
    print(f"next: jscec report {res['store']}")
    return 1 if res["failed"] else 0
