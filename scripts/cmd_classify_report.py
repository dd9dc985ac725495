"""`jscec classify-report`: Table V and Fig. 9 of the DeepJSCEC paper from measured JSON results."""
from __future__ import annotations

NAME = "classify-report"
HELP = "Table V (Bob vs Eve vs random) and Fig. 9 (accuracy vs SNR, DeepJSCEC vs learned digital baselines)"
DESCRIPTION = (
    "Read `jscec eval --json` files of classification models (--eval, one per model: modes and SNR_train) and the "
    "`jscec baseline-classify eval --json` file (--baseline), and write Table V as Markdown, Fig. 9 as a PNG and "
    "every number with the checks (DeepJSCEC >= the best baseline at every SNR, monotonic in SNR) as JSON. "
    "Nothing is simulated: run the evaluations first (README, Remote classification).")


def add_arguments(p):
    p.add_argument("--eval", nargs="+", required=True, metavar="JSON", help="`jscec eval --json` of classifiers")
    p.add_argument("--baseline", default=None, metavar="JSON", help="`jscec baseline-classify eval --json`")
    p.add_argument("--table-snr", type=float, default=None,
                   help="SNR of Table V (default: each model's SNR_train, as the paper)")
    p.add_argument("--out", default="out/classify-report", help="folder for table_v.md, fig9.png, report.json")


def run(args) -> int:
    import json
    from pathlib import Path

    from baseline.classify import best_curve
    from baseline.classify_figures import checks, plot_fig9, read_eval, table_v, table_v_markdown
    from scripts.output import write_json

    evals = [read_eval(p) for p in args.eval]
    baseline = json.loads(Path(args.baseline).read_text()) if args.baseline else None
    best = best_curve(baseline) if baseline else None
    rows = table_v(evals, args.table_snr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    md = table_v_markdown(rows)
    (out / "table_v.md").write_text(md)
    plot_fig9(evals, baseline, best, out / "fig9.png")
    result = {"table_v": rows, "best_baseline": best, "checks": checks(evals, best),
              "sources": {"eval": [str(p) for p in args.eval], "baseline": args.baseline}}
    write_json(out / "report.json", result)
    print(md, end="")
    for name, c in result["checks"].items():
        line = f"{name}: {'monotonic' if c['monotonic'] else 'NOT monotonic (drop %.3f)' % c['largest_drop']}"
        if "at_least_baseline_everywhere" in c:
            worst = min(c["against_best_baseline"], key=lambda m: m["margin"], default=None)
            line += (", >= best baseline at every shared SNR" if c["at_least_baseline_everywhere"]
                     else f", below the best baseline (worst {100 * worst['margin']:+.2f} points at "
                          f"{worst['snr_db']:g} dB)" if worst else ", no shared SNR with the baseline")
        print(line)
    print(f"wrote {out / 'table_v.md'}, {out / 'fig9.png'}, {out / 'report.json'}")
    return 0
