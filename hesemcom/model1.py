"""Model 1: source–channel separation — JPEG 2000 + AES-128-CTR + 802.11ad LDPC + QAM (the ``baseline``
package's chain), a ResNet classifying the decoded image at the receiver.

Channel budget: the same 98 complex channel uses per image as the JSCC models' 196 real features. With 98
symbols only 64-QAM carries a whole AES-padded JPEG 2000 payload (a 28×28 image needs ≥ ~20 bytes at the
lowest quality; 16-QAM 3/4 and 64-QAM 1/2 leave 16 bytes): 64-QAM with the rate-3/4 code (one shortened
codeword, 420 information bits, a 48-byte capacity). The gray image is coded as three equal channels
(the codec's fixed main header; the JPEG 2000 colour transform leaves zero chroma). An image whose information
bits are not all right after LDPC decoding is lost (the avalanche effect of AES and of the entropy-coded
stream): the receiver classifies the data set's mean image instead.
"""
from __future__ import annotations

import time

import numpy as np

from baseline.pipeline import channel_llrs, decode_llrs, link_budget, select_payload, transmit_payload
from baseline.source_codec import get_codec
from radio.channel import awgn, noise_variance

SYMBOLS = 98
MOD, RATE = "64qam", "3/4"


def prepare(images: np.ndarray, key: bytes, first_frame: int = 0) -> dict:
    """Transmit side of every image: decoded-if-received image, symbols, information bits, seconds per image."""
    codec, budget = get_codec("jpeg2000"), link_budget(MOD, RATE, SYMBOLS)
    mean = np.round(images.mean(0)).astype(np.uint8)
    recon = np.repeat(mean[None], len(images), 0)
    fits = np.zeros(len(images), bool)
    syms = np.zeros((len(images), budget.symbols), np.complex64)
    info = np.zeros((len(images), budget.info_bits), np.uint8)
    nbytes = np.zeros(len(images), int)
    t0 = time.perf_counter()
    for i, img in enumerate(images):
        rgb = np.repeat(img[..., None], 3, 2)
        sel = select_payload(rgb, codec, budget)
        if sel is None:
            continue
        s, b = transmit_payload(sel[1], budget, key, first_frame + i)
        dec = codec.decode(sel[1], img.shape)
        if dec is None:
            continue
        fits[i], syms[i], info[i], nbytes[i] = True, s, b, len(sel[1])
        recon[i] = np.round(dec.astype(float).mean(2)).astype(np.uint8)
    return {"budget": budget, "fits": fits, "symbols": syms, "info": info, "recon": recon, "mean": mean,
            "payload_bytes": nbytes, "encode_s_per_image": (time.perf_counter() - t0) / max(1, len(images))}


def receive(prep: dict, snr_db: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """(images the receiver classifies at this SNR, receive seconds per image): AWGN, LLRs, LDPC decoding;
    a lost image becomes the mean image."""
    t0 = time.perf_counter()
    budget = prep["budget"]
    y = awgn(prep["symbols"], snr_db, rng)
    bits, _ = decode_llrs(channel_llrs(y, noise_variance(snr_db), budget), budget)
    ok = prep["fits"] & (bits == prep["info"]).all(1)
    out = np.where(ok[:, None, None], prep["recon"], prep["mean"][None])
    return out, (time.perf_counter() - t0) / max(1, len(ok))


def coded_images(images: np.ndarray, workers: int = 2, key: bytes = bytes(16)) -> np.ndarray:
    """Every image as Model 1's receiver sees it when its frame arrives: JPEG 2000 at the 48-byte budget, decoded
    (the training set of Model 1's classifier adds these to the clean images)."""
    if workers <= 1 or len(images) < 16:
        return prepare(images, key)["recon"]
    from multiprocessing import get_context

    with get_context("fork").Pool(workers) as pool:
        parts = pool.map(_recon, np.array_split(images, 4 * workers))
    return np.concatenate(parts)


def _recon(chunk):
    return prepare(chunk, bytes(16))["recon"]
