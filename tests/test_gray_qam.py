"""Gray-labelled QAM / BPSK for the digital baseline: labelling, power, exact and max-log LLRs."""
import numpy as np
import pytest

from baseline.gray_qam import ORDERS, GrayQam


def _noisy(q, n, snr_db, rng):
    bits = rng.integers(0, 2, n * q.bits_per_symbol)
    x = q.modulate(bits)
    nv = 10 ** (-snr_db / 10)
    y = x + (rng.standard_normal(n) + 1j * rng.standard_normal(n)) * np.sqrt(nv / 2)
    return bits, x, y, nv


def _maxlog_oracle(q, y, nv):
    ll = -np.abs(np.asarray(y)[:, None] - q.points[None, :]) ** 2 / nv
    lab = q.labels
    out = [ll[:, lab[:, b] == 0].max(1) - ll[:, lab[:, b] == 1].max(1) for b in range(q.bits_per_symbol)]
    return np.stack(out, axis=1).ravel()


@pytest.mark.parametrize("order", ORDERS)
def test_unit_power_and_gray_labels(order):
    q = GrayQam(order)
    assert q.bits_per_symbol == int(np.log2(order))
    pts = q.points
    assert pts.shape == (order,)
    assert abs(np.mean(np.abs(pts) ** 2) - 1) < 1e-12
    assert len(np.unique(np.round(pts, 9))) == order
    # Nearest neighbours differ in exactly one bit.
    lab = q.labels.astype(np.int64) @ (1 << np.arange(q.bits_per_symbol)[::-1])
    for start in range(0, order, 512):
        block = pts[start:start + 512]
        d = np.abs(block[:, None] - pts[None, :])
        d[np.arange(len(block)), start + np.arange(len(block))] = np.inf
        rows, cols = np.nonzero(np.isclose(d, d.min(axis=1, keepdims=True)))
        flips = lab[start + rows] ^ lab[cols]
        assert np.all((flips & (flips - 1)) == 0) and np.all(flips > 0)


def test_bpsk_and_qpsk_conventions():
    bpsk = GrayQam(2)
    assert np.allclose(bpsk.points, [1, -1])
    assert np.allclose(bpsk.modulate([0, 1, 1]), [1, -1, -1])
    y = np.array([0.3 + 5j, -0.7, 2.0])
    assert np.allclose(bpsk.llr(y, 0.5), 4 * y.real / 0.5)
    qpsk = GrayQam(4)
    s = np.sqrt(0.5)
    assert np.allclose(qpsk.modulate([0, 0, 0, 1, 1, 0, 1, 1]), [s + s * 1j, s - s * 1j, -s + s * 1j, -s - s * 1j])


@pytest.mark.parametrize("order", ORDERS)
def test_modulate_hard_bits_round_trip_and_nearest_point(order):
    rng = np.random.default_rng(order)
    q = GrayQam(order)
    bits, x, y, _ = _noisy(q, 3000, 10 * np.log10(order) + 5, rng)
    assert x.dtype == np.complex64
    assert np.array_equal(q.hard_bits(x), bits)
    nearest = np.argmin(np.abs(y[:, None] - q.points[None, :]), axis=1)
    assert np.array_equal(q.hard_bits(y), q.labels[nearest].ravel())


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("snr_db", [-5, 5, 15, 25, 35, 50])
def test_exact_llrs_match_the_all_points_oracle(order, snr_db):
    rng = np.random.default_rng(order + snr_db + 10)
    q = GrayQam(order)
    _, _, y, nv = _noisy(q, 300 if order == 4096 else 1000, snr_db, rng)
    llr = q.llr(y, nv)
    ref = q.llr_oracle(y, nv)
    assert llr.shape == (y.size * q.bits_per_symbol,) and llr.dtype == np.float64
    assert np.all(np.isfinite(llr))
    assert np.all(np.abs(llr - ref) <= 1e-9 * np.maximum(1.0, np.abs(ref)))


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("snr_db", [0, 10, 20, 30, 45])
def test_maxlog_llrs_match_their_definition_and_agree_in_sign(order, snr_db):
    rng = np.random.default_rng(7 * order + snr_db)
    q = GrayQam(order)
    _, _, y, nv = _noisy(q, 300 if order == 4096 else 1000, snr_db, rng)
    ml = q.llr(y, nv, method="maxlog")
    assert np.all(np.abs(ml - _maxlog_oracle(q, y, nv)) <= 1e-9 * np.maximum(1.0, np.abs(ml)))
    exact = q.llr(y, nv)
    # max-log and exact can only disagree in sign where the exact LLR is small (|diff| ≤ log(order/2)).
    assert np.all(np.abs(ml - exact) <= np.log(order / 2) + 1e-9)
    confident = np.abs(exact) > 0.5
    assert np.array_equal(np.sign(ml[confident]), np.sign(exact[confident]))


@pytest.mark.parametrize("order", ORDERS)
def test_maxlog_is_close_to_exact_at_high_snr(order):
    rng = np.random.default_rng(order)
    q = GrayQam(order)
    _, _, y, nv = _noisy(q, 2000, 10 * np.log10(order) + 25, rng)
    ml, exact = q.llr(y, nv, method="maxlog"), q.llr(y, nv)
    assert np.all(np.abs(ml - exact) <= 1e-6 * np.maximum(1.0, np.abs(exact)))
    assert np.array_equal(np.sign(ml), np.sign(exact))


@pytest.mark.parametrize("order", [16, 4096])
def test_llrs_of_far_outliers_stay_finite_and_exact(order):
    q = GrayQam(order)
    y = np.array([3 + 3j, -4 + 0.1j, 0.2 - 6j, 10 + 10j])
    for snr_db in (0, 20, 40):
        nv = 10 ** (-snr_db / 10)
        llr, ref = q.llr(y, nv), q.llr_oracle(y, nv)
        assert np.all(np.isfinite(llr))
        assert np.all(np.abs(llr - ref) <= 1e-9 * np.maximum(1.0, np.abs(ref)))


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        GrayQam(8)
    q = GrayQam(16)
    with pytest.raises(ValueError):
        q.modulate([0, 1, 1])
    with pytest.raises(ValueError):
        q.modulate([0, 1, 2, 1])
    with pytest.raises(ValueError):
        q.llr(np.zeros(3, complex), 0.0)
    with pytest.raises(ValueError):
        q.llr(np.zeros(3, complex), 1.0, method="approx")
