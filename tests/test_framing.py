"""crypto.framing: plaintext ↔ cipher frames under counters, and the callers that share the cut."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from crypto.cipher import CipherKeys, Encryptor
from crypto.framing import frames_needed, from_cipher_frames, to_cipher_frames
from link.apps.alice import Alice, model_id
from models.codec import CodecConfig, DeepJscec
from models.images import to_tensor
from models.secure_channel import SecureChannel
from radio.frame import DEFAULT_FORMAT, FrameHeader, build_frame
from radio.zp_qam import modulate


def test_frames_needed_rounds_up():
    assert [frames_needed(k, 4) for k in (0, 1, 4, 5, 8, 9)] == [0, 1, 1, 2, 2, 3]
    with pytest.raises(ValueError):
        frames_needed(5, 0)


def test_one_plaintext_is_zero_padded_and_numbered_from_the_counter():
    frames, nonces = to_cipher_frames(np.arange(1, 11), 4, 100)
    assert frames.dtype == np.int64 and nonces.dtype == np.int64
    assert frames.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 0, 0]]
    assert nonces.tolist() == [100, 101, 102]


def test_a_batch_is_cut_row_by_row_each_row_padded():
    pt = np.array([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]])
    frames, nonces = to_cipher_frames(pt, 3, 7)
    assert frames.tolist() == [[1, 2, 3], [4, 5, 0], [6, 7, 8], [9, 10, 0]]
    assert nonces.tolist() == [7, 8, 9, 10]


def test_whole_frames_get_no_padding_frame_and_empty_plaintext_no_frame():
    frames, nonces = to_cipher_frames(np.ones((2, 6), np.int64), 3, 0)
    assert frames.shape == (4, 3) and nonces.tolist() == [0, 1, 2, 3]
    frames, nonces = to_cipher_frames(np.zeros(0, np.int64), 3, 5)
    assert frames.shape == (0, 3) and nonces.shape == (0,)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError):
        to_cipher_frames(np.zeros((2, 2, 2), np.int64), 3, 0)
    with pytest.raises(ValueError):
        to_cipher_frames(np.zeros(4, np.int64), 0, 0)


@pytest.mark.parametrize("shape, fs", [((10,), 4), ((3, 10), 4), ((2, 12), 4), ((1, 5), 8)])
def test_from_cipher_frames_inverts_the_cut_for_any_values(shape, fs):
    pt = np.random.default_rng(0).integers(0, 4093, shape)
    frames, _ = to_cipher_frames(pt, fs, 0)
    batch = None if len(shape) == 1 else shape[0]
    assert np.array_equal(from_cipher_frames(frames, shape[-1], batch), pt)
    soft = frames + 0.25  # soft values keep their dtype
    back = from_cipher_frames(soft, shape[-1], batch)
    assert back.dtype == np.float64 and np.array_equal(back, pt + 0.25)


# ---- the callers give exactly what their hand-written cut gave before crypto.framing (issue "one layout")

def _old_alice_frames(model, keys, image, counter, subframes):
    """Alice.frames_for_image as written before the shared cut (frames only)."""
    x = to_tensor(image[None], "cpu")
    with torch.no_grad():
        _, plaintext, _ = model.encode(x)
    z = plaintext[0].numpy().astype(np.int64)
    k = keys.k
    n_cipher = -(-z.size // k)
    padded = np.zeros(n_cipher * k, dtype=np.int64)
    padded[:z.size] = z
    nonces = np.arange(counter, counter + n_cipher, dtype=np.int64)
    ct = Encryptor(keys).encrypt_batch(padded.reshape(n_cipher, k), nonces)
    symbols = modulate(ct.c).reshape(n_cipher, k)
    n_radio = -(-n_cipher // subframes)
    out = []
    for j in range(n_radio):
        sl = slice(j * subframes, min((j + 1) * subframes, n_cipher))
        header = FrameHeader(counter=int(nonces[sl.start]), mode=keys.mode, key_id=keys.key_id, model_id=model_id("m"),
                             constellation="zp4096", image_index=0, chunk_index=j, chunk_count=n_radio,
                             height=image.shape[0], width=image.shape[1])
        d = None if ct.d is None else ct.d[sl].ravel()
        out.append(build_frame(header, symbols[sl].ravel(), d=d, fmt=DEFAULT_FORMAT))
    return out, counter + n_cipher


@pytest.mark.parametrize("mode, k, subframes", [("lwe", 512, 4), ("mask", 200, 3), ("lwe-pk", 300, 1)])
def test_alice_frames_are_bit_identical_to_the_old_cut(mode, k, subframes):
    torch.manual_seed(0)
    model = DeepJscec(CodecConfig(width=8, cipher_mode="lwe" if mode == "lwe-pk" else mode)).eval()
    keys = CipherKeys.generate(params="lp-192", mode=mode, k=k, seed=b"f" * 32)
    image = np.random.default_rng(1).integers(0, 256, (40, 36, 3), dtype=np.uint8)
    # The cut is what is compared: frames without the authentication that lwe and mask frames now carry.
    alice = Alice(model, keys, "m", first_counter=77, subframes=subframes, authenticate=False)
    frames, sent = alice.frames_for_image(image, 0)
    old, counter = _old_alice_frames(model, keys, image, 77, subframes)
    if mode != "lwe-pk":
        tagged, _ = Alice(model, keys, "m", first_counter=77, subframes=subframes).frames_for_image(image, 0)
        assert len(tagged) == len(frames) and all(t.size > f.size for t, f in zip(tagged, frames))
    assert len(frames) == len(old) == sent.frames and alice.counter == counter
    if mode == "lwe-pk":
        # Alice now holds only the public key, with error randomness fresh per Alice (issue 15): the same cut
        # (frame lengths, headers and counters), other ciphertext symbols.
        from radio.frame import DEFAULT_FORMAT as fmt
        head = fmt.preamble_len + fmt.header_symbols
        for a, b in zip(frames, old):
            assert a.shape == b.shape and np.array_equal(a[:head], b[:head]) and not np.array_equal(a, b)
        return
    for a, b in zip(frames, old):
        assert a.dtype == b.dtype and np.array_equal(a, b)


@pytest.mark.parametrize("mode", ["lwe", "lwe-pk", "mask"])
def test_secure_channel_is_bit_identical_to_the_old_cut(mode):
    fs, first = 300, 5
    ch = SecureChannel(mode, seed=3, first_nonce=first, frame_symbols=fs)
    pt = np.random.default_rng(2).integers(0, 4093, (3, 700))
    sent = ch.encrypt(pt)
    # The old SecureChannel._frames/_nonces.
    b, k = pt.shape
    n = -(-k // fs)
    padded = np.zeros((b, n * fs), dtype=np.int64)
    padded[:, :k] = pt
    old = Encryptor(ch.keys).encrypt_batch(padded.reshape(b * n, fs), np.arange(first, first + b * n, dtype=np.int64))
    assert np.array_equal(sent["nonces"], np.arange(first, first + b * n)) and ch.next_nonce == first + b * n
    assert np.array_equal(sent["frames_c"], old.c)
    assert np.array_equal(sent["c"], old.c.reshape(b, -1)[:, :k])
    assert (sent["d"] is None) == (old.d is None) and (old.d is None or np.array_equal(sent["d"], old.d))
