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
once in numpy, batch axis last, in chunks of at most 128 codewords (larger arrays fall out of cache).
It works on the circulant blocks of H (:func:`circulant_base`; Z = 42 here, Z = 1 for an H that is not
quasi-cyclic, correct but slow): all Z checks of a block row, or Z variables of a block column, are
one slice, so a cyclic shift s is a slice offset rather than a gather (see :class:`_Messages`). Block
rows of equal check degree d form one (d, rows, Z · batch) array; check updates reduce over its short
first axis, which numpy does row by row, fast. Signs are handled as float32 sign bits (XOR), and
every buffer is allocated once per call. Methods:

* ``"nms"`` — normalised min-sum: c→v = α · Π sign · min |·| over the other edges (α = 0.75 default),
  from each check's two smallest magnitudes (the smallest goes to every edge but its own);
* ``"bp"``  — sum-product in the log domain: c→v = Π sign · φ(Σ φ(|·|) over the other edges), with
  φ(x) = −log tanh(x/2) = φ⁻¹(x).

Codewords whose hard decisions satisfy every check stop early (recorded at once; they leave the
working set once an eighth of it has finished), so at high SNR a batch costs about one iteration.
"""
from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SHARED_ENV = "JSCEC_SHARED"
BASE_FILE = "ieee80211ad_n672.json"
RATES = ("1/2", "5/8", "3/4", "13/16")
_BIG = np.float32(1e30)      # "second minimum" of a check of degree 1 (no other edge)
_PHI_CLIP = np.float32(1e-7)  # φ is infinite at 0 and 0 at infinity: clip its argument
_CHUNK = 128                  # codewords decoded together at most (larger batches go in chunks)


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
        from jscec.errors import UserError
        raise UserError(f"LDPC base matrices not found: {path} (set {SHARED_ENV} to the shared folder)") from None
    except (KeyError, TypeError, ValueError) as exc:
        from jscec.errors import UserError
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


def circulant_base(h: np.ndarray) -> tuple[int, np.ndarray]:
    """(Z, base) for the largest Z with H = :func:`expand` (base, Z): every Z × Z block zero or a cyclically
    shifted identity. Z = 1 (base = H − 1: shift 0 at a one, −1 elsewhere) always works, for any H."""
    h = np.asarray(h, dtype=np.uint8)
    m, n = h.shape
    g = math.gcd(m, n)
    for z in sorted((z for z in range(1, g + 1) if g % z == 0), reverse=True):
        blocks = h.reshape(m // z, z, n // z, z).transpose(0, 2, 1, 3)      # (rows, cols, Z, Z)
        weight, pos = blocks.sum(axis=3), blocks.argmax(axis=3)
        shifted = (pos == (np.arange(z) + pos[..., :1]) % z).all(axis=2)
        if ((weight == 0).all(axis=2) | ((weight == 1).all(axis=2) & shifted)).all():
            return z, np.where(weight[..., 0] == 1, pos[..., 0], -1).astype(np.int64)
    raise AssertionError("unreachable: Z = 1 always fits")


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
        # Check view for :meth:`syndrome`: chk_var[c, j] = variable of the j-th one in row c (pad → n).
        rows, cols = np.nonzero(h)           # edges sorted by check, then variable
        self.n_edges = rows.size
        deg_c = np.bincount(rows, minlength=m)
        start = np.concatenate([[0], np.cumsum(deg_c)[:-1]])
        chk_var = np.full((m, int(deg_c.max(initial=0))), self.n, dtype=np.int64)
        chk_var[rows, np.arange(rows.size) - start[rows]] = cols
        self._chk_var_flat = chk_var.T.ravel()
        self._m = m
        # Decoder layout (see _Messages): the circulant blocks ("block edges") of H, numbered group by
        # group, a group being the block rows of one check degree d (k of them), edge j of its row i
        # at group offset + j·k + i.
        self.z, base = circulant_base(h)
        self._nb = self.n // self.z
        row_cols = [np.nonzero(base[r] >= 0)[0] for r in range(base.shape[0])]
        degree = np.array([cols.size for cols in row_cols], dtype=np.int64)
        self._groups = []                    # (offset, d, k)
        self._edges = []                     # block edge → (block column, shift)
        edge_of = {}                         # (block row, block column) → block edge
        for d in np.unique(degree[degree > 0]):
            rows_d = np.nonzero(degree == d)[0]
            self._groups.append((len(self._edges), int(d), rows_d.size))
            for j in range(d):
                for r in rows_d:
                    c = int(row_cols[r][j])
                    edge_of[r, c] = len(self._edges)
                    self._edges.append((c, int(base[r, c])))
        self._n_blocks = len(self._edges)
        self._row_edges = [[(int(c), int(base[r, c])) for c in cols] for r, cols in enumerate(row_cols)]
        self._col_edges = [[(edge_of[r, c], int(base[r, c])) for r in np.nonzero(base[:, c] >= 0)[0]]
                           for c in range(self._nb)]      # block-row order

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
        m = self._m
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
        ch = llr.reshape(-1, self.n)
        b = ch.shape[0]
        hard = (ch < 0).astype(np.uint8)
        ok = np.zeros(b, dtype=bool)
        iters = np.zeros(b, dtype=np.int64)
        out_llr = ch.copy()
        # Chunks of at most _CHUNK codewords (balanced), decoded one after another in one workspace.
        width = -(-b // max(1, -(-b // _CHUNK))) or 1
        ws = _Workspace(self, width) if b else None
        for lo in range(0, b, width):
            self._decode_chunk(ch[lo: lo + width], np.arange(lo, min(b, lo + width)), ws, max_iter, method,
                               alpha, early_stop, hard, ok, iters, out_llr)
        return DecodeResult(hard.reshape(lead + (self.n,)), ok.reshape(lead), iters.reshape(lead),
                            out_llr.reshape(lead + (self.n,)))

    def _decode_chunk(self, ch, idx, ws, max_iter, method, alpha, early_stop, hard, ok, iters, out_llr):
        """Decode the codewords ``idx`` (channel LLRs ``ch``, (w, n)), writing into the result arrays."""
        # Batch last; +0.0 turns a −0.0 LLR into +0.0, so that a sign bit set means L < 0 below.
        # Finished codewords are recorded at once but leave the arrays only when enough have piled
        # up (compacting copies every message).
        work = _Messages(self, ws, (ch.T + np.float32(0)).reshape(self._nb, self.z, -1))
        live = np.ones(idx.size, dtype=bool)              # columns of `work` not yet recorded
        if early_stop:
            done = ~work.parity_fails()
            ok[idx[done]], live = True, ~done
        for it in range(max_iter):
            if not live.any():
                break
            if not live.all() and (~live).sum() * 8 >= live.size:
                work, idx, live = work.compact(live), idx[live], live[live]
            work.iterate(method, alpha)
            last = it == max_iter - 1
            if early_stop or last:
                done = ~work.parity_fails()
                fin = live & (done if (early_stop and not last) else True)
                if fin.any():
                    tot = work.totals(fin)                   # (n, finished)
                    j = idx[fin]
                    ok[j], hard[j], out_llr[j], iters[j] = done[fin], (tot < 0).T, tot.T, it + 1
                    live &= ~fin


class _Workspace:
    """Flat float32/int32/bool buffers for up to ``width`` codewords, reused by every chunk of a batch
    (touching fresh memory costs a page fault per 4 KiB, a sizeable share of a decode)."""

    def __init__(self, code: LdpcCode, width: int):
        z = code.z
        per_cw = {"ch": code._nb * z, "tot": code._nb * 2 * z, "c2v": code._n_blocks * z,
                  "v": max((d * k for _, d, k in code._groups), default=0) * z,
                  "small": max((k for _, _, k in code._groups), default=0) * z, "row": z}
        self.f = {name: np.empty(size * width, dtype=np.float32) for name, size in per_cw.items()}
        self.f.update({f"small{i}": np.empty(per_cw["small"] * width, dtype=np.float32) for i in (1, 2)})
        self.sign = np.empty(per_cw["v"] * width, dtype=np.int32)
        self.at_min = np.empty(per_cw["v"] * width, dtype=bool)
        self.rows = [np.empty(z * width, dtype=np.int32) for _ in range(2)]

    def take(self, name: str, shape: tuple) -> np.ndarray:
        """The first prod(shape) floats of buffer ``name``, shaped."""
        return self.f[name][: math.prod(shape)].reshape(shape)


class _Messages:
    """The decoder's state for a chunk of w codewords, batch last (a block's Z rows × w codewords are
    one contiguous run of memory).

    With Z the lifting size and E the number of nonzero blocks of the base matrix ("block edges"):

    * ``ch``  (n/Z, Z, w)   channel LLRs, block column by block column;
    * ``tot`` (n/Z, 2Z, w)  total LLR of every variable, each block column stored twice in a row, so
      that the variables met by the checks of a block edge with shift s are the slice ``[s, s+Z)``;
    * ``c2v`` (E, Z, w)     check → variable messages in check order: variable k of the block column
      gets row (k − s) mod Z, i.e. rows ``[Z−s, Z)`` then ``[0, Z−s)`` (two slices, added in turn).

    Block edges are numbered group by group (block rows of equal check degree d form a group of k
    rows), edge j of row i of a group at offset + j·k + i, so a group's messages form a contiguous
    (d, k, Z·w) array whose reductions over the d edges of each check run along the outer axis. The
    variable → check messages of one group at a time live in a scratch array of that shape.
    """

    def __init__(self, code: LdpcCode, ws: _Workspace, ch: np.ndarray):
        self.code, self.ws, z = code, ws, code.z
        w = ch.shape[-1]
        self.ch = ws.take("ch", ch.shape)
        self.ch[...] = ch
        self.tot = ws.take("tot", (code._nb, 2 * z, w))
        self.tot[:, :z] = ch
        self.tot[:, z:] = ch
        self.c2v = ws.take("c2v", (code._n_blocks, z, w))
        self.c2v.fill(0)
        self._views()

    def _views(self):
        code, ws, z, w = self.code, self.ws, self.code.z, self.ch.shape[-1]
        tot, c2v = self.tot, self.c2v
        zw = z * w
        # per group: v2c (scratch, (d, k, Z·w)) ← tot[c, s:s+Z] − c2v[e] edge by edge, and the group's c2v
        self._groups = []
        for off, d, k in code._groups:
            v = ws.take("v", (d, k, zw))
            gather = []
            for e in range(off, off + d * k):
                c, s = code._edges[e]
                gather.append((tot[c, s: s + z], c2v[e], v[divmod(e - off, k)].reshape(z, w)))
            scratch = (ws.sign[: d * k * zw].reshape(d, k, zw), ws.at_min[: d * k * zw].reshape(d, k, zw),
                       [ws.take(name, (k, zw)) for name in ("small", "small1", "small2")])
            self._groups.append((gather, v, c2v[off: off + d * k].reshape(d, k, zw), scratch))
        # per block column, its edges in block-row order: (message rows, accumulator rows) pairs
        self._acc = acc = ws.take("row", (z, w))
        self._sums = []
        for c, col in enumerate(code._col_edges):
            if col:
                pieces = [[(c2v[e, : z - s], acc[s:])] + ([(c2v[e, z - s:], acc[:s])] if s else []) for e, s in col]
                self._sums.append((self.ch[c], tot[c, :z], pieces))

    def compact(self, keep: np.ndarray) -> "_Messages":
        """The same state restricted to the columns ``keep`` (in the same workspace)."""
        ch, tot, c2v = self.ch[..., keep], self.tot[..., keep], self.c2v[..., keep]   # copies
        new = object.__new__(_Messages)
        new.code, new.ws = self.code, self.ws
        new.ch, new.tot, new.c2v = (self.ws.take(name, a.shape) for name, a in (("ch", ch), ("tot", tot), ("c2v", c2v)))
        new.ch[...], new.tot[...], new.c2v[...] = ch, tot, c2v
        new._views()
        return new

    def totals(self, cols: np.ndarray) -> np.ndarray:
        """(n, len(cols)) total LLRs of the chosen columns."""
        return self.tot[:, : self.code.z, cols].reshape(self.code.n, -1)

    def parity_fails(self) -> np.ndarray:
        """(w,) bool: which codewords' hard decisions (sign bits of the totals) violate a check."""
        z, bits = self.code.z, self.tot.view(np.int32)
        fail, acc = (r[: z * bits.shape[-1]].reshape(z, -1) for r in self.ws.rows)
        fail.fill(0)
        for row in self.code._row_edges:
            if row:
                (c, s), rest = row[0], row[1:]
                np.copyto(acc, bits[c, s: s + z])
                for c, s in rest:
                    acc ^= bits[c, s: s + z]
                fail |= acc
        return (fail < 0).any(axis=0)

    def iterate(self, method: str, alpha: np.float32):
        """One flooding iteration: variable → check and check → variable, group by group; new totals."""
        z = self.code.z
        for gather, v, out, (sign, at_min, small) in self._groups:
            for t, c, vv in gather:
                np.subtract(t, c, out=vv)
            if method == "nms":
                _nms_check(v, out, alpha, sign, at_min, small)
            else:
                _bp_check(v, out, sign, small)
        # totals: channel + the messages in block-row order (the order of the earlier gather-and-sum)
        acc = self._acc
        for ch, tot, pieces in self._sums:
            for msg, rows in pieces[0]:
                np.copyto(rows, msg)
            for edge in pieces[1:]:
                for msg, rows in edge:
                    np.add(rows, msg, out=rows)
            np.add(ch, acc, out=tot)
        self.tot[:, z:] = self.tot[:, :z]


_SIGN = np.int32(-(2 ** 31))   # the sign bit of a float32, as an int32


def _signs_and_magnitudes(v: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """Sign bits into ``sign`` (int32), v ← |v|, and the XOR of the sign bits over the edges of each
    check (returned: the sign bit of the product over all of them)."""
    bits = v.view(np.int32)
    np.bitwise_and(bits, _SIGN, out=sign)
    bits ^= sign
    return np.bitwise_xor.reduce(sign, axis=0)


def _nms_check(v, out, alpha, sign, at_min, small):
    """Normalised min-sum check update: (d, k, L) v→c messages ``v`` (overwritten) → c→v into ``out``.

    c→v = α · (product of the other edges' signs) · (min2 on the edge holding the minimum, min1
    elsewhere). Signs are handled as sign bits: the product over the other edges is the XOR over all
    edges XOR the edge's own bit, applied with one more XOR on the result's bits.
    """
    d = v.shape[0]
    prod = _signs_and_magnitudes(v, sign)
    mag = v
    m1, m2, tmp = small
    if d == 1:
        m1[...] = mag[0]
        m2[...] = _BIG
    else:
        np.minimum(mag[0], mag[1], out=m1)
        np.maximum(mag[0], mag[1], out=m2)
        for j in range(2, d):                       # running (min1, min2); a tie gives min2 = min1
            np.maximum(m1, mag[j], out=tmp)
            np.minimum(m2, tmp, out=m2)
            np.minimum(m1, mag[j], out=m1)
    np.less_equal(mag, m1, out=at_min)
    # magnitudes α·min1 and α·min2 (the latter computed as α(min2 − min1) + α·min1), signed with prod
    np.subtract(m2, m1, out=m2)
    m2 *= alpha
    m1 *= alpha
    m2 += m1
    a1, a2 = m1.view(np.int32), m2.view(np.int32)
    a2 ^= a1                                        # α·min2 XOR α·min1 (as bits)
    a1 ^= prod                                      # α·min1 with the sign of the product of all signs
    # bits: a1 XOR a2 (signed α·min2) on the minimum's edge, a1 elsewhere; then the edge's own sign bit
    res = np.multiply(at_min, a2, out=v.view(np.int32))
    res ^= a1
    np.bitwise_xor(res, sign, out=out.view(np.int32))


def _bp_check(v, out, sign, small):
    """Sum-product check update in the log domain: c→v = Π sign · φ(Σ φ(|·|) over the other edges)."""
    prod = _signs_and_magnitudes(v, sign)
    phi = v
    _phi_inplace(phi)
    total = np.add.reduce(phi, axis=0, out=small[0])
    np.subtract(total, phi, out=phi)               # ≥ 0 up to rounding; φ clips it away from 0
    _phi_inplace(phi)
    bits = phi.view(np.int32)
    bits ^= prod
    np.bitwise_xor(bits, sign, out=out.view(np.int32))


def _phi_inplace(x: np.ndarray) -> None:
    """x ← φ(x) = −log tanh(x/2) = log1p(2/expm1(x)), the argument clipped to [1e-7, 40]."""
    np.maximum(x, _PHI_CLIP, out=x)
    np.minimum(x, np.float32(40), out=x)
    np.expm1(x, out=x)
    np.divide(np.float32(2), x, out=x)
    np.log1p(x, out=x)


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
        from jscec.errors import UserError
        raise UserError(f"unknown LDPC rate {rate!r}: choose one of {', '.join(RATES)}")
    z, base = load_base_matrices()
    if rate not in base:
        from jscec.errors import UserError
        raise UserError(f"the LDPC base-matrix file has no rate {rate}")
    return LdpcCode(expand(base[rate], z), name=f"802.11ad rate {rate} (n=672)")
