"""Keyed deterministic randomness for the cipher: sub-key derivation, AES-CTR keystreams, samplers.

Every secret random quantity of the cipher — the key matrices, the per-frame LWE errors, the masks —
is a pure function of (secret, label, nonce), so a replay with the same key file and frame nonce
reproduces it bit for bit, and frames with different nonces get independent values.

- ``derive(secret, label, nonce)``: HMAC-SHA256(secret, label ‖ 0x00 ‖ nonce as 16 bytes big-endian).
- ``keystream*``: AES-256-CTR (pycryptodome) keyed by that derived key, counter from 0, on zeros.
- ``DiscreteGaussian``: exact sampling of D_{Z,s} ∝ exp(−πx²/s²) by inversion of a cumulative table
  (CDT) over 64-bit uniform words. Its standard deviation is s/√(2π) to within ~e^{−πs²}. The table
  is computed with ``decimal`` (correctly rounded, platform independent) and sampling uses integer
  comparisons only, so the same words give the same integers on every machine — unlike Box–Muller,
  whose log/cos may differ in the last bit between libm versions and flip a rounding.
- ``uniform_zp*``: uniform values in Z_p without modulo bias: little-endian 16-bit words, keep those
  below ⌊65536/p⌋·p (16·4093 = 65488 for p = 4093), reduce mod p; when a frame runs short, the
  keystream is extended (a longer CTR stream starts with the shorter one, so results only extend).

Nothing here prints, logs or embeds secret material in exception messages.
"""
from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal, localcontext
from functools import lru_cache

import numpy as np
from Crypto.Cipher import AES

NONCE_BYTES = 16
MAX_NONCE = 2 ** (8 * NONCE_BYTES) - 1


def check_nonce(nonce) -> int:
    """A frame nonce as a Python int in [0, 2^128); anything else raises ValueError."""
    try:
        n = int(nonce)
    except (TypeError, ValueError):
        raise ValueError("a frame nonce must be an integer") from None
    if isinstance(nonce, float) and n != nonce:
        raise ValueError("a frame nonce must be an integer")
    if not 0 <= n <= MAX_NONCE:
        raise ValueError("a frame nonce must lie in [0, 2^128)")
    return n


def derive(secret: bytes, label: str, nonce: int | None = None) -> bytes:
    """32-byte sub-key HMAC-SHA256(secret, label ‖ 0x00 [‖ nonce as 16 bytes big-endian])."""
    msg = label.encode() + b"\x00"
    if nonce is not None:
        msg += check_nonce(nonce).to_bytes(NONCE_BYTES, "big")
    return hmac.new(bytes(secret), msg, hashlib.sha256).digest()


def keystream(secret: bytes, label: str, nonce: int | None, nbytes: int) -> bytes:
    """``nbytes`` of AES-256-CTR keystream keyed by ``derive(secret, label, nonce)``."""
    aes = AES.new(derive(secret, label, nonce), AES.MODE_CTR, nonce=b"", initial_value=0)
    return aes.encrypt(bytes(nbytes))


def keystreams(secret: bytes, label: str, nonces, nbytes: int) -> np.ndarray:
    """One keystream per nonce, stacked: uint8 array (len(nonces), nbytes)."""
    zeros = bytes(nbytes)
    buf = bytearray()
    for n in nonces:
        aes = AES.new(derive(secret, label, n), AES.MODE_CTR, nonce=b"", initial_value=0)
        buf += aes.encrypt(zeros)
    return np.frombuffer(bytes(buf), dtype=np.uint8).reshape(len(nonces), nbytes)


# ---------------------------------------------------------------- discrete Gaussian
class DiscreteGaussian:
    """Sampler of D_{Z,s} ∝ exp(−πx²/s²) from uniform 64-bit words (inversion of a CDT).

    The support is cut at |x| ≤ T with T = ⌈15·s/√(2π)⌉ + 1: the mass beyond is below 2^-64, the
    resolution of the words.
    """

    def __init__(self, s: float):
        if not s > 0:
            raise ValueError("the Gaussian parameter s must be positive")
        self.s = float(s)
        self.thresholds, self.tail = _cdt(self.s)

    @property
    def sigma(self) -> float:
        return self.s / np.sqrt(2 * np.pi)

    def from_words(self, words: np.ndarray) -> np.ndarray:
        """uint64 words (any shape) → int64 samples of the same shape."""
        idx = np.searchsorted(self.thresholds, np.asarray(words, dtype=np.uint64), side="right")
        return idx.astype(np.int64) - self.tail

    def sample(self, secret: bytes, label: str, nonce: int | None, count: int) -> np.ndarray:
        """``count`` samples from the keystream of (secret, label, nonce)."""
        words = np.frombuffer(keystream(secret, label, nonce, 8 * count), dtype="<u8")
        return self.from_words(words)

    def sample_batch(self, secret: bytes, label: str, nonces, count: int) -> np.ndarray:
        """(len(nonces), count) samples, row b from the keystream of nonce b (same as ``sample``)."""
        words = keystreams(secret, label, nonces, 8 * count).view("<u8")
        return self.from_words(words)


@lru_cache(maxsize=16)
def _cdt(s: float) -> tuple[np.ndarray, int]:
    sigma = s / np.sqrt(2 * np.pi)
    tail = int(np.ceil(15 * sigma)) + 1
    with localcontext() as ctx:
        ctx.prec = 60
        ds = Decimal(repr(s))
        pi = Decimal("3.14159265358979323846264338327950288419716939937510582097494")
        weights = [(-pi * x * x / (ds * ds)).exp() for x in range(-tail, tail + 1)]
        total = sum(weights)
        scale = Decimal(2) ** 64
        acc = Decimal(0)
        thresholds = []
        for w in weights[:-1]:
            acc += w
            thresholds.append(min(int((acc / total * scale).to_integral_value()), 2 ** 64 - 1))
    # Sample = −T + #{thresholds ≤ u}: P(−T + i) = (t_i − t_{i−1}) / 2^64.
    return np.array(thresholds, dtype=np.uint64), tail


# ---------------------------------------------------------------- uniform in Z_p
def _accept_limit(p: int) -> int:
    if not 2 <= p <= 65536:
        raise ValueError("uniform_zp draws from 16-bit words: p must lie in [2, 65536]")
    return (65536 // p) * p


def uniform_zp(secret: bytes, label: str, nonce: int | None, count: int, p: int) -> np.ndarray:
    """``count`` uniform values in Z_p (int64) from the keystream of (secret, label, nonce)."""
    return uniform_zp_batch(secret, label, [nonce], count, p)[0]


def uniform_zp_batch(secret: bytes, label: str, nonces, count: int, p: int) -> np.ndarray:
    """(len(nonces), count) uniform values in Z_p; row b equals ``uniform_zp(..., nonces[b], ...)``.

    Row b is the first ``count`` accepted words of nonce b's keystream, vectorised over the batch.
    """
    limit = _accept_limit(p)
    nonces = list(nonces)
    out = np.empty((len(nonces), count), dtype=np.int64)
    if not nonces or count == 0:
        return out
    nwords = count + 64 + count // 64  # expected rejections ≈ 0.0007·count for p = 4093
    words = keystreams(secret, label, nonces, 2 * nwords).view("<u2").astype(np.int64)
    ok = words < limit
    counts = ok.sum(axis=1)
    full = counts >= count
    if np.any(full):
        w, a, c = words[full], ok[full], counts[full]
        flat = w[a]  # accepted words, row by row
        starts = np.concatenate([[0], np.cumsum(c)[:-1]])
        out[full] = flat[starts[:, None] + np.arange(count)[None, :]] % p
    for b in np.flatnonzero(~full):  # astronomically rare: extend that frame's stream
        n = 2 * nwords
        while True:
            n *= 2
            w = np.frombuffer(keystream(secret, label, nonces[b], 2 * n), dtype="<u2").astype(np.int64)
            w = w[w < limit]
            if len(w) >= count:
                out[b] = w[:count] % p
                break
    return out
