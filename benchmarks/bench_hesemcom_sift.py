"""SIFT on Paillier ciphertexts (issue 19): wall and CPU time of a whole run and of its primitives.

    python benchmarks/bench_hesemcom_sift.py [--size 128] [--workers 2] [--repeat 1] [--json PATH]

One run = the key holder encrypts scikit-image's camera (resized to SIZE×SIZE), the server builds octaves −1 and
0's DoG homomorphically, the key holder decrypts (``hesemcom.sift.run``; key generation timed apart). Printed per
stage: wall seconds and CPU seconds (this process + its worker processes), the counts of encryptions and
decryptions, the load average and whether other ``jscec train`` processes share the machine. The primitives
(2048-bit keys, one core): phe's encryption, the key holder's CRT encryption, decryption, a multiplication mod n².
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hesemcom import sift  # noqa: E402


def _per_call(fn, calls: int) -> float:
    t0 = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - t0) / calls


def primitives(ps) -> dict:
    c = ps.encrypt_int(12345)
    d = c * c % ps.n2
    return {"phe_encrypt_ms": 1e3 * _per_call(lambda: ps.pk.raw_encrypt(12345), 20),
            "crt_encrypt_ms": 1e3 * _per_call(lambda: ps.encrypt_int(12345), 50),
            "decrypt_ms": 1e3 * _per_call(lambda: ps.decrypt_int(c), 50),
            "mulmod_us": 1e6 * _per_call(lambda: c * d % ps.n2, 5000)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--key-bits", type=int, default=2048)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    others = subprocess.run(["pgrep", "-fc", "jscec train"], capture_output=True, text=True).stdout.strip() or "0"
    img = sift.load_image(None, a.size)
    runs = []
    for k in range(a.repeat):
        r = sift.run(img, a.key_bits, workers=a.workers)
        cpu = r["cpu_s"]
        print(f"run {k + 1}: {a.size}x{a.size}, {a.workers} worker(s): wall {r['total_s']:.1f} s (encrypt "
              f"{r['encrypt_s']:.1f}, homomorphic {r['homomorphic_s']:.1f}, decrypt {r['decrypt_s']:.1f}), CPU "
              f"{cpu['total']:.1f} s ({cpu['encrypt']:.1f} + {cpu['homomorphic']:.1f} + {cpu['decrypt']:.1f}); key "
              f"generation {r['keygen_s']:.2f} s; {r['encryptions']} encryptions, {r['decryptions']} decryptions; "
              f"DoG equal: {r['dog_equal_to_plaintext']}; load average {r['load_average'][0]:.2f}")
        runs.append({k: r[k] for k in ("total_s", "encrypt_s", "homomorphic_s", "decrypt_s", "cpu_s", "keygen_s",
                                       "encryptions", "decryptions", "tiles", "load_average",
                                       "dog_equal_to_plaintext", "keypoints_encrypted",
                                       "coverage_of_opencv_within_1.5px")})
    prim = primitives(sift.PaillierSift(a.key_bits))
    print("primitives (one core): " + ", ".join(f"{k} {v:.3g}" for k, v in prim.items()))
    print(f"other 'jscec train' processes during the run: {others}; cores: {os.cpu_count()}")
    if a.json:
        Path(a.json).write_text(json.dumps({"runs": runs, "primitives": prim, "other_trainings": int(others),
                                            "cores": os.cpu_count()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
