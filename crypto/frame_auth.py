"""Frame authentication where Alice and Bob share a secret (cipher modes ``lwe`` and ``mask``; DESIGN.md,
security note 8), and Bob's replay window.

The frame header's CRC-32 has no key: anyone can forge counters, key ids and image indices, replay old
frames, or add δ to a ciphertext (c + δ decrypts to z′ + δ, the scheme is malleable). Three keyed checks
answer that, each verified by Bob before he decrypts:

* **MAC tag** over the header and the d block: ``HMAC-SHA256(K_tag, "jscec/v1/frame-tag" ‖ 0x00 ‖ header
  fields (23 bytes, :meth:`radio.frame.FrameHeader.info_bytes`) ‖ d values (big-endian u16, none in lwe/mask
  frames))`` truncated to its first :data:`TAG_BYTES` = 8 bytes (64 bits; truncation as NIST SP 800-107
  Rev. 1 §5.3.3 allows). It travels in the frame's tag block (``radio.frame``: Golay-coded BPSK with its own
  CRC-16, so noise is told apart from forgery). A forger succeeds with probability 2⁻⁶⁴ per frame sent;
  every attempt costs a frame on the air.
* **Check symbols** for the payload. The payload is analog — 4096-QAM ciphertext that Bob receives
  through noise and never recovers bit for bit — so no bit-exact MAC can cover it: Bob could verify such a
  tag only at SNRs where no symbol is ever wrong (~45 dB for a 2048-symbol frame). Instead, ``n_checks``
  payload symbols per frame (8 in a 512-symbol payload, 16 from 1024 on; :func:`n_checks`) are *replaced*
  by keyed values: one position drawn uniformly inside each of ``n_checks`` equal strata of the payload and
  a value uniform in Z_p, both from AES-CTR keyed by K_check and the frame counter
  (:func:`crypto.drbg.uniform_zp`). To Eve they look like ciphertext (uniform in Z_p, at positions she
  cannot know); Bob knows them, compares what he received with the expected 4096-QAM points against the
  frame's pilot-measured noise (:func:`payload_check`), and then erases those latent symbols (the decoder's
  erasure input) — the plaintext symbols they replaced are lost, which costs Bob a little PSNR (1.6 % of a
  512-symbol frame, 0.8 % of a 2048-symbol one; ``benchmarks/bench_frame_auth.py``), not air time. What
  this can detect is bounded by the channel noise, as for any check on an analog signal: a replaced or
  spliced payload, or δ added to many symbols, larger than ~2× the noise per symbol; a δ smaller than the
  noise cannot be told from noise by anyone (and acts on Bob as noise of that size). Strata make every run
  of 2·L/n_checks consecutive payload symbols hold a check symbol.
* **Replay window** (:class:`ReplayWindow`): Bob accepts each frame counter once per key id, and none at
  or below the highest he accepted minus :data:`WINDOW`; with a state file beside his key
  (``<key>.replay``), also none at or below the highest he accepted in earlier runs.

Keys: K_auth = HMAC-SHA256(s, "jscec/v1/frame-auth" ‖ 0x00) from the 32-byte secret s that Alice and Bob
already share — the error seed in ``lwe``, the mask key in ``mask`` (``CipherKeys.frame_auth``,
``Encryptor.frame_auth``) — then K_tag and K_check from K_auth under their own labels
(:func:`crypto.drbg.derive`; s is uniformly random, so HKDF's extract step, RFC 5869 §3.3, is not needed).
The labels differ from every label the cipher derives from s, so the MAC keys reveal nothing of its
errors or masks and the other way round. ``lwe-pk`` has no shared secret: no origin authentication is
possible there (README, Security). Nothing here prints, logs or puts key material in messages.
"""
from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crypto import drbg
from crypto.keyfile import read_secret, write_atomic
from crypto.zp import P
from jscec.errors import UserError

#: Bytes of the truncated tag (64 bits).
TAG_BYTES = 8
#: Check symbols per frame (at most), and the payload symbols each one stands for (at least).
CHECK_SYMBOLS = 16
CHECK_SPACING = 64
#: Fewer check symbols than this make no useful statistic: a shorter payload (< 512 symbols) has none.
MIN_CHECKS = 8
#: Residual power the pilots cannot see (transmitter EVM, PA compression of outer points, phase noise on
#: the payload's larger amplitudes): −25 dB of the unit symbol power, added to the noise-based bounds.
CHECK_FLOOR = 10 ** (-25 / 10)
#: Bound on any single check symbol's residual, in noise variances (Gaussian tail e^−30 per symbol).
CHECK_MAX_RATIO = 30.0
#: Frame counters (cipher nonces) of the replay window.
WINDOW = 1 << 16

_L_AUTH, _L_TAG, _L_CHECK = "jscec/v1/frame-auth", "jscec/v1/frame-auth/tag", "jscec/v1/frame-auth/check"
_L_POS, _L_VAL, _TAG_DOMAIN = "jscec/v1/frame-auth/check-positions", "jscec/v1/frame-auth/check-values", \
    b"jscec/v1/frame-tag\x00"

REPLAY_FORMAT = "deepjscec-hil/replay-state/1"
REPLAY_SUFFIX = ".replay"


def n_checks(payload_len: int) -> int:
    """Check symbols in a payload of ``payload_len`` symbols: min(16, ⌊L/64⌋), none below 8 (DeepJSCEC payloads
    are whole 512-symbol cipher frames: 8 in one, 16 in two or more)."""
    n = min(CHECK_SYMBOLS, int(payload_len) // CHECK_SPACING)
    return n if n >= MIN_CHECKS else 0


def mean_bound(n: int) -> float:
    """The bound on the check symbols' mean residual, in noise variances: 1.25 × the 1 − 10⁻⁹ quantile of
    Gamma(n, 1)/n (the mean of n exponential residuals |r|²/σ² of complex Gaussian noise; Wilson–Hilferty
    approximation, z = 6). n = 16: 4.16; n = 8: 6.07."""
    if n < 1:
        raise ValueError("need at least one check symbol")
    a = 1.0 / (9.0 * n)
    return 1.25 * (1.0 - a + 6.0 * math.sqrt(a)) ** 3


@dataclass(frozen=True)
class PayloadCheck:
    """Bob's test of a frame's check symbols: ``ok``, and the residual statistics it was decided on."""

    ok: bool
    checks: int
    mean_ratio: float   # mean |received − expected|² over the noise variance
    max_ratio: float


def payload_check(received, expected, noise_var: float) -> PayloadCheck:
    """Received (equalised) check symbols against the expected 4096-QAM points: ok iff the mean residual
    power stays below ``mean_bound(n)·σ² + CHECK_FLOOR`` and every one below ``CHECK_MAX_RATIO·σ² +
    4·CHECK_FLOOR`` (σ² = the frame's noise variance from its pilots, which an attacker who changes the
    payload does not change). False alarm below 10⁻⁹ per frame under Gaussian noise."""
    r2 = np.abs(np.asarray(received, np.complex128) - np.asarray(expected, np.complex128)) ** 2
    n = r2.size
    if n == 0:
        return PayloadCheck(True, 0, 0.0, 0.0)
    nv = max(float(noise_var), 1e-12)
    ok = bool(r2.mean() <= mean_bound(n) * nv + CHECK_FLOOR and r2.max() <= CHECK_MAX_RATIO * nv + 4 * CHECK_FLOOR)
    return PayloadCheck(ok, n, float(r2.mean() / nv), float(r2.max() / nv))


class FrameAuth:
    """The keyed checks of one shared secret: :meth:`tag` / :meth:`verify` and :meth:`checks`.

    Build it with ``CipherKeys.frame_auth()`` (Bob) or ``Encryptor.frame_auth()`` (Alice); never picklable,
    and its ``repr`` shows only the key id.
    """

    def __init__(self, shared_secret: bytes, key_id: str):
        if not isinstance(shared_secret, (bytes, bytearray)) or len(shared_secret) != 32:
            raise ValueError("a frame-authentication secret must be 32 bytes")
        master = drbg.derive(bytes(shared_secret), _L_AUTH)
        self._tag_key = drbg.derive(master, _L_TAG)
        self._check_key = drbg.derive(master, _L_CHECK)
        self.key_id = str(key_id)

    def __repr__(self) -> str:
        return f"FrameAuth(key_id={self.key_id!r})"

    __str__ = __repr__

    def __getstate__(self):
        raise TypeError("FrameAuth holds secret keys and is not picklable")

    # -- tag
    def tag(self, header_info: bytes, d=None) -> bytes:
        """The 8-byte tag of a frame: its 23 header-field bytes and its d values (None: no d block)."""
        if len(header_info) != 23:
            raise ValueError("the header's fields are 23 bytes")
        msg = _TAG_DOMAIN + bytes(header_info)
        if d is not None:
            msg += np.asarray(d, dtype=np.int64).astype(">u2").tobytes()
        return hmac.new(self._tag_key, msg, hashlib.sha256).digest()[:TAG_BYTES]

    def verify(self, header_info: bytes, d, tag) -> bool:
        """Whether ``tag`` is the frame's tag (constant-time comparison)."""
        if tag is None or len(tag) != TAG_BYTES:
            return False
        return hmac.compare_digest(self.tag(header_info, d), bytes(tag))

    # -- check symbols
    def checks(self, counter: int, payload_len: int, p: int = P) -> tuple[np.ndarray, np.ndarray]:
        """(positions (n,) ascending, values (n,) in Z_p) of frame ``counter``'s check symbols in a payload
        of ``payload_len`` symbols, n = :func:`n_checks`: position i lies uniformly in stratum
        [⌊iL/n⌋, ⌊(i+1)L/n⌋) (unbiased: 32-bit words, rejection above the largest multiple of the stratum
        length), values uniform in Z_p; both from AES-CTR keyed by (K_check, counter)."""
        n = n_checks(payload_len)
        if n == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        edges = (np.arange(n + 1) * payload_len) // n
        widths = np.diff(edges)
        words = np.frombuffer(drbg.keystream(self._check_key, _L_POS, counter, 4 * 8 * n), dtype="<u4").astype(np.int64)
        offsets = np.empty(n, np.int64)
        w = 0
        for i, width in enumerate(widths.tolist()):
            limit = ((1 << 32) // width) * width
            while True:
                if w == words.size:   # never in practice (P(reject) < width / 2^32): extend the stream
                    words = np.frombuffer(drbg.keystream(self._check_key, _L_POS, counter, 8 * words.size),
                                          dtype="<u4").astype(np.int64)
                word = int(words[w])
                w += 1
                if word < limit:
                    offsets[i] = word % width
                    break
        values = drbg.uniform_zp(self._check_key, _L_VAL, counter, n, p)
        return edges[:-1] + offsets, values


# ---------------------------------------------------------------------------------------------------
# Replay window
# ---------------------------------------------------------------------------------------------------

def replay_state_path(key_path) -> Path:
    key_path = Path(key_path)
    return key_path.with_name(key_path.name + REPLAY_SUFFIX)


class ReplayWindow:
    """The frame counters Bob accepted, per key id: a frame whose counters [first, first + count) include
    one accepted before, or lie at or below the highest accepted minus ``size``, or (with a state file)
    below the floor that earlier runs under the key left, is a replay.

    ``state`` (``<key>.replay``, mode 0600, JSON: format, key id, floor): read at start for ``key_id``;
    :meth:`save` (every ``save_every`` accepted frames and at :meth:`close`) raises the floor to the end of
    the highest counter accepted, under an exclusive lock, never lowering it. Without a state file (a
    replay of a recording, which decodes old frames on purpose) the window lives in this process only.
    """

    def __init__(self, *, size: int = WINDOW, state=None, key_id: str | None = None, save_every: int = 64):
        self.size = int(size)
        self._seen: dict[str, set[int]] = {}
        self._top: dict[str, int] = {}      # key id → end of the highest counter range accepted
        self._floor: dict[str, int] = {}
        self.path = None if state is None else Path(state)
        self.key_id = key_id
        self.save_every = int(save_every)
        self._unsaved = 0
        if self.path is not None:
            if key_id is None:
                raise ValueError("a replay state file belongs to one key id")
            self._floor[key_id] = self._read_floor()

    def _read_floor(self) -> int:
        if not self.path.exists():
            return 0
        bad = f"replay state {self.path} is not a DeepJSCEC-HIL replay state (delete it to start afresh)"
        try:
            doc = json.loads(read_secret(self.path, "replay state").decode())
            floor = int(doc["floor"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise UserError(bad) from None
        if not isinstance(doc, dict) or doc.get("format") != REPLAY_FORMAT or floor < 0:
            raise UserError(bad)
        if doc.get("key_id") != self.key_id:
            raise UserError(f"replay state {self.path} belongs to key {doc.get('key_id')}, not {self.key_id}")
        return floor

    def floor(self, key_id: str) -> int:
        return self._floor.get(key_id, 0)

    def check(self, key_id: str, first: int, count: int = 1) -> bool:
        """Whether counters [first, first + count) are fresh under ``key_id`` (nothing is recorded)."""
        first, count = int(first), max(1, int(count))
        if first < self._floor.get(key_id, 0):
            return False
        top = self._top.get(key_id)
        if top is not None and first <= top - 1 - self.size:
            return False
        seen = self._seen.get(key_id, ())
        return not any(c in seen for c in range(first, first + count))

    def accept(self, key_id: str, first: int, count: int = 1) -> None:
        """Record counters [first, first + count) as accepted (call only after :meth:`check` and every
        other check passed: a frame that failed its MAC or check symbols must not move the window)."""
        first, count = int(first), max(1, int(count))
        seen = self._seen.setdefault(key_id, set())
        seen.update(range(first, first + count))
        top = max(self._top.get(key_id, 0), first + count)
        self._top[key_id] = top
        if len(seen) > 2 * self.size:
            self._seen[key_id] = {c for c in seen if c > top - 1 - self.size}
        if self.path is not None and key_id == self.key_id:
            self._unsaved += 1
            if self._unsaved >= self.save_every:
                self.save()

    def save(self) -> None:
        """Raise the state file's floor to the end of the highest counter accepted (no-op without one)."""
        if self.path is None or self.key_id not in self._top:
            return
        lock = self.path.with_name(self.path.name + ".lock")
        try:
            with open(lock, "a") as lf:
                fcntl.flock(lf.fileno(), fcntl.LOCK_EX)
                try:
                    floor = max(self._read_floor(), self._top[self.key_id])
                    doc = {"format": REPLAY_FORMAT, "key_id": self.key_id, "floor": floor}
                    write_atomic(self.path, (json.dumps(doc) + "\n").encode(), 0o600)
                finally:
                    fcntl.flock(lf.fileno(), fcntl.LOCK_UN)
        except OSError as exc:
            raise UserError(f"cannot write the replay state {self.path} ({exc.strerror or exc}): Bob keeps it beside "
                            "his key; make that folder writable, or run his chain with --replay-state none") from None
        self._unsaved = 0

    def close(self) -> None:
        self.save()
