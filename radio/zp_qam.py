"""Z_p ↔ 4096-QAM and the soft ciphertext of eqs. 14–15 (numpy only).

Mapping
-------
A ciphertext value c ∈ Z_p (p = 4093) is sent as a point of a 64×64 square QAM, row-major: the row
``c // 64`` sets the quadrature (imaginary) level and the column ``c % 64`` the in-phase (real)
level, level j being ``(2j − 63)·scale``. The last 4096 − p points (row 63, columns 61–63) are never
used, and ``scale`` gives unit mean power over the p used points (eq. 13).

Soft demapping
--------------
Eqs. 14–15 in the log domain: weights w_j ∝ exp(σ_l · log P(y | c_j)) with
P(y | c) ∝ exp(−|y − x_c|² / σ²), σ² the total complex noise variance (``noise_var``). σ_l = 1 gives
the posterior. Z_p is a circle, so the weighted mean of eq. 15 is taken circularly:
:func:`soft_demap_phasor` returns E_w[exp(2πi c/p)] (its magnitude is a confidence, 1 = certain) and
:func:`soft_demap` its angle mapped back to [0, p).

How the hot path avoids the k × 4096 matrix
-------------------------------------------
With g = σ_l/σ², level spacing Δ and the received coordinate on each axis in level units x (level j
at j), the log-weight of point (r, col) is −G(x_r − r)² − G(x_c − col)² with G = gΔ², and
exp(2πi(64r + col)/p) = e^{iθ_r r} e^{iθ_c col}. The sums over the full 64×64 grid therefore factor
into a row sum times a column sum, and the unused corner points (row 63, columns n_last..63) are
subtracted exactly. Each axis is normalised to its nearest level (per-axis max subtraction, with
log-weights written as −G(j − j*)(j + j* − 2x) so that nothing cancels or overflows at any SNR), and
each axis sum is evaluated one of two ways:

* **block** (G ≤ 0.7, i.e. up to ~27 dB at σ_l = 1, where many levels matter): with j = 8H + T,
  e^{−G(x−j)²} = A_H · E_T · e^{−16GHT}; the last factor is a fixed 8×8 matrix, E_T comes from a
  one-exponential recurrence and A_H from eight exponentials (or, for G ≤ 0.15, from a second
  recurrence), so an axis costs 2–9 exponentials and an (24×8)·(8×k) product instead of 64
  exponentials per symbol.
* **window** (larger G, and the rare far outliers): only the levels within M of the nearest one
  can weigh more than e^{−60}; M shrinks quickly with SNR (6 at 30 dB, 1 at 60 dB).

All arithmetic is float64 (float32 cannot hold the result to 1e-6 in Z_p units: its phase resolution
alone is ~4e-5 units); large scratch arrays are reused between chunks and calls (fresh ones cost
page faults that were a third of the run time). Symbols with more than 99% of their full-grid mass
on the unused points (where the exact subtraction would cancel; none in 10⁶ random symbols at any
SNR) and symbols with non-finite coordinates are recomputed with the direct formula.
:func:`soft_demap_oracle` is that direct k × p formula, kept as the test oracle.
"""
from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

from crypto.zp import P

#: Points per axis of the square QAM.
SIDE = 64
#: Size of the square QAM grid.
ORDER = SIDE * SIDE
_LEVELS = np.arange(SIDE, dtype=np.float64) * 2 - (SIDE - 1)

# Log-weight below which a term is dropped by the window path (relative to the axis maximum, which
# is 1): e^-60 ≈ 9e-27, far below float64 resolution of the sums it would join.
_NEGLIGIBLE = 60.0
# The block path is used for G up to this value (beyond it the window path is as cheap) and for
# coordinates x < _BLOCK_XMAX_G / G (so e^{2GxT} stays far from overflow).
_BLOCK_G_MAX = 0.7
_BLOCK_XMAX_G = 40.0
# Below this G the block path's row factors A_H also come from a recurrence (see _axis_block).
_RECURSE_G_MAX = 0.15
# Recompute a symbol directly when more than 1 − _CANCEL of its full-grid mass is on unused points
# (so the exact subtraction of their share loses at most two digits).
_CANCEL = 1e-2
_CHUNK = 4096


def _check_p(p: int) -> int:
    p = int(p)
    if not SIDE * (SIDE - 1) < p <= ORDER:
        raise ValueError(f"p must lie in ({SIDE * (SIDE - 1)}, {ORDER}] for the 64x64 grid, got {p}")
    return p


@lru_cache(maxsize=8)
def _scale(p: int = P) -> float:
    idx = np.arange(_check_p(p))
    power = np.mean(_LEVELS[idx % SIDE] ** 2 + _LEVELS[idx // SIDE] ** 2)
    return float(1.0 / np.sqrt(power))


@lru_cache(maxsize=8)
def _constellation(p: int) -> np.ndarray:
    idx = np.arange(p)
    pts = (_LEVELS[idx % SIDE] + 1j * _LEVELS[idx // SIDE]) * _scale(p)
    pts.setflags(write=False)
    return pts


def constellation(p: int = P) -> np.ndarray:
    """The p used points (complex128, unit mean power, eq. 13), indexed by their Z_p value."""
    return _constellation(_check_p(p)).copy()


def modulate(c, p: int = P) -> np.ndarray:
    """Z_p values (integer array of any shape, each in [0, p)) → complex64 4096-QAM symbols."""
    p = _check_p(p)
    c = np.asarray(c)
    if c.dtype.kind not in "iu":
        if c.size and not np.all(np.mod(c, 1) == 0):
            raise ValueError("ciphertext values must be integers")
        c = c.astype(np.int64)
    c = c.astype(np.int64, copy=False)
    if c.size and (c.min() < 0 or c.max() >= p):
        raise ValueError(f"ciphertext values must lie in [0, {p})")
    s = _scale(p)
    out = np.empty(c.shape, dtype=np.complex64)
    out.real = _LEVELS[c % SIDE] * s
    out.imag = _LEVELS[c // SIDE] * s
    return out


def _level_coords(y: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """(column, row) coordinates of ``y`` in level units: level j sits at j."""
    half = 0.5 / _scale(p)
    return (y.real.astype(np.float64) * half + (SIDE - 1) / 2,
            y.imag.astype(np.float64) * half + (SIDE - 1) / 2)


def hard_demap(y, p: int = P) -> np.ndarray:
    """Index (int64, same shape as ``y``) of the nearest used constellation point."""
    p = _check_p(p)
    y = np.asarray(y)
    xc, xr = _level_coords(y, p)
    col = np.clip(np.rint(np.nan_to_num(xc)), 0, SIDE - 1).astype(np.int64)
    row = np.clip(np.rint(np.nan_to_num(xr)), 0, SIDE - 1).astype(np.int64)
    c = row * SIDE + col
    unused = c >= p
    if np.any(unused):
        # The nearest used point to an unused cell (63, col) is (62, col) or (63, n_last - 1).
        last = p - 1
        up = c[unused] - SIDE
        xr_u, xc_u = xr[unused], xc[unused]
        d_up = (xr_u - (SIDE - 2)) ** 2 + (xc_u - up % SIDE) ** 2
        d_left = (xr_u - (SIDE - 1)) ** 2 + (xc_u - last % SIDE) ** 2
        c[unused] = np.where(d_left < d_up, last, up)
    return c


# ---------------------------------------------------------------------------------------------------
# The factorised soft demapper.
# ---------------------------------------------------------------------------------------------------

@lru_cache(maxsize=16)
def _phase_table(theta: float) -> tuple[np.ndarray, np.ndarray]:
    j = np.arange(SIDE, dtype=np.float64)
    return np.cos(theta * j), np.sin(theta * j)


@lru_cache(maxsize=64)
def _block_matrix(G: float, theta: float) -> np.ndarray:
    """(24, 8): rows (quantity, H) for quantity ∈ {1, cos θj, sin θj}; entry e^{−16GHT}·w(8H+T)."""
    h = np.arange(8, dtype=np.float64)[:, None]
    t = np.arange(8, dtype=np.float64)[None, :]
    k = np.exp(-16.0 * G * h * t)
    cos, sin = _phase_table(theta)
    j = (8 * h + t).astype(np.int64)
    return np.concatenate([k, k * cos[j], k * sin[j]], axis=0)


@lru_cache(maxsize=64)
def _window_matrix(theta: float, width: int) -> np.ndarray:
    i = np.arange(width, dtype=np.float64)
    return np.stack([np.ones(width), np.cos(theta * i), np.sin(theta * i)])


def _window_half_width(G: float) -> int:
    """Smallest M such that every level further than M from the nearest one has weight < e^-60."""
    if G <= 0:
        return SIDE
    m = 1
    while m < SIDE and G * m * (m + 1) <= _NEGLIGIBLE:
        m += 1
    return m


def _clamp_exponent(a: np.ndarray) -> np.ndarray:
    # exp() of arguments below about -708 is several times slower (it produces subnormals or zero),
    # so floor the exponents at -700. e^-700 is as good as zero here: weights are relative to 1,
    # and a floored block factor A_H meets factors E_T·e^{-16GHT} of at most e^{14Gx} < e^{560}.
    return np.maximum(a, -700.0, out=a)


class _Workspace:
    """Scratch buffers reused from chunk to chunk (fresh large temporaries cost page faults)."""

    def __init__(self, chunk: int):
        self.chunk = chunk
        self._bufs: dict[str, np.ndarray] = {}

    def get(self, name: str, rows: int, n: int) -> np.ndarray:
        buf = self._bufs.get(name)
        if buf is None or buf.size < rows * self.chunk:
            buf = self._bufs[name] = np.empty(rows * self.chunk)
        return buf[:rows * n].reshape(rows, n)


_LOCAL = threading.local()


def _workspace(chunk: int) -> _Workspace:
    """This thread's workspace (kept between calls: first touches of large buffers are slow)."""
    ws = getattr(_LOCAL, "ws", None)
    if ws is None or ws.chunk != chunk:
        ws = _LOCAL.ws = _Workspace(chunk)
    return ws


@lru_cache(maxsize=64)
def _block_basis(G: float) -> np.ndarray:
    h = np.arange(8, dtype=np.float64)
    return np.stack([np.ones(8), h, -64.0 * G * h * h], axis=1)


@lru_cache(maxsize=64)
def _window_basis(G: float, width: int) -> np.ndarray:
    i = np.arange(width, dtype=np.float64)
    return np.stack([np.ones(width), i, -G * i * i], axis=1)


def _axis_block(x, jstar, G, theta, ws, out):
    """All 64 levels of one axis, factorised as j = 8H + T (small G only).

    Writes ``out`` (3, k) = Σ_j a_j (1, cos θj, sin θj) with a_j = e^{−G((x−j)² − (x−j*)²)} (so
    a_{j*} = 1) and returns the factors (A (8, k), E (8, k)), a_{8H+T} = A_H E_T e^{−16GHT}.
    """
    n = x.size
    # A_H = e^{−G((x−8H)² − (x−j*)²)} = e^{α + Hβ − 64GH²}, α = −G j*(2x − j*), β = 16Gx.
    coef = ws.get("coef", 3, n)
    np.multiply(x, 2.0, out=coef[0])
    coef[0] -= jstar
    coef[0] *= jstar
    coef[0] *= -G
    np.multiply(x, 16.0 * G, out=coef[1])
    coef[2] = 1.0
    a = ws.get("a", 8, n)
    if G <= _RECURSE_G_MAX and coef[0].min() > -600.0:
        # A_H = A_{H−1} · e^β · e^{−64G(2H−1)}: two exponentials per symbol. Multiplying by e^β
        # first keeps every intermediate within [A_H, A_H e^{832G}], far from under- and overflow,
        # and A_0 = e^α is safely normal; past its peak A_H only decreases (the exponent is
        # concave in H), so an underflow there is harmless.
        np.exp(coef[0], out=a[0])
        big = np.exp(coef[1])
        step = np.exp(-64.0 * G * (2.0 * np.arange(8) - 1.0))
        for h in range(1, 8):
            np.multiply(a[h - 1], big, out=a[h])
            a[h] *= step[h]
    else:
        np.matmul(_block_basis(G), coef, out=a)
        _clamp_exponent(a)
        np.exp(a, out=a)
    # E_T = e^{2GxT − GT²} = E_{T−1} · q · e^{−G(2T−1)}, q = e^{2Gx}: one exponential per symbol.
    e = ws.get("e", 8, n)
    e[0] = 1.0
    q = np.exp(2.0 * G * x)
    step = np.exp(-G * (2.0 * np.arange(8) - 1.0))
    np.multiply(q, step[1], out=e[1])
    for t in range(2, 8):
        np.multiply(e[t - 1], q, out=e[t])
        e[t] *= step[t]
    f = ws.get("f", 24, n)
    np.matmul(_block_matrix(G, theta), e, out=f)
    f3 = f.reshape(3, 8, n)
    f3 *= a
    np.sum(f3, axis=1, out=out)
    return a, e


def _axis_window(x, jstar, G, theta, m, ws, out):
    """Same sums as :func:`_axis_block` over the levels j* − m … j* + m only (a window in 0..63)."""
    width = min(SIDE, 2 * m + 1)
    n = x.size
    start = np.clip(jstar - m, 0, SIDE - width)
    # −G((x−j)² − (x−j*)²) = −G d(d − 2ξ) with d = j − j* = i + δ, δ = start − j*, ξ = x − j*:
    # = −G i² + i·2G(ξ − δ) + Gδ(2ξ − δ).
    delta = start - jstar
    xi = x - jstar
    coef = ws.get("coef", 3, n)
    np.multiply(xi, 2.0, out=coef[0])
    coef[0] -= delta
    coef[0] *= delta
    coef[0] *= G
    np.subtract(xi, delta, out=coef[1])
    coef[1] *= 2.0 * G
    coef[2] = 1.0
    a = ws.get("a", width, n)
    np.matmul(_window_basis(G, width), coef, out=a)
    _clamp_exponent(a)
    np.exp(a, out=a)
    np.matmul(_window_matrix(theta, width), a, out=out)
    # Rotate (cos, sin) by θ·start.
    cos, sin = _phase_table(theta)
    s = start.astype(np.int64)
    cs, sn = cos[s], sin[s]
    re = out[1] * cs - out[2] * sn
    out[2] *= cs
    out[2] += out[1] * sn
    out[1] = re


def _level_bounds(G: float) -> tuple[float, float]:
    """Coordinates beyond which every weight but the edge level's is below e^-100: clamp there."""
    reach = 100.0 / G + 2.0 if G > 0 else 1e12
    return -reach, SIDE - 1 + reach


def _axis_sums(x, G, theta, ws, name):
    """(sums (3, k), j* (k,), (A, E) or None): one axis, by the block path where it is safe."""
    n = x.size
    out = ws.get(name, 3, n)
    jstar = np.clip(np.rint(x), 0, SIDE - 1)
    if G <= _BLOCK_G_MAX:
        safe = x < _BLOCK_XMAX_G / G if G > 0 else np.ones(n, dtype=bool)
        if safe.all():
            return out, jstar, _axis_block(x, jstar, G, theta, ws, out)
        bad = ~safe
        tmp = np.empty((3, int(safe.sum())))
        _axis_block(x[safe], jstar[safe], G, theta, ws, tmp)
        out[:, safe] = tmp
        tmp = np.empty((3, int(bad.sum())))
        _axis_window(x[bad], jstar[bad], G, theta, _window_half_width(G), ws, tmp)
        out[:, bad] = tmp
        return out, jstar, None
    _axis_window(x, jstar, G, theta, _window_half_width(G), ws, out)
    return out, jstar, None


@lru_cache(maxsize=64)
def _missing_matrix(G: float, theta: float, n_last: int) -> np.ndarray:
    """(3, 8): Σ over the unused columns n_last..63 (all in block H = 7) of e^{−16G·7T}·(1, cos, sin)."""
    t = np.arange(8)
    k = np.exp(-16.0 * G * 7 * t) * (56 + t >= n_last)
    cos, sin = _phase_table(theta)
    return np.stack([k, k * cos[56 + t], k * sin[56 + t]])


def _phasor_chunk(y: np.ndarray, g: float, p: int, ws: _Workspace) -> np.ndarray:
    scale = _scale(p)
    G = g * (2.0 * scale) ** 2
    theta_c = 2.0 * np.pi / p
    theta_r = 2.0 * np.pi * SIDE / p
    n_last = p - SIDE * (SIDE - 1)  # used columns of the last row
    xc, xr = _level_coords(y, p)
    finite = np.isfinite(xc) & np.isfinite(xr)
    all_finite = bool(finite.all())
    if not all_finite:
        xc[~finite] = 0.0
        xr[~finite] = 0.0
    lo, hi = _level_bounds(G)
    np.clip(xc, lo, hi, out=xc)
    np.clip(xr, lo, hi, out=xr)

    # Rows (quadrature) first, then the weight a_63 of the last row, whose unused points
    # (63, n_last..63) are subtracted below.
    row, jr, blk = _axis_sums(xr, G, theta_r, ws, "rows")
    a63 = None
    if n_last < SIDE:
        if blk is not None:
            a63 = blk[0][7] * blk[1][7]
            a63 *= np.exp(-16.0 * G * 49)
        else:
            a63 = -G * (SIDE - 1 - jr) * ((SIDE - 1 + jr) - 2.0 * xr)
            np.exp(_clamp_exponent(a63), out=a63)
    col, jc, blk = _axis_sums(xc, G, theta_c, ws, "cols")

    num_re = row[1] * col[1]
    num_re -= row[2] * col[2]
    num_im = row[1] * col[2]
    num_im += row[2] * col[1]
    full = row[0] * col[0]
    z = full.copy()
    if a63 is not None:
        # Σ over the unused columns of b_col · (1, cos θ_c col, sin θ_c col).
        if blk is not None and n_last >= 56:  # the unused columns all lie in block H = 7
            miss = _missing_matrix(G, theta_c, n_last) @ blk[1]
            miss *= blk[0][7]
            idx = slice(None)
        else:
            idx = np.nonzero(a63 > 1e-290)[0]
            xs, js = xc[idx], jc[idx]
            cols = np.arange(n_last, SIDE, dtype=np.float64)[:, None]
            b = _clamp_exponent(-G * (cols - js) * ((cols + js) - 2.0 * xs))
            np.exp(b, out=b)
            cos, sin = _phase_table(theta_c)
            miss = np.stack([b.sum(0), cos[n_last:] @ b, sin[n_last:] @ b])
        a = a63[idx]
        ang = theta_r * (SIDE - 1)
        rc, rs = np.cos(ang), np.sin(ang)
        num_re[idx] -= a * (rc * miss[1] - rs * miss[2])
        num_im[idx] -= a * (rc * miss[2] + rs * miss[1])
        z[idx] -= a * miss[0]
    out = np.empty(y.shape, dtype=np.complex128)
    with np.errstate(divide="ignore", invalid="ignore"):
        out.real = num_re / z
        out.imag = num_im / z
    redo = ~(z > _CANCEL * full)
    if not all_finite:
        redo |= ~finite
    if redo.any():
        out[redo] = _oracle_phasor(y[redo], g, p)
    return out


def _validate(noise_var, sigma_l) -> float:
    noise_var = float(noise_var)
    sigma_l = float(sigma_l)
    if not noise_var > 0 or not np.isfinite(noise_var):
        raise ValueError(f"noise_var must be a positive finite number, got {noise_var}")
    if not sigma_l >= 0 or not np.isfinite(sigma_l):
        raise ValueError(f"sigma_l must be a non-negative finite number, got {sigma_l}")
    return sigma_l / noise_var


def soft_demap_phasor(y, noise_var: float, sigma_l: float = 1.0, p: int = P,
                      chunk: int = _CHUNK) -> np.ndarray:
    """E_w[exp(2πi c/p)] per symbol (eqs. 14–15, log domain), complex128 of the shape of ``y``.

    ``noise_var`` is σ², the total complex noise variance; ``sigma_l`` multiplies the
    log-likelihood (1 = posterior mean). The magnitude (≤ 1) is a confidence: 1 means certain.
    """
    p = _check_p(p)
    g = _validate(noise_var, sigma_l)
    y = np.asarray(y)
    flat = y.reshape(-1)
    out = np.empty(flat.shape, dtype=np.complex128)
    ws = _workspace(chunk)
    for i in range(0, flat.size, chunk):
        out[i:i + chunk] = _phasor_chunk(flat[i:i + chunk], g, p, ws)
    return out.reshape(y.shape)


def _phasor_to_zp(ph: np.ndarray, p: int) -> np.ndarray:
    c = np.mod(np.angle(ph) * (p / (2.0 * np.pi)), p)
    return np.where(c >= p, 0.0, c)  # mod of a tiny negative number can round up to p


def soft_demap(y, noise_var: float, sigma_l: float = 1.0, p: int = P) -> np.ndarray:
    """Soft ciphertext ĉ ∈ [0, p) (eq. 15, circular weighted mean), float64 of the shape of ``y``."""
    return _phasor_to_zp(soft_demap_phasor(y, noise_var, sigma_l, p), p)


# ---------------------------------------------------------------------------------------------------
# The oracle: the direct formula over all p points.
# ---------------------------------------------------------------------------------------------------

def _oracle_phasor(y: np.ndarray, g: float, p: int, chunk: int = 1024) -> np.ndarray:
    pts = _constellation(p)
    rot = np.exp(2j * np.pi * np.arange(p) / p)
    y = np.asarray(y, dtype=np.complex128).reshape(-1)
    out = np.empty(y.shape, dtype=np.complex128)
    with np.errstate(invalid="ignore", divide="ignore"):  # non-finite y give nan
        for i in range(0, y.size, chunk):
            yc = y[i:i + chunk]
            ll = -g * ((yc.real[:, None] - pts.real[None, :]) ** 2 + (yc.imag[:, None] - pts.imag[None, :]) ** 2)
            ll -= ll.max(axis=1, keepdims=True)
            w = np.exp(ll)
            out[i:i + chunk] = (w @ rot) / w.sum(axis=1)
    return out


def soft_demap_phasor_oracle(y, noise_var: float, sigma_l: float = 1.0, p: int = P) -> np.ndarray:
    """Direct E_w[exp(2πi c/p)] from the full k × p log-likelihood matrix (test oracle, slow)."""
    p = _check_p(p)
    g = _validate(noise_var, sigma_l)
    y = np.asarray(y)
    return _oracle_phasor(y, g, p).reshape(y.shape)


def soft_demap_oracle(y, noise_var: float, sigma_l: float = 1.0, p: int = P) -> np.ndarray:
    """Direct soft ciphertext from the full k × p log-likelihood matrix (test oracle, slow)."""
    return _phasor_to_zp(soft_demap_phasor_oracle(y, noise_var, sigma_l, p), p)
