"""Cipher throughput on one core: encrypt/decrypt symbols/s for k = 512 and k = 16384, per mode.

    python benchmarks/bench_cipher.py [--params lp-192] [--seconds 0.5] [--json PATH]

"single" encrypts/decrypts one frame of k symbols per call (what the radio link does per frame);
"batch" passes B frames at once (B·k ≈ 64 Ki symbols; what training does). Decryption takes a soft
(real-valued) ciphertext; in lwe mode it includes Bob deriving d from the nonce. Key generation
(S, U, A, P) is timed separately. BLAS and OpenMP are pinned to one thread before numpy loads.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from crypto.cipher import MODES, CipherKeys  # noqa: E402
from crypto.zp import centroids  # noqa: E402


def _rate(fn, symbols_per_call: int, seconds: float) -> float:
    fn()  # warm-up (caches, first-touch)
    calls, t0 = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        dt = time.perf_counter() - t0
        if dt >= seconds and calls >= 3:
            return calls * symbols_per_call / dt


def bench(params: str, ks, seconds: float) -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    for k in ks:
        batch = max(1, 65536 // k)
        for mode in MODES:
            t0 = time.perf_counter()
            keys = CipherKeys.generate(params=params, mode=mode, k=k, seed=b"bench-cipher-key" * 2)
            enc, dec = keys.encryptor(), keys.decryptor()
            keys.key_id  # builds A, S, U and P
            keygen_s = time.perf_counter() - t0
            counter = iter(range(1 << 62))
            z1 = centroids()[rng.integers(0, 16, k)]
            zb = centroids()[rng.integers(0, 16, (batch, k))]

            ct1 = enc.encrypt(z1, 0)
            c1 = ct1.c + rng.uniform(-0.5, 0.5, k)
            ctb = enc.encrypt_batch(zb, np.arange(1, batch + 1))
            cb = ctb.c + rng.uniform(-0.5, 0.5, ctb.c.shape)
            row = {"params": params, "k": k, "mode": mode, "batch_frames": batch, "keygen_s": keygen_s,
                   "encrypt_single": _rate(lambda: enc.encrypt(z1, next(counter) + 10 ** 9), k, seconds),
                   "encrypt_batch": _rate(lambda: enc.encrypt_batch(
                       zb, np.arange(batch) + next(counter) * batch + 10 ** 12), batch * k, seconds),
                   "decrypt_single": _rate(lambda: dec.decrypt(c1, 0, d=ct1.d), k, seconds),
                   "decrypt_batch": _rate(lambda: dec.decrypt_batch(cb, np.arange(1, batch + 1), d=ctb.d),
                                          batch * k, seconds)}
            rows.append(row)
            print(f"{params:<7} {k:>6} {mode:<7} {row['keygen_s'] * 1e3:>9.1f} "
                  + " ".join(f"{row[c] / 1e6:>10.2f}" for c in ("encrypt_single", "encrypt_batch",
                                                                 "decrypt_single", "decrypt_batch")), flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="lp-192", choices=["lp-192", "lp-256"])
    ap.add_argument("--k", type=int, nargs="+", default=[512, 16384], help="frame sizes (payload symbols per frame)")
    ap.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    print(f"cipher throughput, one core (BLAS threads pinned to 1), numpy {np.__version__}; Msymbols/s")
    print(f"{'params':<7} {'k':>6} {'mode':<7} {'keygen ms':>9} {'enc 1fr':>10} {'enc batch':>10} "
          f"{'dec 1fr':>10} {'dec batch':>10}")
    rows = bench(args.params, args.k, args.seconds)
    if args.json:
        Path(args.json).write_text(json.dumps({"unit": "symbols/s", "threads": 1, "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
