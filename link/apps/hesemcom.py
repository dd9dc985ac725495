"""HE SemCom (``hesemcom``) over the links: Models 2/3's features as analog symbols, Model 4's ciphertexts as bits.

* **Analog** (:func:`run_analog`, Models 2 and 3): each image's 196 power-normalised features become 98 complex
  symbols (feature 2m + j·feature 2m+1, scaled to unit mean power: the paper's channel with SNR = P̄/σ² per
  complex symbol); ``images_per_frame`` images fill one radio frame (:func:`radio.frame.build_frame`, header
  mode ``none``, constellation ``raw``, ``image_index`` = the first image, ``chunk_count`` = images in it). The
  frames cross any link through the baseline's :func:`link.apps.baseline.carry_frames` (the one runner, Bob's RX
  chain collected in-process); the receiver classifies the equalised payload with the model's fully connected
  decoder. A lost frame's images are scored as wrong.
* **Digital** (:func:`run_ciphertext`, Model 4): the CKKS ciphertext of the encoder's output (4 images' features,
  serialised by SEAL) is cut into the baseline's LDPC + QAM frames (:func:`baseline.pipeline.transmit_payload`;
  its AES-CTR layer runs under a fresh random key per run, redundant here), carried over the link, reassembled;
  the receiver runs the decoder on the ciphertext and the key holder decrypts. Any frame lost or wrong loses the
  whole ciphertext (its 4 images are scored as wrong). The run reports ciphertext bytes, frames, symbols and the
  air time per image at the link's symbol rate (``sample_rate`` / samples per symbol).

Links (:func:`make_link`): ``awgn``, ``sim``, ``ota`` (radios or the CI fakes); over ``sim`` and ``ota`` both runs
can be recorded as SigMF and replayed through the same RX chain (the ``replay`` link), scoring exactly as the live
run did: the analog run (:func:`record_analog`, :func:`replay_analog`: the labels and features sent beside the
recording) and Model 4's (:func:`record_ciphertext`, :func:`replay_ciphertext`: the labels, the frame index and
the decoder's Galois keys beside it, the AES and CKKS keys in ``keys/`` (mode 0600); the replayed predictions and
decrypted scores are the live run's bit for bit). :func:`replay` picks the right one from ``jscec:payload``.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from baseline.pipeline import channel_llrs, decode_llrs, link_budget, payload_from_info, transmit_payload
from link.apps.baseline import CONSTELLATION, carry_frames
from radio.frame import FrameHeader, build_frame
from radio.pulse import PulseShape

FEATURES, SYMBOLS = 196, 98


def make_link(kind: str, snr_db: float, seed: int = 0, tx: str | None = None, bob: str | None = None):
    """``awgn`` or ``sim`` at ``snr_db``; ``ota`` with the radios ``tx`` and ``bob`` (URIs as ``jscec ota``'s, or
    ``fake-pluto`` / ``fake-soapy``; the SNR is the air's, not set here)."""
    if kind == "awgn":
        from link.links.awgn import AwgnLink, AwgnOptions

        return AwgnLink(AwgnOptions(snr_b_db=float(snr_db), snr_e_db=float(snr_db), seed=seed))
    if kind == "sim":
        from link.links.sim import SimLink, SimOptions

        return SimLink(SimOptions(snr_b_db=float(snr_db), noise_seeds={"bob": int(seed)}))
    if kind == "ota":
        from link.links.ota import OtaLink, RadioOptions

        return OtaLink(RadioOptions(tx=tx or "fake-pluto", bob=bob or tx or "fake-pluto", eve=None))
    from jscec.errors import UserError

    raise UserError(f"link {kind!r}: choose awgn, sim or ota (replay reads a recording: replay_analog)")


# --------------------------------------------------------------------------- analog features

def to_symbols(features: np.ndarray) -> np.ndarray:
    """(N, 196) unit-power real features → (N, 98) unit-power complex symbols."""
    f = np.asarray(features, np.float64)
    return ((f[:, 0::2] + 1j * f[:, 1::2]) / np.sqrt(2)).astype(np.complex64)


def from_symbols(symbols: np.ndarray) -> np.ndarray:
    s = np.asarray(symbols) * np.sqrt(2)
    out = np.zeros(s.shape[:-1] + (FEATURES,))
    out[..., 0::2], out[..., 1::2] = s.real, s.imag
    return out


def feature_frames(features: np.ndarray, images_per_frame: int = 8, first_frame: int = 0) -> list[np.ndarray]:
    sym = to_symbols(features)
    frames = []
    for k, i in enumerate(range(0, len(sym), images_per_frame)):
        part = sym[i:i + images_per_frame]
        hdr = FrameHeader(counter=first_frame + k, mode="none", constellation="raw", image_index=i,
                          chunk_count=len(part), height=28, width=28)
        frames.append(build_frame(hdr, part.reshape(-1)))
    return frames


def features_from_frames(received: list, n_images: int) -> tuple[np.ndarray, np.ndarray, list]:
    """(features (N, 196), received mask (N,), MER per frame) from Bob's synchronised frames."""
    from radio.sync import SyncedFrame

    feats = np.zeros((n_images, FEATURES))
    got = np.zeros(n_images, bool)
    mer = []
    for f in received:
        if not isinstance(f, SyncedFrame) or f.header.mode != "none" or f.header.constellation != "raw":
            continue
        h = f.header
        n = h.chunk_count
        if f.payload.size != n * SYMBOLS or not 0 <= h.image_index <= n_images - n:
            continue
        feats[h.image_index:h.image_index + n] = from_symbols(f.payload.reshape(n, SYMBOLS))
        got[h.image_index:h.image_index + n] = True
        mer.append(float(f.mer_db))
    return feats, got, mer


def run_analog(net, x_u8: np.ndarray, y: np.ndarray, link, *, images_per_frame: int = 8, pulse=PulseShape(),
               log=print) -> dict:
    """Model 2 or 3 (:class:`hesemcom.nets.Jscc`) with its features carried by ``link``."""
    import torch

    from hesemcom.train import to_tensor

    with torch.no_grad():
        z = net.features(to_tensor(x_u8)).numpy()
    frames = feature_frames(z, images_per_frame)
    t0 = time.perf_counter()
    got = carry_frames(frames, link, pulse=pulse, log=log)
    feats, ok, mer = features_from_frames(got["frames"], len(x_u8))
    with torch.no_grad():
        pred = net.classify(torch.from_numpy(feats).float()).argmax(1).numpy()
    right = (pred == y) & ok
    sps = pulse.sps
    return {"images": len(x_u8), "frames_sent": len(frames), "images_received": int(ok.sum()),
            "accuracy": float(right.mean()), "accuracy_of_received": float((pred == y)[ok].mean()) if ok.any() else None,
            "mer_db": float(np.mean(mer)) if mer else None, "symbols_per_image": SYMBOLS,
            "frame_symbols": int(frames[0].size), "samples_per_symbol": sps, "seconds": time.perf_counter() - t0,
            "link": {k: v for k, v in got["link"].items() if k != "sync"}}


# --------------------------------------------------------------------------- Model 4's ciphertexts as bits

def ciphertext_frames(blobs: list[bytes], mod: str, rate: str, k_symbols: int, key: bytes) -> tuple[list, list, object]:
    """Every blob cut into capacity-sized chunks, one LDPC + QAM frame each; (frames, [(blob, offset, length)])."""
    budget = link_budget(mod, rate, k_symbols)
    cap = budget.capacity_bytes
    frames, index = [], []
    for b, blob in enumerate(blobs):
        for off in range(0, len(blob), cap):
            chunk = blob[off:off + cap]
            n = len(frames)
            sym, _ = transmit_payload(chunk, budget, key, n)
            hdr = FrameHeader(counter=n, mode="none", constellation=CONSTELLATION[mod], image_index=b,
                              chunk_index=(off // cap) % 4096, chunk_count=min(4095, -(-len(blob) // cap)))
            frames.append(build_frame(hdr, np.asarray(sym, np.complex64)))
            index.append((b, off, len(chunk)))
    return frames, index, budget


def reassemble(received: list, index: list, budget, key: bytes, sizes: list[int]) -> list:
    """The blobs back from Bob's frames (None where a chunk was lost or failed its parity checks)."""
    from radio.sync import SyncedFrame

    parts = {}
    for f in received:
        if not isinstance(f, SyncedFrame) or f.payload.size != budget.symbols or not 0 <= f.header.counter < len(index):
            continue
        n = f.header.counter
        info, ok = decode_llrs(channel_llrs(f.payload, max(float(f.noise_var), 1e-9), budget), budget)
        if ok:
            b, off, ln = index[n]
            parts[n] = payload_from_info(info, budget, key, n).ljust(ln, b"\0")[:ln]
    out = []
    for b, size in enumerate(sizes):
        chunks = [(off, parts.get(n)) for n, (bb, off, ln) in enumerate(index) if bb == b]
        if any(c is None for _, c in chunks):
            out.append(None)
        else:
            out.append(b"".join(c for _, c in sorted(chunks)))
    return out


@dataclass
class CiphertextTransmission:
    """What Model 4's sender made: the key set, the features' ciphertexts (SEAL bytes), their frames."""

    keys: object                # hesemcom.ckks.Keys (the key holder's; the decoder uses its evaluation keys)
    model: object               # hesemcom.ckks.EncryptedModel3
    blobs: list                 # serialised feature ciphertexts
    counts: list                # images in each
    aes_key: bytes              # the chain's AES-CTR key (fresh per run)
    frames: list
    index: list                 # per frame: (blob, offset, length)
    budget: object
    encrypt_s: float


def send_ciphertexts(he: dict, x_u8: np.ndarray, *, mod: str = "64qam", rate: str = "3/4", k_symbols: int = 4032,
                     decoder_galois: bool = False) -> CiphertextTransmission:
    """Fresh CKKS keys, the images encrypted 4 per ciphertext, the encoder on the ciphertexts, the features'
    ciphertexts serialised and cut into LDPC + QAM frames. ``decoder_galois``: the decoder will rotate with
    fresh decoder-only Galois keys (:meth:`hesemcom.ckks.Keys.decoder_galois_keys`, what a recording keeps)."""
    from hesemcom import ckks

    params = ckks.CkksParams()
    keys = ckks.Keys(params)
    model = ckks.EncryptedModel3(he, params)
    per = params.images_per_ciphertext
    x = x_u8.astype(np.float64) / 255.0
    blobs, counts = [], []
    t0 = time.perf_counter()
    for i in range(0, len(x), per):
        n = min(per, len(x) - i)
        ct = keys.sa.Ciphertext()
        keys.encryptor.encrypt(keys.encode(ckks.pack(x[i:i + n], params)[0].tolist()), ct)
        blobs.append(_save(model.features(keys, ct)))
        counts.append(n)
    t_tx = time.perf_counter() - t0
    if decoder_galois:
        keys.galois_bytes = keys.decoder_galois_keys()
        keys.use_galois(keys.galois_bytes)
    key = os.urandom(16)
    frames, index, budget = ciphertext_frames(blobs, mod, rate, k_symbols, key)
    return CiphertextTransmission(keys, model, blobs, counts, key, frames, index, budget, t_tx)


def decode_ciphertexts(keys, model, blobs: list, counts: list) -> tuple[np.ndarray, np.ndarray]:
    """The decoder on each received feature ciphertext (None: lost), the key holder's decryption: (predictions
    (N,), −1 where lost; scores (N, 10), NaN where lost)."""
    from hesemcom import ckks

    per = ckks.CkksParams().images_per_ciphertext
    n_img = int(sum(counts))
    pred, scores = np.full(n_img, -1), np.full((n_img, 10), np.nan)
    for k, (blob, n) in enumerate(zip(blobs, counts)):
        if blob is None:
            continue
        sc = model.scores(keys, _load(keys, blob), None)
        dec = np.stack([keys.decrypt_complex(z)[np.arange(n) * ckks.BLOCK + ckks.SCORE_SLOT] for z in sc], 1)
        scores[k * per:k * per + n] = np.concatenate([dec.real, dec.imag], 1) + model.fc_b
        pred[k * per:k * per + n] = scores[k * per:k * per + n].argmax(1)
    return pred, scores


def _ciphertext_result(tx: CiphertextTransmission, back: list, pred, scores, y, pulse, sample_rate, got) -> dict:
    n_img = len(pred)
    total_bytes = sum(len(b) for b in tx.blobs)
    symbols = len(tx.frames) * int(tx.frames[0].size) if tx.frames else 0
    rate_sym = sample_rate / pulse.sps
    return {"images": n_img, "accuracy": float(np.mean(pred == y)), "predictions": pred.tolist(),
            "scores": scores, "ciphertexts": len(tx.blobs),
            "ciphertexts_received": sum(b is not None for b in back),
            "ciphertext_bytes_per_image": total_bytes / n_img, "frames": len(tx.frames),
            "frames_per_image": len(tx.frames) / n_img, "channel_symbols_per_image": symbols / n_img,
            "analog_symbols_per_image": SYMBOLS, "modulation": tx.budget.mod, "code_rate": tx.budget.rate,
            "frame_capacity_bytes": tx.budget.capacity_bytes, "symbol_rate": rate_sym,
            "air_time_s_per_image": symbols / n_img / rate_sym, "analog_air_time_s_per_image": SYMBOLS / rate_sym,
            "encrypt_and_encode_s": tx.encrypt_s, "link": {k: v for k, v in got["link"].items() if k != "sync"}}


def run_ciphertext(he: dict, x_u8: np.ndarray, y: np.ndarray, link, *, mod: str = "64qam", rate: str = "3/4",
                   k_symbols: int = 4032, pulse=PulseShape(), sample_rate: float = 1e6, log=print) -> dict:
    """Model 4: encrypt, encode on the ciphertext, send the features' ciphertexts as bits, decode and decrypt.
    ``scores`` (N, 10): the decrypted class scores (NaN for a lost ciphertext's images)."""
    tx = send_ciphertexts(he, x_u8, mod=mod, rate=rate, k_symbols=k_symbols)
    got = carry_frames(tx.frames, link, pulse=pulse, log=log)
    back = reassemble(got["frames"], tx.index, tx.budget, tx.aes_key, [len(b) for b in tx.blobs])
    pred, scores = decode_ciphertexts(tx.keys, tx.model, back, tx.counts)
    return _ciphertext_result(tx, back, pred, scores, np.asarray(y), pulse, sample_rate, got)


def _save(ct) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "ct")
        ct.save(p)
        return open(p, "rb").read()


def _load(keys, blob: bytes):
    import tempfile

    ct = keys.sa.Ciphertext()
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "ct")
        open(p, "wb").write(blob)
        ct.load(keys.ctx.seal_context().data, p)
    return ct


# --------------------------------------------------------------------------- capture and replay (analog features)

#: ``jscec:payload`` of a recording of Models 2/3's features.
PAYLOAD = "hesemcom-features"


def _score(net, feats, ok, y) -> tuple[float, float | None]:
    import torch

    with torch.no_grad():
        pred = net.classify(torch.from_numpy(feats).float()).argmax(1).numpy()
    right = (pred == y) & ok
    return float(right.mean()), (float((pred == y)[ok].mean()) if ok.any() else None)


def record_analog(net, data_name: str, model: int, x_u8: np.ndarray, y: np.ndarray, base, link, *,
                  images_per_frame: int = 8, pulse=PulseShape(), sample_rate: float = 1e6, center_freq: float = 2.4e9,
                  log=print) -> dict:
    """:func:`run_analog` over a ``sim`` or ``ota`` link, Bob's RX input recorded as SigMF ``base`` with the labels
    and the features sent in ``<base>.reference.npz`` (``jscec:payload`` = ``hesemcom-features``)."""
    import tempfile
    from pathlib import Path

    import torch

    from hesemcom.train import to_tensor
    from link.capture import Recorder

    with torch.no_grad():
        z = net.features(to_tensor(x_u8)).numpy()
    frames = feature_frames(z, images_per_frame)
    meta = {"description": f"hesemcom: {data_name} Model {model} features, {len(x_u8)} images in {len(frames)} frames",
            "payload": PAYLOAD, "frames_sent": len(frames), "images": int(len(x_u8)),
            "pulse": {"sps": pulse.sps, "rolloff": pulse.rolloff, "span": pulse.span},
            "hesemcom": {"data": data_name, "model": int(model), "images_per_frame": int(images_per_frame),
                         "symbols_per_image": SYMBOLS}}
    with tempfile.TemporaryDirectory() as tmp:
        truth = Path(tmp) / "truth.npz"
        np.savez(truth, labels=np.asarray(y), features=z)
        got = carry_frames(frames, link, pulse=pulse, recorder=Recorder(base, sample_rate=sample_rate,
                                                                         center_freq=center_freq),
                           meta=meta, truth_path=truth, log=log)
    feats, ok, mer = features_from_frames(got["frames"], len(x_u8))
    acc, acc_rx = _score(net, feats, ok, np.asarray(y))
    return {"images": len(x_u8), "frames_sent": len(frames), "images_received": int(ok.sum()), "accuracy": acc,
            "accuracy_of_received": acc_rx, "mer_db": float(np.mean(mer)) if mer else None,
            "recording": got["recording"]}


def replay_analog(recording, *, checkpoint=None, log=print) -> dict:
    """A :func:`record_analog` recording through the same RX chain and the recorded model's decoder."""
    from jscec.errors import UserError
    from hesemcom.train import load_model
    from link.apps.baseline import BaselineApp, FrameTransmission
    from link.capture import reference_path
    from link.links.replay import ReplayLink, ReplayOptions
    from link.runner import RunOptions, run

    link = ReplayLink(ReplayOptions(str(recording)))

    def transmission(info):
        g = info.global_info
        if g.get("jscec:payload") != PAYLOAD:
            raise UserError(f"{info.name} is not a hesemcom features recording "
                            f"(jscec:payload {g.get('jscec:payload')!r})")
        ref = reference_path(info.meta_path)
        if not ref.is_file():
            raise UserError(f"no reference {ref.name} beside {info.name}")
        p = g["jscec:pulse"]
        return FrameTransmission(PulseShape(int(p["sps"]), float(p["rolloff"])), None, int(g["jscec:frames_sent"]),
                                 ref)

    got = run(BaselineApp(read_recording=transmission), link, RunOptions(out_dir=None, timeout_s=900.0), log=log)
    info = link.info
    g = info.global_info
    hm = g["jscec:hesemcom"]
    truth = np.load(reference_path(info.meta_path))
    y = truth["labels"]
    net, _ = load_model(hm["data"], int(hm["model"]), checkpoint)
    feats, ok, mer = features_from_frames(got["frames"], len(y))
    acc, acc_rx = _score(net, feats, ok, y)
    return {"images": int(len(y)), "images_received": int(ok.sum()), "accuracy": acc, "accuracy_of_received": acc_rx,
            "mer_db": float(np.mean(mer)) if mer else None, "model": int(hm["model"]), "data": hm["data"],
            "recording": {"meta": str(info.meta_path), "samples": info.samples}}


# --------------------------------------------------------------------------- capture and replay (Model 4's bits)

#: ``jscec:payload`` of a recording of Model 4's ciphertext bits.
CKKS_PAYLOAD = "hesemcom-ckks"


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def key_paths(base) -> tuple[Path, Path]:
    """Where a Model 4 recording's keys live: ``<dir of base>/keys/<name>.aes.key`` (the chain's AES key) and
    ``<name>.ckks.key`` (the CKKS secret, public and relinearisation keys), both mode 0600."""
    from link.capture import REFERENCE_SUFFIX, reference_path

    base = Path(base)
    name = reference_path(base).name[:-len(REFERENCE_SUFFIX)]
    return base.parent / "keys" / f"{name}.aes.key", base.parent / "keys" / f"{name}.ckks.key"


def record_ciphertext(he: dict, data_name: str, x_u8: np.ndarray, y: np.ndarray, base, link, *, mod: str = "64qam",
                      rate: str = "3/4", k_symbols: int = 4032, pulse=PulseShape(), sample_rate: float = 1e6,
                      center_freq: float = 2.4e9, log=print) -> dict:
    """:func:`run_ciphertext` over a ``sim`` or ``ota`` link, Bob's RX input recorded as SigMF ``base``
    (``jscec:payload`` = ``hesemcom-ckks``). Beside it, ``<base>.reference.npz``: the labels, the frame index
    (ciphertext, offset, length per frame), the images per ciphertext and the decoder's Galois keys (public
    evaluation keys: the replay rotates with the very keys the live run used, so its scores are bit-identical).
    The metadata holds the public parameters, the SHA-256 of every ciphertext sent and the fingerprints of the
    keys; the keys themselves go to ``keys/`` beside the recording (:func:`key_paths`, mode 0600)."""
    import tempfile

    from crypto.aes_ctr import save_key
    from crypto.keyfile import write_atomic
    from link.apps.baseline_recording import aes_key_id
    from link.capture import Recorder

    tx = send_ciphertexts(he, x_u8, mod=mod, rate=rate, k_symbols=k_symbols, decoder_galois=True)
    aes_path, ckks_path = key_paths(base)
    aes_path.parent.mkdir(parents=True, exist_ok=True)
    aes_path.parent.chmod(0o700)
    save_key(aes_path, tx.aes_key)
    write_atomic(ckks_path, tx.keys.to_bytes(), 0o600)
    meta = {"description": f"hesemcom: {data_name} Model 4 feature ciphertexts (CKKS, SEAL bytes) over AES-128-CTR + "
                           f"802.11ad LDPC {rate} + {mod.upper()}, {len(x_u8)} images in {len(tx.frames)} frames",
            "payload": CKKS_PAYLOAD, "frames_sent": len(tx.frames), "images": int(len(x_u8)),
            "pulse": {"sps": pulse.sps, "rolloff": pulse.rolloff, "span": pulse.span},
            "aes_key_id": aes_key_id(tx.aes_key),
            "hesemcom": {"data": data_name, "model": 4, "mod": mod, "rate": rate, "k_symbols": int(k_symbols),
                         "budget": tx.budget.as_dict(), "ckks": tx.keys.params.security(),
                         "ckks_key_id": tx.keys.key_id(), "ciphertext_bytes": [len(b) for b in tx.blobs],
                         "ciphertext_sha256": [_sha(b) for b in tx.blobs],
                         "galois_sha256": _sha(tx.keys.galois_bytes)}}
    with tempfile.TemporaryDirectory() as tmp:
        truth = Path(tmp) / "truth.npz"
        np.savez(truth, labels=np.asarray(y), counts=np.asarray(tx.counts), index=np.asarray(tx.index, np.int64),
                 galois=np.frombuffer(tx.keys.galois_bytes, np.uint8))
        got = carry_frames(tx.frames, link, pulse=pulse, recorder=Recorder(base, sample_rate=sample_rate,
                                                                            center_freq=center_freq),
                           meta=meta, truth_path=truth, log=log)
    back = reassemble(got["frames"], tx.index, tx.budget, tx.aes_key, [len(b) for b in tx.blobs])
    pred, scores = decode_ciphertexts(tx.keys, tx.model, back, tx.counts)
    res = _ciphertext_result(tx, back, pred, scores, np.asarray(y), pulse, sample_rate, got)
    res["recording"] = {**got["recording"], "aes_key": str(aes_path), "ckks_key": str(ckks_path)}
    return res


def _read_ckks_recording(info, keys_dir) -> dict:
    """Check a Model 4 recording and read what the replay needs; ``UserError`` (one line) on anything wrong."""
    from baseline.pipeline import link_budget
    from crypto.aes_ctr import load_key
    from crypto.keyfile import read_secret
    from hesemcom import ckks
    from jscec.errors import UserError
    from link.apps.baseline_recording import aes_key_id
    from link.capture import reference_path

    g, name = info.global_info, info.name
    hm = g.get("jscec:hesemcom")
    if g.get("jscec:payload") != CKKS_PAYLOAD or not isinstance(hm, dict):
        raise UserError(f"{name} is not a hesemcom Model 4 recording (jscec:payload {g.get('jscec:payload')!r})")
    try:
        budget = link_budget(str(hm["mod"]), str(hm["rate"]), int(hm["k_symbols"]))
        sizes, digests = [int(v) for v in hm["ciphertext_bytes"]], [str(v) for v in hm["ciphertext_sha256"]]
        p = g["jscec:pulse"]
        pulse, frames_sent = PulseShape(int(p["sps"]), float(p["rolloff"])), int(g["jscec:frames_sent"])
        data_name, ckks_id, galois_sha = str(hm["data"]), str(hm["ckks_key_id"]), str(hm["galois_sha256"])
    except (KeyError, TypeError, ValueError) as exc:
        what = f"no {exc.args[0]}" if isinstance(exc, KeyError) else type(exc).__name__
        raise UserError(f"{name}: malformed hesemcom metadata ({what})") from None
    ref = reference_path(info.meta_path)
    if not ref.is_file():
        raise UserError(f"no reference {ref.name} beside {name} (jscec hesemcom radio --record writes it)")
    try:
        with np.load(ref) as z:
            y, counts, index, galois = z["labels"], z["counts"], z["index"], z["galois"].tobytes()
    except KeyError as exc:
        raise UserError(f"{ref.name} is not the reference of {name} (it has no {exc.args[0]})") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {ref.name}: {str(exc).splitlines()[0]}") from None
    if (index.ndim != 2 or index.shape != (frames_sent, 3) or len(counts) != len(sizes) or int(counts.sum()) != len(y)
            or _sha(galois) != galois_sha):
        raise UserError(f"{ref.name} does not match {name} (frames, ciphertexts, images or Galois keys)")
    aes_path, ckks_path = key_paths(info.meta_path)
    if keys_dir is not None:
        aes_path, ckks_path = Path(keys_dir) / aes_path.name, Path(keys_dir) / ckks_path.name
    aes = load_key(aes_path)
    if g.get("jscec:aes_key_id") != aes_key_id(aes):
        raise UserError(f"the AES key in {aes_path} is not the one {name} was sent with")
    try:
        keys = ckks.Keys.from_bytes(read_secret(ckks_path, "CKKS key"))
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"CKKS key file {ckks_path} does not hold a CKKS key set ({str(exc).splitlines()[0]})") \
            from None
    if keys.key_id() != ckks_id:
        raise UserError(f"the CKKS keys in {ckks_path} are not the ones {name} was made with (key id "
                        f"{keys.key_id()}, recorded {ckks_id})")
    keys.use_galois(galois)
    if info.samples == 0:
        raise UserError(f"no frames found in {name} (it holds no samples)")
    return {"budget": budget, "sizes": sizes, "digests": digests, "pulse": pulse, "frames_sent": frames_sent,
            "data": data_name, "labels": y, "counts": [int(c) for c in counts],
            "index": [tuple(int(v) for v in row) for row in index], "aes_key": aes, "keys": keys, "ref": ref}


def replay_ciphertext(recording, *, keys_dir=None, checkpoint=None, log=print) -> dict:
    """A :func:`record_ciphertext` recording through the same RX chain, the frames reassembled into the
    ciphertexts, the decoder evaluated on them with the recorded Galois keys and the scores decrypted with the
    recorded CKKS keys: the live run's predictions and scores, bit for bit. ``keys_dir``: where the key files
    are (default ``keys/`` beside the recording)."""
    from hesemcom import ckks
    from hesemcom.train import load_model
    from link.apps.baseline import BaselineApp, FrameTransmission
    from link.links.replay import ReplayLink, ReplayOptions
    from link.runner import RunOptions, run

    link = ReplayLink(ReplayOptions(str(recording)))
    read = {}

    def transmission(info):
        read["rec"] = rec = _read_ckks_recording(info, keys_dir)
        return FrameTransmission(rec["pulse"], None, rec["frames_sent"], rec["ref"])

    got = run(BaselineApp(read_recording=transmission), link, RunOptions(out_dir=None, timeout_s=900.0), log=log)
    rec, info = read["rec"], link.info
    net, _ = load_model(rec["data"], 3, checkpoint)
    model = ckks.EncryptedModel3(net.he_params(), rec["keys"].params)
    back = reassemble(got["frames"], rec["index"], rec["budget"], rec["aes_key"], rec["sizes"])
    pred, scores = decode_ciphertexts(rec["keys"], model, back, rec["counts"])
    y = np.asarray(rec["labels"])
    return {"images": int(len(y)), "accuracy": float(np.mean(pred == y)), "predictions": pred.tolist(),
            "scores": scores, "ciphertexts": len(rec["sizes"]),
            "ciphertexts_received": sum(b is not None for b in back),
            "ciphertexts_identical_to_sent": sum(b is not None and _sha(b) == d for b, d in zip(back, rec["digests"])),
            "frames_sent": rec["frames_sent"], "model": 4, "data": rec["data"],
            "recording": {"meta": str(info.meta_path), "samples": info.samples}}


def replay(recording, *, keys_dir=None, checkpoint=None, log=print) -> dict:
    """Replay a hesemcom recording of either kind (its ``jscec:payload`` says which)."""
    from jscec.errors import UserError
    from link.links.replay import recording_info

    payload = recording_info(str(recording)).global_info.get("jscec:payload")
    if payload == CKKS_PAYLOAD:
        return replay_ciphertext(recording, keys_dir=keys_dir, checkpoint=checkpoint, log=log)
    if keys_dir is not None:
        raise UserError("--keys is for Model 4 recordings (this one carries analog features)")
    return replay_analog(recording, checkpoint=checkpoint, log=log)
