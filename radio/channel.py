"""Complex AWGN channel (eq. 2) in numpy: SNR = P̄/σ² per complex symbol, noise CN(0, σ²).

The noise has total variance σ² = P̄ / 10^(SNR/10), i.e. σ²/2 in each real dimension. (Adding real
noise of variance σ² to both parts — or normalising by the wrong power — is the classic DeepJSCC
reproduction bug that silently costs 3–5 dB; DESIGN.md.) ``signal_power`` is P̄, the mean symbol
power the SNR refers to: 1 for the unit-power constellations of this project.

The torch twin used by training is :mod:`models.channel`, with the same conventions.
"""
from __future__ import annotations

import numpy as np


def noise_variance(snr_db, signal_power=1.0):
    """Total complex noise variance σ² = signal_power / 10^(snr_db/10) (float, or array if given arrays)."""
    out = np.asarray(signal_power, dtype=np.float64) / 10.0 ** (np.asarray(snr_db, dtype=np.float64) / 10.0)
    return float(out) if out.ndim == 0 else out


def _generator(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise TypeError("awgn needs a seeded numpy Generator (or an integer seed), so runs can be replayed")
    return np.random.default_rng(rng)


def awgn(x, snr_db, rng, signal_power=1.0) -> np.ndarray:
    """``x`` plus CN(0, σ²) noise, σ² = signal_power / 10^(snr_db/10).

    ``x`` may be real or complex; the result is complex64 for single-precision input (complex64 or
    float32) and complex128 otherwise. ``snr_db`` (and ``signal_power``) may be arrays that
    broadcast against ``x`` (one SNR per frame, say); ``inf`` adds no noise. ``rng`` is a
    ``numpy.random.Generator`` (or an integer seed for a fresh one).
    """
    rng = _generator(rng)
    x = np.asarray(x)
    single = x.dtype in (np.complex64, np.float32)
    real = np.float32 if single else np.float64
    std = np.sqrt(np.asarray(noise_variance(snr_db, signal_power), dtype=np.float64) / 2.0)
    if np.any(std < 0) or np.any(np.isnan(std)):
        raise ValueError("snr_db and signal_power must give a non-negative noise variance")
    std = std.astype(real)
    shape = np.broadcast_shapes(x.shape, std.shape)
    noise = rng.standard_normal(shape + (2,), dtype=real)
    noise *= std[..., None]
    out = np.empty(shape, dtype=np.complex64 if single else np.complex128)
    out.real = noise[..., 0]
    out.imag = noise[..., 1]
    out += x
    return out


def measured_snr_db(clean, noisy) -> float:
    """Measured mean(|clean|²) / mean(|noisy − clean|²) in dB."""
    clean = np.asarray(clean).astype(np.complex128, copy=False)
    noisy = np.asarray(noisy).astype(np.complex128, copy=False)
    return float(10 * np.log10(np.mean(np.abs(clean) ** 2) / np.mean(np.abs(noisy - clean) ** 2)))
