"""802.11ad LDPC (radio.ldpc): construction checks, systematic encoding, batched decoding, pyldpc cross-check."""
import numpy as np
import pytest

from radio.ldpc import RATES, expand, gf2_rank, ieee80211ad, load_base_matrices

SHAPES = {"1/2": (336, 672), "5/8": (252, 672), "3/4": (168, 672), "13/16": (126, 672)}


@pytest.mark.parametrize("rate", RATES)
def test_h_shape_rank_and_generator(rate):
    code = ieee80211ad(rate)
    assert code.h.shape == SHAPES[rate]
    assert gf2_rank(code.h) == SHAPES[rate][0]            # full row rank: the rate is exact
    assert code.k == 672 - SHAPES[rate][0]
    assert not (code.h.astype(int) @ code.G.T.astype(int) % 2).any()   # H·Gᵀ = 0
    assert gf2_rank(code.G) == code.k
    np.testing.assert_array_equal(code.info_cols, np.arange(code.k))   # systematic: message first


def test_expansion_convention():
    z, base = load_base_matrices()
    h = expand(np.array([[3, -1]]), 5)
    assert h.shape == (5, 10) and not h[:, 5:].any()
    assert all(h[i, (i + 3) % 5] == 1 and h[i].sum() == 1 for i in range(5))   # right shift by s
    assert z == 42 and base["1/2"].shape == (8, 16) and base["13/16"].shape == (3, 16)


@pytest.mark.parametrize("rate", ["1/2", "3/4"])
@pytest.mark.parametrize("method", ["nms", "bp"])
def test_error_free_at_high_snr(rate, method):
    code = ieee80211ad(rate)
    rng = np.random.default_rng(1)
    u = rng.integers(0, 2, (40, code.k))
    c = code.encode(u)
    assert not code.syndrome(c).any()
    np.testing.assert_array_equal(code.message(c), u)
    y = (1 - 2.0 * c) + 0.3 * rng.standard_normal(c.shape)   # Eb/N0 ≈ 8–10 dB
    res = code.decode(2 * y / 0.09, method=method)
    assert res.ok.all()
    np.testing.assert_array_equal(res.bits, c)
    assert res.iterations.max() <= 3


@pytest.mark.parametrize("method", ["nms", "bp"])
def test_corrects_known_number_of_errors(method):
    """Flip 20 bits of each codeword (hard errors at LLR magnitude 2 against 4): every word is corrected."""
    code = ieee80211ad("1/2")
    rng = np.random.default_rng(2)
    c = code.encode(rng.integers(0, 2, (30, code.k)))
    llr = np.where(c == 0, 4.0, -4.0)
    for row in llr:
        flip = rng.choice(code.n, 20, replace=False)
        row[flip] = -0.5 * row[flip]
    hard_errors = ((llr < 0) != c).sum(axis=1)
    assert (hard_errors == 20).all()
    res = code.decode(llr, method=method)
    assert res.ok.all()
    np.testing.assert_array_equal(res.bits, c)


def test_failure_is_flagged_and_iterations_bounded():
    code = ieee80211ad("3/4")
    rng = np.random.default_rng(3)
    res = code.decode(rng.standard_normal((5, code.n)), max_iter=7)   # pure noise: no codeword
    assert not res.ok.any() and (res.iterations == 7).all()


def test_batch_shape_and_order_independent():
    code = ieee80211ad("1/2")
    rng = np.random.default_rng(4)
    c = code.encode(rng.integers(0, 2, (2, 3, code.k)))
    llr = (1 - 2.0 * c) * 2.5 + rng.standard_normal(c.shape) * 1.6
    res = code.decode(llr)
    assert res.bits.shape == (2, 3, 672) and res.ok.shape == (2, 3)
    single = code.decode(llr[1, 2])
    np.testing.assert_array_equal(single.bits, res.bits[1, 2])


def test_cross_check_with_pyldpc():
    """pyldpc's log-BP on the same H and LLRs gives the same decisions as our BP, frame by frame."""
    pytest.importorskip("pyldpc")
    from scripts.bench_ldpc import pyldpc_decode

    code = ieee80211ad("1/2")
    rng = np.random.default_rng(5)
    c = code.encode(rng.integers(0, 2, (12, code.k)))
    sigma2 = 1 / (2 * 0.5 * 10 ** (1.8 / 10))                 # Eb/N0 = 1.8 dB: on the waterfall
    llr = 2 * ((1 - 2.0 * c) + np.sqrt(sigma2) * rng.standard_normal(c.shape)) / sigma2
    ours = code.decode(llr, max_iter=6, method="bp", early_stop=False).bits
    theirs = pyldpc_decode(code.h, llr, 6, early_stop=False)
    assert (ours == theirs).all(axis=1).mean() >= 0.9
    assert (ours == theirs).mean() > 0.999
