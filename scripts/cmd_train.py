"""`jscec train`: train a DeepJSCEC model end to end through the cipher (resumable)."""
from __future__ import annotations

import os
import shlex
import sys

NAME = "train"
HELP = "train a DeepJSCEC encoder/decoder through the cipher and channel"
DESCRIPTION = ("Train f_θ/g_φ end to end: encoder → quantiser → LWE/mask cipher → 4096-QAM → AWGN → soft demap → "
               "decrypt → decoder (gradient skip, eq. 28). Writes the best weights to --out with a JSON card beside "
               "it and a resumable <out>.last.pt after every epoch.")


def add_arguments(p):
    from models.presets import WIDTH_PRESETS

    p.add_argument("--data", default=None, help="dataset path (CIFAR-10 batches, image folder/.tar.gz, Tiny ImageNet, "
                   "IDX); default $JSCEC_DATA or ../shared/datasets/cifar10-jpeg.tar.gz")
    p.add_argument("--out", default="runs/model.pt", help="where the best checkpoint goes")
    p.add_argument("--task", choices=["image", "classify"], default="image",
                   help="image transmission (Table II networks, reconstruction loss) or remote classification "
                        "(Table IV networks, cross-entropy loss of eq. 30)")
    p.add_argument("--width", default="small", help=f"channel width: a number or a preset {sorted(WIDTH_PRESETS)}; "
                   "for --task classify the encoder width w (the decoder's d: --decoder-width)")
    p.add_argument("--decoder-width", type=int, default=0,
                   help="classify: the decoder's base width d (0 = the preset's: paper 256, small 16, tiny 4)")
    p.add_argument("--layout", choices=["cifar", "tiny", "auto"], default="auto",
                   help="network layout (Table II): cifar (×4) for 32×32, tiny (×16) for 64×64; auto picks by size")
    p.add_argument("--rho", default="1/6", help="bandwidth ratio k/(H·W·C)")
    p.add_argument("--snr-train", type=float, default=10.0, help="training SNR in dB")
    p.add_argument("--mode", choices=["lwe", "lwe-pk", "mask"], default="lwe", help="cipher mode")
    p.add_argument("--params", choices=["lp-192", "lp-256", "lp-512"], default="lp-192",
                   help="LWE preset (lp-512: >= 128-bit; jscec security estimate)")
    p.add_argument("--decoder-input", choices=["circular", "eq16"], default="circular",
                   help="decoder input: (cos, sin) on the circle, or the paper's scalar eq. 16")
    p.add_argument("--sigma-l", type=float, default=1.0, help="soft-demapper weighting σ_l (1 = posterior mean)")
    p.add_argument("--loss", choices=["mse", "ssim", "msssim"], default="mse", help="training loss")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=None,
                   help="Adam learning rate (default 1e-4 for images, 1e-3 for classify; with --resume: continue at "
                        "this rate instead of the saved one)")
    p.add_argument("--epochs", type=int, default=1000, help="upper bound; early stopping usually ends first")
    p.add_argument("--epoch-size", type=int, default=0, help="training images per epoch (0 = whole training split)")
    p.add_argument("--val-size", type=int, default=1000, help="validation images used after each epoch")
    p.add_argument("--patience-stop", type=int, default=10,
                   help="stop after this many epochs without a better validation score (0 = never stop early)")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many updates (0 = no limit)")
    p.add_argument("--time-budget", type=float, default=0.0, help="stop after this many minutes (0 = no limit)")
    p.add_argument("--noise-ramp", type=int, default=1000, help="ramp the link noise up over this many steps")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the 0.8/0.1/0.1 split")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, batches, keys and channel noise")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 …")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    p.add_argument("--resume", action="store_true", help="continue from <out>.last.pt")
    p.add_argument("--cosine", type=int, default=0, metavar="STEPS",
                   help="anneal the learning rate from --lr (or the saved rate) to 0 along a half cosine over this "
                        "many steps instead of lowering it on plateaus; --resume continues the annealing, "
                        "--resume --lr starts a new one (0 = off)")
    p.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                   help="validate and save an exponential moving average of the weights with this decay per step "
                        "(e.g. 0.999; 0 = off); kept in <out>.last.pt so --resume continues it")
    p.add_argument("--weight-decay", type=float, default=0.0, metavar="WD",
                   help="decoupled weight decay (as AdamW's: each step shrinks the weights by lr × WD; 0 = off)")
    p.add_argument("--cutout", type=int, default=0, metavar="PIXELS",
                   help="classify: fill one random square of this side in each training image with grey (0 = off)")
    p.add_argument("--init", default=None, metavar="CHECKPOINT",
                   help="fine-tune: start from this Bob model's weights and step count (same architecture; "
                        "--mode/--params/--snr-train may differ), with a fresh optimiser")
    p.add_argument("--freeze-encoder", action="store_true",
                   help="train the decoder only, keeping the encoder of --init (or of the resumed run) as it is: "
                        "the transmitted features, and any eavesdropper's attack trained on them, stay valid")


def parse_rho(text: str) -> float:
    from fractions import Fraction

    from jscec.errors import UserError

    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise UserError(f"--rho must be a number or a fraction such as 1/6, not {text!r}") from None


def run(args) -> int:
    import torch

    from models.classifier import CLASSIFIER_WIDTHS
    from models.codec import CodecConfig
    from models.datasets import load_dataset, split_indices
    from models.presets import WIDTH_PRESETS
    from models.train import TrainConfig, train
    from jscec.errors import UserError

    if args.threads:
        torch.set_num_threads(args.threads)
    classify = args.task == "classify"
    presets = CLASSIFIER_WIDTHS if classify else WIDTH_PRESETS
    width, decoder_width = presets.get(args.width, (None, None)) if classify else (presets.get(args.width), 0)
    if width is None and args.width.isdigit() and int(args.width) > 0:
        width = int(args.width)
        decoder_width = max(1, width // 2) if classify else 0
    if not width:
        raise UserError(f"--width must be a positive number or one of {sorted(presets)}")
    if classify and args.decoder_width:
        decoder_width = args.decoder_width
    data = load_dataset(args.data)
    h = data.images.shape[1]
    layout = args.layout if args.layout != "auto" else ("cifar" if h <= 32 or classify else "tiny")
    if classify and layout != "cifar":
        raise UserError("--task classify uses Table IV's ×4 layout (--layout cifar)")
    if classify and len(data.classes) < 2:
        raise UserError(f"{data.name} has no class labels; --task classify needs a labelled dataset")
    model_cfg = CodecConfig(layout=layout, width=width, rho=parse_rho(args.rho), image_channels=data.images.shape[3],
                            snr_train_db=args.snr_train, cipher_mode=args.mode, cipher_params=args.params,
                            decoder_input=args.decoder_input, sigma_l=args.sigma_l, task=args.task,
                            decoder_width=decoder_width, num_classes=len(data.classes) if classify else 10)
    try:
        model_cfg.latent_ch
    except ValueError as exc:
        raise UserError(str(exc)) from None
    cfg = TrainConfig(data=args.data or data.source, out=args.out, split_seed=args.split_seed, seed=args.seed,
                      batch_size=args.batch_size, epochs=args.epochs, epoch_size=args.epoch_size,
                      val_size=args.val_size, patience_stop=args.patience_stop, max_steps=args.max_steps,
                      time_budget_min=args.time_budget,
                      lr=args.lr or (1e-3 if classify else 1e-4), loss=args.loss, noise_ramp_steps=args.noise_ramp,
                      device=args.device, resume=args.resume, resume_lr=(args.lr or 0.0) if args.resume else 0.0,
                      init=args.init, ema=args.ema, cosine_steps=args.cosine,
                      weight_decay=args.weight_decay, cutout=args.cutout,
                      freeze_encoder=args.freeze_encoder, command="jscec " + shlex.join(sys.argv[1:]))
    split = split_indices(len(data.images), seed=args.split_seed)
    log = (lambda m: print(m, flush=True)) if int(os.environ.get("RANK", "0")) == 0 else (lambda m: None)
    log(f"training ({args.task}) on {data.name}: {len(split['train'])} train / {len(split['val'])} val images, "
        f"layout {layout}, width {width}" + (f"/{decoder_width}" if classify else "") +
        f", k = {model_cfg.latent_ch * (h // model_cfg.downsampling) ** 2} "
        f"symbols/image, cipher {args.mode}/{args.params}, SNR_train {args.snr_train} dB")
    card = train(model_cfg, cfg, data.images, split, data.name, log=log, labels=data.labels)
    if card and "accuracy" in card["validation"]:
        log(f"best: val accuracy {100 * card['validation']['accuracy']:.2f} % → {args.out}")
    elif card:
        log(f"best: val PSNR {card['validation']['psnr']:.2f} dB → {args.out}")
    return 0
