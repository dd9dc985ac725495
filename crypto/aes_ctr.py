"""AES-128 in counter mode for the digital baseline (paper §V: AES with 128-bit blocks and keys).

Counter block = 8-byte nonce ‖ 8-byte block counter (big-endian, starting at 0). The nonce is the
frame counter, big-endian in 8 bytes, so every frame gets its own keystream as long as frame numbers
never repeat under one key (the caller's duty; :class:`AesCtr` refuses a nonce it has already used
for encryption). CTR is a stream cipher: ciphertext = plaintext ⊕ keystream, so a bit error on the
channel flips exactly the same bit of the plaintext (it neither spreads nor is detected, unlike
GCM, which would reject the whole frame). The key is shared beforehand (paper §V).

Key hygiene (DESIGN.md, security note 5): the key never appears in ``repr``, logs, JSON or exception
messages; key files are written with mode 0600 and hold the 16 raw bytes as 32 hex digits.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from Crypto.Cipher import AES

from crypto.keyfile import read_secret, write_atomic
from jscec.errors import UserError

KEY_BYTES = 16
BLOCK_BYTES = 16


def new_key() -> bytes:
    """16 random bytes from the operating system's CSPRNG."""
    return secrets.token_bytes(KEY_BYTES)


def nonce_bytes(frame: int) -> bytes:
    """The 8-byte CTR nonce of frame number ``frame`` (0 ≤ frame < 2⁶⁴)."""
    frame = int(frame)
    if not 0 <= frame < 1 << 64:
        raise ValueError("frame counter must lie in [0, 2^64)")
    return frame.to_bytes(8, "big")


def keystream_xor(key: bytes, frame: int, data: bytes) -> bytes:
    """AES-128-CTR of ``data`` under ``key`` for frame ``frame`` (encryption and decryption alike)."""
    if len(key) != KEY_BYTES:
        raise ValueError("AES-128 needs a 16-byte key")
    return AES.new(bytes(key), AES.MODE_CTR, nonce=nonce_bytes(frame), initial_value=0).encrypt(bytes(data))


class AesCtr:
    """A keyed AES-128-CTR endpoint: ``encrypt(frame, data)`` / ``decrypt(frame, data)``."""

    def __init__(self, key: bytes, refuse_nonce_reuse: bool = True):
        if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
            raise ValueError("AES-128 needs a 16-byte key")
        self._key = bytes(key)
        self._refuse = refuse_nonce_reuse
        self._used: set[int] = set()

    def __repr__(self) -> str:   # never the key
        return "AesCtr(key=<hidden>)"

    def encrypt(self, frame: int, plaintext: bytes) -> bytes:
        if self._refuse:
            if frame in self._used:
                raise ValueError(f"AES-CTR nonce reuse refused (frame {frame} already encrypted under this key)")
            self._used.add(int(frame))
        return keystream_xor(self._key, frame, plaintext)

    def decrypt(self, frame: int, ciphertext: bytes) -> bytes:
        return keystream_xor(self._key, frame, ciphertext)


def save_key(path: str | os.PathLike, key: bytes) -> Path:
    """Write ``key`` to ``path`` as hex, as every secret file is written (:func:`crypto.keyfile.write_atomic`:
    exclusive temporary file, mode 0600, fsynced, renamed; an existing file is replaced)."""
    if len(key) != KEY_BYTES:
        raise ValueError("AES-128 needs a 16-byte key")
    return write_atomic(path, bytes(key).hex().encode() + b"\n", 0o600)


def load_key(path: str | os.PathLike) -> bytes:
    """Read a key file written by :func:`save_key`; refuses files readable by group or others."""
    path = Path(path)
    try:
        key = bytes.fromhex(read_secret(path, "AES key").decode().strip())
    except (ValueError, UnicodeDecodeError):
        key = b""
    if len(key) != KEY_BYTES:
        raise UserError(f"AES key file {path} does not hold 32 hex digits (a 128-bit key)")
    return key
