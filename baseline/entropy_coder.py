"""Entropy coding of the rounded features z̄ with the model's own PMF (paper Sec. V-B, after eq. 32).

The coder is ``constriction``'s range coder (``constriction.stream.queue``, 32-bit words, 64-bit
state) with one ``Categorical`` model per feature channel: channel c's discrete PMF P_c(v) of eq. 32
(:func:`baseline.feature_compression.log2_pmf_table`, float64) tabulated on the channel's symbol
range [lo_c, hi_c], which constriction quantises to 24-bit fixed point (every symbol of the range
keeps a non-zero probability, so any value in range can be coded).

Symbol range. [lo_c, hi_c] covers μ_j ± 12σ_j of every component j with α_j ≥ 2⁻⁴⁰ (the mass left
outside is below 1e-30), at most :data:`MAX_SPAN` symbols (centred on the mixture mean if wider). A
feature outside its range is clipped to the nearest end before coding — there is no escape symbol,
the receiver gets the clipped value; :meth:`FeatureCoder.clip` counts such features (none were seen
on CIFAR-10: the JSON of ``jscec baseline-classify eval`` reports the count).

Bitstream. Channels are coded one after another, each in row-major order. constriction's output
words are written big-endian, so the payload is the binary expansion of one point of the coder's
final interval, most significant bit first, and a payload followed by zero bits is the same point.
constriction ends its output on a word boundary (up to 32 bits more than needed); :meth:`encode`
then picks the shortest point that still decodes to the same symbols — among the truncations and
round-ups of constriction's point, checked by decoding — and drops trailing zero bytes. The payload
therefore ends in a non-zero byte, as the baseline's zero padding needs (``strip_padding``), and
its length is −Σ log₂ P(z̄) plus one or two bits, rounded up to a byte. The decoder appends zero
words before decoding. An all-zero point is the empty payload.
"""
from __future__ import annotations

import math

import numpy as np

from jscec.errors import UserError

#: Most symbols in one channel's range.
MAX_SPAN = 4096
#: Components lighter than this do not widen a channel's range.
ALPHA_FLOOR = 2.0 ** -40
#: Half-width of the range around each component, in σ.
SIGMAS = 12.0
#: Zero words the decoder appends (the range decoder's 64-bit state reads two words ahead).
PAD_WORDS = 4


def _constriction():
    try:
        import constriction
    except ImportError:  # pragma: no cover - a dependency of the project
        raise UserError("the entropy coder needs constriction (pip install constriction==0.5.0; "
                        "scripts/setup-env.sh installs it)") from None
    return constriction


def symbol_ranges(alpha: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) int64 (C,) of each channel's coded symbol range (see the module docstring)."""
    used = alpha >= ALPHA_FLOOR
    lo = np.floor(np.where(used, mu - SIGMAS * sigma, np.inf).min(axis=1)).astype(np.int64)
    hi = np.ceil(np.where(used, mu + SIGMAS * sigma, -np.inf).max(axis=1)).astype(np.int64)
    wide = hi - lo + 1 > MAX_SPAN
    centre = np.rint((alpha * mu).sum(axis=1)).astype(np.int64)
    lo = np.where(wide, centre - MAX_SPAN // 2, lo)
    hi = np.where(wide, centre + MAX_SPAN // 2 - 1, hi)
    return lo, hi


class FeatureCoder:
    """Range coder of one image's z̄ (C, h, w) under a per-channel discrete PMF."""

    def __init__(self, alpha: np.ndarray, mu: np.ndarray, sigma: np.ndarray, shape):
        from baseline.feature_compression import log2_pmf_table

        constriction = _constriction()
        self.shape = tuple(int(s) for s in shape)
        if len(self.shape) != 3 or self.shape[0] != alpha.shape[0]:
            raise ValueError(f"feature shape {self.shape} does not match {alpha.shape[0]} PMF channels")
        self.lo, self.hi = symbol_ranges(alpha, mu, sigma)
        self.log2p = [log2_pmf_table(alpha[i:i + 1], mu[i:i + 1], sigma[i:i + 1],
                                     np.arange(self.lo[i], self.hi[i] + 1))[0] for i in range(self.shape[0])]
        self._models = [constriction.stream.model.Categorical(np.exp2(t), perfect=False) for t in self.log2p]
        self._queue = constriction.stream.queue

    @classmethod
    def from_model(cls, model, shape) -> "FeatureCoder":
        """The coder of a :class:`baseline.feature_compression.FeatureCompressionNet` for features of ``shape``."""
        return cls(*model.pmf.parameters_np(), shape)

    @property
    def per_channel(self) -> int:
        return self.shape[1] * self.shape[2]

    def clip(self, symbols: np.ndarray) -> tuple[np.ndarray, int]:
        """(symbols clipped to each channel's range, number of features that were outside it)."""
        s = np.asarray(symbols, dtype=np.int64).reshape(self.shape)
        lo, hi = self.lo[:, None, None], self.hi[:, None, None]
        outside = int(np.count_nonzero((s < lo) | (s > hi)))
        return np.clip(s, lo, hi), outside

    def estimate_bits(self, symbols: np.ndarray) -> float:
        """The model's −Σ log₂ P(z̄) of (clipped) symbols: what the coded length should approach."""
        s, _ = self.clip(symbols)
        return float(-sum(t[row.reshape(-1) - lo].sum() for t, row, lo in zip(self.log2p, s, self.lo)))

    def _words(self, s: np.ndarray) -> np.ndarray:
        enc = self._queue.RangeEncoder()
        for row, lo, m in zip(s, self.lo, self._models):
            enc.encode((row.reshape(-1) - lo).astype(np.int32), m)
        return enc.get_compressed()

    def decode(self, payload: bytes) -> np.ndarray:
        """Symbols z̄ (C, h, w) int64 from a payload (trailing zero bytes may be missing)."""
        data = bytes(payload) + bytes(-len(payload) % 4 + 4 * PAD_WORDS)
        dec = self._queue.RangeDecoder(np.frombuffer(data, dtype=">u4").astype(np.uint32))
        rows = [dec.decode(m, self.per_channel).astype(np.int64) + lo for m, lo in zip(self._models, self.lo)]
        return np.stack(rows).reshape(self.shape)

    def _decodes_to(self, payload: bytes, s: np.ndarray) -> bool:
        try:
            return bool(np.array_equal(self.decode(payload), s))
        except Exception:  # noqa: BLE001 - whatever stops the decoder, this payload is not the one
            return False

    def encode(self, symbols: np.ndarray) -> bytes:
        """The shortest payload (bytes, no trailing zero byte) that decodes to the clipped ``symbols``."""
        s, _ = self.clip(symbols)
        raw = self._words(s).astype(">u4").tobytes()
        total = 8 * len(raw)
        point = int.from_bytes(raw, "big")

        def candidate(j: int) -> bytes | None:
            """A valid payload of at most j significant bits near constriction's point, or None."""
            shift = total - j
            down = (point >> shift) << shift
            options = [down] if down == point else [down, down + (1 << shift)]
            for x in options:
                if x < (1 << total):
                    b = x.to_bytes(len(raw), "big").rstrip(b"\0")
                    if self._decodes_to(b, s):
                        return b
            return None

        best = raw.rstrip(b"\0")
        if not self._decodes_to(best, s):   # constriction's own output must decode
            raise RuntimeError("range coder output does not decode to its symbols")
        lo, hi = 0, total                    # the shortest valid length is in (lo - 1, hi]
        while lo < hi:
            mid = (lo + hi) // 2
            b = candidate(mid)
            if b is not None:
                best, hi = b, mid
            else:
                lo = mid + 1
        return best


def coded_bits(payload: bytes) -> int:
    """Significant bits of a payload: up to and including its last 1 bit (the zeros after it are implied)."""
    payload = bytes(payload).rstrip(b"\0")
    if not payload:
        return 0
    last = payload[-1]
    return 8 * len(payload) - ((last & -last).bit_length() - 1)


def length_report(estimates, payloads) -> dict:
    """Coded length against the model's estimate over many images (bits, and bytes × 8 as sent)."""
    est = np.asarray(estimates, dtype=np.float64)
    bits = np.array([coded_bits(p) for p in payloads], dtype=np.float64)
    sent = np.array([8 * len(p) for p in payloads], dtype=np.float64)
    total = float(est.sum())
    return {
        "images": int(est.size), "estimate_bits_mean": float(est.mean()),
        "coded_bits_mean": float(bits.mean()), "payload_bits_mean": float(sent.mean()),
        "coded_over_estimate": float(bits.sum() / total) if total > 0 else math.nan,
        "payload_over_estimate": float(sent.sum() / total) if total > 0 else math.nan,
        "coded_minus_estimate_bits": {"mean": float((bits - est).mean()), "min": float((bits - est).min()),
                                      "max": float((bits - est).max())},
    }
