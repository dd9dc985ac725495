"""`jscec attack`: Eve's chosen-plaintext attack on a trained model (paper Sec. V-A)."""
from __future__ import annotations

NAME = "attack"
HELP = "train Eve's decoder (or classifier) by a chosen-plaintext attack and plot both loss curves (Fig. 7)"
DESCRIPTION = ("Eve knows f_θ, the public key and the training images; she gathers (x, c) pairs under fresh nonces "
               "(noiseless ciphertexts) and trains a decoder of Bob's size (for a classification model: a classifier of Bob's "
               "decoder's architecture on (ciphertext, label) pairs). Saves <model>.eve.pt beside the model and "
               "a PNG of Bob's and Eve's training-loss curves.")


def add_arguments(p):
    p.add_argument("--model", default="cifar10-lwe",
                   help="Bob's checkpoint (bundled name or path); Eve's decoder is written beside it")
    p.add_argument("--data", default=None, help="dataset path; default $JSCEC_DATA or the CIFAR-10 JPEG copy")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--epoch-size", type=int, default=8000, help="images per epoch (0 = whole training split)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--val-size", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--png", default=None, help="loss-curve plot (default: <model>.losses.png)")


def run(args) -> int:
    import shlex
    import sys
    from pathlib import Path

    import torch

    from models.attack import plot_losses, train_eve
    from models.checkpoint import load_checkpoint, resolve_model
    from models.datasets import load_dataset, split_indices
    from models.train import pick_device

    if args.threads:
        torch.set_num_threads(args.threads)
    path = resolve_model(args.model)
    card = load_checkpoint(path, kind="bob").get("card", {})
    data = load_dataset(args.data)
    split = split_indices(len(data.images), seed=card.get("split_seed", 0))
    eve_card = train_eve(path, data.images, split, epochs=args.epochs, epoch_size=args.epoch_size,
                         batch_size=args.batch_size, lr=args.lr, seed=args.seed, val_size=args.val_size,
                         device=pick_device(args.device), command="jscec " + shlex.join(sys.argv[1:]),
                         log=lambda m: print(m, flush=True), labels=data.labels)
    png = Path(args.png) if args.png else path.with_suffix(".losses.png")
    plot_losses(eve_card, png)
    best = eve_card["validation"]
    shown = f"accuracy {100 * best['accuracy']:.2f} %" if "accuracy" in best else f"PSNR {best['psnr']:.2f} dB"
    print(f"Eve's best validation {shown}; her network beside {path.name}; plot {png}")
    return 0
