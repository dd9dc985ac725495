"""`jscec report STORE`: figures, Markdown tables and CSV from a campaign store."""
from __future__ import annotations

NAME = "report"
HELP = "figures (PNG, 95% CIs), Markdown tables and CSV from a `jscec campaign` store, the paper's numbers beside"
DESCRIPTION = (
    "Read a campaign store (SQLite) and write, into --out: PSNR and SSIM against SNR for every system, Bob "
    "against Eve, DeepJSCEC against each baseline and MER against set SNR, each a PNG with 95% confidence "
    "intervals over repeats and images, a Markdown table (all in report.md) and a CSV. Where the campaign matches "
    "a figure of the DeepJSCEC paper (CIFAR-10, rho = 1/6), the paper's printed numbers (Table III) are drawn and "
    "tabulated beside ours, labelled as the paper's. --export writes raw store tables as CSV.")


def add_arguments(p):
    p.add_argument("store", help="the campaign's SQLite store (jscec campaign --store)")
    p.add_argument("--out", default=None, help="output folder (default: <store>-report beside the store)")
    p.add_argument("--export", nargs="*", default=[], metavar="TABLE",
                   help="also write these store tables as CSV: cells points images frames drops devices sessions "
                   "meta")


def run(args) -> int:
    from link.campaign.report import make_report

    res = make_report(args.store, args.out, export=args.export)
    for f in res["files"]:
        print(f"  {f}")
    return 0
