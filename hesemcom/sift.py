"""SIFT's scale space and difference of Gaussians on Paillier ciphertexts (the paper's Fig. 2, after Hsu et al.,
*Image feature extraction in encrypted domain with privacy-preserving SIFT*, 2012).

The key holder encrypts the image with Paillier (``phe`` keys, 2048 bits, ``gmpy2`` arithmetic); the server
builds the Gaussian scale space and the DoG homomorphically — products of ciphertexts and powers by plaintext
integers only — and returns the encrypted DoG; the key holder decrypts it and detects keypoints.

**What is computed.** OpenCV's SIFT scale space (σ = 1.6, 3 layers per octave: 6 Gaussian images and 5 DoG
images per octave) for its first two octaves: octave −1 (the image upsampled ×2 with linear interpolation,
σ_s = 1.6·2^(s/3) fine pixels) and octave 0 (the original grid). Every Gaussian image is one separable integer
filter applied to the *original* encrypted pixels, quantised to integers summing to 2^K (K = 12):

* octave −1, per output phase (even/odd fine row or column): the composite of OpenCV's ×2 linear interpolation and
  a Gaussian of σ_rel = √(σ_s² − 1) fine pixels (the upsampled image counts as blurred by 1, as in OpenCV),
  truncated at 4σ_rel (OpenCV's float kernels): 23 taps (R = 11) on the original grid;
* octave 0: octave −1's level 3 at the even fine samples (OpenCV's decimation) composed with the incremental
  Gaussians √(σ_s² − 1.6²), 37 taps (Rk = 18).

The DoG is G_{s+1} − G_s. Keypoints: OpenCV's rules on the decrypted DoG (3×3×3 extrema above 0.5·0.04/3,
quadratic refinement ≤ 5 steps, contrast 0.04/3, edge ratio 10, 5-pixel border), in original pixel coordinates.
The same integers computed in the clear (:func:`plain_dog`, :func:`plain_dog0`) are the *plaintext scale space*
the encrypted one must equal exactly. Octaves 1 and up are not computed (their 80-tap kernels would need a
40-pixel halo).

**Packing (tiles in slots).** A 2048-bit plaintext holds T = ⌊2047/b⌋ = 62 slots of b = 2K + 9 = 33 bits (a
Gaussian value is < 255·2^24 < 2^32; the DoG adds an offset 2^32 so every slot stays in [0, 2^33): no borrow
crosses a slot). The image is cut into ≤ T tiles (:func:`tiles_for`; 128×128: 6×10 tiles of 22×13 pixels), tile
u in slot u of every plaintext; ciphertext (i, c) holds the pixel (i, c) of every tile, the tiles extended by a
halo of P = 18 pixels (reflect-101 beyond the image, as OpenCV's blur). A filter tap is then a power of another
ciphertext of the same grid: no slot shifts, no headroom, every decrypted slot is an output. Both passes
(along the grid rows, then down its columns) compute each input's powers once for all the kernels' weights
(:func:`power_program`, an addition chain over the distinct weights) and one product per non-zero tap; the DoG
is E(G_{s+1})·E(G_s)⁻¹·E(offset). ``workers`` processes share the grid rows, then the grid columns.

**Cost** (128×128, 6×10 tiles of 22×13 px): (22 + 36)·(13 + 36) = 2,842 encryptions, 25·286 = 7,150 DoG
ciphertexts to decrypt (20·286 for octave −1's four phases, 5·286 for octave 0), ≈ 1.1 M multiplications mod n²
for the filters. The key holder encrypts through the factorisation (:meth:`PaillierSift.encrypt_int`: 2.4 ms
instead of phe's 8.8 ms) and decrypts with CRT (2.4 ms); the decryptions dominate.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

SIGMA, LAYERS, CONTRAST, EDGE, BORDER = 1.6, 3, 0.04, 10.0, 5
K_BITS, TRUNCATE = 12, 4.0


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
    """The filters of the 6 Gaussian images of octaves −1 and 0, and the slots they need."""

    k_bits: int = K_BITS
    slot_bits: int = 2 * K_BITS + 9
    filters: list = field(default_factory=list)     # octave −1, per level: (2, 2R + 1) int64, padded to the common R
    R: int = 0
    slots: int = 0                                   # T
    k0: list = field(default_factory=list)          # octave 0, per level: (2Rk + 1,) int64
    Rk: int = 0

    @property
    def offset(self) -> int:
        """Added to every DoG slot: |DoG| < 255·2^(2K) ≤ offset, so a slot holds [0, 2·offset)."""
        return 1 << (2 * self.k_bits + 8)

    @property
    def P(self) -> int:
        """The tiles' halo: the larger filter radius."""
        return max(self.R, self.Rk)

    @classmethod
    def make(cls, key_bits: int = 2048, k_bits: int = K_BITS) -> "Plan":
        slot_bits = 2 * k_bits + 9
        fs = [polyphase(s, k_bits) for s in level_sigmas()]
        R = max(r for r, _ in fs)
        filters = [np.pad(c, ((0, 0), (R - r, R - r))) for r, c in fs]
        slots = (key_bits - 1) // slot_bits
        k0 = octave0_kernels(k_bits)
        return cls(k_bits, slot_bits, filters, R, slots, k0, len(k0[0]) // 2)


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


# --------------------------------------------------------------------------- shared powers of one ciphertext

def _binary_steps(exps) -> list:
    """Square-and-multiply for a set of exponents sharing the squarings: steps (t, a, b) meaning x^t = x^a·x^b."""
    steps, have = [], {1}
    top = max(exps).bit_length()
    for i in range(1, top):
        steps.append((1 << i, 1 << (i - 1), 1 << (i - 1)))
        have.add(1 << i)
    for e in sorted(exps):
        acc = None
        for i in range(top):
            if e >> i & 1:
                if acc is not None and acc + (1 << i) not in have:
                    steps.append((acc + (1 << i), acc, 1 << i))
                    have.add(acc + (1 << i))
                acc = (1 << i) if acc is None else acc + (1 << i)
    return steps


_PROGRAMS: dict = {}


def power_program(exps, _depth: int = 0) -> tuple:
    """An addition chain computing x^e for every e in ``exps`` (positive integers) from x: steps (t, a, b), x^t =
    x^a·x^b, each one modular multiplication. The sorted exponents are reached one from the previous by their
    differences, whose powers come from the same construction (recursively), or by square-and-multiply when
    that is shorter. A Gaussian's 12-bit weights (59 distinct values over octave −1's 6 levels and 2 phases)
    cost 92 multiplications per ciphertext instead of 129 by square-and-multiply."""
    key = frozenset(int(e) for e in exps if e > 1)
    if key in _PROGRAMS:
        return _PROGRAMS[key]
    if not key:
        return ()
    best = _binary_steps(key)
    s = sorted(key)
    diffs = frozenset([s[0]] + [b - a for a, b in zip(s, s[1:])])
    if max(diffs) < max(key) and _depth < 12:
        steps = list(power_program(diffs, _depth + 1))
        have = {1} | {t for t, _, _ in steps}
        for a, b in zip(s, s[1:]):
            if b not in have:
                steps.append((b, a, b - a))
                have.add(b)
        if len(steps) < len(best):
            best = steps
    _PROGRAMS[key] = tuple(best)
    return _PROGRAMS[key]


def conv_cost(kernels) -> int:
    """Multiplications per input position (its powers) + per output position (the products) for ``kernels``."""
    exps = {int(v) for k in kernels for v in np.ravel(k) if v > 0}
    return len(power_program(exps)), sum(max(int(np.count_nonzero(k)) - 1, 0) for k in kernels)


# --------------------------------------------------------------------------- tiles

@dataclass
class Tiles:
    """The packing: the image is cut into A×B tiles of th×tw pixels, tile u = a·B + b in slot u of every
    plaintext; ciphertext (i, c) holds, in each slot, the pixel at (i, c) of its tile extended by a halo of P
    pixels each side (reflect-101 beyond the image as OpenCV's blur, zeros beyond the last tile): (th + 2P)·
    (tw + 2P) ciphertexts. Every filter tap is then one ciphertext to another at the same slots — no slot
    shifts, no slot left as headroom, every decrypted slot an output."""

    th: int
    tw: int
    A: int
    B: int
    P: int

    @property
    def grid(self) -> tuple[int, int]:
        return self.th + 2 * self.P, self.tw + 2 * self.P


def cost_model(H: int, W: int, plan: "Plan", th: int, tw: int, octaves=(-1, 0)) -> float:
    """Estimated cost of a th×tw tiling in modular multiplications mod n² (an encryption or a decryption ≈ 640 of
    them with 2048-bit keys, an inversion ≈ 5): the encryptions of the haloed grid, the two filter passes
    (powers per input, products per output), the DoG, the decryptions."""
    ENC = DEC = 640
    total = 0.0
    P = plan.P if 0 in octaves else plan.R
    total += ENC * (th + 2 * P) * (tw + 2 * P)
    if -1 in octaves:
        R = plan.R
        p1, o1 = conv_cost([f[psi] for f in plan.filters for psi in (0, 1)])
        total += (th + 2 * R) * (tw + 2 * R) * p1 + (th + 2 * R) * tw * o1
        total += (th + 2 * R) * tw * sum(2 * conv_cost([f[0], f[1]])[0] for f in plan.filters)
        total += th * tw * 2 * o1
        total += th * tw * 20 * (DEC + 7)
    if 0 in octaves:
        Rk = plan.Rk
        p0, o0 = conv_cost(plan.k0)
        total += (th + 2 * Rk) * (tw + 2 * Rk) * p0 + (th + 2 * Rk) * tw * o0
        total += (th + 2 * Rk) * tw * sum(conv_cost([k])[0] for k in plan.k0) + th * tw * o0
        total += th * tw * 5 * (DEC + 7)
    return total


def tiles_for(H: int, W: int, plan: "Plan", octaves=(-1, 0)) -> Tiles:
    """The cheapest tiling (:func:`cost_model`) with at most ``plan.slots`` tiles."""
    best = None
    for th in range(1, H + 1):
        A = -(-H // th)
        if -(-H // A) != th:
            continue                                  # the same A with a smaller th covers the image
        for tw in range(1, W + 1):
            B = -(-W // tw)
            if A * B > plan.slots or -(-W // B) != tw:
                continue
            c = cost_model(H, W, plan, th, tw, octaves)
            if best is None or c < best[0]:
                best = (c, th, tw, A, B)
    if best is None:
        raise ValueError(f"a {H}×{W} image does not fit {plan.slots} slots")
    _, th, tw, A, B = best
    return Tiles(th, tw, A, B, plan.P if 0 in octaves else plan.R)


# --------------------------------------------------------------------------- Paillier

class PaillierSift:
    """The key holder (keys, encryption, decryption) and the server's homomorphic scale space."""

    def __init__(self, key_bits: int = 2048, plan: "Plan | None" = None, keypair=None):
        import gmpy2
        from phe import paillier

        t0 = time.perf_counter()
        self.pk, self.sk = keypair or paillier.generate_paillier_keypair(n_length=key_bits)
        self.keygen_s = time.perf_counter() - t0
        self.gmpy2 = gmpy2
        mpz = gmpy2.mpz
        self.n = mpz(self.pk.n)
        self.n2 = self.n * self.n
        self.plan = plan or Plan.make(self.n.bit_length())
        if self.plan.slots * self.plan.slot_bits >= self.n.bit_length():
            raise ValueError("the packed slots do not fit the Paillier plaintext")
        # the key holder's CRT constants (never logged, never returned)
        p, q = mpz(self.sk.p), mpz(self.sk.q)
        self._p, self._q, self._p2, self._q2 = p, q, p * p, q * q
        self._hp, self._hq, self._pinv = mpz(self.sk.hp), mpz(self.sk.hq), mpz(self.sk.p_inverse)
        self._q2inv = gmpy2.invert(self._q2, self._p2)
        self.counts = {"encryptions": 0, "decryptions": 0}

    # ------------------------------------------------------------------ key holder
    def encrypt_int(self, m: int):
        """E(m) = (1 + m·n)·r^n mod n² with r^n drawn through the factorisation: r^n ≡ a_p^p (mod p²) and
        a_q^q (mod q²) for uniform a_p ∈ Z_p*, a_q ∈ Z_q* (r ↦ r^q mod p is a bijection of Z_p* since q ∤ p − 1,
        and r^(pq) mod p² depends only on r^q mod p) — the same distribution as phe's r^n mod n² for uniform r,
        two 1024-bit exponentiations mod p², q² (2.4 ms) instead of one 2048-bit exponentiation mod n² (8.8 ms)."""
        import secrets

        gm = self.gmpy2
        yp = gm.powmod(gm.mpz(secrets.randbelow(int(self._p) - 1) + 1), self._p, self._p2)
        yq = gm.powmod(gm.mpz(secrets.randbelow(int(self._q) - 1) + 1), self._q, self._q2)
        y = yq + self._q2 * ((yp - yq) * self._q2inv % self._p2)
        return (1 + gm.mpz(m) * self.n) % self.n2 * y % self.n2

    def decrypt_int(self, c) -> int:
        """phe's CRT decryption on gmpy2 integers."""
        gm = self.gmpy2
        mp = (gm.powmod(c, self._p - 1, self._p2) - 1) // self._p * self._hp % self._p
        mq = (gm.powmod(c, self._q - 1, self._q2) - 1) // self._q * self._hq % self._q
        return int(mp + (mq - mp) * self._pinv % self._q * self._p)

    def encrypt_image(self, img: np.ndarray, workers: int = 1, octaves=(-1, 0)) -> dict:
        """The image cut into tiles (:func:`tiles_for`), one tile per slot; ciphertexts {(i, c): E}, i, c over
        the haloed tile grid."""
        img = np.asarray(img, np.int64)
        H, W = img.shape
        t = tiles_for(H, W, self.plan, octaves)
        q = np.pad(img, t.P, mode="reflect")
        q = np.pad(q, ((0, t.A * t.th + 2 * t.P - q.shape[0]), (0, t.B * t.tw + 2 * t.P - q.shape[1])))
        gi, gc = t.grid
        # stack[i, c, u]: the pixel of tile u at (i, c)
        stack = np.zeros((gi, gc, t.A * t.B), np.int64)
        for a in range(t.A):
            for b in range(t.B):
                stack[:, :, a * t.B + b] = q[a * t.th:a * t.th + gi, b * t.tw:b * t.tw + gc]
        cts = _parallel(self._encrypt_rows, stack, _chunks(range(gi), workers), workers)
        self.counts["encryptions"] += len(cts)
        return {"cts": cts, "shape": (H, W), "tiles": t}

    def _encrypt_rows(self, stack, rows) -> dict:
        b = self.plan.slot_bits
        out = {}
        for i in rows:
            for c in range(stack.shape[1]):
                m = 0
                for u, v in enumerate(stack[i, c].tolist()):
                    m |= v << (b * u)
                out[(i, c)] = self.encrypt_int(m)
        return out

    def decrypt_dog(self, enc: dict, workers: int = 1) -> np.ndarray:
        """The key holder: decrypt and unpack octave −1's DoG, (5, 2H, 2W) int64 (scaled by 2^(2K))."""
        H, W = enc["shape"]
        out = np.zeros((len(self.plan.filters) - 1, 2 * H, 2 * W), np.int64)
        for (s, phi, psi, i, c), (ys, xs, v) in self._decrypt_all(enc, workers).items():
            out[s, 2 * ys[:, None] + phi, 2 * xs[None, :] + psi] = v
        return out

    def decrypt_dog0(self, enc: dict, workers: int = 1) -> np.ndarray:
        """Octave 0's DoG, (5, H, W) int64 (scaled by 2^(2K))."""
        H, W = enc["shape"]
        out = np.zeros((len(self.plan.k0) - 1, H, W), np.int64)
        for (s, i, c), (ys, xs, v) in self._decrypt_all(enc, workers).items():
            out[s, ys[:, None], xs[None, :]] = v
        return out

    def _decrypt_all(self, enc: dict, workers: int) -> dict:
        """Decrypt every DoG ciphertext; per key (…, i, c): the image rows and columns of tile position (i, c)
        inside the image (a·th + i, b·tw + c) and their values (slot a·B + b), the DoG offset removed."""
        t, (H, W) = enc["tiles"], enc["shape"]
        items = list(enc["dog"].items())
        plain = _parallel(self._decrypt_items, items, _chunks(range(len(items)), workers), workers)
        self.counts["decryptions"] += len(plain)
        b, mask = self.plan.slot_bits, (1 << self.plan.slot_bits) - 1
        out = {}
        for key, m in plain.items():
            i, c = key[-2:]
            ys, xs = np.arange(t.A) * t.th + i, np.arange(t.B) * t.tw + c
            v = np.array([(m >> (b * u)) & mask for u in range(t.A * t.B)], np.int64).reshape(t.A, t.B)
            ky, kx = ys < H, xs < W
            out[key] = (ys[ky], xs[kx], v[ky][:, kx] - self.plan.offset)
        return out

    def _decrypt_items(self, items, idx) -> dict:
        return {items[k][0]: self.decrypt_int(items[k][1]) for k in idx}

    # ------------------------------------------------------------------ server
    def _powers(self, x, prog) -> dict:
        n2 = self.n2
        v = {1: x}
        for t, a, b in prog:
            v[t] = v[a] * v[b] % n2
        return v

    def _conv(self, xs: list, kernels: list, n_out: int) -> list:
        """out[k][o] = Π_j xs[o + j]^kernels[k][j], o < n_out: every input's powers once (:func:`power_program`
        over all the kernels' weights), then one multiplication per non-zero tap."""
        n2 = self.n2
        prog = power_program({int(v) for k in kernels for v in k if v > 0})
        pw = [self._powers(x, prog) for x in xs]
        outs = []
        for k in kernels:
            nz = [(j, int(v)) for j, v in enumerate(k) if v]
            row = []
            for o in range(n_out):
                acc = None
                for j, v in nz:
                    y = pw[o + j][v]
                    acc = y if acc is None else acc * y % n2
                row.append(acc)
            outs.append(row)
        return outs

    def _offset_ct(self):
        b, off = self.plan.slot_bits, 0
        for u in range(self.plan.slots):
            off |= self.plan.offset << (b * u)
        return (1 + off * self.n) % self.n2       # E(offset) with no randomness: a public constant

    def dog(self, enc: dict, log=None, workers: int = 1) -> dict:
        """Octave −1's encrypted DoG from the encrypted image (additions and plaintext multiplications only):
        along the rows (grid rows shared among ``workers`` processes), then down the columns (grid columns
        shared), then G_{s+1} − G_s + offset. Keys (s, φ, ψ, i, c): fine pixel (2(a·th + i) + φ, 2(b·tw + c) + ψ)
        of tile (a, b)."""
        t, R = enc["tiles"], self.plan.R
        chans = [(s, psi, f[psi]) for s, f in enumerate(self.plan.filters) for psi in (0, 1)]
        rows = range(t.P - R, t.P + t.th + R)
        first = _parallel(self._rows_pass, (enc, chans, R), _chunks(rows, workers), workers)
        if log:
            log(f"octave -1: filtered along {len(rows)} grid rows ({len(first)} ciphertexts)")
        dog = _parallel(self._columns_m1, (first, t, R), _chunks(range(t.tw), workers), workers)
        if log:
            log(f"octave -1: down the columns, DoG ({len(dog)} ciphertexts)")
        return {"dog": dog, "shape": enc["shape"], "tiles": t}

    def dog0(self, enc: dict, log=None, workers: int = 1) -> dict:
        """Octave 0's encrypted DoG; keys (s, i, c): pixel (a·th + i, b·tw + c) of tile (a, b)."""
        t, Rk = enc["tiles"], self.plan.Rk
        chans = [(s, 0, k) for s, k in enumerate(self.plan.k0)]
        rows = range(t.P - Rk, t.P + t.th + Rk)
        first = _parallel(self._rows_pass, (enc, chans, Rk), _chunks(rows, workers), workers)
        dog = _parallel(self._columns_0, (first, t, Rk), _chunks(range(t.tw), workers), workers)
        if log:
            log(f"octave 0: {len(first)} filtered ciphertexts, {len(dog)} DoG ciphertexts")
        return {"dog": dog, "shape": enc["shape"], "tiles": t}

    def _rows_pass(self, job, rows) -> dict:
        enc, chans, R = job
        t = enc["tiles"]
        cts = enc["cts"]
        out = {}
        for i in rows:
            xs = [cts[(i, c)] for c in range(t.P - R, t.P + t.tw + R)]
            res = self._conv(xs, [k for _, _, k in chans], t.tw)
            for (s, psi, _), row in zip(chans, res):
                for c, v in enumerate(row):
                    out[(s, psi, i, c)] = v
        return out

    def _columns_m1(self, job, cols) -> dict:
        first, t, R = job
        gm, n2, off = self.gmpy2, self.n2, self._offset_ct()
        rows = range(t.P - R, t.P + t.th + R)
        dog = {}
        for c in cols:
            for psi in (0, 1):
                prev = None
                for s, f in enumerate(self.plan.filters):
                    g = self._conv([first[(s, psi, i, c)] for i in rows], [f[0], f[1]], t.th)
                    if prev is not None:
                        for phi in (0, 1):
                            for i in range(t.th):
                                dog[(s - 1, phi, psi, i, c)] = g[phi][i] * gm.invert(prev[phi][i], n2) % n2 * off % n2
                    prev = g
        return dog

    def _columns_0(self, job, cols) -> dict:
        first, t, Rk = job
        gm, n2, off = self.gmpy2, self.n2, self._offset_ct()
        rows = range(t.P - Rk, t.P + t.th + Rk)
        dog = {}
        for c in cols:
            prev = None
            for s, k in enumerate(self.plan.k0):
                (g,) = self._conv([first[(s, 0, i, c)] for i in rows], [k], t.th)
                if prev is not None:
                    for i in range(t.th):
                        dog[(s - 1, i, c)] = g[i] * gm.invert(prev[i], n2) % n2 * off % n2
                prev = g
        return dog


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
    carries it (pixel (a·th + i, b·tw + c) is slot a·B + b of ciphertext (P + i, P + c): byte 8·(a·B + b) + 3)."""
    H, W = enc["shape"]
    t = enc["tiles"]
    out = np.zeros((H, W), np.uint8)
    for y in range(H):
        a, i = divmod(y, t.th)
        for x in range(W):
            b, c = divmod(x, t.tw)
            out[y, x] = (int(enc["cts"][(t.P + i, t.P + c)]) >> (8 * (8 * (a * t.B + b) + 3))) & 255
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
    ``workers`` processes share the work (encryption, both filter passes, decryption). Octave 0 needs an image of
    at least 24×24 (its 37-tap kernels reflect once at the border). Times: key generation apart; ``total_s`` is
    encryption + homomorphic DoG + decryption, wall and CPU (this process and its workers)."""
    img = np.asarray(img, np.uint8)
    ps = PaillierSift(key_bits, keypair=keypair)
    plan = ps.plan
    if 0 in octaves and min(img.shape) < plan.Rk + 6:
        octaves = tuple(o for o in octaves if o != 0)
    c0, t0 = _cpu(), time.perf_counter()
    enc = ps.encrypt_image(img, workers, octaves)
    c1, t1 = _cpu(), time.perf_counter()
    dog_enc = ps.dog(enc, log, workers) if -1 in octaves else None
    dog_enc0 = ps.dog0(enc, log, workers) if 0 in octaves else None
    c2, t2 = _cpu(), time.perf_counter()
    dog = ps.decrypt_dog(dog_enc, workers) if dog_enc else None
    dog0 = ps.decrypt_dog0(dog_enc0, workers) if dog_enc0 else None
    c3, t3 = _cpu(), time.perf_counter()
    kp_enc, kp_ref, equal = [np.zeros((0, 3))], [np.zeros((0, 3))], True
    if dog is not None:
        ref = plain_dog(img, plan)
        equal = equal and bool(np.array_equal(dog, ref))
        kp_enc.append(detect(dog, plan))
        kp_ref.append(detect(ref, plan))
    if dog0 is not None:
        ref0 = plain_dog0(img, plan.k0)
        equal = equal and bool(np.array_equal(dog0, ref0))
        kp_enc.append(detect(dog0, plan, 0))
        kp_ref.append(detect(ref0, plan, 0))
    kp_enc, kp_ref = np.concatenate(kp_enc), np.concatenate(kp_ref)
    pos, octv, _ = opencv_keypoints(img)
    same = (coverage(kp_ref[:, :2], kp_enc, 0.5), coverage(kp_enc[:, :2], kp_ref, 0.5))
    cimg = ciphertext_image(enc, plan)
    t = enc["tiles"]
    res = {"shape": list(img.shape), "key_bits": key_bits, "workers": workers, "octaves": list(octaves),
           "slots": plan.slots, "slot_bits": plan.slot_bits, "k_bits": plan.k_bits,
           "radius": {"octave-1": plan.R, "octave0": plan.Rk},
           "tiles": {"rows": t.A, "columns": t.B, "tile": [t.th, t.tw], "halo": t.P, "grid": list(t.grid),
                     "slots_used": t.A * t.B},
           "encryptions": ps.counts["encryptions"], "decryptions": ps.counts["decryptions"],
           "dog_ciphertexts": sum(len(d["dog"]) for d in (dog_enc, dog_enc0) if d),
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
