"""802.11ad LDPC (baseline.ldpc): construction checks, systematic encoding, batched decoding, pyldpc cross-check."""
import numpy as np
import pytest

from baseline.ldpc import RATES, LdpcCode, circulant_base, expand, gf2_rank, ieee80211ad, load_base_matrices

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
    from benchmarks.bench_ldpc import pyldpc_decode

    code = ieee80211ad("1/2")
    rng = np.random.default_rng(5)
    c = code.encode(rng.integers(0, 2, (12, code.k)))
    sigma2 = 1 / (2 * 0.5 * 10 ** (1.8 / 10))                 # Eb/N0 = 1.8 dB: on the waterfall
    llr = 2 * ((1 - 2.0 * c) + np.sqrt(sigma2) * rng.standard_normal(c.shape)) / sigma2
    ours = code.decode(llr, max_iter=6, method="bp", early_stop=False).bits
    theirs = pyldpc_decode(code.h, llr, 6, early_stop=False)
    assert (ours == theirs).all(axis=1).mean() >= 0.9
    assert (ours == theirs).mean() > 0.999


def _reference_decode(h, llr, iters, method, alpha=0.75):
    """Textbook flooding decoder on the dense H in float64 (slow): total LLRs after ``iters`` iterations."""
    mask = h.astype(bool)[None]
    c2v = np.zeros((llr.shape[0],) + h.shape)
    for _ in range(iters):
        tot = llr + c2v.sum(axis=1)
        v2c = np.where(mask, tot[:, None, :] - c2v, 0.0)
        sign = np.where(mask & (v2c < 0), -1.0, 1.0)
        others_sign = sign.prod(axis=2, keepdims=True) * sign
        if method == "nms":
            mag = np.where(mask, np.abs(v2c), np.inf)
            two = np.sort(mag, axis=2)[..., :2]
            is_min = mag == two[..., :1]
            new = alpha * np.where(is_min, two[..., 1:], two[..., :1])
        else:
            phi = lambda x: -np.log(np.tanh(np.clip(x, 1e-7, 40) / 2))   # noqa: E731
            p = np.where(mask, phi(np.abs(v2c)), 0.0)
            new = phi(p.sum(axis=2, keepdims=True) - p)
        c2v = np.where(mask, others_sign * new, 0.0)
    return llr + c2v.sum(axis=1)


@pytest.mark.parametrize("method", ["nms", "bp"])
def test_matches_textbook_flooding_decoder(method):
    code = ieee80211ad("5/8")
    rng = np.random.default_rng(6)
    c = code.encode(rng.integers(0, 2, (4, code.k)))
    llr = (1 - 2.0 * c) * 2.0 + rng.standard_normal(c.shape) * 1.5
    res = code.decode(llr, max_iter=3, method=method, early_stop=False)
    ref = _reference_decode(code.h, llr, 3, method)
    np.testing.assert_allclose(res.llr, ref, rtol=1e-4, atol=1e-3)
    assert (res.iterations == 3).all()


def test_circulant_structure_found():
    z, base = load_base_matrices()
    for rate in RATES:
        code = ieee80211ad(rate)
        found_z, found = circulant_base(code.h)
        assert found_z == z == code.z
        np.testing.assert_array_equal(found, base[rate])
    perm = np.random.default_rng(7).permutation(672)
    z1, b1 = circulant_base(ieee80211ad("3/4").h[:, perm])      # not quasi-cyclic any more
    assert z1 == 1 and (b1 >= 0).sum() == ieee80211ad("3/4").n_edges


def test_any_h_decodes_like_its_quasi_cyclic_form():
    """A column-permuted H (no circulant structure: the decoder's Z = 1 path) gives the same decoding."""
    code = ieee80211ad("1/2")
    perm = np.random.default_rng(8).permutation(code.n)
    shuffled = LdpcCode(code.h[:, perm], name="shuffled")
    assert shuffled.z == 1
    rng = np.random.default_rng(9)
    c = code.encode(rng.integers(0, 2, (6, code.k)))
    sigma2 = 1 / (2 * 0.5 * 10 ** (1.8 / 10))
    llr = 2 * ((1 - 2.0 * c) + np.sqrt(sigma2) * rng.standard_normal(c.shape)) / sigma2
    for method in ("nms", "bp"):
        a, b = code.decode(llr, max_iter=8, method=method), shuffled.decode(llr[:, perm], max_iter=8, method=method)
        np.testing.assert_array_equal(a.bits[:, perm], b.bits)
        np.testing.assert_array_equal(a.iterations, b.iterations)
        if method == "nms":     # order-free arithmetic: identical to the bit
            np.testing.assert_array_equal(a.llr[:, perm], b.llr)
        else:                   # φ sums run in another edge order: float32 rounding differs
            np.testing.assert_allclose(a.llr[:, perm], b.llr, rtol=1e-3, atol=1e-2)


@pytest.mark.parametrize("method", ["nms", "bp"])
def test_large_batch_equals_small_pieces(method):
    """Chunking, early stopping and compaction of the working set never change a codeword's result."""
    code = ieee80211ad("1/2")
    rng = np.random.default_rng(10)
    c = code.encode(rng.integers(0, 2, (300, code.k)))
    sigma2 = 1 / (2 * 0.5 * 10 ** (2.0 / 10))
    llr = 2 * ((1 - 2.0 * c) + np.sqrt(sigma2) * rng.standard_normal(c.shape)) / sigma2
    whole = code.decode(llr, max_iter=12, method=method)
    assert 0 < whole.ok.mean() < 1 and len(set(whole.iterations)) > 3     # a mix of stopping times
    pieces = [code.decode(llr[i: i + 7], max_iter=12, method=method) for i in range(0, 300, 7)]
    for name in ("bits", "ok", "iterations", "llr"):
        np.testing.assert_array_equal(getattr(whole, name), np.concatenate([getattr(p, name) for p in pieces]))


def test_empty_batch():
    res = ieee80211ad("3/4").decode(np.zeros((2, 0, 672)))
    assert res.bits.shape == (2, 0, 672) and res.ok.shape == (2, 0)
