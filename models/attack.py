"""Eve's chosen-plaintext attack (paper Sec. V-A, Fig. 7; Sec. V-B, Table V).

Eve knows the encoder f_θ, the public key and the training images. She obtains ciphertexts of
images of her choice, each encrypted under a fresh nonce (noiseless c), and trains a decoder ḡ_ψ(c)
with the architecture and size of Bob's decoder. If the cipher does its job her reconstructions stay
at the level of the dataset's mean image. Her decoder is saved beside Bob's model.

For a classification model she trains a classifier of Bob's decoder's architecture on (ciphertext,
label) pairs with the cross-entropy loss; if the cipher does its job she stays at a random guess.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from models.checkpoint import load_checkpoint, save_checkpoint
from models.codec import CodecConfig, DeepJscec, EveDecoder
from models.images import to_tensor
from models.metrics import psnr, ssim
from models.secure_channel import SecureChannel
from models.train import library_versions


@torch.no_grad()
def ciphertexts(model: DeepJscec, channel: SecureChannel, x: torch.Tensor):
    """Encrypt images under fresh nonces; returns (noiseless c as float (B, k), latent shape)."""
    _, plaintext, latent_shape = model.encode(x)
    c = channel.encrypt(plaintext.cpu().numpy())["c"]
    return torch.from_numpy(c.astype(np.float32)).to(x.device), latent_shape


@torch.no_grad()
def evaluate_eve(model, eve, channel, images_u8, device, batch_size=100, labels=None) -> dict:
    """Eve on noiseless ciphertexts: PSNR/SSIM, or accuracy when ``labels`` are given (classification)."""
    eve.eval()
    ps, ss, correct = [], [], 0
    for i in range(0, len(images_u8), batch_size):
        x = to_tensor(images_u8[i:i + batch_size], device)
        c, shape = ciphertexts(model, channel, x)
        out = eve(c, shape, out_size=x.shape[-2:])
        if labels is not None:
            correct += int((out.argmax(1).cpu() == torch.as_tensor(labels[i:i + batch_size])).sum())
        else:
            ps.append(psnr(out, x))
            ss.append(ssim(out, x))
    eve.train()
    if labels is not None:
        return {"accuracy": correct / len(images_u8)}
    return {"psnr": float(torch.cat(ps).mean()), "ssim": float(torch.cat(ss).mean())}


def train_eve(checkpoint: Path, images: np.ndarray, split: dict, *, epochs: int = 10, epoch_size: int = 0,
              batch_size: int = 32, lr: float = 1e-4, seed: int = 0, val_size: int = 1000, device="cpu",
              command: str = "", log=print, labels: np.ndarray | None = None) -> dict:
    """Run the attack against ``checkpoint`` and save Eve's decoder beside it; returns her card.

    A classification model needs ``labels`` (Eve's training pairs are (ciphertext, label))."""
    ck = load_checkpoint(checkpoint, kind="bob")
    cfg = CodecConfig.from_dict(ck["config"])
    classify = cfg.task == "classify"
    if classify and labels is None:
        from jscec.errors import UserError

        raise UserError("the attack on a classification model needs a labelled dataset")
    model = DeepJscec(cfg).to(device)
    model.load_state_dict(ck["state_dict"])
    model.eval()
    torch.manual_seed(seed)
    eve = EveDecoder(cfg).to(device)
    opt = torch.optim.Adam(eve.parameters(), lr=lr, betas=(0.9, 0.999))
    # Eve's encryption oracle: the public encryption with fresh nonces.
    oracle = SecureChannel(cfg.cipher_mode, cfg.cipher_params, seed=20_000 + seed)
    rng = np.random.default_rng(seed)
    train_idx, val_idx = split["train"], split["val"][:val_size]
    steps = max(1, (epoch_size or len(train_idx)) // batch_size)
    history = []
    t0 = time.time()
    best = None
    for epoch in range(epochs):
        order = rng.permutation(train_idx)[: steps * batch_size]
        running = 0.0
        bar = tqdm(range(steps), desc=f"eve epoch {epoch}", leave=False, file=sys.stderr,
                   disable=not sys.stderr.isatty())
        for b in bar:
            idx = order[b * batch_size:(b + 1) * batch_size]
            x = to_tensor(images[idx], device)
            c, shape = ciphertexts(model, oracle, x)
            out = eve(c, shape, out_size=x.shape[-2:])
            if classify:
                loss = F.cross_entropy(out, torch.as_tensor(labels[idx], device=device))
            else:
                loss = torch.mean((out - x) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += float(loss.detach())
        val = evaluate_eve(model, eve, oracle, images[val_idx], device,
                           labels=labels[val_idx] if classify else None)
        history.append({"epoch": epoch + 1, "train_loss": running / steps,
                        **{f"val_{k}": v for k, v in val.items()}, "minutes": (time.time() - t0) / 60})
        shown = (f"val accuracy {100 * val['accuracy']:.2f} %" if classify
                 else f"val PSNR {val['psnr']:.2f} dB SSIM {val['ssim']:.3f}")
        log(f"eve epoch {epoch + 1}: loss {running / steps:.4f} {shown}")
        score = val["accuracy" if classify else "psnr"]
        if best is None or score > best["accuracy" if classify else "psnr"]:
            best = dict(val, epoch=epoch + 1)
            best_state = {k: v.clone() for k, v in eve.state_dict().items()}
    card = {"kind": "eve", "task": cfg.task,
            "attack": "chosen-plaintext (noiseless ciphertexts, fresh nonces)"
                      + (", (ciphertext, label) pairs, cross-entropy" if classify else ""),
            "bob_checkpoint": Path(checkpoint).name, "cipher_mode": cfg.cipher_mode,
            "cipher_params": cfg.cipher_params, "epochs": epochs, "steps_per_epoch": steps, "batch_size": batch_size,
            "validation": best, "history": history, "bob_history": ck.get("card", {}).get("history", []),
            "command": command, "versions": library_versions(), "config": cfg.to_dict()}
    from models.checkpoint import eve_path

    save_checkpoint(eve_path(checkpoint), {"kind": "eve", "config": cfg.to_dict(), "state_dict": best_state}, card)
    return card


def plot_losses(card: dict, png: Path) -> None:
    """Fig. 7: Bob's and Eve's training-loss (MSE) curves against epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    bob = card.get("bob_history", [])
    if bob:
        ax.plot([h["epoch"] for h in bob], [h["train_loss"] for h in bob], label="Bob (through cipher + channel)")
    eve = card["history"]
    ax.plot([h["epoch"] for h in eve], [h["train_loss"] for h in eve], label="Eve (chosen-plaintext attack)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (cross-entropy)" if card.get("task") == "classify" else "training loss (MSE)")
    ax.set_yscale("log")
    ax.set_title(f"Training loss, {card['cipher_mode']} / {card['cipher_params']}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
