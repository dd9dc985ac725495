"""Lindner–Peikert LWE encryption over Z_p as DeepJSCEC uses it (paper eqs. 19–27), and two relatives.

Keys (eq. 19): A ∈ Z_p^{n1×n2} uniform (public), S ∈ Z^{n2×k} and U ∈ Z^{n1×k} discrete Gaussian
(secret), public key P = U − A S mod p (n1 × k, one column per payload symbol of a frame, so no
column — no mask — repeats within a frame). Per frame, errors e1 ∈ Z^{n1}, e2 ∈ Z^{n2}, e3 ∈ Z^k:

    c = Pᵀe1 + e3 + z̄ (mod p),    d = Aᵀe1 + e2 (mod p)                     (eq. 20)
    z' = Sᵀd + ĉ = z̄ + Sᵀe2 + Uᵀe1 + e3 + (ĉ − c) (mod p)                     (eqs. 23–27)

The LWE term Sᵀe2 + Uᵀe1 + e3 has standard deviation √((n1 + n2)σ⁴ + σ²) ≈ 245 for lp-192, against a
centroid spacing of p/16 ≈ 256 (``LweParams.decryption_noise_std``).

Modes (DESIGN.md, security notes):
- ``lwe``: the paper. Alice and Bob share the secret *error seed*; Bob derives d himself from the
  frame nonce, only c is sent.
- ``lwe-pk``: true public-key use. d (n2 values per frame) is sent and must arrive intact (Sᵀ
  amplifies noise on it by ≈ √n2·σ), so the link carries it in a digitally protected block. Alice
  needs only the public key: ``Encryptor(public_key)`` draws her error seed fresh from the operating
  system's CSPRNG for every encryptor, and no caller may choose it (two public keys under one seed and
  nonce give d₁ − d₂ = (A₁ − A₂)ᵀe₁, from which e₁ and then the plaintext follow).
- ``mask``: symmetric, c = z̄ + m (mod p) with m uniform in Z_p from AES-CTR keyed by the shared
  mask key and the nonce; Bob removes m exactly — no decryption noise.

Randomness: a frame's errors and mask are a keyed DRBG on (secret, frame nonce) (``crypto.drbg``:
HMAC-SHA256 sub-key → AES-256-CTR → exact discrete-Gaussian CDT or unbiased uniform Z_p), so a
replay with the same key file and nonce reproduces them bit for bit; an ``Encryptor`` refuses a
nonce it has already used. **The error seed is a secret**: with it and the public key anyone computes
c − Pᵀe1 = z̄ + e3 (``known_seed_attack``). Nonce uniqueness across runs is kept by the counter state
beside each key file (:mod:`crypto.nonce_state`), from which every sender reserves its frame counters.

Security level, honestly (:mod:`crypto.security`, ``jscec security estimate``): the paper's lp-192 and
lp-256 reach about 46 and 66 bits core-SVP (2^74 and 2^95 operations) — far below 128-bit; ``lp-512``
reaches 136 bits core-SVP classical.

Key files: ``CipherKeys.save`` writes JSON holding only seeds (the matrices are regenerated), with
mode 0600, atomically (:mod:`crypto.keyfile`); ``CipherKeys.load`` refuses a file others may read and
says what is wrong with a bad one; ``PublicKey.save`` writes Eve's view (A's seed and P) as ``.npz``.
No ``repr``/``str`` of a key object, and no exception message here, contains secret material, and no
object holding a secret can be pickled.
"""
from __future__ import annotations

import bisect
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crypto import drbg
from crypto.keyfile import read_secret, write_atomic
from crypto.zp import N_LEVELS, P as P_MOD, centered, centroids
from jscec.errors import UserError

MODES = ("lwe", "lwe-pk", "mask")
DEFAULT_FRAME_SYMBOLS = 512
MAX_FRAME_SYMBOLS = 1 << 20

# DRBG labels (domain separation; changing one changes every key and ciphertext).
_L_KEY_SEED, _L_A_SEED, _L_ERR_SEED, _L_MASK_KEY = "jscec/v1/lwe-secret", "jscec/v1/lwe-A", \
    "jscec/v1/lwe-errors-seed", "jscec/v1/mask-key"
_L_S, _L_U, _L_A, _L_ERRORS, _L_MASK = "jscec/v1/S", "jscec/v1/U", "jscec/v1/A", "jscec/v1/lwe-errors", \
    "jscec/v1/mask"

SECRET_FORMAT = "deepjscec-hil/cipher-secret-key/1"
PUBLIC_FORMAT = "deepjscec-hil/cipher-public-key/1"


@dataclass(frozen=True)
class LweParams:
    """A Lindner–Peikert parameter set; ``s`` is the discrete-Gaussian parameter (D_{Z,s} ∝ e^{−πx²/s²})."""

    name: str
    n1: int
    n2: int
    p: int
    s: float

    @property
    def sigma(self) -> float:
        """Standard deviation of the discrete Gaussian, s/√(2π)."""
        return float(self.s / np.sqrt(2 * np.pi))

    def decryption_noise_std(self) -> float:
        """√((n1 + n2)σ⁴ + σ²): the std of Sᵀe2 + Uᵀe1 + e3 (≈ 245 for lp-192)."""
        v = self.sigma ** 2
        return float(np.sqrt((self.n1 + self.n2) * v * v + v))

    @property
    def security_estimate(self) -> str:
        """One line from :mod:`crypto.security` (core-SVP classical/quantum, operation count), cached."""
        if self not in _SECURITY:
            from crypto import security

            _SECURITY[self] = security.summary(self)
        return _SECURITY[self]

    def security(self) -> dict:
        """The full estimate (every attack on every LWE instance the cipher exposes): :func:`crypto.security.estimate`."""
        from crypto import security

        return security.estimate(self)


PRESETS = {
    # The paper's (Lindner–Peikert's "low" sets): about 46 and 66 bits core-SVP, far below 128.
    "lp-192": LweParams("lp-192", 192, 192, P_MOD, 8.87),
    "lp-256": LweParams("lp-256", 256, 256, P_MOD, 8.35),
    # ≥ 128-bit (core-SVP classical 136, quantum 124; crypto.security): n = 512, σ = 2.19, q kept at 4093 for
    # 4096-QAM. At 128 bits a larger n lets σ shrink faster than √n grows, so its decryption noise
    # √(2nσ⁴ + σ²) ≈ 154 is below lp-192's 245; the cost is a 512 × 512 A and, in lwe-pk, n2 = 512 d values per frame.
    "lp-512": LweParams("lp-512", 512, 512, P_MOD, 5.5),
}
#: Cache of ``LweParams.security_estimate`` (computed by crypto.security on first use, ~0.05 s a preset).
_SECURITY: dict = {}


def get_params(name) -> LweParams:
    if isinstance(name, LweParams):
        return name
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise UserError(f"unknown LWE preset {name!r}; choose from {', '.join(PRESETS)}") from None


def _check_mode(mode) -> str:
    if mode not in MODES:
        raise UserError(f"unknown cipher mode {mode!r}; choose from {', '.join(MODES)}")
    return mode


def _check_k(k) -> int:
    k = int(k)
    if not 1 <= k <= MAX_FRAME_SYMBOLS:
        raise UserError(f"frame size k must lie in [1, {MAX_FRAME_SYMBOLS}], got {k}")
    return k


def _check_secret(b, what: str) -> bytes:
    if not isinstance(b, (bytes, bytearray)) or len(b) != 32:
        raise ValueError(f"{what} must be 32 bytes")
    return bytes(b)


def nearest_centroid(z, p: int = P_MOD, n_levels: int = N_LEVELS) -> np.ndarray:
    """Index (0..N−1) of the circularly nearest centroid ⌊ip/N⌋ to each value of ``z``."""
    z = np.asarray(z, dtype=np.float64)
    cen = centroids(p, n_levels).astype(np.float64)
    dist = np.abs(centered(z[..., None] - cen, p))
    return dist.argmin(axis=-1)


# ---------------------------------------------------------------- public key
class PublicKey:
    """What anyone (Eve included) may know: the preset, k, A (from its public seed) and P = U − A S."""

    def __init__(self, params, k: int, a_seed: bytes, public_key: np.ndarray, key_id: str | None = None):
        self.params = get_params(params)
        self.k = _check_k(k)
        self.a_seed = _check_secret(a_seed, "A's seed")  # public, but fixed length
        pk = np.asarray(public_key)
        if pk.shape != (self.params.n1, self.k):
            raise ValueError(f"public key must have shape ({self.params.n1}, {self.k}), got {pk.shape}")
        self.P = pk.astype(np.int64)
        self.P.setflags(write=False)
        self._Pf = self.P.astype(np.float64)
        self._A = None
        self.key_id = key_id or public_key_id(self.params, self.k, self.P)

    def __repr__(self) -> str:
        return f"PublicKey(params={self.params.name!r}, k={self.k}, key_id={self.key_id!r})"

    def _set_A(self, a: np.ndarray) -> None:
        a.setflags(write=False)
        self._A, self._Af = a, a.astype(np.float64)

    @property
    def A(self) -> np.ndarray:
        """A ∈ Z_p^{n1×n2}, uniform, regenerated from its public seed."""
        if self._A is None:
            self._set_A(_make_A(self.a_seed, self.params))
        return self._A

    @property
    def _A_float(self) -> np.ndarray:
        self.A
        return self._Af

    def save(self, path) -> Path:
        """Write an ``.npz`` (not secret: ordinary permissions), atomically."""
        meta = {"format": PUBLIC_FORMAT, "params": self.params.name, "k": self.k, "key_id": self.key_id}
        buf = io.BytesIO()
        np.savez_compressed(buf, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                            a_seed=np.frombuffer(self.a_seed, dtype=np.uint8), P=self.P.astype("<u2"))
        return write_atomic(path, buf.getvalue(), 0o644)

    @classmethod
    def load(cls, path) -> "PublicKey":
        path = Path(path)
        bad = f"public key file {path} is truncated or not a DeepJSCEC-HIL public key"
        data = _read_public(path)
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                a_seed, pk = bytes(z["a_seed"]), np.asarray(z["P"])
        except Exception:  # zipfile, zlib, numpy format and JSON errors alike
            raise UserError(bad + (" (it looks like a secret key file)" if data[:1] == b"{" else "")) from None
        if not isinstance(meta, dict) or meta.get("format") != PUBLIC_FORMAT:
            raise UserError(bad)
        try:
            pub = cls(meta["params"], meta["k"], a_seed, pk)
        except UserError as exc:
            raise UserError(f"{bad} ({exc})") from None
        except (KeyError, ValueError, TypeError):
            raise UserError(bad) from None
        if pub.key_id != meta.get("key_id") or (pk.size and int(pk.max()) >= pub.params.p):
            raise UserError(bad + " (its key id does not match its contents)")
        return pub


def _make_A(a_seed: bytes, params: LweParams) -> np.ndarray:
    return drbg.uniform_zp(a_seed, _L_A, None, params.n1 * params.n2, params.p).reshape(params.n1, params.n2)


def public_key_id(params: LweParams, k: int, public_key: np.ndarray) -> str:
    """Non-secret key id: first 8 hex digits of SHA-256 over the preset, k and P (little-endian u16)."""
    h = hashlib.sha256(f"jscec-lwe-public-key/1|{params.name}|{k}|".encode())
    h.update(np.ascontiguousarray(public_key, dtype="<u2").tobytes())
    return h.hexdigest()[:8]


# ---------------------------------------------------------------- all key material
class CipherKeys:
    """All key material of one link: a mode, a preset, the frame size k and four seeds.

    ``key_seed`` generates S and U (secret), ``a_seed`` generates A (public), ``error_seed`` the
    per-frame errors (secret: share it with Bob only in ``lwe`` mode), ``mask_key`` the masks of
    ``mask`` mode (secret). Only seeds are stored; matrices are regenerated on first use and cached.
    Hand ``encryptor()`` to Alice, ``decryptor()`` to Bob and ``public()`` to anyone.
    """

    def __init__(self, mode: str, params, k: int, *, key_seed: bytes, a_seed: bytes, error_seed: bytes,
                 mask_key: bytes):
        self.mode = _check_mode(mode)
        self.params = get_params(params)
        self.k = _check_k(k)
        self._key_seed = _check_secret(key_seed, "key seed")
        self._a_seed = _check_secret(a_seed, "A's seed")
        self._error_seed = _check_secret(error_seed, "error seed")
        self._mask_key = _check_secret(mask_key, "mask key")
        self._cache: dict = {}
        self._gauss = drbg.DiscreteGaussian(self.params.s)

    def __repr__(self) -> str:  # never show secrets
        return f"CipherKeys(mode={self.mode!r}, params={self.params.name!r}, k={self.k}, key_id={self.key_id!r})"

    __str__ = __repr__

    def __getstate__(self):
        raise TypeError("CipherKeys are not picklable: save them with .save() (mode 0600)")

    @classmethod
    def generate(cls, params="lp-192", mode: str = "lwe", k: int = DEFAULT_FRAME_SYMBOLS,
                 seed: bytes | None = None) -> "CipherKeys":
        """New keys from a master secret: ``seed`` (≥ 16 bytes, deterministic) or 32 bytes of os.urandom."""
        if seed is None:
            master = os.urandom(32)
        elif isinstance(seed, (bytes, bytearray)) and len(seed) >= 16:
            master = bytes(seed)
        else:
            raise ValueError("a key seed must be at least 16 bytes")
        return cls(mode, params, k, key_seed=drbg.derive(master, _L_KEY_SEED), a_seed=drbg.derive(master, _L_A_SEED),
                   error_seed=drbg.derive(master, _L_ERR_SEED), mask_key=drbg.derive(master, _L_MASK_KEY))

    # -- secrets, for code that legitimately needs them (Alice, Bob, the tests of Eve's attack)
    @property
    def error_seed(self) -> bytes:
        return self._error_seed

    @property
    def mask_key(self) -> bytes:
        return self._mask_key

    # -- matrices
    def _cached(self, name, make):
        if name not in self._cache:
            arr = make()
            arr.setflags(write=False)
            self._cache[name] = arr
        return self._cache[name]

    @property
    def A(self) -> np.ndarray:
        return self.public().A

    @property
    def S(self) -> np.ndarray:
        pr = self.params
        return self._cached("S", lambda: self._gauss.sample(self._key_seed, _L_S, None, pr.n2 * self.k)
                            .reshape(pr.n2, self.k))

    @property
    def U(self) -> np.ndarray:
        pr = self.params
        return self._cached("U", lambda: self._gauss.sample(self._key_seed, _L_U, None, pr.n1 * self.k)
                            .reshape(pr.n1, self.k))

    @property
    def _S_float(self) -> np.ndarray:
        return self._cached("Sf", lambda: self.S.astype(np.float64))

    @property
    def _U_float(self) -> np.ndarray:
        return self._cached("Uf", lambda: self.U.astype(np.float64))

    @property
    def public_key(self) -> np.ndarray:
        """P = U − A S mod p (n1 × k)."""
        return self.public().P

    def public(self) -> PublicKey:
        """The public part — A's seed and P — that anyone, Eve included, may know (unused in ``mask`` mode)."""
        if "pub" not in self._cache:
            pr = self.params
            a = _make_A(self._a_seed, pr)
            pk = (self.U - (a.astype(np.float64) @ self._S_float).astype(np.int64)) % pr.p  # exact: < 2^53
            pub = PublicKey(pr, self.k, self._a_seed, pk)
            pub._set_A(a)
            self._cache["pub"] = pub
        return self._cache["pub"]

    @property
    def key_id(self) -> str:
        """A non-secret identifier: 8 hex digits of SHA-256 of the public key (of a one-way function of
        the mask key in ``mask`` mode)."""
        if self.mode == "mask":
            return hashlib.sha256(drbg.derive(self._mask_key, "jscec/v1/key-id")).hexdigest()[:8]
        return self.public().key_id

    # -- per-frame terms
    def errors(self, nonce: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(e1, e2, e3) of frame ``nonce`` from the keyed DRBG (reproducible)."""
        e1, e2, e3 = lwe_errors(self._error_seed, self.params, self.k, [nonce], self._gauss)
        return e1[0], e2[0], e3[0]

    def errors_batch(self, nonces) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return lwe_errors(self._error_seed, self.params, self.k, nonces, self._gauss)

    def mask(self, nonce: int) -> np.ndarray:
        return drbg.uniform_zp(self._mask_key, _L_MASK, drbg.check_nonce(nonce), self.k, self.params.p)

    def mask_batch(self, nonces) -> np.ndarray:
        return drbg.uniform_zp_batch(self._mask_key, _L_MASK, [drbg.check_nonce(n) for n in nonces], self.k,
                                     self.params.p)

    def decryption_noise(self, nonce: int) -> np.ndarray:
        """The LWE term Sᵀe2 + Uᵀe1 + e3 (int64, not reduced) of frame ``nonce``; zero in ``mask`` mode."""
        return self.decryption_noise_batch([nonce])[0]

    def decryption_noise_batch(self, nonces) -> np.ndarray:
        nonces = list(nonces)
        if self.mode == "mask":
            return np.zeros((len(nonces), self.k), dtype=np.int64)
        e1, e2, e3 = self.errors_batch(nonces)
        return (e2.astype(np.float64) @ self._S_float + e1.astype(np.float64) @ self._U_float).astype(np.int64) + e3

    def frame_auth(self):
        """Bob's frame MAC and check-symbol keys (:class:`crypto.frame_auth.FrameAuth`), derived from the
        secret he shares with Alice — the error seed in ``lwe``, the mask key in ``mask``; None in ``lwe-pk``,
        where Alice holds only the public key and no shared secret exists."""
        return _frame_auth(self.mode, self._error_seed if self.mode == "lwe" else self._mask_key, self.key_id)

    # -- roles
    def encryptor(self) -> "Encryptor":
        return Encryptor(self)

    def decryptor(self) -> "Decryptor":
        return Decryptor(self)

    # -- files
    def save(self, path) -> Path:
        """Write the secret key file (JSON of seeds) with mode 0600, atomically (temp file, then rename)."""
        doc = {"format": SECRET_FORMAT, "warning": "SECRET key material: keep private (mode 0600), never share",
               "mode": self.mode, "params": self.params.name, "k": self.k, "key_id": self.key_id,
               "seeds": {"key_seed": self._key_seed.hex(), "a_seed": self._a_seed.hex(),
                         "error_seed": self._error_seed.hex(), "mask_key": self._mask_key.hex()}}
        return write_atomic(path, (json.dumps(doc, indent=1) + "\n").encode(), 0o600)

    @classmethod
    def load(cls, path) -> "CipherKeys":
        """Read a secret key file; ``UserError`` in one line saying why one cannot be used (never its contents)."""
        path = Path(path)
        bad = f"key file {path} is truncated or not a DeepJSCEC-HIL secret key file"
        data = read_secret(path, "key")
        try:
            doc = json.loads(data.decode())
        except UnicodeDecodeError:
            raise UserError(f"{bad} (it is not text)") from None
        except json.JSONDecodeError as exc:
            raise UserError(f"{bad} (not JSON: {exc.msg} at line {exc.lineno})") from None
        if not isinstance(doc, dict) or doc.get("format") != SECRET_FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else None
            raise UserError(f"{bad} (format {found!r}, expected {SECRET_FORMAT!r})")
        seeds = doc.get("seeds")
        missing = [f for f in ("mode", "params", "k", "seeds") if f not in doc]
        missing += [f"seeds.{n}" for n in _SEED_NAMES if not isinstance(seeds, dict) or n not in seeds]
        if missing:
            raise UserError(f"{bad} (no {', '.join(missing)})")
        try:
            raw = {n: bytes.fromhex(seeds[n]) for n in _SEED_NAMES}
        except (ValueError, TypeError, AttributeError):
            raise UserError(f"{bad} (a seed is not hexadecimal)") from None
        try:
            keys = cls(doc["mode"], doc["params"], doc["k"], **raw)
        except (UserError, ValueError) as exc:   # unknown preset or mode, k out of range, a seed of the wrong length
            raise UserError(f"{bad} ({exc})") from None
        except TypeError:
            raise UserError(f"{bad} (a field has the wrong type)") from None
        if keys.key_id != doc.get("key_id"):
            raise UserError(f"{bad} (its key id does not match its seeds)")
        return keys


_SEED_NAMES = ("key_seed", "a_seed", "error_seed", "mask_key")


def _frame_auth(mode: str, shared: bytes, key_id: str):
    if mode == "lwe-pk":
        return None
    from crypto.frame_auth import FrameAuth

    return FrameAuth(shared, key_id)


def lwe_errors(error_seed: bytes, params: LweParams, k: int, nonces, gauss: drbg.DiscreteGaussian | None = None,
               *, with_e3: bool = True):
    """(E1 (B, n1), E2 (B, n2), E3 (B, k)) int64: frame b's errors from the DRBG on (error seed, nonce b).

    One keystream per frame holds e1 ‖ e2 ‖ e3 in that order, so ``with_e3=False`` (E3 is then None)
    draws only the prefix and gives the same e1, e2.
    """
    gauss = gauss or drbg.DiscreteGaussian(params.s)
    nonces = [drbg.check_nonce(n) for n in nonces]
    e = gauss.sample_batch(error_seed, _L_ERRORS, nonces, params.n1 + params.n2 + (k if with_e3 else 0))
    return e[:, : params.n1], e[:, params.n1: params.n1 + params.n2], (e[:, params.n1 + params.n2:] if with_e3
                                                                       else None)


# ---------------------------------------------------------------- Alice and Bob
@dataclass
class Ciphertext:
    c: np.ndarray          # (k,) or (B, k) int64 in Z_p
    d: np.ndarray | None   # (n2,) or (B, n2) int64 in Z_p in ``lwe-pk`` mode (it is transmitted), else None


class _NonceLedger:
    """Nonces used so far, as sorted disjoint half-open intervals (a frame counter stays one interval)."""

    def __init__(self):
        self._starts: list[int] = []
        self._ends: list[int] = []

    def __len__(self):
        return sum(e - s for s, e in zip(self._starts, self._ends))

    def _overlaps(self, a: int, b: int) -> bool:
        i = bisect.bisect_right(self._starts, a) - 1
        if i >= 0 and self._ends[i] > a:
            return True
        j = bisect.bisect_left(self._starts, a)
        return j < len(self._starts) and self._starts[j] < b

    def _insert(self, a: int, b: int) -> None:
        i = bisect.bisect_left(self._starts, a)
        self._starts.insert(i, a)
        self._ends.insert(i, b)
        if i + 1 < len(self._starts) and self._starts[i + 1] == b:  # merge right
            self._ends[i] = self._ends.pop(i + 1)
            del self._starts[i + 1]
        if i > 0 and self._ends[i - 1] == a:  # merge left
            self._ends[i - 1] = self._ends.pop(i)
            del self._starts[i]

    def claim(self, nonces: list[int]) -> None:
        """Record ``nonces`` or, if any was used before or repeats, raise and record none of them."""
        runs = []
        for n in sorted(nonces):
            if runs and n < runs[-1][1]:
                raise ValueError(f"nonce reuse refused: frame nonce {n} appears twice in one batch")
            if runs and n == runs[-1][1]:
                runs[-1][1] = n + 1
            else:
                runs.append([n, n + 1])
        for a, b in runs:
            if self._overlaps(a, b):
                used = next(n for n in range(a, b) if self._overlaps(n, n + 1))
                raise ValueError(f"nonce reuse refused: frame nonce {used} was already used by this encryptor")
        for a, b in runs:
            self._insert(a, b)


def _plaintext(z_bar, k: int, p: int, batch: bool) -> np.ndarray:
    z = np.asarray(z_bar)
    want = "(B, k)" if batch else "(k,)"
    if z.ndim != (2 if batch else 1) or z.shape[-1] != k:
        raise ValueError(f"plaintext must have shape {want} with k = {k}, got {z.shape}")
    if not np.issubdtype(z.dtype, np.integer):
        zi = np.rint(z)
        if not np.array_equal(zi, z):
            raise ValueError("plaintext symbols must be integers in [0, p)")
        z = zi
    z = z.astype(np.int64)
    if z.size and (z.min() < 0 or z.max() >= p):
        raise ValueError("plaintext symbols must lie in [0, p)")
    return z


class Encryptor:
    """Alice. Holds only what she needs; refuses to encrypt twice under one nonce.

    ``Encryptor(keys)`` with ``CipherKeys``: ``lwe``/``lwe-pk`` keep the public key and the error seed,
    ``mask`` keeps the mask key. ``Encryptor(public_key)`` with a ``PublicKey``: ``lwe-pk`` as true
    public-key encryption, with an error seed of 32 fresh bytes from os.urandom that nobody else ever
    knows or chooses (Bob never needs it: d travels with the frame).
    """

    def __init__(self, keys):
        self._ledger = _NonceLedger()
        if isinstance(keys, PublicKey):
            self.mode, self.params, self.k = "lwe-pk", keys.params, keys.k
            self._public = keys
            self._error_seed = os.urandom(32)
            self.key_id = keys.key_id
        elif isinstance(keys, CipherKeys):
            self.mode, self.params, self.k, self.key_id = keys.mode, keys.params, keys.k, keys.key_id
            if self.mode == "mask":
                self._mask_key = keys.mask_key
            else:
                self._public, self._error_seed = keys.public(), keys.error_seed
        else:
            raise TypeError("Encryptor needs CipherKeys or a PublicKey")
        self._gauss = drbg.DiscreteGaussian(self.params.s)

    def __repr__(self):
        return f"Encryptor(mode={self.mode!r}, params={self.params.name!r}, k={self.k}, key_id={self.key_id!r})"

    def __getstate__(self):
        raise TypeError("an Encryptor holds secrets and is not picklable")

    @property
    def nonces_used(self) -> int:
        return len(self._ledger)

    def frame_auth(self):
        """Alice's frame MAC and check-symbol keys (:class:`crypto.frame_auth.FrameAuth`), the same as Bob's
        ``CipherKeys.frame_auth()``; None in ``lwe-pk`` (no shared secret)."""
        if self.mode == "lwe-pk":
            return None
        return _frame_auth(self.mode, self._mask_key if self.mode == "mask" else self._error_seed, self.key_id)

    def encrypt(self, z_bar, nonce: int) -> Ciphertext:
        """One frame of k plaintext symbols (integers in [0, p)) → ``Ciphertext`` (eq. 20, or c = z̄ + m)."""
        ct = self.encrypt_batch(_plaintext(z_bar, self.k, self.params.p, False)[None, :], [nonce])
        return Ciphertext(ct.c[0], None if ct.d is None else ct.d[0])

    def encrypt_batch(self, z_bar, nonces) -> Ciphertext:
        """B frames (B, k) under B distinct unused nonces → c (B, k) and, in ``lwe-pk``, d (B, n2)."""
        p = self.params.p
        z = _plaintext(z_bar, self.k, p, True)
        nonces = [drbg.check_nonce(n) for n in np.asarray(nonces).ravel().tolist()]
        if len(nonces) != len(z):
            raise ValueError(f"need one nonce per frame: {len(z)} frames, {len(nonces)} nonces")
        self._ledger.claim(nonces)
        if self.mode == "mask":
            m = drbg.uniform_zp_batch(self._mask_key, _L_MASK, nonces, self.k, p)
            return Ciphertext((z + m) % p, None)
        e1, e2, e3 = lwe_errors(self._error_seed, self.params, self.k, nonces, self._gauss)
        e1f = e1.astype(np.float64)
        c = ((e1f @ self._public._Pf).astype(np.int64) + e3 + z) % p  # exact: |Pᵀe1| < 2^53
        d = None
        if self.mode == "lwe-pk":
            d = ((e1f @ self._public._A_float).astype(np.int64) + e2) % p
        return Ciphertext(c, d)


class Decryptor:
    """Bob. Returns the real-valued received plaintext z' ∈ [0, p) (eqs. 23–27) from a soft ciphertext.

    Holds S (``lwe``, ``lwe-pk``), plus A and the error seed in ``lwe`` (he derives d from the
    nonce), or only the mask key (``mask``).
    """

    def __init__(self, keys: CipherKeys):
        if not isinstance(keys, CipherKeys):
            raise TypeError("Decryptor needs CipherKeys (the secret key)")
        self.mode, self.params, self.k, self.key_id = keys.mode, keys.params, keys.k, keys.key_id
        if self.mode == "mask":
            self._mask_key = keys.mask_key
        else:
            self._S_float = keys._S_float
            if self.mode == "lwe":
                self._A_float = keys.public()._A_float
                self._error_seed = keys.error_seed
                self._gauss = drbg.DiscreteGaussian(self.params.s)

    def __repr__(self):
        return f"Decryptor(mode={self.mode!r}, params={self.params.name!r}, k={self.k}, key_id={self.key_id!r})"

    def __getstate__(self):
        raise TypeError("a Decryptor holds secrets and is not picklable")

    def own_d(self, nonces) -> np.ndarray:
        """``lwe`` mode: d = Aᵀe1 + e2 mod p (B, n2), derived from the shared error seed and the nonces."""
        if self.mode != "lwe":
            raise ValueError(f"only lwe mode derives d locally (this decryptor is {self.mode})")
        e1, e2, _ = lwe_errors(self._error_seed, self.params, self.k, nonces, self._gauss, with_e3=False)
        return ((e1.astype(np.float64) @ self._A_float).astype(np.int64) + e2) % self.params.p

    def decrypt(self, c_hat, nonce: int, d=None) -> np.ndarray:
        """One frame: ĉ (k,) real-valued → z' (k,) float64 in [0, p). ``d`` (n2,) is required in ``lwe-pk``."""
        c_hat = np.asarray(c_hat, dtype=np.float64)
        if c_hat.shape != (self.k,):
            raise ValueError(f"soft ciphertext must have shape ({self.k},), got {c_hat.shape}")
        return self.decrypt_batch(c_hat[None, :], [nonce], None if d is None else np.asarray(d)[None, :])[0]

    def decrypt_batch(self, c_hat, nonces, d=None) -> np.ndarray:
        """B frames: ĉ (B, k) → z' (B, k) float64 in [0, p); ``d`` (B, n2) in ``lwe-pk`` mode only."""
        p = self.params.p
        c_hat = np.asarray(c_hat, dtype=np.float64)
        if c_hat.ndim != 2 or c_hat.shape[1] != self.k:
            raise ValueError(f"soft ciphertext must have shape (B, {self.k}), got {c_hat.shape}")
        if not np.all(np.isfinite(c_hat)):
            raise ValueError("soft ciphertext holds non-finite values")
        nonces = [drbg.check_nonce(n) for n in np.asarray(nonces).ravel().tolist()]
        if len(nonces) != len(c_hat):
            raise ValueError(f"need one nonce per frame: {len(c_hat)} frames, {len(nonces)} nonces")
        if self.mode == "mask":
            if d is not None:
                raise ValueError("mask mode has no d")
            return np.mod(c_hat - drbg.uniform_zp_batch(self._mask_key, _L_MASK, nonces, self.k, p), p)
        if self.mode == "lwe":
            if d is not None:
                raise ValueError("lwe mode derives d from the error seed; do not pass it")
            dd = self.own_d(nonces)
        else:
            if d is None:
                raise ValueError("lwe-pk decryption needs the transmitted d")
            dd = np.asarray(d)
            if dd.shape != (len(c_hat), self.params.n2):
                raise ValueError(f"d must have shape ({len(c_hat)}, {self.params.n2}), got {dd.shape}")
            dd = np.mod(np.rint(dd).astype(np.int64), p)
        return np.mod(dd.astype(np.float64) @ self._S_float + c_hat, p)  # Sᵀd exact in float64


# ---------------------------------------------------------------- Eve with a leaked error seed
def known_seed_attack(public: PublicKey, error_seed: bytes, c, nonce: int, *, n_levels: int = N_LEVELS):
    """Eve with the public key and the (leaked) error seed: c − Pᵀe1 = z̄ + e3 (mod p); since |e3| ≈ σ ≪
    p/2N, rounding to the nearest centroid recovers z̄ exactly. Returns (centroid values (k,), z̄ + e3)."""
    e1, _, _ = lwe_errors(error_seed, public.params, public.k, [nonce], with_e3=False)
    p = public.params.p
    z_noisy = (np.asarray(c, dtype=np.int64) - (e1[0].astype(np.float64) @ public._Pf).astype(np.int64)) % p
    return centroids(p, n_levels)[nearest_centroid(z_noisy, p, n_levels)], z_noisy


def _read_public(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"public key file not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"public key file {path} is a folder: give the key file itself") from None
    except PermissionError:
        raise UserError(f"public key file {path} is not readable (permission denied)") from None
