"""The digital baseline over radios and recordings (``jscec baseline --link ota`` / ``--link replay``).

The frames are ``--link sim``'s (:mod:`link.apps.baseline`: the link's preamble, Golay-coded header and
pilots; the payload is one image's codec payload, AES-128-CTR-encrypted, 802.11ad-LDPC-coded and mapped at
the chosen modulation), sent and received by ``jscec ota``'s machinery::

    frame symbols → ZMQ → TxChain (RRC) → ×tx_level → DeviceSink(--tx)
    DeviceSource(--bob) [→ throttle, fakes only] → RxChain (matched filter, FrameSync) → frames → decode
                                                └→ RecordingSink (--record: SigMF, cf32_le)

Devices are opened by :func:`link.links.ota.open_devices` (the same URIs; the fakes share one air; an absent or
busy radio is refused with one line before anything is sent) and the stream stops as in ``jscec ota``. One
transmission per (modulation, code rate). The SNR is measured, not set: a row's ``snr_db`` is the mean pilot
estimate of the received baseline frames (``snr_estimated``). Frame numbers (header counters = AES nonces)
start at a number drawn from ``--seed``, as ``jscec ota``'s do.

``--record BASE`` writes Bob's RX input as ``BASE.sigmf-meta``/``.sigmf-data`` with one annotation per
frame (:class:`link.capture.Recorder`), and ``BASE.reference.npz``: the transmitted images, the mean image
and the transmit side's truth (which images fit, their information bits — AES ciphertext — their codec
quality and error-free PSNR/SSIM), so that a replay scores exactly as the live run did. The global metadata
says what the receiver needs: ``jscec:payload`` = ``digital-baseline``; ``jscec:baseline`` with codec,
modulation, code rate, channel uses, frame budget, image shape, the image index of every frame and the first
frame number; ``jscec:pulse``; ``jscec:aes_key_id``, a fingerprint of the key (:func:`aes_key_id`) so that a
replay refuses the wrong key. Never the key: a fresh key is saved (mode 0600) in ``keys/`` beside the
recording and its path reported.

:func:`run_replay` feeds a recording through the same RX chain (a ``file:`` device) and decodes with the key
file. A recording that is not a baseline recording, lacks its reference, or holds no frame of its baseline is
refused with one line; nothing is written.
"""
from __future__ import annotations

import contextlib
import hashlib
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from baseline.pipeline import LDPC_ITERS, Prepared, link_budget, prepare, summarise
from link.apps.baseline import baseline_frames, collect_frames, mean_scores, score_frames
from link.capture import REFERENCE_SUFFIX, Recorder, reference_path
from link.sender import frame_stream
from link.output import load_reference
from link.links.flowgraph import run_flowgraph
from link.links.ota import OtaOptions, counters, open_devices, prime_rx, send_and_listen
from jscec.errors import UserError
from radio.pulse import PulseShape

#: ``jscec:payload`` of a baseline recording.
PAYLOAD = "digital-baseline"
#: Transmit-side truth kept in the reference file (fields of :class:`baseline.pipeline.Prepared`).
TRUTH = ("fits", "quality", "payload_bytes", "info", "psnr_ok", "ssim_ok")


def aes_key_id(key: bytes) -> str:
    """8 hex digits naming an AES key: a truncated SHA-256 of a domain tag and the key (reveals nothing usable)."""
    return hashlib.sha256(b"jscec digital-baseline aes-128 key id\x00" + bytes(key)).hexdigest()[:8]


def first_frame(seed: int) -> int:
    """The first frame number (header counter, AES nonce) of a transmission, as ``jscec ota`` draws it."""
    return int(np.random.default_rng(seed).integers(0, 1 << 20))


def store_key(base, key: bytes) -> Path:
    """Save a run's fresh AES key as ``<dir of base>/keys/<name>.aes.key`` (folder 0700, file 0600)."""
    from crypto.aes_ctr import save_key

    base = Path(base)
    folder = base.parent / "keys"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    return save_key(folder / f"{reference_path(base).name[:-len(REFERENCE_SUFFIX)]}.aes.key", key)


def save_truth(path: Path, images: np.ndarray, mean_u8: np.ndarray, prep: Prepared) -> Path:
    """The reference file of a baseline recording (``image_<i>`` as :func:`link.output.load_reference` reads)."""
    np.savez(path, **{f"image_{i}": im for i, im in enumerate(images)}, mean_image=mean_u8,
             **{k: getattr(prep, k) for k in TRUTH})
    return Path(path)


def load_truth(path: Path, budget, n_images: int, recording: str) -> tuple[np.ndarray, np.ndarray, Prepared]:
    """(images, mean image, the transmit side's :class:`Prepared` without symbols) from :func:`save_truth`'s file."""
    images = load_reference(path)
    bad = f"{path.name} is not the reference of {recording}"
    try:
        with np.load(path) as z:
            mean_u8, t = z["mean_image"], {k: z[k] for k in TRUTH}
    except KeyError as exc:
        raise UserError(f"{bad} (it has no {exc.args[0]})") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path.name}: {str(exc).splitlines()[0]}") from None
    if not images or len({im.shape for im in images}) != 1 or images[0].ndim != 3 or images[0].dtype != np.uint8:
        raise UserError(f"{bad} (no images of one uint8 H×W×C shape)")
    images = np.stack(images)
    n, n_fit = len(images), int(np.count_nonzero(t["fits"]))
    per_image = ("fits", "quality", "payload_bytes", "psnr_ok", "ssim_ok")
    if (n != n_images or mean_u8.shape != images.shape[1:] or t["info"].shape != (n_fit, budget.info_bits)
            or any(t[k].shape != (n,) for k in per_image)):
        raise UserError(f"{bad} (its images or transmit-side fields do not match the recording's "
                        f"{n_images} images and {budget.info_bits} information bits per frame)")
    prep = Prepared(budget, t["fits"].astype(bool), t["quality"], t["payload_bytes"],
                    np.zeros((0, budget.symbols), np.complex64), t["info"].astype(np.uint8), t["psnr_ok"], t["ssim_ok"])
    return images, mean_u8, prep


class BaselineRecorder(Recorder):
    """Records the samples entering Bob's RX chain of a baseline transmission.

    Only ``attach`` differs from :class:`link.capture.Recorder` (whose ``attach`` describes a DeepJSCEC
    experiment; both open the recording with its ``_open``): ``finish`` annotates the frames and copies
    ``reference`` beside the recording.
    """

    def __init__(self, base, opts: OtaOptions, reference: Path, extra_global: dict):
        super().__init__(base, sample_rate=opts.rate, center_freq=opts.freq, device={}, extra_global=extra_global)
        self.setup = SimpleNamespace(ref_path=Path(reference))

    def attach(self, tb, sps: int) -> None:
        bob = tb.branches["bob"]
        self.device = bob["device"].describe()
        self.sample_rate = float(self.device.get("sample_rate_hz", self.sample_rate))
        self.center_freq = float(self.device.get("center_freq_hz", self.center_freq))
        self._open(tb, None, bob["rx"], {"symbol_rate": self.sample_rate / sps}, sps)


def radio_settings(opts: OtaOptions):
    from radio.devices import RadioSettings

    if not 0 < opts.tx_level <= 1:
        raise UserError(f"--tx-level must be in (0, 1], got {opts.tx_level}")
    return RadioSettings(center_freq_hz=opts.freq, sample_rate_hz=opts.rate, rf_bandwidth_hz=opts.bw,
                         tx_gain_db=opts.tx_gain, rx_gain_db=opts.rx_gain, agc=opts.agc, buffer_size=opts.buffer)


def transmit(stream: np.ndarray, opts: OtaOptions, recorder: BaselineRecorder | None = None, log=print) -> dict:
    """Send a frame-symbol stream from ``opts.tx``, receive on ``opts.bob``.

    Returns {"frames": the RX chain's frames, "sync": its stats, "devices": per URI roles, counters and
    description, "seconds", "drained", "recording": ``recorder.finish``'s dict or None}.
    """
    from flowgraphs.device_link import DeviceLink
    from radio.transport import free_tcp_address

    settings = radio_settings(opts)
    pulse = PulseShape(opts.sps, opts.rolloff)
    with contextlib.ExitStack() as stack:
        devices = open_devices({"tx": opts.tx, "bob": opts.bob}, settings, stack)
        prime_rx(devices)
        address = free_tcp_address()
        tb = DeviceLink({"bob": (devices["bob"], None)}, pulse=pulse, tx_address=address, tx_device=devices["tx"],
                        tx_level=opts.tx_level, equalizer_taps=opts.equalizer_taps,
                        throttle={id(d) for d in devices.values() if d.uri.kind.startswith("fake")})
        received = collect_frames(tb, tb.branches["bob"]["rx"])
        if recorder is not None:
            recorder.attach(tb, pulse.sps)
        drained, seconds, tx_len = send_and_listen(tb, devices["tx"], address, stream, pulse.sps,
                                                   settings.buffer_size, opts.timeout_s, log)
        recording = recorder.finish(tb) if recorder is not None else None
        unique = {id(d): d for d in devices.values()}.values()
        described = {str(d.uri): d.describe() for d in unique}
        devs = {uri: dict(c, description=described[uri]) for uri, c in counters(devices, tb).items()}
    return {"frames": received(), "sync": tb.sync_stats()["bob"], "devices": devs, "seconds": seconds,
            "drained": drained, "samples_transmitted": tx_len, "recording": recording}


def _result(codec, prep: Prepared, images, mean_u8, row: dict, max_iter: int, method: str, seed: int) -> dict:
    """:func:`baseline.pipeline.summarise` of one measured row (no SNR sweep, so no threshold)."""
    psnr_mean, ssim_mean = mean_scores(images, mean_u8)
    res = summarise(codec, prep, psnr_mean, ssim_mean, [], max_iter=max_iter, method=method, seed=seed)
    res["results"] = [row]
    return res


def run_ota(images: np.ndarray, mean_u8: np.ndarray, codec, mod: str, rate: str, key: bytes, opts: OtaOptions, *,
            k_symbols: int = 512, record: str | None = None, key_file: str | None = None, source: str = "",
            max_iter: int = LDPC_ITERS, method: str = "nms", progress: bool = False, log=print) -> dict:
    """One (codec, mod, rate) over the radios: a result like :func:`link.apps.baseline.simulate_link`'s with one
    measured row, plus ``radio``, ``devices`` and (``record``) ``recording`` (with ``key_file``: the given one,
    or where the fresh ``key`` was saved)."""
    budget = link_budget(mod, rate, k_symbols)
    first = first_frame(opts.seed)
    prep = prepare(images, codec, budget, key, mean_u8, first_frame=first, progress=progress)
    shape = images.shape[1:3]
    frames = baseline_frames(prep, first, shape)
    pulse = PulseShape(opts.sps, opts.rolloff)
    radio = {"link": "ota", "tx": opts.tx, "bob": opts.bob, "center_freq_hz": opts.freq, "sample_rate_hz": opts.rate,
             "rf_bandwidth_hz": opts.bw or opts.rate, "tx_gain_db": opts.tx_gain, "rx_gain_db": opts.rx_gain,
             "agc": opts.agc, "buffer_size": opts.buffer, "tx_level": opts.tx_level, "sps": pulse.sps,
             "rolloff": pulse.rolloff, "equalizer_taps": opts.equalizer_taps, "first_frame": first,
             "frame_symbols": int(frames[0].size) if frames else None}
    if not frames:
        if record:
            raise UserError(f"no image fits a {mod} {rate} frame at any {codec.name} quality: nothing to record")
        log(f"no image fits a {mod} {rate} frame at any {codec.name} quality: nothing sent")
        link = {"frames": [], "sync": {}, "devices": {}, "recording": None}
    else:
        with tempfile.TemporaryDirectory() as tmp:
            recorder = None
            if record:
                meta = {"description": f"jscec digital baseline ({codec.name} + AES-128-CTR + 802.11ad LDPC {rate} + "
                        f"{mod.upper()}): Bob's RX input, {len(frames)} frames of {len(images)} images",
                        "link": "ota", "payload": PAYLOAD, "aes_key_id": aes_key_id(key),
                        "frames_sent": len(frames), "images": len(images), "image_source": source,
                        "pulse": {"sps": pulse.sps, "rolloff": pulse.rolloff, "span": pulse.span},
                        "baseline": {"codec": codec.name, "mod": mod, "rate": rate, "k_symbols": int(k_symbols),
                                     "budget": budget.as_dict(), "shape": [int(v) for v in shape],
                                     "image_indices": [int(i) for i in np.nonzero(prep.fits)[0]],
                                     "first_frame": first, "cipher": "aes-128-ctr", "fec": "ieee802.11ad-ldpc-672"}}
                ref = save_truth(Path(tmp) / "reference.npz", images, mean_u8, prep)
                recorder = BaselineRecorder(record, opts, ref, meta)
            try:
                link = transmit(frame_stream(frames), opts, recorder, log)
            except BaseException:
                if recorder is not None:
                    recorder.abort()
                raise
    psnr_mean, ssim_mean = mean_scores(images, mean_u8)
    row = score_frames(prep, link["frames"], len(frames), codec, key, psnr_mean, ssim_mean, None, shape, max_iter,
                       method, link["sync"])
    res = _result(codec, prep, images, mean_u8, row, max_iter, method, opts.seed)
    res["radio"] = {**radio, **{k: link[k] for k in ("seconds", "drained", "samples_transmitted") if k in link}}
    res["devices"] = link["devices"]
    if link["recording"] is not None:
        res["recording"] = {**link["recording"], "key_file": str(key_file or store_key(record, key))}
    return res


def run_replay(recording: str, key_file: str, *, equalizer_taps: int = 0, max_iter: int = LDPC_ITERS,
               method: str = "nms", timeout_s: float = 900.0, log=print) -> dict:
    """A baseline recording through the RX chain and the decoder: the result of the run that recorded it,
    plus ``recording``. Deterministic: the same recording gives the same result."""
    from flowgraphs.device_link import DeviceLink
    from link.links.replay import REPLAY_BUFFER, SYNC_PROCESS_DEFAULT, recording_info
    from crypto.aes_ctr import load_key
    from radio.devices import RadioSettings, open_device
    from baseline.source_codec import get_codec
    from radio.sync import SyncedFrame

    info = recording_info(recording)
    g, n_samples, rate, freq, meta_path = info.global_info, info.samples, info.sample_rate, info.center_freq, info.meta_path
    name = meta_path.name
    spec = g.get("jscec:baseline")
    if g.get("jscec:payload") != PAYLOAD or not isinstance(spec, dict):
        raise UserError(f"{name} is not a digital-baseline recording (no jscec:baseline metadata; DeepJSCEC "
                        "recordings replay with jscec replay)")
    try:
        codec, mod, code_rate = get_codec(str(spec["codec"])), str(spec["mod"]), str(spec["rate"])
        k_symbols, shape = int(spec["k_symbols"]), tuple(int(v) for v in spec["shape"])
        pulse = PulseShape(int(g["jscec:pulse"]["sps"]), float(g["jscec:pulse"]["rolloff"]))
        frames_sent, n_images = int(g["jscec:frames_sent"]), int(g["jscec:images"])
    except (KeyError, TypeError, ValueError) as exc:
        what = f"no {exc.args[0]}" if isinstance(exc, KeyError) else type(exc).__name__
        raise UserError(f"{name}: malformed baseline metadata ({what})") from None
    if k_symbols < 1 or len(shape) != 2:
        raise UserError(f"{name}: malformed baseline metadata (k_symbols {k_symbols}, shape {list(shape)})")
    budget = link_budget(mod, code_rate, k_symbols)
    key = load_key(key_file)
    if g.get("jscec:aes_key_id") not in (None, aes_key_id(key)):
        raise UserError(f"the key in {key_file} is not the one {name} was sent with (key id {aes_key_id(key)}, "
                        f"recorded {g.get('jscec:aes_key_id')})")
    ref = reference_path(meta_path)
    if not ref.is_file():
        raise UserError(f"no reference {ref.name} beside {name} (jscec baseline --record writes it)")
    images, mean_u8, prep = load_truth(ref, budget, n_images, name)
    if images.shape[1:3] != shape:
        raise UserError(f"{ref.name} holds {images.shape[1]}×{images.shape[2]} images, {name} says "
                        f"{shape[0]}×{shape[1]}")
    if n_samples == 0:
        raise UserError(f"no baseline frames found in {name} (it holds no samples)")

    settings = RadioSettings(center_freq_hz=freq or 1.0, sample_rate_hz=rate, buffer_size=REPLAY_BUFFER)
    dev = open_device(f"file:{meta_path}", settings)
    try:
        tb = DeviceLink({"bob": (dev, None)}, pulse=pulse, equalizer_taps=equalizer_taps,
                        sync_process=SYNC_PROCESS_DEFAULT)
        received = collect_frames(tb, tb.branches["bob"]["rx"])
        drained = run_flowgraph(tb, tb.samples_consumed, lambda now: min(now.values()) >= n_samples,
                                timeout_s=timeout_s, total=n_samples, desc="replay")
        tb.raise_device_error(f"reading {name}")
    finally:
        dev.close()
    if not drained:
        log(f"warning: replay stopped before the end of {name} ({tb.samples_consumed()['bob']} of {n_samples})")
    received = received()
    found = sum(1 for f in received if isinstance(f, SyncedFrame))
    psnr_mean, ssim_mean = mean_scores(images, mean_u8)
    row = score_frames(prep, received, frames_sent, codec, key, psnr_mean, ssim_mean, None, shape, max_iter, method,
                       tb.sync_stats()["bob"])
    if row["frames_received"] == 0:
        others = row["frames_rejected"]
        raise UserError(f"no baseline frames found in {name}" + (
            f" ({others} frame(s) of another kind: not {codec.name} {mod} {code_rate})" if others else ""))
    res = _result(codec, prep, images, mean_u8, row, max_iter, method, None)
    res["radio"] = {"link": "replay", "sps": pulse.sps, "rolloff": pulse.rolloff, "equalizer_taps": equalizer_taps,
                    "first_frame": spec.get("first_frame"), "recorded_link": g.get("jscec:link")}
    res["recording"] = {"meta": str(meta_path), "reference": str(ref), "samples": n_samples, "sample_rate_hz": rate,
                        "center_freq_hz": freq, "image_source": g.get("jscec:image_source"),
                        "image_shape": [int(v) for v in images.shape[1:]],
                        "frames_found": found, "drops_found": len(received) - found}
    return res
