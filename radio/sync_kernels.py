"""Compiled inner loops of the synchroniser (numba), for the per-frame work numpy does in many small calls.

A CIFAR-size frame is short (~4800 samples), so numpy's per-call overhead, not arithmetic, set the
synchroniser's speed: the header window's filter (de-rotation, two float32 convolutions, a complex
merge) and the fractional interpolator (gather, two ``einsum``) were a third of its time. These loops
do the same arithmetic in one pass each, and are compiled once per machine (``cache=True``: later processes,
such as the synchroniser's worker, load the compiled code from disk; :func:`radio.sync.warm_up` does
that before a stream starts).

No ``fastmath``: the results do not depend on the SIMD width of the machine that runs them. No
``nogil``: the calls are short, and releasing the GIL at each one did not speed up the replay
benchmark (0.52 s with it, 0.50 s without, on the 500-frame CIFAR-10 recording).
"""
from __future__ import annotations

import numpy as np
from numba import njit

#: Samples per exactly computed rotator anchor (between anchors: a product with a short table).
_ROT_BLOCK = 64


@njit(cache=True)
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
    # Tap-major, eight taps per pass (one load and store of y per eight taps, same order of additions
    # as one tap at a time): the inner loop vectorises. Its indices are a loop counter plus constants
    # on a view (numba wraps negative indices, and a subtraction there would cost a check per element).
    j = 0
    while j + 8 <= m:
        c0, c1, c2, c3 = taps[m - 1 - j], taps[m - 2 - j], taps[m - 3 - j], taps[m - 4 - j]
        c4, c5, c6, c7 = taps[m - 5 - j], taps[m - 6 - j], taps[m - 7 - j], taps[m - 8 - j]
        v = xp[2 * j:2 * j + 2 * n + 14]
        for i in range(2 * n):
            y[i] = (y[i] + c0 * v[i] + c1 * v[i + 2] + c2 * v[i + 4] + c3 * v[i + 6] + c4 * v[i + 8]
                    + c5 * v[i + 10] + c6 * v[i + 12] + c7 * v[i + 14])
        j += 8
    while j < m:
        c = taps[m - 1 - j]
        v = xp[2 * j:2 * j + 2 * n]
        for i in range(2 * n):
            y[i] += c * v[i]
        j += 1
    return y.view(np.complex64)


@njit(cache=True)
def iq_fit_sums(s, h, x, v, rot, t, freq, taps):
    """The sums of the least-squares fit of a frame's DC and image (:meth:`radio.sync.FrameFinisher._fit_iq`)
    over its known symbols x: residuals e = s − h·x, image regressor v·rot (v: the chain's output for
    conj(raw), conjugated), DC regressor u = hf·e^{−2πj·freq·t}·rot, hf = Σ taps[j]·cos(2π·freq·(j − delay))
    the matched filter's response at −freq. Returns (v·v, v·e, u·u, u·e, v·u, e·e, hf) with
    a·b = Σ conj(a)·b."""
    hf = 0.0
    mid = (taps.size - 1) // 2
    for j in range(taps.size):
        hf += taps[j] * np.cos(2 * np.pi * freq * (j - mid))
    vv = uu = ee = 0.0
    ve = ue = vu = 0j
    for k in range(s.size):
        e = complex(s[k]) - h[k] * x[k]
        vk = complex(v[k]) * rot[k]
        uk = hf * np.exp(-2j * np.pi * freq * t[k]) * rot[k]
        vv += vk.real * vk.real + vk.imag * vk.imag
        uu += uk.real * uk.real + uk.imag * uk.imag
        ee += e.real * e.real + e.imag * e.imag
        ve += vk.conjugate() * e
        ue += uk.conjugate() * e
        vu += vk.conjugate() * uk
    return vv, ve, uu, ue, vu, ee, hf


@njit(cache=True)
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
        # Views indexed by a loop counter: numba then knows the index is not negative (no wrap
        # check); written out here because a helper function per symbol cost 3× as much.
        win = y[base:base + w]
        wt = table[row]
        sr = np.float32(0.0)
        si = np.float32(0.0)
        for j in range(w):
            sr += win[j].real * wt[j]
            si += win[j].imag * wt[j]
        out[k] = complex(sr, si)
        if deriv:
            wd = dtable[row]
            dr = np.float32(0.0)
            di = np.float32(0.0)
            for j in range(w):
                dr += win[j].real * wd[j]
                di += win[j].imag * wd[j]
            dout[k] = complex(dr, di)
    return out, dout


@njit(cache=True)
def preamble_timing(y, tau0, pre, sps, kappa, iterations, table, dtable, half, res):
    """Data-aided timing on the preamble ``pre`` (symbol k at tau0 + k·sps in ``y``): Newton steps on
    the timing-error detector Σ Re{conj(g·x_k)·y'(t_k)}, g = Σ conj(x_k)·y(t_k)/N the complex gain,
    with slope N·|g|²·``kappa``; steps clipped to ±sps/2, at most ``iterations`` + 1, stopping below
    0.01 sample. Returns the refined tau0."""
    n = pre.size
    k_sps = np.arange(n) * sps
    for _ in range(iterations + 1):
        sp, dp = interpolate(y, tau0 + k_sps, table, dtable, half, res, True)
        gr = 0.0
        gi = 0.0
        for k in range(n):
            x = pre[k]
            gr += x.real * sp[k].real + x.imag * sp[k].imag      # conj(x)·y
            gi += x.real * sp[k].imag - x.imag * sp[k].real
        gr /= n
        gi /= n
        e = 0.0
        for k in range(n):
            x = pre[k]
            hr = gr * x.real - gi * x.imag     # g·x
            hi = gr * x.imag + gi * x.real
            e += hr * dp[k].real + hi * dp[k].imag   # Re{conj(g·x)·y'}
        step = e / (n * (gr * gr + gi * gi) * kappa + 1e-30)
        tau0 -= min(max(step, -sps / 2), sps / 2)
        if abs(step) < 0.01:
            break
    return tau0


#: Correlator outputs computed per step of :func:`scan_preamble` (it stops at the first detection).
_SCAN_STEP = 256


@njit(cache=True)
def scan_preamble(det, lo, hi, sps, quarter, scale, threshold, off, span):
    """The CFO-blind preamble detector over one block of the detection filter's output ``det``.

    p[i] = det[lo + i]·conj(det[lo + i − sps]) turns a carrier offset into a constant phase; its
    three-sample sum z[i] = p[i − 1] + p[i] + p[i + 1] (i ∈ [0, hi − lo − 1); lo ≥ sps + 1) keeps the
    signal's part, which is smooth over a symbol, and averages the noise × noise part of a wide
    detection filter: at 1.5 dB SNR the 1 % quantile of the peak metric rises from 0.11 to 0.17 for the
    same tail on noise. Its correlation with the preamble's differential sequence d (QPSK, so
    conj(d_t) = j^quarter[t]: additions only) is C[i] = Σ_t j^quarter[t]·z[i + t·sps], and the metric
    ρ[i] = |C[i]|² / (scale·Σ|z|²) over the correlator's span. Outputs from ``off`` on are computed
    ``_SCAN_STEP`` at a time, stopping at the first detection.

    Returns (a, j, ρ[j], C[j]): ``a`` the first i ≥ ``off`` with ρ > ``threshold`` (−1: none in the
    block), ``j`` the first maximum of ρ over [a, a + span] (−1 when that range runs past the block:
    decide when more samples came). Output i ends at z index i + (len(quarter) − 1)·sps; the block's
    outputs end one sample before ``hi`` (its last z needs p[hi − lo]).
    """
    nz = hi - lo - 1
    first = (quarter.size - 1) * sps
    n_out = max(nz - first, 0)
    pr = np.empty(nz + 2, np.float32)
    pim = np.empty(nz + 2, np.float32)
    for i in range(nz + 2):      # p[i − 1]
        v = det[lo - 1 + i] * np.conj(det[lo - 1 + i - sps])
        pr[i] = v.real
        pim[i] = v.imag
    zr = np.empty(nz, np.float32)
    zi = np.empty(nz, np.float32)
    cs = np.empty(nz + 1)
    cs[0] = 0.0
    acc = 0.0
    for i in range(nz):
        r = pr[i] + pr[i + 1] + pr[i + 2]
        m = pim[i] + pim[i + 1] + pim[i + 2]
        zr[i] = r
        zi[i] = m
        acc += float(r) * r + float(m) * m
        cs[i + 1] = acc
    cr = np.zeros(n_out, np.float32)
    ci = np.zeros(n_out, np.float32)
    done = off      # outputs [off, done) computed
    a = -1
    i = off
    while done < n_out and (a < 0 or done <= a + span):
        c0, c1 = done, min(n_out, done + _SCAN_STEP)
        m = c1 - c0
        rv, iv = cr[c0:c1], ci[c0:c1]
        for t in range(quarter.size):
            q = quarter[t]
            # Views indexed by the loop counter (no negative-index checks) and one of four sign/swap
            # patterns per tap: the inner loops are branch-free and vectorise.
            zrv, ziv = zr[c0 + t * sps:c1 + t * sps], zi[c0 + t * sps:c1 + t * sps]
            if q == 0:
                for k in range(m):
                    rv[k] += zrv[k]
                    iv[k] += ziv[k]
            elif q == 1:
                for k in range(m):
                    rv[k] -= ziv[k]
                    iv[k] += zrv[k]
            elif q == 2:
                for k in range(m):
                    rv[k] -= zrv[k]
                    iv[k] -= ziv[k]
            else:
                for k in range(m):
                    rv[k] += ziv[k]
                    iv[k] -= zrv[k]
        done = c1
        while a < 0 and i < done:
            if _rho(cr[i], ci[i], cs[i + first + 1] - cs[i], scale) > threshold:
                a = i
            i += 1
    if a < 0 or a + span >= n_out:
        return a, -1, 0.0, 0j
    j, best = a, -1.0
    for k in range(a, a + span + 1):
        r = _rho(cr[k], ci[k], cs[k + first + 1] - cs[k], scale)
        if r > best:
            j, best = k, r
    return a, j, best, complex(cr[j], ci[j])


@njit(cache=True)
def _rho(cr, ci, energy, scale):
    return (float(cr) * cr + float(ci) * ci) / (scale * energy + 1e-30)


@njit(cache=True)
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


@njit(cache=True)
def grid_gain(s, known, known_sym, bins, counts, op_t):
    """The gain/phase tracker's linear smoother: the bin means of the known ratios s[known]/x
    (``bins``: each known symbol's bin, ``counts``: symbols per bin) through the real operator, given
    transposed (``op_t``: bins × grid points) → the complex gain at the grid points."""
    nb = counts.size
    vr = np.zeros(nb)
    vi = np.zeros(nb)
    for k in range(known.size):
        r = s[known[k]] / known_sym[k]
        vr[bins[k]] += r.real
        vi[bins[k]] += r.imag
    ng = op_t.shape[1]
    gr = np.zeros(ng)
    gi = np.zeros(ng)
    for b in range(nb):   # bin-major over the transposed operator: the inner loop is an axpy
        row = op_t[b]
        mr = vr[b] / counts[b]
        mi = vi[b] / counts[b]
        for r in range(ng):
            gr[r] += row[r] * mr
            gi[r] += row[r] * mi
    g = np.empty(ng, np.complex128)
    for r in range(ng):
        g[r] = complex(gr[r], gi[r])
    return g


@njit(cache=True)
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


@njit(cache=True)
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

