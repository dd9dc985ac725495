"""IEEE 802.11ad LDPC codes (n = 672): construction, systematic encoding, batched min-sum / BP decoding.

Construction. The four codes of the standard (rates 1/2, 5/8, 3/4, 13/16) are quasi-cyclic: a base
matrix of 16 block columns and 8, 6, 4 or 3 block rows, each entry expanded to a Z × Z block (Z = 42):
−1 is the zero block, s ≥ 0 the identity with its columns cyclically shifted right by s (row i has its
one in column (i + s) mod Z). The base matrices are data, read from ``ieee80211ad_n672.json`` in the
shared folder (:func:`shared_dir`). Each expanded H has full row rank, so the rates are exact.

Encoding. Gaussian elimination over GF(2) (:func:`_systematic`) finds n − K pivot columns of H
(preferring the last ones); those carry the parity bits, the other K the information bits. For the
802.11ad codes the pivots are exactly the last n − K columns, so a codeword is ``[u | p]`` with the
message u first. Parity p = P u with P = H_p⁻¹ H_u (mod 2), and the generator ``G`` (K × n) satisfies
H Gᵀ = 0, checked when a code is built.

Decoding. LLRs follow the project's convention L = log P(b = 0)/P(b = 1) (so a negative LLR decides
1; BPSK maps 0 → +1). :meth:`LdpcCode.decode` runs a flooding schedule over a batch of codewords at
once in numpy: check-node updates are done on a (batch, max check degree, checks) array (edges padded
with a huge positive message that never wins a minimum and never flips a sign), variable-node updates
gather the check messages of each variable from a padded index table; the short degree axis comes
first so that reductions over it run on contiguous rows (several times faster in numpy). Methods:

* ``"nms"`` — normalised min-sum: c→v = α · Π sign · min |·| over the other edges (α = 0.75 default);
* ``"bp"``  — sum-product in the log domain: c→v = Π sign · φ(Σ φ(|·|) over the other edges), with
  φ(x) = −log tanh(x/2) = φ⁻¹(x).

Codewords whose hard decisions satisfy every check stop early (they leave the working set), so at
high SNR a batch costs about one iteration.
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SHARED_ENV = "JSCEC_SHARED"
BASE_FILE = "ieee80211ad_n672.json"
RATES = ("1/2", "5/8", "3/4", "13/16")
_BIG = np.float32(1e30)      # padding message: never the minimum, positive sign
_PHI_CLIP = np.float32(1e-7)  # φ is infinite at 0 and 0 at infinity: clip its argument


def shared_dir() -> Path:
    """The project's shared data folder: ``$JSCEC_SHARED``, else ``shared/`` beside the repository."""
    env = os.environ.get(SHARED_ENV)
    return Path(env).expanduser() if env else Path(__file__).resolve().parents[1].parent / "shared"


def load_base_matrices(path: str | os.PathLike | None = None) -> tuple[int, dict[str, np.ndarray]]:
    """(Z, {rate: base matrix as int array}) from the 802.11ad JSON (default: the shared copy)."""
    path = Path(path) if path else shared_dir() / "ldpc" / BASE_FILE
    try:
        doc = json.loads(Path(path).read_text())
        z = int(doc["Z"])
        base = {str(r): np.asarray(m, dtype=np.int64) for r, m in doc["base"].items()}
    except FileNotFoundError:
        from radio.errors import UserError
        raise UserError(f"LDPC base matrices not found: {path} (set {SHARED_ENV} to the shared folder)") from None
    except (KeyError, TypeError, ValueError) as exc:
        from radio.errors import UserError
        raise UserError(f"{path} is not an LDPC base-matrix file ({type(exc).__name__})") from None
    return z, base


def expand(base: np.ndarray, z: int) -> np.ndarray:
    """Parity-check matrix (uint8, (Z·rows, Z·cols)) of a quasi-cyclic base matrix (convention above)."""
    rows, cols = base.shape
    h = np.zeros((rows * z, cols * z), dtype=np.uint8)
    i = np.arange(z)
    for r in range(rows):
        for c in range(cols):
            s = int(base[r, c])
            if s >= 0:
                h[r * z + i, c * z + (i + s) % z] = 1
    return h


def gf2_rank(a: np.ndarray) -> int:
    """Rank of a 0/1 matrix over GF(2)."""
    return _eliminate(a.copy())[1].size


def _eliminate(a: np.ndarray, col_order=None) -> tuple[np.ndarray, np.ndarray]:
    """Reduced row-echelon form over GF(2) (in place, uint8) and its pivot columns, visiting columns in
    ``col_order`` (default left to right)."""
    a = a.astype(np.uint8, copy=False)
    m = a.shape[0]
    pivots = []
    r = 0
    for c in (range(a.shape[1]) if col_order is None else col_order):
        if r == m:
            break
        nz = np.nonzero(a[r:, c])[0]
        if nz.size == 0:
            continue
        p = r + nz[0]
        if p != r:
            a[[r, p]] = a[[p, r]]
        others = np.nonzero(a[:, c])[0]
        others = others[others != r]
        a[others] ^= a[r]
        pivots.append(c)
        r += 1
    return a[:r], np.asarray(pivots, dtype=np.int64)


def _systematic(h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(info columns, parity columns, P) with parity = P · info (mod 2); pivots taken from the right."""
    n = h.shape[1]
    red, piv = _eliminate(h.copy(), col_order=range(n - 1, -1, -1))
    order = np.argsort(piv)
    red, piv = red[order], piv[order]
    info = np.setdiff1d(np.arange(n), piv)
    # Row j of the reduced matrix: x[piv[j]] + Σ red[j, info] x[info] = 0  →  p_j = red[j, info] · u.
    return info, piv, red[:, info].astype(np.uint8)


@dataclass(eq=False)
class LdpcCode:
    """One binary LDPC code given by its parity-check matrix H (m × n, full row rank)."""

    h: np.ndarray
    name: str = "LDPC"
    alpha: float = 0.75
    # derived
    n: int = field(init=False)
    k: int = field(init=False)

    def __post_init__(self):
        h = np.asarray(self.h, dtype=np.uint8)
        self.h = h
        m, self.n = h.shape
        self.info_cols, self.parity_cols, self._p = _systematic(h)
        self.k = self.info_cols.size
        if self.k != self.n - m:
            raise ValueError(f"{self.name}: H is not of full row rank ({self.n - self.k} of {m} rows independent)")
        self.G = np.zeros((self.k, self.n), dtype=np.uint8)
        self.G[:, self.info_cols] = np.eye(self.k, dtype=np.uint8)
        self.G[:, self.parity_cols] = self._p.T
        if (h.astype(np.int64) @ self.G.T.astype(np.int64) % 2).any():
            raise AssertionError(f"{self.name}: H·Gᵀ ≠ 0")
        self._pt = self._p.T.astype(np.float32)   # (k, m): parity = u @ P^T (exact in float32 for k < 2^24)
        # Edge layout. Check view: chk_edges[c, j] = edge id of the j-th one in row c (pad → E).
        rows, cols = np.nonzero(h)           # edges sorted by check, then variable
        self.n_edges = e = rows.size
        self.edge_var = cols
        deg_c = np.bincount(rows, minlength=m)
        dc = int(deg_c.max())
        self._chk = np.full((m, dc), e, dtype=np.int64)
        start = np.concatenate([[0], np.cumsum(deg_c)[:-1]])
        self._chk[rows, np.arange(e) - start[rows]] = np.arange(e)
        self._chk_pad = self._chk == e
        self._chk_var = np.where(self._chk_pad, self.n, np.append(cols, self.n)[self._chk])  # pad → var n
        # Variable view: var_edges[v, j] = the j-th edge of variable v (pad → E, a zero message).
        by_var = np.argsort(cols, kind="stable")
        deg_v = np.bincount(cols, minlength=self.n)
        dv = int(deg_v.max())
        self._var = np.full((self.n, dv), e, dtype=np.int64)
        vstart = np.concatenate([[0], np.cumsum(deg_v)[:-1]])
        vc = cols[by_var]
        self._var[vc, np.arange(e) - vstart[vc]] = by_var
        # Flattened check view used by the decoder: slot → variable (pad → n), variable → its slots.
        # Slots are ordered (edge rank within its check, check), so that the reductions over a check's
        # edges run along a short outer axis with the checks contiguous (much faster in numpy).
        chk_t, pad_t = self._chk.T.ravel(), self._chk_pad.T.ravel()
        self._chk_var_flat = self._chk_var.T.ravel()
        self._pad_flat = np.nonzero(pad_t)[0]
        slot_of_edge = np.empty(e + 1, dtype=np.int64)
        slot_of_edge[chk_t[~pad_t]] = np.nonzero(~pad_t)[0]
        slot_of_edge[e] = self._chk.size   # the always-zero column
        self._var_pos = np.ascontiguousarray(slot_of_edge[self._var].T).ravel()   # (dv·n,): rank-major

    @property
    def rate(self) -> float:
        return self.k / self.n

    def __repr__(self) -> str:
        return f"LdpcCode({self.name}, n={self.n}, k={self.k})"

    # ------------------------------------------------------------------ encoding

    def encode(self, u) -> np.ndarray:
        """Message bits (…, k) → codewords (…, n), uint8; the message occupies ``info_cols``."""
        u = np.asarray(u)
        if u.shape[-1] != self.k:
            raise ValueError(f"{self.name}: messages must have {self.k} bits, got {u.shape[-1]}")
        flat = u.reshape(-1, self.k)
        out = np.empty((flat.shape[0], self.n), dtype=np.uint8)
        out[:, self.info_cols] = flat
        out[:, self.parity_cols] = (flat.astype(np.float32) @ self._pt).astype(np.int64) & 1
        return out.reshape(u.shape[:-1] + (self.n,))

    def message(self, c) -> np.ndarray:
        """The k message bits of codewords (…, n)."""
        return np.asarray(c)[..., self.info_cols]

    def syndrome(self, c) -> np.ndarray:
        """H·c (mod 2) for codewords (…, n): (…, m) uint8."""
        c = np.asarray(c, dtype=np.uint8)
        flat = c.reshape(-1, self.n)
        m = self._chk.shape[0]
        padded = np.concatenate([flat, np.zeros((flat.shape[0], 1), np.uint8)], axis=1)
        s = np.bitwise_xor.reduce(np.take(padded, self._chk_var_flat, axis=1).reshape(flat.shape[0], -1, m), axis=1)
        return s.reshape(c.shape[:-1] + (-1,))

    # ------------------------------------------------------------------ decoding

    def decode(self, llr, max_iter: int = 20, method: str = "nms", alpha: float | None = None,
               early_stop: bool = True) -> "DecodeResult":
        """Decode channel LLRs (…, n) (L = log P(0)/P(1)); returns hard codewords and convergence flags.

        ``max_iter`` iterations of the flooding schedule at most; a codeword stops as soon as its hard
        decisions satisfy every check (if ``early_stop``). ``method`` is ``"nms"`` (normalised
        min-sum with factor ``alpha``) or ``"bp"`` (sum-product).
        """
        if method not in ("nms", "bp"):
            raise ValueError(f"method must be 'nms' or 'bp', got {method!r}")
        alpha = np.float32(self.alpha if alpha is None else alpha)
        llr = np.asarray(llr, dtype=np.float32)
        if llr.shape[-1] != self.n:
            raise ValueError(f"{self.name}: LLRs must have {self.n} values per codeword, got {llr.shape[-1]}")
        lead = llr.shape[:-1]
        ch = np.ascontiguousarray(llr.reshape(-1, self.n))
        b = ch.shape[0]
        hard = (ch < 0).astype(np.uint8)
        ok = np.zeros(b, dtype=bool)
        iters = np.zeros(b, dtype=np.int64)
        m, dc = self._chk.shape
        slots = m * dc
        out_llr = ch.copy()
        # Working set: the codewords still decoding, compacted whenever some finish. Messages live
        # in the flattened check view (B, m·dc) plus one always-zero column (the variables' pad);
        # pad slots of the check view are never read by a variable, so they may hold anything.
        idx = np.arange(b)
        w_ch = ch
        if early_stop:
            done = ~self.syndrome(hard).any(axis=1)
            ok[done] = True
            idx, w_ch = idx[~done], ch[~done]
        w_c2v = np.zeros((idx.size, slots + 1), dtype=np.float32)
        w_tot = np.concatenate([w_ch, np.full((idx.size, 1), _BIG, np.float32)], axis=1)  # column n: pad
        for it in range(max_iter):
            if idx.size == 0:
                break
            # variable → check: the variable's total minus this edge's incoming message (pads: +BIG)
            v2c = np.take(w_tot, self._chk_var_flat, axis=1)
            v2c -= w_c2v[:, :slots]
            w_c2v[:, :slots] = self._check_update(v2c.reshape(-1, dc, m), method, alpha).reshape(-1, slots)
            np.add(w_ch, np.take(w_c2v, self._var_pos, axis=1).reshape(idx.size, -1, self.n).sum(axis=1),
                   out=w_tot[:, :self.n])
            h_w = (w_tot[:, :self.n] < 0).astype(np.uint8)
            last = it == max_iter - 1
            if early_stop or last:
                done = ~self.syndrome(h_w).any(axis=1)
                ok[idx[done]] = True
                fin = done if (early_stop and not last) else np.ones(idx.size, dtype=bool)
                if fin.any():
                    hard[idx[fin]], out_llr[idx[fin]], iters[idx[fin]] = h_w[fin], w_tot[fin, :self.n], it + 1
                    keep = ~fin
                    idx, w_ch, w_c2v, w_tot = idx[keep], w_ch[keep], w_c2v[keep], w_tot[keep]
        if idx.size:   # max_iter == 0
            iters[idx] = 0
        total = out_llr
        return DecodeResult(hard.reshape(lead + (self.n,)), ok.reshape(lead), iters.reshape(lead),
                            total.reshape(lead + (self.n,)))

    @staticmethod
    def _check_update(v: np.ndarray, method: str, alpha: np.float32) -> np.ndarray:
        """Check → variable messages on the padded (B, dc, m) check view (pads: +_BIG)."""
        # Plain arithmetic on whole arrays throughout: numpy's masked (where=) ufuncs and np.where are
        # several times slower here. Padding entries (+BIG) are positive and never the minimum.
        sgn = np.copysign(np.float32(1), v)
        other_sign = sgn.prod(axis=1, keepdims=True)      # × sgn below: the product over the *other* edges
        mag = np.abs(v)
        if method == "nms":
            m1 = mag.min(axis=1, keepdims=True)
            at_min = mag == m1
            ties = at_min.sum(axis=1, keepdims=True, dtype=np.int8) > 1
            mag += at_min * _BIG
            m2 = mag.min(axis=1, keepdims=True)
            m2[ties] = m1[ties]           # a tied minimum: every edge sees m1 among the others
            other_sign *= alpha
            out = at_min * ((m2 - m1) * other_sign)       # m2 on the minimum's own edge, m1 elsewhere
            out += m1 * other_sign
        else:
            phi = _phi(mag)
            out = _phi(np.maximum(phi.sum(axis=1, keepdims=True) - phi, 0))
            out *= other_sign
        out *= sgn
        return out


def _phi(x: np.ndarray) -> np.ndarray:
    """φ(x) = −log tanh(x/2) = log((e^x + 1)/(e^x − 1)), for x ≥ 0 (clipped away from 0)."""
    x = np.clip(x, _PHI_CLIP, np.float32(40))
    return np.log1p(np.float32(2) / np.expm1(x)).astype(np.float32)


@dataclass
class DecodeResult:
    """Hard codewords (…, n), parity-satisfied flags (…,), iterations used (…,), final total LLRs (…, n)."""

    bits: np.ndarray
    ok: np.ndarray
    iterations: np.ndarray
    llr: np.ndarray


@functools.lru_cache(maxsize=None)
def ieee80211ad(rate: str = "1/2") -> LdpcCode:
    """The 802.11ad code of length 672 at ``rate`` ('1/2', '5/8', '3/4' or '13/16'), cached."""
    if rate not in RATES:
        from radio.errors import UserError
        raise UserError(f"unknown LDPC rate {rate!r}: choose one of {', '.join(RATES)}")
    z, base = load_base_matrices()
    if rate not in base:
        from radio.errors import UserError
        raise UserError(f"the LDPC base-matrix file has no rate {rate}")
    return LdpcCode(expand(base[rate], z), name=f"802.11ad rate {rate} (n=672)")
