"""AES-128-CTR of the digital baseline (crypto.aes_ctr)."""
import os
import stat

import numpy as np
import pytest

from crypto.aes_ctr import AesCtr, keystream_xor, load_key, new_key, nonce_bytes, save_key
from jscec.errors import UserError


def test_round_trip_and_frame_nonce():
    key = new_key()
    data = os.urandom(112)
    enc = AesCtr(key)
    ct = enc.encrypt(5, data)
    assert ct != data and len(ct) == len(data)
    assert AesCtr(key).decrypt(5, ct) == data
    assert AesCtr(key).decrypt(6, ct) != data            # another frame, another keystream
    assert keystream_xor(key, 6, data) != ct
    assert nonce_bytes(5) == b"\0" * 7 + b"\x05"


def test_known_answer_nist_sp800_38a():
    # NIST SP 800-38A F.5.1 (CTR-AES128): counter block f0f1…ff, i.e. nonce f0…f7, counter f8…ff.
    from Crypto.Cipher import AES
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    pt = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
    ct = AES.new(key, AES.MODE_CTR, nonce=bytes.fromhex("f0f1f2f3f4f5f6f7"),
                 initial_value=bytes.fromhex("f8f9fafbfcfdfeff")).encrypt(pt)
    assert ct.hex() == "874d6191b620e3261bef6864990db6ce"
    # our counter block for frame f: nonce f (8 bytes) ‖ block counter from 0
    ours = keystream_xor(key, int.from_bytes(bytes.fromhex("f0f1f2f3f4f5f6f7"), "big"), pt)
    ref = AES.new(key, AES.MODE_ECB).encrypt(bytes.fromhex("f0f1f2f3f4f5f6f70000000000000000"))
    assert ours == bytes(a ^ b for a, b in zip(pt, ref))


def test_single_bit_error_stays_local():
    key = new_key()
    data = os.urandom(64)
    ct = bytearray(AesCtr(key).encrypt(0, data))
    ct[17] ^= 0x08
    out = AesCtr(key).decrypt(0, bytes(ct))
    diff = np.unpackbits(np.frombuffer(bytes(a ^ b for a, b in zip(out, data)), np.uint8))
    assert diff.sum() == 1 and np.nonzero(diff)[0][0] == 17 * 8 + 4


def test_nonce_reuse_refused_and_key_hidden():
    key = new_key()
    enc = AesCtr(key)
    enc.encrypt(1, b"a")
    with pytest.raises(ValueError):
        enc.encrypt(1, b"b")
    assert key.hex() not in repr(enc) and "hidden" in repr(enc)


def test_key_file_mode_0600(tmp_path):
    key = new_key()
    p = save_key(tmp_path / "k.aes", key)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert load_key(p) == key
    p.chmod(0o644)
    with pytest.raises(UserError) as e:
        load_key(p)
    assert key.hex() not in str(e.value)
    with pytest.raises(UserError):
        load_key(tmp_path / "missing")
