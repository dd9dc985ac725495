"""What an experiment leaves behind: a printed table, the image panel, the constellation plot, JSON."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from link.plots import constellation_plot, image_panel

#: Images shown in the panel (the JSON keeps every one).
PANEL_ROWS = 8


def _fmt(v, spec: str) -> str:
    if v is None:
        width = spec.split(".")[0]
        return "—".rjust(int(width) if width.isdigit() else 0)
    return format(v, spec)


def table(report: dict) -> str:
    """A small fixed-width table of Bob's and Eve's results, and the line of Eve's distinguisher when the run
    played the game (``eve_distinguisher``, :mod:`link.apps.eve_game`)."""
    lines = [f"{'':6}{'SNR dB':>8}{'MER dB':>8}{'PSNR dB':>9}{'SSIM':>7}{'sent':>6}{'ok':>6}  dropped"]
    for who, snr in (("bob", report["snr_b_db"]), ("eve", report["snr_e_db"])):
        r = report[who]
        drops = ", ".join(f"{k}: {v}" for k, v in r.get("frames_dropped", {}).items()) or "0"
        lines.append(f"{who.capitalize():6}{_fmt(snr, '8.1f')}{_fmt(r.get('mer_db'), '8.2f')}{_fmt(r.get('psnr'), '9.2f')}"
                     f"{_fmt(r.get('ssim'), '7.3f')}{r.get('frames_sent') or 0:6d}{r.get('frames_ok', 0):6d}  {drops}")
    if report.get("eve_distinguisher"):
        from link.apps.eve_game import summary_line

        line = summary_line(report["eve_distinguisher"])
        if line:
            lines.append(line)
    return "\n".join(lines)


def write_report(report: dict, originals: list[np.ndarray] | None, results: dict, out_dir: Path) -> None:
    """Panel (original | Bob | Eve), constellations and ``result.json`` into ``out_dir``.

    ``results[who]["images"]`` is any mapping index → image (the panel reads the first PANEL_ROWS only).
    ``originals`` None (a replay without reference images): the panel shows the first images Bob or Eve
    decoded, with no original beside them.
    """
    out_dir = Path(out_dir)
    if originals is None:
        seen = sorted({row["index"] for r in results.values() for row in r["summary"]["images"]})
        shown = dict.fromkeys(seen[:PANEL_ROWS])
    else:
        shown = dict(enumerate(originals[:PANEL_ROWS]))
    per = {who: {row["index"]: row for row in r["summary"]["images"] if row["index"] in shown}
           for who, r in results.items()}
    rows = []
    for i, original in shown.items():
        row = {"original": original}
        for who in ("bob", "eve"):
            if who in results:
                row[who] = results[who]["images"].get(i)
                stats = per[who].get(i, {})
                row[f"{who}_psnr"], row[f"{who}_ssim"] = stats.get("psnr"), stats.get("ssim")
        rows.append(row)
    title = (f"{report['model']} ({report['mode']}) — SNR_b {_fmt(report['snr_b_db'], '.3g')} dB, "
             f"SNR_e {_fmt(report['snr_e_db'], '.3g')} dB")
    image_panel(rows, out_dir / "panel.png", title=title)
    constellation_plot({f"{who.capitalize()} (MER {_fmt(report[who].get('mer_db'), '.1f')} dB)":
                        results[who]["constellation"] for who in results}, out_dir / "constellation.png",
                       title="synchronised 4096-QAM payload symbols")
    report["files"] = {"panel": str(out_dir / "panel.png"), "constellation": str(out_dir / "constellation.png"),
                       **{f"{who}_images": str(out_dir / f"{who}-images.npz") for who in results
                          if (out_dir / f"{who}-images.npz").is_file()}}
    with open(out_dir / "result.json", "w") as f:     # json.dumps' text, written as it is made
        json.dump(report, f, indent=1)
        f.write("\n")
