"""SIFT's scale space and difference of Gaussians on Paillier ciphertexts (the paper's Fig. 2, after Hsu et al.,
*Image feature extraction in encrypted domain with privacy-preserving SIFT*, 2012).

The key holder encrypts the image with Paillier (``phe``, 2048-bit keys, ``gmpy2`` arithmetic); the server
builds the Gaussian scale space and the DoG homomorphically — additions of ciphertexts and multiplications by
plaintext integers only — and returns the encrypted DoG; the key holder decrypts it and detects keypoints.

**What is computed.** OpenCV's SIFT scale space (σ = 1.6, 3 layers per octave: 6 Gaussian images and 5 DoG
images per octave) for its first two octaves: octave −1 (the image upsampled ×2 with linear interpolation,
σ_s = 1.6·2^(s/3) fine pixels) and octave 0 (the original grid). Every Gaussian image is one separable integer
filter applied to the *original* encrypted pixels, quantised to integers summing to 2^K (K = 12):

* octave −1, per output phase (even/odd fine row or column): the composite of OpenCV's ×2 linear interpolation and
  a Gaussian of σ_rel = √(σ_s² − 1) fine pixels (the upsampled image counts as blurred by 1, as in OpenCV),
  truncated at 4σ_rel (OpenCV's float kernels);
* octave 0: octave −1's level 3 at the even fine samples (OpenCV's decimation) composed with the incremental
  Gaussians √(σ_s² − 1.6²), 37 taps.

The DoG is G_{s+1} − G_s. Keypoints: OpenCV's rules on the decrypted DoG (3×3×3 extrema above 0.5·0.04/3,
quadratic refinement ≤ 5 steps, contrast 0.04/3, edge ratio 10, 5-pixel border), in original pixel coordinates.
The same integers computed in the clear (:func:`plain_dog`, :func:`plain_dog0`) are the *plaintext scale space*
the encrypted one must equal exactly. Octaves 1 and up are not computed (their kernels would need more slots).

**Packing.** A 2048-bit Paillier plaintext holds T = ⌊2047/b⌋ = 60 slots of b = 34 bits (a Gaussian value is
< 255·2^24 < 2^32; the DoG adds an offset 2^32 so every slot stays non-negative: no borrow crosses a slot).
Each ciphertext holds one row segment: J output columns with R halo columns each side (reflect-101 at the
image border, as OpenCV's blur), J + 4R ≤ T. Along a row (inside the slots) the filter is
Σ_j c_j·x[i + j] = the product of the segment shifted *up* by R − j slots (multiplication by 2^(b(R−j)), the
only shift Paillier allows) raised to c_j; the result sits 2R slots up. Down the rows (across ciphertexts) the
filter is the product of row ciphertexts raised to c_j. Negative DoG values use E(G)⁻¹ mod n² and the public
offset E(2^32·Σ 2^(bu)). Octave −1: R = 11, J = 16. Octave 0's 37-tap kernel would need R = 18: its columns are
encrypted a second time split into even and odd phases (slot u of phase a = column 2u + a), which halves the
radius inside the slots (R = 10, J = 20 column pairs). The plaintext weights' powers share their squarings
(tables of x^(2^i)); ``workers`` processes share the rows.

**Cost.** For H×W: H·⌈W/16⌉ + 2·H·⌈W/40⌉ encryptions (the two packings), 20·H·⌈W/16⌉ + 10·H·⌈W/40⌉ DoG
ciphertexts to decrypt — the decryptions dominate (a 128×128 image: 1,024 + 1,024 encryptions, 20,480 + 5,120
decryptions).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

SIGMA, LAYERS, CONTRAST, EDGE, BORDER = 1.6, 3, 0.04, 10.0, 5
K_BITS, SLOT_BITS, TRUNCATE = 12, 34, 4.0
OFFSET = 1 << 32


# --------------------------------------------------------------------------- the integer filters

def _gauss(sigma: float, radius: int) -> np.ndarray:
    t = np.arange(-radius, radius + 1)
    g = np.exp(-t * t / (2 * sigma * sigma))
    return g / g.sum()


def level_sigmas() -> list[float]:
    """σ_rel of the 6 Gaussian images of octave −1 (fine pixels), relative to the upsampled image's blur of 1."""
    return [math.sqrt((SIGMA * 2 ** (s / LAYERS)) ** 2 - 1.0) for s in range(LAYERS + 3)]


def polyphase(sigma: float, k_bits: int = K_BITS) -> tuple[int, np.ndarray]:
    """(R, c (2, 2R + 1) int64): fine sample 2i + φ = Σ_j c[φ, j + R]·x[i + j] / 2^K for the ×2 linear
    interpolation (OpenCV INTER_LINEAR: fine 2m ← ¾x[m] + ¼x[m − 1], 2m + 1 ← ¾x[m] + ¼x[m + 1]) followed by a
    Gaussian of ``sigma`` fine pixels truncated at 4σ (OpenCV's float kernels); each phase's integers sum to 2^K."""
    rf = max(1, int(math.ceil(TRUNCATE * sigma)))
    g = _gauss(sigma, rf)
    R = (rf + 1) // 2 + 1
    coef = np.zeros((2, 2 * R + 1))
    for phi in (0, 1):
        for u, w in zip(range(-rf, rf + 1), g):
            f = phi + u                       # fine index relative to 2i
            m, odd = divmod(f, 2)
            coef[phi, m + R] += 0.75 * w
            coef[phi, m + (1 if odd else -1) + R] += 0.25 * w
    out = np.zeros_like(coef, dtype=np.int64)
    for phi in (0, 1):
        q = np.round(coef[phi] * 2 ** k_bits).astype(np.int64)
        q[R] += 2 ** k_bits - q.sum()
        out[phi] = q
    return R, out


@dataclass
class Plan:
    """The filters of the 6 Gaussian images and the packing they need."""

    k_bits: int = K_BITS
    slot_bits: int = SLOT_BITS
    filters: list = field(default_factory=list)     # per level: (2, 2R + 1) int64, padded to the common R
    R: int = 0
    slots: int = 0                                   # T
    J: int = 0                                       # output columns per ciphertext

    @classmethod
    def make(cls, key_bits: int = 2048, k_bits: int = K_BITS, slot_bits: int = SLOT_BITS) -> "Plan":
        if slot_bits < 8 + 2 * k_bits + 2:
            raise ValueError(f"{slot_bits}-bit slots cannot hold 255·2^(2·{k_bits}) plus the DoG offset")
        fs = [polyphase(s, k_bits) for s in level_sigmas()]
        R = max(r for r, _ in fs)
        filters = [np.pad(c, ((0, 0), (R - r, R - r))) for r, c in fs]
        slots = (key_bits - 1) // slot_bits
        J = slots - 4 * R
        if J < 1:
            raise ValueError(f"{slots} slots of {slot_bits} bits cannot hold a radius-{R} filter")
        return cls(k_bits, slot_bits, filters, R, slots, J)


def padded(img: np.ndarray, R: int, J: int) -> np.ndarray:
    """Reflect-101 padding by R (rows and columns), columns then zero-filled to a whole number of segments."""
    p = np.pad(np.asarray(img, np.int64), R, mode="reflect")
    segs = -(-img.shape[1] // J)
    need = segs * J + 2 * R
    return np.pad(p, ((0, 0), (0, need - p.shape[1])))


def plain_gaussians(img: np.ndarray, plan: Plan) -> np.ndarray:
    """The integer Gaussian images, computed in the clear exactly as the ciphertexts compute them:
    (6, 2H, 2W) int64, scaled by 2^(2K)."""
    R = plan.R
    H, W = img.shape
    p = np.pad(np.asarray(img, np.int64), R, mode="reflect")
    out = np.zeros((len(plan.filters), 2 * H, 2 * W), np.int64)
    for s, c in enumerate(plan.filters):
        for psi in (0, 1):
            h = sum(c[psi, j] * p[:, j:j + W] for j in range(2 * R + 1))             # (H + 2R, W)
            for phi in (0, 1):
                out[s, phi::2, psi::2] = sum(c[phi, j] * h[j:j + H] for j in range(2 * R + 1))
    return out


def plain_dog(img: np.ndarray, plan: Plan) -> np.ndarray:
    g = plain_gaussians(img, plan)
    return g[1:] - g[:-1]


# --------------------------------------------------------------------------- octave 0

def octave0_kernels(k_bits: int = K_BITS) -> list[np.ndarray]:
    """Octave 0 (original grid): per level, the 1D integer kernel (odd length, sum 2^K) from the original pixels —
    octave −1's level 3 (σ = 3.2 fine pixels) taken at the even fine samples (OpenCV's ×2 decimation), then the
    Gaussian of σ_inc = √(σ_s² − 1.6²) original pixels (OpenCV's incremental blurs, composed); taps below
    2^-(K+1) dropped."""
    sig3 = level_sigmas()[LAYERS]
    rf = int(math.ceil(TRUNCATE * sig3))
    g = _gauss(sig3, rf)
    R = (rf + 1) // 2 + 1
    base = np.zeros(2 * R + 1)                    # phase-0 polyphase kernel of level 3, float
    for u, w in zip(range(-rf, rf + 1), g):
        m, odd = divmod(u, 2)
        base[m + R] += 0.75 * w
        base[m + (1 if odd else -1) + R] += 0.25 * w
    out = []
    for s in range(LAYERS + 3):
        inc = math.sqrt(max((SIGMA * 2 ** (s / LAYERS)) ** 2 - SIGMA ** 2, 0.0))
        k = np.convolve(base, _gauss(inc, int(math.ceil(TRUNCATE * inc)))) if inc > 0 else base
        h = len(k) // 2
        keep = np.nonzero(np.abs(k) >= 2.0 ** -(k_bits + 1))[0]
        r = max(h - keep[0], keep[-1] - h)
        k = k[h - r:h + r + 1]
        q = np.round(k / k.sum() * 2 ** k_bits).astype(np.int64)
        q[r] += 2 ** k_bits - q.sum()
        out.append(q)
    Rk = max(len(q) // 2 for q in out)
    return [np.pad(q, Rk - len(q) // 2) for q in out]


def phase_kernels(k: np.ndarray) -> tuple[int, np.ndarray]:
    """(R2, c (2, 2, 2R2 + 1)): output column 2i + ψ = Σ_a Σ_m c[ψ, a, m + R2]·x[2(i + m) + a] for the 1D kernel
    ``k`` (odd length, centred): the columns split into even and odd phases halve the radius inside the slots."""
    Rk = len(k) // 2
    R2 = (Rk + 1) // 2 + 1
    c = np.zeros((2, 2, 2 * R2 + 1), np.int64)
    for psi in (0, 1):
        for a in (0, 1):
            for m in range(-R2, R2 + 1):
                t = 2 * m + a - psi
                if -Rk <= t <= Rk:
                    c[psi, a, m + R2] = k[t + Rk]
    return R2, c


def plain_dog0(img: np.ndarray, kernels: list) -> np.ndarray:
    """Octave 0's integer DoG (5, H, W) in the clear (reflect-101 borders), scaled by 2^(2K)."""
    H, W = img.shape
    Rk = len(kernels[0]) // 2
    p = np.pad(np.asarray(img, np.int64), Rk, mode="reflect")
    g = []
    for k in kernels:
        h = sum(k[j] * p[:, j:j + W] for j in range(2 * Rk + 1))
        g.append(sum(k[j] * h[j:j + H] for j in range(2 * Rk + 1)))
    g = np.stack(g)
    return g[1:] - g[:-1]


# --------------------------------------------------------------------------- Paillier

class PaillierSift:
    """The key holder (keys, encryption, decryption) and the server's homomorphic scale space."""

    def __init__(self, key_bits: int = 2048, plan: Plan | None = None, keypair=None):
        import gmpy2
        from phe import paillier

        t0 = time.perf_counter()
        self.pk, self.sk = keypair or paillier.generate_paillier_keypair(n_length=key_bits)
        self.keygen_s = time.perf_counter() - t0
        self.gmpy2 = gmpy2
        self.n = gmpy2.mpz(self.pk.n)
        self.n2 = self.n * self.n
        self.plan = plan or Plan.make(key_bits)
        if self.plan.slots * self.plan.slot_bits >= self.n.bit_length():
            raise ValueError("the packed slots do not fit the Paillier plaintext")

    # key holder
    def encrypt_image(self, img: np.ndarray, workers: int = 1) -> dict:
        """Row segments of the padded image, packed and encrypted: {(image row, segment): ciphertext}."""
        plan = self.plan
        p = padded(img, plan.R, plan.J)
        H = img.shape[0]
        segs = -(-img.shape[1] // plan.J)
        cts = _parallel(self._encrypt_rows, (p, segs), _chunks(range(H), workers), workers)
        return {"cts": cts, "shape": img.shape}

    def _encrypt_rows(self, job, rows) -> dict:
        p, segs = job
        plan, b = self.plan, self.plan.slot_bits
        out = {}
        for r in rows:
            for g in range(segs):
                m = 0
                for u, v in enumerate(p[r + plan.R, g * plan.J:g * plan.J + plan.J + 2 * plan.R].tolist()):
                    m |= int(v) << (b * u)
                out[(r, g)] = self.gmpy2.mpz(self.pk.raw_encrypt(m))
        return out

    def decrypt_dog(self, enc: dict, workers: int = 1) -> np.ndarray:
        """The key holder: decrypt and unpack the DoG, (5, 2H, 2W) int64 (scaled by 2^(2K))."""
        plan, b = self.plan, self.plan.slot_bits
        H, W = enc["shape"]
        mask = (1 << b) - 1
        items = list(enc["dog"].items())
        plain = _parallel(self._decrypt_items, items, _chunks(range(len(items)), workers), workers)
        out = np.zeros((len(plan.filters) - 1, 2 * H, 2 * W), np.int64)
        for (s, fr, g, psi), m in plain.items():
            for i in range(plan.J):
                col = g * plan.J + i
                if col >= W:
                    break
                out[s, fr, 2 * col + psi] = ((m >> (b * (i + 2 * plan.R))) & mask) - OFFSET
        return out

    def _decrypt_items(self, items, idx) -> dict:
        return {items[i][0]: self.sk.raw_decrypt(int(items[i][1])) for i in idx}

    # server
    def dog(self, enc: dict, log=None, workers: int = 1) -> dict:
        """The encrypted DoG from the encrypted image (additions and plaintext multiplications only), the rows
        shared among ``workers`` processes."""
        H, W = enc["shape"]
        horiz = _parallel(self._horizontal, enc, _chunks(range(H), workers), workers)
        if log:
            log(f"horizontal pass done ({len(horiz)} ciphertexts)")
        dog = _parallel(self._vertical, (horiz, enc["shape"]), _chunks(range(2 * H), workers), workers)
        if log:
            log(f"vertical pass and DoG done ({len(dog)} ciphertexts)")
        return {"dog": dog, "shape": (H, W)}

    def _table(self, x, kb):
        """x^(2^i), i < kb: every plaintext weight is then a product of table entries (shared squarings)."""
        t = [x]
        for _ in range(kb - 1):
            t.append(t[-1] * t[-1] % self.n2)
        return t

    def _power(self, t, k):
        acc, i = None, 0
        while k:
            if k & 1:
                acc = t[i] if acc is None else acc * t[i] % self.n2
            k >>= 1
            i += 1
        return acc

    def _kb(self):
        return max(int(abs(f).max()).bit_length() for f in self.plan.filters)

    def _horizontal(self, enc, rows) -> dict:
        """Each row segment filtered along its slots, per level and output column phase: slot i + 2R holds the
        output of column g·J + i (the segment shifted up by R − j slots, i.e. ×2^(b(R−j)), raised to c_j)."""
        gm, n2, plan = self.gmpy2, self.n2, self.plan
        R, J, L = plan.R, plan.J, len(plan.filters)
        segs = -(-enc["shape"][1] // J)
        shift = gm.mpz(1) << plan.slot_bits
        kb = self._kb()
        out = {}
        for r in rows:
            for g in range(segs):
                ups = [enc["cts"][(r, g)]]
                for _ in range(2 * R):
                    ups.append(gm.powmod(ups[-1], shift, n2))
                tabs = [self._table(u, kb) for u in ups]
                for s in range(L):
                    for psi in (0, 1):
                        c = plan.filters[s][psi]
                        acc = gm.mpz(1)
                        for j in range(2 * R + 1):
                            if c[j]:
                                acc = acc * self._power(tabs[2 * R - j], int(c[j])) % n2
                        out[(s, r, g, psi)] = acc
        return out

    def _vertical(self, job, frs) -> dict:
        """Down the rows (across ciphertexts) per level, then DoG = G_{s+1} − G_s + offset, for fine rows ``frs``."""
        horiz, (H, W) = job
        gm, n2, plan = self.gmpy2, self.n2, self.plan
        R, J, L, b = plan.R, plan.J, len(plan.filters), plan.slot_bits
        segs = -(-W // J)
        kb = self._kb()

        def src_row(rp):                     # padded row → image row, reflect-101
            r = abs(rp - R)
            return 2 * (H - 1) - r if r > H - 1 else r

        off = 0
        for u in range(plan.slots):
            off |= OFFSET << (b * u)
        off_ct = (1 + off * self.n) % n2     # E(offset) with no randomness: a public constant
        frs = list(frs)
        need = sorted({src_row(fr // 2 + j) for fr in frs for j in range(2 * R + 1)})
        dog, prev = {}, {}
        for s in range(L):
            tabs = {(r, g, psi): self._table(horiz[(s, r, g, psi)], kb)
                    for r in need for g in range(segs) for psi in (0, 1)}
            for fr in frs:
                i, phi = divmod(fr, 2)
                c = plan.filters[s][phi]
                for g in range(segs):
                    for psi in (0, 1):
                        acc = gm.mpz(1)
                        for j in range(2 * R + 1):
                            if c[j]:
                                acc = acc * self._power(tabs[(src_row(i + j), g, psi)], int(c[j])) % n2
                        if s:
                            dog[(s - 1, fr, g, psi)] = acc * gm.invert(prev[(fr, g, psi)], n2) % n2 * off_ct % n2
                        prev[(fr, g, psi)] = acc
        return dog

    # octave 0: the columns in two phases (even, odd) so that a radius-2·R2 kernel needs R2 slots
    def octave0_setup(self):
        self.k0 = octave0_kernels(self.plan.k_bits)
        phases = [phase_kernels(k) for k in self.k0]
        self.R2 = max(r for r, _ in phases)
        self.c0 = [np.pad(c, ((0, 0), (0, 0), (self.R2 - r, self.R2 - r))) for r, c in phases]
        self.J2 = self.plan.slots - 4 * self.R2
        if self.J2 < 1:
            raise ValueError(f"octave 0 needs a slot radius {self.R2}: too big for {self.plan.slots} slots")

    def encrypt_image0(self, img: np.ndarray, workers: int = 1) -> dict:
        """The image's columns in two phases, each cut into segments of J2 + 2·R2 slots (reflect-101 padding)."""
        H, W = img.shape
        pad = 2 * self.R2 + 2
        p = np.pad(np.asarray(img, np.int64), ((0, 0), (pad, pad)), mode="reflect")
        segs = -(-(W // 2) // self.J2)
        need = pad // 2 + segs * self.J2 + self.R2 + 1
        ph = [np.pad(p[:, a::2], ((0, 0), (0, max(0, need - p[:, a::2].shape[1])))) for a in (0, 1)]
        cts = _parallel(self._encrypt_rows0, (ph, segs, pad), _chunks(range(H), workers), workers)
        return {"cts": cts, "shape": img.shape}

    def _encrypt_rows0(self, job, rows) -> dict:
        ph, segs, pad = job
        b, J2, R2 = self.plan.slot_bits, self.J2, self.R2
        out = {}
        for r in rows:
            for a in (0, 1):
                for g in range(segs):
                    lo = g * J2 + pad // 2 - R2
                    m = 0
                    for u, v in enumerate(ph[a][r, lo:lo + J2 + 2 * R2].tolist()):
                        m |= int(v) << (b * u)
                    out[(r, a, g)] = self.gmpy2.mpz(self.pk.raw_encrypt(m))
        return out

    def dog0(self, enc: dict, log=None, workers: int = 1) -> dict:
        H, W = enc["shape"]
        horiz = _parallel(self._horizontal0, enc, _chunks(range(H), workers), workers)
        dog = _parallel(self._vertical0, (horiz, enc["shape"]), _chunks(range(H), workers), workers)
        if log:
            log(f"octave 0: {len(horiz)} filtered rows, {len(dog)} DoG ciphertexts")
        return {"dog": dog, "shape": (H, W)}

    def _horizontal0(self, enc, rows) -> dict:
        gm, n2, R2, J2 = self.gmpy2, self.n2, self.R2, self.J2
        segs = -(-(enc["shape"][1] // 2) // J2)
        shift = gm.mpz(1) << self.plan.slot_bits
        kb = max(int(abs(c).max()).bit_length() for c in self.c0)
        out = {}
        for r in rows:
            for g in range(segs):
                tabs = []
                for a in (0, 1):
                    ups = [enc["cts"][(r, a, g)]]
                    for _ in range(2 * R2):
                        ups.append(gm.powmod(ups[-1], shift, n2))
                    tabs.append([self._table(u, kb) for u in ups])
                for s, c in enumerate(self.c0):
                    for psi in (0, 1):
                        acc = gm.mpz(1)
                        for a in (0, 1):
                            for j in range(2 * R2 + 1):
                                if c[psi, a, j]:
                                    acc = acc * self._power(tabs[a][2 * R2 - j], int(c[psi, a, j])) % n2
                        out[(s, r, g, psi)] = acc
        return out

    def _vertical0(self, job, rows) -> dict:
        horiz, (H, W) = job
        gm, n2, b = self.gmpy2, self.n2, self.plan.slot_bits
        segs = -(-(W // 2) // self.J2)
        Rk = len(self.k0[0]) // 2
        kb = max(int(abs(k).max()).bit_length() for k in self.k0)

        def src_row(r):
            r = abs(r)
            return 2 * (H - 1) - r if r > H - 1 else r

        off = 0
        for u in range(self.plan.slots):
            off |= OFFSET << (b * u)
        off_ct = (1 + off * self.n) % n2
        rows = list(rows)
        need = sorted({src_row(r + j) for r in rows for j in range(-Rk, Rk + 1)})
        dog, prev = {}, {}
        for s, k in enumerate(self.k0):
            tabs = {(r, g, psi): self._table(horiz[(s, r, g, psi)], kb)
                    for r in need for g in range(segs) for psi in (0, 1)}
            for r in rows:
                for g in range(segs):
                    for psi in (0, 1):
                        acc = gm.mpz(1)
                        for j in range(2 * Rk + 1):
                            if k[j]:
                                acc = acc * self._power(tabs[(src_row(r + j - Rk), g, psi)], int(k[j])) % n2
                        if s:
                            dog[(s - 1, r, g, psi)] = acc * gm.invert(prev[(r, g, psi)], n2) % n2 * off_ct % n2
                        prev[(r, g, psi)] = acc
        return dog

    def decrypt_dog0(self, enc: dict, workers: int = 1) -> np.ndarray:
        b, J2, R2 = self.plan.slot_bits, self.J2, self.R2
        H, W = enc["shape"]
        mask = (1 << b) - 1
        items = list(enc["dog"].items())
        plain = _parallel(self._decrypt_items, items, _chunks(range(len(items)), workers), workers)
        out = np.zeros((len(self.k0) - 1, H, W), np.int64)
        for (s, r, g, psi), m in plain.items():
            for i in range(J2):
                col = 2 * (g * J2 + i) + psi
                if col >= W:
                    break
                out[s, r, col] = ((m >> (b * (i + 2 * R2))) & mask) - OFFSET
        return out


_JOB = None


def _chunks(items, workers: int) -> list:
    items = list(items)
    k = max(1, workers)
    return [items[i::k] for i in range(k) if items[i::k]]


def _run_job(chunk):
    fn, job = _JOB
    return fn(job, chunk)


def _parallel(fn, job, chunks: list, workers: int) -> dict:
    """fn(job, chunk) for every chunk, in ``workers`` forked processes (they inherit ``job``); merged dicts."""
    global _JOB
    if workers <= 1 or len(chunks) <= 1:
        out = {}
        for ch in chunks:
            out.update(fn(job, ch))
        return out
    import multiprocessing as mp

    _JOB = (fn, job)
    pool = mp.get_context("fork").Pool(workers)
    try:
        parts = pool.map(_run_job, chunks)
    finally:
        pool.close()
        pool.join()
        _JOB = None
    out = {}
    for p in parts:
        out.update(p)
    return out


# --------------------------------------------------------------------------- keypoints

def detect(dog_int: np.ndarray, plan: Plan, octave: int = -1) -> np.ndarray:
    """OpenCV's extrema detection and refinement on one octave's DoG (5, h, w); keypoints (N, 3): x, y in original
    pixels and the layer."""
    d = dog_int.astype(np.float64) / (2 ** (2 * plan.k_bits))        # pixel units 0…255
    nl, h, w = d.shape
    thr = math.floor(0.5 * CONTRAST / LAYERS * 255)
    scale = 1.0 / 255
    out = []
    for layer in range(1, LAYERS + 1):
        cur = d[layer]
        cand = np.argwhere(np.abs(cur[BORDER:h - BORDER, BORDER:w - BORDER]) > thr) + BORDER
        for r, c in cand:
            v = cur[r, c]
            cube = d[layer - 1:layer + 2, r - 1:r + 2, c - 1:c + 2]
            if not ((v > 0 and v >= cube.max()) or (v < 0 and v <= cube.min())):
                continue
            kp = _refine(d, layer, r, c, scale)
            if kp is not None:
                out.append((kp[0] * 2.0 ** (octave + 1), kp[1] * 2.0 ** (octave + 1), kp[2]))
    return np.array(out).reshape(-1, 3)


def _refine(d, layer, r, c, scale):
    nl, h, w = d.shape
    for _ in range(5):
        dD = np.array([(d[layer, r, c + 1] - d[layer, r, c - 1]) * 0.5 * scale,
                       (d[layer, r + 1, c] - d[layer, r - 1, c]) * 0.5 * scale,
                       (d[layer + 1, r, c] - d[layer - 1, r, c]) * 0.5 * scale])
        v2 = d[layer, r, c] * 2
        dxx = (d[layer, r, c + 1] + d[layer, r, c - 1] - v2) * scale
        dyy = (d[layer, r + 1, c] + d[layer, r - 1, c] - v2) * scale
        dss = (d[layer + 1, r, c] + d[layer - 1, r, c] - v2) * scale
        dxy = (d[layer, r + 1, c + 1] - d[layer, r + 1, c - 1] - d[layer, r - 1, c + 1] + d[layer, r - 1, c - 1]) * 0.25 * scale
        dxs = (d[layer + 1, r, c + 1] - d[layer + 1, r, c - 1] - d[layer - 1, r, c + 1] + d[layer - 1, r, c - 1]) * 0.25 * scale
        dys = (d[layer + 1, r + 1, c] - d[layer + 1, r - 1, c] - d[layer - 1, r + 1, c] + d[layer - 1, r - 1, c]) * 0.25 * scale
        Hm = np.array([[dxx, dxy, dxs], [dxy, dyy, dys], [dxs, dys, dss]])
        try:
            X = np.linalg.solve(Hm, dD)
        except np.linalg.LinAlgError:
            return None
        xc, xr, xi = -X
        if abs(xi) < 0.5 and abs(xr) < 0.5 and abs(xc) < 0.5:
            break
        if max(abs(xi), abs(xr), abs(xc)) > 1e6:
            return None
        c += int(round(xc))
        r += int(round(xr))
        layer += int(round(xi))
        if layer < 1 or layer > LAYERS or c < BORDER or c >= w - BORDER or r < BORDER or r >= h - BORDER:
            return None
    else:
        return None
    t = dD @ np.array([xc, xr, xi])
    contr = d[layer, r, c] * scale + t * 0.5
    if abs(contr) * LAYERS < CONTRAST:
        return None
    tr, det = dxx + dyy, dxx * dyy - dxy * dxy
    if det <= 0 or tr * tr * EDGE >= (EDGE + 1) ** 2 * det:
        return None
    return ((c + xc) * 0.5, (r + xr) * 0.5, layer)


def opencv_keypoints(img: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """OpenCV SIFT on the plaintext: positions (N, 2), their octave (−1, 0, …), and the cv2 keypoints."""
    import cv2

    kps = cv2.SIFT_create().detect(np.asarray(img, np.uint8), None)
    pos = np.array([k.pt for k in kps]).reshape(-1, 2)
    octv = np.array([((k.octave & 255) ^ 128) - 128 if (k.octave & 255) >= 128 else (k.octave & 255) for k in kps])
    return pos, octv, kps


def coverage(ref: np.ndarray, got: np.ndarray, radius: float) -> float:
    """Fraction of ``ref`` points with a ``got`` point within ``radius`` pixels."""
    if len(ref) == 0:
        return float("nan")
    if len(got) == 0:
        return 0.0
    dist = np.sqrt(((ref[:, None, :] - got[None, :, :2]) ** 2).sum(-1))
    return float(np.mean(dist.min(1) <= radius))


# --------------------------------------------------------------------------- the experiment

def ciphertext_image(enc: dict, plan: Plan) -> np.ndarray:
    """The paper's Fig. 2c: what the channel sees, as an image — each pixel shows one byte of the ciphertext that
    carries it (byte i of the segment's ciphertext for the segment's i-th column)."""
    H, W = enc["shape"]
    out = np.zeros((H, W), np.uint8)
    for (r, g), c in enc["cts"].items():
        for i in range(plan.J):
            col = g * plan.J + i
            if col < W:
                out[r, col] = (int(c) >> (8 * (i * 7 + 3))) & 255
    return out


def control(img: np.ndarray, cimg: np.ndarray) -> dict:
    """SIFT run directly on the ciphertext image: its keypoints and descriptor matches against the plaintext's."""
    import cv2

    sift = cv2.SIFT_create()
    kp1, d1 = sift.detectAndCompute(np.asarray(img, np.uint8), None)
    kp2, d2 = sift.detectAndCompute(cimg, None)
    good = consistent = 0
    if d1 is not None and d2 is not None and len(kp2) >= 2:
        for m in cv2.BFMatcher().knnMatch(d1, d2, k=2):
            if len(m) == 2 and m[0].distance < 0.75 * m[1].distance:
                good += 1
                a, b = np.array(kp1[m[0].queryIdx].pt), np.array(kp2[m[0].trainIdx].pt)
                consistent += int(np.hypot(*(a - b)) <= 1.5)
    p1 = np.array([k.pt for k in kp1]).reshape(-1, 2)
    p2 = np.array([k.pt for k in kp2]).reshape(-1, 2)
    return {"plaintext_keypoints": len(kp1), "ciphertext_image_keypoints": len(kp2), "ratio_test_matches": good,
            "matches_at_the_same_place": consistent,
            "plaintext_keypoints_covered_within_1.5px": coverage(p1, p2, 1.5) if len(p1) else None}


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the worker processes)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run(img: np.ndarray, key_bits: int = 2048, figure=None, log=None, keypair=None, workers: int = 2,
        octaves=(-1, 0)) -> dict:
    """Encrypt, build the DoG homomorphically, decrypt, detect; compare with the plaintext scale space and OpenCV.
    ``workers`` processes share the rows (encryption, both filter passes, decryption). Octave 0 needs an image of
    at least 24×24 (its 37-tap kernels reflect once at the border)."""
    img = np.asarray(img, np.uint8)
    ps = PaillierSift(key_bits, keypair=keypair)
    plan = ps.plan
    if 0 in octaves:
        ps.octave0_setup()
        if min(img.shape) < len(ps.k0[0]) // 2 + 6:
            octaves = tuple(o for o in octaves if o != 0)
    c0, t0 = _cpu(), time.perf_counter()
    enc = ps.encrypt_image(img, workers)
    enc0 = ps.encrypt_image0(img, workers) if 0 in octaves else None
    c1, t1 = _cpu(), time.perf_counter()
    dog_enc = ps.dog(enc, log, workers)
    dog_enc0 = ps.dog0(enc0, log, workers) if enc0 else None
    c2, t2 = _cpu(), time.perf_counter()
    dog = ps.decrypt_dog(dog_enc, workers)
    dog0 = ps.decrypt_dog0(dog_enc0, workers) if dog_enc0 else None
    c3, t3 = _cpu(), time.perf_counter()
    ref = plain_dog(img, plan)
    kp_enc, kp_ref = detect(dog, plan), detect(ref, plan)
    equal = bool(np.array_equal(dog, ref))
    if dog0 is not None:
        ref0 = plain_dog0(img, ps.k0)
        equal = equal and bool(np.array_equal(dog0, ref0))
        kp_enc = np.concatenate([kp_enc, detect(dog0, plan, 0)])
        kp_ref = np.concatenate([kp_ref, detect(ref0, plan, 0)])
    pos, octv, _ = opencv_keypoints(img)
    same = (coverage(kp_ref[:, :2], kp_enc, 0.5), coverage(kp_enc[:, :2], kp_ref, 0.5))
    cimg = ciphertext_image(enc, plan)
    res = {"shape": list(img.shape), "key_bits": key_bits, "workers": workers, "octaves": list(octaves),
           "slots": plan.slots, "slot_bits": plan.slot_bits, "k_bits": plan.k_bits, "radius": plan.R,
           "columns_per_ciphertext": plan.J,
           "octave0": {"radius_in_slots": ps.R2, "column_pairs_per_ciphertext": ps.J2,
                       "kernel_taps": len(ps.k0[0])} if dog0 is not None else None,
           "ciphertexts": len(enc["cts"]) + (len(enc0["cts"]) if enc0 else 0),
           "dog_ciphertexts": len(dog_enc["dog"]) + (len(dog_enc0["dog"]) if dog_enc0 else 0),
           "keygen_s": ps.keygen_s, "encrypt_s": t1 - t0, "homomorphic_s": t2 - t1, "decrypt_s": t3 - t2,
           "total_s": t3 - t0, "cpu_s": {"encrypt": c1 - c0, "homomorphic": c2 - c1, "decrypt": c3 - c2,
                                         "total": c3 - c0},
           "load_average": list(__import__("os").getloadavg()), "dog_equal_to_plaintext": equal,
           "keypoints_encrypted": len(kp_enc), "keypoints_plaintext_scale_space": len(kp_ref),
           "same_keypoints_within_0.5px": same,
           "opencv_keypoints": len(pos), "opencv_octaves": {str(int(o)): int(np.sum(octv == o)) for o in np.unique(octv)},
           "coverage_of_opencv_within_1.5px": coverage(pos, kp_enc, 1.5),
           "coverage_of_opencv_per_octave_within_1.5px": {str(int(o)): coverage(pos[octv == o], kp_enc, 1.5)
                                                          for o in np.unique(octv)},
           "control": control(img, cimg)}
    if figure:
        save_figure(figure, img, cimg, pos, kp_enc)
        res["figure"] = str(figure)
    return res


def save_figure(path, img, cimg, pos, kp) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(12, 4.4))
    ax[0].imshow(img, cmap="gray")
    ax[0].scatter(pos[:, 0], pos[:, 1], s=10, c="r")
    ax[0].set_title(f"plaintext, OpenCV SIFT ({len(pos)})")
    ax[1].imshow(cimg, cmap="gray")
    ax[1].set_title("Paillier ciphertext (one byte per pixel)")
    ax[2].imshow(img, cmap="gray")
    ax[2].scatter(kp[:, 0], kp[:, 1], s=10, c="b")
    ax[2].set_title(f"keypoints from the encrypted DoG ({len(kp)})")
    for a in ax:
        a.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def load_image(path=None, size: int = 128) -> np.ndarray:
    """A gray uint8 image: ``path`` (any format Pillow reads) or scikit-image's camera; resized to size×size."""
    from PIL import Image

    from jscec.errors import UserError

    if path:
        try:
            im = Image.open(path).convert("L")
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: not an image Pillow can read ({exc})") from None
    else:
        from skimage import data

        im = Image.fromarray(data.camera())
    if size:
        im = im.resize((size, size), Image.LANCZOS)
    return np.asarray(im, np.uint8)
