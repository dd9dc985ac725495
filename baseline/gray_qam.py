"""Gray-labelled square QAM (and BPSK) with exact and max-log bit LLRs, for the digital baseline.

Orders: 2 (BPSK) and the square orders 4, 16, 64, 256, 1024, 4096. A symbol carries
m = log2(order) bits b_0 … b_{m−1} in stream order; for square QAM the first m/2 select the in-phase
level and the last m/2 the quadrature level, each through a Gray-labelled PAM (labels MSB first,
adjacent levels differ in one bit, and bit value 0 marks the positive half: BPSK maps 0 → +1). The
constellation has unit mean power. ``points[s]`` is the point whose label, read MSB first, is s.

LLRs follow LLR = log P(b = 0 | y) / P(b = 1 | y) for equiprobable bits and complex AWGN of total
variance σ² (``noise_var``; σ²/2 per real dimension), i.e. log-likelihoods −|y − x|²/σ². The
likelihood factors over the two axes, so each bit's LLR depends on one axis only and is computed on
that axis's PAM (√order levels, not order points). ``method="exact"`` sums over every level (in the
log domain, so it stays finite at any SNR); ``method="maxlog"`` keeps the nearest level of each bit
value. :meth:`GrayQam.llr_oracle` computes the exact LLRs from all points, for tests.
"""
from __future__ import annotations

import numpy as np

ORDERS = (2, 4, 16, 64, 256, 1024, 4096)
# A bit value's probability sum below this is recomputed around its own maximum.
_TINY = 1e-250
_CHUNK = 4096


def _gray(i: np.ndarray) -> np.ndarray:
    return i ^ (i >> 1)


class _Pam:
    """One axis: ``levels`` Gray-labelled PAM levels at ``(2i − (levels − 1))·scale``."""

    def __init__(self, bits: int, scale: float):
        self.bits = bits
        self.size = 1 << bits
        self.scale = scale
        i = np.arange(self.size)
        self.values = (2 * i - (self.size - 1)) * scale  # level i, ascending
        # Level i carries label gray(size−1−i): the top level has label 0, so bit 0 ↔ positive half.
        self.label_of_level = _gray(self.size - 1 - i)
        self.level_of_label = np.empty(self.size, dtype=np.int64)
        self.level_of_label[self.label_of_level] = i
        shifts = np.arange(bits - 1, -1, -1)
        self.level_bits = ((self.label_of_level[:, None] >> shifts[None, :]) & 1).astype(np.uint8)  # (size, bits)
        # Rows 2b, 2b+1: indicator of bit b = 0, = 1 (for the exact sums).
        self.masks = np.empty((2 * bits, self.size))
        self.masks[0::2] = self.level_bits.T == 0
        self.masks[1::2] = self.level_bits.T == 1
        # sign[b, i] = +1 where level i has bit b = 0 (the LLR's sign when i is the nearest level).
        self.sign = 1.0 - 2.0 * self.level_bits.T
        # opp[s, b, i] = i − j for the levels j whose bit b differs from level i's: slots 0–2 the
        # three nearest below i (nearest first), slots 3–5 the three nearest above; +inf if none.
        self.opp = np.full((6, bits, self.size), np.inf)
        for b in range(bits):
            for lvl in range(self.size):
                others = np.nonzero(self.level_bits[:, b] != self.level_bits[lvl, b])[0]
                below = others[others < lvl][::-1][:3]
                above = others[others > lvl][:3]
                self.opp[:len(below), b, lvl] = lvl - below
                self.opp[3:3 + len(above), b, lvl] = lvl - above

    def position(self, u: np.ndarray) -> np.ndarray:
        """Coordinate in level units (level i at i)."""
        return (u / self.scale + (self.size - 1)) / 2

    def nearest(self, x: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(x), 0, self.size - 1).astype(np.int64)

    @staticmethod
    def _gather(table: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """``table[..., idx]`` as a C-contiguous array (fancy indexing would put idx's axis first)."""
        return np.take(table.reshape(-1, table.shape[-1]), idx, axis=1).reshape(table.shape[:-1] + idx.shape)

    @staticmethod
    def _rel(delta: np.ndarray, w: np.ndarray, G: float) -> np.ndarray:
        """Log-likelihood of level i* − δ minus that of the nearest level i*: −G δ(δ + 2w)."""
        with np.errstate(invalid="ignore"):
            out = delta + 2.0 * w
            out *= delta
            out *= -G
        return out

    def maxlog(self, x: np.ndarray, G: float) -> np.ndarray:
        """(k, bits) max-log LLRs; G = Δ²/σ² with Δ the level spacing."""
        istar = self.nearest(x)
        w = x - istar
        # The nearest level's own bit value scores 0; the other value its nearest level either side.
        near = self._rel(self._gather(self.opp[[0, 3]], istar), w, G).max(axis=0)  # (bits, k)
        near *= self._gather(self.sign, istar)
        np.negative(near, out=near)
        return near.T

    def exact(self, x: np.ndarray, G: float) -> np.ndarray:
        """(k, bits) exact LLRs by log-sum-exp over the levels of each bit value."""
        if self.size == 2:  # one level per bit value: max-log is exact
            return self.maxlog(x, G)
        istar = self.nearest(x)
        w = x - istar
        # D_i = log-likelihood(i) − log-likelihood(i*) = c0 + i·c1 − G i² (≤ 0, = 0 at i*);
        # arrays are (levels, k): symbols along the contiguous axis.
        coef = np.empty((3, x.size))
        np.multiply(istar, -G, out=coef[0])
        coef[0] *= istar + 2.0 * w
        np.multiply(x, 2.0 * G, out=coef[1])
        coef[2] = 1.0
        i = np.arange(self.size, dtype=np.float64)
        d = np.stack([np.ones(self.size), i, -G * i * i], axis=1) @ coef
        sums = self.masks @ _exp_or_zero(d, -700.0)  # (2·bits, k): bit b = 0, bit b = 1 for each b
        with np.errstate(divide="ignore"):
            logs = np.log(sums)
        out = logs[0::2] - logs[1::2]
        flagged = sums[0::2] < _TINY
        flagged |= sums[1::2] < _TINY
        if flagged.any():
            # The bit value without i* has every level far away: log-sum-exp around its own
            # nearest levels (the value with i* has a sum ≥ 1).
            far = self._lse_far(istar, w, flagged, d, G)
            sign = self._gather(self.sign, istar)
            near = np.where(sign > 0, logs[0::2], logs[1::2])
            near -= far
            near *= sign
            np.copyto(out, near, where=flagged)
        return out.T

    def _lse_far(self, i0, w, flagged, d, G):
        """(bits, k): log Σ e^{D_j} over the levels j whose bit b differs from level i0's.

        Meant for the entries in ``flagged`` (bits, k), where every such level is far from x: its
        nearest member below x (lo) and above x (hi) then lie at a distance with G·dist² > 575,
        and members further than two positions beyond lo or hi weigh less than e^{-6·G·dist}
        relative to the nearest one: negligible when G·dist ≥ 10 (always true inside the
        constellation). Entries where it is not (far outliers at low SNR) take the full sum.
        """
        delta = self._gather(self.opp, i0)  # (6, bits, r)
        dd = self._rel(delta, w, G)
        m = dd.max(axis=0)
        dd -= m
        lse = m + np.log(_exp_or_zero(dd, -80.0).sum(axis=0))
        with np.errstate(invalid="ignore"):
            dist = np.minimum(np.abs(delta[0] + w), np.abs(delta[3] + w))
        bad = flagged & ~(G * dist >= 10.0)
        for b, j in zip(*np.nonzero(bad)):
            members = np.nonzero(self.level_bits[:, b] != self.level_bits[i0[j], b])[0]
            sub = d[members, j]
            mb = sub.max()
            lse[b, j] = mb + np.log(np.exp(sub - mb).sum())
        return lse


def _exp_or_zero(a: np.ndarray, floor: float) -> np.ndarray:
    """exp(a) where a > floor, 0 elsewhere (skipping the negligible, slow-to-compute terms)."""
    keep = a > floor
    out = np.zeros_like(a)
    np.exp(a, out=out, where=keep)
    return out


class GrayQam:
    """Gray-labelled BPSK (order 2) or square QAM (4 … 4096) with unit mean power."""

    def __init__(self, order: int):
        order = int(order)
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order}")
        self.order = order
        self.bits_per_symbol = order.bit_length() - 1
        if order == 2:
            self._axes = [_Pam(1, 1.0)]
        else:
            half = self.bits_per_symbol // 2
            side = 1 << half
            scale = float(np.sqrt(3.0 / (2.0 * (side * side - 1))))
            self._axes = [_Pam(half, scale), _Pam(half, scale)]
        s = np.arange(order)
        if order == 2:
            pts = self._axes[0].values[self._axes[0].level_of_label[s]].astype(np.complex128)
        else:
            half = self.bits_per_symbol // 2
            ax = self._axes[0]
            pts = ax.values[ax.level_of_label[s >> half]] + 1j * ax.values[ax.level_of_label[s & ((1 << half) - 1)]]
        self._points = pts
        self._points.setflags(write=False)

    def __repr__(self) -> str:
        return f"GrayQam({self.order})"

    @property
    def points(self) -> np.ndarray:
        """(order,) complex128: ``points[s]`` carries the label s (bits MSB first)."""
        return self._points.copy()

    @property
    def labels(self) -> np.ndarray:
        """(order, bits_per_symbol) uint8: the bits of each point's label, in stream order."""
        shifts = np.arange(self.bits_per_symbol - 1, -1, -1)
        return ((np.arange(self.order)[:, None] >> shifts) & 1).astype(np.uint8)

    def _split(self, bits: np.ndarray) -> list[np.ndarray]:
        out, start = [], 0
        for ax in self._axes:
            weights = 1 << np.arange(ax.bits - 1, -1, -1)
            out.append(bits[:, start:start + ax.bits].astype(np.int64) @ weights)
            start += ax.bits
        return out

    def modulate(self, bits) -> np.ndarray:
        """Bits (0/1, any shape, size a multiple of bits_per_symbol, stream order) → complex64 symbols."""
        bits = np.asarray(bits).reshape(-1)
        if bits.size % self.bits_per_symbol:
            raise ValueError(f"number of bits ({bits.size}) is not a multiple of {self.bits_per_symbol}")
        if bits.size and (bits.min() < 0 or bits.max() > 1):
            raise ValueError("bits must be 0 or 1")
        labels = self._split(bits.reshape(-1, self.bits_per_symbol))
        out = np.zeros(labels[0].shape, dtype=np.complex64)
        out.real = self._axes[0].values[self._axes[0].level_of_label[labels[0]]]
        if len(self._axes) == 2:
            out.imag = self._axes[1].values[self._axes[1].level_of_label[labels[1]]]
        return out

    def _coords(self, y) -> list[np.ndarray]:
        y = np.asarray(y).reshape(-1)
        comps = [y.real.astype(np.float64)]
        if len(self._axes) == 2:
            comps.append(y.imag.astype(np.float64))
        return comps

    def hard_bits(self, y) -> np.ndarray:
        """Bits (uint8, (n_sym · bits_per_symbol,)) of the nearest point of each received symbol."""
        out = [ax.level_bits[ax.nearest(ax.position(u))] for ax, u in zip(self._axes, self._coords(y))]
        return np.concatenate(out, axis=1).reshape(-1)

    def llr(self, y, noise_var: float, method: str = "exact") -> np.ndarray:
        """Bit LLRs log P(b=0|y)/P(b=1|y), float64 (n_sym · bits_per_symbol,), in stream order.

        ``noise_var`` is σ², the total complex noise variance (σ²/2 per real dimension).
        """
        noise_var = float(noise_var)
        if not noise_var > 0 or not np.isfinite(noise_var):
            raise ValueError(f"noise_var must be a positive finite number, got {noise_var}")
        if method not in ("exact", "maxlog"):
            raise ValueError(f"method must be 'exact' or 'maxlog', got {method!r}")
        comps = self._coords(y)
        n = comps[0].size
        out = np.empty((n, self.bits_per_symbol))
        col = 0
        for ax, u in zip(self._axes, comps):
            G = (2.0 * ax.scale) ** 2 / noise_var
            x = ax.position(u)
            fn = ax.exact if method == "exact" else ax.maxlog
            for i in range(0, n, _CHUNK):
                out[i:i + _CHUNK, col:col + ax.bits] = fn(x[i:i + _CHUNK], G)
            col += ax.bits
        return out.reshape(-1)

    def llr_oracle(self, y, noise_var: float) -> np.ndarray:
        """Exact LLRs from all ``order`` points (log-sum-exp per bit value); slow, for tests."""
        y = np.asarray(y, dtype=np.complex128).reshape(-1)
        pts = self._points
        ll = -np.abs(y[:, None] - pts[None, :]) ** 2 / float(noise_var)
        labels = self.labels
        out = np.empty((y.size, self.bits_per_symbol))
        for b in range(self.bits_per_symbol):
            lse = []
            for v in (0, 1):
                sub = ll[:, labels[:, b] == v]
                m = sub.max(axis=1, keepdims=True)
                lse.append(m[:, 0] + np.log(np.exp(sub - m).sum(axis=1)))
            out[:, b] = lse[0] - lse[1]
        return out.reshape(-1)
