"""SNR and MER estimation from known symbols (pilots), following eq. 2: SNR = P̄/σ² per complex symbol.

* :func:`mer_db` — the modulation error ratio of received symbols against the transmitted ones (the
  measured quantity the targets are stated in).
* :func:`snr_from_residuals` — the noise variance from the residuals y − ĥx at the pilots when ĥ was
  itself estimated from those pilots by a linear smoother H: E‖(I − H)r‖² = σ²·(n − 2·tr H + ‖H‖²_F),
  so dividing by that instead of n removes the optimism of fitting and testing on the same symbols.
* :func:`smoother_dof` — those three numbers for an explicit smoother matrix.
* :func:`m2m4_snr_db` — a blind (non-data-aided) moment estimator for constant-modulus or QAM signals,
  useful on recordings whose pilots are unknown.
"""
from __future__ import annotations

import numpy as np


def mer_db(reference, received) -> float:
    """10·log10(Σ|x|² / Σ|y − x|²) over matching symbols."""
    x = np.asarray(reference)
    y = np.asarray(received)
    if x.shape != y.shape or x.size == 0:
        raise ValueError("reference and received must be non-empty and of the same shape")
    err = np.sum(np.abs(y - x) ** 2)
    return float(10 * np.log10(np.sum(np.abs(x) ** 2) / max(err, 1e-300)))


def smoother_dof(h: np.ndarray) -> tuple[int, float, float]:
    """(n, tr H, ‖H‖²_F) of a linear smoother matrix H (n × n) applied to the pilot ratios."""
    h = np.asarray(h)
    return h.shape[0], float(np.trace(h).real), float(np.sum(np.abs(h) ** 2))


def snr_from_residuals(residuals, n: int, trace: float, frobenius: float) -> float:
    """Unbiased σ² from pilot residuals r − Hr (unit-modulus pilots), see the module notes."""
    r = np.asarray(residuals)
    dof = n - 2.0 * trace + frobenius
    if dof <= 0:
        raise ValueError("the smoother leaves no degrees of freedom for the noise estimate")
    return float(np.sum(np.abs(r) ** 2) / dof)


def m2m4_snr_db(y, kurtosis: float = 1.0) -> float:
    """Blind SNR (dB) from the second and fourth moments (M2M4) of complex symbols.

    ``kurtosis`` is E|x|⁴/(E|x|²)² of the constellation: 1 for PSK, 1.32 for 16-QAM, ≈ 1.4 for large
    square QAM (4096-QAM: 1.3998). Returns +inf when the moments leave no room for noise.
    """
    y = np.asarray(y)
    m2 = np.mean(np.abs(y) ** 2)
    m4 = np.mean(np.abs(y) ** 4)
    ka, kw = float(kurtosis), 2.0
    # M2 = S + N, M4 = ka S² + 4SN + kw N²  → solve for S.
    a = ka + kw - 4.0
    b = (4.0 - 2.0 * kw) * m2
    c = kw * m2 * m2 - m4
    if abs(a) < 1e-12:
        s = -c / b
    else:
        disc = max(b * b - 4 * a * c, 0.0)
        s = (-b + np.sqrt(disc)) / (2 * a) if a > 0 else (-b - np.sqrt(disc)) / (2 * a)
    s = float(np.clip(s, 0.0, m2))
    nvar = m2 - s
    if nvar <= 0:
        return float("inf")
    if s <= 0:
        return float("-inf")
    return float(10 * np.log10(s / nvar))
