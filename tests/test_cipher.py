"""The DeepJSCEC cipher (crypto/cipher.py, crypto/drbg.py): correctness, noise, misuse, Eve, key files."""
from __future__ import annotations

import json
import os
import pickle
import stat

import numpy as np
import pytest

from crypto import drbg
from crypto.cipher import (MODES, PRESETS, CipherKeys, Decryptor, Encryptor, PublicKey, get_params,
                           known_seed_attack, lwe_errors, nearest_centroid)
from jscec.errors import UserError
from crypto.zp import centered, centroids, circular_std

p = 4093
K = 512
UNIFORM_STD = p / np.sqrt(12)


def keys(mode="lwe", params="lp-192", tag=b"a", k=K):
    return CipherKeys.generate(params=params, mode=mode, k=k, seed=tag * 32)


def plaintext(frames, seed=0, k=K):
    """Uniform centroids, as the quantiser produces."""
    return centroids()[np.random.default_rng(seed).integers(0, 16, (frames, k))]


# ---------------------------------------------------------------- parameters and samplers
def test_presets_and_noise_formula():
    assert set(MODES) == {"lwe", "lwe-pk", "mask"}
    lp192, lp256 = PRESETS["lp-192"], PRESETS["lp-256"]
    assert (lp192.n1, lp192.n2, lp192.p, lp192.s) == (192, 192, 4093, 8.87)
    assert (lp256.n1, lp256.n2, lp256.p, lp256.s) == (256, 256, 4093, 8.35)
    assert lp192.sigma == pytest.approx(8.87 / np.sqrt(2 * np.pi))
    assert lp192.decryption_noise_std() == pytest.approx(245.4, abs=0.1)
    assert "2^74" in lp192.security_estimate
    with pytest.raises(UserError):
        get_params("lp-1024")


def test_discrete_gaussian_moments_and_portable_table():
    g = drbg.DiscreteGaussian(8.87)
    x = g.sample(b"k" * 32, "test", 1, 400_000)
    assert x.dtype == np.int64
    assert abs(x.mean()) < 0.03
    assert x.std() == pytest.approx(g.sigma, rel=0.01)
    # D_{Z,s}: P(x) ∝ exp(−πx²/s²); compare P(0) with the formula.
    xs = np.arange(-60, 61)
    pmf = np.exp(-np.pi * xs ** 2 / 8.87 ** 2)
    assert np.mean(x == 0) == pytest.approx(pmf[60] / pmf.sum(), rel=0.03)
    # Extreme words map to the clipped support, monotonically.
    lo, hi = g.from_words(np.array([0, 2 ** 64 - 1], dtype=np.uint64))
    assert -g.tail <= lo < -30 and 30 < hi <= g.tail
    assert np.all(np.diff(g.from_words(np.sort(np.random.default_rng(0).integers(0, 2 ** 63, 1000,
                                                                                   dtype=np.uint64)))) >= 0)


def test_uniform_zp_is_unbiased_batched_and_extends_consistently():
    u = drbg.uniform_zp(b"m" * 32, "test", 7, 200_000, p)
    assert u.min() >= 0 and u.max() < p
    counts = np.bincount(u, minlength=p)
    chi2 = ((counts - len(u) / p) ** 2 / (len(u) / p)).sum()
    assert chi2 < p + 6 * np.sqrt(2 * p)  # χ² with p−1 dof
    batch = drbg.uniform_zp_batch(b"m" * 32, "test", [7, 8], 1000, p)
    assert np.array_equal(batch[0], u[:1000])
    assert not np.array_equal(batch[0], batch[1])
    # A modulus that rejects ~39% of words forces the "extend the stream" path; the result must still
    # be the first accepted words of the keystream.
    big = 40_000
    words = np.frombuffer(drbg.keystream(b"m" * 32, "test", 3, 2 * 20_000), dtype="<u2").astype(np.int64)
    expect = words[words < big][:5000] % big
    got = drbg.uniform_zp_batch(b"m" * 32, "test", [3, 4], 5000, big)
    assert np.array_equal(got[0], expect)
    assert np.array_equal(got[1], drbg.uniform_zp(b"m" * 32, "test", 4, 5000, big))


def test_drbg_errors_are_deterministic_per_nonce():
    k = keys()
    e_a = k.errors(5)
    e_b = keys().errors(5)  # a fresh object from the same seed: a replay
    for x, y in zip(e_a, e_b):
        assert np.array_equal(x, y)
    assert [len(x) for x in e_a] == [192, 192, K]
    e_c = k.errors(6)
    assert not any(np.array_equal(x, y) for x, y in zip(e_a, e_c))
    e_other = keys(tag=b"b").errors(5)
    assert not np.array_equal(e_a[0], e_other[0])
    batch = k.errors_batch([6, 5])
    assert np.array_equal(batch[0][1], e_a[0]) and np.array_equal(batch[2][0], e_c[2])
    assert np.array_equal(k.mask(3), keys(mode="mask").mask(3))
    assert not np.array_equal(k.mask(3), k.mask(4))
    with pytest.raises(ValueError):
        k.errors(-1)


# ---------------------------------------------------------------- the three modes
def test_mask_mode_decrypts_exactly_at_infinite_snr():
    k = keys("mask")
    z = plaintext(8)
    nonces = np.arange(100, 108)
    ct = k.encryptor().encrypt_batch(z, nonces)
    assert ct.d is None and ct.c.dtype == np.int64 and ct.c.min() >= 0 and ct.c.max() < p
    z_prime = k.decryptor().decrypt_batch(ct.c.astype(np.float64), nonces)
    assert np.array_equal(z_prime, z.astype(np.float64))
    # The ciphertext itself looks uniform.
    assert circular_std(ct.c - z) == pytest.approx(UNIFORM_STD, rel=0.05)
    assert np.array_equal(k.decryption_noise_batch(nonces), np.zeros_like(z))


@pytest.mark.parametrize("params", ["lp-192", "lp-256"])
def test_lwe_decryption_error_is_exactly_the_lwe_term(params):
    k = keys("lwe", params)
    z = plaintext(32)
    nonces = np.arange(32)
    ct = k.encryptor().encrypt_batch(z, nonces)
    assert ct.d is None  # lwe: only c is sent
    z_prime = k.decryptor().decrypt_batch(ct.c, nonces)
    noise = k.decryption_noise_batch(nonces)
    e1, e2, e3 = k.errors(3)
    assert np.array_equal(noise[3], k.S.T @ e2 + k.U.T @ e1 + e3)
    assert np.array_equal(np.mod(z_prime - z - noise, p), np.zeros_like(z_prime))
    pr = PRESETS[params]
    expected = np.sqrt(2 * pr.n1 * pr.sigma ** 4 + pr.sigma ** 2)
    assert np.std(noise) == pytest.approx(expected, rel=0.05)
    assert circular_std(z_prime - z) == pytest.approx(expected, rel=0.05)
    # Hard decisions are mostly wrong even without channel noise (DESIGN.md, security note 4).
    if params == "lp-192":
        wrong = np.mean(centroids()[nearest_centroid(z_prime)] != z)
        assert 0.5 < wrong < 0.7


def test_soft_ciphertext_is_accepted():
    k = keys("lwe")
    z = plaintext(1)[0]
    ct = k.encryptor().encrypt(z, 9)
    offset = np.random.default_rng(1).uniform(-3, 3, K)
    z_prime = k.decryptor().decrypt(ct.c + offset, 9)
    assert z_prime.dtype == np.float64 and z_prime.min() >= 0 and z_prime.max() < p
    assert np.allclose(np.mod(z_prime - z - k.decryption_noise(9) - offset + p / 2, p) - p / 2, 0, atol=1e-9)


def test_single_and_batch_forms_agree():
    for mode in MODES:
        z = plaintext(3)
        a = keys(mode).encryptor().encrypt_batch(z, [4, 5, 6])
        enc = keys(mode).encryptor()
        singles = [enc.encrypt(z[i], 4 + i) for i in range(3)]
        assert np.array_equal(a.c, np.stack([s.c for s in singles]))
        if mode == "lwe-pk":
            assert np.array_equal(a.d, np.stack([s.d for s in singles]))
        dec = keys(mode).decryptor()
        batch = dec.decrypt_batch(a.c, [4, 5, 6], d=a.d)
        for i in range(3):
            assert np.array_equal(batch[i], dec.decrypt(a.c[i], 4 + i, d=None if a.d is None else a.d[i]))


def test_lwe_pk_decrypts_with_transmitted_d():
    k = keys("lwe-pk")
    z = plaintext(16)
    nonces = np.arange(16)
    ct = k.encryptor().encrypt_batch(z, nonces)
    assert ct.d.shape == (16, 192) and ct.d.min() >= 0 and ct.d.max() < p
    dec = k.decryptor()
    z_prime = dec.decrypt_batch(ct.c, nonces, d=ct.d)
    assert np.array_equal(np.mod(z_prime - z - k.decryption_noise_batch(nonces), p), np.zeros_like(z_prime))
    with pytest.raises(ValueError, match="needs the transmitted d"):
        dec.decrypt_batch(ct.c, nonces)
    # True public-key use: Alice holds only the public key and her own fresh error seed.
    alice = Encryptor(k.public())
    ct2 = alice.encrypt_batch(z, nonces)
    z2 = dec.decrypt_batch(ct2.c, nonces, d=ct2.d)
    assert circular_std(z2 - z) == pytest.approx(PRESETS["lp-192"].decryption_noise_std(), rel=0.05)
    # A corrupted d is amplified by Sᵀ: one wrong value of d spoils every symbol of the frame.
    d_bad = ct.d.copy()
    d_bad[:, 0] += 1
    diff = dec.decrypt_batch(ct.c, nonces, d=d_bad) - z_prime
    assert np.array_equal(np.mod(diff, p), np.mod(np.broadcast_to(k.S[0], diff.shape), p))


# ---------------------------------------------------------------- misuse
def test_wrong_key_or_wrong_nonce_leaves_uniform_noise():
    k = keys("lwe")
    z = plaintext(32)
    nonces = np.arange(32)
    ct = k.encryptor().encrypt_batch(z, nonces)
    wrong_key = keys("lwe", tag=b"z").decryptor().decrypt_batch(ct.c, nonces)
    wrong_nonce = k.decryptor().decrypt_batch(ct.c, nonces + 1000)
    for z_prime in (wrong_key, wrong_nonce):
        assert circular_std(z_prime - z) == pytest.approx(UNIFORM_STD, rel=0.05)
        assert np.mean(centroids()[nearest_centroid(z_prime)] != z) == pytest.approx(15 / 16, abs=0.02)
    m = keys("mask")
    ct = m.encryptor().encrypt_batch(z, nonces)
    assert circular_std(keys("mask", tag=b"z").decryptor().decrypt_batch(ct.c, nonces) - z) == \
        pytest.approx(UNIFORM_STD, rel=0.05)
    assert circular_std(m.decryptor().decrypt_batch(ct.c, nonces + 1) - z) == pytest.approx(UNIFORM_STD, rel=0.05)


@pytest.mark.parametrize("mode", MODES)
def test_reused_nonce_raises(mode):
    enc = keys(mode).encryptor()
    z = plaintext(4)
    enc.encrypt(z[0], 0)
    with pytest.raises(ValueError, match="nonce reuse"):
        enc.encrypt(z[1], 0)
    enc.encrypt_batch(z[:3], [1, 2, 3])
    with pytest.raises(ValueError, match="nonce reuse"):
        enc.encrypt_batch(z[:2], [4, 2])
    with pytest.raises(ValueError, match="nonce reuse"):
        enc.encrypt_batch(z[:2], [9, 9])
    enc.encrypt_batch(z[:2], [4, 9])  # the refused batches recorded nothing
    assert enc.nonces_used == 6
    with pytest.raises(ValueError, match="nonce reuse"):
        enc.encrypt(z[0], 4)


def test_bad_plaintext_rejected():
    enc = keys().encryptor()
    with pytest.raises(ValueError):
        enc.encrypt(np.full(K, p), 0)
    with pytest.raises(ValueError):
        enc.encrypt(np.zeros(K - 1, dtype=np.int64), 1)
    with pytest.raises(ValueError):
        enc.encrypt(np.full(K, 0.5), 2)


# ---------------------------------------------------------------- Eve
def test_eve_with_the_error_seed_recovers_the_plaintext_and_without_it_does_not():
    k = keys("lwe")
    public = k.public()
    z = plaintext(4)
    enc = k.encryptor()
    for i in range(4):
        c = enc.encrypt(z[i], 50 + i).c
        recovered, z_plus_e3 = known_seed_attack(public, k.error_seed, c, 50 + i)
        assert np.array_equal(recovered, z[i])  # exactly
        assert np.array_equal(np.mod(z_plus_e3 - z[i] - k.errors(50 + i)[2], p), np.zeros(K))
        guessed, _ = known_seed_attack(public, os.urandom(32), c, 50 + i)
        assert np.mean(guessed != z[i]) == pytest.approx(15 / 16, abs=0.04)
        wrong_nonce, _ = known_seed_attack(public, k.error_seed, c, 51 + i)
        assert np.mean(wrong_nonce != z[i]) == pytest.approx(15 / 16, abs=0.04)


# ---------------------------------------------------------------- key files
def test_key_save_load_round_trip(tmp_path):
    for mode in MODES:
        k = keys(mode, tag=b"q")
        path = k.save(tmp_path / f"{mode}.key")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert not any(f.name.endswith(".tmp") for f in tmp_path.iterdir())
        loaded = CipherKeys.load(path)
        assert (loaded.mode, loaded.params, loaded.k, loaded.key_id) == (k.mode, k.params, k.k, k.key_id)
        z = plaintext(2)
        ct = k.encryptor().encrypt_batch(z, [1, 2])
        assert np.array_equal(loaded.decryptor().decrypt_batch(ct.c, [1, 2], d=ct.d),
                              k.decryptor().decrypt_batch(ct.c, [1, 2], d=ct.d))
    # Overwriting keeps mode 0600 even when the old file was wider.
    target = tmp_path / "lwe.key"
    os.chmod(target, 0o644)
    keys("lwe").save(target)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_corrupt_key_files_raise_user_error(tmp_path):
    path = keys().save(tmp_path / "k.key")
    data = path.read_bytes()
    doc = json.loads(data)
    flipped = dict(doc, seeds=dict(doc["seeds"], key_seed=("0" if doc["seeds"]["key_seed"][0] != "0" else "1")
                                    + doc["seeds"]["key_seed"][1:]))
    no_seeds = dict(doc)
    del no_seeds["seeds"]
    cases = {"truncated": (data[: len(data) // 2], "not JSON"), "empty": (b"", "not JSON"),
             "binary": (b"\xff\xfe" + os.urandom(300), "not text"),
             "short-seed": (json.dumps(dict(doc, seeds=dict(doc["seeds"], error_seed="00ff"))).encode(), "error seed"),
             "bad-mode": (json.dumps(dict(doc, mode="rot13")).encode(), "rot13"),
             "bad-preset": (json.dumps(dict(doc, params="lp-9")).encode(), "lp-9"),
             "no-seeds": (json.dumps(no_seeds).encode(), "no seeds"),
             "other-format": (json.dumps(dict(doc, format="x")).encode(), "format 'x'"),
             "not-hex": (json.dumps(dict(doc, seeds=dict(doc["seeds"], a_seed="zz" * 32))).encode(), "hexadecimal"),
             "flipped-seed": (json.dumps(flipped).encode(), "key id does not match")}
    for name, (bad, why) in cases.items():
        f = tmp_path / f"{name}.key"
        f.write_bytes(bad)
        f.chmod(0o600)
        with pytest.raises(UserError) as exc:
            CipherKeys.load(f)
        msg = str(exc.value)
        assert "\n" not in msg and str(f) in msg and why in msg, (name, msg)
        for secret in doc["seeds"].values():
            assert secret not in msg
    with pytest.raises(UserError, match="not found"):
        CipherKeys.load(tmp_path / "missing.key")


def test_key_files_others_may_read_and_folders_are_refused_in_one_line(tmp_path):
    path = keys().save(tmp_path / "k.key")
    path.chmod(0o644)
    with pytest.raises(UserError, match=r"readable by others \(mode 0644\).*chmod 600") as exc:
        CipherKeys.load(path)
    assert "\n" not in str(exc.value)
    path.chmod(0o600)
    assert CipherKeys.load(path).key_id == keys().key_id
    with pytest.raises(UserError, match="is a folder"):
        CipherKeys.load(tmp_path)


def test_encryptors_and_decryptors_hold_secrets_and_refuse_pickling():
    import pickle

    k = keys("lwe")
    for obj in (k, k.encryptor(), k.decryptor(), Encryptor(k.public())):
        with pytest.raises(TypeError, match="not picklable"):
            pickle.dumps(obj)


def test_a_public_key_encryptor_draws_its_own_error_seed_and_takes_none():
    k = keys("lwe-pk")
    z = plaintext(1)
    a, b = Encryptor(k.public()), Encryptor(k.public())
    ca, cb = a.encrypt_batch(z, [5]), b.encrypt_batch(z, [5])
    assert not np.array_equal(ca.d, cb.d)          # fresh error randomness per encryptor, same nonce
    for ct in (ca, cb):                            # and Bob decrypts both with the transmitted d
        assert np.abs(centered(k.decryptor().decrypt_batch(ct.c, [5], d=ct.d) - z)).max() < 8 * 245   # eq. 27
    with pytest.raises(TypeError):
        Encryptor(k.public(), error_seed=bytes(32))


def test_public_key_export_for_eve(tmp_path):
    k = keys("lwe")
    path = k.public().save(tmp_path / "pub.npz")
    pub = PublicKey.load(path)
    assert pub.key_id == k.key_id
    assert np.array_equal(pub.P, k.public_key) and np.array_equal(pub.A, k.A)
    assert np.array_equal(np.mod(pub.P - (k.U - k.A @ k.S), p), np.zeros_like(pub.P))
    text = path.read_bytes()
    for secret in (k.error_seed, k.mask_key, k._key_seed):
        assert secret not in text and secret.hex().encode() not in text
    # Eve with the exported public key and a leaked error seed.
    c = k.encryptor().encrypt(plaintext(1)[0], 3).c
    assert np.array_equal(known_seed_attack(pub, k.error_seed, c, 3)[0], known_seed_attack(k.public(), k.error_seed, c, 3)[0])
    (tmp_path / "cut.npz").write_bytes(path.read_bytes()[:1000])
    with pytest.raises(UserError):
        PublicKey.load(tmp_path / "cut.npz")
    with pytest.raises(UserError, match="secret key"):
        PublicKey.load(k.save(tmp_path / "secret.key"))
    with pytest.raises(UserError):
        CipherKeys.load(path)


def test_no_secret_in_repr_str_or_pickle():
    for mode in MODES:
        k = keys(mode)
        secrets_hex = [k.error_seed.hex(), k.mask_key.hex(), k._key_seed.hex()]
        texts = [repr(k), str(k), repr(k.encryptor()), repr(k.decryptor()), f"{k}"]
        for t in texts:
            assert k.key_id in t
        texts.append(repr(k.public()))
        for t in texts:
            for s in secrets_hex:
                assert s not in t and s[:8] not in t
            assert "error_seed" not in t and "mask_key" not in t
        with pytest.raises(TypeError):
            pickle.dumps(k)


def test_lwe_errors_helper_matches_keys():
    k = keys()
    e1, e2, e3 = lwe_errors(k.error_seed, k.params, k.k, [11])
    assert np.array_equal(e1[0], k.errors(11)[0]) and np.array_equal(e3[0], k.errors(11)[2])


def test_decryptor_needs_secret_keys():
    with pytest.raises(TypeError):
        Decryptor(keys().public())


def test_error_prefix_without_e3_matches():
    k = keys()
    e1, e2, e3 = lwe_errors(k.error_seed, k.params, k.k, [4, 5], with_e3=False)
    assert e3 is None
    full = k.errors_batch([4, 5])
    assert np.array_equal(e1, full[0]) and np.array_equal(e2, full[1])
