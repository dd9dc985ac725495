"""Encoder f_θ and decoder g_φ of the paper's Fig. 2 and Table II.

Blocks (Fig. 2, after Cheng et al. 2020):
- ``ResidualBlock`` (RB): conv3×3 → LeakyReLU → conv3×3 → LeakyReLU, plus identity / 1×1 skip.
- ``ResidualBlockDown`` (RB stride 2): conv3×3/2 → LeakyReLU → conv3×3 → GDN, plus 1×1/2 skip.
- ``ResidualBlockUp`` (RB upsample): subpixel conv3×3 → LeakyReLU → conv3×3 → IGDN, plus subpixel skip.
- ``AttentionBlock``: Cheng et al.'s simplified attention, x + trunk(x) · sigmoid(mask(x)).

Two layouts: ``cifar`` (downsampling ×4, two stride-2 blocks) and ``tiny`` (×16, four). All
convolutional, so a model trained on 32×32 images codes any size; ``JscecAutoencoder`` pads inputs
whose sides are not multiples of the downsampling factor (replicate padding) and crops the output.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from models.presets import DOWNSAMPLING, WIDTH_PRESETS  # noqa: F401 - re-exported


class GDN(nn.Module):
    """Generalised divisive normalisation (Ballé et al.): y = x / sqrt(β + γ·x²); inverse multiplies."""

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = inverse
        self.beta_min = beta_min
        # Parameters are stored as square roots to keep β, γ ≥ 0 (a common reparameterisation).
        self.beta_sqrt = nn.Parameter(torch.ones(channels))
        self.gamma_sqrt = nn.Parameter(torch.sqrt(gamma_init * torch.eye(channels) + 1e-12))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta = self.beta_sqrt ** 2 + self.beta_min
        gamma = (self.gamma_sqrt ** 2).unsqueeze(-1).unsqueeze(-1)
        norm = torch.sqrt(F.conv2d(x * x, gamma, beta))
        return x * norm if self.inverse else x / norm


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


def subpixel_conv3x3(cin: int, cout: int, upscale: int = 2) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout * upscale ** 2, 3, padding=1), nn.PixelShuffle(upscale))


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(conv3x3(cin, cout), nn.LeakyReLU(inplace=True),
                                  conv3x3(cout, cout), nn.LeakyReLU(inplace=True))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        return self.body(x) + self.skip(x)


class ResidualBlockDown(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(conv3x3(cin, cout, stride=2), nn.LeakyReLU(inplace=True),
                                  conv3x3(cout, cout), GDN(cout))
        self.skip = nn.Conv2d(cin, cout, 1, stride=2)

    def forward(self, x):
        return self.body(x) + self.skip(x)


class ResidualBlockUp(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(subpixel_conv3x3(cin, cout), nn.LeakyReLU(inplace=True),
                                  conv3x3(cout, cout), GDN(cout, inverse=True))
        self.skip = subpixel_conv3x3(cin, cout)

    def forward(self, x):
        return self.body(x) + self.skip(x)


class _ResidualUnit(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        half = max(ch // 2, 1)
        self.body = nn.Sequential(nn.Conv2d(ch, half, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(half, half, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(half, ch, 1))

    def forward(self, x):
        return F.relu(x + self.body(x))


class AttentionBlock(nn.Module):
    """Simplified attention of Cheng et al. 2020; a 1×1 conv adapts ``cin`` → ``cout`` when they differ."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.adapt_in = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        self.trunk = nn.Sequential(*[_ResidualUnit(cout) for _ in range(3)])
        self.mask = nn.Sequential(*[_ResidualUnit(cout) for _ in range(3)], nn.Conv2d(cout, cout, 1))

    def forward(self, x):
        x = self.adapt_in(x)
        return x + self.trunk(x) * torch.sigmoid(self.mask(x))


def _encoder_layers(layout: str, cin: int, width: int, cout: int) -> list[nn.Module]:
    w = width
    if layout == "cifar":
        return [ResidualBlockDown(cin, w), ResidualBlock(w, w), ResidualBlock(w, w), ResidualBlock(w, w),
                AttentionBlock(w, w), ResidualBlockDown(w, w), ResidualBlock(w, w), ResidualBlock(w, w),
                ResidualBlock(w, w), AttentionBlock(w, cout)]
    if layout == "tiny":
        return [ResidualBlockDown(cin, w), ResidualBlock(w, w), ResidualBlockDown(w, w), AttentionBlock(w, w),
                ResidualBlock(w, w), ResidualBlockDown(w, w), ResidualBlock(w, w), ResidualBlockDown(w, w),
                ResidualBlock(w, w), AttentionBlock(w, cout)]
    raise ValueError(f"unknown layout {layout!r}")


def _decoder_layers(layout: str, cin: int, width: int, cout: int) -> list[nn.Module]:
    w = width
    if layout == "cifar":
        return [AttentionBlock(cin, w), ResidualBlock(w, w), ResidualBlock(w, w), ResidualBlock(w, w),
                ResidualBlockUp(w, w), AttentionBlock(w, w), ResidualBlock(w, w), ResidualBlock(w, w),
                ResidualBlock(w, w), ResidualBlockUp(w, cout)]
    if layout == "tiny":
        return [AttentionBlock(cin, w), ResidualBlock(w, w), ResidualBlockUp(w, w), ResidualBlock(w, w),
                ResidualBlockUp(w, w), AttentionBlock(w, w), ResidualBlock(w, w), ResidualBlockUp(w, w),
                ResidualBlock(w, w), ResidualBlockUp(w, cout)]
    raise ValueError(f"unknown layout {layout!r}")


def latent_channels(rho: float, layout: str, image_channels: int = 3) -> int:
    """C_out from the bandwidth ratio: k = ρ·H·W·C symbols = (H/f)(W/f)·C_out, so C_out = ρ·C·f²."""
    f = DOWNSAMPLING[layout]
    c_out = rho * image_channels * f * f
    if abs(c_out - round(c_out)) > 1e-9 or round(c_out) < 1:
        raise ValueError(f"rho={rho} gives a non-integer number of latent channels ({c_out}) for layout {layout}")
    return int(round(c_out))


class Encoder(nn.Module):
    """f_θ: image in [0, 1] → latent z (real, in centroid spacings)."""

    def __init__(self, layout: str, width: int, latent_ch: int, image_channels: int = 3):
        super().__init__()
        self.net = nn.Sequential(*_encoder_layers(layout, image_channels, width, latent_ch))

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    """g_φ: decoder input features (B, C_in, h, w) → image in [0, 1]."""

    def __init__(self, layout: str, width: int, in_ch: int, image_channels: int = 3):
        super().__init__()
        self.net = nn.Sequential(*_decoder_layers(layout, in_ch, width, image_channels))

    def forward(self, feats):
        return torch.sigmoid(self.net(feats))


def pad_to_multiple(x: torch.Tensor, factor: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad the bottom/right so H and W are multiples of ``factor``; returns the original size."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % factor, (-w) % factor
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (h, w)
