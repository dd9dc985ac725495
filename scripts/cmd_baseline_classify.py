"""`jscec baseline-classify`: the learned digital baseline of remote classification (paper Sec. V-B, eqs. 31–32,
Fig. 9): `train` one λ of the feature compression network, `eval` the trained λs over AES + LDPC + QAM on AWGN."""
from __future__ import annotations

import shlex
import sys

NAME = "baseline-classify"
HELP = ("learned digital baseline for remote classification: feature compression network (eqs. 31-32) + range "
        "coder + AES-128-CTR + 802.11ad LDPC + QAM")
DESCRIPTION = (
    "train: the feature compression network of Table IV (encoder with C = w feature channels, K = 9 Gaussian-mixture "
    "PMF per channel, the larger classifier) with additive U(-0.5, 0.5) noise (eq. 31) and the loss CE - lambda * "
    "log2 P (eq. 32, bits per image); resumable (<out>.last.pt), JSON card beside --out, networks stored as float16. "
    "eval: round the features, code them with constriction's range coder under the model's PMF, and for every "
    "modulation and LDPC rate pick the lambda (one trained model each) with the best validation accuracy when a "
    "payload that does not fit the k = rho*H*W*3 channel uses counts as wrong; then encrypt (AES-128-CTR), LDPC-code, "
    "map onto Gray QAM, add AWGN and score the test split at each SNR (a failed frame is a wrong answer). With no "
    "action: eval of every model in runs/feature-compression/.")

DEFAULT_DIR = "runs/feature-compression"


def add_arguments(p):
    from baseline.classify import DEFAULT_MODS, DEFAULT_RATES, DEFAULT_SNRS

    sub = p.add_subparsers(dest="action", metavar="ACTION")
    t = sub.add_parser("train", help="train one lambda of the feature compression network (eqs. 31-32)",
                       description="Train (or resume, or fine-tune with --init) the feature compression network at "
                                   "one lambda: loss = cross entropy - lambda * log2 P(z~), z~ = z + U(-0.5, 0.5).")
    t.add_argument("--lam", type=float, default=2e-3, help="lambda of eq. 32: nats of cross entropy per bit per image")
    t.add_argument("--out", default=None, help=f"best checkpoint (default {DEFAULT_DIR}/lam-<lambda>.pt)")
    t.add_argument("--init", default=None, metavar="CHECKPOINT",
                   help="fine-tune from this feature compression checkpoint (another lambda), fresh optimiser")
    t.add_argument("--quantiser", choices=("noise", "mixed"), default="mixed",
                   help="noise: the classifier and the mixture see z + U(-0.5, 0.5) (eq. 31, the paper's); mixed: the "
                        "encoder's rate term keeps eq. 31, the classifier reads round(z) (straight-through gradient) "
                        "and the mixture is fitted to round(z), the symbols actually coded")
    t.add_argument("--width", default="small", help="encoder width w (= feature channels C): a number or a preset "
                   "small (w 32, classifier 16), tiny (8, 4), paper (256, 256)")
    t.add_argument("--decoder-width", type=int, default=0, help="the classifier's base width d (0 = the preset's)")
    t.add_argument("--data", default=None, help="labelled dataset (default: $JSCEC_DATA or the CIFAR-10 JPEG copy)")
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    t.add_argument("--epochs", type=int, default=1000, help="upper bound; early stopping usually ends first")
    t.add_argument("--epoch-size", type=int, default=10_000, help="training images per epoch (0 = the whole split)")
    t.add_argument("--val-size", type=int, default=1000, help="validation images scored after each epoch")
    t.add_argument("--max-steps", type=int, default=0, help="stop after this many updates (0 = no limit)")
    t.add_argument("--time-budget", type=float, default=0.0, help="stop after this many minutes (0 = no limit)")
    t.add_argument("--split-seed", type=int, default=0, help="seed of the 0.8/0.1/0.1 split")
    t.add_argument("--seed", type=int, default=0, help="seed of initialisation, batches and the training noise")
    t.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    t.add_argument("--resume", action="store_true", help="continue from <out>.last.pt")
    e = sub.add_parser("eval", help="accuracy against SNR of each modulation/rate with its best lambda (Fig. 9)",
                       description="Code validation and test images with every model, choose a lambda per "
                                   "(modulation, rate) on the validation split, simulate AES + LDPC + QAM over AWGN.")
    _eval_arguments(e, DEFAULT_MODS, DEFAULT_RATES, DEFAULT_SNRS)


def _eval_arguments(e, mods, rates, snrs):
    e.add_argument("--models", nargs="+", default=None, metavar="CHECKPOINT",
                   help=f"feature compression checkpoints, one per lambda (default: every *.pt in {DEFAULT_DIR})")
    e.add_argument("--mod", nargs="+", default=list(mods), help="modulation(s): bpsk, qpsk, 16qam, 64qam")
    e.add_argument("--rate", nargs="+", default=list(rates), help="LDPC code rate(s): 1/2, 5/8, 3/4, 13/16")
    e.add_argument("--snr", type=float, nargs="+", default=list(snrs), help="channel SNR(s) in dB")
    e.add_argument("--images", type=int, default=1000, help="test images (the first of the seeded test split)")
    e.add_argument("--val-images", type=int, default=1000, help="validation images that choose lambda per pair")
    e.add_argument("--rho", default="1/6", help="bandwidth ratio k/(H*W*C) (paper eq. 4)")
    e.add_argument("--data", default=None, help="labelled dataset (default: $JSCEC_DATA or the CIFAR-10 JPEG copy)")
    e.add_argument("--split-seed", type=int, default=0, help="seed of the 0.8/0.1/0.1 split")
    e.add_argument("--seed", type=int, default=0, help="seed of the channel noise")
    e.add_argument("--ldpc-iters", type=int, default=20, help="maximum LDPC decoder iterations")
    e.add_argument("--decoder", default="nms", choices=("nms", "bp"), help="LDPC decoder: normalised min-sum or BP")
    e.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    e.add_argument("--json", default=None, metavar="PATH", help="write every number as JSON here")


def _train(args) -> int:
    import torch

    from baseline.feature_compression import FeatureConfig, FeatureTrainConfig, train_feature_compression
    from jscec.errors import UserError
    from models.datasets import load_dataset, split_indices

    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset(args.data)
    if len(data.classes) < 2:
        raise UserError(f"{data.name} has no class labels; the classification baseline needs a labelled dataset")
    config = FeatureConfig.preset(args.width, num_classes=len(data.classes), image_channels=data.images.shape[3])
    if args.decoder_width:
        config = FeatureConfig(**{**config.to_dict(), "decoder_width": args.decoder_width})
    out = args.out or f"{DEFAULT_DIR}/lam-{args.lam:g}.pt"
    cfg = FeatureTrainConfig(lam=args.lam, data=args.data or data.source, out=out, split_seed=args.split_seed,
                             seed=args.seed, batch_size=args.batch_size, lr=args.lr, epochs=args.epochs,
                             epoch_size=args.epoch_size, val_size=args.val_size, max_steps=args.max_steps,
                             time_budget_min=args.time_budget, resume=args.resume, quantiser=args.quantiser, init=args.init,
                             command="jscec " + shlex.join(sys.argv[1:]))
    split = split_indices(len(data.images), seed=args.split_seed)
    print(f"training the feature compression network (λ = {args.lam:g}) on {data.name}: {len(split['train'])} train / "
          f"{len(split['val'])} val images, w {config.width} / d {config.decoder_width}, K = {config.mixtures}, "
          f"features {config.width}x{data.images.shape[1] // 4}x{data.images.shape[2] // 4}", flush=True)
    card = train_feature_compression(config, cfg, data.images, data.labels, split, data.name,
                                     log=lambda m: print(m, flush=True))
    if card:
        v = card["validation"]
        print(f"best: val accuracy {100 * v['accuracy']:.2f} %, {v['bits_mean']:.1f} bits/image (p95 "
              f"{v['bits_p95']:.0f}) → {out}")
    return 0


def _eval(args) -> int:
    from pathlib import Path

    import torch

    from baseline.classify import evaluate, table
    from jscec.errors import UserError
    from scripts.output import write_json

    torch.set_num_threads(max(1, args.threads))
    paths = args.models
    if paths is None:
        paths = sorted(str(p) for p in Path(DEFAULT_DIR).glob("*.pt") if not p.name.endswith(".last.pt"))
        if not paths:
            raise UserError(f"no feature compression models in {DEFAULT_DIR}/: train some with "
                            "`jscec baseline-classify train --lam L` (one per lambda) or give --models")
    if args.ldpc_iters < 1:
        raise UserError(f"--ldpc-iters must be at least 1, got {args.ldpc_iters}")
    from fractions import Fraction

    try:
        rho = float(Fraction(args.rho))
    except (ValueError, ZeroDivisionError):
        raise UserError(f"bad --rho {args.rho!r}: give a number or a fraction such as 1/6") from None
    mods = [m.lower() for m in args.mod]
    from baseline.pipeline import MODULATIONS

    for m in mods:
        if m not in MODULATIONS:
            raise UserError(f"unknown modulation {m!r}: choose one of {', '.join(MODULATIONS)}")
    res = evaluate(paths, mods=mods, rates=args.rate, snrs_db=args.snr, images=args.images,
                   val_images=args.val_images, rho=rho, data=args.data, split_seed=args.split_seed, seed=args.seed,
                   max_iter=args.ldpc_iters, method=args.decoder, command="jscec " + shlex.join(sys.argv[1:]),
                   log=lambda m: print(m, flush=True))
    print(table(res))
    if args.json:
        print(f"JSON: {write_json(args.json, res)}")
    return 0


def run(args) -> int:
    if getattr(args, "action", None) == "train":
        return _train(args)
    if getattr(args, "action", None) == "eval":
        return _eval(args)
    import argparse

    from baseline.classify import DEFAULT_MODS, DEFAULT_RATES, DEFAULT_SNRS

    p = argparse.ArgumentParser()
    _eval_arguments(p, DEFAULT_MODS, DEFAULT_RATES, DEFAULT_SNRS)
    return _eval(p.parse_args([]))
