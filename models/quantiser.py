"""Quantiser and soft dequantiser on the circle of N centroids (paper Sec. IV-A, eqs. 16–18, 29).

Units: the encoder's output ``z`` is measured in *centroid spacings* (p/N in Z_p), so that centroid
``i`` sits at ``i`` and the hardness parameters σ_q and the eq. 16 temperature act on distances of
order one. Because the ciphertext lives in Z_p, the N centroids lie on a circle: distances are
circular, ``centered(a - b, N)``.

- Hard quantisation (forward): nearest centroid on the circle.
- Soft quantisation (eq. 17): softmax(−σ_q d²) over the circular offsets to each centroid. The
  weighted offsets are added to ``z`` so the soft value is continuous across the wrap.
- Eq. 18: the hard value is returned in the forward pass, the soft value's gradient in the backward.
- Eq. 29 as printed compounds; we use σ_q(i) = min(200, 5 + 5·⌊i/2000⌋) (DESIGN.md).
"""
from __future__ import annotations

import math

import torch

from crypto.zp import N_LEVELS, P


def sigma_q_schedule(step: int) -> float:
    """Quantiser hardness at parameter-update ``step`` (eq. 29, non-compounding reading)."""
    return float(min(200.0, 5.0 + 5.0 * (step // 2000)))


def circular_offsets(z: torch.Tensor, n_levels: int = N_LEVELS) -> torch.Tensor:
    """Offsets ``centered(q_j − z, N)`` from ``z`` to every centroid, shape ``z.shape + (N,)``."""
    q = torch.arange(n_levels, dtype=z.dtype, device=z.device)
    return torch.remainder(q - z.unsqueeze(-1) + n_levels / 2, n_levels) - n_levels / 2


def soft_quantise(z: torch.Tensor, sigma_q: float, n_levels: int = N_LEVELS) -> torch.Tensor:
    """Eq. 17 on the circle: ``z + Σ_j softmax(−σ_q d_j²) δ_j`` with δ_j the circular offsets."""
    delta = circular_offsets(z, n_levels)
    w = torch.softmax(-sigma_q * delta ** 2, dim=-1)
    return z + (w * delta).sum(-1)


def hard_quantise(z: torch.Tensor) -> torch.Tensor:
    """Nearest centroid on the circle, kept unwrapped next to ``z`` (centroids sit at the integers)."""
    return torch.round(z)


def quantise(z: torch.Tensor, sigma_q: float, n_levels: int = N_LEVELS) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 18: returns ``(z_bar, index)``.

    ``z_bar`` has the hard value in the forward pass and the soft quantiser's gradient in the
    backward pass; it stays unwrapped next to ``z`` (so it is continuous for the decoder's gradient
    skip). ``index`` ∈ {0..N−1} is the centroid number that the cipher receives.
    """
    hard = hard_quantise(z)
    soft = soft_quantise(z, sigma_q, n_levels)
    z_bar = soft + (hard - soft).detach()
    index = torch.remainder(hard, n_levels).long()
    return z_bar, index


def index_to_zp(index, p: int = P, n_levels: int = N_LEVELS):
    """Centroid number → plaintext value ``floor(i p / N)`` in Z_p (Sec. IV-A)."""
    return (index * p) // n_levels


def zp_to_spacing(z_prime, p: int = P, n_levels: int = N_LEVELS):
    """A (real-valued) Z_p value → position on the circle of N centroids, in centroid spacings."""
    return z_prime * (n_levels / p)


def soft_dequantise(z_prime_spacing: torch.Tensor, n_levels: int = N_LEVELS,
                    temperature: float = 1.0) -> torch.Tensor:
    """Eq. 16 with circular distance: the softmax(−d'²)-weighted circular mean of the centroids.

    Input and output are in centroid spacings; the output lies in [0, N).
    """
    delta = circular_offsets(z_prime_spacing, n_levels)
    w = torch.softmax(-temperature * delta ** 2, dim=-1)
    return torch.remainder(z_prime_spacing + (w * delta).sum(-1), n_levels)


def soft_dequantise_weights(z_prime_spacing: torch.Tensor, n_levels: int = N_LEVELS,
                            temperature: float = 1.0) -> torch.Tensor:
    """The N soft-dequantisation weights of eq. 16 (a circular decoder representation)."""
    delta = circular_offsets(z_prime_spacing, n_levels)
    return torch.softmax(-temperature * delta ** 2, dim=-1)


def circle_features(value_spacing: torch.Tensor, n_levels: int = N_LEVELS) -> torch.Tensor:
    """(cos, sin) of the angle ``2π v / N``: the decoder's circular input (DESIGN.md, training notes)."""
    angle = value_spacing * (2 * math.pi / n_levels)
    return torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1)
