"""Benchmark: 4096-QAM soft demapper (vectorised vs the k × p oracle) and Gray-QAM LLRs, one core.

    python benchmarks/bench_demap.py            # defaults: about a minute
    python benchmarks/bench_demap.py --help

Pins the process to one CPU and sets the BLAS/OpenMP thread counts to 1 *before* numpy is imported.
Each figure is the best of ``--repeat`` runs, as symbols per second of wall-clock time and of
process CPU time (the latter is the fairer figure on a machine shared with other jobs). It also
checks the vectorised demapper against the oracle on the oracle's symbols.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from baseline.gray_qam import ORDERS, GrayQam  # noqa: E402
from crypto.zp import P, centered  # noqa: E402
from radio.zp_qam import modulate, soft_demap, soft_demap_oracle  # noqa: E402


def _pin(cpu: int | None) -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    allowed = sorted(os.sched_getaffinity(0))
    cpu = allowed[0] if cpu is None else cpu
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def _best(fn, repeat: int) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds) over ``repeat`` runs, after one warm-up run."""
    fn()
    wall = cpu = float("inf")
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def _noisy(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    nv = 10 ** (-snr_db / 10)
    noise = (rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape)) * np.sqrt(nv / 2)
    return (x + noise).astype(np.complex64), nv


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--symbols", type=int, default=1 << 20, help="symbols per vectorised-demapper run")
    ap.add_argument("--oracle-symbols", type=int, default=2000, help="symbols per oracle run")
    ap.add_argument("--snr", type=float, nargs="+", default=[0, 10, 20, 30, 60], help="SNRs in dB")
    ap.add_argument("--sigma-l", type=float, default=1.0, help="σ_l of eq. 15")
    ap.add_argument("--llr-orders", type=int, nargs="+", default=list(ORDERS), choices=ORDERS,
                    help="Gray-QAM orders for the LLR benchmark")
    ap.add_argument("--llr-snr", type=float, nargs="+", default=[10, 30], help="SNRs in dB for the LLRs")
    ap.add_argument("--llr-symbols", type=int, default=1 << 16, help="symbols per LLR run")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (the best is reported)")
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the first allowed)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    pinning = "not pinned" if args.no_pin else _pin(args.cpu)
    rng = np.random.default_rng(args.seed)
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, {pinning}, "
          f"threads=1, best of {args.repeat}")
    results: dict = {"pinning": pinning, "numpy": np.__version__, "demapper": [], "llr": []}

    print(f"\n4096-QAM soft demapper (p = {P}, sigma_l = {args.sigma_l}); symbols/s")
    print(f"{'SNR dB':>7} {'vectorised (wall)':>18} {'(cpu)':>10} {'oracle (wall)':>14} {'(cpu)':>10} "
          f"{'speed-up':>9} {'max |diff| Z_p':>15}")
    c = rng.integers(0, P, args.symbols)
    x = modulate(c)
    for snr in args.snr:
        y, nv = _noisy(x, snr, rng)
        wall, cpu = _best(lambda: soft_demap(y, nv, args.sigma_l), args.repeat)
        yo = y[:args.oracle_symbols]
        owall, ocpu = _best(lambda: soft_demap_oracle(yo, nv, args.sigma_l), max(1, args.repeat - 1))
        fast, slow = soft_demap(yo, nv, args.sigma_l), soft_demap_oracle(yo, nv, args.sigma_l)
        diff = float(np.abs(centered(fast - slow)).max())
        row = {"snr_db": snr, "vectorised_sym_per_s_wall": y.size / wall, "vectorised_sym_per_s_cpu": y.size / cpu,
               "oracle_sym_per_s_wall": yo.size / owall, "oracle_sym_per_s_cpu": yo.size / ocpu,
               "max_abs_diff_zp": diff}
        results["demapper"].append(row)
        print(f"{snr:7.1f} {y.size / wall:18.3e} {y.size / cpu:10.3e} {yo.size / owall:14.3e} {yo.size / ocpu:10.3e} "
              f"{(y.size / cpu) / (yo.size / ocpu):8.0f}x {diff:15.2e}")

    print("\nGray-QAM bit LLRs; symbols/s (cpu) and bits/s (cpu)")
    print(f"{'order':>6} {'SNR dB':>7} {'exact sym/s':>12} {'exact bit/s':>12} {'maxlog sym/s':>13} {'maxlog bit/s':>13}")
    for order in args.llr_orders:
        q = GrayQam(order)
        xb = q.modulate(rng.integers(0, 2, args.llr_symbols * q.bits_per_symbol))
        for snr in args.llr_snr:
            y, nv = _noisy(xb, snr, rng)
            row = {"order": order, "snr_db": snr}
            for method in ("exact", "maxlog"):
                wall, cpu = _best(lambda: q.llr(y, nv, method=method), args.repeat)
                row[f"{method}_sym_per_s_wall"] = y.size / wall
                row[f"{method}_sym_per_s_cpu"] = y.size / cpu
            results["llr"].append(row)
            bps = q.bits_per_symbol
            print(f"{order:6d} {snr:7.1f} {row['exact_sym_per_s_cpu']:12.3e} {row['exact_sym_per_s_cpu'] * bps:12.3e} "
                  f"{row['maxlog_sym_per_s_cpu']:13.3e} {row['maxlog_sym_per_s_cpu'] * bps:13.3e}")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
