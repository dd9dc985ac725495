"""The learned digital baseline of remote classification (paper Sec. V-B, Fig. 9) over AWGN.

Transmit side, one image per frame, with the image baseline's pieces (:mod:`baseline.pipeline`)::

    x ─f→ z ─round→ z̄ ─range coder, the model's PMF (eq. 32)→ payload ─zero-fill the frame's
    capacity, AES-128-CTR (nonce = frame)→ ─802.11ad LDPC (n = 672)→ ─Gray QAM→ ≤ k symbols

with k = ρ·H·W·C channel uses (ρ = 1/6: 512 for a 32×32×3 image) and the frame layout of
:func:`baseline.pipeline.link_budget`. Receive side: exact LLRs → LDPC → AES-CTR → strip the zero
fill → range decoder → z̄ → Bob's classifier g'.

Failures are wrong answers (the cliff): an image whose payload exceeds the frame's capacity is
never sent, and a frame whose LDPC codewords do not all satisfy their parity checks is dropped.
A frame that passes the checks with wrong bits (undetected) is decoded as a receiver would —
decrypted, entropy decoded and classified — and scored on what comes out.

λ per (modulation, rate). Each trained model is one λ of eq. 32 and so one distribution of bits
per image. For each (modulation, rate) the model is chosen on the *validation* split: the one
with the highest accuracy when images whose payload does not fit count as wrong; that model is
then scored on the test split at every SNR. :func:`best_curve` is the envelope over the (modulation,
rate) pairs at each SNR — the digital baseline of Fig. 9.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from baseline.entropy_coder import FeatureCoder, length_report
from baseline.feature_compression import FeatureCompressionNet, load_feature_model
from baseline.pipeline import (LDPC_ITERS, channel_llrs, channel_uses, decode_llrs, link_budget, parse_rate,
                               payload_from_info, transmit_payload)
from jscec.errors import UserError
from models.images import to_tensor
from radio.channel import awgn, noise_variance

DEFAULT_MODS = ("bpsk", "qpsk", "16qam", "64qam")
DEFAULT_RATES = ("1/2", "3/4")
DEFAULT_SNRS = tuple(float(s) for s in range(0, 21))
SYSTEM = "learned feature compression (eqs. 31-32) + range coder + AES-128-CTR + 802.11ad LDPC + Gray QAM"


@dataclass
class Coded:
    """One model's coded features of a set of images (independent of the link)."""

    path: str
    lam: float
    payloads: list            # bytes per image
    estimates: np.ndarray     # −Σ log₂ P(z̄) per image
    predictions: np.ndarray   # Bob's class from the error-free features
    labels: np.ndarray
    clipped: int              # features outside the coder's range (clipped)

    @property
    def payload_bytes(self) -> np.ndarray:
        return np.array([len(p) for p in self.payloads], dtype=np.int64)

    def correct(self) -> np.ndarray:
        return self.predictions == self.labels


@torch.no_grad()
def code_images(model: FeatureCompressionNet, coder: FeatureCoder, images_u8: np.ndarray, labels: np.ndarray,
                path: str = "", lam: float = math.nan, batch_size: int = 200, check: bool = True) -> Coded:
    """Round, clip, entropy-code and classify every image; with ``check``, every payload is decoded
    again and must give back exactly the coded symbols."""
    payloads, estimates, preds = [], [], []
    clipped = 0
    for i in range(0, len(images_u8), batch_size):
        sym = model.symbols(to_tensor(images_u8[i:i + batch_size], "cpu")).numpy()
        kept = []
        for s in sym:
            s, out = coder.clip(s)
            clipped += out
            payload = coder.encode(s)
            if check and not np.array_equal(coder.decode(payload), s):
                raise RuntimeError("entropy decoding did not invert the encoding")
            payloads.append(payload)
            estimates.append(coder.estimate_bits(s))
            kept.append(s)
        preds.append(model.classify(torch.from_numpy(np.stack(kept))).argmax(1).numpy())
    return Coded(str(path), float(lam), payloads, np.array(estimates), np.concatenate(preds),
                 np.asarray(labels), clipped)


def classify_payload(model: FeatureCompressionNet, coder: FeatureCoder, payload: bytes) -> int | None:
    """Bob's class from a received payload (None if the range decoder fails)."""
    try:
        sym = coder.decode(payload)
    except Exception:  # noqa: BLE001 - a corrupted payload the decoder rejects is a failed frame
        return None
    with torch.no_grad():
        return int(model.classify(torch.from_numpy(sym[None])).argmax(1)[0])


def fit_accuracy(coded: Coded, capacity_bytes: int) -> float:
    """Accuracy with error-free delivery when a payload that does not fit counts as wrong."""
    return float(np.mean(coded.correct() & (coded.payload_bytes <= capacity_bytes)))


def choose_model(val: list[Coded], capacity_bytes: int) -> int:
    """Index of the model (λ) with the best validation :func:`fit_accuracy` (ties: the larger λ)."""
    scores = [(fit_accuracy(c, capacity_bytes), c.lam) for c in val]
    return max(range(len(val)), key=lambda i: scores[i])


def simulate_pair(model: FeatureCompressionNet, coder: FeatureCoder, coded: Coded, mod: str, rate: str,
                  snrs_db, key: bytes, *, k_symbols: int = 512, first_frame: int = 0, seed: int = 0,
                  max_iter: int = LDPC_ITERS, method: str = "nms") -> dict:
    """One (modulation, rate) over AWGN at each SNR: accuracy with every failure a wrong answer."""
    budget = link_budget(mod, rate, k_symbols)
    nbytes = coded.payload_bytes
    fits = nbytes <= budget.capacity_bytes
    sent = np.nonzero(fits)[0]
    frames = first_frame + sent
    syms, infos = [], []
    for i, f in zip(sent, frames):
        s, info = transmit_payload(coded.payloads[i], budget, key, int(f))
        syms.append(s)
        infos.append(info)
    syms = np.stack(syms) if syms else np.zeros((0, budget.symbols), np.complex64)
    infos = np.stack(infos) if infos else np.zeros((0, budget.info_bits), np.uint8)
    clean = coded.correct()
    rows = []
    for j, snr in enumerate(snrs_db):
        correct = np.zeros(len(nbytes), bool)
        failed = undetected = 0
        if len(sent):
            y = awgn(syms, snr, np.random.default_rng([seed, j]))
            info, ok = decode_llrs(channel_llrs(y, noise_variance(snr), budget), budget, max_iter=max_iter,
                                   method=method)
            right = (info == infos).all(axis=1)
            correct[sent] = ok & right & clean[sent]
            failed = int(np.count_nonzero(~ok))
            for r in np.nonzero(ok & ~right)[0]:   # passed every check with wrong bits
                undetected += 1
                i = sent[r]
                pred = classify_payload(model, coder, payload_from_info(info[r], budget, key, int(frames[r])))
                correct[i] = pred is not None and pred == coded.labels[i]
        rows.append({"snr_db": float(snr), "accuracy": float(correct.mean()), "frames_failed": failed,
                     "undetected_errors": undetected, "no_fit": int(len(nbytes) - len(sent)),
                     "images": int(len(nbytes))})
    return {"mod": mod, "rate": rate, "budget": budget.as_dict(), "model": coded.path, "lambda": coded.lam,
            "fits": int(fits.sum()), "images": int(len(nbytes)),
            "error_free_accuracy": float(np.mean(clean & fits)),
            "ldpc": {"decoder": method, "max_iter": max_iter}, "seed": seed,
            "threshold_snr_db": accuracy_threshold(rows, float(np.mean(clean & fits))), "results": rows}


def accuracy_threshold(rows: list[dict], error_free: float, level: float = 0.5) -> float | None:
    """Lowest SNR from which the accuracy stays ≥ ``level`` of the way from 0 to the error-free accuracy."""
    if error_free <= 0:
        return None
    rows = sorted(rows, key=lambda r: r["snr_db"])
    f = np.array([r["accuracy"] / error_free for r in rows])
    s = np.array([r["snr_db"] for r in rows])
    below = np.nonzero(f < level)[0]
    if below.size == 0:
        return float(s[0])
    i = below[-1]
    if i == len(s) - 1:
        return None
    return float(s[i] + (level - f[i]) / (f[i + 1] - f[i]) * (s[i + 1] - s[i]))


def best_curve(result) -> list[dict]:
    """Fig. 9's digital baseline: at each SNR the best (modulation, rate) pair's accuracy.

    ``result`` is the dict :func:`evaluate` returns, or the path of its JSON (``jscec baseline-classify
    eval --json``). Rows: ``snr_db``, ``accuracy``, ``mod``, ``rate``, ``lambda``.
    """
    if isinstance(result, (str, Path)):
        import json

        try:
            result = json.loads(Path(result).read_text())
        except FileNotFoundError:
            raise UserError(f"no such result file: {result}") from None
    pairs = result.get("pairs") or []
    if not pairs:
        raise UserError("the result holds no (modulation, rate) pair")
    best = {}
    for p in pairs:
        for r in p["results"]:
            cur = best.get(r["snr_db"])
            if cur is None or r["accuracy"] > cur["accuracy"]:
                best[r["snr_db"]] = {"snr_db": r["snr_db"], "accuracy": r["accuracy"], "mod": p["mod"],
                                     "rate": p["rate"], "lambda": p["lambda"]}
    return [best[s] for s in sorted(best)]


def _split_images(data, split_seed: int, count: int, val_count: int):
    from models.datasets import load_dataset, split_indices

    ds = load_dataset(data)
    if len(ds.classes) < 2:
        raise UserError(f"{ds.name} has no class labels: the classification baseline needs a labelled dataset")
    split = split_indices(len(ds), seed=split_seed)
    test, val = split["test"][:count], split["val"][:val_count]
    return ds, (ds.images[val], ds.labels[val]), (ds.images[test], ds.labels[test])


def evaluate(model_paths, *, mods=DEFAULT_MODS, rates=DEFAULT_RATES, snrs_db=DEFAULT_SNRS, images: int = 1000,
             val_images: int = 1000, rho: float = 1 / 6, data=None, split_seed: int = 0, seed: int = 0,
             max_iter: int = LDPC_ITERS, method: str = "nms", command: str = "", log=print) -> dict:
    """Code the validation and test images with every model (one per λ), pick a model per (mod, rate)
    on the validation split, and run each pair over AWGN on the test split; the JSON-ready result."""
    from crypto.aes_ctr import new_key

    if not model_paths:
        raise UserError("no feature compression model given (train one: jscec baseline-classify train)")
    if images < 1 or val_images < 1:
        raise UserError("--images and --val-images must be at least 1")
    rates = [parse_rate(r) for r in rates]
    ds, (vx, vy), (tx, ty) = _split_images(data, split_seed, images, val_images)
    k = channel_uses(rho, tx.shape[1:])
    shape = None
    models, val, test, summaries = [], [], [], []
    for path in model_paths:
        model, card = load_feature_model(path)
        if model.config.num_classes != len(ds.classes) or model.config.image_channels != tx.shape[-1]:
            raise UserError(f"{path} classifies {model.config.num_classes} classes of {model.config.image_channels}-"
                            f"channel images, not {ds.name}'s")
        lam = float(card.get("lambda", math.nan))
        shape = (model.config.width, tx.shape[1] // 4, tx.shape[2] // 4)
        coder = FeatureCoder.from_model(model, shape)
        log(f"coding {len(vx)} validation and {len(tx)} test images with {path} (λ = {lam:g})")
        v = code_images(model, coder, vx, vy, str(path), lam)
        t = code_images(model, coder, tx, ty, str(path), lam)
        models.append((model, coder))
        val.append(v)
        test.append(t)
        nbytes = t.payload_bytes
        summaries.append({"model": str(path), "lambda": lam, "val_accuracy_card": card.get("validation", {}).get("accuracy"),
                          "test_accuracy_error_free": float(t.correct().mean()),
                          "bits_per_image": {"estimate_mean": float(t.estimates.mean()),
                                             "estimate_p95": float(np.percentile(t.estimates, 95)),
                                             "payload_bytes_mean": float(nbytes.mean()),
                                             "payload_bytes_max": int(nbytes.max())},
                          "coded_length": length_report(t.estimates, t.payloads),
                          "clipped_features": t.clipped, "symbol_range": [int(coder.lo.min()), int(coder.hi.max())]})
    key = new_key()   # a fresh AES key per run, never stored; frame numbers unique within the run
    pairs = []
    for n, (mod, rate) in enumerate((m, r) for m in mods for r in rates):
        budget = link_budget(mod, rate, k)
        i = choose_model(val, budget.capacity_bytes)
        log(f"{mod} {rate}: capacity {budget.capacity_bytes} bytes → λ = {val[i].lam:g} "
            f"(validation accuracy with fit {100 * fit_accuracy(val[i], budget.capacity_bytes):.1f} %)")
        res = simulate_pair(*models[i], test[i], mod, rate, snrs_db, key, k_symbols=k, first_frame=n * len(tx),
                            seed=seed, max_iter=max_iter, method=method)
        res["selection"] = {"split": "val", "images": len(vx),
                            "fit_accuracy": {str(c.lam): fit_accuracy(c, budget.capacity_bytes) for c in val}}
        pairs.append(res)
    result = {"task": "classify", "system": SYSTEM, "dataset": ds.name, "split_seed": split_seed,
              "images": int(len(tx)), "val_images": int(len(vx)), "rho": rho, "k_symbols": k,
              "feature_shape": list(shape), "random_guess": 1 / len(ds.classes), "models": summaries,
              "pairs": pairs, "command": command,
              "note": "a payload that does not fit, or a frame failing its LDPC parity checks, is a wrong answer"}
    result["best"] = best_curve(result)
    return result


def table(result: dict) -> str:
    """What ``jscec baseline-classify eval`` prints."""
    lines = [f"{result['system']}; {result['dataset']}, {result['images']} test images, k = {result['k_symbols']} "
             f"channel uses, features {'x'.join(map(str, result['feature_shape']))}"]
    lines.append(f"  {'λ':>8} {'acc %':>6} {'bits/img':>9} {'p95':>6} {'coded/est':>9} {'sent/est':>8} {'clipped':>7}")
    for m in result["models"]:
        b, c = m["bits_per_image"], m["coded_length"]
        lines.append(f"  {m['lambda']:>8g} {100 * m['test_accuracy_error_free']:>6.2f} {b['estimate_mean']:>9.1f} "
                     f"{b['estimate_p95']:>6.0f} {c['coded_over_estimate']:>9.4f} {c['payload_over_estimate']:>8.4f} "
                     f"{m['clipped_features']:>7}")
    snrs = [r["snr_db"] for r in result["pairs"][0]["results"]]
    head = f"  {'mod rate':<11} {'cap B':>5} {'λ':>7} {'fit':>5} {'clean':>6} |" + "".join(f"{s:>6g}" for s in snrs)
    lines += ["  accuracy % against SNR (dB); failures count as wrong", head]
    for p in result["pairs"]:
        lines.append(f"  {p['mod'] + ' ' + p['rate']:<11} {p['budget']['capacity_bytes']:>5} {p['lambda']:>7g} "
                     f"{p['fits']:>5} {100 * p['error_free_accuracy']:>6.1f} |"
                     + "".join(f"{100 * r['accuracy']:>6.1f}" for r in p["results"]))
    lines.append(f"  {'best':<11} {'':>5} {'':>7} {'':>5} {'':>6} |"
                 + "".join(f"{100 * r['accuracy']:>6.1f}" for r in result["best"]))
    lines.append(f"  random guess {100 * result['random_guess']:.1f} %")
    return "\n".join(lines)
