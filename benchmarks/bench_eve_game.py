"""How much Eve's per-frame score (link/apps/eve_game.py, issue 20 item 5) moves by chance alone.

    python benchmarks/bench_eve_game.py [--mode mask] [--images 500] [--repeats 16] [--snr 10]

The in-loop game pairs each image with the next one (``jscec loopback --data``: CIFAR-10 test images, one
frame each) and scores, per statistic of the IND-CPA harness, how often Eve names the image that was sent.
Here the same images go through the cipher and the numpy channel (``models.secure_channel``: 4096-QAM,
AWGN at ``--snr``, soft demap) ``--repeats`` times under fresh keys, and each statistic's success rate is
computed as in the loop — once on Eve's real view, and once on the view of an unrelated frame (no
information about the pair at all). Under a secure cipher both give a mean near 0.5 and a spread near the
binomial 0.5/√n; a leak would show as a mean away from 0.5 on the real view only.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["lwe", "mask"], default="mask")
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=16)
    ap.add_argument("--snr", type=float, default=10.0)
    args = ap.parse_args(argv)

    import torch

    from crypto.ind_cpa import STATS, guess_pair
    from models.checkpoint import resolve_model
    from models.datasets import load_dataset, split_indices
    from models.evaluate import load_bob
    from models.images import to_tensor
    from models.secure_channel import SecureChannel

    torch.set_num_threads(1)
    model = load_bob(resolve_model(f"cifar10-{args.mode}"))
    ds = load_dataset(None, progress=False)
    test = split_indices(len(ds.images), seed=model.card.get("split_seed", 0))["test"][:args.images]
    with torch.no_grad():
        z = np.concatenate([model.encode(to_tensor(ds.images[test[i:i + 100]], "cpu"))[1].numpy()
                            for i in range(0, len(test), 100)]).astype(np.int64)
    n = len(z)
    real, unrelated = {s: [] for s in STATS}, {s: [] for s in STATS}
    for r in range(args.repeats):
        view = SecureChannel(args.mode, model.config.cipher_params, sigma_l=model.config.sigma_l,
                             seed=100 + r).transmit(z, args.snr)["c_hat"]
        other = np.random.default_rng(r).permutation(n)
        hits, hits_u = {s: 0 for s in STATS}, {s: 0 for s in STATS}
        for i in range(n):
            j = (i + 1) % n                       # the loop's pairing: the next image of the same size
            g, gu = guess_pair(view[i], z[i], z[j], seed=i), guess_pair(view[other[i]], z[i], z[j], seed=i)
            for s in STATS:
                hits[s] += g[s] == 0
                hits_u[s] += gu[s] == 0
        for s in STATS:
            real[s].append(hits[s] / n)
            unrelated[s].append(hits_u[s] / n)
    print(f"cifar10-{args.mode}, {n} images, {args.repeats} repeats at {args.snr:g} dB; binomial spread "
          f"{0.5 / np.sqrt(n):.4f}")
    for s in STATS:
        print(f"  {s:15s} real view: mean {np.mean(real[s]):.4f}, sd {np.std(real[s], ddof=1):.4f};  unrelated view: "
              f"mean {np.mean(unrelated[s]):.4f}, sd {np.std(unrelated[s], ddof=1):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
