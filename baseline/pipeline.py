"""Digital separation baseline (paper §V, Figs. 3–4): source code → AES-128-CTR → 802.11ad LDPC → Gray QAM.

Transmit side, one image per frame::

    image ─codec at the best quality that fits→ payload ─zero-pad to the AES block, fill the frame's
    capacity with zeros→ plaintext ─AES-128-CTR(key, nonce = frame)→ ciphertext ─LDPC (n = 672)→
    coded bits ─Gray QAM→ ≤ k complex symbols

Receive side: LLRs (exact, from :class:`baseline.gray_qam.GrayQam`) → LDPC decoding → AES-CTR → strip the
zero padding → rebuild the codec's container (:mod:`baseline.source_codec`) → image, or ``None``.

Channel budget (paper eq. 4): k = ρ·H·W·C complex symbols (ρ = 1/6 → k = 512 for 32×32×3), i.e.
B = k·log2(M) coded bits. They carry ⌊B/672⌋ whole codewords; if the B mod 672 bits left over exceed
the code's n − K parity bits, one more, *shortened* codeword carries the rest: K' = (B mod 672) − (n − K)
information bits with the other K − K' information bits fixed to zero and not sent (their LLR at the
receiver is +∞). So the coded rate never exceeds the nominal R and nothing exceeds the budget. The
information bits are filled from the start; their first ⌊info/128⌋·128 bits are the AES-encrypted
frame (the *capacity*); rate selection picks the highest codec quality whose payload, zero-padded to
a multiple of 128 bits (the AES block), fits the capacity (paper §V). The whole capacity is encrypted,
so the ciphertext does not reveal the payload length.

Failure semantics (issue item 6): after decoding, an image with any wrong information bit is
undecodable and scored as the dataset's mean image; so is an image whose payload fits at no quality.
At the receiver that cannot compare with the truth, :func:`decode_symbols` returns ``None`` when a
codeword fails its parity checks or the codec cannot decode; the simulation scores by the truth
(and counts undetected errors, wrong bits with every parity check satisfied, separately).

The two pure functions :func:`encode_image` and :func:`decode_symbols` are what a radio link calls;
:func:`simulate` runs the AWGN simulation (SNR = P̄/σ², eq. 2, unit-power constellations).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from crypto.aes_ctr import BLOCK_BYTES, AesCtr
from radio.channel import awgn, noise_variance
from jscec.errors import UserError
from baseline.gray_qam import GrayQam
from baseline.ldpc import ieee80211ad
from baseline.source_codec import SourceCodec, strip_padding

MODULATIONS = {"bpsk": 2, "qpsk": 4, "16qam": 16, "64qam": 64}
KNOWN_LLR = np.float32(1e4)   # LLR of a shortened (known-zero) information bit
LDPC_ITERS = 20


@dataclass(frozen=True)
class LinkBudget:
    """How one frame of ``k_symbols`` symbols is filled for a (modulation, code rate)."""

    mod: str
    rate: str
    k_symbols: int
    bits_per_symbol: int
    n: int                 # codeword length (672)
    k: int                 # information bits per full codeword
    full_codewords: int
    short_info: int        # information bits of the shortened last codeword (0: none)
    info_bits: int         # all information bits of the frame
    capacity_bytes: int    # AES-encrypted bytes: ⌊info_bits / 128⌋ · 16
    coded_bits: int        # bits sent
    symbols: int           # symbols sent (≤ k_symbols)

    @property
    def codewords(self) -> int:
        return self.full_codewords + (1 if self.short_info else 0)

    def as_dict(self) -> dict:
        return {**asdict(self), "codewords": self.codewords}


def channel_uses(rho: float, shape=(32, 32, 3)) -> int:
    """k = ρ·H·W·C complex channel uses (paper eq. 4)."""
    k = rho * int(np.prod(shape))
    if abs(k - round(k)) > 1e-9 or round(k) < 1:
        raise UserError(f"rho = {rho:g} does not give a whole number of channel uses for a {shape} image")
    return int(round(k))


def parse_rate(rate: str) -> str:
    rate = str(rate).strip()
    if rate not in ("1/2", "5/8", "3/4", "13/16"):
        raise UserError(f"bad code rate {rate!r}: choose 1/2 or 3/4 (also 5/8, 13/16)")
    return rate


def modem(mod: str) -> GrayQam:
    if mod not in MODULATIONS:
        raise UserError(f"unknown modulation {mod!r}: choose one of {', '.join(MODULATIONS)}")
    return GrayQam(MODULATIONS[mod])


def link_budget(mod: str, rate: str, k_symbols: int = 512) -> LinkBudget:
    """Rate selection's frame layout for k_symbols channel uses (see the module docstring)."""
    q = modem(mod)
    code = ieee80211ad(parse_rate(rate))
    budget = k_symbols * q.bits_per_symbol
    full, left = divmod(budget, code.n)
    parity = code.n - code.k
    short = max(0, left - parity)
    info = full * code.k + short
    coded = full * code.n + (short + parity if short else 0)
    return LinkBudget(mod, rate, k_symbols, q.bits_per_symbol, code.n, code.k, full, short, info,
                      (info // (8 * BLOCK_BYTES)) * BLOCK_BYTES, coded, -(-coded // q.bits_per_symbol))


def padded_length(payload_bytes: int) -> int:
    """Bytes after zero-padding to a whole number of 128-bit AES blocks."""
    return -(-payload_bytes // BLOCK_BYTES) * BLOCK_BYTES


def select_payload(image: np.ndarray, codec: SourceCodec, budget: LinkBudget) -> tuple[int, bytes] | None:
    """(quality, payload) of the highest quality whose AES-padded payload fits the frame, or None."""
    if budget.capacity_bytes == 0:
        return None
    # padded_length(p) ≤ capacity ⇔ p ≤ capacity (the capacity is a whole number of blocks)
    return codec.best_fit(image, budget.capacity_bytes)


def _bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))


def _codewords(budget: LinkBudget, info: np.ndarray) -> np.ndarray:
    """(…, codewords, k) messages from (…, info_bits) information bits (shortened bits = 0)."""
    lead = info.shape[:-1]
    msgs = np.zeros(lead + (budget.codewords, budget.k), dtype=np.uint8)
    nf = budget.full_codewords
    msgs[..., :nf, :] = info[..., :nf * budget.k].reshape(lead + (nf, budget.k))
    if budget.short_info:
        msgs[..., nf, :budget.short_info] = info[..., nf * budget.k:]
    return msgs


def _sent_positions(budget: LinkBudget) -> np.ndarray:
    """Indices, in the flattened (codewords × n) array, of the bits actually transmitted."""
    code = ieee80211ad(budget.rate)
    idx = [np.arange(budget.full_codewords * budget.n)]
    if budget.short_info:
        base = budget.full_codewords * budget.n
        info_sent = code.info_cols[:budget.short_info]
        idx.append(base + np.sort(np.concatenate([info_sent, code.parity_cols])))
    return np.concatenate(idx)


def transmit_payload(payload: bytes, budget: LinkBudget, key: bytes, frame: int,
                     cipher: AesCtr | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(complex64 symbols (budget.symbols,), information bits sent (budget.info_bits,))."""
    if len(payload) > budget.capacity_bytes:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the frame capacity of {budget.capacity_bytes}")
    plain = payload + bytes(budget.capacity_bytes - len(payload))
    ct = (cipher or AesCtr(key, refuse_nonce_reuse=False)).encrypt(frame, plain)
    info = np.zeros(budget.info_bits, dtype=np.uint8)
    info[:8 * len(ct)] = _bits(ct)
    code = ieee80211ad(budget.rate)
    coded = code.encode(_codewords(budget, info)).reshape(-1)[_sent_positions(budget)]
    m = budget.bits_per_symbol
    coded = np.concatenate([coded, np.zeros(budget.symbols * m - coded.size, np.uint8)])
    return modem(budget.mod).modulate(coded), info


def encode_image(image: np.ndarray, codec: SourceCodec, budget: LinkBudget, key: bytes, frame: int,
                 selected: tuple[int, bytes] | None = None) -> tuple[np.ndarray | None, dict]:
    """Transmit side: (symbols, metadata). Symbols are None when no quality fits the frame.

    ``selected`` = (quality, payload) from :func:`select_payload`, if already computed. The metadata
    (frame, quality, payload and padded sizes, the budget) holds nothing secret.
    """
    sel = selected if selected is not None else select_payload(image, codec, budget)
    meta = {"frame": int(frame), "codec": codec.name, "shape": list(image.shape[:2]), "budget": budget.as_dict()}
    if sel is None:
        return None, {**meta, "fits": False}
    quality, payload = sel
    symbols, _ = transmit_payload(payload, budget, key, frame)
    return symbols, {**meta, "fits": True, "quality": int(quality), "payload_bytes": len(payload),
                     "padded_bytes": padded_length(len(payload))}


def channel_llrs(y: np.ndarray, noise_var: float, budget: LinkBudget, method: str = "exact") -> np.ndarray:
    """Bit LLRs (…, coded_bits) of received symbols (…, symbols) (L = log P(0)/P(1))."""
    y = np.asarray(y)
    lead = y.shape[:-1]
    llr = modem(budget.mod).llr(y.reshape(-1), noise_var, method=method)
    return llr.reshape(lead + (budget.symbols * budget.bits_per_symbol,))[..., :budget.coded_bits]


def decode_llrs(llr: np.ndarray, budget: LinkBudget, max_iter: int = LDPC_ITERS, method: str = "nms"
                ) -> tuple[np.ndarray, np.ndarray]:
    """LDPC-decode coded-bit LLRs (…, coded_bits) → (information bits (…, info_bits), all checks ok (…,))."""
    llr = np.asarray(llr, dtype=np.float32)
    lead = llr.shape[:-1]
    code = ieee80211ad(budget.rate)
    full = np.full(lead + (budget.codewords * budget.n,), KNOWN_LLR, dtype=np.float32)
    full[..., _sent_positions(budget)] = llr
    res = code.decode(full.reshape(lead + (budget.codewords, budget.n)), max_iter=max_iter, method=method)
    msgs = code.message(res.bits)
    nf = budget.full_codewords
    parts = [msgs[..., :nf, :].reshape(lead + (nf * budget.k,))]
    if budget.short_info:
        parts.append(msgs[..., nf, :budget.short_info])
    # A bit whose final LLR is exactly 0 was never decided (an erasure, e.g. all-zero input LLRs make
    # the all-zero word "check"): such a codeword is a failure, not a decoded one.
    ok = res.ok & (res.llr != 0).all(axis=-1)
    return np.concatenate(parts, axis=-1), ok.all(axis=-1)


def payload_from_info(info: np.ndarray, budget: LinkBudget, key: bytes, frame: int) -> bytes:
    """Decrypt the capacity part of decoded information bits and strip the zero padding."""
    ct = np.packbits(np.asarray(info, dtype=np.uint8)[:8 * budget.capacity_bytes]).tobytes()
    return strip_padding(AesCtr(key, refuse_nonce_reuse=False).decrypt(frame, ct))


def decode_symbols(received: np.ndarray, noise_var: float, codec: SourceCodec, budget: LinkBudget, key: bytes,
                   frame: int, shape=(32, 32), *, are_llrs: bool = False, max_iter: int = LDPC_ITERS,
                   method: str = "nms") -> tuple[np.ndarray | None, dict]:
    """Receive side: (image uint8 H×W×3 or None, details) from received symbols or coded-bit LLRs.

    ``received`` is the frame's complex symbols (``budget.symbols`` of them; ``noise_var`` = σ²) or,
    with ``are_llrs``, its ``budget.coded_bits`` LLRs (``noise_var`` unused). None means undecodable:
    some codeword failed its parity checks, or the payload does not decode.
    """
    llr = np.asarray(received, dtype=np.float32) if are_llrs else channel_llrs(received, noise_var, budget)
    info, ok = decode_llrs(llr, budget, max_iter=max_iter, method=method)
    details = {"ldpc_ok": bool(ok), "info_bits": info}
    if not ok:
        return None, details
    payload = payload_from_info(info, budget, key, frame)
    if not payload:
        return None, details
    return codec.decode(payload, tuple(shape)), details


# --------------------------------------------------------------------------- simulation

@dataclass
class Prepared:
    """Per-image transmit-side results of one (codec, mod, rate), independent of the SNR."""

    budget: LinkBudget
    fits: np.ndarray          # (N,) bool
    quality: np.ndarray       # (N,) int, −1 if no fit
    payload_bytes: np.ndarray  # (N,) int
    symbols: np.ndarray       # (N_fit, symbols) complex64
    info: np.ndarray          # (N_fit, info_bits) uint8
    psnr_ok: np.ndarray       # (N,) quality when decoded (mean image where no fit)
    ssim_ok: np.ndarray


def prepare(images: np.ndarray, codec: SourceCodec, budget: LinkBudget, key: bytes, mean_img_u8: np.ndarray,
            first_frame: int = 0, progress: bool = False) -> Prepared:
    """Rate selection, encryption, coding and modulation of every image; the codec's own quality."""
    from tqdm import tqdm

    from models.metrics import psnr_u8, ssim_u8

    n = len(images)
    fits = np.zeros(n, bool)
    quality = np.full(n, -1)
    nbytes = np.zeros(n, int)
    syms, infos = [], []
    recon = np.repeat(mean_img_u8[None], n, axis=0).astype(np.float64)
    for i in tqdm(range(n), desc=f"encode {codec.name} {budget.mod} {budget.rate}", unit="img", leave=False,
                  disable=not progress, delay=1.0):
        sel = select_payload(images[i], codec, budget)
        if sel is None:
            continue
        q, payload = sel
        s, info = transmit_payload(payload, budget, key, first_frame + i)
        dec = codec.decode(payload, images.shape[1:3])
        if dec is None:
            raise RuntimeError(f"{codec.name}: an error-free payload did not decode")
        fits[i], quality[i], nbytes[i] = True, q, len(payload)
        syms.append(s)
        infos.append(info)
        recon[i] = dec
    psnr_ok, ssim_ok = psnr_u8(recon, images), ssim_u8(recon, images)
    m = budget.symbols
    return Prepared(budget, fits, quality, nbytes,
                    np.stack(syms) if syms else np.zeros((0, m), np.complex64),
                    np.stack(infos) if infos else np.zeros((0, budget.info_bits), np.uint8), psnr_ok, ssim_ok)


def simulate_snr(prep: Prepared, snr_db: float, rng: np.random.Generator, psnr_mean: np.ndarray,
                 ssim_mean: np.ndarray, max_iter: int = LDPC_ITERS, method: str = "nms", per_image: bool = False) -> dict:
    """One SNR: AWGN, exact LLRs, LDPC decoding; score failures as the mean image (``per_image``: also every
    image's ``decoded``, ``psnr`` and ``ssim`` as lists)."""
    ok = np.zeros(prep.fits.size, bool)
    detected = undetected = 0
    if len(prep.symbols):
        y = awgn(prep.symbols, snr_db, rng)
        llr = channel_llrs(y, noise_variance(snr_db), prep.budget)
        info, checks = decode_llrs(llr, prep.budget, max_iter=max_iter, method=method)
        right = (info == prep.info).all(axis=1)
        ok[np.nonzero(prep.fits)[0]] = right
        undetected = int(np.count_nonzero(checks & ~right))
        detected = int(np.count_nonzero(~checks))
    psnr = np.where(ok, prep.psnr_ok, psnr_mean)
    ssim = np.where(ok, prep.ssim_ok, ssim_mean)
    n = ok.size
    return {"snr_db": float(snr_db), "psnr": float(psnr.mean()), "ssim": float(ssim.mean()),
            "undecodable": int(n - ok.sum()), "undecodable_fraction": float(1 - ok.mean()),
            "no_fit": int(n - prep.fits.sum()), "ldpc_detected_failures": detected,
            "undetected_errors": undetected, "images": n,
            **({"per_image": {"decoded": ok.tolist(), "psnr": psnr.tolist(), "ssim": ssim.tolist()}}
               if per_image else {})}


def threshold_snr(rows: list[dict], key: str = "undecodable_fraction", level: float = 0.5,
                  floor: float = 0.0) -> float | None:
    """Lowest SNR above which the (interpolated) failure fraction stays ≤ level (None: never / always).

    ``floor`` is the failure fraction that never goes away (images that fit at no quality); the level
    is applied to the rest: (f − floor)/(1 − floor).
    """
    rows = sorted(rows, key=lambda r: r["snr_db"])
    s = np.array([r["snr_db"] for r in rows])
    f = np.array([r[key] for r in rows], float)
    if floor >= 1:
        return None
    f = (f - floor) / (1 - floor)
    above = np.nonzero(f > level)[0]
    if above.size == 0:
        return float(s[0]) if f.size else None
    i = above[-1]
    if i == len(s) - 1:
        return None
    # interpolate between s[i] (> level) and s[i+1] (≤ level)
    return float(s[i] + (f[i] - level) / (f[i] - f[i + 1]) * (s[i + 1] - s[i]))


def coded_error_curve(mod: str, rate: str, snrs_db, codewords: int = 400, seed: int = 0,
                      max_iter: int = LDPC_ITERS, method: str = "nms", short_info: int = 0) -> list[dict]:
    """BER and FER of one LDPC code with Gray QAM on AWGN (random codewords, exact LLRs).

    With ``short_info`` > 0 each row also has ``fer_short``: the FER of the code shortened to that many
    information bits as :func:`link_budget` uses it (the other information bits are zero, not sent,
    and known to the decoder) — it runs at a lower rate, so its waterfall comes earlier.
    """
    q = modem(mod)
    code = ieee80211ad(parse_rate(rate))
    rng = np.random.default_rng(seed)
    out = []
    for snr in snrs_db:
        u = rng.integers(0, 2, (codewords, code.k), dtype=np.uint8)
        c = code.encode(u)
        y = awgn(q.modulate(c.reshape(-1)), snr, rng)
        llr = q.llr(y, noise_variance(snr)).reshape(codewords, code.n)
        uncoded = float(np.mean((llr < 0) != c))
        res = code.decode(llr, max_iter=max_iter, method=method)
        err = code.message(res.bits) != u
        row = {"snr_db": float(snr), "ber": float(err.mean()), "fer": float(err.any(axis=1).mean()),
               "uncoded_ber": uncoded, "codewords": codewords}
        if short_info:
            row["fer_short"] = _shortened_fer(code, q, short_info, snr, codewords, rng, max_iter, method)
        out.append(row)
    return out


def _shortened_fer(code, q: GrayQam, short_info: int, snr: float, codewords: int, rng, max_iter: int,
                   method: str) -> float:
    u = np.zeros((codewords, code.k), dtype=np.uint8)
    u[:, :short_info] = rng.integers(0, 2, (codewords, short_info), dtype=np.uint8)
    sent = np.sort(np.concatenate([code.info_cols[:short_info], code.parity_cols]))
    bits = code.encode(u)[:, sent].reshape(-1)
    m = q.bits_per_symbol
    padded = np.concatenate([bits, np.zeros(-bits.size % m, np.uint8)])
    y = awgn(q.modulate(padded), snr, rng)
    llr = np.full((codewords, code.n), KNOWN_LLR, dtype=np.float32)
    llr[:, sent] = q.llr(y, noise_variance(snr))[:bits.size].reshape(codewords, sent.size)
    res = code.decode(llr, max_iter=max_iter, method=method)
    return float((code.message(res.bits) != u).any(axis=1).mean())


def predicted_threshold(curve: list[dict], codewords_per_image: int, level: float = 0.5,
                        shortened: bool = False) -> float | None:
    """SNR where the image failure predicted from the code's FER curve is ``level``.

    P(fail) = 1 − (1 − FER)^full · (1 − FER_short): ``codewords_per_image`` full codewords and, with
    ``shortened``, one shortened codeword (the curve's ``fer_short``).
    """
    rows = [{"snr_db": r["snr_db"],
             "p": 1 - (1 - r["fer"]) ** codewords_per_image * ((1 - r["fer_short"]) if shortened else 1.0)}
            for r in curve]
    return threshold_snr(rows, key="p", level=level)


def waterfall_snr(curve: list[dict], ber: float = 1e-4) -> float | None:
    """SNR where the decoded BER first falls to ``ber`` (log-interpolated)."""
    rows = sorted(curve, key=lambda r: r["snr_db"])
    for a, b in zip(rows, rows[1:]):
        if a["ber"] > ber >= b["ber"]:
            la = math.log10(a["ber"])
            lb = math.log10(b["ber"]) if b["ber"] > 0 else math.log10(ber) - 1
            return float(a["snr_db"] + (la - math.log10(ber)) / (la - lb) * (b["snr_db"] - a["snr_db"]))
    return None


def eval_images(data=None, count: int = 100, seed: int = 0, progress: bool = False):
    """(first ``count`` test-split images, mean image of the train split as uint8, dataset name)."""
    from models.datasets import load_dataset, mean_image, split_indices

    ds = load_dataset(data, progress=progress)
    if ds.images.shape[-1] != 3:
        raise UserError(f"the baseline codecs take colour images; {ds.name} has {ds.images.shape[-1]} channel(s)")
    split = split_indices(len(ds), seed=seed)
    if count < 1:
        raise UserError(f"--images must be at least 1, got {count}")
    test = ds.images[split["test"][:count]]
    mean_u8 = np.clip(np.rint(mean_image(ds.images[split["train"]]) * 255.0), 0, 255).astype(np.uint8)
    return test, mean_u8, ds.name


def simulate(images: np.ndarray, mean_u8: np.ndarray, codec: SourceCodec, mod: str, rate: str, snrs_db,
             key: bytes, *, k_symbols: int = 512, seed: int = 0, first_frame: int = 0, max_iter: int = LDPC_ITERS,
             method: str = "nms", progress: bool = False, per_image: bool = False) -> dict:
    """The baseline (codec, mod, rate) over AWGN at each SNR: PSNR/SSIM with failures as the mean image.

    Frame numbers (the AES nonces) are ``first_frame`` + the image index (reserve them from the key's
    :class:`crypto.nonce_state.CounterState`: never twice under one key). The noise comes from
    ``numpy.random.default_rng([seed, i_snr])``. The result holds no key material.
    """
    from models.metrics import psnr_u8, ssim_u8

    budget = link_budget(mod, rate, k_symbols)
    prep = prepare(images, codec, budget, key, mean_u8, first_frame=first_frame, progress=progress)
    means = np.repeat(mean_u8[None], len(images), axis=0)
    psnr_mean, ssim_mean = psnr_u8(means, images), ssim_u8(means, images)
    rows = [simulate_snr(prep, s, np.random.default_rng([seed, i]), psnr_mean, ssim_mean, max_iter, method,
                         per_image=per_image) for i, s in enumerate(snrs_db)]
    return summarise(codec, prep, psnr_mean, ssim_mean, rows, max_iter=max_iter, method=method, seed=seed)


def summarise(codec: SourceCodec, prep: Prepared, psnr_mean: np.ndarray, ssim_mean: np.ndarray, rows: list[dict], *,
              max_iter: int, method: str, seed: int) -> dict:
    """The result of one (codec, mod, rate) from its prepared images and its per-SNR rows."""
    budget = prep.budget
    no_fit = float(1 - prep.fits.mean())
    return {
        "codec": codec.name, "mod": budget.mod, "rate": budget.rate, "budget": budget.as_dict(),
        "images": int(prep.fits.size), "fits": int(prep.fits.sum()),
        "mean_payload_bytes": float(prep.payload_bytes[prep.fits].mean()) if prep.fits.any() else None,
        "mean_quality": float(prep.quality[prep.fits].mean()) if prep.fits.any() else None,
        "error_free": {"psnr": float(prep.psnr_ok.mean()), "ssim": float(prep.ssim_ok.mean())},
        "mean_image": {"psnr": float(psnr_mean.mean()), "ssim": float(ssim_mean.mean())},
        "threshold_snr_db": threshold_snr(rows, floor=no_fit),
        "ldpc": {"decoder": method, "max_iter": max_iter},
        "seed": seed, "results": rows,
    }
