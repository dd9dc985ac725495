"""The synchroniser's compiled loops equal the numpy expressions they replace."""
import numpy as np
import pytest

from radio.sync_kernels import (derotate_filter, differential, first_peak, gain_at, grid_gain, interpolate,
                                phase_ramp, rotator)

RNG = np.random.default_rng(7)


def _cnoise(n, rng=RNG):
    return (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)


@pytest.mark.parametrize("n", [97, 500, 2501])
def test_derotate_filter_is_rotation_then_same_convolution(n):
    x = _cnoise(n)
    taps = RNG.standard_normal(49).astype(np.float32)
    first, freq = 37, 0.0123
    ref = np.convolve(x * np.exp(-2j * np.pi * freq * (first + np.arange(n))), taps, mode="same")
    got = derotate_filter(x, first, freq, taps)
    assert got.dtype == np.complex64 and got.shape == (n,)
    assert np.max(np.abs(got - ref)) < 1e-5 * np.max(np.abs(ref))


def test_interpolate_is_the_weighted_window_sum():
    y = _cnoise(400)
    res, half = 16, 3
    table = RNG.standard_normal((res + 1, 2 * half)).astype(np.float32)
    dtable = RNG.standard_normal((res + 1, 2 * half)).astype(np.float32)
    t = 10 + RNG.uniform(0, 380, 50)
    s, d = interpolate(y, t, table, dtable, half, res, True)
    i = np.floor(t).astype(int)
    row = np.rint((t - i) * res).astype(int)
    win = np.stack([y[k - half + 1:k + half + 1] for k in i])
    assert np.allclose(s, np.einsum("ij,ij->i", win, table[row]), atol=1e-5)
    assert np.allclose(d, np.einsum("ij,ij->i", win, dtable[row]), atol=1e-5)
    s_only, none = interpolate(y, t, table, dtable, half, res, False)
    assert np.array_equal(s_only, s) and none.size == 0


def test_interpolate_refuses_windows_outside_the_samples():
    y = _cnoise(40)
    table = np.ones((3, 4), np.float32)
    with pytest.raises(IndexError):
        interpolate(y, np.array([0.5]), table, table, 2, 2, False)
    with pytest.raises(IndexError):
        interpolate(y, np.array([38.5]), table, table, 2, 2, False)


def test_differential_and_first_peak_match_the_metric():
    sps, first, lo = 4, 20, 8
    mf = _cnoise(300)
    mf[150:170] *= 30   # a strong burst: the metric crosses the threshold there
    z, cs = differential(mf, lo, 300, sps)
    assert np.allclose(z, mf[lo:] * np.conj(mf[lo - sps:-sps]), rtol=1e-6)
    assert np.allclose(cs, np.concatenate([[0], np.cumsum(np.abs(z.astype(np.complex128)) ** 2)]), rtol=1e-6)
    c = np.convolve(z, RNG.standard_normal(first + 1), "valid").astype(np.complex64)
    energy = cs[first + 1:] - cs[:-first - 1]
    rho = np.abs(c.astype(np.complex128)) ** 2 / (0.7 * energy + 1e-30)
    thr = np.quantile(rho, 0.9)
    a, j, best = first_peak(c, cs, first, 5, 0.7, thr, 12)
    above = np.flatnonzero(rho[5:] > thr) + 5
    assert a == above[0]
    assert j == a + np.argmax(rho[a:a + 13]) and best == pytest.approx(rho[j])
    assert first_peak(c, cs, first, 0, 0.7, rho.max() + 1, 12) == (-1, -1, 0.0)
    last = c.size - 3   # a crossing too close to the end: the peak waits for more samples
    assert first_peak(c, cs, first, last, 0.7, -1.0, 12)[:2] == (last, -1)


def test_rotator_and_phase_ramp():
    n, freq = 1000, -0.0371
    assert np.allclose(rotator(n, freq), np.exp(-2j * np.pi * freq * np.arange(n)), atol=1e-6)
    x = np.arange(0, 400, 8.0)
    g = 0.5 * np.exp(1j * (0.9 + 0.05 * x + 0.01 * RNG.standard_normal(x.size)))   # wraps many times
    ref = np.polyfit(x, np.unwrap(np.angle(g)), 1)[0]
    assert phase_ramp(g, x) == pytest.approx(ref, rel=1e-9)


def test_grid_gain_and_gain_at_match_bincount_and_interp():
    n_sym, step = 300, 8
    known = np.sort(RNG.choice(n_sym, 60, replace=False))
    uniq, bins, counts = np.unique(known // step, return_inverse=True, return_counts=True)
    grid = np.arange(0, n_sym + step, step, dtype=np.float64)
    grid[-1] = n_sym - 1
    op = RNG.standard_normal((grid.size, counts.size))
    s = _cnoise(n_sym)
    ksym = _cnoise(known.size) + 2
    ratios = s[known] / ksym
    v = (np.bincount(bins, ratios.real) + 1j * np.bincount(bins, ratios.imag)) / counts
    g = grid_gain(s, known, ksym, bins, counts, op)
    assert np.allclose(g, op @ v, rtol=1e-5, atol=1e-6)
    pos = np.arange(n_sym)
    ref = np.interp(pos, grid, g.real) + 1j * np.interp(pos, grid, g.imag)
    assert np.allclose(gain_at(g, grid, step, pos), ref, rtol=1e-12, atol=1e-12)
    assert np.allclose(gain_at(g, grid, step, known.astype(float)), ref[known], atol=1e-12)
