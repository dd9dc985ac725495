"""SIFT on Paillier ciphertexts (issue 19): tiles in slots, addition chains, the key holder's CRT encryption, the
encrypted DoG equal to the plaintext integer DoG, and the control on the ciphertext image."""
from __future__ import annotations

import numpy as np
import pytest

from hesemcom import sift

pytest.importorskip("phe")
pytest.importorskip("gmpy2")


@pytest.mark.parametrize("exps", [{3}, {2, 4}, {1, 2, 3, 4096}, {5, 77, 1330, 2022, 566, 24, 152}, set(range(2, 60, 7))])
def test_power_program_reaches_every_exponent(exps):
    got = {1: 1}
    for t, a, b in sift.power_program(exps):
        assert a in got and b in got and a + b == t
        got[t] = t
    assert exps <= set(got)


def test_power_program_is_shorter_than_square_and_multiply():
    plan = sift.Plan.make()
    exps = {int(v) for f in plan.filters for v in f.ravel() if v > 1}
    assert len(sift.power_program(exps)) < len(sift._binary_steps(exps))


def test_tiles_cover_the_image_within_the_slots():
    plan = sift.Plan.make(2048)
    assert (plan.slots, plan.slot_bits, plan.offset) == (62, 33, 1 << 32)
    for H, W in ((128, 128), (24, 24), (30, 27), (100, 160)):
        t = sift.tiles_for(H, W, plan)
        assert t.A * t.B <= plan.slots and t.A * t.th >= H and t.B * t.tw >= W
        assert t.P == plan.Rk == 18
    t = sift.tiles_for(128, 128, plan)
    assert (t.th + 2 * t.P) * (t.tw + 2 * t.P) < 3000 and 25 * t.th * t.tw < 7500     # encryptions, decryptions


@pytest.fixture(scope="module")
def small_key():
    from phe import paillier

    return paillier.generate_paillier_keypair(n_length=1024)


def test_crt_encryption_and_decryption_agree_with_phe(small_key):
    pk, sk = small_key
    ps = sift.PaillierSift(1024, keypair=small_key)
    rng = np.random.default_rng(0)
    for m in [0, 1, int(pk.n) - 1] + [int(x) for x in rng.integers(0, 2 ** 62, 4)]:
        c = ps.encrypt_int(m)
        assert sk.raw_decrypt(int(c)) == m and ps.decrypt_int(pk.raw_encrypt(m)) == m
    assert ps.encrypt_int(5) != ps.encrypt_int(5)               # fresh randomness


def test_odd_sized_image_with_zero_filled_tiles(small_key):
    img = sift.load_image(None, 0)[100:130, 300:327]           # 30×27: the last tile column overhangs the image
    r = sift.run(img, 1024, workers=1, keypair=small_key)
    assert r["octaves"] == [-1, 0] and r["dog_equal_to_plaintext"]
    t = r["tiles"]
    assert t["rows"] * t["tile"][0] >= 30 and t["columns"] * t["tile"][1] > 27
    assert r["decryptions"] == 25 * t["tile"][0] * t["tile"][1]


@pytest.fixture(scope="module")
def sift_run():
    img = sift.load_image(None, 0)[200:224, 320:344]     # 24×24 of the camera man: octaves −1 and 0
    return img, sift.run(img, 2048, workers=2)


def test_sift_encrypted_dog_equals_the_plaintext_dog(sift_run):
    img, r = sift_run
    assert r["octaves"] == [-1, 0] and r["dog_equal_to_plaintext"]
    assert r["keypoints_encrypted"] == r["keypoints_plaintext_scale_space"] >= 4
    assert r["same_keypoints_within_0.5px"] == (1.0, 1.0)
    assert r["coverage_of_opencv_within_1.5px"] >= 0.5
    assert r["encryptions"] == np.prod(r["tiles"]["grid"]) and r["slots"] == 62


def test_sift_on_the_ciphertext_image_matches_nothing(sift_run):
    img, r = sift_run
    c = r["control"]
    # A 24×24 ciphertext image (fresh encryption randomness each run) may give SIFT no keypoint at all; whatever
    # it finds matches nothing. The harness can see a match: the plaintext against itself matches everywhere.
    assert c["plaintext_keypoints"] > 0 and c["matches_at_the_same_place"] == 0
    same = sift.control(img, img)
    assert same["matches_at_the_same_place"] == same["plaintext_keypoints"] == c["plaintext_keypoints"]
