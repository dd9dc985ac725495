"""Image quality: PSNR (eq. 6), SSIM (eq. 7) and MS-SSIM (eq. 8) via pytorch-msssim, and the losses.

Tensors (B, C, H, W) in [0, 1] for the models; :func:`psnr_u8` and :func:`ssim_u8` take uint8-range
image arrays (N, H, W, C) as datasets and the digital baseline hold them.
"""
from __future__ import annotations

import numpy as np
import torch
from pytorch_msssim import ms_ssim as _ms_ssim
from pytorch_msssim import ssim as _ssim

#: The standard five MS-SSIM scale weights (Wang et al. 2003).
_MS_WEIGHTS = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]


def psnr(x_hat: torch.Tensor, x: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """Per-image PSNR in dB (eq. 6) for images in [0, peak], shape (B,)."""
    mse = ((x_hat.float() - x.float()) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(peak ** 2 / mse)


def ssim(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (eq. 7), shape (B,). The window shrinks for images smaller than 11 pixels."""
    win = min(11, min(x.shape[-2:]) // 2 * 2 - 1)
    return _ssim(x_hat.float(), x.float(), data_range=1.0, size_average=False, win_size=win)


def psnr_u8(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image PSNR in dB (eq. 6) of uint8-range images (N, H, W, C), peak 255, in float64: (N,).

    Images are uint8, or float in [0, 255] (e.g. a reconstruction not yet rounded).
    """
    mse = np.mean((np.asarray(a).astype(np.float64) - np.asarray(b).astype(np.float64)) ** 2, axis=(1, 2, 3))
    return 10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-10))


def ssim_u8(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image SSIM (:func:`ssim`) of uint8-range images (N, H, W, C), uint8 or float in [0, 255]: (N,) float64."""
    ta = torch.from_numpy(np.asarray(a, np.float32) / 255.0).permute(0, 3, 1, 2)
    tb = torch.from_numpy(np.asarray(b, np.float32) / 255.0).permute(0, 3, 1, 2)
    return ssim(ta, tb).numpy().astype(np.float64)


def ms_ssim_window(side: int) -> int:
    """The Gaussian window for MS-SSIM on an image side: 11, or the largest odd size whose five scales fit.

    pytorch-msssim asserts side > (win − 1)·2^4 whatever the number of weights, so images below 161
    pixels use a smaller window (64×64: 3).
    """
    win = 11
    while win > 3 and side <= (win - 1) * 16:
        win -= 2
    return win


def ms_ssim(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-image MS-SSIM (eq. 8) over the five standard scales, shape (B,); for ≥ 64×64 images."""
    side = min(x.shape[-2:])
    if side < 64:
        raise ValueError("MS-SSIM is reported for images of at least 64×64 only")
    return _ms_ssim(x_hat.float(), x.float(), data_range=1.0, size_average=False, weights=_MS_WEIGHTS,
                    win_size=ms_ssim_window(side))


def image_loss(x_hat: torch.Tensor, x: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Training loss: ``mse``, ``ssim`` (1 − SSIM) or ``msssim`` (1 − MS-SSIM, ≥ 64×64 only)."""
    if kind == "mse":
        return torch.mean((x_hat - x) ** 2)
    if kind == "ssim":
        return 1 - ssim(x_hat, x).mean()
    if kind == "msssim":
        return 1 - ms_ssim(x_hat, x).mean()
    raise ValueError(f"unknown loss {kind!r}")
