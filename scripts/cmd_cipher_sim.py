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
PARAMS = ("lp-192", "lp-256", "lp-512")


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

    from crypto.cipher import PRESETS
    from models.secure_channel import CipherSimConfig, simulate_cipher
    from scripts.output import write_json

    modes = list(dict.fromkeys(args.mode))
    params_list = list(dict.fromkeys(args.params))
    cfg = CipherSimConfig(modes=modes, params=params_list, snrs_db=args.snr, symbols=args.symbols,
                          frame_symbols=args.frame_symbols, sigma_l=args.sigma_l, seed=args.seed)
    results = simulate_cipher(cfg, progress=sys.stderr.isatty())
    n_frames = results[0]["frames"]
    print(f"cipher-sim: seed {args.seed} (keys, plaintexts and noise of this simulation; not secret keys), "
          f"{args.symbols} symbols per SNR in {n_frames} frame(s) of {args.frame_symbols}, sigma_l = {args.sigma_l:g}")
    print(_table(results))
    notes = [NOTE] + ([NOTE_PK] if "lwe-pk" in modes else [])
    for pname in params_list:
        if any(m != "mask" for m in modes):
            print(f"{pname}: expected LWE decryption noise std {PRESETS[pname].decryption_noise_std():.1f}; "
                  f"security {PRESETS[pname].security_estimate}")
    if "lwe-pk" in modes:
        print("note: " + NOTE_PK)
    if args.json:
        doc = {"command": "cipher-sim", "seed": args.seed, "note": " ".join(notes), "results": results}
        print(f"wrote {write_json(args.json, doc)}")
    return 0
