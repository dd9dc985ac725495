"""Lattice security estimates for the LWE presets, in numpy (no Sage, no lattice-estimator).

Model
-----
Two attacks on an LWE instance (secret dimension n, at most ``m_max`` samples, modulus q, secret and
error of standard deviation σ_s and σ_e), each reduced to one BKZ-β call, the cost of which is given
by its SVP oracle in dimension β:

* **Primal uSVP** (Alkim, Ducas, Pöppelmann, Schwabe, "Post-quantum key exchange — a new hope",
  USENIX Security 2016, Sec. 6.3; the "2016 estimate", verified by Albrecht, Göpfert, Virdia,
  Wunderer, ASIACRYPT 2017). The secret is scaled to the error's size (Bai–Galbraith) and embedded
  with m samples in a lattice of dimension d = n + m + 1 and volume q^m (σ_e/σ_s)^n. Under the
  geometric series assumption (GSA) BKZ-β leaves Gram–Schmidt norms ‖b*_i‖ = δ_β^{d−2i} Vol^{1/d},
  δ_β = ((πβ)^{1/β} β/(2πe))^{1/(2(β−1))}, and the attack succeeds once the projection of the
  unique short vector onto the last β coordinates, ≈ σ_e √β, is shorter than ‖b*_{d−β}‖:

      σ_e √β ≤ δ_β^{2β−d−1} · Vol^{1/d}.

  β is the smallest block size for which some m ≤ m_max meets it.
* **Dual** (the model of the Kyber and Dilithium security scripts, pq-crystals/security-estimates,
  ``MLWE_security.py``): BKZ-β on the dual lattice {(x, y) ∈ Z^m × Z^n : xᵀA ≡ yᵀ mod q} (dimension
  d = m + n, volume q^n, the secret scaled as above) gives vectors of length ℓ = δ_β^{d−1} q^{n/d};
  ⟨x, b⟩ = ⟨y, s⟩ + ⟨x, e⟩ mod q is then Gaussian of width τ = ℓσ_e/q, and tells LWE from uniform
  with advantage ε = exp(−2π²τ²). A sieve returns 2^{0.2075β} such vectors per call, so
  R = max(1, ε^{−2} / 2^{0.2075β}) calls are needed: cost = SVP(β) · R.

Cost models
-----------
* **Core-SVP** (ADPS16): one SVP call in dimension β, 2^{0.292β} classically (sieving, Becker–Ducas–
  Gama–Laarhoven, SODA 2016) and 2^{0.265β} quantumly (Laarhoven's thesis, 2015). This is the
  conservative lower bound that NIST submissions (Kyber, NewHope, Frodo, Saber) report.
* **Operations** (``ops``, named ``"8d·2^(0.292β+16.4)"``): BKZ as 8 tours of d SVP calls, each
  2^{0.292β+16.4} operations (the "sieving, 8d calls" model of Albrecht, Curtis, Deo, Davidson,
  Player, Postlethwaite, Virdia, Wunderer, "Estimate all the {LWE, NTRU} schemes!", SCN 2018,
  Table 1, and the lattice-estimator's ``RC.BDGL16`` with its ``8·d`` repeat). The quantum column
  uses 2^{0.265β+16.4}.

Reference figures, checked by ``tests/test_security.py``:
* Kyber-512 (round 3: n = 512, q = 3329, secret and error centred binomial η = 3, σ = √1.5, 768
  samples): core-SVP 118 bits classical, 107 quantum, primal attack — Avanzi et al.,
  "CRYSTALS-Kyber Algorithm Specifications and Supporting Documentation (version 3.02)", 4 August
  2021, Section 5.1 / Table 4 (the estimate of its script, pq-crystals/security-estimates
  ``Kyber.py``). ``kyber512_reference()``.
* lp-192 and lp-256 under the operation-count model: the ranges ≈ 2^70–2^80 and ≈ 2^90–2^100 that
  the lattice-estimator gives for these sets (DESIGN.md: ≈ 2^74 and ≈ 2^93, "lattice-estimator,
  2026"; issue 20).

What the attacker faces here (crypto/cipher.py, eqs. 19–20): the public key P = U − AS gives, per
column of S, an LWE instance with secret S_j ∈ Z^{n2}, n1 samples (rows of A) and error U_j
(**key recovery**; all k columns share A, which helps a lattice attacker little: one reduced basis
serves every column). A ciphertext gives an instance with secret e1 ∈ Z^{n1}: in ``lwe-pk`` the
n2 values d = Aᵀe1 + e2 and, under a chosen plaintext, the k values c − z̄ = Pᵀe1 + e3 — n2 + k
samples (**message recovery**, the IND-CPA attacker's problem; P is taken as uniform, which is what
the key-recovery instance's hardness gives); in ``lwe`` only c, k samples. Since k may be as large
as the frame allows, the message-recovery instance is taken with unbounded samples (the best m is
finite). Secret, error and e1, e2, e3 are all D_{Z,s}, σ = s/√(2π). The preset's figure is the
smallest over both instances and both attacks. ``mask`` mode is AES-128-CTR, not LWE: its level is
AES's (128-bit key), and none of this applies to it.

Not modelled (each can lower the figures a few bits): hybrid and combinatorial attacks, the BKZ
simulator's tail (the GSA is used throughout), dimensions for free, lattice sieving's memory.
Core-SVP remains the conservative figure to quote.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

#: log2 cost of one SVP call in dimension β, per β (core-SVP).
CORE_SVP = {"classical": 0.292, "quantum": 0.265}
#: The operation-count model: BKZ = 8·d SVP calls of 2^(c·β + 16.4) operations (ACD+18).
OPS_MODEL = "8d·2^(0.292β+16.4)"
_OPS_CONST = 16.4
_NVEC = math.log2(math.sqrt(4 / 3))   # 0.2075: log2 of the vectors one sieve returns, per β
_BETA_MIN, _BETA_MAX = 40, 2000
#: Kyber-512 round 3 (Avanzi et al., spec v3.02, 2021, Table 4): core-SVP classical / quantum, primal.
KYBER512_PUBLISHED = {"classical": 118, "quantum": 107}
#: The issue's published ranges (lattice-estimator) for the paper's sets, log2 operations.
PUBLISHED_OPS_RANGE = {"lp-192": (70.0, 80.0), "lp-256": (90.0, 100.0)}
#: The level a preset must reach to be called 128-bit: core-SVP, classical.
TARGET_BITS = 128.0


@dataclass(frozen=True)
class LweInstance:
    """An LWE instance: secret dimension n, at most m_max samples (None: unbounded), modulus q,
    standard deviations of secret and error."""

    name: str
    n: int
    m_max: int | None
    q: int
    sigma_s: float
    sigma_e: float


@dataclass(frozen=True)
class AttackEstimate:
    attack: str            # "primal-usvp" or "dual"
    instance: str
    beta: int              # BKZ block size
    m: int                 # samples used
    d: int                 # lattice dimension
    core_svp_classical: float   # log2
    core_svp_quantum: float     # log2
    ops_classical: float   # log2 operations under OPS_MODEL
    ops_quantum: float     # same model with 0.265β
    repetitions: float = 0.0    # log2 R (dual)

    def as_dict(self) -> dict:
        """Plain values for JSON (an infinite cost, no block size up to 2000 succeeding, as None)."""
        return {k: ((round(v, 2) if math.isfinite(v) else None) if isinstance(v, float) else v)
                for k, v in asdict(self).items()}


def delta_bkz(beta):
    """Root-Hermite factor of BKZ-β (Chen's formula, as in ADPS16): ((πβ)^{1/β} β/(2πe))^{1/(2(β−1))}."""
    b = np.asarray(beta, dtype=np.float64)
    return ((np.pi * b) ** (1 / b) * b / (2 * np.pi * np.e)) ** (1 / (2 * (b - 1)))


_BETAS = np.arange(_BETA_MIN, _BETA_MAX + 1)
_LOG_DELTA = np.log(delta_bkz(_BETAS))


def _m_range(inst: LweInstance) -> np.ndarray:
    m_max = inst.m_max if inst.m_max is not None else 4 * inst.n + 2000
    return np.arange(1, m_max + 1)


def _ops(beta: int, d: int, c: float) -> float:
    return c * beta + _OPS_CONST + math.log2(8 * d)


def primal_usvp(inst: LweInstance) -> AttackEstimate:
    """Smallest β (over m ≤ m_max) with σ_e √β ≤ δ_β^{2β−d−1} Vol^{1/d}, d = n + m + 1 (ADPS16, GSA)."""
    ms = _m_range(inst)[:, None].astype(np.float64)                   # (M, 1)
    d = inst.n + ms + 1
    log_vol = ms * math.log(inst.q) + inst.n * math.log(inst.sigma_e / inst.sigma_s)
    b = _BETAS[None, :].astype(np.float64)                             # (1, B)
    lhs = math.log(inst.sigma_e) + 0.5 * np.log(b)
    rhs = (2 * b - d - 1) * _LOG_DELTA[None, :] + log_vol / d
    ok = (lhs <= rhs) & (b <= d)
    any_ok = ok.any(axis=1)
    if not any_ok.any():   # beyond every block size considered: reported as infinite cost
        inf = math.inf
        return AttackEstimate("primal-usvp", inst.name, _BETA_MAX + 1, 0, 0, inf, inf, inf, inf)
    first = np.where(any_ok, ok.argmax(axis=1), _BETAS.size)
    i = int(first.argmin())
    beta, m = int(_BETAS[first[i]]), int(ms[i, 0])
    dd = inst.n + m + 1
    return AttackEstimate("primal-usvp", inst.name, beta, m, dd, CORE_SVP["classical"] * beta,
                          CORE_SVP["quantum"] * beta, _ops(beta, dd, CORE_SVP["classical"]),
                          _ops(beta, dd, CORE_SVP["quantum"]))


def _dual_cost(inst: LweInstance, c: float):
    ms = _m_range(inst).astype(np.float64)
    n = inst.n
    d = n + ms
    # Scale the secret part of the dual lattice to balance ⟨y, s⟩ against ⟨x, e⟩ (σ_s = σ_e here: 1).
    log_vol = n * math.log(inst.q) + n * math.log(inst.sigma_e / inst.sigma_s)
    best = None
    for j, beta in enumerate(_BETAS):
        svp = c * beta
        if best is not None and svp > best[0]:
            break
        ok = d >= beta
        log_l = (d - 1) * _LOG_DELTA[j] + log_vol / d
        tau = np.exp(log_l) * inst.sigma_e / inst.q
        log2_eps = -2 * np.pi ** 2 * tau ** 2 / math.log(2)
        log2_r = np.maximum(0.0, -2 * log2_eps - _NVEC * beta)
        cost = np.where(ok, svp + log2_r, np.inf)
        i = int(cost.argmin())
        if best is None or cost[i] < best[0]:
            best = (float(cost[i]), int(beta), int(ms[i]), float(log2_r[i]))
    return best


def dual(inst: LweInstance) -> AttackEstimate:
    """Cheapest (β, m) of the dual distinguishing attack: SVP(β) + log2 R, R = max(1, ε^{−2}/2^{0.2075β})."""
    cost_c, beta, m, log2_r = _dual_cost(inst, CORE_SVP["classical"])
    cost_q, beta_q, m_q, log2_r_q = _dual_cost(inst, CORE_SVP["quantum"])
    d = inst.n + m
    return AttackEstimate("dual", inst.name, beta, m, d, cost_c, cost_q,
                          _ops(beta, d, CORE_SVP["classical"]) + log2_r,
                          _ops(beta_q, inst.n + m_q, CORE_SVP["quantum"]) + log2_r_q, log2_r)


def instances(params, k: int | None = None) -> list[LweInstance]:
    """The two LWE instances an attacker on the cipher faces (module docstring): key recovery from the
    public key (secret S_j ∈ Z^{n2}, n1 samples) and message recovery from a ciphertext (secret
    e1 ∈ Z^{n1}, n2 + k samples in ``lwe-pk``; k = None: unbounded)."""
    sigma = params.s / math.sqrt(2 * math.pi)
    return [LweInstance("key recovery (P = U - A S)", params.n2, params.n1, params.p, sigma, sigma),
            LweInstance("message recovery (d, c)", params.n1, None if k is None else params.n2 + k, params.p,
                        sigma, sigma)]


def estimate(params, k: int | None = None) -> dict:
    """Every attack on every instance of ``params`` (an ``LweParams``) and the smallest of each figure."""
    rows = [att(inst) for inst in instances(params, k) for att in (primal_usvp, dual)]
    best = min(rows, key=lambda r: r.core_svp_classical)
    summary = {f: round(min(getattr(r, f) for r in rows), 1)
               for f in ("core_svp_classical", "core_svp_quantum", "ops_classical", "ops_quantum")}
    return {"params": params.name, "n1": params.n1, "n2": params.n2, "q": params.p, "s": params.s,
            "sigma": round(params.s / math.sqrt(2 * math.pi), 4), **summary,
            "bits": summary["core_svp_classical"], "meets_128": summary["core_svp_classical"] >= TARGET_BITS,
            "weakest": f"{best.attack} on {best.instance}", "ops_model": OPS_MODEL,
            "attacks": [r.as_dict() for r in rows]}


_SUMMARIES: dict = {}


def summary(params) -> str:
    """One line for cards and logs: core-SVP classical/quantum and the operation count (cached)."""
    key = (params.name, params.n1, params.n2, params.p, params.s)
    if key not in _SUMMARIES:
        e = estimate(params)
        verdict = "meets" if e["meets_128"] else "well below" if e["bits"] < TARGET_BITS - 20 else "below"
        _SUMMARIES[key] = (f"core-SVP {e['core_svp_classical']:.0f} bits classical / {e['core_svp_quantum']:.0f} "
                           f"quantum, about 2^{e['ops_classical']:.0f} operations ({OPS_MODEL}); {verdict} the "
                           f"128-bit level")
    return _SUMMARIES[key]


def kyber512_reference() -> dict:
    """Kyber-512 round 3 through this estimator, beside the specification's published core-SVP."""
    sigma = math.sqrt(3 / 2)  # centred binomial, η1 = 3
    inst = LweInstance("Kyber-512 (round 3)", 512, 768, 3329, sigma, sigma)
    p, dl = primal_usvp(inst), dual(inst)
    return {"instance": asdict(inst), "primal": p.as_dict(), "dual": dl.as_dict(),
            "published": dict(KYBER512_PUBLISHED,
                              source="CRYSTALS-Kyber specification v3.02 (Avanzi et al., 2021), Table 4: primal")}


def smallest_s(n: int, p: int, target: float = TARGET_BITS, lo: float = 1.0, hi: float = 40.0) -> float:
    """The smallest Gaussian parameter s (to 0.01) with n1 = n2 = n and modulus p reaching ``target``
    core-SVP bits (classical); a design aid for presets."""
    from types import SimpleNamespace

    def bits(s):
        return estimate(SimpleNamespace(name="scan", n1=n, n2=n, p=p, s=s))["bits"]

    if bits(hi) < target:
        raise ValueError(f"n = {n} does not reach {target} bits with s ≤ {hi}")
    if bits(lo) >= target:
        return lo
    while hi - lo > 0.01:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if bits(mid) >= target else (mid, hi)
    return math.ceil(hi * 100) / 100


def report(presets, k: int | None = None) -> dict:
    """``jscec security estimate``: every preset's estimate, the Kyber-512 check and the published ranges."""
    kyber = kyber512_reference()
    return {"command": "security estimate", "model": {
                "primal": "uSVP, ADPS16 success condition under the GSA, d = n + m + 1",
                "dual": "short dual vectors by BKZ-b, advantage exp(-2 pi^2 tau^2), 2^(0.2075 b) vectors per sieve",
                "core_svp": "2^(0.292 b) classical, 2^(0.265 b) quantum", "ops": OPS_MODEL},
            "message_recovery_samples": "unbounded" if k is None else k,
            "presets": [estimate(p, k) for p in presets],
            "check": {"kyber512": kyber, "published_ops_range_log2": PUBLISHED_OPS_RANGE}}
