"""SNR and MER estimation from known symbols (pilots), following eq. 2: SNR = P̄/σ² per complex symbol.

* :func:`mer_db` — the modulation error ratio of received symbols against the transmitted ones (the
  measured quantity the targets are stated in).
* :func:`snr_from_residuals` — the noise variance from the residuals y − ĥx at the pilots when ĥ was
  itself estimated from those pilots by a linear smoother H: E‖(I − H)r‖² = σ²·(n − 2·tr H + ‖H‖²_F),
  so dividing by that instead of n removes the optimism of fitting and testing on the same symbols.
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


def snr_from_residuals(residuals, n: int, trace: float, frobenius: float) -> float:
    """Unbiased σ² from pilot residuals r − Hr (unit-modulus pilots), see the module notes."""
    r = np.asarray(residuals)
    dof = n - 2.0 * trace + frobenius
    if dof <= 0:
        raise ValueError("the smoother leaves no degrees of freedom for the noise estimate")
    return float(np.sum(np.abs(r) ** 2) / dof)

