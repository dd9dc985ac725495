"""The synchroniser's compiled loops equal the numpy expressions they replace."""
import numpy as np
import pytest

from radio.sync_kernels import (derotate_filter, gain_at, grid_gain, interpolate, phase_ramp, preamble_timing,
                                rotator, scan_preamble)

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


def _metric(mf, lo, hi, sps, quarter, scale):
    """numpy reference of the detector: z (three-sample sums of the lag-sps products), its correlation
    with j^quarter, the normalised metric."""
    p = (mf[lo - 1:hi] * np.conj(mf[lo - 1 - sps:hi - sps])).astype(np.complex128)
    z = p[:-2] + p[1:-1] + p[2:]
    kern = np.zeros((quarter.size - 1) * sps + 1, complex)
    kern[::sps] = (1j ** quarter)[::-1]
    c = np.convolve(z, kern, "valid")
    energy = np.convolve(np.abs(z) ** 2, np.ones(kern.size), "valid")
    return c, np.abs(c) ** 2 / (scale * energy + 1e-30)


def test_scan_preamble_finds_the_first_crossing_and_its_peak():
    sps, lo, hi = 4, 40, 1500
    quarter = RNG.integers(0, 4, 30)
    pre = np.cumprod(np.concatenate([[1], (1j ** quarter).conj()]))   # differential sequence conj(j^q)
    x = np.zeros(hi + 200, complex)
    x[900:900 + pre.size * sps:sps] = pre * np.exp(0.7j)               # a burst: the metric peaks there
    mf = (np.convolve(x, np.ones(sps), "same") + 0.05 * _cnoise(x.size)).astype(np.complex64)
    scale = (quarter.size) / sps
    c, rho = _metric(mf, lo, hi, sps, quarter, scale)
    for thr, off in ((0.3, 0), (0.3, 5), (0.05, 0)):
        above = np.flatnonzero(rho[off:] > thr) + off
        a, j, best, cj = scan_preamble(mf, lo, hi, sps, quarter, scale, thr, off, 12)
        assert a == above[0]
        assert j == a + np.argmax(rho[a:a + 13])
        assert best == pytest.approx(rho[j], rel=1e-4) and cj == pytest.approx(c[j], rel=1e-4)
    assert scan_preamble(mf, lo, hi, sps, quarter, scale, rho.max() + 1, 0, 12) == (-1, -1, 0.0, 0j)
    last = rho.size - 3   # a crossing too close to the block's end: the peak waits for more samples
    assert scan_preamble(mf, lo, hi, sps, quarter, scale, -1.0, last, 12)[:2] == (last, -1)


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
    g = grid_gain(s, known, ksym, bins, counts, np.ascontiguousarray(op.T))
    assert np.allclose(g, op @ v, rtol=1e-5, atol=1e-6)
    pos = np.arange(n_sym)
    ref = np.interp(pos, grid, g.real) + 1j * np.interp(pos, grid, g.imag)
    assert np.allclose(gain_at(g, grid, step, pos), ref, rtol=1e-12, atol=1e-12)
    assert np.allclose(gain_at(g, grid, step, known.astype(float)), ref[known], atol=1e-12)


def test_preamble_timing_finds_a_fractional_delay():
    from radio.frame import DEFAULT_FORMAT
    from radio.pulse import PulseShape, shape
    from radio.sync import _INTERP, _pulse_slopes

    pulse = PulseShape()
    pre = DEFAULT_FORMAT.preamble
    x = np.concatenate([np.zeros(40, np.complex64), shape(pre, pulse), np.zeros(80, np.complex64)])
    delay = 0.37                                      # samples, applied in the frequency domain
    f = np.fft.fftfreq(x.size)
    xd = np.fft.ifft(np.fft.fft(x) * np.exp(-2j * np.pi * f * delay))
    y = np.convolve(xd * np.exp(1.1j), pulse.taps, "same").astype(np.complex64)
    t_true = 40 + pulse.delay + delay                 # where symbol 0 sits in y
    kappa = _pulse_slopes(tuple(pulse.taps), pulse.sps)[0]
    tau = preamble_timing(y, float(np.floor(t_true)), pre, pulse.sps, kappa, 2, _INTERP.table, _INTERP.dtable,
                          _INTERP.half, _INTERP.res)
    assert tau == pytest.approx(t_true, abs=0.01)
