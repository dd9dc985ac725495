"""Frame authentication (crypto.frame_auth, issue 20 item 4) without a radio: keys, tag, tag block,
check symbols and their test, the replay window, and Bob's chain on forged, replayed and modified frames."""
import json
import pickle
import stat

import numpy as np
import pytest
import torch

from crypto.cipher import CipherKeys
from crypto.frame_auth import (CHECK_FLOOR, TAG_BYTES, ReplayWindow, mean_bound, n_checks, payload_check,
                               replay_state_path)
from crypto.zp import P
from jscec.errors import UserError
from radio.frame import DEFAULT_FORMAT as F, VERSION, VERSION_AUTH, FrameHeader, HeaderError
from radio.zp_qam import hard_demap, modulate


def _keys(mode="mask", seed=b"auth" * 8):
    return CipherKeys.generate("lp-192", mode, 512, seed=seed)


# ---------------------------------------------------------------------------------------------------- keys, tag
def test_alice_and_bob_derive_the_same_keys_and_no_secret_shows():
    for mode in ("lwe", "mask"):
        keys = _keys(mode)
        bob, alice = keys.frame_auth(), keys.encryptor().frame_auth()
        info = FrameHeader(counter=5, mode=mode, key_id=keys.key_id).info_bytes()
        assert alice.tag(info) == bob.tag(info) and len(bob.tag(info)) == TAG_BYTES
        text = repr(bob) + str(alice)
        assert keys.key_id in text
        for secret in (keys.error_seed, keys.mask_key, bob._tag_key, bob._check_key):
            assert secret.hex() not in text and secret.hex()[:16] not in text
        with pytest.raises(TypeError):
            pickle.dumps(bob)
    # The same 32 bytes as error seed (lwe) and mask key (mask) give the same MAC keys; the cipher's own
    # derivations use other labels, so the MAC keys are none of them.
    lwe, mask = _keys("lwe").frame_auth(), _keys("mask").frame_auth()
    assert lwe.tag(b"\0" * 23) != mask.tag(b"\0" * 23)   # error seed and mask key are different secrets
    keys = _keys("mask")
    assert keys.frame_auth()._tag_key not in (keys.mask_key, keys.error_seed)


def test_lwe_pk_has_no_shared_secret_and_its_frames_stay_version_1():
    keys = _keys("lwe-pk")
    assert keys.frame_auth() is None and keys.encryptor().frame_auth() is None
    from link.apps.alice import Alice
    from models.codec import CodecConfig, DeepJscec

    torch.manual_seed(0)
    alice = Alice(DeepJscec(CodecConfig(width=8, cipher_mode="lwe")).eval(), keys, "m")
    frames, _ = alice.frames_for_image(np.zeros((32, 32, 3), np.uint8), 0)
    header = F.decode_header(frames[0][F.layout(0, 0).header].real)
    assert header.version == VERSION and not header.tagged and header.d_len == 192


def test_the_tag_covers_every_header_field_and_the_d_block():
    auth = _keys().frame_auth()
    h = FrameHeader(counter=1000, mode="mask", key_id="0badcafe", model_id=7, payload_len=2048, image_index=3,
                    chunk_index=1, chunk_count=4, height=64, width=64, version=VERSION_AUTH)
    tag = auth.tag(h.info_bytes())
    assert auth.verify(h.info_bytes(), None, tag)
    for field, value in [("counter", 1001), ("key_id", "0badcafd"), ("image_index", 4), ("chunk_index", 2),
                         ("chunk_count", 3), ("model_id", 8), ("height", 32), ("payload_len", 2047), ("mode", "lwe"),
                         ("version", VERSION)]:
        forged = FrameHeader.from_dict({**h.to_dict(), field: value})
        assert not auth.verify(forged.info_bytes(), None, tag), field
    d = np.arange(192)
    assert auth.tag(h.info_bytes(), d) != tag and not auth.verify(h.info_bytes(), d + (d == 5), auth.tag(h.info_bytes(), d))
    assert not auth.verify(h.info_bytes(), None, None) and not auth.verify(h.info_bytes(), None, tag[:4])
    assert not _keys(seed=b"other" * 7).frame_auth().verify(h.info_bytes(), None, tag)


def test_tag_block_round_trip_and_its_crc_catches_noise():
    rng = np.random.default_rng(0)
    tag = rng.bytes(TAG_BYTES)
    sym = F.tag_to_symbols(tag)
    assert sym.size == F.tag_symbols == 168 and np.all(np.abs(sym.imag) == 0)
    assert F.decode_tag(sym.real * 10) == (tag, True)
    llr = sym.real.astype(np.float64).copy()
    llr[:24] *= -1                      # a whole Golay word decoded wrong
    got, ok = F.decode_tag(llr)
    assert not ok and got != tag
    # Version 2 frames carry the block after the payload and d block; version 1 frames do not.
    assert F.frame_len(2048, 0, True) - F.frame_len(2048) == 168 + 11 and F.frame_len(512, 0, True) == 1198 + 180
    with pytest.raises(HeaderError):
        FrameHeader.from_bits(np.concatenate([[0, 0, 1, 1], FrameHeader(counter=1).to_bits()[4:]]))


# ---------------------------------------------------------------------------------------------------- check symbols
def test_check_symbols_are_keyed_stratified_and_follow_the_counter():
    auth = _keys().frame_auth()
    assert [n_checks(n) for n in (0, 100, 511, 512, 700, 1023, 1024, 2048, 4095)] == [0, 0, 0, 8, 10, 15, 16, 16, 16]
    for length in (512, 700, 2048):
        pos, val = auth.checks(77, length)
        n = n_checks(length)
        edges = (np.arange(n + 1) * length) // n
        assert pos.size == val.size == n and np.all((pos >= edges[:-1]) & (pos < edges[1:]))
        assert val.min() >= 0 and val.max() < P
        again = auth.checks(77, length)
        assert np.array_equal(pos, again[0]) and np.array_equal(val, again[1])
    other = auth.checks(78, 2048)
    assert not np.array_equal(other[1], auth.checks(77, 2048)[1])
    # Over many counters the positions cover each stratum uniformly.
    offs = np.concatenate([auth.checks(c, 2048)[0] - np.arange(16) * 128 for c in range(400)])
    counts = np.bincount(offs // 16, minlength=8)
    assert counts.min() > 0.8 * counts.mean()


def test_payload_check_bounds():
    assert mean_bound(16) == pytest.approx(4.16, abs=0.01) and mean_bound(8) == pytest.approx(6.07, abs=0.01)
    assert payload_check([], [], 0.1).ok


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 30.0])
def test_check_symbols_raise_no_false_alarm_and_catch_a_replaced_payload(snr_db):
    rng = np.random.default_rng(int(snr_db))
    nv = 10 ** (-snr_db / 10)
    n, frames = 16, 20000
    x = modulate(rng.integers(0, P, (frames, n)))
    noise = np.sqrt(nv / 2) * (rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape))
    assert all(payload_check(x[i] + noise[i], x[i], nv).ok for i in range(frames))
    other = modulate(rng.integers(0, P, (frames, n)))        # a spliced or replaced payload
    caught = np.mean([not payload_check(other[i] + noise[i], x[i], nv).ok for i in range(2000)])
    if snr_db >= 10:
        assert caught == 1.0
    else:
        assert caught < 0.5      # at 0 dB the noise is as large as the constellation: no check can see it


def test_a_centroid_shift_is_caught_only_above_the_noise():
    """c + δ with δ one quantiser level (p/16 ≈ 256: four rows of the 4096-QAM grid, |Δx| ≈ 0.15) on every
    symbol: seen at 30 dB (noise std 0.03) every time; at 10 dB (noise std 0.32) the shift itself hides in the
    noise, and a frame is caught only through a check symbol whose c + 256 wrapped around Z_p (c ≥ p − 256,
    a jump across the constellation: 1 − (1 − 256/p)^16 ≈ 64 % of frames)."""
    rng = np.random.default_rng(1)
    c = rng.integers(0, P, (2000, 16))
    x, moved = modulate(c), modulate((c + 256) % P)
    wrapped = (c >= P - 256).any(axis=1)
    for snr_db in (30.0, 10.0):
        nv = 10 ** (-snr_db / 10)
        noise = np.sqrt(nv / 2) * (rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape))
        caught = np.array([not payload_check(moved[i] + noise[i], x[i], nv).ok for i in range(len(x))])
        if snr_db == 30.0:
            assert caught.all()
        else:
            assert not caught[~wrapped].any() and caught[wrapped].mean() > 0.95
    assert CHECK_FLOOR == pytest.approx(10 ** -2.5)


# ---------------------------------------------------------------------------------------------------- replay window
def test_replay_window_accepts_each_counter_once_and_forgets_nothing_recent():
    w = ReplayWindow(size=100)
    assert w.check("k", 10, 4)
    w.accept("k", 10, 4)
    assert not w.check("k", 10, 4) and not w.check("k", 13, 1) and w.check("k", 14, 2) and w.check("j", 10, 4)
    w.accept("k", 500, 4)
    assert not w.check("k", 300, 1)          # at or below the highest accepted − size: too old
    assert w.check("k", 450, 4)              # within the window, never seen: a frame that came out of order
    for c in range(1000, 5000, 4):
        w.accept("k", c, 4)
    assert not w.check("k", 4996, 1) and len(w._seen["k"]) <= 2 * 100 + 4


def test_replay_state_floor_outlives_the_run(tmp_path):
    keys = _keys()
    key = tmp_path / "bob.key"
    keys.save(key)
    path = replay_state_path(key)
    w = ReplayWindow(state=path, key_id=keys.key_id, save_every=2)
    w.accept(keys.key_id, 100, 4)
    assert not path.exists()
    w.accept(keys.key_id, 104, 4)
    assert json.loads(path.read_text())["floor"] == 108
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    w.accept(keys.key_id, 200, 1)
    w.close()
    again = ReplayWindow(state=path, key_id=keys.key_id)
    assert again.floor(keys.key_id) == 201
    assert not again.check(keys.key_id, 104, 4) and not again.check(keys.key_id, 200) and again.check(keys.key_id, 201)
    old = ReplayWindow(state=path, key_id=keys.key_id)
    old.accept(keys.key_id, 150, 1)          # a run that saw less must not lower the floor
    old.close()
    assert json.loads(path.read_text())["floor"] == 201
    with pytest.raises(UserError, match="belongs to key"):
        ReplayWindow(state=path, key_id="00000000")
    path.write_text("{}")
    path.chmod(0o600)
    with pytest.raises(UserError, match="not a DeepJSCEC-HIL replay state"):
        ReplayWindow(state=path, key_id=keys.key_id)
    path.unlink()
    stuck = ReplayWindow(state=tmp_path / "no-such-folder" / "bob.key.replay", key_id=keys.key_id)
    stuck.accept(keys.key_id, 1, 1)
    with pytest.raises(UserError, match="cannot write the replay state .* --replay-state none"):
        stuck.close()


# ---------------------------------------------------------------------------------------------------- Bob's chain
def _model(mode):
    from models.codec import CodecConfig, DeepJscec

    torch.manual_seed(0)
    return DeepJscec(CodecConfig(width=8, cipher_mode=mode)).eval()


def _deliver(frame, noise_var=1e-4, rng=None):
    """What the synchroniser delivers for a frame received with a little noise on the payload."""
    from radio.sync import SyncedFrame

    header = F.decode_header(frame[F.layout(0, 0).header].real)
    lay = F.layout_of(header)
    payload = frame[lay.payload].copy()
    if rng is not None:
        payload += (np.sqrt(noise_var / 2) * (rng.standard_normal(payload.size)
                                              + 1j * rng.standard_normal(payload.size))).astype(np.complex64)
    tag, tag_ok = F.decode_tag(frame[lay.tag_block].real) if header.tagged else (None, None)
    return SyncedFrame(header=header, payload=payload, noise_var=noise_var, mer_db=40.0, snr_db=40.0, cfo=0.0,
                       sro_ppm=0.0, timing=0.0, gain=1.0, start=0.0, metric=1.0, tag=tag, tag_ok=tag_ok)


def forge(frame, **fields):
    """The frame with header fields changed and the header's CRC recomputed (anyone can: it has no key)."""
    header = F.decode_header(frame[F.layout(0, 0).header].real)
    out = frame.copy()
    out[F.layout_of(header).header] = F.header_to_symbols(FrameHeader.from_dict({**header.to_dict(), **fields}))
    return out


def add_delta(frame, delta):
    """c + δ (mod p) on every payload symbol: the cipher's malleability, done to the symbols on the air."""
    header = F.decode_header(frame[F.layout(0, 0).header].real)
    lay = F.layout_of(header)
    out = frame.copy()
    out[lay.payload] = modulate((hard_demap(frame[lay.payload]) + delta) % P)
    return out


@pytest.mark.parametrize("mode", ["lwe", "mask"])
def test_bob_drops_forged_replayed_and_modified_frames_and_keeps_his_images(mode):
    from link.apps.alice import Alice
    from link.receiver.chains import BobChain

    model = _model(mode)
    keys = _keys(mode)
    alice = Alice(model, keys, "m", first_counter=100, subframes=1)
    rng = np.random.default_rng(3)
    imgs = {i: rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for i in range(4)}
    frames = {i: alice.frames_for_image(im, i)[0] for i, im in imgs.items()}     # 4 chunks per image
    clean, attacked = BobChain(model, keys, "m"), BobChain(model, keys, "m")
    for i in range(3):
        for f in frames[i]:
            clean.handle(_deliver(f))
            attacked.handle(_deliver(f))
    # Image 3's first three frames are changed on their way (Bob never sees them whole), the fourth is not.
    spliced = frames[3][2].copy()                                            # header and tag of one, payload of another
    lay = F.layout(512, 0, True)
    spliced[lay.payload] = frames[1][2][lay.payload]
    attacks = [(frames[0][0], "replay"), (frames[2][3], "replay"),           # old chunks of open images
               (forge(frames[1][2], counter=10_000), "mac"), (forge(frames[1][2], image_index=2), "mac"),
               (forge(frames[1][2], key_id="01234567"), "other key"),
               (forge(forge(frames[1][2], key_id="01234567"), key_id=keys.key_id, chunk_index=0), "mac"),
               (add_delta(frames[3][0], P // 2), "payload check"), (add_delta(frames[3][1], 256), "payload check"),
               (spliced, "payload check"), (frames[3][3], None)]
    for f, _ in attacks:
        attacked.handle(_deliver(f))
    clean.handle(_deliver(frames[3][3]))
    want = {}
    for _, reason in attacks:
        if reason:
            want[reason] = want.get(reason, 0) + 1
    assert dict(attacked.drops) == want
    for i in imgs:                      # every chunk of every image exactly as received without the attacks
        a, c = attacked.assemble(i), clean.assemble(i)
        assert np.array_equal(a[0], c[0]) and np.array_equal(a[1], c[1])
    assert attacked.assemble(3)[1][:3 * 512].all()        # image 3: the changed frames were never decoded
    assert attacked.frames_authenticated == clean.frames_authenticated == 13
    s = attacked.summary(attacked.decode_all(imgs), 16)
    assert s["authentication"]["frames_authenticated"] == 13 and s["frames_dropped"] == want
    assert [(r["frames_ok"], r["frames_expected"]) for r in s["images"]] == [(4, 4)] * 3 + [(1, 4)]
    assert all(r["check_ratio"] < 4 for r in s["per_frame"] if r["ok"])
    assert all(r["check_ratio"] > 4 for r in s["per_frame"] if r.get("reason") == "payload check")


def test_untagged_frames_are_dropped_unless_bob_replays_an_old_recording():
    from link.apps.alice import Alice
    from link.receiver.chains import BobChain

    model = _model("mask")
    keys = _keys()
    img = np.zeros((32, 32, 3), np.uint8)
    old = Alice(model, keys, "m", first_counter=7, authenticate=False).frames_for_image(img, 0)[0]
    new = Alice(model, keys, "m", first_counter=8).frames_for_image(img, 1)[0]
    assert not F.decode_header(old[0][F.layout(0, 0).header].real).tagged
    live, legacy = BobChain(model, keys, "m"), BobChain(model, keys, "m", auth="legacy")
    for chain in (live, legacy):
        chain.handle(_deliver(old[0]))
        chain.handle(_deliver(forge(new[0], counter=9)))   # a tagged frame is verified all the same
        chain.handle(_deliver(new[0]))
    assert live.drops == {"no tag": 1, "mac": 1} and legacy.drops == {"mac": 1}
    assert (legacy.frames_unauthenticated, legacy.frames_authenticated) == (1, 1)
    assert live.summary(live.decode_all(), 2)["authentication"]["policy"] == "required"


def test_a_tag_block_hit_by_noise_is_told_apart_from_a_forgery():
    from link.apps.alice import Alice
    from link.receiver.chains import BobChain

    model = _model("mask")
    keys = _keys()
    frame = Alice(model, keys, "m").frames_for_image(np.zeros((32, 32, 3), np.uint8), 0)[0][0]
    item = _deliver(frame)
    item.tag_ok = False
    bob = BobChain(model, keys, "m")
    bob.handle(item)
    assert bob.drops == {"tag block CRC": 1}
    bob.handle(_deliver(frame))                             # the frame itself, whole: accepted
    assert bob.frames_authenticated == 1 and bob.images
