"""End-to-end training of DeepJSCEC through the cipher (paper Sec. V; issue 3).

encoder → quantiser (σ_q schedule, eq. 29) → cipher → 4096-QAM → AWGN at SNR_train → soft demap →
decrypt → decoder input → decoder, with the gradient skip of eq. 28. Adam (1e-4, betas 0.9/0.999);
the learning rate ×0.8 after 5 epochs without validation improvement; early stop after 10.

Resumable: ``<out>.last.pt`` holds everything needed to continue (weights, optimiser, scheduler,
step, RNG states, nonce counter); ``--resume`` picks it up. The best-on-validation weights go to
``<out>`` with a JSON card beside it.
"""
from __future__ import annotations

import json
import math
import platform
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models.checkpoint import load_checkpoint, load_state, save_checkpoint
from models.codec import CodecConfig, DeepJscec
from models.images import to_tensor
from models.metrics import image_loss, psnr, ssim
from models.quantiser import sigma_q_schedule
from models.secure_channel import SecureChannel
from jscec.errors import UserError
from crypto.zp import P, centered


@dataclass
class TrainConfig:
    data: str | None = None
    out: str = "runs/model.pt"
    split_seed: int = 0
    seed: int = 0
    batch_size: int = 32
    epochs: int = 1000
    epoch_size: int = 0  # training images per epoch; 0 = the whole training split
    val_size: int = 1000
    max_steps: int = 0
    time_budget_min: float = 0.0
    lr: float = 1e-4
    loss: str = "mse"
    noise_ramp_steps: int = 1000
    patience_lr: int = 5
    patience_stop: int = 10
    device: str = "auto"
    resume: bool = False
    init: str | None = None   # fine-tune: start from this Bob checkpoint's weights (another preset or mode allowed)
    command: str = ""
    extra: dict = field(default_factory=dict)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda requested but no CUDA device is available")
    return torch.device(name)


def library_versions() -> dict:
    import pytorch_msssim

    return {"python": platform.python_version(), "torch": str(torch.__version__), "numpy": str(np.__version__),
            "pytorch_msssim": getattr(pytorch_msssim, "__version__", "unknown")}


def ramp_noise(z_prime: torch.Tensor, plaintext: torch.Tensor, fraction: float) -> torch.Tensor:
    """Scale the circular received-minus-sent error by ``fraction`` (a training-only warm-up)."""
    if fraction >= 1.0:
        return z_prime
    return torch.remainder(plaintext + fraction * centered(z_prime - plaintext, P), P)


def run_through_link(model: DeepJscec, channel: SecureChannel, x: torch.Tensor, sigma_q: float,
                     snr_db: float, noise_fraction: float = 1.0) -> torch.Tensor:
    """One pass image → encoder → secure link → decoder, with the gradient skip of eq. 28."""
    z_bar, plaintext, latent_shape = model.encode(x, sigma_q)
    with torch.no_grad():
        z_prime = torch.from_numpy(channel.transmit(plaintext.cpu().numpy(), snr_db)["z_prime"])
        z_prime = ramp_noise(z_prime, plaintext.cpu().double(), noise_fraction).float().to(x.device)
    return model.decode(z_prime, latent_shape, out_size=x.shape[-2:], z_bar=z_bar)


@torch.no_grad()
def evaluate_psnr(model: DeepJscec, channel: SecureChannel, images_u8: np.ndarray, snr_db: float,
                  device, batch_size: int = 100) -> dict:
    model.eval()
    ps, ss = [], []
    for i in range(0, len(images_u8), batch_size):
        x = to_tensor(images_u8[i:i + batch_size], device)
        x_hat = run_through_link(model, channel, x, 200.0, snr_db)
        ps.append(psnr(x_hat, x))
        ss.append(ssim(x_hat, x))
    model.train()
    return {"psnr": float(torch.cat(ps).mean()), "ssim": float(torch.cat(ss).mean())}


def train(model_cfg: CodecConfig, cfg: TrainConfig, images: np.ndarray, split: dict, dataset_name: str,
          log=print) -> dict:
    """Train (or resume) and return the card of the best model."""
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    last = out.with_suffix(".last.pt")
    model = DeepJscec(model_cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.8, patience=cfg.patience_lr)
    state = {"step": 0, "epoch": 0, "best_psnr": -math.inf, "epochs_without_improvement": 0,
             "nonce": 0, "history": []}
    if cfg.resume and last.exists():
        ck = load_checkpoint(last, kind="bob-training")
        if CodecConfig.from_dict(ck["config"]) != model_cfg:
            raise UserError(f"{last} was trained with another model configuration; drop --resume or change --out")
        load_state(model, ck["state_dict"], last)
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        state.update(json.loads(ck["state_json"]))
        torch.set_rng_state(ck["torch_rng"])
        log(f"resumed from {last} at step {state['step']} (epoch {state['epoch']})")
    elif cfg.init:
        # Fine-tuning: the weights and the step count (so σ_q's schedule and the noise ramp go on from
        # there) of another Bob model of the same architecture; optimiser and epochs start afresh.
        ck = load_checkpoint(cfg.init, kind="bob")
        src = CodecConfig.from_dict(ck["config"])
        if replace(src, cipher_mode=model_cfg.cipher_mode, cipher_params=model_cfg.cipher_params) != model_cfg:
            raise UserError(f"--init {cfg.init} has another architecture or link than this run (its card: "
                            f"{src.to_dict()})")
        load_state(model, ck["state_dict"], cfg.init)
        state["step"] = int((ck.get("card") or {}).get("steps", 0))
        log(f"initialised from {cfg.init} ({src.cipher_mode}/{src.cipher_params}) at step {state['step']}")

    train_idx, val_idx = split["train"], split["val"][: cfg.val_size]
    channel = SecureChannel(model_cfg.cipher_mode, model_cfg.cipher_params, sigma_l=model_cfg.sigma_l,
                            seed=cfg.seed, first_nonce=state["nonce"])
    val_images = images[val_idx]
    rng = np.random.default_rng([cfg.seed, state["epoch"]])
    epoch_size = cfg.epoch_size or len(train_idx)
    steps_per_epoch = max(1, epoch_size // cfg.batch_size)
    t_start = time.time()
    stop_reason = "epochs"
    card = None

    for epoch in range(state["epoch"], cfg.epochs):
        order = rng.permutation(train_idx)[: steps_per_epoch * cfg.batch_size]
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}", leave=False, file=sys.stderr,
                   disable=not sys.stderr.isatty())
        running, steps_run = 0.0, 0
        for b in bar:
            batch = images[order[b * cfg.batch_size:(b + 1) * cfg.batch_size]]
            x = to_tensor(batch, device)
            flip = torch.rand(x.shape[0], device=device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            frac = min(1.0, (state["step"] + 1) / cfg.noise_ramp_steps) if cfg.noise_ramp_steps else 1.0
            x_hat = run_through_link(model, channel, x, sigma_q_schedule(state["step"]),
                                     model_cfg.snr_train_db, frac)
            loss = image_loss(x_hat, x, cfg.loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state["step"] += 1
            running += float(loss.detach())
            steps_run += 1
            bar.set_postfix(loss=f"{running / (b + 1):.4f}")
            if cfg.max_steps and state["step"] >= cfg.max_steps:
                break
        state["epoch"] = epoch + 1
        state["nonce"] = channel.next_nonce
        val = evaluate_psnr(model, SecureChannel(model_cfg.cipher_mode, model_cfg.cipher_params,
                                                 sigma_l=model_cfg.sigma_l, seed=10_000 + cfg.seed),
                            val_images, model_cfg.snr_train_db, device)
        sched.step(val["psnr"])
        improved = val["psnr"] > state["best_psnr"]
        state["history"].append({"epoch": epoch + 1, "step": state["step"], "train_loss": running / max(steps_run, 1),
                                 "val_psnr": val["psnr"], "val_ssim": val["ssim"], "lr": opt.param_groups[0]["lr"],
                                 "sigma_q": sigma_q_schedule(state["step"]), "minutes": (time.time() - t_start) / 60})
        log(f"epoch {epoch + 1} step {state['step']}: loss {running / max(steps_run, 1):.4f} "
            f"val PSNR {val['psnr']:.2f} dB SSIM {val['ssim']:.3f} lr {opt.param_groups[0]['lr']:.2e}"
            + (" *" if improved else ""))
        if improved:
            state["best_psnr"] = val["psnr"]
            state["epochs_without_improvement"] = 0
            card = {
                "kind": "bob", "dataset": dataset_name, "data_source": str(cfg.data or ""), "split_seed": cfg.split_seed,
                "split": {k: int(len(v)) for k, v in split.items()}, "rho": model_cfg.rho,
                "snr_train_db": model_cfg.snr_train_db, "cipher_mode": model_cfg.cipher_mode,
                "cipher_params": model_cfg.cipher_params, "width": model_cfg.width, "layout": model_cfg.layout,
                "decoder_input": model_cfg.decoder_input, "loss": cfg.loss, "batch_size": cfg.batch_size,
                "epochs": epoch + 1, "steps": state["step"],
                "validation": {"psnr": val["psnr"], "ssim": val["ssim"], "images": int(len(val_idx)),
                               "snr_db": model_cfg.snr_train_db},
                "command": cfg.command, "versions": library_versions(), "device": str(device),
                **({"init": str(cfg.init)} if cfg.init else {}),
                "config": model_cfg.to_dict(),
            }
            save_checkpoint(out, {"kind": "bob", "config": model_cfg.to_dict(), "state_dict": model.state_dict()}, card)
        else:
            state["epochs_without_improvement"] += 1
        save_checkpoint(last, {"kind": "bob-training", "config": model_cfg.to_dict(), "state_dict": model.state_dict(),
                               "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                               "state_json": json.dumps(state), "torch_rng": torch.get_rng_state()})
        if state["epochs_without_improvement"] >= cfg.patience_stop:
            stop_reason = "early stop"
            break
        if cfg.max_steps and state["step"] >= cfg.max_steps:
            stop_reason = "max steps"
            break
        if cfg.time_budget_min and (time.time() - t_start) / 60 >= cfg.time_budget_min:
            stop_reason = "time budget"
            break
    log(f"stopped ({stop_reason}) after {state['epoch']} epochs, {state['step']} steps; best val PSNR "
        f"{state['best_psnr']:.2f} dB")
    if card is None and out.exists():
        card = load_checkpoint(out).get("card")
    if card is not None:
        card["history"] = state["history"]
        card["stop_reason"] = stop_reason
        ck = load_checkpoint(out)
        save_checkpoint(out, {k: v for k, v in ck.items() if k not in ("format", "card")}, card)
    return card or {}
