"""What frame authentication (crypto.frame_auth, issue 20 item 4) costs: air time, CPU, and Bob's PSNR.

    python benchmarks/bench_frame_auth.py [--frames 2000] [--model cifar10-mask] [--images 1000] [--snr 10]
                                          [--json PATH]

* **Air time**: symbols of a version-2 frame (tag block: 168 BPSK symbols and their pilots) against a
  version-1 frame, for the payloads the links send (512: one CIFAR-10 cipher frame; 2048: four). The check
  symbols replace payload symbols and cost no air time.
* **CPU** per frame on one core (median of ``--frames`` frames, µs): Alice — the tag (HMAC-SHA256 over the
  header's 23 bytes), the check symbols (positions and values from AES-CTR) put into the payload, the tag
  block's symbols (Golay, whitening); Bob — the tag block decoded (soft Golay, part of the synchroniser's
  work), the tag verified, the replay window, the check symbols and their test. Beside them, for scale,
  Bob's soft demap + decryption of the same frame.
* **Bob's PSNR** (``--model``): the check symbols' plaintext is lost (erased at Bob). Test images through
  Bob's model and the cipher over AWGN at ``--snr`` (the ``jscec eval`` channel, one 512-symbol cipher frame
  per CIFAR-10 image), decoded once with all symbols and once with each frame's 16 check positions erased,
  on the same noise: the mean PSNR difference with a 95 % interval (paired, over images).

BLAS and OpenMP are pinned to one thread before numpy loads.
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
from crypto.cipher import CipherKeys  # noqa: E402
from crypto.frame_auth import ReplayWindow, n_checks, payload_check  # noqa: E402
from crypto.zp import P  # noqa: E402
from radio.frame import DEFAULT_FORMAT as F, FrameHeader, build_frame  # noqa: E402
from radio.zp_qam import modulate, soft_demap  # noqa: E402


def air_time(payloads=(512, 2048)) -> list[dict]:
    rows = []
    for n in payloads:
        plain, tagged = F.frame_len(n), F.frame_len(n, 0, True)
        rows.append({"payload": n, "v1_symbols": plain, "v2_symbols": tagged, "extra_symbols": tagged - plain,
                     "extra_percent": 100 * (tagged - plain) / plain, "check_symbols": n_checks(n),
                     "check_percent_of_payload": 100 * n_checks(n) / n})
    return rows


def _median_us(fn, n: int) -> float:
    fn(0)
    times = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        times[i] = time.perf_counter() - t0
    return float(np.median(times) * 1e6)


def cpu(frames: int, payload: int = 2048, snr_db: float = 10.0) -> dict:
    keys = CipherKeys.generate("lp-192", "mask", 512, seed=b"bench_frame_auth" * 2)
    auth, dec = keys.frame_auth(), keys.decryptor()
    rng = np.random.default_rng(0)
    nv = 10 ** (-snr_db / 10)
    payload_sym = modulate(rng.integers(0, P, payload))
    header = FrameHeader(counter=0, mode="mask", key_id=keys.key_id, payload_len=payload, version=2)
    info = header.info_bytes()
    tag = auth.tag(info)
    block = F.tag_to_symbols(tag)
    noisy_block = block.real + np.sqrt(nv / 2) * rng.standard_normal(block.size)
    received = payload_sym + (np.sqrt(nv / 2) * (rng.standard_normal(payload) + 1j * rng.standard_normal(payload)))
    window = ReplayWindow()
    n_sub = payload // keys.k

    def alice_tag(i):
        auth.tag(FrameHeader(counter=i, mode="mask", key_id=keys.key_id, payload_len=payload, version=2).info_bytes())

    def alice_checks(i):
        pos, val = auth.checks(i, payload)
        p = payload_sym.copy()
        p[pos] = modulate(val)

    def alice_block(i):
        F.tag_to_symbols(tag)

    def bob_block(i):
        F.decode_tag(noisy_block)

    def bob_verify(i):
        auth.verify(info, None, tag)

    def bob_window(i):
        if window.check(keys.key_id, n_sub * i, n_sub):
            window.accept(keys.key_id, n_sub * i, n_sub)

    def bob_checks(i):
        pos, val = auth.checks(i, payload)
        payload_check(received[pos], modulate(val), nv)

    def bob_decrypt(i):
        c_hat = soft_demap(received, nv).reshape(n_sub, keys.k)
        dec.decrypt_batch(c_hat, np.arange(n_sub) + n_sub * i)

    parts = {"alice": {"tag": alice_tag, "check symbols": alice_checks, "tag block symbols": alice_block},
             "bob": {"tag block decode": bob_block, "tag verify": bob_verify, "replay window": bob_window,
                     "check symbols": bob_checks}}
    out = {"payload": payload, "frames": frames}
    for side, fns in parts.items():
        us = {name: _median_us(fn, frames) for name, fn in fns.items()}
        out[side] = {"us": us, "total_us": sum(us.values())}
    out["bob_demap_decrypt_us"] = _median_us(bob_decrypt, max(20, frames // 20))
    # The whole frame built and checked as the link does it (one more way to see the same cost).
    frame = build_frame(header, payload_sym, auth=auth)
    out["frame_symbols"] = int(frame.size)
    return out


def psnr_cost(model_name: str, images: int, snr_db: float, seed: int = 0) -> dict:
    import torch

    from crypto.frame_auth import FrameAuth
    from models.checkpoint import resolve_model
    from models.datasets import load_dataset, split_indices
    from models.evaluate import load_bob
    from models.images import to_tensor
    from models.metrics import psnr
    from models.secure_channel import SecureChannel

    torch.set_num_threads(1)
    path = resolve_model(model_name)
    model = load_bob(path)
    cfg = model.config
    ds = load_dataset(None, progress=False)
    test = split_indices(len(ds.images), seed=model.card.get("split_seed", 0))["test"][:images]
    link = SecureChannel(cfg.cipher_mode, cfg.cipher_params, sigma_l=cfg.sigma_l, seed=seed)
    auth = FrameAuth(b"\x42" * 32, "bench")     # positions only: any key draws them alike
    diffs, full_all, erased_all = [], [], []
    with torch.no_grad():
        for s in range(0, len(test), 100):
            x = to_tensor(ds.images[test[s:s + 100]], "cpu")
            _, plaintext, shape = model.encode(x)
            first = link.next_nonce
            out = link.transmit(plaintext.numpy(), snr_db)
            z = torch.from_numpy(out["z_prime"]).float()
            k = z.shape[1]
            n_frames = -(-k // link.frame_symbols)
            erased = torch.zeros(z.shape, dtype=torch.bool)
            for b in range(z.shape[0]):
                for f in range(n_frames):          # one radio frame per cipher frame (subframes 1)
                    pos = auth.checks(first + b * n_frames + f, link.frame_symbols)[0] + f * link.frame_symbols
                    erased[b, pos[pos < k]] = True
            full = psnr(model.decode(z, shape, out_size=x.shape[-2:]), x)
            cut = psnr(model.decode(z.masked_fill(erased, 0), shape, out_size=x.shape[-2:], erased=erased), x)
            full_all.append(full)
            erased_all.append(cut)
            diffs.append(cut - full)
    d = torch.cat(diffs).double().numpy()
    half = 1.96 * d.std(ddof=1) / np.sqrt(d.size)
    return {"model": path.stem, "images": int(d.size), "snr_db": snr_db,
            "psnr_all_symbols": float(torch.cat(full_all).mean()), "psnr_checks_erased": float(torch.cat(erased_all).mean()),
            "delta_db": float(d.mean()), "delta_ci95": [float(d.mean() - half), float(d.mean() + half)],
            "erased_fraction": n_checks(link.frame_symbols) / link.frame_symbols}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2000, help="frames timed per step")
    ap.add_argument("--model", default=None, help="also measure Bob's PSNR cost with this model (e.g. cifar10-mask)")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--snr", type=float, default=10.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    doc = {"air_time": air_time(), "cpu": [cpu(args.frames, n, args.snr) for n in (512, 2048)]}
    print("air time (symbols per frame, version 1 → version 2):")
    for r in doc["air_time"]:
        print(f"  payload {r['payload']:5d}: {r['v1_symbols']} → {r['v2_symbols']} (+{r['extra_symbols']}, "
              f"+{r['extra_percent']:.1f} %); {r['check_symbols']} check symbols replace "
              f"{r['check_percent_of_payload']:.1f} % of the payload")
    for c in doc["cpu"]:
        print(f"CPU per frame, payload {c['payload']} (median of {c['frames']}, one core):")
        for side in ("alice", "bob"):
            parts = ", ".join(f"{k} {v:.1f}" for k, v in c[side]["us"].items())
            print(f"  {side:5s}: {c[side]['total_us']:.1f} us ({parts})")
        print(f"  (Bob's soft demap + decryption of the same frame: {c['bob_demap_decrypt_us']:.0f} us)")
    if args.model:
        doc["psnr"] = psnr_cost(args.model, args.images, args.snr)
        p = doc["psnr"]
        print(f"Bob's PSNR, {p['model']}, {p['images']} test images at {p['snr_db']:g} dB: {p['psnr_all_symbols']:.2f} dB "
              f"with every symbol, {p['psnr_checks_erased']:.2f} dB with the check symbols erased "
              f"({100 * p['erased_fraction']:.1f} % of each frame): {p['delta_db']:+.3f} dB "
              f"(95 % CI {p['delta_ci95'][0]:+.3f} to {p['delta_ci95'][1]:+.3f})")
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
