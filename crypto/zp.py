"""Arithmetic on Z_p, the ring shared by the cipher, the quantiser and the 4096-QAM alphabet.

Everything in Z_p is circular: distances, means and errors are taken as ``(x + p/2) mod p - p/2``.
The functions accept numpy arrays and torch tensors alike (they only use ``%`` and arithmetic).
"""
from __future__ import annotations

import numpy as np

#: Ciphertext modulus = QAM alphabet size (4096-QAM with the last 3 points unused). DESIGN.md.
P = 4093
#: Number of quantisation levels.
N_LEVELS = 16


def centered(x, p: int = P):
    """Map ``x`` to its circular representative in ``[-p/2, p/2)``."""
    return (x + p / 2) % p - p / 2


def circular_std(err, p: int = P) -> float:
    """Standard deviation of a circular error (taken about zero, after centring)."""
    e = np.asarray(centered(np.asarray(err, dtype=np.float64), p))
    return float(np.sqrt(np.mean(e ** 2)))


def centroids(p: int = P, n_levels: int = N_LEVELS) -> np.ndarray:
    """Quantiser centroids ``floor(i p / N)``, i = 0..N-1 (paper, Sec. IV-A)."""
    return (np.arange(n_levels, dtype=np.int64) * p) // n_levels
