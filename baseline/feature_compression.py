"""Learned feature compression for remote classification: the digital baseline of the paper's Sec. V-B.

The network (Table IV, "Feature Compression Network"): Alice's encoder f maps an image x to features
z = f(x) of C = w channels at H/4 × W/4 (w × 8 × 8 for a 32×32 CIFAR-10 image; the encoder's last
attention block keeps w channels, :func:`models.classifier.classification_encoder` with ``cout = w``);
Bob's decoder g' (:class:`models.classifier.ClassificationDecoder`) maps the received features to
class logits. Between them the features are quantised, entropy coded
(:mod:`baseline.entropy_coder`), encrypted with AES-128-CTR, LDPC coded and sent on QAM
(:mod:`baseline.classify`).

Training (eqs. 31–32). Rounding has no gradient, so training replaces it by additive uniform noise

    z̃ = z + U(−0.5, 0.5)                                                           (eq. 31)

and the rate of the rounded features is estimated by a Gaussian-mixture PMF, K = 9 components per
channel c with learnable weights α_c = softmax(a_c), means μ_c and scales σ_c:

    P(z̃) = Σ_j α_cj [Φ((z̃ + 0.5 − μ_cj)/σ_cj) − Φ((z̃ − 0.5 − μ_cj)/σ_cj)]            (eq. 32's PMF)

(the paper writes it with the Gaussian tail Q = 1 − Φ; the two forms are equal). The loss is

    L = CE(g'(z̃), label) − λ · log₂ P(z̃)                                          (eq. 32)

with the rate term summed over an image's C·h·w features (bits per image) and averaged over the
batch, so λ is in nats of cross entropy per bit. At inference z̄ = round(z) and P(z̄) is the PMF the
entropy coder uses. Over all integers the PMF sums to exactly 1 (the Φ differences telescope).

Two ways to train (``quantiser``). ``noise`` is the paper's: the classifier and the mixture see z̃
as well. ``mixed`` (the default) keeps eq. 31 in the encoder's rate term but lets the classifier read
round(z) with a straight-through gradient, as it will at inference, and fits the mixture (same
family, K = 9) to the rounded symbols by maximum likelihood — the code length the range coder will
spend. Measured on CIFAR-10 (``tiny`` width, fine-tuned at λ = 3e-3 for 300 steps from the same
λ = 1e-4 model, validation with rounding): ``noise`` 20.0 % at 197.9 bits per image, ``mixed``
32.0 % at 62.6 bits — with ``noise`` the mixture fitted to z̃ overstates the rounded rate ~2× and
the classifier meets rounded inputs only at test time.

Numerics: each bin's mass is computed in the log domain from log Φ of whichever tail is smaller
(``log_ndtr``), so −log₂ P stays finite and has a gradient far in the tails; σ ≥ 0.11 (a channel
that is always 0 then costs ~1e-5 bits per feature).

Checkpoints hold the networks' weights as float16 (the bundled-size budget; :func:`load_feature_model`
converts back to float32) and the mixture's parameters as float32, so the encoder and the decoder of a
link compute the same PMF tables from the same file.
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from jscec.errors import UserError
from models.checkpoint import load_checkpoint, load_state, restore_training, save_checkpoint
from models.classifier import CLASSIFIER_WIDTHS, ClassificationDecoder, classification_encoder, pad_image
from models.images import to_tensor

#: Mixture components per channel (paper: K = 9).
MIXTURES = 9
#: Lower bound of every mixture scale σ.
SCALE_MIN = 0.11
#: What the classifier reads in training: z̃ (eq. 31, the paper) or round(z) with a straight-through gradient.
QUANTISERS = ("noise", "mixed")
KIND = "feature-compression"
TRAINING_KIND = "feature-compression-training"
LN2 = math.log(2.0)


@dataclass(frozen=True)
class FeatureConfig:
    """Architecture of a feature compression network (everything needed to rebuild it)."""

    width: int = 32            # encoder width w = feature channels C
    decoder_width: int = 16    # the decoder's base width d
    mixtures: int = MIXTURES   # K
    num_classes: int = 10
    image_channels: int = 3

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def preset(cls, width: str, **kw) -> "FeatureConfig":
        """From a :data:`models.classifier.CLASSIFIER_WIDTHS` name (``small``: w = 32, d = 16) or a number w."""
        if width in CLASSIFIER_WIDTHS:
            w, d = CLASSIFIER_WIDTHS[width]
        elif str(width).isdigit() and int(width) > 0:
            w, d = int(width), max(1, int(width) // 2)
        else:
            raise UserError(f"--width must be a positive number or one of {sorted(CLASSIFIER_WIDTHS)}, not {width!r}")
        return cls(width=w, decoder_width=d, **kw)


# --------------------------------------------------------------------------- the PMF of eq. 32

def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 − eˣ) for x < 0, accurate at both ends."""
    x = x.clamp(max=-1e-12)
    return torch.where(x > -LN2, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def log_bin_mass(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """log(Φ(hi) − Φ(lo)) for hi > lo, from the smaller tail (exact far out in either tail)."""
    flip = (lo + hi) > 0                 # right of the centre: Φ(hi) − Φ(lo) = Φ(−lo) − Φ(−hi)
    lo, hi = torch.where(flip, -hi, lo), torch.where(flip, -lo, hi)
    log_hi = torch.special.log_ndtr(hi)
    return log_hi + _log1mexp(torch.special.log_ndtr(lo) - log_hi)


def log_bin_mass_np(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """:func:`log_bin_mass` in float64 numpy (the entropy coder's tables)."""
    from scipy.special import log_ndtr

    flip = (lo + hi) > 0
    lo, hi = np.where(flip, -hi, lo), np.where(flip, -lo, hi)
    log_hi = log_ndtr(hi)
    x = np.minimum(log_ndtr(lo) - log_hi, -1e-300)
    with np.errstate(divide="ignore"):
        return log_hi + np.where(x > -LN2, np.log(-np.expm1(x)), np.log1p(-np.exp(np.maximum(x, -745.0))))


class GaussianMixturePmf(nn.Module):
    """Per-channel K-component Gaussian mixture, discretised to integer bins (eq. 32's P)."""

    def __init__(self, channels: int, mixtures: int = MIXTURES):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(channels, mixtures))
        spread = torch.linspace(-(mixtures // 2), mixtures // 2, mixtures) if mixtures > 1 else torch.zeros(1)
        self.means = nn.Parameter(spread.repeat(channels, 1))
        # σ = SCALE_MIN + softplus(raw): raw = 0.4 starts every σ near 1
        self.raw_scales = nn.Parameter(torch.full((channels, mixtures), 0.4))

    def parameters_np(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(α, μ, σ), each (C, K) float64."""
        with torch.no_grad():
            alpha = torch.softmax(self.logits.double(), dim=1)
            sigma = SCALE_MIN + F.softplus(self.raw_scales.double())
            return alpha.numpy().copy(), self.means.double().numpy().copy(), sigma.numpy().copy()

    def frozen(self) -> "GaussianMixturePmf":
        """The same mixture with its parameters detached (gradients reach z only)."""
        twin = GaussianMixturePmf.__new__(GaussianMixturePmf)
        nn.Module.__init__(twin)
        twin.logits, twin.means, twin.raw_scales = (self.logits.detach(), self.means.detach(),
                                                    self.raw_scales.detach())
        return twin

    def log2_pmf(self, z: torch.Tensor) -> torch.Tensor:
        """log₂ P(z) elementwise for features z (B, C, h, w) (real values: the noisy z̃ of eq. 31)."""
        c = z.shape[1]
        mu = self.means.view(1, c, 1, 1, -1)
        sigma = (SCALE_MIN + F.softplus(self.raw_scales)).view(1, c, 1, 1, -1)
        log_alpha = torch.log_softmax(self.logits, dim=1).view(1, c, 1, 1, -1)
        v = z.unsqueeze(-1)
        mass = log_bin_mass((v - 0.5 - mu) / sigma, (v + 0.5 - mu) / sigma)
        return torch.logsumexp(log_alpha + mass, dim=-1) / LN2


def log2_pmf_table(alpha: np.ndarray, mu: np.ndarray, sigma: np.ndarray, values: np.ndarray) -> np.ndarray:
    """log₂ P(v) (C, V) of integer ``values`` (V,) under each channel's mixture (float64)."""
    from scipy.special import logsumexp

    v = np.asarray(values, dtype=np.float64)[None, :, None]
    m, s = mu[:, None, :], sigma[:, None, :]
    mass = log_bin_mass_np((v - 0.5 - m) / s, (v + 0.5 - m) / s)
    with np.errstate(divide="ignore"):
        return logsumexp(np.log(alpha)[:, None, :] + mass, axis=-1) / LN2


# --------------------------------------------------------------------------- the network

class FeatureCompressionNet(nn.Module):
    """Encoder f (Table IV, C = w), the mixture PMF, and the classifier g' (Table IV)."""

    def __init__(self, config: FeatureConfig):
        super().__init__()
        self.config = config
        self.encoder = classification_encoder(config.image_channels, config.width, config.width)
        self.pmf = GaussianMixturePmf(config.width, config.mixtures)
        self.decoder = ClassificationDecoder(config.width, config.decoder_width, config.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """z = f(x): images (B, C, H, W) in [0, 1] → real features (B, w, ⌈H/4⌉, ⌈W/4⌉)."""
        return self.encoder(pad_image(x))

    def symbols(self, x: torch.Tensor) -> torch.Tensor:
        """z̄ = round(z) as int64 (what the entropy coder sends)."""
        return torch.round(self.features(x)).long()

    def classify(self, z: torch.Tensor) -> torch.Tensor:
        """g'(features) → class logits (B, classes); features may be z̃ or the decoded integers z̄."""
        return self.decoder(z.float())

    def forward(self, x: torch.Tensor, noisy: bool = True, quantiser: str = "noise"
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, bits per image −Σ log₂ P).

        Not ``noisy`` (inference): z̄ = round(z) for the classifier and the rate. ``noisy`` (training):

        * ``quantiser="noise"`` (the paper's): z̃ = z + U(−0.5, 0.5) (eq. 31) for both.
        * ``"mixed"``: the classifier reads round(z) with a straight-through gradient, as at inference;
          the rate the encoder sees is still −log₂ P(z̃) of eq. 31, with the mixture held fixed; the
          mixture itself is fitted to the rounded symbols (maximum likelihood of round(z), what the
          range coder spends): ``self.pmf_fit_bits`` (bits per image, gradients to the mixture only),
          which the training loop adds to the loss.
        """
        if quantiser not in QUANTISERS:
            raise UserError(f"unknown quantiser {quantiser!r}: choose one of {', '.join(QUANTISERS)}")
        z = self.features(x)
        if not noisy:
            zq = torch.round(z)
            return self.classify(zq), -self.pmf.log2_pmf(zq).sum(dim=(1, 2, 3))
        zt = z + torch.empty_like(z).uniform_(-0.5, 0.5)
        if quantiser == "noise":
            return self.classify(zt), -self.pmf.log2_pmf(zt).sum(dim=(1, 2, 3))
        frozen = self.pmf.frozen()
        bits = -frozen.log2_pmf(zt).sum(dim=(1, 2, 3))
        self.pmf_fit_bits = -self.pmf.log2_pmf(torch.round(z).detach()).sum(dim=(1, 2, 3))
        return self.classify(z + (torch.round(z) - z).detach()), bits


def half_state(model: FeatureCompressionNet) -> dict:
    """State dict with the networks' floating tensors as float16 and the PMF's as float32."""
    return {k: (v.half() if v.is_floating_point() and not k.startswith("pmf.") else v.clone())
            for k, v in model.state_dict().items()}


def load_feature_model(path, device="cpu") -> tuple[FeatureCompressionNet, dict]:
    """(model in eval mode, float32, card) from a feature compression checkpoint."""
    ck = load_checkpoint(path, kind=KIND)
    try:
        config = FeatureConfig.from_dict(ck["config"])
    except (KeyError, TypeError):
        raise UserError(f"checkpoint {path} has no feature compression configuration") from None
    model = FeatureCompressionNet(config)
    load_state(model, {k: v.float() if v.is_floating_point() else v for k, v in ck["state_dict"].items()}, path)
    return model.to(device).eval(), dict(ck.get("card") or {})


# --------------------------------------------------------------------------- training

@dataclass
class FeatureTrainConfig:
    """A training run of eq. 32 (one λ)."""

    lam: float = 2e-3          # λ, nats of cross entropy per bit per image
    data: str | None = None
    out: str = "runs/feature/model.pt"
    split_seed: int = 0
    seed: int = 0
    batch_size: int = 64
    lr: float = 1e-3
    quantiser: str = "mixed"   # what the classifier reads in training (QUANTISERS)
    pmf_lr_scale: float = 10.0  # the mixture's (α, μ, σ) learn this much faster than the networks
    epochs: int = 1000
    epoch_size: int = 10_000   # training images per epoch (0 = the whole training split)
    val_size: int = 1000
    max_steps: int = 0
    time_budget_min: float = 0.0
    patience_lr: int = 3
    patience_stop: int = 8
    resume: bool = False
    init: str | None = None    # fine-tune from this feature compression checkpoint (another λ)
    command: str = ""
    extra: dict = field(default_factory=dict)


@torch.no_grad()
def evaluate_rounded(model: FeatureCompressionNet, images_u8: np.ndarray, labels: np.ndarray, lam: float,
                     batch_size: int = 200) -> dict:
    """Accuracy, cross entropy and the PMF's bits per image with z̄ = round(z) (the coded features)."""
    was = model.training
    model.eval()
    correct, ce, bits = 0, 0.0, []
    for i in range(0, len(images_u8), batch_size):
        x = to_tensor(images_u8[i:i + batch_size], "cpu")
        y = torch.as_tensor(labels[i:i + batch_size])
        logits, b = model(x, noisy=False)
        correct += int((logits.argmax(1) == y).sum())
        ce += float(F.cross_entropy(logits, y, reduction="sum"))
        bits.append(b)
    model.train(was)
    bits = torch.cat(bits).double().numpy()
    n = len(images_u8)
    return {"accuracy": correct / n, "ce": ce / n, "bits_mean": float(bits.mean()),
            "bits_p50": float(np.percentile(bits, 50)), "bits_p95": float(np.percentile(bits, 95)),
            "bits_max": float(bits.max()), "loss": ce / n + lam * float(bits.mean())}


def _versions() -> dict:
    import platform

    import constriction  # noqa: F401 - the coder this model is meant for
    from importlib.metadata import version

    return {"python": platform.python_version(), "torch": str(torch.__version__), "numpy": str(np.__version__),
            "constriction": version("constriction")}


def train_feature_compression(config: FeatureConfig, cfg: FeatureTrainConfig, images: np.ndarray, labels: np.ndarray,
                              split: dict, dataset_name: str, log=print) -> dict:
    """Train (or resume, or fine-tune from ``cfg.init``) one λ of eq. 32; returns the best model's card.

    After every epoch: validation with rounding (accuracy, bits per image, L = CE + λ·bits); the
    weights with the lowest validation L go to ``cfg.out`` (float16 networks) with a JSON card, and
    ``<out>.last.pt`` holds everything needed for ``resume``. Adam (the mixture's parameters at
    ``pmf_lr_scale`` times the networks' rate, so the PMF follows the features); the learning rates ×0.5 after
    ``patience_lr`` epochs without improvement; stop after ``patience_stop``.
    """
    from models.train import augment

    if cfg.lam < 0:
        raise UserError(f"--lam must not be negative, got {cfg.lam}")
    if cfg.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {cfg.batch_size}")
    if images.shape[1] % 4 or images.shape[2] % 4:
        raise UserError(f"images of {images.shape[1]}×{images.shape[2]} do not divide into the encoder's ×4 grid")
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    last = out.with_suffix(".last.pt")
    model = FeatureCompressionNet(config)
    pmf = list(model.pmf.parameters())
    nets = [p for n, p in model.named_parameters() if not n.startswith("pmf.")]
    opt = torch.optim.Adam([{"params": nets, "lr": cfg.lr}, {"params": pmf, "lr": cfg.lr * cfg.pmf_lr_scale}])
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=cfg.patience_lr)
    state = {"step": 0, "epoch": 0, "best": math.inf, "epochs_without_improvement": 0, "history": []}
    if cfg.resume and last.exists():
        ck = load_checkpoint(last, kind=TRAINING_KIND)
        if FeatureConfig.from_dict(ck["config"]) != config:
            raise UserError(f"{last} was trained with another network; drop --resume or change --out")
        if float(ck.get("lam", cfg.lam)) != cfg.lam:
            raise UserError(f"{last} was trained with --lam {ck['lam']}; resume it with that λ or change --out")
        restore_training(ck, last, model, opt, sched, state, log)
    elif cfg.resume:
        log(f"nothing to resume at {last}: starting afresh")
    if cfg.init and not (cfg.resume and state["step"]):
        src, init_card = load_feature_model(cfg.init)
        if src.config != config:
            raise UserError(f"--init {cfg.init} is another network ({src.config.to_dict()}), not {config.to_dict()}")
        model.load_state_dict(src.state_dict())
        log(f"initialised from {cfg.init} (λ = {init_card.get('lambda')})")

    train_idx, val_idx = split["train"], split["val"][: cfg.val_size]
    val_images, val_labels = images[val_idx], labels[val_idx]
    epoch_size = min(cfg.epoch_size or len(train_idx), len(train_idx))
    steps_per_epoch = max(1, epoch_size // cfg.batch_size)
    t_start = time.time() - 60 * float(state.get("minutes", 0.0))
    t_run = time.time()
    stop_reason = "epochs"
    card = None
    from tqdm import tqdm

    for epoch in range(state["epoch"], cfg.epochs):
        rng = np.random.default_rng([cfg.seed, epoch])
        order = rng.permutation(train_idx)[: steps_per_epoch * cfg.batch_size]
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}", leave=False, file=sys.stderr,
                   disable=not sys.stderr.isatty())
        run_ce = run_bits = 0.0
        steps_run = 0
        for b in bar:
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            x = to_tensor(augment(images[idx], np.random.default_rng([cfg.seed, 7, state["step"]]), crop=True), "cpu")
            logits, bits = model(x, noisy=True, quantiser=cfg.quantiser)
            ce = F.cross_entropy(logits, torch.as_tensor(labels[idx]))
            loss = ce + cfg.lam * bits.mean()
            if cfg.quantiser == "mixed":   # fit the mixture to the rounded symbols (its own parameters only)
                loss = loss + model.pmf_fit_bits.mean() / (config.width * x.shape[2] * x.shape[3] / 16)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state["step"] += 1
            steps_run += 1
            run_ce += float(ce.detach())
            run_bits += float(bits.detach().mean())
            bar.set_postfix(ce=f"{run_ce / steps_run:.3f}", bits=f"{run_bits / steps_run:.0f}")
            if cfg.max_steps and state["step"] >= cfg.max_steps:
                break
        state["epoch"] = epoch + 1
        val = evaluate_rounded(model, val_images, val_labels, cfg.lam)
        sched.step(val["loss"])
        improved = val["loss"] < state["best"]
        state["minutes"] = (time.time() - t_start) / 60
        state["history"].append({"epoch": epoch + 1, "step": state["step"], "train_ce": run_ce / max(steps_run, 1),
                                 "train_bits": run_bits / max(steps_run, 1), **{f"val_{k}": v for k, v in val.items()},
                                 "lr": opt.param_groups[0]["lr"], "minutes": state["minutes"]})
        log(f"epoch {epoch + 1} step {state['step']}: train CE {run_ce / max(steps_run, 1):.3f} bits "
            f"{run_bits / max(steps_run, 1):.1f} | val accuracy {100 * val['accuracy']:.2f} % bits/image "
            f"{val['bits_mean']:.1f} (p95 {val['bits_p95']:.0f}) L {val['loss']:.4f} lr {opt.param_groups[0]['lr']:.1e}"
            + (" *" if improved else ""))
        if improved:
            state["best"] = val["loss"]
            state["epochs_without_improvement"] = 0
            card = {
                "kind": KIND, "task": "classify-baseline", "equations": "paper eqs. 31-32 (K = %d)" % config.mixtures,
                "lambda": cfg.lam, "quantiser": cfg.quantiser, "dataset": dataset_name, "data_source": str(cfg.data or ""),
                "split_seed": cfg.split_seed, "split": {k: int(len(v)) for k, v in split.items()},
                "width": config.width, "decoder_width": config.decoder_width,
                "feature_shape": [config.width, images.shape[1] // 4, images.shape[2] // 4],
                "batch_size": cfg.batch_size, "lr": cfg.lr, "epochs": epoch + 1, "steps": state["step"],
                "validation": dict(val, images=int(len(val_idx)), features="rounded"),
                "weights": "networks float16, mixture float32", "command": cfg.command, "versions": _versions(),
                **({"init": str(cfg.init)} if cfg.init else {}), "config": config.to_dict(),
            }
            save_checkpoint(out, {"kind": KIND, "config": config.to_dict(), "state_dict": half_state(model)}, card)
        else:
            state["epochs_without_improvement"] += 1
        save_checkpoint(last, {"kind": TRAINING_KIND, "config": config.to_dict(), "lam": cfg.lam,
                               "state_dict": model.state_dict(), "optimizer": opt.state_dict(),
                               "scheduler": sched.state_dict(), "state_json": json.dumps(state),
                               "torch_rng": torch.get_rng_state()})
        if state["epochs_without_improvement"] >= cfg.patience_stop:
            stop_reason = "early stop"
            break
        if cfg.max_steps and state["step"] >= cfg.max_steps:
            stop_reason = "max steps"
            break
        if cfg.time_budget_min and (time.time() - t_run) / 60 >= cfg.time_budget_min:
            stop_reason = "time budget"
            break
    log(f"stopped ({stop_reason}) after {state['epoch']} epochs, {state['step']} steps; best validation L "
        f"{state['best']:.4f}")
    if card is None and out.exists():
        card = load_checkpoint(out, kind=KIND).get("card")
    if card is not None:
        card = dict(card, history=state["history"], stop_reason=stop_reason)
        ck = load_checkpoint(out, kind=KIND)
        save_checkpoint(out, {k: v for k, v in ck.items() if k not in ("format", "card")}, card)
    return card or {}
