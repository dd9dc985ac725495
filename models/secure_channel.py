"""The non-differentiable middle of the training and evaluation path, in numpy.

plaintext z̄ ─encrypt(nonce)→ c ─4096-QAM→ y ─AWGN→ ŷ ─soft demap (eqs. 14–15)→ ĉ ─decrypt→ z'

An image's k plaintext symbols are cut into cipher frames of ``frame_symbols`` (zero-padded at the
end), each encrypted under its own nonce from a running counter, exactly as the radio link does. In
``lwe-pk`` mode d is taken as received without error here (the radio link protects and sends it).
"""
from __future__ import annotations

import numpy as np

from crypto.cipher import CipherKeys, Decryptor, Encryptor
from radio.channel import awgn, noise_variance
from radio.zp_qam import modulate, soft_demap

#: Payload symbols per cipher frame (the key's k).
FRAME_SYMBOLS = 512


class SecureChannel:
    """Alice's encryptor and Bob's decryptor around a simulated AWGN channel."""

    def __init__(self, mode: str = "lwe", params: str = "lp-192", *, sigma_l: float = 1.0, seed: int | None = 0,
                 first_nonce: int = 0, frame_symbols: int = FRAME_SYMBOLS, keys: "CipherKeys | None" = None):
        self.mode = mode
        self.sigma_l = sigma_l
        self.frame_symbols = frame_symbols
        key_seed = None if seed is None else np.random.SeedSequence([seed, 0xC1F]).generate_state(8).tobytes()
        self.keys = keys or CipherKeys.generate(params=params, mode=mode, k=frame_symbols, seed=key_seed)
        self.encryptor = Encryptor(self.keys)
        self.decryptor = Decryptor(self.keys)
        self.rng = np.random.default_rng(None if seed is None else [seed, 0xA3])
        self.next_nonce = first_nonce

    def _frames(self, plaintext: np.ndarray) -> tuple[np.ndarray, int]:
        b, k = plaintext.shape
        n_frames = -(-k // self.frame_symbols)
        padded = np.zeros((b, n_frames * self.frame_symbols), dtype=np.int64)
        padded[:, :k] = plaintext
        return padded.reshape(b * n_frames, self.frame_symbols), k

    def _nonces(self, count: int) -> np.ndarray:
        nonces = np.arange(self.next_nonce, self.next_nonce + count, dtype=np.int64)
        self.next_nonce += count
        return nonces

    def encrypt(self, plaintext: np.ndarray) -> dict:
        """Plaintext (B, k) in Z_p → ``{"c": (B, k) int64, "nonces", "d"}`` under fresh nonces."""
        frames, k = self._frames(np.asarray(plaintext, dtype=np.int64))
        nonces = self._nonces(len(frames))
        ct = self.encryptor.encrypt_batch(frames, nonces)
        b = plaintext.shape[0]
        return {"c": ct.c.reshape(b, -1)[:, :k], "frames_c": ct.c, "d": ct.d, "nonces": nonces}

    def transmit(self, plaintext: np.ndarray, snr_db: float) -> dict:
        """Encrypt, modulate, add complex AWGN at ``snr_db`` (eq. 2), soft-demap and decrypt.

        Returns ``c`` (sent), ``c_hat`` (Eve's view too: the soft ciphertext) and ``z_prime`` (Bob's
        received plaintext, real-valued in [0, p)), each of shape (B, k).
        """
        plaintext = np.asarray(plaintext, dtype=np.int64)
        b = plaintext.shape[0]
        sent = self.encrypt(plaintext)
        k = plaintext.shape[1]
        y = modulate(sent["frames_c"])
        if np.isfinite(snr_db):
            y_hat = awgn(y, snr_db, self.rng)
            c_hat = soft_demap(y_hat, noise_variance(snr_db), sigma_l=self.sigma_l)
        else:
            c_hat = sent["frames_c"].astype(np.float64)
        z_prime = self.decryptor.decrypt_batch(c_hat, sent["nonces"], d=sent["d"])
        return {"c": sent["c"], "c_hat": c_hat.reshape(b, -1)[:, :k], "z_prime": z_prime.reshape(b, -1)[:, :k]}
