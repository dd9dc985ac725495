"""Benchmark: baseline.ldpc's batched numpy decoder against pyldpc on the same 802.11ad H.

Usage: ``python -m benchmarks.bench_ldpc [--rate 1/2] [--codewords 200] [--iters 10] [--ebn0 1.0] [--repeat 5]``

Both decoders get the same channel LLRs and run the same number of iterations (no early stop on
either side: the SNR is chosen below the waterfall, where pyldpc's all-or-nothing stopping rule never
fires, and ours is switched off), so the figure is decoded information bits per second per iteration
budget. A second line runs both with early stopping at an SNR on the waterfall. Every decoder is
timed ``--repeat`` times on the same batch and scored by its fastest run (as ``timeit`` does), which
keeps other load on the machine from deciding the ratio.

pyldpc note. ``pyldpc.decode`` (0.7.9) fails on irregular codes such as 802.11ad's (it tests
``np.unique(H.sum(0)) * np.unique(H.sum(1)) == 1`` on arrays). :func:`pyldpc_decode` therefore drives
pyldpc's own compiled log-BP iteration (``pyldpc.decoder._logbp_numba``) exactly as ``pyldpc.decode``
does, with the channel LLRs in place of its ``2y/σ²``; its hard decision (L ≤ 0 → 1) and LLR sign
convention match ours. It decodes a batch as one block and stops only when *every* codeword checks.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baseline.ldpc import ieee80211ad  # noqa: E402


def pyldpc_decode(h: np.ndarray, llr: np.ndarray, iterations: int, early_stop: bool = True) -> np.ndarray:
    """Hard codewords (B, n) from pyldpc's log-BP iteration on channel LLRs (B, n) (L = log P0/P1)."""
    from pyldpc import decoder, utils

    h = np.asarray(h, dtype=np.int64)
    m, n = h.shape
    bits_hist, bits_values, nodes_hist, nodes_values = utils._bitsandnodes(h)
    lc = np.ascontiguousarray(np.asarray(llr, dtype=np.float64).reshape(-1, n).T)   # (n, B)
    lq = np.zeros((m, n, lc.shape[1]))
    lr = np.zeros((m, n, lc.shape[1]))
    x = (lc <= 0).astype(np.int64)
    for it in range(iterations):
        lq, lr, post = decoder._logbp_numba(bits_hist, bits_values, nodes_hist, nodes_values, lc, lq, lr, it)
        x = (post <= 0).astype(np.int64)
        if early_stop and utils.incode(h, x):
            break
    return x.T.astype(np.uint8)


def _llrs(code, ebn0_db: float, count: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Random codewords and their BPSK/AWGN channel LLRs at Eb/N0 (dB)."""
    x = code.encode(rng.integers(0, 2, (count, code.k)))
    sigma2 = 1.0 / (2.0 * code.rate * 10 ** (ebn0_db / 10))     # per real dimension, Es = 1
    y = (1.0 - 2.0 * x) + np.sqrt(sigma2) * rng.standard_normal(x.shape)
    return x, 2.0 * y / sigma2


def _best_time(fn, repeat: int):
    """(fastest wall time of ``repeat`` calls, the last call's result)."""
    best = float("inf")
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def bench(rate: str, codewords: int, iters: int, ebn0: float, early_stop: bool, seed: int = 0,
          repeat: int = 5) -> dict:
    code = ieee80211ad(rate)
    rng = np.random.default_rng(seed)
    x, llr = _llrs(code, ebn0, codewords, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pyldpc_decode(code.h, llr[:2], 1)                            # JIT warm-up, not timed
        t_py, xp = _best_time(lambda: pyldpc_decode(code.h, llr, iters, early_stop=early_stop), repeat)
    out = {}
    for method in ("bp", "nms"):
        code.decode(llr[:2], max_iter=1, method=method)
        out[method] = _best_time(lambda: code.decode(llr, max_iter=iters, method=method, early_stop=early_stop),
                                 repeat)
    info_bits = codewords * code.k
    return {
        "rate": rate, "codewords": codewords, "iters": iters, "ebn0_db": ebn0, "early_stop": early_stop,
        "pyldpc_s": t_py, "pyldpc_bps": info_bits / t_py, "pyldpc_fer": float((xp != x).any(1).mean()),
        **{f"{m}_s": t for m, (t, _) in out.items()},
        **{f"{m}_bps": info_bits / t for m, (t, _) in out.items()},
        **{f"{m}_fer": float((r.bits != x).any(1).mean()) for m, (_, r) in out.items()},
        "bp_vs_pyldpc_same_frames": float((out["bp"][1].bits == xp).all(1).mean()),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", nargs="+", default=["1/2", "3/4"])
    ap.add_argument("--codewords", type=int, default=200)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--ebn0", type=float, default=0.0, help="Eb/N0 (dB) for the equal-iteration run")
    ap.add_argument("--ebn0-waterfall", type=float, default=2.5, help="Eb/N0 (dB) for the early-stopping run")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per decoder; the fastest counts")
    args = ap.parse_args(argv)
    print(f"802.11ad LDPC n=672, {args.codewords} codewords, BPSK/AWGN LLRs; decoded information bits per second "
          f"(fastest of {args.repeat} runs)")
    print(f"{'rate':>5} {'Eb/N0':>6} {'iters':>5} {'stop':>5} | {'pyldpc':>10} {'ours bp':>10} {'ours nms':>10} | "
          f"{'bp x':>6} {'nms x':>6} | FER pyldpc/bp/nms   same frames")
    for rate in args.rate:
        for ebn0, stop in ((args.ebn0, False), (args.ebn0_waterfall, True)):
            r = bench(rate, args.codewords, args.iters, ebn0, stop, repeat=args.repeat)
            print(f"{rate:>5} {ebn0:>6.2f} {args.iters:>5} {str(stop):>5} | {r['pyldpc_bps'] / 1e3:>7.1f} kb/s "
                  f"{r['bp_bps'] / 1e3:>7.1f} kb/s {r['nms_bps'] / 1e3:>7.1f} kb/s | "
                  f"{r['bp_bps'] / r['pyldpc_bps']:>5.1f}x {r['nms_bps'] / r['pyldpc_bps']:>5.1f}x | "
                  f"{r['pyldpc_fer']:.3f}/{r['bp_fer']:.3f}/{r['nms_fer']:.3f}   {r['bp_vs_pyldpc_same_frames']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
