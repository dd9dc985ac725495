"""What the campaign store costs: a cell's write time (one transaction, commit included) against its run time.

Runs one cell of each kind that needs no radio — DeepJSCEC's symbol-level evaluation (``jscec eval``), the
baseline's symbol-level simulation over every SNR (``jscec baseline --link awgn``) and, with ``--framed``,
DeepJSCEC over the framed numpy AWGN link (Bob's and Eve's chains, per-frame rows) — then writes each
result into a fresh store ``--writes`` times (a new cell id each time) and prints run time, write time
(median and max) and their ratio. The issue's target: a write costs < 2 % of the cell's run time.

    python -m benchmarks.bench_campaign [--images 200] [--framed] [--writes 20]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def _cell(system, link, settings, seed=0):
    from link.campaign.plan import Cell

    return Cell(system, f"bench {system} {link}", link, settings, 0, seed, 1.0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--model", default="cifar10-lwe")
    p.add_argument("--writes", type=int, default=20, help="writes of each result into the store")
    p.add_argument("--framed", action="store_true", help="also a DeepJSCEC cell over the framed awgn link")
    p.add_argument("--framed-images", type=int, default=50)
    args = p.parse_args(argv)

    from link.campaign.cells import run_cell
    from link.campaign.store import Store
    from models.checkpoint import resolve_model

    model = str(resolve_model(args.model).resolve())
    common = {"images": args.images, "data": "default", "link": {"kind": "symbols"}}
    cells = [
        ("DeepJSCEC symbols, 1 SNR", _cell("deepjscec", "symbols", {**common, "model": args.model, "model_path": model,
                                                                    "mode": None, "point": {"snr_db": 10.0}})),
        ("baseline symbols, 26 SNRs", _cell("baseline", "symbols", {
            **common, "codec": "heif", "mod": "16qam", "rate": "1/2", "rho": "1/6", "rho_value": 1 / 6,
            "ldpc_iters": 20, "decoder": "nms", "snrs_db": [float(s) for s in range(26)], "point": {}})),
    ]
    if args.framed:
        cells.append(("DeepJSCEC awgn link (framed)", _cell("deepjscec", "awgn", {
            "images": args.framed_images, "data": "default", "link": {"kind": "awgn"}, "model": args.model,
            "model_path": model, "mode": "lwe", "point": {"snr_db": 10.0, "snr_e_db": 10.0}, "timeout_s": 600,
            "equalizer_taps": 0, "record": False})))
    with tempfile.TemporaryDirectory() as tmp:
        store_path = Path(tmp) / "bench.sqlite"
        print(f"store {store_path} (WAL, synchronous=NORMAL); {args.writes} writes of each result")
        print(f"{'cell':32} {'rows':>7} {'run s':>8} {'write ms (median)':>18} {'max ms':>8} {'write/run':>10}")
        with Store(store_path) as store:
            # Warm the caches (dataset, model) so that the run time is the cell's own, as in a campaign.
            run_cell(cells[0][1].as_dict(), str(store_path))
            for name, cell in cells:
                t0 = time.perf_counter()
                result = run_cell(cell.as_dict(), str(store_path))
                run_s = time.perf_counter() - t0
                rows = sum(len(result.get(t) or []) for t in ("points", "images", "frames", "drops", "devices"))
                times = []
                for i in range(args.writes):
                    d = cell.as_dict()
                    d["cell_id"] = f"{d['cell_id'][:10]}{i:06d}"
                    times.append(store.write_cell(d, result, None))
                med = statistics.median(times)
                print(f"{name:32} {rows:>7} {run_s:>8.2f} {med * 1e3:>18.2f} {max(times) * 1e3:>8.2f} "
                      f"{100 * med / run_s:>9.3f}%")
        print(f"store size after {args.writes * len(cells)} cells: {store_path.stat().st_size / 1e6:.2f} MB "
              f"(+ WAL {Path(str(store_path) + '-wal').stat().st_size / 1e6 if Path(str(store_path) + '-wal').exists() else 0:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
