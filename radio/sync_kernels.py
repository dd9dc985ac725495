"""Compiled inner loops of the synchroniser (numba), for the per-frame work numpy does in many small calls.

A CIFAR-size frame is short (~4800 samples), so numpy's per-call overhead, not arithmetic, set the
synchroniser's speed: the header window's filter (de-rotation, two float32 convolutions, a complex
merge) and the fractional interpolator (gather, two ``einsum``) were a third of its time. These loops
do the same arithmetic in one pass each, release the GIL (the GNU Radio block's threads and the
frame publisher run alongside), and are compiled once per machine (``cache=True``: later processes,
such as the synchroniser's worker, load the compiled code from disk; :func:`radio.sync.warm_up` does
that before a stream starts).

No ``fastmath``: the results do not depend on the SIMD width of the machine that runs them.
"""
from __future__ import annotations

import numpy as np
from numba import njit

#: Samples per exactly computed rotator anchor (between anchors: a product with a short table).
_ROT_BLOCK = 64


@njit(cache=True, nogil=True)
def derotate_filter(x, first, freq, taps):
    """``np.convolve(x·e^{−2πj·freq·(first + k)}, taps, 'same')`` for complex64 ``x``, real odd-length ``taps``.

    The rotator is exact in float64 at every ``_ROT_BLOCK``-th sample and a product of two exact
    factors in between; the filter runs in float32 (its error is far below −60 dB).
    """
    n, m = x.size, taps.size
    h = (m - 1) // 2
    fine = np.empty(_ROT_BLOCK, np.complex128)
    for j in range(_ROT_BLOCK):
        fine[j] = np.exp(-2j * np.pi * freq * j)
    # Interleaved re/im float32 with h zeros (complex) each side; the filter is real, so it runs over
    # the interleaved values with a stride of 2 between taps.
    xp = np.zeros(2 * (n + 2 * h), np.float32)
    for b in range(0, n, _ROT_BLOCK):
        anchor = np.exp(-2j * np.pi * freq * (first + b))
        for j in range(min(_ROT_BLOCK, n - b)):
            v = x[b + j] * (anchor * fine[j])
            xp[2 * (h + b + j)] = v.real
            xp[2 * (h + b + j) + 1] = v.imag
    y = np.zeros(2 * n, np.float32)
    # Tap-major, so the inner loop is an axpy that vectorises; its indices are sums of loop counters
    # (numba wraps negative indices, and a subtraction there would cost a check per element).
    for j in range(m):
        c = np.float32(taps[m - 1 - j])
        for i in range(2 * n):
            y[i] += c * xp[i + 2 * j]
    return y.view(np.complex64)


@njit(cache=True, nogil=True)
def interpolate(y, t, table, dtable, half, res, deriv):
    """y(t_k) = Σ_j y[i + j]·w_j(μ) with i = ⌊t_k⌋ − half + 1, μ = t_k − ⌊t_k⌋ rounded to 1/res
    (``table``: one row of weights per μ step); with ``deriv`` also y'(t_k) from ``dtable``.

    Returns (values, derivatives) — the second array is empty without ``deriv``. Raises IndexError
    when a window reaches outside ``y``.
    """
    n, w = t.size, table.shape[1]
    out = np.empty(n, np.complex64)
    dout = np.empty(n if deriv else 0, np.complex64)
    for k in range(n):
        f = np.floor(t[k])
        row = int(np.rint((t[k] - f) * res))
        base = int(f) - half + 1
        if base < 0 or base + w > y.size:
            raise IndexError("interpolation window outside the samples")
        sr = np.float32(0.0)
        si = np.float32(0.0)
        dr = np.float32(0.0)
        di = np.float32(0.0)
        for j in range(w):
            v = y[base + j]
            c = table[row, j]
            sr += v.real * c
            si += v.imag * c
            if deriv:
                dc = dtable[row, j]
                dr += v.real * dc
                di += v.imag * dc
        out[k] = complex(sr, si)
        if deriv:
            dout[k] = complex(dr, di)
    return out, dout



@njit(cache=True, nogil=True)
def differential(mf, lo, hi, sps):
    """The detector's CFO-free stream z[i] = mf[lo + i]·conj(mf[lo + i − sps]) for lo + i < hi
    (lo ≥ sps), and the running sum of |z|² (float64, with a leading 0)."""
    n = hi - lo
    z = np.empty(n, np.complex64)
    cs = np.empty(n + 1)
    cs[0] = 0.0
    acc = 0.0
    for i in range(n):
        v = mf[lo + i] * np.conj(mf[lo + i - sps])
        z[i] = v
        acc += v.real * v.real + v.imag * v.imag
        cs[i + 1] = acc
    return z, cs


@njit(cache=True, nogil=True)
def first_peak(c, cs, first, off, scale, threshold, span):
    """The first detection in a block of the correlator's output ``c``.

    The metric is ρ[i] = |c[i]|² / (scale·E[i]) with E[i] = cs[i + first + 1] − cs[i], the energy of
    z over the correlator's span. Returns (a, j, ρ[j]): ``a`` the first i ≥ ``off`` with
    ρ > ``threshold`` (−1: none), ``j`` the first maximum of ρ over [a, a + span] (−1 when that
    range runs past the block: decide when more samples came).
    """
    n = c.size
    a = -1
    for i in range(off, n):
        if _rho(c, cs, first, scale, i) > threshold:
            a = i
            break
    if a < 0 or a + span >= n:
        return a, -1, 0.0
    j, best = a, -1.0
    for i in range(a, a + span + 1):
        r = _rho(c, cs, first, scale, i)
        if r > best:
            j, best = i, r
    return a, j, best


@njit(cache=True, nogil=True, inline="always")
def _rho(c, cs, first, scale, i):
    v = c[i]
    p = float(v.real) * v.real + float(v.imag) * v.imag
    return p / (scale * (cs[i + first + 1] - cs[i]) + 1e-30)



@njit(cache=True, nogil=True)
def rotator(n, freq):
    """exp(−2πj·freq·k) for k = 0..n−1 (complex64)."""
    out = np.empty(n, np.complex64)
    fine = np.empty(_ROT_BLOCK, np.complex128)
    for j in range(_ROT_BLOCK):
        fine[j] = np.exp(-2j * np.pi * freq * j)
    for b in range(0, n, _ROT_BLOCK):
        anchor = np.exp(-2j * np.pi * freq * b)
        for j in range(min(_ROT_BLOCK, n - b)):
            out[b + j] = anchor * fine[j]
    return out


@njit(cache=True, nogil=True)
def grid_gain(s, known, known_sym, bins, counts, op):
    """The gain/phase tracker's linear smoother: the bin means of the known ratios s[known]/x
    (``bins``: each known symbol's bin, ``counts``: symbols per bin) through the real operator ``op``
    (grid points × bins) → the complex gain at the grid points."""
    nb = counts.size
    vr = np.zeros(nb)
    vi = np.zeros(nb)
    for k in range(known.size):
        r = s[known[k]] / known_sym[k]
        vr[bins[k]] += r.real
        vi[bins[k]] += r.imag
    for b in range(nb):
        vr[b] /= counts[b]
        vi[b] /= counts[b]
    ng = op.shape[0]
    g = np.empty(ng, np.complex128)
    for r in range(ng):
        sr = 0.0
        si = 0.0
        for b in range(nb):
            sr += op[r, b] * vr[b]
            si += op[r, b] * vi[b]
        g[r] = complex(sr, si)
    return g


@njit(cache=True, nogil=True)
def gain_at(g, grid, step, pos):
    """Linear interpolation of the grid gain ``g`` (grid points every ``step`` symbols from 0; the
    last may be closer) to symbol positions ``pos`` (within the grid)."""
    last = grid.size - 2
    out = np.empty(pos.size, np.complex128)
    for k in range(pos.size):
        p = pos[k]
        j = min(int(p // step), last)
        f = (p - grid[j]) / (grid[j + 1] - grid[j])
        out[k] = g[j] + (g[j + 1] - g[j]) * f
    return out


@njit(cache=True, nogil=True)
def phase_ramp(g, x):
    """Least-squares slope of the unwrapped phase of ``g`` against ``x`` (radians per unit of x)."""
    n = g.size
    ph = np.empty(n)
    prev = np.angle(g[0])
    ph[0] = prev
    for k in range(1, n):
        a = np.angle(g[k])
        d = a - prev
        d -= 2 * np.pi * np.floor((d + np.pi) / (2 * np.pi))
        ph[k] = ph[k - 1] + d
        prev = a
    xm = x.mean()
    num = 0.0
    den = 0.0
    for k in range(n):
        num += (x[k] - xm) * ph[k]
        den += (x[k] - xm) * (x[k] - xm)
    return num / den

