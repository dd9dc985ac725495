"""Z_p ↔ 4096-QAM (eq. 13) and the vectorised soft demapper (eqs. 14–15) against the direct oracle."""
import numpy as np
import pytest

from radio import zp_qam
from crypto.zp import P, centered
from radio.zp_qam import (constellation, hard_demap, modulate, soft_demap, soft_demap_oracle, soft_demap_phasor,
                          soft_demap_phasor_oracle)


def _noisy(c, snr_db, rng):
    nv = 10 ** (-snr_db / 10)
    x = modulate(c)
    y = x + (rng.standard_normal(c.shape) + 1j * rng.standard_normal(c.shape)) * np.sqrt(nv / 2)
    return y.astype(np.complex64), nv


def _circ(a, b):
    return np.abs(centered(np.asarray(a) - np.asarray(b)))


def test_constellation_has_unit_mean_power_over_the_used_points():
    pts = constellation()
    assert pts.shape == (P,) and pts.dtype == np.complex128
    assert abs(np.mean(np.abs(pts) ** 2) - 1.0) < 1e-12
    assert len(np.unique(np.round(pts, 9))) == P


def test_mapping_is_row_major_on_a_square_grid():
    c = np.arange(P)
    x = modulate(c)
    assert x.dtype == np.complex64
    re_levels = np.unique(np.round(x.real, 5))
    im_levels = np.unique(np.round(x.imag, 5))
    assert len(re_levels) == 64 and len(im_levels) == 64
    # Column c % 64 sets the in-phase level and row c // 64 the quadrature level, both ascending.
    assert np.array_equal(np.searchsorted(re_levels, np.round(x.real, 5)), c % 64)
    assert np.array_equal(np.searchsorted(im_levels, np.round(x.imag, 5)), c // 64)
    # The 4096 − p unused points are the last ones: row 63, columns 61..63.
    assert (P - 1) // 64 == 63 and (P - 1) % 64 == 60


def test_modulate_rejects_values_outside_zp():
    with pytest.raises(ValueError):
        modulate([0, P])
    with pytest.raises(ValueError):
        modulate([-1])
    assert modulate(np.zeros((2, 3), dtype=np.int32)).shape == (2, 3)


def test_modulate_hard_demap_round_trip():
    c = np.arange(P)
    assert np.array_equal(hard_demap(modulate(c)), c)
    c2 = c.reshape(1, -1)
    assert hard_demap(modulate(c2)).shape == c2.shape


def test_hard_demap_is_the_nearest_used_point():
    rng = np.random.default_rng(0)
    pts = constellation()
    # Random points over (and beyond) the whole grid, plus a cloud around the unused corner.
    y = (rng.uniform(-1.4, 1.4, 3000) + 1j * rng.uniform(-1.4, 1.4, 3000))
    corner = pts[P - 1] + (rng.uniform(0, 0.2, 2000) + 1j * rng.uniform(-0.05, 0.1, 2000))
    y = np.concatenate([y, corner])
    brute = np.argmin(np.abs(y[:, None] - pts[None, :]), axis=1)
    assert np.array_equal(hard_demap(y), brute)


@pytest.mark.parametrize("snr_db", [0, 10, 20, 30])
def test_vectorised_soft_demapper_matches_the_oracle(snr_db):
    rng = np.random.default_rng(snr_db)
    c = rng.integers(0, P, 2000)
    y, nv = _noisy(c, snr_db, rng)
    fast = soft_demap(y, nv)
    slow = soft_demap_oracle(y, nv)
    assert fast.dtype == np.float64 and np.all((fast >= 0) & (fast < P))
    assert _circ(fast, slow).max() < 1e-6
    assert np.abs(soft_demap_phasor(y, nv) - soft_demap_phasor_oracle(y, nv)).max() < 1e-9


def test_soft_demapper_returns_exact_indices_at_60_db():
    rng = np.random.default_rng(60)
    c = rng.integers(0, P, 20000)
    y, nv = _noisy(c, 60, rng)
    soft = soft_demap(y, nv)
    assert np.array_equal(np.rint(soft).astype(np.int64) % P, c)
    assert _circ(soft, c).max() < 1e-6
    assert np.allclose(np.abs(soft_demap_phasor(y, nv)), 1.0, atol=1e-9)


@pytest.mark.parametrize("sigma_l", [0.05, 0.2, 5.0, 50.0])
@pytest.mark.parametrize("snr_db", [0, 15, 30])
def test_sigma_l_variations_match_the_oracle(sigma_l, snr_db):
    rng = np.random.default_rng(int(sigma_l * 100) + snr_db)
    c = rng.integers(0, P, 500)
    y, nv = _noisy(c, snr_db, rng)
    assert _circ(soft_demap(y, nv, sigma_l), soft_demap_oracle(y, nv, sigma_l)).max() < 1e-6


def test_larger_sigma_l_means_more_confident_phasors():
    rng = np.random.default_rng(3)
    c = rng.integers(0, P, 2000)
    y, nv = _noisy(c, 10, rng)
    conf = [np.abs(soft_demap_phasor(y, nv, s)).mean() for s in (0.2, 1.0, 5.0)]
    assert conf[0] < conf[1] < conf[2] <= 1.0


@pytest.mark.parametrize("snr_db", [10, 25, 40, 60])
def test_symbols_near_the_unused_corner_match_the_oracle(snr_db):
    # Symbols sent next to (and received inside) the unused corner, where most of the full-grid
    # mass can sit on the three unused points.
    rng = np.random.default_rng(snr_db)
    pts = constellation()
    spacing = pts[1].real - pts[0].real
    unused = (pts[P - 1] + spacing * np.arange(1, 4)).astype(np.complex128)
    y = np.concatenate([
        modulate(rng.choice([P - 1, P - 2, P - 64, P - 63, P - 62], 300)),
        np.repeat(unused, 100) + spacing * 0.3 * (rng.standard_normal(300) + 1j * rng.standard_normal(300)),
    ])
    nv = 10 ** (-snr_db / 10)
    y = y + (rng.standard_normal(y.size) + 1j * rng.standard_normal(y.size)) * np.sqrt(nv / 2)
    assert _circ(soft_demap(y, nv), soft_demap_oracle(y, nv)).max() < 1e-6


@pytest.mark.parametrize("snr_db", [0, 20, 26, 40])
def test_outliers_far_outside_the_grid_match_the_oracle(snr_db):
    rng = np.random.default_rng(7)
    y = np.concatenate([rng.uniform(-25, 25, 200) + 1j * rng.uniform(-25, 25, 200),
                        np.array([20 + 0j, -20j, 3 + 3j, -3 - 3j, 1.5 - 1.5j])])
    nv = 10 ** (-snr_db / 10)
    assert _circ(soft_demap(y, nv), soft_demap_oracle(y, nv)).max() < 1e-6


def test_result_does_not_depend_on_chunking_and_keeps_shape():
    rng = np.random.default_rng(11)
    c = rng.integers(0, P, (7, 300))
    y, nv = _noisy(c, 12, rng)
    whole = soft_demap_phasor(y, nv)
    assert whole.shape == (7, 300)
    # BLAS may sum in another order for another chunk size: equal to rounding, not bit for bit.
    np.testing.assert_allclose(whole.ravel(), soft_demap_phasor(y.ravel(), nv, chunk=97), rtol=0, atol=1e-12)
    assert soft_demap(y[0, 0], nv).shape == ()


def test_non_finite_inputs_give_nan_without_touching_the_others():
    y = modulate(np.array([5, 6, 7, 8])).astype(np.complex128)
    y[1] = np.nan
    y[2] = complex(np.inf, 0)
    out = soft_demap(y, 1e-6)
    assert np.isnan(out[1]) and np.isnan(out[2])
    assert np.allclose(out[[0, 3]], [5, 8], atol=1e-6)
    y[1] = y[2] = 0
    assert np.array_equal(soft_demap(y, 1e-3)[[0, 3]], soft_demap(y[[0, 3]], 1e-3))


def test_invalid_parameters_raise():
    y = modulate(np.arange(4))
    for nv in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError):
            soft_demap(y, nv)
    with pytest.raises(ValueError):
        soft_demap(y, 0.1, sigma_l=-1)
    with pytest.raises(ValueError):
        constellation(p=1000)


@pytest.mark.parametrize("p", [4096, 4040])
def test_other_moduli_on_the_64x64_grid(p):
    rng = np.random.default_rng(p)
    c = rng.integers(0, p, 500)
    c[:50] = p - 1 - np.arange(50)
    x = modulate(c, p=p)
    assert abs(np.mean(np.abs(constellation(p)) ** 2) - 1) < 1e-12
    assert np.array_equal(hard_demap(x, p=p), c)
    for nv in (1.0, 0.05, 8e-4, 1e-5):
        y = x + np.sqrt(nv / 2) * (rng.standard_normal(500) + 1j * rng.standard_normal(500))
        diff = centered(soft_demap(y, nv, p=p) - soft_demap_oracle(y, nv, p=p), p)
        assert np.abs(diff).max() < 1e-6


def test_hot_path_never_builds_a_full_likelihood_matrix(monkeypatch):
    # The oracle is the only k × p path; on ordinary input the fast path must not call it.
    def forbidden(*args, **kwargs):
        raise AssertionError("fast path fell back to the k x p oracle")

    monkeypatch.setattr(zp_qam, "_oracle_phasor", forbidden)
    rng = np.random.default_rng(1)
    for snr_db in (0, 10, 20, 30, 60):
        c = rng.integers(0, P - 1, 4000)
        y, nv = _noisy(c, snr_db, rng)
        soft_demap(y, nv)
