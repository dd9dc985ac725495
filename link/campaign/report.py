"""``jscec report STORE``: figures (PNG), a Markdown table per figure and CSV, from a campaign store alone.

Figures (each with its table, ``<name>.md`` rows in ``report.md`` and ``<name>.csv``):

* ``psnr_ssim`` — Bob's PSNR and SSIM against SNR for every system (DeepJSCEC and baselines);
* ``bob_eve`` — Bob against Eve for every DeepJSCEC system, each against its own channel's SNR
  (and ``bob_eve_grid``: Eve's PSNR over the SNR_b × SNR_e grid when both were swept);
* ``vs_<baseline>`` — each baseline configuration against the DeepJSCEC systems;
* ``mer`` — MER against set SNR (framed links).

Intervals are 95 % Student-t confidence intervals of the mean over every image of every repeat at a
point (over the repeats' means where a cell stores no per-image scores). Over radios, where the SNR is
measured and not set, points are grouped by TX gain and drawn at the mean measured SNR. Where the
campaign matches a figure of paper 000 (CIFAR-10, ρ = 1/6), its Table III numbers are drawn beside
ours and tabulated in a separate ``paper`` column, labelled as the paper's.
"""
from __future__ import annotations

import csv
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from jscec.errors import UserError
from link.campaign import paper
from link.campaign.store import COLUMNS, Store

EXPORTABLE = ("cells", "points", "images", "frames", "drops", "devices", "sessions", "meta")


@dataclass
class Row:
    system: str
    label: str
    role: str
    x: float | None          # set SNR (dB), or mean measured SNR over radios
    group: float | None      # what the rows were grouped by (set SNR or TX gain)
    n: int
    repeats: int
    psnr: float | None
    psnr_lo: float | None
    psnr_hi: float | None
    ssim: float | None
    ssim_lo: float | None
    ssim_hi: float | None
    mer_db: float | None = None
    undecodable: float | None = None


def mean_ci(values: list[float]) -> tuple[float | None, float | None, float | None]:
    """Mean and its 95 % Student-t interval (None bounds for one value)."""
    v = [float(x) for x in values if x is not None and math.isfinite(x)]
    if not v:
        return None, None, None
    m = sum(v) / len(v)
    if len(v) < 2:
        return m, None, None
    from scipy.stats import t

    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))
    h = float(t.ppf(0.975, len(v) - 1)) * sd / math.sqrt(len(v))
    return m, m - h, m + h


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def load(store: Store) -> dict:
    cells = {c["cell_id"]: c for c in store.query("SELECT * FROM cells WHERE in_plan = 1 ORDER BY ordinal")}
    for c in cells.values():
        c["settings"] = json.loads(c["settings"])
        c["summary"] = json.loads(c["summary"])
    points = [p for p in store.query("SELECT * FROM points") if p["cell_id"] in cells]
    images = defaultdict(list)
    for r in store.db.execute("SELECT cell_id, role, snr_db, psnr, ssim FROM images"):
        if r[0] in cells:
            images[(r[0], r[1], r[2])].append((r[3], r[4]))
    return {"cells": cells, "points": points, "images": images, "plan": json.loads(store.get_meta("plan_json")
                                                                                   or "{}")}


def aggregate(data: dict, role_x: str = "snr_db") -> list[Row]:
    """One row per (label, role, point): pooled per-image scores over the repeats, with 95 % intervals."""
    cells, groups = data["cells"], defaultdict(list)
    for p in data["points"]:
        c = cells[p["cell_id"]]
        radio = p["snr_db"] is None
        key = (c["system"], c["label"], p["role"], p["tx_gain_db"] if radio else p[role_x])
        groups[key].append(p)
    rows = []
    for (system, label, role, group), pts in groups.items():
        per = []
        for p in pts:
            per += data["images"].get((p["cell_id"], p["role"], p["snr_db"]), [])
        if per:
            ps, ss = [a for a, _ in per], [b for _, b in per]
        else:
            ps, ss = [p["psnr"] for p in pts], [p["ssim"] for p in pts]
        psnr, plo, phi = mean_ci(ps)
        ssim, slo, shi = mean_ci(ss)
        xs = [p["snr_db"] if p["snr_db"] is not None else p["measured_snr_db"] for p in pts]
        xs = [x for x in xs if x is not None]
        mers = [p["mer_db"] for p in pts if p["mer_db"] is not None]
        und = [p["undecodable"] / p["images"] for p in pts if p["undecodable"] is not None and p["images"]]
        rows.append(Row(system, label, role, sum(xs) / len(xs) if xs else None, group, len(ps), len(pts), psnr, plo,
                        phi, ssim, slo, shi, sum(mers) / len(mers) if mers else None,
                        sum(und) / len(und) if und else None))
    rows.sort(key=lambda r: (r.system != "deepjscec", r.label, r.role, -1e9 if r.group is None else r.group))
    return rows


def _fmt(v, spec=".2f"):
    return "—" if v is None else format(v, spec)


def _ci(m, lo, hi, spec):
    if m is None:
        return "—"
    return f"{m:{spec}}" + ("" if lo is None else f" [{lo:{spec}}, {hi:{spec}}]")


def _context(data: dict) -> dict:
    """Dataset, ρ and mean image of the campaign's cells (from their stored summaries)."""
    ds = rho = None
    means = []
    for c in data["cells"].values():
        s = c["summary"]
        ds = ds or s.get("dataset")
        if c["system"] == "deepjscec":
            rho = rho or s.get("rho")
            if s.get("mean_image"):
                means.append(s["mean_image"])
        elif c["system"] == "baseline" and s.get("run"):
            rho = rho or s.get("rho")
    mean = {k: sum(m[k] for m in means) / len(means) for k in ("psnr", "ssim")} if means else None
    return {"dataset": ds, "rho": rho, "mean_image": mean,
            "paper": paper.matches_table_iii(ds, rho) and any(c["system"] == "deepjscec"
                                                             for c in data["cells"].values())}


def _paper_cell(r: Row, ctx: dict) -> str:
    t = paper.TABLE_III
    if ctx["paper"] and r.system == "deepjscec" and r.group is not None and abs(r.group - t["snr_db"]) < 1e-9 \
            and r.role in ("bob", "eve"):
        return f"{t[r.role]['psnr']:.2f} / {t[r.role]['ssim']:.4f} (paper 000 Table III)"
    return ""


TABLE_HEAD = ("system", "role", "set SNR / TX gain (dB)", "SNR dB (x)", "n", "repeats", "PSNR dB [95% CI]",
              "SSIM [95% CI]", "MER dB", "undecodable", "paper PSNR / SSIM")


def _table_rows(rows: list[Row], ctx: dict) -> list[list[str]]:
    return [[r.label, r.role, _fmt(r.group, "g"), _fmt(r.x), str(r.n), str(r.repeats),
             _ci(r.psnr, r.psnr_lo, r.psnr_hi, ".2f"), _ci(r.ssim, r.ssim_lo, r.ssim_hi, ".4f"), _fmt(r.mer_db),
             _fmt(r.undecodable, ".3f"), _paper_cell(r, ctx)] for r in rows]


def _csv_rows(rows: list[Row], ctx: dict) -> list[dict]:
    t = paper.TABLE_III
    out = []
    for r in rows:
        d = {"system": r.system, "label": r.label, "role": r.role, "group": r.group, "snr_db": r.x, "n": r.n,
             "repeats": r.repeats, "psnr": r.psnr, "psnr_ci_lo": r.psnr_lo, "psnr_ci_hi": r.psnr_hi, "ssim": r.ssim,
             "ssim_ci_lo": r.ssim_lo, "ssim_ci_hi": r.ssim_hi, "mer_db": r.mer_db, "undecodable": r.undecodable,
             "paper_psnr": None, "paper_ssim": None}
        if _paper_cell(r, ctx):
            d["paper_psnr"], d["paper_ssim"] = t[r.role]["psnr"], t[r.role]["ssim"]
        out.append(d)
    return out


def markdown(head, rows) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        if rows:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return path


def _plot(panels, path: Path, title: str, ctx: dict, *, paper_roles=("bob",), xlabel="SNR (dB)") -> None:
    """``panels``: [(metric, [Row])]; one curve per (label, role) with its 95 % band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.6), squeeze=False)
    t = paper.TABLE_III
    for ax, (metric, rows) in zip(axes[0], panels):
        curves = defaultdict(list)
        for r in rows:
            if r.x is not None and getattr(r, metric) is not None:
                curves[(r.label, r.role)].append(r)
        for (label, role), rs in curves.items():
            rs.sort(key=lambda r: r.x)
            x = [r.x for r in rs]
            y = [getattr(r, metric) for r in rs]
            ls = "-" if role == "bob" else "--"
            line, = ax.plot(x, y, ls, marker="o" if role == "bob" else "s", ms=3,
                            label=f"{label}" + (f" — {role.capitalize()}" if role != "bob" or len(paper_roles) > 1
                                                else ""))
            lo = [getattr(r, metric + "_lo", None) for r in rs]
            hi = [getattr(r, metric + "_hi", None) for r in rs]
            if all(v is not None for v in lo + hi) and len(x) > 1:
                ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.18, lw=0)
            elif any(v is not None for v in lo):
                ax.errorbar(x, y, yerr=[[a - b if b is not None else 0 for a, b in zip(y, lo)],
                                        [b - a if b is not None else 0 for a, b in zip(y, hi)]],
                            fmt="none", ecolor=line.get_color(), capsize=2)
        if metric in ("psnr", "ssim"):
            if ctx["mean_image"]:
                ax.axhline(ctx["mean_image"][metric], color="gray", lw=1, label="mean image (ours)")
            if ctx["paper"]:
                for role in paper_roles:
                    ax.plot([t["snr_db"]], [t[role][metric]], "*", ms=12, color="black" if role == "bob" else "red",
                            label=f"paper 000 Table III — {role.capitalize()} (SNR_train 10 dB)", zorder=5)
                ax.axhline(t["mean_image"][metric], color="black", ls=":", lw=1, label="paper 000 — mean image")
        ax.set_xlabel(xlabel)
        ax.set_ylabel({"psnr": "PSNR (dB)", "ssim": "SSIM", "mer_db": "MER (dB)"}[metric])
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def make_report(store_path, out_dir=None, export=(), log=print) -> dict:
    """Write the figures, ``report.md`` and CSVs of ``store_path`` into ``out_dir``; returns what was written."""
    store_path = Path(store_path)
    with Store(store_path, create=False) as store:
        data = load(store)
        meta = {k: store.get_meta(k) for k in ("plan_name", "plan_hash", "schema_version", "created")}
        sessions = store.query("SELECT session_id, started, finished, status, jobs, software FROM sessions")
        exported = _export(store, export, Path(out_dir) if out_dir else None, store_path)
    if not data["cells"]:
        raise UserError(f"{store_path} holds no finished cell of its plan yet: run jscec campaign first")
    out = Path(out_dir) if out_dir else store_path.with_name(store_path.stem + "-report")
    out.mkdir(parents=True, exist_ok=True)
    ctx = _context(data)
    rows = aggregate(data)
    files, sections = [], []
    plan = data["plan"]
    kind = plan.get("link", {}).get("kind", "?")
    xlabel = "SNR (dB)" + (" — measured" if kind == "ota" else "")
    title = (f"{meta['plan_name']} — {ctx['dataset'] or ''}, link {kind}"
             + (f", ρ = {ctx['rho']:.4g}" if ctx["rho"] else ""))

    def figure(name, heading, fig_rows, panels, note="", **kw):
        png = out / f"{name}.png"
        _plot(panels, png, f"{title}\n{heading}", ctx, xlabel=xlabel, **kw)
        write_csv(out / f"{name}.csv", _csv_rows(fig_rows, ctx))
        md = markdown(TABLE_HEAD, _table_rows(fig_rows, ctx))
        (out / f"{name}.md").write_text(md + "\n")
        sections.append(f"## {heading}\n\n![{name}]({name}.png)\n\n" + (f"{note}\n\n" if note else "") + md + "\n")
        files.extend([png, out / f"{name}.csv", out / f"{name}.md"])

    bob = [r for r in rows if r.role == "bob"]
    note = paper.FIG3_NOTE if ctx["paper"] else ""
    figure("psnr_ssim", "PSNR and SSIM against SNR (Bob)", bob, [("psnr", bob), ("ssim", bob)], note)
    deep = [r for r in rows if r.system in ("deepjscec", "replay")]
    if any(r.role == "eve" for r in deep):
        figure("bob_eve", "Bob against Eve (each against its own channel's SNR)", deep,
               [("psnr", deep), ("ssim", deep)], note, paper_roles=("bob", "eve"))
        grid = _grid_table(data)
        if grid:
            (out / "bob_eve_grid.md").write_text(grid[0] + "\n")
            write_csv(out / "bob_eve_grid.csv", grid[1])
            sections.append("## Eve's PSNR over the SNR_b × SNR_e grid (dB, mean over images and repeats)\n\n"
                            + grid[0] + "\n")
            files += [out / "bob_eve_grid.md", out / "bob_eve_grid.csv"]
    deep_bob = [r for r in deep if r.role == "bob"]
    for label in dict.fromkeys(r.label for r in rows if r.system == "baseline"):
        sel = deep_bob + [r for r in rows if r.label == label]
        figure(f"vs_{_slug(label)}", f"DeepJSCEC against {label}", sel, [("psnr", sel), ("ssim", sel)], note)
    mer = [r for r in rows if r.mer_db is not None]
    if mer:
        figure("mer", "MER against set SNR", mer, [("mer_db", mer)], paper_roles=())
    timing = store_timing(store_path)
    head = [f"# Campaign report: {meta['plan_name']}", "",
            f"Store `{store_path}` (schema {meta['schema_version']}, plan hash {meta['plan_hash'][:12]}), "
            f"{len(data['cells'])} cells; dataset {ctx['dataset']}; link {kind}.",
            f"Cells ran for {timing['run_s']:.1f} s in all; writing them to the store took {timing['write_s']:.3f} s "
            f"({100 * timing['write_s'] / max(timing['run_s'], 1e-9):.3f} % of the run time).",
            "Intervals: 95 % Student-t confidence intervals of the mean over all images of all repeats at a point.",
            "Sessions: " + "; ".join(f"#{s['session_id']} {s['started']} {s['status']} (jobs {s['jobs']})"
                                     for s in sessions), ""]
    if ctx["paper"]:
        t = paper.TABLE_III
        head += [f"Paper 000 {t['what']}: Bob {t['bob']['psnr']} dB / SSIM {t['bob']['ssim']}, Eve {t['eve']['psnr']} "
                 f"dB / {t['eve']['ssim']}, mean image {t['mean_image']['psnr']} dB / {t['mean_image']['ssim']} — "
                 "the paper's numbers, drawn as stars and dotted lines.", ""]
    if ctx["mean_image"]:
        head += [f"Mean image (ours, train-split mean): PSNR {ctx['mean_image']['psnr']:.2f} dB, SSIM "
                 f"{ctx['mean_image']['ssim']:.4f}.", ""]
    (out / "report.md").write_text("\n".join(head) + "\n" + "\n".join(sections))
    files.insert(0, out / "report.md")
    log(f"report: {len(data['cells'])} cells of {meta['plan_name']} -> {out}/report.md, "
        f"{sum(1 for f in files if f.suffix == '.png')} figures")
    return {"out_dir": str(out), "files": [str(f) for f in files] + [str(p) for p in exported], "rows": rows,
            "context": ctx}


def _grid_table(data: dict):
    cells = data["cells"]
    eve = [p for p in data["points"] if p["role"] == "eve" and p["snr_b_db"] is not None
           and p["snr_e_db"] is not None]
    sb = sorted({p["snr_b_db"] for p in eve})
    se = sorted({p["snr_e_db"] for p in eve})
    if len(sb) < 2 or len(se) < 2 or all(p["snr_b_db"] == p["snr_e_db"] for p in eve):
        return None       # Eve's SNR followed Bob's: no grid
    md_parts, csv_rows = [], []
    for label in dict.fromkeys(cells[p["cell_id"]]["label"] for p in eve):
        vals = defaultdict(list)
        for p in eve:
            if cells[p["cell_id"]]["label"] == label and p["psnr"] is not None:
                vals[(p["snr_b_db"], p["snr_e_db"])].append(p["psnr"])
        rows = []
        for b in sb:
            cells_txt = []
            for e in se:
                m = mean_ci(vals.get((b, e), []))[0]
                cells_txt.append(_fmt(m))
                csv_rows.append({"label": label, "snr_b_db": b, "snr_e_db": e, "eve_psnr": m})
            rows.append([f"{b:g}", *cells_txt])
        md_parts.append(f"**{label}** (rows: SNR_b, columns: SNR_e)\n\n"
                        + markdown(["SNR_b \\ SNR_e", *[f"{e:g}" for e in se]], rows))
    return "\n\n".join(md_parts), csv_rows


def store_timing(store_path) -> dict:
    with Store(store_path, create=False) as s:
        (run_s, write_s, n), = s.db.execute("SELECT SUM(run_seconds), SUM(write_seconds), COUNT(*) FROM cells")
    return {"run_s": run_s or 0.0, "write_s": write_s or 0.0, "cells": n}


def _export(store: Store, tables, out_dir: Path | None, store_path: Path) -> list[Path]:
    """Raw store tables as CSV (``--export``)."""
    written = []
    if not tables:
        return written
    out = out_dir or store_path.with_name(store_path.stem + "-report")
    out.mkdir(parents=True, exist_ok=True)
    for t in tables:
        if t not in EXPORTABLE:
            raise UserError(f"unknown table {t!r} to export: choose from {', '.join(EXPORTABLE)}")
        rows = store.query(f"SELECT * FROM {t}")
        path = out / f"store_{t}.csv"
        if rows:
            write_csv(path, rows)
        else:
            cols = ("cell_id",) + COLUMNS.get(t, ())[1:] if t in COLUMNS else ()
            path.write_text(",".join(cols) + "\n")
        written.append(path)
    return written


def baseline_thresholds(store_path) -> tuple[dict, int | None]:
    """Per (mod, rate) of the store's symbol-level baseline cells, the cliff threshold (dB) each cell measured,
    averaged over repeats (None where no repeat has one), and the cells' k (channel uses per image)."""
    with Store(store_path, create=False) as s:
        cells = s.query("SELECT settings, summary FROM cells WHERE system = 'baseline' AND in_plan = 1")
    got, k = defaultdict(list), None
    for c in cells:
        summary = json.loads(c["summary"])
        run = summary.get("run")
        if not run:
            continue
        k = k or summary.get("k_symbols")
        got[(run["mod"], run["rate"])].append(run.get("threshold_snr_db"))
    return {key: (sum(v for v in vals if v is not None) / len([v for v in vals if v is not None])
                  if any(v is not None for v in vals) else None) for key, vals in got.items()}, k
