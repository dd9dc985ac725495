"""Plaintext ↔ cipher frames: the one cut that Alice, the training channel and cipher-sim share.

A plaintext of k symbols in Z_p is encrypted in *cipher frames* of ``frame_symbols`` symbols (the
key's k), each under its own nonce. The plaintext is cut from the start into ⌈k / frame_symbols⌉
frames, the last one zero-padded to full length, and the frames take the nonces ``first_counter``,
``first_counter + 1``, … in order (row by row for a batch). The receiver joins decrypted frames
back with :func:`from_cipher_frames`, dropping the padding.

Nonces come from a running counter that the caller advances by the number of frames returned; the
encryptor refuses a nonce used twice anyway.
"""
from __future__ import annotations

import numpy as np


def frames_needed(k: int, frame_symbols: int) -> int:
    """Cipher frames for k plaintext symbols: ⌈k / frame_symbols⌉ (0 for an empty plaintext)."""
    if frame_symbols < 1:
        raise ValueError(f"frame_symbols must be at least 1, got {frame_symbols}")
    return -(-k // frame_symbols)


def to_cipher_frames(plaintext, frame_symbols: int, first_counter: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut plaintext into zero-padded cipher frames and number them from ``first_counter``.

    ``plaintext``: (k,) or (B, k) integers in Z_p. Returns ``(frames, nonces)``: frames (B·n,
    frame_symbols) int64, where n = ⌈k / frame_symbols⌉ and row b's frames are rows b·n … b·n + n − 1
    (B = 1 for a 1-D plaintext), the tail of each row's last frame zero; nonces (B·n,) int64,
    ``first_counter + arange(B·n)``. The caller's next counter is ``first_counter + len(nonces)``.
    """
    plaintext = np.asarray(plaintext, dtype=np.int64)
    if plaintext.ndim not in (1, 2):
        raise ValueError(f"plaintext must be (k,) or (B, k), got shape {plaintext.shape}")
    rows = plaintext.reshape(-1, plaintext.shape[-1]) if plaintext.ndim == 2 else plaintext[None]
    b, k = rows.shape
    n = frames_needed(k, frame_symbols)
    padded = np.zeros((b, n * frame_symbols), dtype=np.int64)
    padded[:, :k] = rows
    nonces = np.arange(first_counter, first_counter + b * n, dtype=np.int64)
    return padded.reshape(b * n, frame_symbols), nonces


def from_cipher_frames(frames: np.ndarray, k: int, batch: int | None = None) -> np.ndarray:
    """The inverse cut: per-frame values (B·n, frame_symbols) → (B, k), padding dropped.

    Works for any per-symbol values of the frames (ciphertext, soft ciphertext, decrypted plaintext)
    and keeps their dtype. ``batch`` is B; ``None`` means the frames of one 1-D plaintext → (k,).
    Returns a view where numpy can.
    """
    frames = np.asarray(frames)
    if batch is None:
        return frames.reshape(-1)[:k]
    return frames.reshape(batch, frames.size // batch if batch else 0)[:, :k]
