"""The non-differentiable middle of the training and evaluation path, in numpy.

plaintext z̄ ─encrypt(nonce)→ c ─4096-QAM→ y ─AWGN→ ŷ ─soft demap (eqs. 14–15)→ ĉ ─decrypt→ z'

An image's k plaintext symbols are cut into cipher frames of ``frame_symbols`` (zero-padded at the
end), each encrypted under its own nonce from a running counter, by the cut the radio link's Alice
uses too (:func:`crypto.framing.to_cipher_frames`). In ``lwe-pk`` mode d is taken as received
without error here (the radio link protects and sends it).

:func:`simulate_cipher` (``jscec cipher-sim``) runs random plaintexts through the same chain and
measures its noise and error rates.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from crypto.cipher import PRESETS, CipherKeys, Decryptor, Encryptor, nearest_centroid
from crypto.framing import frames_needed, from_cipher_frames, to_cipher_frames
from crypto.zp import N_LEVELS, P, centroids, circular_std
from jscec.errors import UserError
from radio.channel import awgn, noise_variance
from radio.zp_qam import hard_demap, modulate, soft_demap

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

    def encrypt(self, plaintext: np.ndarray) -> dict:
        """Plaintext (B, k) in Z_p → ``{"c": (B, k) int64, "nonces", "d"}`` under fresh nonces."""
        plaintext = np.asarray(plaintext, dtype=np.int64)
        b, k = plaintext.shape
        frames, nonces = to_cipher_frames(plaintext, self.frame_symbols, self.next_nonce)
        self.next_nonce += len(nonces)
        ct = self.encryptor.encrypt_batch(frames, nonces)
        return {"c": from_cipher_frames(ct.c, k, b), "frames_c": ct.c, "d": ct.d, "nonces": nonces}

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
        return {"c": sent["c"], "c_hat": from_cipher_frames(c_hat, k, b), "z_prime": from_cipher_frames(z_prime, k, b)}


# --------------------------------------------------------------------------- cipher simulation


@dataclass
class CipherSimConfig:
    """One ``jscec cipher-sim`` run: every (mode, params) pair at every SNR (``inf`` skips the channel)."""

    modes: Sequence[str] = ("lwe",)
    params: Sequence[str] = ("lp-192",)
    snrs_db: Sequence[float] = (0.0, 10.0, 20.0, 30.0, 60.0)
    symbols: int = 16384          # plaintext symbols per SNR
    frame_symbols: int = FRAME_SYMBOLS
    sigma_l: float = 1.0
    seed: int = 0                 # the simulation's keys, plaintexts and noise; such keys are not secret


def _sim_master_seed(seed: int) -> bytes:
    return hashlib.sha256(f"jscec/cipher-sim/keys/{seed}".encode()).digest()


def simulate_cipher(cfg: CipherSimConfig, progress: bool = False) -> list[dict]:
    """Random plaintexts through cipher → 4096-QAM → AWGN → soft demap → decrypt; one row per case.

    Plaintexts are uniform over the 16 centroids, cut into cipher frames of ``frame_symbols`` under
    nonces 0, 1, … per (mode, params) (:func:`crypto.framing.to_cipher_frames`); each SNR draws
    ``symbols`` of them in chunks of bounded memory. A row (in the order mode, params, SNR) reports
    the circular std of z' − z (``plaintext_noise_std``), the nearest-centroid error rate, the LWE
    decryption noise alone (measured and expected), the circular std of ĉ − c, the hard-decision
    4096-QAM symbol error rate, and what the case was (key id, how d travels, security estimate).
    ``lwe-pk``'s d is taken as received error-free. Raises :class:`UserError` on bad settings.
    """
    modes, params_list, snrs = list(cfg.modes), list(cfg.params), list(cfg.snrs_db)
    symbols, frame_symbols, sigma_l, seed = cfg.symbols, cfg.frame_symbols, cfg.sigma_l, cfg.seed
    if symbols < 1:
        raise UserError(f"--symbols must be at least 1, got {symbols}")
    if not 1 <= frame_symbols <= 1 << 16:
        raise UserError(f"--frame-symbols must lie in [1, 65536], got {frame_symbols}")
    if not sigma_l > 0:
        raise UserError(f"--sigma-l must be positive, got {sigma_l}")
    if any(math.isnan(s) or s == -math.inf for s in snrs):
        raise UserError("--snr values must be numbers in dB (or 'inf' for no channel)")

    n_frames = frames_needed(symbols, frame_symbols)
    chunk = max(1, 16384 // frame_symbols)  # frames per step: bounded memory for any number of symbols
    cen = centroids(P, N_LEVELS)
    results = []
    bar = tqdm(total=len(modes) * len(params_list) * len(snrs) * n_frames, unit="frame", desc="cipher-sim",
               delay=1.0, leave=False, disable=not progress)
    try:
        for mi, mode in enumerate(modes):
            for pi, pname in enumerate(params_list):
                pr = PRESETS[pname]
                keys = CipherKeys.generate(params=pname, mode=mode, k=frame_symbols, seed=_sim_master_seed(seed))
                enc, dec = keys.encryptor(), keys.decryptor()
                next_nonce = 0
                for si, snr in enumerate(snrs):
                    rng = np.random.default_rng([seed, mi, pi, si])
                    acc = {"pt": [], "dn": [], "ct": [], "err": 0, "ser": 0}
                    done = 0
                    for f0 in range(0, n_frames, chunk):
                        nf = min(chunk, n_frames - f0)
                        keep = min(nf * frame_symbols, symbols - done)  # the last frame may be part padding
                        # Whole frames' worth of draws, so the noise drawn next does not depend on the padding.
                        idx = rng.integers(0, N_LEVELS, (nf, frame_symbols)).reshape(-1)[:keep]
                        z = cen[idx]
                        frames, nonces = to_cipher_frames(z, frame_symbols, next_nonce)
                        next_nonce += len(nonces)
                        ct = enc.encrypt_batch(frames, nonces)
                        if math.isinf(snr):
                            c_hat = ct.c.astype(np.float64)
                            hard = ct.c
                        else:
                            y = awgn(modulate(ct.c), snr, rng)
                            c_hat = soft_demap(y, noise_variance(snr), sigma_l=sigma_l)
                            hard = hard_demap(y)
                        z_prime = dec.decrypt_batch(c_hat, nonces, d=ct.d)  # lwe-pk: d received error-free
                        noise = keys.decryption_noise_batch(nonces)
                        cut = lambda a: from_cipher_frames(a, keep)  # noqa: E731
                        acc["pt"].append(cut(z_prime) - z)
                        acc["dn"].append(cut(noise))
                        acc["ct"].append(cut(c_hat) - cut(ct.c))
                        acc["err"] += int(np.count_nonzero(nearest_centroid(cut(z_prime)) != idx))
                        acc["ser"] += int(np.count_nonzero(cut(hard) != cut(ct.c)))
                        done += keep
                        bar.update(nf)
                    row = {
                        "mode": mode, "params": pname, "snr_db": None if math.isinf(snr) else float(snr),
                        "channel": "none (c_hat = c)" if math.isinf(snr) else "AWGN",
                        "plaintext_noise_std": circular_std(np.concatenate(acc["pt"])),
                        "plaintext_error_rate": acc["err"] / symbols,
                        "decryption_noise_std": 0.0 if mode == "mask" else circular_std(np.concatenate(acc["dn"])),
                        "expected_decryption_noise_std": 0.0 if mode == "mask" else pr.decryption_noise_std(),
                        "ciphertext_noise_std": circular_std(np.concatenate(acc["ct"])),
                        "qam_symbol_error_rate": acc["ser"] / symbols,
                        "symbols": symbols, "frames": n_frames, "frame_symbols": frame_symbols,
                        "sigma_l": sigma_l, "noise_variance": 0.0 if math.isinf(snr) else noise_variance(snr),
                        "key_id": keys.key_id,
                        "d": {"lwe": "not sent (Bob derives it from the shared error seed)",
                              "lwe-pk": "sent; taken as received error-free here",
                              "mask": "none"}[mode],
                        "security_estimate": "symmetric (AES-256-CTR mask)" if mode == "mask"
                        else pr.security_estimate,
                    }
                    results.append(row)
    finally:
        bar.close()
    return results
