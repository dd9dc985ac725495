"""The DeepJSCEC codec: image ↔ Z_p plaintext symbols, and the decoders of Bob and Eve.

Data flow (DESIGN.md): x ─f_θ→ z ─quantise→ z̄ ∈ Z_p^k ─encrypt→ c ─QAM→ channel → soft demap → ĉ
─decrypt→ z' ─g_φ→ x̂. Encryption, modulation and the channel are not differentiable; the gradient
reaching the decoder input is passed to z̄ unchanged (eq. 28).

Decoder inputs (``decoder_input``):
- ``circular`` (default): (cos, sin) of z' on the circle of N centroids. The received plaintext lives
  in Z_p and the decryption noise often wraps 0 ↔ p−1, so a scalar input jumps (DESIGN.md).
- ``eq16``: the paper's scalar soft dequantisation ẑ (eq. 16, circular distance), scaled to [−1, 1).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from models.classifier import ClassificationDecoder, circle_of_zp, classification_encoder
from models.networks import DOWNSAMPLING, WIDTH_PRESETS, Decoder, Encoder, latent_channels, pad_to_multiple
from models.quantiser import (circle_features, index_to_zp, quantise, soft_dequantise, zp_to_spacing)
from crypto.zp import N_LEVELS

DECODER_INPUTS = ("circular", "eq16")


@dataclass
class CodecConfig:
    """Everything that fixes a model's architecture and the link it was trained for (its card)."""

    layout: str = "cifar"
    width: int = WIDTH_PRESETS["small"]
    rho: float = 1 / 6
    image_channels: int = 3
    snr_train_db: float = 10.0
    cipher_mode: str = "lwe"
    cipher_params: str = "lp-192"
    decoder_input: str = "circular"
    sigma_l: float = 1.0
    #: ``image`` (Table II: the decoder reconstructs the image) or ``classify`` (Table IV: the decoder
    #: gives class logits; ``width`` is the encoder's w and ``decoder_width`` the decoder's d).
    task: str = "image"
    decoder_width: int = 0
    num_classes: int = 10

    @property
    def latent_ch(self) -> int:
        return latent_channels(self.rho, self.layout, self.image_channels)

    @property
    def decoder_in_ch(self) -> int:
        return 2 * self.latent_ch if self.decoder_input == "circular" else self.latent_ch

    @property
    def downsampling(self) -> int:
        return DOWNSAMPLING[self.layout]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CodecConfig":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


def decoder_features(received_spacing: torch.Tensor, z_bar: torch.Tensor | None, decoder_input: str) -> torch.Tensor:
    """Decoder input from the received plaintext (in centroid spacings), shaped (B, C_in, h, w).

    When ``z_bar`` (the transmitted hard value, carrying the quantiser's gradient) is given, the
    forward value is the received one and the backward gradient flows into ``z_bar`` (eq. 28).
    """
    if decoder_input == "circular":
        feats = circle_features(received_spacing)
        if z_bar is not None:
            sent = circle_features(z_bar)
            feats = sent + (feats - sent).detach()
        b, c, h, w, two = feats.shape
        return feats.permute(0, 1, 4, 2, 3).reshape(b, c * two, h, w)
    if decoder_input == "eq16":
        z_hat = soft_dequantise(received_spacing)
        if z_bar is not None:
            offset = torch.remainder(z_hat - z_bar + N_LEVELS / 2, N_LEVELS) - N_LEVELS / 2
            z_hat = torch.remainder(z_bar + offset.detach(), N_LEVELS)
        return z_hat * (2.0 / N_LEVELS) - 1.0
    raise ValueError(f"unknown decoder input {decoder_input!r}")


def _erase(feats: torch.Tensor, erased: torch.Tensor | None, latent_shape) -> torch.Tensor:
    """Zero the features of erased latent symbols (each symbol owns feats.shape[1] // C channels)."""
    if erased is None:
        return feats
    keep = (~erased.bool()).to(feats.dtype).reshape(erased.shape[0], *latent_shape)
    per = feats.shape[1] // latent_shape[0]
    return feats * keep.repeat_interleave(per, dim=1)


class _ClassificationEncoder(nn.Module):
    def __init__(self, config: CodecConfig):
        super().__init__()
        self.net = classification_encoder(config.image_channels, config.width, config.latent_ch)

    def forward(self, x):
        return self.net(x)


def _check_task(config: CodecConfig) -> None:
    if config.task not in ("image", "classify"):
        raise ValueError(f"unknown task {config.task!r}")
    if config.task == "classify" and (config.layout != "cifar" or config.decoder_width < 1):
        raise ValueError("a classification model needs layout 'cifar' (×4) and a decoder width")


class DeepJscec(nn.Module):
    """Bob's model: encoder f_θ, quantiser, and decoder g_φ (the cipher and channel sit outside).

    For ``task == "classify"`` the networks are Table IV's and :meth:`decode` returns class logits.
    """

    def __init__(self, config: CodecConfig):
        super().__init__()
        _check_task(config)
        self.config = config
        if config.task == "classify":
            self.encoder = _ClassificationEncoder(config)
            self.decoder = ClassificationDecoder(config.decoder_in_ch, config.decoder_width, config.num_classes)
        else:
            self.encoder = Encoder(config.layout, config.width, config.latent_ch, config.image_channels)
            self.decoder = Decoder(config.layout, config.width, config.decoder_in_ch, config.image_channels)

    def encode(self, x: torch.Tensor, sigma_q: float = 200.0):
        """Image (B, C, H, W) in [0, 1] → (z_bar with gradient, Z_p plaintext int64 (B, k), latent shape).

        Sides that are not multiples of the downsampling factor are padded (replicate).
        """
        x, _ = pad_to_multiple(x, self.config.downsampling)
        z = self.encoder(x)
        z_bar, index = quantise(z, sigma_q)
        plaintext = index_to_zp(index).reshape(index.shape[0], -1)
        return z_bar, plaintext, tuple(z.shape[1:])

    def decode(self, received_zp: torch.Tensor, latent_shape, out_size=None, z_bar=None,
               erased: torch.Tensor | None = None) -> torch.Tensor:
        """Received plaintext z' (B, k) real-valued in [0, p) → image (B, C, H, W), or logits (B, classes).

        ``erased`` (B, k) bool marks symbols of lost frames: their decoder features are set to 0, the
        centre of the circle (no information) for the circular input.
        """
        spacing = zp_to_spacing(received_zp.float().reshape(received_zp.shape[0], *latent_shape))
        feats = decoder_features(spacing, z_bar, self.config.decoder_input)
        feats = _erase(feats, erased, latent_shape)
        x_hat = self.decoder(feats)
        if out_size is not None and self.config.task == "image":
            x_hat = x_hat[..., : out_size[0], : out_size[1]]
        return x_hat


class EveDecoder(nn.Module):
    """Eve's decoder ḡ_ψ: the soft ciphertext ĉ → image (or class logits), with the architecture and
    size of Bob's decoder."""

    def __init__(self, config: CodecConfig):
        super().__init__()
        _check_task(config)
        self.config = config
        in_ch = 2 * config.latent_ch
        if config.task == "classify":
            self.decoder = ClassificationDecoder(in_ch, config.decoder_width, config.num_classes)
        else:
            self.decoder = Decoder(config.layout, config.width, in_ch, config.image_channels)

    def forward(self, c_hat: torch.Tensor, latent_shape, out_size=None, erased: torch.Tensor | None = None) -> torch.Tensor:
        x_hat = self.decoder(_erase(circle_of_zp(c_hat, latent_shape), erased, latent_shape))
        if out_size is not None and self.config.task == "image":
            x_hat = x_hat[..., : out_size[0], : out_size[1]]
        return x_hat
