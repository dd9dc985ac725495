"""Evaluation of Bob and Eve over a list of SNRs: image quality with the mean-image baseline (paper
Table III), or, for a classification model, accuracy with a uniform random guess (Table V)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from models.checkpoint import eve_path, load_checkpoint, load_state
from models.codec import CodecConfig, DeepJscec, EveDecoder
from models.images import to_tensor
from models.metrics import ms_ssim, psnr, ssim
from models.secure_channel import SecureChannel


def load_bob(path, device="cpu") -> DeepJscec:
    ck = load_checkpoint(path, kind="bob")
    model = DeepJscec(CodecConfig.from_dict(ck["config"])).to(device)
    load_state(model, ck["state_dict"], path)
    model.card = ck.get("card", {})
    return model.eval()


def load_eve(bob_checkpoint, device="cpu") -> EveDecoder | None:
    path = eve_path(bob_checkpoint)
    if not path.exists():
        return None
    ck = load_checkpoint(path, kind="eve")
    eve = EveDecoder(CodecConfig.from_dict(ck["config"])).to(device)
    load_state(eve, ck["state_dict"], path)
    eve.card = ck.get("card", {})
    return eve.eval()


def quality(x_hat: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image PSNR and SSIM, and MS-SSIM for images of at least 64×64."""
    out = {"psnr": psnr(x_hat, x), "ssim": ssim(x_hat, x)}
    if min(x.shape[-2:]) >= 64:
        out["ms_ssim"] = ms_ssim(x_hat, x)
    return out


def _mean(parts: list[dict]) -> dict:
    return {k: float(torch.cat([p[k] for p in parts]).mean()) for k in parts[0]}


@torch.no_grad()
def evaluate(model: DeepJscec, eve: EveDecoder | None, images_u8: np.ndarray, snrs_db, mean_img: np.ndarray,
             *, seed: int = 0, batch_size: int = 100, device="cpu", progress=None, per_image: bool = False) -> dict:
    """Bob's and Eve's quality per SNR; Eve sees the same SNR as Bob (her own, independent noise).
    ``per_image``: each role's row also lists every image's scores (``per_image``: metric → list)."""
    cfg = model.config
    results = []
    for snr in snrs_db:
        bob_link = SecureChannel(cfg.cipher_mode, cfg.cipher_params, sigma_l=cfg.sigma_l, seed=seed)
        bob_parts, eve_parts = [], []
        for i in range(0, len(images_u8), batch_size):
            x = to_tensor(images_u8[i:i + batch_size], device)
            _, plaintext, shape = model.encode(x)
            out = bob_link.transmit(plaintext.cpu().numpy(), snr)
            x_hat = model.decode(torch.from_numpy(out["z_prime"]).float().to(device), shape, out_size=x.shape[-2:])
            bob_parts.append(quality(x_hat, x))
            if eve is not None:
                x_bar = eve(torch.from_numpy(out["c_hat"]).float().to(device), shape, out_size=x.shape[-2:])
                eve_parts.append(quality(x_bar, x))
            if progress:
                progress(len(x))
        row = {"snr_db": float(snr), "bob": _mean(bob_parts)}
        if eve_parts:
            row["eve"] = _mean(eve_parts)
        if per_image:
            for role, parts in (("bob", bob_parts), ("eve", eve_parts)):
                if parts:
                    row[role]["per_image"] = {k: torch.cat([p[k] for p in parts]).tolist() for k in parts[0]}
        results.append(row)
    x_all = to_tensor(images_u8, device)
    m = torch.from_numpy(mean_img).permute(2, 0, 1)[None].expand_as(x_all).to(device)
    return {"results": results, "mean_image": {k: float(v.mean()) for k, v in quality(m, x_all).items()}}


def random_guess(labels: np.ndarray, num_classes: int, seed: int = 0) -> dict:
    """Accuracy of guessing each label uniformly at random (Table V's "Random"), measured and expected."""
    guess = np.random.default_rng([seed, 0x6E55]).integers(0, num_classes, len(labels))
    return {"accuracy": float(np.mean(guess == labels)), "chance": 1.0 / num_classes}


@torch.no_grad()
def evaluate_classifier(model: DeepJscec, eve: EveDecoder | None, images_u8: np.ndarray, labels: np.ndarray,
                        snrs_db, *, seed: int = 0, batch_size: int = 100, device="cpu", progress=None,
                        per_image: bool = False) -> dict:
    """Bob's and Eve's accuracy per SNR (Eve with her own noise at the same SNR), and a random guess."""
    cfg = model.config
    results = []
    for snr in snrs_db:
        link = SecureChannel(cfg.cipher_mode, cfg.cipher_params, sigma_l=cfg.sigma_l, seed=seed)
        preds = {"bob": [], "eve": []}
        for i in range(0, len(images_u8), batch_size):
            x = to_tensor(images_u8[i:i + batch_size], device)
            _, plaintext, shape = model.encode(x)
            out = link.transmit(plaintext.cpu().numpy(), snr)
            preds["bob"].append(model.decode(torch.from_numpy(out["z_prime"]).float().to(device), shape).argmax(1))
            if eve is not None:
                preds["eve"].append(eve(torch.from_numpy(out["c_hat"]).float().to(device), shape).argmax(1))
            if progress:
                progress(len(x))
        row = {"snr_db": float(snr)}
        for role, parts in preds.items():
            if parts:
                pred = torch.cat(parts).cpu().numpy()
                row[role] = {"accuracy": float(np.mean(pred == labels))}
                if per_image:
                    row[role]["per_image"] = {"label": pred.tolist()}
        results.append(row)
    return {"results": results, "random_guess": random_guess(labels, cfg.num_classes, seed)}


def plot_accuracy(report: dict, png: Path) -> None:
    """Accuracy of Bob and Eve against SNR, with the random guess."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    snrs = [r["snr_db"] for r in report["results"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(snrs, [100 * r["bob"]["accuracy"] for r in report["results"]], "o-", label="Bob")
    if all("eve" in r for r in report["results"]):
        ax.plot(snrs, [100 * r["eve"]["accuracy"] for r in report["results"]], "s-", label="Eve")
    ax.axhline(100 * report["random_guess"]["accuracy"], color="gray", ls="--", label="random guess")
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title(f"{report.get('model', '')} — {report.get('dataset', '')}, ρ = {report.get('rho', 0):.4g}")
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


def plot_psnr(report: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    snrs = [r["snr_db"] for r in report["results"]]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("psnr", "ssim")):
        ax.plot(snrs, [r["bob"][metric] for r in report["results"]], "o-", label="Bob")
        if all("eve" in r for r in report["results"]):
            ax.plot(snrs, [r["eve"][metric] for r in report["results"]], "s-", label="Eve")
        ax.axhline(report["mean_image"][metric], color="gray", ls="--", label="mean image")
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel(metric.upper() + (" (dB)" if metric == "psnr" else ""))
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(f"{report.get('model', '')} — {report.get('dataset', '')}, ρ = {report.get('rho', 0):.4g}")
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
