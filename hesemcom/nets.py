"""Networks of Table II and Table III (torch; no GNU Radio).

:class:`Jscc` is the paper's Table II network: convolution to 1×28×28 (one k×k filter, zero padding k//2),
activation, pooling to 1×14×14, flatten to 196 features, power normalisation, the channel, a fully connected
layer to 10 class scores. ``he=True`` is Model 3 (square activation, average pooling: additions and
multiplications only, so it runs on CKKS ciphertexts); ``he=False`` is Model 2 (ReLU, max pooling).

Power normalisation is a fixed scale (not a per-image division, which CKKS cannot do): during training the
features are divided by the batch's RMS and a running mean of that RMS is kept (like batch norm); at test time
the stored scale makes the average feature power P̄ = 1 over the data, i.e. SNR = P̄/σ² with σ² = 10^(−SNR/10)
per real feature. Two real features make one complex channel use: 196 features = 98 complex symbols, noise
CN(0, σ²) per symbol = N(0, σ²/2) per real dimension against P̄/2 per real dimension, the same SNR.

:class:`ResNetClassifier` is Model 1's classifier of decoded images (a small ResNet: stem + 3 residual blocks).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

FEATURES = 196


def noise_std(snr_db) -> float:
    """σ per real feature at SNR (dB) for unit average feature power."""
    return float(10 ** (-float(snr_db) / 20))


class Jscc(nn.Module):
    def __init__(self, he: bool = True, kernel: int = 5):
        super().__init__()
        self.he, self.kernel = bool(he), int(kernel)
        self.conv = nn.Conv2d(1, 1, kernel, padding=kernel // 2)
        self.fc = nn.Linear(FEATURES, 10)
        self.register_buffer("rms", torch.ones(()))
        self.momentum = 0.05

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 1, 28, 28) in [0, 1] → power-normalised features (B, 196)."""
        y = self.conv(x)
        y = y * y if self.he else F.relu(y)
        y = F.avg_pool2d(y, 2) if self.he else F.max_pool2d(y, 2)
        z = y.flatten(1)
        if self.training:
            rms = z.pow(2).mean().sqrt()
            with torch.no_grad():
                self.rms.mul_(1 - self.momentum).add_(self.momentum * rms.detach())
            return z / rms
        return z / self.rms

    def classify(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(z)

    def forward(self, x: torch.Tensor, snr_db=None, generator: torch.Generator | None = None) -> torch.Tensor:
        z = self.features(x)
        if snr_db is not None:
            s = 10 ** (-torch.as_tensor(snr_db, dtype=z.dtype).reshape(-1, 1) / 20)
            z = z + s * torch.randn(z.shape, generator=generator, dtype=z.dtype)
        return self.classify(z)

    def he_params(self) -> dict:
        """What the CKKS evaluation needs, as float64 numpy: conv weight/bias with √(1/(4·rms)) folded in
        (so that the sum of 4 squares is the normalised feature), FC weight and bias."""
        if not self.he:
            raise ValueError("only the HE-friendly model (Model 3) runs on ciphertexts")
        a = np.sqrt(1.0 / (4.0 * float(self.rms)))
        w = self.conv.weight.detach().double().numpy()[0, 0] * a
        b = float(self.conv.bias.detach().double()) * a
        return {"conv_w": w, "conv_b": b, "fc_w": self.fc.weight.detach().double().numpy(),
                "fc_b": self.fc.bias.detach().double().numpy(), "kernel": self.kernel}


class _Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        return F.relu(self.b2(self.c2(y)) + self.skip(x))


class ResNetClassifier(nn.Module):
    """Model 1's receiver-side classifier: stem 16 → blocks 16, 32 (/2), 64 (/2) → global pool → 10."""

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(1, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        self.blocks = nn.Sequential(_Block(w, w, 1), _Block(w, 2 * w, 2), _Block(2 * w, 4 * w, 2))
        self.fc = nn.Linear(4 * w, 10)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))
