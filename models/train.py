"""End-to-end training of DeepJSCEC through the cipher (paper Sec. V; issue 3).

encoder → quantiser (σ_q schedule, eq. 29) → cipher → 4096-QAM → AWGN at SNR_train → soft demap →
decrypt → decoder input → decoder, with the gradient skip of eq. 28. Adam (1e-4, betas 0.9/0.999);
the learning rate ×0.8 after 5 epochs without validation improvement; early stop after 10.

Two tasks share the loop: ``image`` (reconstruction loss, validated by PSNR) and ``classify``
(Sec. V-B: Table IV's networks, the cross-entropy loss of eq. 30, validated by accuracy; random
crops as well as flips).

Resumable: ``<out>.last.pt`` holds everything needed to continue (weights, optimiser, scheduler,
step, RNG states, nonce counter); ``--resume`` picks it up. The best-on-validation weights go to
``<out>`` with a JSON card beside it.

Scale-out: under ``torchrun`` (``WORLD_SIZE`` > 1) every process takes an equal slice of each global
batch and the model runs wrapped in DistributedDataParallel (gloo on CPU, nccl on CUDA). The channel
in the middle is not differentiable: the processes gather their plaintexts, each sends the whole
global batch through the same seeded link and keeps its own slice, so N processes compute what one
process computes with the same global batch. Augmentation is drawn per step from the seed, for the
same reason. Only rank 0 writes checkpoints and logs.
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
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from models.checkpoint import load_checkpoint, load_state, restore_training, save_checkpoint
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
    resume_lr: float = 0.0    # with resume: continue at this learning rate (0 = the saved one)
    init: str | None = None   # fine-tune: start from this Bob checkpoint's weights (another preset, mode or SNR_train)
    cosine_steps: int = 0     # anneal the learning rate from lr to 0 along a half cosine over this many steps (0 = off)
    ema: float = 0.0          # decay of an exponential moving average of the weights (0 = off); validated and saved
    weight_decay: float = 0.0  # decoupled weight decay (AdamW's), per unit of learning rate, on every parameter
    cutout: int = 0           # classify: blank one random square of this side in each training image (0 = off)
    freeze_encoder: bool = False  # train the decoder only (needs --init or --resume); the sent features stay
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


class SimulatedLink:
    """The numpy link in the middle of a training step: plaintext (B, k) → received z' (B, k).

    Under DDP the plaintexts of all processes are gathered, the whole global batch goes through the
    (identically seeded) channel in every process, and each keeps its own slice.
    """

    def __init__(self, channel: SecureChannel, snr_db: float, noise_fraction: float = 1.0):
        self.channel, self.snr_db, self.noise_fraction = channel, snr_db, noise_fraction

    @torch.no_grad()
    def __call__(self, plaintext: torch.Tensor) -> torch.Tensor:
        world, rank = _world()
        full = plaintext
        if world > 1:
            parts = [torch.empty_like(plaintext) for _ in range(world)]
            torch.distributed.all_gather(parts, plaintext.contiguous())
            full = torch.cat(parts)
        z_prime = torch.from_numpy(self.channel.transmit(full.cpu().numpy(), self.snr_db)["z_prime"])
        z_prime = ramp_noise(z_prime, full.cpu().double(), self.noise_fraction).float()
        b = plaintext.shape[0]
        return z_prime[rank * b:(rank + 1) * b].to(plaintext.device)


class ThroughLink(nn.Module):
    """One differentiable pass image → encoder → link → decoder, with the gradient skip of eq. 28.

    A module so that DistributedDataParallel sees the whole step in one ``forward``.
    """

    def __init__(self, model: DeepJscec):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, sigma_q: float, link) -> torch.Tensor:
        z_bar, plaintext, latent_shape = self.model.encode(x, sigma_q)
        return self.model.decode(link(plaintext), latent_shape, out_size=x.shape[-2:], z_bar=z_bar)


def run_through_link(model: DeepJscec, channel: SecureChannel, x: torch.Tensor, sigma_q: float,
                     snr_db: float, noise_fraction: float = 1.0) -> torch.Tensor:
    """One pass image → encoder → secure link → decoder (a single process)."""
    return ThroughLink(model)(x, sigma_q, SimulatedLink(channel, snr_db, noise_fraction))


def _world() -> tuple[int, int]:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def _init_distributed(device: torch.device) -> None:
    """Join the process group when started by ``torchrun`` (WORLD_SIZE > 1)."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def augment(batch_u8: np.ndarray, rng: np.random.Generator, crop: bool, cutout: int = 0) -> np.ndarray:
    """Random horizontal flips (and, for classification, random 32×32 crops of a 4-pixel reflected pad).

    ``cutout`` > 0 then fills one square of that side per image with mid grey; its centre is uniform over
    the image, so the square may stick out of it (Cutout, DeVries & Taylor 2017).
    """
    flip = rng.random(len(batch_u8)) < 0.5
    out = np.where(flip[:, None, None, None], batch_u8[:, :, ::-1], batch_u8)
    h, w = out.shape[1:3]
    if crop:
        padded = np.pad(out, ((0, 0), (4, 4), (4, 4), (0, 0)), mode="reflect")
        dy, dx = rng.integers(0, 9, len(out)), rng.integers(0, 9, len(out))
        out = np.stack([padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(len(out))])
    if cutout:
        out = out.copy()
        cy, cx = rng.integers(0, h, len(out)), rng.integers(0, w, len(out))
        top, left = cy - cutout // 2, cx - cutout // 2
        for i in range(len(out)):
            out[i, max(0, top[i]):top[i] + cutout, max(0, left[i]):left[i] + cutout] = 128
    return np.ascontiguousarray(out)


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


@torch.no_grad()
def evaluate_accuracy(model: DeepJscec, channel: SecureChannel, images_u8: np.ndarray, labels: np.ndarray,
                      snr_db: float, device, batch_size: int = 100) -> dict:
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(images_u8), batch_size):
        x = to_tensor(images_u8[i:i + batch_size], device)
        y = torch.as_tensor(labels[i:i + batch_size], device=device)
        logits = run_through_link(model, channel, x, 200.0, snr_db)
        correct += int((logits.argmax(1) == y).sum())
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
    model.train()
    return {"accuracy": correct / len(images_u8), "loss": loss / len(images_u8)}


def validate(model, model_cfg, images, labels, device, seed: int = 0) -> dict:
    """Validation at SNR_train on a fixed link (that of a run with this ``seed``); ``score`` is what "best"
    maximises (PSNR or accuracy)."""
    link = SecureChannel(model_cfg.cipher_mode, model_cfg.cipher_params, sigma_l=model_cfg.sigma_l,
                         seed=10_000 + seed)
    if model_cfg.task == "classify":
        val = evaluate_accuracy(model, link, images, labels, model_cfg.snr_train_db, device)
        return dict(val, score=val["accuracy"])
    val = evaluate_psnr(model, link, images, model_cfg.snr_train_db, device)
    return dict(val, score=val["psnr"])


def describe_validation(val: dict) -> str:
    if "accuracy" in val:
        return f"val accuracy {100 * val['accuracy']:.2f} % (CE {val['loss']:.3f})"
    return f"val PSNR {val['psnr']:.2f} dB SSIM {val['ssim']:.3f}"


def cosine_lr(cosine: dict, step: int) -> float:
    """The learning rate at ``step`` of a half-cosine annealing ``{"start", "steps", "lr"}`` (0 after its end)."""
    t = min(1.0, max(0.0, (step - cosine["start"]) / cosine["steps"]))
    return 0.5 * cosine["lr"] * (1.0 + math.cos(math.pi * t))


def _weight_average(model: nn.Module, cfg: TrainConfig, resumed: dict | None, log):
    """The exponential moving average of the weights (``--ema``), continued from the ``resumed`` training
    checkpoint when there is one.

    Validation and the saved best model use the average; training steps still update ``model``.
    A resumed run whose checkpoint has no average (or one of another decay) starts it from the current weights.
    """
    if not cfg.ema:
        return None
    if not 0.0 < cfg.ema < 1.0:
        raise UserError(f"--ema must lie between 0 and 1 (a decay such as 0.999), not {cfg.ema}")
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
    if resumed is not None and resumed.get("ema_decay") == cfg.ema and "ema_state_dict" in resumed:
        averaged.load_state_dict(resumed["ema_state_dict"])
        log(f"weight average (EMA {cfg.ema}) continued over {int(averaged.n_averaged)} steps")
        return averaged
    log(f"weight average (EMA {cfg.ema}) starts from the current weights")
    return averaged


def train(model_cfg: CodecConfig, cfg: TrainConfig, images: np.ndarray, split: dict, dataset_name: str,
          log=print, labels: np.ndarray | None = None) -> dict:
    """Train (or resume) and return the card of the best model (``labels`` needed for ``classify``)."""
    device = pick_device(cfg.device)
    _init_distributed(device)
    world, rank = _world()
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", rank % torch.cuda.device_count())
    if cfg.batch_size % world:
        raise UserError(f"--batch-size {cfg.batch_size} must be a multiple of the {world} processes")
    if rank:
        log = lambda *_: None  # noqa: E731 - only rank 0 speaks
    classify = model_cfg.task == "classify"
    if classify and labels is None:
        raise UserError("classification needs a labelled dataset")
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    last = out.with_suffix(".last.pt")
    model = DeepJscec(model_cfg).to(device)
    if cfg.weight_decay < 0 or cfg.cutout < 0:
        raise UserError("--weight-decay and --cutout must not be negative")
    if cfg.cutout and not classify:
        raise UserError("--cutout is for --task classify (the image task reconstructs what it is shown)")
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.8, patience=cfg.patience_lr)
    state = {"step": 0, "epoch": 0, "best_psnr": -math.inf, "epochs_without_improvement": 0,
             "nonce": 0, "history": []}
    resumed = None
    if cfg.resume and last.exists():
        ck = resumed = load_checkpoint(last, kind="bob-training")
        if CodecConfig.from_dict(ck["config"]) != model_cfg:
            raise UserError(f"{last} was trained with another model configuration; drop --resume or change --out")
        restore_training(ck, last, model, opt, sched, state, log)
        if cfg.resume_lr:   # a step of the learning-rate schedule taken by hand
            for group in opt.param_groups:
                group["lr"] = cfg.resume_lr
            log(f"learning rate set to {cfg.resume_lr:.2e}")
    elif cfg.init:
        # Fine-tuning: the weights and the step count (so σ_q's schedule and the noise ramp go on from
        # there) of another Bob model of the same architecture; optimiser and epochs start afresh.
        ck = load_checkpoint(cfg.init, kind="bob")
        src = CodecConfig.from_dict(ck["config"])
        if replace(src, cipher_mode=model_cfg.cipher_mode, cipher_params=model_cfg.cipher_params,
                   snr_train_db=model_cfg.snr_train_db) != model_cfg:
            raise UserError(f"--init {cfg.init} has another architecture or link than this run (its card: "
                            f"{src.to_dict()})")
        load_state(model, ck["state_dict"], cfg.init)
        state["step"] = int((ck.get("card") or {}).get("steps", 0))
        log(f"initialised from {cfg.init} ({src.cipher_mode}/{src.cipher_params}, SNR_train {src.snr_train_db} dB) "
            f"at step {state['step']}")

    if cfg.freeze_encoder:
        if not (resumed or cfg.init):
            raise UserError("--freeze-encoder needs a trained encoder: add --init CHECKPOINT (or --resume)")
        # Without gradients the encoder is neither updated nor decayed (Adam skips parameters whose grad is
        # None), so every checkpoint of this run sends exactly the init model's features.
        model.encoder.requires_grad_(False)
        log("encoder frozen: only the decoder is trained")
    for group in opt.param_groups:   # after any resume: this run's flags, not the saved ones, set the decay
        group["weight_decay"], group["decoupled_weight_decay"] = cfg.weight_decay, True
    if cfg.weight_decay:
        log(f"decoupled weight decay {cfg.weight_decay:g}")
    if cfg.cosine_steps < 0:
        raise UserError(f"--cosine takes a number of steps (0 = off), not {cfg.cosine_steps}")
    if cfg.cosine_steps and (not cfg.resume or cfg.resume_lr or "cosine" not in state):
        # A new annealing starts here: from --lr (or the rate the run stopped at) down to 0.
        state["cosine"] = {"start": state["step"], "steps": cfg.cosine_steps, "lr": opt.param_groups[0]["lr"]}
        log(f"learning rate annealed from {state['cosine']['lr']:.2e} to 0 over {cfg.cosine_steps} steps (cosine)")
    cosine = state.get("cosine") if cfg.cosine_steps else None
    averaged = _weight_average(model, cfg, resumed, log)
    step_module = ThroughLink(model)
    if world > 1:
        step_module = nn.parallel.DistributedDataParallel(
            step_module, device_ids=[device.index] if device.type == "cuda" else None)
    train_idx, val_idx = split["train"], split["val"][: cfg.val_size]
    # Scores on another validation set are not comparable: a resumed run that validates on more (or
    # fewer) images forgets its best score, so the next epoch's model becomes the best.
    before = state.get("val_images", min(1000, len(split["val"])))
    if state["step"] and cfg.resume and before != len(val_idx):
        state["best_psnr"], state["epochs_without_improvement"] = -math.inf, 0
        log(f"validation on {len(val_idx)} images instead of {before}: the best score so far is forgotten")
    state["val_images"] = int(len(val_idx))
    channel = SecureChannel(model_cfg.cipher_mode, model_cfg.cipher_params, sigma_l=model_cfg.sigma_l,
                            seed=cfg.seed, first_nonce=state["nonce"])
    val_images = images[val_idx]
    val_labels = labels[val_idx] if labels is not None else None
    rng = np.random.default_rng([cfg.seed, state["epoch"]])
    epoch_size = cfg.epoch_size or len(train_idx)
    steps_per_epoch = max(1, epoch_size // cfg.batch_size)
    local = cfg.batch_size // world
    t_start = time.time()
    stop_reason = "epochs"
    card = None

    for epoch in range(state["epoch"], cfg.epochs):
        order = rng.permutation(train_idx)[: steps_per_epoch * cfg.batch_size]
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}", leave=False, file=sys.stderr,
                   disable=rank > 0 or not sys.stderr.isatty())
        running, steps_run = 0.0, 0
        for b in bar:
            batch_idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            # The whole global batch is augmented identically in every process, then sliced.
            batch = augment(images[batch_idx], np.random.default_rng([cfg.seed, 7, state["step"]]), crop=classify,
                            cutout=cfg.cutout)
            mine = slice(rank * local, (rank + 1) * local)
            x = to_tensor(batch[mine], device)
            frac = min(1.0, (state["step"] + 1) / cfg.noise_ramp_steps) if cfg.noise_ramp_steps else 1.0
            out_t = step_module(x, sigma_q_schedule(state["step"]),
                                SimulatedLink(channel, model_cfg.snr_train_db, frac))
            if classify:
                loss = F.cross_entropy(out_t, torch.as_tensor(labels[batch_idx][mine], device=device))
            else:
                loss = image_loss(out_t, x, cfg.loss)
            if cosine:
                for group in opt.param_groups:
                    group["lr"] = cosine_lr(cosine, state["step"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if averaged is not None:
                averaged.update_parameters(model)
            state["step"] += 1
            running += float(loss.detach())
            steps_run += 1
            bar.set_postfix(loss=f"{running / (b + 1):.4f}")
            if cfg.max_steps and state["step"] >= cfg.max_steps:
                break
        state["epoch"] = epoch + 1
        state["nonce"] = channel.next_nonce
        # Every process validates on the same fixed link, so all take the same decisions.
        scored = averaged.module if averaged is not None else model
        val = validate(scored, model_cfg, val_images, val_labels, device, cfg.seed)
        if not cosine:
            sched.step(val["score"])
        improved = val["score"] > state["best_psnr"]
        metrics = ({"val_accuracy": val["accuracy"], "val_loss": val["loss"]} if classify
                   else {"val_psnr": val["psnr"], "val_ssim": val["ssim"]})
        state["history"].append({"epoch": epoch + 1, "step": state["step"], "train_loss": running / max(steps_run, 1),
                                 **metrics, "lr": opt.param_groups[0]["lr"],
                                 "sigma_q": sigma_q_schedule(state["step"]), "minutes": (time.time() - t_start) / 60})
        log(f"epoch {epoch + 1} step {state['step']}: loss {running / max(steps_run, 1):.4f} "
            f"{describe_validation(val)} "
            f"lr {opt.param_groups[0]['lr']:.2e}" + (" *" if improved else ""))
        if improved:
            state["best_psnr"] = val["score"]
            state["epochs_without_improvement"] = 0
            validation = {k: v for k, v in val.items() if k != "score"}
            card = {
                "kind": "bob", "task": model_cfg.task, "dataset": dataset_name, "data_source": str(cfg.data or ""),
                "split_seed": cfg.split_seed,
                "split": {k: int(len(v)) for k, v in split.items()}, "rho": model_cfg.rho,
                "snr_train_db": model_cfg.snr_train_db, "cipher_mode": model_cfg.cipher_mode,
                "cipher_params": model_cfg.cipher_params, "width": model_cfg.width, "layout": model_cfg.layout,
                "decoder_input": model_cfg.decoder_input, "loss": "cross-entropy" if classify else cfg.loss,
                "batch_size": cfg.batch_size, "processes": world, "epochs": epoch + 1, "steps": state["step"],
                "validation": dict(validation, images=int(len(val_idx)), snr_db=model_cfg.snr_train_db),
                "command": cfg.command, "versions": library_versions(), "device": str(device),
                **({"init": str(cfg.init)} if cfg.init else {}),
                **({"weight_average": {"ema_decay": cfg.ema}} if averaged is not None else {}),
                **({"regularisation": {"weight_decay": cfg.weight_decay, "cutout": cfg.cutout}}
                   if cfg.weight_decay or cfg.cutout else {}),
                **({"trained": "decoder only (encoder frozen)"} if cfg.freeze_encoder else {}),
                "config": model_cfg.to_dict(),
            }
            if rank == 0:
                save_checkpoint(out, {"kind": "bob", "config": model_cfg.to_dict(), "state_dict": scored.state_dict()},
                                card)
        else:
            state["epochs_without_improvement"] += 1
        if rank == 0:
            save_checkpoint(last, {"kind": "bob-training", "config": model_cfg.to_dict(),
                                   "state_dict": model.state_dict(), "optimizer": opt.state_dict(),
                                   "scheduler": sched.state_dict(), "state_json": json.dumps(state),
                                   "torch_rng": torch.get_rng_state(),
                                   **({"ema_decay": cfg.ema, "ema_state_dict": averaged.state_dict()}
                                      if averaged is not None else {})})
        out_of_time = bool(cfg.time_budget_min and (time.time() - t_start) / 60 >= cfg.time_budget_min)
        if world > 1:   # rank 0's clock decides, so no process waits for a collective the others skip
            flag = torch.tensor([int(out_of_time)], device=device)
            torch.distributed.broadcast(flag, 0)
            out_of_time = bool(flag.item())
        if cfg.patience_stop and state["epochs_without_improvement"] >= cfg.patience_stop:
            stop_reason = "early stop"
            break
        if cfg.max_steps and state["step"] >= cfg.max_steps:
            stop_reason = "max steps"
            break
        if out_of_time:
            stop_reason = "time budget"
            break
    best = f"{100 * state['best_psnr']:.2f} %" if classify else f"{state['best_psnr']:.2f} dB"
    log(f"stopped ({stop_reason}) after {state['epoch']} epochs, {state['step']} steps; best validation {best}")
    if rank == 0:
        if card is None and out.exists():
            card = load_checkpoint(out).get("card")
        if card is not None:
            card["history"] = state["history"]
            card["stop_reason"] = stop_reason
            ck = load_checkpoint(out)
            save_checkpoint(out, {k: v for k, v in ck.items() if k not in ("format", "card")}, card)
    if world > 1:
        torch.distributed.barrier()
    return card or {}
