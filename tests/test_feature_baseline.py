"""The learned digital baseline of remote classification: PMF (eq. 32), range coder, training (eqs. 31–32), chain."""
import json

import numpy as np
import pytest
import torch

from baseline.classify import Coded, best_curve, classify_payload, code_images, simulate_pair
from baseline.entropy_coder import FeatureCoder, coded_bits, length_report
from baseline.feature_compression import (FeatureCompressionNet, FeatureConfig, FeatureTrainConfig, evaluate_rounded,
                                          load_feature_model, log2_pmf_table, train_feature_compression)
from baseline.pipeline import link_budget
from crypto.aes_ctr import new_key
from tests.conftest import jscec

TINY = FeatureConfig(width=4, decoder_width=2, num_classes=2)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks train fastest on one thread (and leave the other cores alone)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _mixture(channels, rng, spread=3.0, scale=(0.15, 1.5)):
    alpha = rng.dirichlet(np.ones(9), size=channels)
    mu = rng.uniform(-spread, spread, (channels, 9))
    sigma = rng.uniform(*scale, (channels, 9))
    return alpha, mu, sigma


def _sample(coder, rng, n):
    out = np.zeros((n,) + coder.shape, np.int64)
    for c in range(coder.shape[0]):
        p = np.exp2(coder.log2p[c])
        out[:, c] = rng.choice(np.arange(coder.lo[c], coder.hi[c] + 1), size=(n,) + coder.shape[1:], p=p / p.sum())
    return out


def test_pmf_is_a_distribution_and_torch_equals_numpy():
    torch.manual_seed(0)
    net = FeatureCompressionNet(TINY)
    with torch.no_grad():
        net.pmf.means.normal_(0, 3)
        net.pmf.raw_scales.uniform_(-4, 2)
        net.pmf.logits.normal_()
    alpha, mu, sigma = net.pmf.parameters_np()
    v = np.arange(-60, 61)
    table = log2_pmf_table(alpha, mu, sigma, v)
    assert np.allclose(np.exp2(table).sum(axis=1), 1.0, atol=1e-9)   # the Φ differences telescope
    z = torch.tensor(v, dtype=torch.float32).view(1, 1, 1, -1).repeat(1, TINY.width, 1, 1)
    got = net.pmf.log2_pmf(z)[0, :, 0].detach().double().numpy()
    assert np.allclose(got, table, atol=1e-3 * np.maximum(1, np.abs(table)))
    # far in a tail −log₂ P stays finite and keeps a gradient towards the mixture
    far = torch.tensor([[[[400.0]]]]).repeat(1, TINY.width, 1, 1).requires_grad_()
    bits = -net.pmf.log2_pmf(far).sum()
    bits.backward()
    assert torch.isfinite(bits) and (far.grad > 0).all()


@pytest.mark.parametrize("channels,side,scale", [(8, 8, (0.15, 1.5)), (16, 8, (0.12, 0.3))])
def test_range_coder_round_trip_and_length_within_2_percent(channels, side, scale):
    """Exact inversion; the coded length matches −Σ log₂ P within 2 % (the second case: ~100 bits per image)."""
    rng = np.random.default_rng(1)
    alpha, mu, sigma = _mixture(channels, rng, scale=scale)
    if scale[1] < 1:   # a low-rate PMF: most mass on one symbol per channel
        alpha[:, 0], mu[:, 0] = 50.0, 0.0
        alpha /= alpha.sum(axis=1, keepdims=True)
    coder = FeatureCoder(alpha, mu, sigma, (channels, side, side))
    symbols = _sample(coder, rng, 40)
    payloads, est = [], []
    for s in symbols:
        p = coder.encode(s)
        assert np.array_equal(coder.decode(p), s)
        assert np.array_equal(coder.decode(p + bytes(37)), s)     # the AES zero fill after it changes nothing
        assert p == b"" or p[-1] != 0
        payloads.append(p)
        est.append(coder.estimate_bits(s))
    rep = length_report(est, payloads)
    assert abs(rep["coded_over_estimate"] - 1) < 0.02, rep
    assert rep["coded_minus_estimate_bits"]["max"] < 3
    if scale[1] < 1:
        assert 30 < rep["estimate_bits_mean"] < 300, rep


def test_coder_clips_outside_its_range():
    rng = np.random.default_rng(2)
    coder = FeatureCoder(*_mixture(2, rng), (2, 2, 2))
    s = np.zeros((2, 2, 2), np.int64)
    s[1, 0, 1] = 10_000
    clipped, n = coder.clip(s)
    assert n == 1 and clipped[1, 0, 1] == coder.hi[1]
    assert np.array_equal(coder.decode(coder.encode(s)), clipped)


def test_coded_bits_counts_to_the_last_one():
    assert coded_bits(b"") == 0 and coded_bits(b"\x80") == 1 and coded_bits(b"\x01") == 8
    assert coded_bits(b"\xff\x10\x00") == 12


def _toy_data(n=96, seed=0):
    """Two classes a tiny network separates: bright left half vs bright right half, with noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    img = rng.integers(0, 60, (n, 32, 32, 3))
    for i, y in enumerate(labels):
        img[i, :, (16 if y else 0):(32 if y else 16)] += 150
    return img.astype(np.uint8), labels.astype(np.int64)


def _bright_dark(n=96, seed=0):
    """Two classes told apart by one bit: dark or bright images."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    return (rng.integers(0, 40, (n, 32, 32, 3)) + 180 * labels[:, None, None, None]).astype(np.uint8), labels


def test_lambda_lowers_the_bits(tmp_path):
    """One base model (λ = 0), fine-tuned per λ as the real runs are: more λ, fewer bits, same task solved."""
    images, labels = _bright_dark()
    split = {"train": np.arange(64), "val": np.arange(64, 96), "test": np.arange(64, 96)}
    kw = dict(batch_size=16, epoch_size=64, val_size=32, max_steps=16, epochs=10, patience_stop=100, lr=1e-2)
    base = FeatureTrainConfig(lam=0.0, out=str(tmp_path / "base.pt"), **kw)
    train_feature_compression(TINY, base, images, labels, split, "toy", log=lambda m: None)
    bits = []
    for lam in (1e-4, 1e-2, 1e-1):
        cfg = FeatureTrainConfig(lam=lam, out=str(tmp_path / f"l{lam}.pt"), init=base.out, **kw)
        train_feature_compression(TINY, cfg, images, labels, split, "toy", log=lambda m: None)
        model, card = load_feature_model(cfg.out)
        assert card["lambda"] == lam and card["init"] == base.out
        val = evaluate_rounded(model, images[64:], labels[64:], lam)
        assert val["accuracy"] == 1.0
        bits.append(val["bits_mean"])
    assert bits[0] > 1.5 * bits[1] and bits[1] > 1.5 * bits[2], bits


def test_checkpoint_stores_half_weights_and_loads_float(tmp_path):
    images, labels = _toy_data(48)
    split = {"train": np.arange(32), "val": np.arange(32, 48), "test": np.arange(32, 48)}
    cfg = FeatureTrainConfig(lam=0.01, out=str(tmp_path / "m.pt"), batch_size=16, epoch_size=32, val_size=16,
                             max_steps=2)
    train_feature_compression(TINY, cfg, images, labels, split, "toy", log=lambda m: None)
    raw = torch.load(cfg.out, weights_only=True)["state_dict"]
    assert raw["decoder.head.0.weight"].dtype == torch.float16 and raw["pmf.means"].dtype == torch.float32
    model, _ = load_feature_model(cfg.out)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    # resume picks the training state up (same λ), a different λ is refused
    train_feature_compression(TINY, FeatureTrainConfig(**{**cfg.__dict__, "resume": True, "max_steps": 4}), images,
                              labels, split, "toy", log=lambda m: None)
    from jscec.errors import UserError
    with pytest.raises(UserError, match="lam"):
        train_feature_compression(TINY, FeatureTrainConfig(**{**cfg.__dict__, "resume": True, "lam": 0.5}), images,
                                  labels, split, "toy", log=lambda m: None)


def _low_rate_model():
    """An untrained tiny network whose PMF puts most mass on the rounded features: ~tens of bits per image."""
    torch.manual_seed(0)
    net = FeatureCompressionNet(TINY).eval()
    with torch.no_grad():
        net.pmf.means.zero_()
        net.pmf.raw_scales.fill_(0.3)
    return net


def test_chain_decodes_at_high_snr_and_fails_at_low_snr():
    net = _low_rate_model()
    images, labels = _toy_data(12)
    coder = FeatureCoder.from_model(net, (TINY.width, 8, 8))
    coded = code_images(net, coder, images, labels, "toy", 0.0)
    budget = link_budget("16qam", "1/2")
    assert coded.payload_bytes.max() <= budget.capacity_bytes
    res = simulate_pair(net, coder, coded, "16qam", "1/2", [0.0, 30.0], new_key())
    low, high = res["results"]
    assert high["frames_failed"] == 0 and high["accuracy"] == pytest.approx(coded.correct().mean())
    assert low["frames_failed"] == len(images) and low["accuracy"] == 0.0     # the cliff: failures are wrong
    # a payload that does not fit is never sent and is wrong at every SNR
    tight = Coded(coded.path, 0.0, [p + b"\x01" * 40 for p in coded.payloads], coded.estimates, coded.predictions,
                  coded.labels, 0)
    res = simulate_pair(net, coder, tight, "bpsk", "1/2", [30.0], new_key())
    assert res["fits"] == 0 and res["results"][0]["accuracy"] == 0.0 and res["results"][0]["no_fit"] == 12


def test_corrupted_payload_still_gives_an_answer_or_none():
    net = _low_rate_model()
    coder = FeatureCoder.from_model(net, (TINY.width, 8, 8))
    for seed in range(5):
        junk = np.random.default_rng(seed).bytes(40)
        assert classify_payload(net, coder, junk) in (None, 0, 1)


def test_best_curve_is_the_envelope(tmp_path):
    res = {"pairs": [{"mod": "bpsk", "rate": "1/2", "lambda": 0.1,
                      "results": [{"snr_db": 0.0, "accuracy": 0.3}, {"snr_db": 10.0, "accuracy": 0.4}]},
                     {"mod": "16qam", "rate": "3/4", "lambda": 0.01,
                      "results": [{"snr_db": 0.0, "accuracy": 0.0}, {"snr_db": 10.0, "accuracy": 0.6}]}]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(res))
    rows = best_curve(path)
    assert [(r["snr_db"], r["accuracy"], r["mod"]) for r in rows] == [(0.0, 0.3, "bpsk"), (10.0, 0.6, "16qam")]


def test_command_trains_and_evaluates(tmp_path, tiny_data):
    assert "--lam" in jscec("baseline-classify", "train", "--help").stdout
    out = tmp_path / "m.pt"
    jscec("baseline-classify", "train", "--width", "4", "--lam", "0.01", "--max-steps", "4", "--epoch-size", "32",
          "--batch-size", "16", "--val-size", "8", "--data", tiny_data, "--out", out, "--threads", "1")
    res_path = tmp_path / "r.json"
    p = jscec("baseline-classify", "eval", "--models", out, "--data", tiny_data, "--images", "6", "--val-images", "6",
              "--mod", "64qam", "--rate", "3/4", "--snr", "0", "25", "--json", res_path)
    assert "accuracy % against SNR" in p.stdout
    res = json.loads(res_path.read_text())
    assert res["k_symbols"] == 512 and [r["snr_db"] for r in res["best"]] == [0.0, 25.0]
    bad = jscec("baseline-classify", "eval", "--models", tmp_path / "missing.pt", "--data", tiny_data, check=False)
    assert bad.returncode == 2 and "error:" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
