"""The digital baseline over the radio link (``jscec baseline --link sim``).

Each image's baseline symbols (:func:`baseline.pipeline.prepare`, i.e. the transmit side of
:func:`baseline.pipeline.encode_image`) become the payload of one radio frame (:func:`radio.frame.build_frame`:
the link's preamble, Golay-protected header, pilots and postamble). Header: mode ``none`` (AES-CTR is
inside the payload), constellation per modulation, counter = frame number = the AES nonce,
image_index, height/width. The frames run in-process through GNU Radio::

    vector_source → TxChain (RRC) → ChannelBranch (AWGN at the SNR, optional CFO/SRO/delay) → RxChain
    (matched filter, FrameSync) → message_debug

and each received frame's equalised payload and pilot-estimated ``noise_var`` go to
:func:`baseline.pipeline.decode_symbols` (LLRs from the measured noise variance; the receiver has no
truth). The nonce is the received header's counter. Scoring is :func:`baseline.pipeline.simulate_snr`'s:
an image decodes only if every information bit is right; a lost frame (never detected, or header
CRC failure), an LDPC or codec failure, or an undetected error is scored as the mean image.

The pieces are shared with the radio and recording links (:mod:`link.apps.baseline_radio`): frames from
prepared images (:func:`baseline_frames`), the RX chain's frames (:func:`collect_frames`), and one
result row from received frames (:func:`score_frames`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from baseline.pipeline import (LDPC_ITERS, LinkBudget, Prepared, decode_symbols, link_budget, prepare, psnr_np,
                           ssim_np, summarise)
from link.sender import frame_stream
from radio.frame import FrameHeader, build_frame
from radio.pulse import PulseShape

#: Header constellation name of each baseline modulation.
CONSTELLATION = {"bpsk": "bpsk", "qpsk": "qpsk", "16qam": "qam16", "64qam": "qam64"}


@dataclass
class RadioOptions:
    """The simulated radio link: pulse shape, channel impairments (``flowgraphs.chains.Impairments`` fields)."""

    sps: int = 4
    rolloff: float = 0.25
    impairments: dict = field(default_factory=dict)
    equalizer_taps: int = 0

    @property
    def pulse(self) -> PulseShape:
        return PulseShape(self.sps, self.rolloff)

    def as_dict(self) -> dict:
        from flowgraphs.chains import Impairments
        return {"sps": self.sps, "rolloff": self.rolloff, "equalizer_taps": self.equalizer_taps,
                "impairments": Impairments(**self.impairments).to_dict()}


def baseline_frame(symbols: np.ndarray, budget: LinkBudget, frame: int, image_index: int, shape=(32, 32)) -> np.ndarray:
    """One radio frame (complex64, guard included) carrying one image's baseline symbols."""
    hdr = FrameHeader(counter=int(frame), mode="none", constellation=CONSTELLATION[budget.mod],
                      image_index=int(image_index), height=int(shape[0]), width=int(shape[1]))
    return build_frame(hdr, np.asarray(symbols, np.complex64))


def baseline_frames(prep: Prepared, first_frame: int = 0, shape=(32, 32)) -> list[np.ndarray]:
    """One frame per fitting image of ``prep`` (made with ``first_frame``); counter = AES nonce = first_frame + i."""
    return [baseline_frame(s, prep.budget, first_frame + i, i, shape)
            for s, i in zip(prep.symbols, np.nonzero(prep.fits)[0])]


def mean_scores(images: np.ndarray, mean_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image (PSNR, SSIM) of the mean image: the score of an undecodable image."""
    means = np.repeat(mean_u8[None], len(images), axis=0)
    return psnr_np(means, images), ssim_np(means, images)


def collect_frames(tb, rx_chain):
    """Store every frame PDU ``rx_chain`` publishes (connect before ``tb`` starts); returns a function that
    gives them as ``SyncedFrame`` / ``DroppedFrame`` in arrival order."""
    from gnuradio import blocks

    from flowgraphs.blocks import FRAMES_PORT
    from flowgraphs.pdu import pdu_to_frame

    dbg = blocks.message_debug()
    tb.msg_connect(rx_chain, FRAMES_PORT, dbg, "store")
    return lambda: [pdu_to_frame(dbg.get_message(i)) for i in range(dbg.num_messages())]


def radio_channel(stream: np.ndarray, snr_db: float, radio: RadioOptions = RadioOptions(), seed: int = 0
                  ) -> tuple[list, dict]:
    """Run ``stream`` (frame symbols) through TxChain → ChannelBranch → RxChain in-process.

    Returns (the RX chain's frames in arrival order: ``SyncedFrame`` or ``DroppedFrame``, sync stats).
    The flowgraph ends by itself (a vector source); the same seed gives the same frames.
    """
    from gnuradio import blocks, gr

    from flowgraphs.chains import ChannelBranch, Impairments, RxChain, TxChain

    pulse = radio.pulse
    tb = gr.top_block()
    src = blocks.vector_source_c(np.asarray(stream, np.complex64).tolist(), False)
    ch = ChannelBranch(float(snr_db), Impairments(**radio.impairments), pulse, seed=int(seed))
    rx = RxChain(pulse, equalizer_taps=radio.equalizer_taps)
    tb.connect(src, TxChain(pulse), ch, rx)
    frames = collect_frames(tb, rx)
    tb.run()
    return frames(), rx.sync.stats()


def receive_frames(received: list, codec, budget: LinkBudget, key: bytes, n_images: int, shape=(32, 32), *,
                   max_iter: int = LDPC_ITERS, method: str = "nms") -> dict:
    """Receive side of the link: decode every synchronised frame with :func:`decode_symbols`.

    Returns {"images": {image_index: uint8 image or None}, "info": {image_index: decoded info bits},
    "received", "dropped" (header failures the synchroniser reported), "rejected" (frames whose header
    does not match this baseline: constellation, length, index), "duplicates", "mer_db" and "snr_db" (pilot
    estimates per accepted frame)}.
    Only the first frame of an image index counts.
    """
    from radio.sync import SyncedFrame

    out = {"images": {}, "info": {}, "received": 0, "dropped": 0, "rejected": 0, "duplicates": 0, "mer_db": [],
           "snr_db": []}
    for f in received:
        if not isinstance(f, SyncedFrame):
            out["dropped"] += 1
            continue
        h = f.header
        if (h.mode != "none" or h.constellation != CONSTELLATION[budget.mod] or h.payload_len != budget.symbols
                or f.payload.size != budget.symbols or not 0 <= h.image_index < n_images):
            out["rejected"] += 1
            continue
        if h.image_index in out["images"]:
            out["duplicates"] += 1
            continue
        out["received"] += 1
        out["mer_db"].append(float(f.mer_db))
        out["snr_db"].append(float(f.snr_db))
        img, det = decode_symbols(f.payload, max(float(f.noise_var), 1e-9), codec, budget, key, h.counter,
                                  shape, max_iter=max_iter, method=method)
        out["images"][h.image_index] = img
        out["info"][h.image_index] = det["info_bits"]
    return out


def score_frames(prep: Prepared, received: list, frames_sent: int, codec, key: bytes, psnr_mean: np.ndarray,
                 ssim_mean: np.ndarray, snr_db, shape=(32, 32), max_iter: int = LDPC_ITERS, method: str = "nms",
                 stats: dict | None = None) -> dict:
    """One result row (like :func:`baseline.pipeline.simulate_snr`'s, plus frame counts and MER) from the RX chain's
    frames. ``snr_db`` is the channel's SNR as set; None (a radio or a recording): the mean pilot estimate of
    the accepted frames (None if there is none), flagged ``snr_estimated``."""
    n = prep.fits.size
    ok = np.zeros(n, bool)
    detected = undetected = 0
    rx = receive_frames(received, codec, prep.budget, key, n, shape, max_iter=max_iter, method=method)
    for j, i in enumerate(np.nonzero(prep.fits)[0]):
        if i not in rx["images"]:
            continue
        right = bool(np.array_equal(rx["info"][i], prep.info[j]))
        if rx["images"][i] is None:
            detected += 1
        elif not right:
            undetected += 1      # every parity check satisfied (and the codec decoded), wrong bits
        ok[i] = right and rx["images"][i] is not None
    psnr = np.where(ok, prep.psnr_ok, psnr_mean)
    ssim = np.where(ok, prep.ssim_ok, ssim_mean)
    mer = rx["mer_db"]
    estimated = snr_db is None
    if estimated:
        snrs = [v for v in rx["snr_db"] if np.isfinite(v)]
        snr_db = float(np.mean(snrs)) if snrs else None
    return {"snr_db": None if snr_db is None else float(snr_db), "snr_estimated": estimated,
            "psnr": float(psnr.mean()), "ssim": float(ssim.mean()),
            "undecodable": int(n - ok.sum()), "undecodable_fraction": float(1 - ok.mean()),
            "no_fit": int(n - prep.fits.sum()), "ldpc_detected_failures": detected, "undetected_errors": undetected,
            "images": n, "frames_sent": int(frames_sent), "frames_received": rx["received"],
            "frames_dropped": int(frames_sent) - rx["received"], "header_failures": rx["dropped"],
            "frames_rejected": rx["rejected"], "mer_db": float(np.mean(mer)) if mer else None,
            "sync": stats or {}}


def link_snr(prep: Prepared, frames: list[np.ndarray], snr_db: float, codec, key: bytes, psnr_mean: np.ndarray,
             ssim_mean: np.ndarray, radio: RadioOptions, seed: int, shape=(32, 32), max_iter: int = LDPC_ITERS,
             method: str = "nms") -> dict:
    """One SNR over the simulated radio link: :func:`score_frames` of what the channel delivered."""
    received, stats = radio_channel(frame_stream(frames), snr_db, radio, seed) if len(frames) else ([], {})
    return score_frames(prep, received, len(frames), codec, key, psnr_mean, ssim_mean, snr_db, shape, max_iter,
                        method, stats)


def simulate_link(images: np.ndarray, mean_u8: np.ndarray, codec, mod: str, rate: str, snrs_db, key: bytes, *,
                  k_symbols: int = 512, seed: int = 0, radio: RadioOptions = RadioOptions(),
                  max_iter: int = LDPC_ITERS, method: str = "nms", progress: bool = False) -> dict:
    """:func:`baseline.pipeline.simulate` over the GNU Radio simulated link (same result keys, plus frame counts).

    Frame numbers (AES nonces, header counters) are the image indices, as in ``simulate``; the channel
    noise of the i-th SNR is seeded with ``seed + i``.
    """
    budget = link_budget(mod, rate, k_symbols)
    prep = prepare(images, codec, budget, key, mean_u8, progress=progress)
    shape = images.shape[1:3]
    frames = baseline_frames(prep, 0, shape)
    psnr_mean, ssim_mean = mean_scores(images, mean_u8)
    rows = [link_snr(prep, frames, s, codec, key, psnr_mean, ssim_mean, radio, seed + i, shape, max_iter, method)
            for i, s in enumerate(snrs_db)]
    res = summarise(codec, prep, psnr_mean, ssim_mean, rows, max_iter=max_iter, method=method, seed=seed)
    res["radio"] = {**radio.as_dict(), "frame_symbols": int(frames[0].size) if frames else None}
    return res
