"""Complex AWGN in torch (eq. 2), with the conventions of :mod:`radio.channel`.

SNR = P̄/σ² per complex symbol and the noise is CN(0, σ²): σ²/2 per real dimension. ``snr_db`` may be
a float or a tensor that broadcasts against the symbols (one SNR per image of a batch, for
SNR-adaptive training); ``signal_power`` likewise. The noise does not depend on ``x``, so gradients
reach ``x`` unchanged.
"""
from __future__ import annotations

import torch


def noise_variance(snr_db, signal_power=1.0, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """σ² = signal_power / 10^(snr_db/10) as a tensor."""
    snr = torch.as_tensor(snr_db, dtype=dtype, device=device)
    power = torch.as_tensor(signal_power, dtype=dtype, device=device)
    return power * torch.pow(torch.tensor(10.0, dtype=dtype, device=device), -snr / 10)


def awgn(x: torch.Tensor, snr_db, generator: torch.Generator | None = None, signal_power=1.0) -> torch.Tensor:
    """``x`` (complex tensor) plus CN(0, σ²) noise, σ² = signal_power / 10^(snr_db/10).

    ``snr_db`` and ``signal_power``: floats or tensors broadcastable to ``x``; ``inf`` adds no noise.
    """
    if not torch.is_complex(x):
        raise TypeError("awgn expects a complex tensor; use awgn_real_pairs for (..., 2) real tensors")
    real = x.real.dtype
    var = noise_variance(snr_db, signal_power, dtype=real, device=x.device)
    shape = torch.broadcast_shapes(x.shape, var.shape)
    # A complex standard normal has total variance 1 (1/2 per part): exactly CN(0, 1).
    noise = torch.randn(shape, generator=generator, dtype=x.dtype, device=x.device)
    return x + noise * torch.sqrt(var)


def awgn_real_pairs(x: torch.Tensor, snr_db, generator: torch.Generator | None = None,
                    signal_power=1.0) -> torch.Tensor:
    """The same channel for symbols stored as real (..., 2) tensors (in-phase, quadrature).

    ``snr_db`` and ``signal_power`` broadcast against ``x.shape[:-1]`` (one value per symbol).
    """
    if x.shape[-1] != 2 or torch.is_complex(x):
        raise ValueError("awgn_real_pairs expects a real tensor whose last dimension is 2")
    var = noise_variance(snr_db, signal_power, dtype=x.dtype, device=x.device)
    shape = torch.broadcast_shapes(x.shape[:-1], var.shape) + (2,)
    noise = torch.randn(shape, generator=generator, dtype=x.dtype, device=x.device)
    return x + noise * torch.sqrt(var / 2).unsqueeze(-1)


def measured_snr_db(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    """Measured mean(|clean|²) / mean(|noisy − clean|²) in dB (complex or (..., 2) real tensors)."""
    clean = clean.detach()
    noise = noisy.detach() - clean
    if torch.is_complex(clean):
        p_s, p_n = clean.abs().pow(2).mean(), noise.abs().pow(2).mean()
    else:
        p_s, p_n = clean.pow(2).sum(-1).mean(), noise.pow(2).sum(-1).mean()
    return float(10 * torch.log10(p_s.double() / p_n.double()))
