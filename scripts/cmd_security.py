"""`jscec security`: security estimates per LWE preset (`estimate`) and the empirical IND-CPA game (`ind-cpa`)."""
from __future__ import annotations

NAME = "security"
HELP = "LWE security estimates per preset, and the IND-CPA game played empirically"
DESCRIPTION = (
    "estimate: core-SVP (classical 0.292b, quantum 0.265b) and an operation count (8d*2^(0.292b+16.4)) of the "
    "primal uSVP and dual attacks on each preset's key- and message-recovery LWE instances, with the Kyber-512 "
    "check (crypto/security.py documents the model and its sources). ind-cpa: Def. 1's game with a battery of "
    "distinguishers per mode, plaintext pair and SNR, and two controls that must see a leak (advantage ~ 1).")

PRESET_NAMES = ("lp-192", "lp-256", "lp-512")
MODES = ("lwe", "lwe-pk", "mask")
PAIRS = ("zero-half", "images", "nearest", "farthest")


def add_arguments(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    e = sub.add_parser("estimate", help="security estimate of each LWE preset",
                       description="Core-SVP and operation-count estimates of each preset (crypto/security.py).")
    e.add_argument("--params", nargs="+", choices=PRESET_NAMES, default=list(PRESET_NAMES), help="preset(s)")
    e.add_argument("--k", type=int, default=None,
                   help="frame symbols: bounds the message-recovery samples to n2 + k (default: unbounded)")
    e.add_argument("--json", default=None, metavar="PATH", help="write the estimates as JSON here")
    g = sub.add_parser("ind-cpa", help="the IND-CPA game of Def. 1, played empirically",
                       description="Plaintext pairs through the cipher (fresh nonces) and the radio channel; "
                                   "advantage (Pr[b'=1|b=1] - Pr[b'=1|b=0], 95%% CI) of each distinguisher, and two controls.")
    g.add_argument("--params", choices=PRESET_NAMES, default="lp-192", help="LWE preset")
    g.add_argument("--mode", nargs="+", choices=MODES, default=list(MODES), help="cipher mode(s)")
    g.add_argument("--snr", nargs="+", default=["none", "0", "10", "30"],
                   help="channel SNR(s) in dB; 'none' = no channel (the ciphertext itself)")
    g.add_argument("--pairs", nargs="+", choices=PAIRS, default=list(PAIRS), help="plaintext pairs")
    g.add_argument("--train-games", type=int, default=10_000,
                   help="labelled games for the learned distinguishers (a tenth of them held out for early stopping)")
    g.add_argument("--test-games", type=int, default=20_000, help="games each distinguisher is scored on")
    g.add_argument("--control-games", type=int, default=5_000, help="games of each control")
    g.add_argument("--test-batch", type=int, default=20_000,
                   help="test games played and scored at a time (bounds memory: about 20 MB per 1000 games)")
    g.add_argument("--store", default=None, metavar="PATH",
                   help="JSON-lines file of finished cells (mode, pair, SNR): a run with the same settings "
                        "keeps them and plays only the missing cells, so a long run can be stopped and resumed")
    g.add_argument("--model", default="cifar10-lwe",
                   help="Bob's model whose encoder makes the image pairs ('none': random centroid latents)")
    g.add_argument("--data", default=None, help="dataset of the image pairs (default: the CIFAR-10 copy)")
    g.add_argument("--pool-images", type=int, default=256, help="test images in the pool of image pairs")
    g.add_argument("--seed", type=int, default=0, help="seed of keys, pairs, bits and channel noise (not secret)")
    g.add_argument("--threads", type=int, default=1, help="torch CPU threads (encoder only)")
    g.add_argument("--json", default=None, metavar="PATH", help="write the results as JSON here")


def _snrs(values):
    from jscec.errors import UserError

    out = []
    for v in values:
        if v.lower() in ("none", "inf"):
            out.append(None)
            continue
        try:
            out.append(float(v))
        except ValueError:
            raise UserError(f"--snr values are numbers in dB or 'none', not {v!r}") from None
    return out


def _estimate(args) -> int:
    from crypto.cipher import PRESETS
    from crypto.security import report
    from scripts.output import write_json

    doc = report([PRESETS[n] for n in dict.fromkeys(args.params)], args.k)
    head = f"{'preset':<7} {'instance':<27} {'attack':<12} {'beta':>5} {'m':>5} {'d':>5} {'classical':>9} " \
           f"{'quantum':>8} {'log2 ops':>8}"
    print(f"core-SVP bits (classical 0.292b / quantum 0.265b) and log2 operations under {doc['model']['ops']}")
    print(head)
    print("-" * len(head))
    for e in doc["presets"]:
        for a in e["attacks"]:
            def f(x, w):
                return f"{'inf':>{w}}" if x is None else f"{x:>{w}.1f}"
            print(f"{e['params']:<7} {a['instance']:<27} {a['attack']:<12} {a['beta']:>5} {a['m']:>5} {a['d']:>5} "
                  f"{f(a['core_svp_classical'], 9)} {f(a['core_svp_quantum'], 8)} {f(a['ops_classical'], 8)}")
    print()
    for e in doc["presets"]:
        print(f"{e['params']}: n1 = n2 = {e['n1']}, s = {e['s']} (sigma {e['sigma']}): core-SVP "
              f"{e['core_svp_classical']:.1f} classical / {e['core_svp_quantum']:.1f} quantum, 2^{e['ops_classical']:.1f} "
              f"operations; weakest: {e['weakest']}; "
              + ("meets 128-bit" if e["meets_128"] else "BELOW 128-bit"))
    ky = doc["check"]["kyber512"]
    print(f"check: Kyber-512 (round 3) primal core-SVP {ky['primal']['core_svp_classical']:.1f} classical / "
          f"{ky['primal']['core_svp_quantum']:.1f} quantum here; published {ky['published']['classical']} / "
          f"{ky['published']['quantum']} ({ky['published']['source']})")
    if args.json:
        print(f"wrote {write_json(args.json, doc)}")
    return 0


def _ind_cpa(args) -> int:
    from models.ind_cpa import IndCpaConfig, run_ind_cpa
    from scripts.output import write_json

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from jscec.errors import UserError

    for name in ("train_games", "test_games", "test_batch"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    cfg = IndCpaConfig(modes=list(dict.fromkeys(args.mode)), params=args.params, snrs_db=_snrs(args.snr),
                       pairs=list(dict.fromkeys(args.pairs)), train_games=args.train_games,
                       test_games=args.test_games, control_games=args.control_games,
                       model=None if args.model.lower() == "none" else args.model, data=args.data,
                       pool_images=args.pool_images, seed=args.seed, test_batch=args.test_batch,
                       store=args.store)
    doc = run_ind_cpa(cfg, log=lambda m: print(m, flush=True), progress=True)
    s = doc["summary"]
    print(f"{s['estimates']} advantage estimates ({cfg.test_games} test games each): max |advantage| "
          f"{s['max_abs_advantage']:.4f} at {s['max_abs_advantage_at']}, max |95% CI bound| "
          f"{s['max_abs_ci95_bound']:.4f}; {s['ci95_excluding_zero']} intervals exclude 0 "
          f"(chance alone: about {s['ci95_excluding_zero_expected']}); controls' weakest best distinguisher: "
          + ", ".join(f"{k} {v:.3f}" for k, v in s["controls_min_best"].items()))
    if args.json:
        print(f"wrote {write_json(args.json, doc)}")
    return 0


def run(args) -> int:
    if getattr(args, "action", None) == "estimate":
        return _estimate(args)
    if getattr(args, "action", None) == "ind-cpa":
        return _ind_cpa(args)
    # No action: the estimate of every preset (each command runs with no arguments).
    import argparse

    return _estimate(argparse.Namespace(params=list(PRESET_NAMES), k=None, json=None))
