"""The IND-CPA game (crypto.ind_cpa, models.ind_cpa), reduced: the controls must see their leak, the
real games must not, and the distinguishers must be able to find a planted one."""
import json

import numpy as np
import pytest

from crypto import ind_cpa as G
from crypto.cipher import CipherKeys
from models.ind_cpa import IndCpaConfig, make_channel, run_ind_cpa
from tests.conftest import jscec

K = 512


def _keys(mode, params="lp-192"):
    return CipherKeys.generate(params, mode, K, seed=f"ind-cpa test {mode}".encode())


def test_advantage_statistics():
    rng = np.random.default_rng(0)
    b = rng.integers(0, 2, 10_000)
    assert G.advantage(np.ones_like(b), b)["advantage"] == 0          # ignores the ciphertext: no advantage
    right = G.advantage(b, b)
    assert right["advantage"] == 1 and right["ci95"][0] > 0.998
    assert G.advantage(1 - b, b)["advantage"] == -1
    coin = G.advantage(rng.integers(0, 2, b.size), b)
    assert coin["ci95"][0] < coin["advantage"] < coin["ci95"][1]
    assert 0.03 < coin["ci95"][1] - coin["ci95"][0] < 0.045           # ±1.96·2/√N
    lo, hi = G.wilson(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)


def test_pairs():
    rng = np.random.default_rng(1)
    pool = G.synthetic_pool(20, K, rng)
    pool[7] = pool[3]
    pool[7, 0] = (pool[7, 0] + 255) % 4093                             # one symbol, one level apart
    zh, img, near, far = G.pairs_for(G.PAIRS, K, pool)
    assert (zh.m0 == 0).all() and (zh.m1 == 2046).all()
    assert {tuple(near.m0), tuple(near.m1)} == {tuple(pool[3]), tuple(pool[7])}
    assert G.circular_l1(far.m0, far.m1) == max(G.circular_l1(a, b) for a in pool for b in pool)
    m0, m1 = img.draw(500, rng)
    assert (G.circular_l1(m0, m1) > 0).all()                           # distinct rows every game


def test_distinguishers_find_a_planted_weak_leak():
    """A toy 'cipher' that leaks b in 16 of 512 symbols through noise of std 600 (a per-symbol
    advantage of a few percent): the learned distinguishers must see it, or the real games prove nothing."""
    rng = np.random.default_rng(2)
    n = 6000
    b = rng.integers(0, 2, n)
    m0, m1 = np.zeros((n, K), np.int64), np.full((n, K), 2046, np.int64)
    view = rng.integers(0, 4093, (n, K)).astype(np.float64)
    leak = np.where(b[:, None] == 1, 2046, 0) + rng.normal(0, 600, (n, 16))
    view[:, :16] = np.mod(leak, 4093)
    games = G.Games(b, m0, m1, view, None, np.arange(n))
    res = G.evaluate(games.subset(slice(2000, None)), games.subset(slice(0, 2000)), G.LEARNED + ("stat-cos",))
    for name in ("linear", "mlp", "stat-cos"):
        assert res[name]["ci95"][0] > 0.3, (name, res[name])


@pytest.mark.parametrize("mode", ["lwe", "lwe-pk", "mask"])
def test_reduced_game_set(mode):
    """Every distinguisher on noiseless and 10 dB games: |advantage| small (5 standard errors at 3000
    test games); both controls ≥ 0.95."""
    keys = _keys(mode)
    rng = np.random.default_rng(3)
    pool = G.synthetic_pool(48, K, rng)
    challenger = G.Challenger(keys)
    control = G.Challenger(keys, public_only=False, first_nonce=1 << 40)
    for src in G.pairs_for(["zero-half", "nearest"], K, pool):
        for snr in (None, 10.0):
            channel = make_channel(snr, rng)
            train, test = challenger.play(src, 1500, rng, channel), challenger.play(src, 3000, rng, channel)
            res = G.evaluate(test, train)
            for name, r in res.items():
                assert abs(r["advantage"]) < 5 * 2 / np.sqrt(3000), (mode, src.name, snr, name, r)
            ctl = control.play(src, 300, rng, channel)
            for view in (G.known_seed_view(keys, ctl), G.reused_nonce_view(keys, ctl, channel)):
                best = max(r["advantage"] for r in G.evaluate(view, names=G.STATS).values())
                assert best >= 0.95, (mode, src.name, snr, best)


def test_public_key_alice_does_not_leak_under_a_repeated_counter():
    """lwe-pk Alice with only the public key draws a fresh error seed per encryptor: two of them under
    one counter give unrelated ciphertexts (the reused-nonce control's leak is the shared-seed modes')."""
    keys = _keys("lwe-pk")
    rng = np.random.default_rng(4)
    src = G.pairs_for(["zero-half"], K, None)[0]
    games = G.Challenger(keys).play(src, 2000, rng)
    twin = G.Challenger(keys)                                          # another public-key Alice, same nonces
    ref = twin.encryptor.encrypt_batch(games.m0, games.nonces).c
    view = G.Games(games.b, games.m0, games.m1, np.mod(games.view - ref + games.m0, 4093), None, games.nonces)
    best = max(abs(r["advantage"]) for r in G.evaluate(view, names=G.STATS).values())
    assert best < 0.1


def test_run_ind_cpa_report_and_cli(tmp_path):
    cfg = IndCpaConfig(modes=["mask"], snrs_db=[None, 30.0], pairs=["zero-half", "images"], train_games=600,
                       test_games=1000, control_games=200, model=None, pool_images=16)
    doc = run_ind_cpa(cfg, log=lambda m: None)
    assert [(r["pair"], r["snr_db"]) for r in doc["results"]] == [("zero-half", None), ("zero-half", 30.0),
                                                                ("images", None), ("images", 30.0)]
    s = doc["summary"]
    assert s["estimates"] == 4 * len(G.DISTINGUISHERS)
    assert min(s["controls_min_best"].values()) >= 0.95
    json.dumps(doc)

    out = tmp_path / "ind.json"
    p = jscec("security", "ind-cpa", "--model", "none", "--mode", "lwe", "--pairs", "zero-half", "--snr", "none",
              "--train-games", 300, "--test-games", 500, "--control-games", 100, "--json", out)
    assert "controls' weakest best distinguisher" in p.stdout
    row = json.loads(out.read_text())["results"][0]
    assert set(row["distinguishers"]) == set(G.DISTINGUISHERS) and row["snr_db"] is None
    assert row["controls"]["known-seed"]["best"] >= 0.95


def test_cells_resume_from_the_store_and_equal_an_uninterrupted_run(tmp_path):
    """Each cell has its own generator and nonces: a run stopped after one cell and resumed from the
    store gives the rows of a run that never stopped; test games come in batches."""
    base = dict(modes=["mask"], pairs=["zero-half"], train_games=300, test_games=700, test_batch=250,
                control_games=100, model=None)
    whole = run_ind_cpa(IndCpaConfig(snrs_db=[None, 30.0], **base), log=lambda m: None)
    store = tmp_path / "cells.jsonl"
    run_ind_cpa(IndCpaConfig(snrs_db=[30.0], store=str(store), **base), log=lambda m: None)
    said = []
    resumed = run_ind_cpa(IndCpaConfig(snrs_db=[None, 30.0], store=str(store), **base), log=said.append)
    assert any("kept from" in m and "mask/zero-half/30" in m for m in said)
    assert len(store.read_text().splitlines()) == 2
    strip = [{k: v for k, v in r.items() if k not in ("seconds", "fingerprint")} for r in whole["results"]]
    assert [{k: v for k, v in r.items() if k not in ("seconds", "fingerprint")} for r in resumed["results"]] == strip
    assert all(d["games"] == 700 for r in resumed["results"] for d in r["distinguishers"].values())
    # Other settings do not reuse the stored cells.
    other = run_ind_cpa(IndCpaConfig(snrs_db=[30.0], store=str(store), **{**base, "test_games": 500}),
                        log=said.append)
    assert other["results"][0]["distinguishers"]["stat-cos"]["games"] == 500
