"""`jscec cipher-sim`: random plaintexts through cipher → 4096-QAM → AWGN → soft demap → decrypt."""
from __future__ import annotations

NAME = "cipher-sim"
HELP = "simulate the cipher and 4096-QAM over AWGN: plaintext noise and error rate against SNR"
DESCRIPTION = (
    "Draw random plaintexts (uniform over the 16 quantiser centroids), encrypt them frame by frame under fresh "
    "nonces, map the ciphertext onto 4096-QAM, add complex AWGN at each SNR, soft-demap (eqs. 14-15) and decrypt. "
    "Reports the plaintext noise (circular, in Z_p units), the nearest-centroid error rate and the LWE decryption "
    "noise alone. --seed drives this simulation's keys, plaintexts and channel noise: keys derived from it are for "
    "simulation only and are not secret.")

MODES = ("lwe", "lwe-pk", "mask")
PARAMS = ("lp-192", "lp-256")


def add_arguments(p):
    p.add_argument("--mode", nargs="+", choices=MODES, default=["lwe"], help="cipher mode(s)")
    p.add_argument("--params", nargs="+", choices=PARAMS, default=["lp-192"], help="LWE preset(s)")
    p.add_argument("--snr", type=float, nargs="+", default=[0.0, 10.0, 20.0, 30.0, 60.0],
                   help="channel SNR(s) in dB (P/sigma^2 per complex symbol); 'inf' skips the channel")
    p.add_argument("--symbols", type=int, default=16384, help="plaintext symbols per SNR")
    p.add_argument("--frame-symbols", type=int, default=512, help="payload symbols per cipher frame (the key's k)")
    p.add_argument("--sigma-l", type=float, default=1.0, help="soft-demapping sharpness (1 = posterior mean)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulation's keys, plaintexts and noise")
    p.add_argument("--json", default=None, metavar="PATH", help="write the results as JSON here")


NOTE = ("Plaintexts are uniform over the 16 centroids floor(i*p/16). plaintext_noise_std is the circular standard "
        "deviation of z' - z (Z_p units; centroid spacing p/16 = 255.8); plaintext_error_rate counts wrong "
        "nearest-centroid decisions (circular; 15/16 = uniform guessing); decryption_noise_std is the LWE term "
        "S^T e2 + U^T e1 + e3 alone (0 in mask mode); ciphertext_noise_std is the circular std of c_hat - c (channel "
        "and soft demapping alone); qam_symbol_error_rate is the uncoded hard-decision 4096-QAM symbol error rate. "
        "The seed drives this simulation's keys, plaintexts and channel noise only; such keys are not secret.")
NOTE_PK = ("lwe-pk: d (n2 values per frame) is taken as received error-free here; the radio link transmits it in a "
           "digitally protected block.")


def _sim_master_seed(seed: int) -> bytes:
    import hashlib
    return hashlib.sha256(f"jscec/cipher-sim/keys/{seed}".encode()).digest()


def simulate(modes, params_list, snrs, symbols: int, frame_symbols: int, sigma_l: float, seed: int,
             progress: bool = True) -> list[dict]:
    import math

    import numpy as np
    from tqdm import tqdm

    from crypto.cipher import PRESETS, CipherKeys, nearest_centroid
    from radio.channel import awgn, noise_variance
    from jscec.errors import UserError
    from crypto.zp import N_LEVELS, P, centroids, circular_std
    from radio.zp_qam import hard_demap, modulate, soft_demap

    if symbols < 1:
        raise UserError(f"--symbols must be at least 1, got {symbols}")
    if not 1 <= frame_symbols <= 1 << 16:
        raise UserError(f"--frame-symbols must lie in [1, 65536], got {frame_symbols}")
    if not sigma_l > 0:
        raise UserError(f"--sigma-l must be positive, got {sigma_l}")
    if any(math.isnan(s) or s == -math.inf for s in snrs):
        raise UserError("--snr values must be numbers in dB (or 'inf' for no channel)")

    n_frames = -(-symbols // frame_symbols)
    chunk = max(1, 16384 // frame_symbols)  # frames per step: bounded memory for any --symbols
    cen = centroids(P, N_LEVELS)
    results = []
    bar = tqdm(total=len(modes) * len(params_list) * len(snrs) * n_frames, unit="frame", desc="cipher-sim",
               delay=1.0, leave=False, disable=not progress)
    try:
        for mi, mode in enumerate(modes):
            for pi, pname in enumerate(params_list):
                pr = PRESETS[pname]
                keys = CipherKeys.generate(params=pname, mode=mode, k=frame_symbols, seed=_sim_master_seed(seed))
                enc, dec = keys.encryptor(), keys.decryptor()
                next_nonce = 0
                for si, snr in enumerate(snrs):
                    rng = np.random.default_rng([seed, mi, pi, si])
                    acc = {"pt": [], "dn": [], "ct": [], "err": 0, "ser": 0}
                    done = 0
                    for f0 in range(0, n_frames, chunk):
                        nf = min(chunk, n_frames - f0)
                        nonces = np.arange(next_nonce, next_nonce + nf)
                        next_nonce += nf
                        idx = rng.integers(0, N_LEVELS, (nf, frame_symbols))
                        z = cen[idx]
                        ct = enc.encrypt_batch(z, nonces)
                        if math.isinf(snr):
                            c_hat = ct.c.astype(np.float64)
                            hard = ct.c
                        else:
                            y = awgn(modulate(ct.c), snr, rng)
                            c_hat = soft_demap(y, noise_variance(snr), sigma_l=sigma_l)
                            hard = hard_demap(y)
                        z_prime = dec.decrypt_batch(c_hat, nonces, d=ct.d)  # lwe-pk: d received error-free
                        noise = keys.decryption_noise_batch(nonces)
                        keep = min(nf * frame_symbols, symbols - done)  # the last frame may be padding
                        flat = lambda a: np.asarray(a).reshape(-1)[:keep]  # noqa: E731
                        acc["pt"].append(flat(z_prime) - flat(z))
                        acc["dn"].append(flat(noise))
                        acc["ct"].append(flat(c_hat) - flat(ct.c))
                        acc["err"] += int(np.count_nonzero(nearest_centroid(flat(z_prime)) != flat(idx)))
                        acc["ser"] += int(np.count_nonzero(flat(hard) != flat(ct.c)))
                        done += keep
                        bar.update(nf)
                    row = {
                        "mode": mode, "params": pname, "snr_db": None if math.isinf(snr) else float(snr),
                        "channel": "none (c_hat = c)" if math.isinf(snr) else "AWGN",
                        "plaintext_noise_std": circular_std(np.concatenate(acc["pt"])),
                        "plaintext_error_rate": acc["err"] / symbols,
                        "decryption_noise_std": 0.0 if mode == "mask" else circular_std(np.concatenate(acc["dn"])),
                        "expected_decryption_noise_std": 0.0 if mode == "mask" else pr.decryption_noise_std(),
                        "ciphertext_noise_std": circular_std(np.concatenate(acc["ct"])),
                        "qam_symbol_error_rate": acc["ser"] / symbols,
                        "symbols": symbols, "frames": n_frames, "frame_symbols": frame_symbols,
                        "sigma_l": sigma_l, "noise_variance": 0.0 if math.isinf(snr) else noise_variance(snr),
                        "key_id": keys.key_id,
                        "d": {"lwe": "not sent (Bob derives it from the shared error seed)",
                              "lwe-pk": "sent; taken as received error-free here",
                              "mask": "none"}[mode],
                        "security_estimate": "symmetric (AES-256-CTR mask)" if mode == "mask"
                        else pr.security_estimate,
                    }
                    results.append(row)
    finally:
        bar.close()
    return results


def _table(results) -> str:
    head = (f"{'mode':<7} {'params':<7} {'SNR dB':>7} {'pt noise std':>12} {'pt err rate':>11} "
            f"{'dec noise std':>13} {'ct noise std':>12} {'QAM SER':>9}")
    lines = [head, "-" * len(head)]
    for r in results:
        snr = "inf" if r["snr_db"] is None else f"{r['snr_db']:g}"
        lines.append(f"{r['mode']:<7} {r['params']:<7} {snr:>7} {r['plaintext_noise_std']:>12.2f} "
                     f"{r['plaintext_error_rate']:>11.4f} {r['decryption_noise_std']:>13.2f} "
                     f"{r['ciphertext_noise_std']:>12.2f} {r['qam_symbol_error_rate']:>9.2e}")
    return "\n".join(lines)


def run(args) -> int:
    import sys

    from scripts.output import write_json

    modes = list(dict.fromkeys(args.mode))
    params_list = list(dict.fromkeys(args.params))
    results = simulate(modes, params_list, args.snr, args.symbols, args.frame_symbols, args.sigma_l, args.seed,
                       progress=sys.stderr.isatty())
    n_frames = results[0]["frames"]
    print(f"cipher-sim: seed {args.seed} (keys, plaintexts and noise of this simulation; not secret keys), "
          f"{args.symbols} symbols per SNR in {n_frames} frame(s) of {args.frame_symbols}, sigma_l = {args.sigma_l:g}")
    print(_table(results))
    notes = [NOTE] + ([NOTE_PK] if "lwe-pk" in modes else [])
    for pname in params_list:
        if any(m != "mask" for m in modes):
            from crypto.cipher import PRESETS
            print(f"{pname}: expected LWE decryption noise std {PRESETS[pname].decryption_noise_std():.1f}; "
                  f"security {PRESETS[pname].security_estimate}")
    if "lwe-pk" in modes:
        print("note: " + NOTE_PK)
    if args.json:
        doc = {"command": "cipher-sim", "seed": args.seed, "note": " ".join(notes), "results": results}
        print(f"wrote {write_json(args.json, doc)}")
    return 0
