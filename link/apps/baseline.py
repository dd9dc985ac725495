"""The digital baseline as an application over the links (``jscec baseline --link sim|ota|replay``).

Each image's baseline symbols (:func:`baseline.pipeline.prepare`, i.e. the transmit side of
:func:`baseline.pipeline.encode_image`) become the payload of one radio frame (:func:`radio.frame.build_frame`:
the link's preamble, Golay-protected header, pilots and postamble). Header: mode ``none`` (AES-CTR is
inside the payload), constellation per modulation, counter = frame number = the AES nonce,
image_index, height/width. :class:`BaselineApp` carries the frames over any link through the one runner
(:func:`link.runner.run`) and collects Bob's RX chain's frames in-process; each received frame's equalised
payload and pilot-estimated ``noise_var`` go to :func:`baseline.pipeline.decode_symbols` (LLRs from the
measured noise variance; the receiver has no truth). The nonce is the received header's counter.

Scoring (:func:`score_frames`) is :func:`baseline.pipeline.simulate_snr`'s: an image decodes only if every
information bit is right; a lost frame (never detected, or header CRC failure), an LDPC or codec failure,
or an undetected error is scored as the mean image.

* :func:`simulate_link` — ``sim``: one transmission per SNR through the simulated channel (the SNR is set);
* :func:`run_ota` — ``ota``: one transmission per (modulation, rate) through radios or the CI fakes, optionally
  recorded (:mod:`link.apps.baseline_recording`); the SNR is measured from the pilots;
* :func:`run_replay` — ``replay``: a recording through the same RX chain, scored as the live run was.

Frame numbers (header counters = AES nonces) start at a number drawn from ``--seed`` over radios, as
``jscec ota``'s do, and at 0 in the simulation (as ``--link awgn``'s image indices).
"""
from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from baseline.pipeline import LDPC_ITERS, LinkBudget, Prepared, decode_symbols, link_budget, prepare, summarise
from jscec.errors import UserError
from link.sender import frame_stream
from radio.frame import FrameHeader, build_frame
from radio.impairments import Impairments
from radio.pulse import PulseShape

#: Header constellation name of each baseline modulation.
CONSTELLATION = {"bpsk": "bpsk", "qpsk": "qpsk", "16qam": "qam16", "64qam": "qam64"}


@dataclass
class FrameTransmission:
    """Frames one transmission sends (or a recording holds): what the runner needs of a baseline run."""

    pulse: PulseShape
    frames: list | None = None          # None: read from a recording
    frames_sent: int = 0
    ref_path: Path | None = None        # the truth file a recording keeps beside it
    meta: dict | None = None            # the recording's jscec: fields
    key_path: Path | None = None        # never a cipher key file: the AES key is saved by the caller

    @property
    def stream(self):
        return None if self.frames is None else frame_stream(self.frames)


class _Collected:
    """The in-process receiver: every frame of Bob's RX chain (:meth:`link.links.Link.collect`)."""

    def __init__(self, frames):
        self.frames = frames

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class BaselineApp:
    """The baseline's frames over any link; Bob's frames collected in this process (no key leaves it)."""

    name = "baseline"

    def __init__(self, tx: FrameTransmission | None = None, read_recording=None):
        """``tx``: the transmission of a sending link; ``read_recording(info) -> FrameTransmission`` for replay."""
        self.tx = tx
        self.read_recording = read_recording

    def transmission(self, link, out_dir):
        return self.tx if link.sends else self.read_recording(link.info)

    def roles(self, tx) -> tuple:
        return ("bob",)

    def outputs(self, roles) -> dict:
        return {r: None for r in roles}

    def receivers(self, tx, tb, link, outputs, out_dir) -> _Collected:
        return _Collected(link.collect(tb, "bob"))

    def finish(self, rx: _Collected, tx, tb, link) -> dict:
        return {"frames": rx.frames(), "sync": tb.sync_stats()["bob"]}

    def recording_fields(self, tx: FrameTransmission, sample_rate: float) -> dict:
        return {"symbol_rate": sample_rate / tx.pulse.sps, **tx.meta}

    def report(self, tx, results: dict, fields: dict, recording, out_dir) -> dict:
        return {**results, "link": fields, "recording": recording}


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
    from models.metrics import psnr_u8, ssim_u8

    return psnr_u8(means, images), ssim_u8(means, images)


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


def carry_frames(frames: list[np.ndarray], link, *, pulse: PulseShape = PulseShape(), equalizer_taps: int = 0,
                 timeout_s: float = 900.0, recorder=None, meta: dict | None = None, truth_path: Path | None = None,
                 log=print) -> dict:
    """Send ``frames`` over ``link`` through the runner; returns {"frames": Bob's RX chain's frames in arrival order
    (``SyncedFrame`` / ``DroppedFrame``), "sync": its stats, "link": the link's report fields, "recording"}.
    With a ``recorder`` (:class:`link.capture.Recorder`), ``meta`` are the recording's ``jscec:`` fields
    (:func:`link.apps.baseline_recording.recording_meta`) and ``truth_path`` the reference it keeps beside it."""
    from link.runner import RunOptions, run

    tx = FrameTransmission(pulse, frames, len(frames), ref_path=truth_path, meta=meta)
    return run(BaselineApp(tx), link, RunOptions(out_dir=None, equalizer_taps=equalizer_taps, timeout_s=timeout_s),
               recorder=recorder, log=log)


def sim_link(snr_db: float, impairments: Impairments = Impairments(), seed: int = 0):
    """The simulated link of one baseline transmission: Bob's branch only, its noise seeded with ``seed``."""
    from link.links.sim import SimLink, SimOptions

    return SimLink(SimOptions(snr_b_db=float(snr_db), bob=impairments, noise_seeds={"bob": int(seed)}))


def link_snr(prep: Prepared, frames: list[np.ndarray], snr_db: float, codec, key: bytes, psnr_mean: np.ndarray,
             ssim_mean: np.ndarray, *, impairments: Impairments, pulse: PulseShape, equalizer_taps: int, seed: int,
             shape=(32, 32), max_iter: int = LDPC_ITERS, method: str = "nms") -> dict:
    """One SNR over the simulated radio link: :func:`score_frames` of what the channel delivered."""
    got = (carry_frames(frames, sim_link(snr_db, impairments, seed), pulse=pulse, equalizer_taps=equalizer_taps)
           if len(frames) else {"frames": [], "sync": {}})
    return score_frames(prep, got["frames"], len(frames), codec, key, psnr_mean, ssim_mean, snr_db, shape, max_iter,
                        method, got["sync"])


def simulate_link(images: np.ndarray, mean_u8: np.ndarray, codec, mod: str, rate: str, snrs_db, key: bytes, *,
                  k_symbols: int = 512, seed: int = 0, first_frame: int = 0, impairments: Impairments = Impairments(),
                  pulse: PulseShape = PulseShape(), equalizer_taps: int = 0, max_iter: int = LDPC_ITERS,
                  method: str = "nms", progress: bool = False) -> dict:
    """:func:`baseline.pipeline.simulate` over the GNU Radio simulated link (same result keys, plus frame counts).

    Frame numbers (AES nonces, header counters) are ``first_frame`` + the image index, as in ``simulate``;
    the channel noise of the i-th SNR is seeded with ``seed + i``.
    """
    budget = link_budget(mod, rate, k_symbols)
    prep = prepare(images, codec, budget, key, mean_u8, first_frame=first_frame, progress=progress)
    shape = images.shape[1:3]
    frames = baseline_frames(prep, first_frame, shape)
    psnr_mean, ssim_mean = mean_scores(images, mean_u8)
    rows = [link_snr(prep, frames, s, codec, key, psnr_mean, ssim_mean, impairments=impairments, pulse=pulse,
                     equalizer_taps=equalizer_taps, seed=seed + i, shape=shape, max_iter=max_iter, method=method)
            for i, s in enumerate(snrs_db)]
    res = summarise(codec, prep, psnr_mean, ssim_mean, rows, max_iter=max_iter, method=method, seed=seed)
    res["radio"] = {"sps": pulse.sps, "rolloff": pulse.rolloff, "equalizer_taps": equalizer_taps,
                    "impairments": impairments.to_dict(), "frame_symbols": int(frames[0].size) if frames else None}
    return res


def _result(codec, prep: Prepared, images, mean_u8, row: dict, max_iter: int, method: str, seed) -> dict:
    """:func:`baseline.pipeline.summarise` of one measured row (no SNR sweep, so no threshold)."""
    psnr_mean, ssim_mean = mean_scores(images, mean_u8)
    res = summarise(codec, prep, psnr_mean, ssim_mean, [], max_iter=max_iter, method=method, seed=seed)
    res["results"] = [row]
    return res


def run_ota(images: np.ndarray, mean_u8: np.ndarray, codec, mod: str, rate: str, key: bytes, radio, *,
            pulse: PulseShape = PulseShape(), equalizer_taps: int = 0, seed: int = 0, first_frame: int = 0,
            k_symbols: int = 512,
            record: str | None = None, key_file: str | None = None, source: str = "", max_iter: int = LDPC_ITERS,
            method: str = "nms", timeout_s: float = 600.0, progress: bool = False, log=print) -> dict:
    """One (codec, mod, rate) over the radios ``radio`` (:class:`link.links.ota.RadioOptions`): a result like
    :func:`simulate_link`'s with one measured row, plus ``radio``, ``devices`` and (``record``) ``recording``
    (with ``key_file``: the given one, or where the fresh ``key`` was saved). Frame numbers (AES nonces) are
    ``first_frame`` + the image index: reserve them from the key's counter state."""
    from link.apps.baseline_recording import recording_meta, save_truth, store_key
    from link.capture import Recorder
    from link.links.ota import OtaLink

    radio = dataclasses.replace(radio, eve=None)   # the baseline has no Eve
    budget = link_budget(mod, rate, k_symbols)
    first = int(first_frame)
    prep = prepare(images, codec, budget, key, mean_u8, first_frame=first, progress=progress)
    shape = images.shape[1:3]
    frames = baseline_frames(prep, first, shape)
    about = {"link": "ota", "tx": radio.tx, "bob": radio.bob, "center_freq_hz": radio.freq,
             "sample_rate_hz": radio.rate, "rf_bandwidth_hz": radio.bw or radio.rate, "tx_gain_db": radio.tx_gain,
             "rx_gain_db": radio.rx_gain, "agc": radio.agc, "buffer_size": radio.buffer, "tx_level": radio.tx_level,
             "sps": pulse.sps, "rolloff": pulse.rolloff, "equalizer_taps": equalizer_taps, "first_frame": first,
             "frame_symbols": int(frames[0].size) if frames else None}
    if not frames:
        if record:
            raise UserError(f"no image fits a {mod} {rate} frame at any {codec.name} quality: nothing to record")
        log(f"no image fits a {mod} {rate} frame at any {codec.name} quality: nothing sent")
        got = {"frames": [], "sync": {}, "link": {"devices": {}}, "recording": None}
    else:
        with tempfile.TemporaryDirectory() as tmp:
            recorder = meta = truth = None
            if record:
                recorder = Recorder(record, sample_rate=radio.rate, center_freq=radio.freq)
                meta = recording_meta(codec, prep, key, mod=mod, rate=rate, k_symbols=k_symbols, shape=shape,
                                      first=first, frames=len(frames), images=len(images), source=source, pulse=pulse)
                truth = save_truth(Path(tmp) / "reference.npz", images, mean_u8, prep)
            got = carry_frames(frames, OtaLink(radio), pulse=pulse, equalizer_taps=equalizer_taps,
                               timeout_s=timeout_s, recorder=recorder, meta=meta, truth_path=truth, log=log)
    psnr_mean, ssim_mean = mean_scores(images, mean_u8)
    row = score_frames(prep, got["frames"], len(frames), codec, key, psnr_mean, ssim_mean, None, shape, max_iter,
                       method, got["sync"])
    res = _result(codec, prep, images, mean_u8, row, max_iter, method, seed)
    res["radio"] = {**about, **{k: got["link"][k] for k in ("seconds", "drained", "samples_transmitted")
                                if k in got["link"]}}
    res["devices"] = got["link"]["devices"]
    if res["radio"].get("tx_gain_db") is None:   # no --tx-gain: the TX radio's default, as it reports it
        res["radio"]["tx_gain_db"] = ((res["devices"].get(radio.tx) or {}).get("description") or {}).get("tx_gain_db")
    if got["recording"] is not None:
        res["recording"] = {**got["recording"], "key_file": str(key_file or store_key(record, key))}
    return res


def run_replay(recording: str, key_file: str, *, equalizer_taps: int = 0, max_iter: int = LDPC_ITERS,
               method: str = "nms", timeout_s: float = 900.0, log=print) -> dict:
    """A baseline recording through the RX chain and the decoder: the result of the run that recorded it,
    plus ``recording``. Deterministic: the same recording gives the same result."""
    from link.apps.baseline_recording import read_recording
    from link.links.replay import ReplayLink, ReplayOptions
    from link.runner import RunOptions, run
    from radio.sync import SyncedFrame

    link = ReplayLink(ReplayOptions(recording))
    read = {}

    def transmission(info):
        read["rec"] = rec = read_recording(info, key_file)
        return FrameTransmission(rec.pulse, None, rec.frames_sent, rec.ref_path)

    got = run(BaselineApp(read_recording=transmission), link,
              RunOptions(out_dir=None, equalizer_taps=equalizer_taps, timeout_s=timeout_s), log=log)
    rec, info = read["rec"], link.info
    name, g = info.name, info.global_info
    received = got["frames"]
    found = sum(1 for f in received if isinstance(f, SyncedFrame))
    psnr_mean, ssim_mean = mean_scores(rec.images, rec.mean_u8)
    row = score_frames(rec.prep, received, rec.frames_sent, rec.codec, rec.key, psnr_mean, ssim_mean, None, rec.shape,
                       max_iter, method, got["sync"])
    if row["frames_received"] == 0:
        others = row["frames_rejected"]
        raise UserError(f"no baseline frames found in {name}" + (
            f" ({others} frame(s) of another kind: not {rec.codec.name} {rec.mod} {rec.rate})" if others else ""))
    res = _result(rec.codec, rec.prep, rec.images, rec.mean_u8, row, max_iter, method, None)
    res["radio"] = {"link": "replay", "sps": rec.pulse.sps, "rolloff": rec.pulse.rolloff,
                    "equalizer_taps": equalizer_taps, "first_frame": rec.spec.get("first_frame"),
                    "recorded_link": g.get("jscec:link")}
    res["recording"] = {"meta": str(info.meta_path), "reference": str(rec.ref_path), "samples": info.samples,
                        "sample_rate_hz": info.sample_rate, "center_freq_hz": info.center_freq,
                        "image_source": g.get("jscec:image_source"),
                        "image_shape": [int(v) for v in rec.images.shape[1:]],
                        "frames_found": found, "drops_found": len(received) - found}
    return res
