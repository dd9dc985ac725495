"""Table V and Fig. 9 of the DeepJSCEC paper (Sec. V-B) from measured results.

Inputs are the JSON files the commands write: ``jscec eval --json`` of classification models (Bob's
and Eve's accuracy per SNR, the random guess) and ``jscec baseline-classify eval --json`` (the learned
digital baseline per modulation and LDPC rate). Nothing is simulated here.

* Table V: Bob, Eve and a uniform random guess at SNR_train = SNR_test (10 dB in the paper).
* Fig. 9: accuracy against SNR_test for each DeepJSCEC model (mode, SNR_train) and the digital
  baselines (each pair thin, the best pair at each SNR bold).
* The issue's checks: DeepJSCEC at least as accurate as the best baseline at every SNR both were
  measured at, and monotonic in SNR (no cliff).
"""
from __future__ import annotations

import json
from pathlib import Path

from jscec.errors import UserError


def read_eval(path) -> dict:
    """A ``jscec eval --json`` file of a classification model."""
    try:
        report = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"no such result file: {path}") from None
    except json.JSONDecodeError:
        raise UserError(f"{path} is not JSON") from None
    if report.get("task") != "classify":
        raise UserError(f"{path} is not the evaluation of a classification model (jscec eval on a --task classify "
                        "checkpoint)")
    return report


def label(report: dict) -> str:
    mode = report["cipher_mode"] + ("" if report["cipher_mode"] == "mask" else f" {report['cipher_params']}")
    return f"DeepJSCEC {mode}, SNR_train {report.get('snr_train_db', float('nan')):g} dB"


def _row_at(report: dict, snr: float) -> dict | None:
    return next((r for r in report["results"] if abs(r["snr_db"] - snr) < 1e-9), None)


def table_v(evals: list[dict], snr_db: float | None = None) -> list[dict]:
    """Bob, Eve and random at SNR_test = SNR_train (or ``snr_db``) for each model."""
    rows = []
    for rep in evals:
        snr = rep.get("snr_train_db") if snr_db is None else snr_db
        r = _row_at(rep, snr)
        if r is None:
            raise UserError(f"{rep['model']} was not evaluated at {snr:g} dB (jscec eval --snr …)")
        rows.append({"model": rep["model"], "cipher_mode": rep["cipher_mode"], "cipher_params": rep["cipher_params"],
                     "snr_train_db": rep.get("snr_train_db"), "snr_db": snr, "images": rep["images"],
                     "bob": r["bob"]["accuracy"], "eve": r.get("eve", {}).get("accuracy"),
                     "random": rep["random_guess"]["accuracy"], "chance": rep["random_guess"]["chance"]})
    return rows


def table_v_markdown(rows: list[dict]) -> str:
    lines = ["| model | mode | SNR_train = SNR_test | images | Bob | Eve | random guess |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        eve = "—" if r["eve"] is None else f"{100 * r['eve']:.2f} %"
        lines.append(f"| {r['model']} | {r['cipher_mode']} | {r['snr_db']:g} dB | {r['images']} | "
                     f"{100 * r['bob']:.2f} % | {eve} | {100 * r['random']:.2f} % |")
    return "\n".join(lines) + "\n"


def checks(evals: list[dict], best: list[dict] | None) -> dict:
    """Monotonicity of each DeepJSCEC curve and its margin over the best baseline at shared SNRs."""
    out = {}
    for rep in evals:
        accs = [r["bob"]["accuracy"] for r in sorted(rep["results"], key=lambda r: r["snr_db"])]
        drops = [a - b for a, b in zip(accs, accs[1:]) if b < a]
        entry = {"monotonic": not drops, "largest_drop": max(drops, default=0.0)}
        if best:
            margins = []
            for b in best:
                r = _row_at(rep, b["snr_db"])
                if r is not None:
                    margins.append({"snr_db": b["snr_db"], "deepjscec": r["bob"]["accuracy"],
                                    "baseline": b["accuracy"], "margin": r["bob"]["accuracy"] - b["accuracy"]})
            entry["against_best_baseline"] = margins
            entry["at_least_baseline_everywhere"] = bool(margins) and all(m["margin"] >= 0 for m in margins)
        out[f"{rep['model']} ({label(rep)})"] = entry
    return out


def plot_fig9(evals: list[dict], baseline: dict | None, best: list[dict] | None, png) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for rep in evals:
        rows = sorted(rep["results"], key=lambda r: r["snr_db"])
        ax.plot([r["snr_db"] for r in rows], [100 * r["bob"]["accuracy"] for r in rows], "o-", label=label(rep))
    if baseline:
        for p in baseline.get("pairs", []):
            rows = p["results"]
            ax.plot([r["snr_db"] for r in rows], [100 * r["accuracy"] for r in rows], "-", lw=0.8, alpha=0.5,
                    label=f"digital {p['mod']} {p['rate']} (λ {p['lambda']:g})")
    if best:
        ax.plot([b["snr_db"] for b in best], [100 * b["accuracy"] for b in best], "k--", lw=2,
                label="best digital baseline")
    if evals:
        ax.axhline(100 * evals[0]["random_guess"]["accuracy"], color="gray", ls=":", label="random guess")
    ax.set_xlabel("SNR_test (dB)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Remote classification, CIFAR-10, ρ = 1/6 (paper Fig. 9)")
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)
