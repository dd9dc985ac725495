"""models.secure_channel: the cipher-sim simulation (``simulate_cipher``) and the training channel."""
from __future__ import annotations

import numpy as np
import pytest

from jscec.errors import UserError
from models.secure_channel import CipherSimConfig, SecureChannel, simulate_cipher

FIELDS = {"mode", "params", "snr_db", "plaintext_noise_std", "plaintext_error_rate", "decryption_noise_std",
          "symbols"}


def sim(**kw):
    return simulate_cipher(CipherSimConfig(**kw))


def test_lwe_at_60_db_has_the_paper_decryption_noise():
    (r,) = sim(modes=["lwe"], params=["lp-192"], snrs_db=[60.0], symbols=8192)
    assert FIELDS <= set(r)
    assert (r["mode"], r["params"], r["snr_db"], r["symbols"]) == ("lwe", "lp-192", 60.0, 8192)
    assert r["plaintext_noise_std"] == pytest.approx(245, rel=0.05)
    assert r["decryption_noise_std"] == pytest.approx(245, rel=0.05)
    assert 0.5 < r["plaintext_error_rate"] < 0.7  # DESIGN.md: about 60% wrong even without channel noise


def test_mask_at_60_db_makes_no_errors():
    (r,) = sim(modes=["mask"], snrs_db=[60.0], symbols=4096)
    assert r["plaintext_error_rate"] == 0
    assert r["plaintext_noise_std"] < 1e-6
    assert r["decryption_noise_std"] == 0


def test_several_snrs_and_modes():
    rows = sim(modes=["lwe-pk", "mask"], snrs_db=[0.0, 20.0, float("inf")], symbols=1000, frame_symbols=256, seed=3)
    assert [(r["mode"], r["snr_db"]) for r in rows] == [("lwe-pk", 0.0), ("lwe-pk", 20.0), ("lwe-pk", None),
                                                       ("mask", 0.0), ("mask", 20.0), ("mask", None)]
    assert all(r["symbols"] == 1000 and r["frames"] == 4 for r in rows)
    assert "error-free" in rows[0]["d"]
    pk = rows[:3]
    assert pk[0]["plaintext_noise_std"] > pk[1]["plaintext_noise_std"] > 200
    assert rows[5]["plaintext_error_rate"] == 0 and rows[5]["plaintext_noise_std"] == 0
    assert rows[3]["plaintext_error_rate"] > rows[4]["plaintext_error_rate"]


def test_same_seed_same_numbers():
    a = sim(snrs_db=[10.0], symbols=600, seed=7)
    b = sim(snrs_db=[10.0], symbols=600, seed=7)
    c = sim(snrs_db=[10.0], symbols=600, seed=8)
    assert a == b
    assert a[0]["plaintext_noise_std"] != c[0]["plaintext_noise_std"]


@pytest.mark.parametrize("kw, flag", [({"symbols": 0}, "--symbols"), ({"frame_symbols": 0}, "--frame-symbols"),
                                      ({"sigma_l": 0.0}, "--sigma-l"), ({"snrs_db": [float("nan")]}, "--snr")])
def test_bad_settings_are_user_errors(kw, flag):
    with pytest.raises(UserError, match=flag):
        sim(**kw)


def test_secure_channel_counts_nonces_across_calls_and_cuts_back_to_k():
    ch = SecureChannel("mask", seed=1, first_nonce=10, frame_symbols=100)
    pt = np.random.default_rng(0).integers(0, 4093, (3, 250))
    sent = ch.encrypt(pt)
    assert sent["c"].shape == (3, 250) and sent["frames_c"].shape == (9, 100)
    assert sent["nonces"].tolist() == list(range(10, 19)) and ch.next_nonce == 19
    out = ch.transmit(pt, float("inf"))
    assert ch.next_nonce == 28
    assert out["z_prime"].shape == (3, 250) and np.array_equal(out["z_prime"], pt)
