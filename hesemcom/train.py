"""Training of Models 2 and 3 (the JSCC of Table II) and of Model 1's classifier; checkpoints and cards.

Schedule (the paper gives none): Adam, learning rate 5e-3 decayed by cosine to 0, batch 256, the channel SNR
of every training image drawn uniformly from [0, 25] dB (one model serves every SNR of Table III), seeded.
Model 1's classifier is trained on clean images plus ``j2k_images`` training images as its receiver sees them
(JPEG 2000 at Model 1's 48-byte budget, decoded: :func:`hesemcom.model1.coded_images`), Adam 2e-3, batch 128. Checkpoints: ``{data}-model{1,2,3}.pt``
(state dict + card: data set, epochs, seed, kernel, test accuracy without noise, seconds).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hesemcom.data import Split
from hesemcom.nets import Jscc, ResNetClassifier
from jscec.errors import UserError

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
SNR_RANGE = (0.0, 25.0)


@dataclass
class TrainConfig:
    model: int = 3              # 1, 2 or 3
    epochs: int = 10
    batch: int = 128
    lr: float = 3e-3
    kernel: int = 5
    seed: int = 0
    max_train: int | None = None  # use only the first N training images (tests)
    threads: int = 1
    j2k_images: int = 0         # model 1: add this many JPEG 2000-coded training images
    init: str | None = None     # start from this checkpoint


def to_tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(x, np.float32) / 255.0).unsqueeze(1)


def build(model: int, kernel: int = 5) -> torch.nn.Module:
    if model == 1:
        return ResNetClassifier()
    if model in (2, 3):
        return Jscc(he=model == 3, kernel=kernel)
    raise UserError(f"model {model}: choose 1, 2 or 3 (Model 4 is Model 3 on ciphertexts)")


def checkpoint_path(data_name: str, model: int, folder: Path | None = None) -> Path:
    return Path(folder or CHECKPOINTS) / f"{data_name}-model{model}.pt"


def train(split: Split, cfg: TrainConfig, out: Path | None = None, progress=None, coded=None) -> dict:
    """Train one model on ``split``; save it to ``out`` (default: the bundled checkpoint path); its card.
    ``coded``: Model 1's JPEG 2000-coded training images (uint8, the first ``j2k_images`` of the training set),
    computed here when not given."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    gen = torch.Generator().manual_seed(cfg.seed)
    net = build(cfg.model, cfg.kernel)
    if cfg.init:
        net.load_state_dict(torch.load(cfg.init, map_location="cpu", weights_only=False)["state"])
    xs, ys = split.x_train, split.y_train
    if cfg.max_train:
        xs, ys = xs[:cfg.max_train], ys[:cfg.max_train]
    if cfg.model == 1 and cfg.j2k_images:
        if coded is None:
            from hesemcom.model1 import coded_images

            coded = coded_images(xs[:cfg.j2k_images])
        xs, ys = np.concatenate([xs, coded[:cfg.j2k_images]]), np.concatenate([ys, ys[:cfg.j2k_images]])
    x, y = to_tensor(xs), torch.from_numpy(ys)
    steps = cfg.epochs * -(-len(x) // cfg.batch)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
    t0 = time.time()
    net.train()
    for ep in range(cfg.epochs):
        perm = torch.randperm(len(x), generator=gen)
        tot = 0.0
        for i in range(0, len(x), cfg.batch):
            idx = perm[i:i + cfg.batch]
            if cfg.model == 1:
                logits = net(x[idx])
            else:
                snr = torch.empty(len(idx)).uniform_(*SNR_RANGE, generator=gen)
                logits = net(x[idx], snr, gen)
            loss = F.cross_entropy(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(idx)
        if progress:
            progress(f"model {cfg.model} epoch {ep + 1}/{cfg.epochs}: loss {tot / len(x):.4f}")
    net.eval()
    card = {"data": split.name, **asdict(cfg), "train_images": len(x), "steps": steps,
            "seconds": round(time.time() - t0, 1), "clean_test_accuracy": accuracy(net, split.x_test, split.y_test)}
    path = Path(out) if out else checkpoint_path(split.name, cfg.model)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state": net.state_dict(), "card": card}, path)
    path.with_suffix(".json").write_text(json.dumps(card, indent=1) + "\n")
    return {**card, "path": str(path)}


def load_model(data_name: str, model: int, path: Path | None = None) -> tuple[torch.nn.Module, dict]:
    path = Path(path) if path else checkpoint_path(data_name, model)
    if not path.is_file():
        raise UserError(f"no checkpoint {path}: train it with `jscec hesemcom train --data-set {data_name} "
                        f"--model {model}`")
    blob = torch.load(path, map_location="cpu", weights_only=False)
    net = build(model, blob["card"].get("kernel", 5))
    net.load_state_dict(blob["state"])
    net.eval()
    return net, blob["card"]


@torch.no_grad()
def accuracy(net, x: np.ndarray, y: np.ndarray, snr_db=None, seed: int = 0, batch: int = 1000) -> float:
    """Accuracy on uint8 images (``snr_db`` None: no channel noise; Model 1's net ignores it)."""
    return float(np.mean(predict(net, x, snr_db, seed, batch) == np.asarray(y)))


@torch.no_grad()
def predict(net, x: np.ndarray, snr_db=None, seed: int = 0, batch: int = 1000) -> np.ndarray:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(x), batch):
        xb = to_tensor(x[i:i + batch])
        out.append((net(xb, snr_db, gen) if isinstance(net, Jscc) else net(xb)).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, int)
