"""What a recording of the digital baseline carries, and how a replay reads it back.

``jscec baseline --link ota --record BASE`` writes Bob's RX input as ``BASE.sigmf-meta``/``.sigmf-data`` with
one annotation per frame (:class:`link.capture.Recorder`), and ``BASE.reference.npz``: the transmitted images,
the mean image and the transmit side's truth (which images fit, their information bits — AES ciphertext —
their codec quality and error-free PSNR/SSIM), so that a replay scores exactly as the live run did. The
global metadata (:func:`recording_meta`) says what the receiver needs: ``jscec:payload`` =
``digital-baseline``; ``jscec:baseline`` with codec, modulation, code rate, channel uses, frame budget, image
shape, the image index of every frame and the first frame number; ``jscec:pulse``; ``jscec:aes_key_id``, a
fingerprint of the key (:func:`aes_key_id`) so that a replay refuses the wrong key. Never the key: a fresh key
is saved (mode 0600) in ``keys/`` beside the recording (:func:`store_key`) and its path reported.

:func:`read_recording` checks a recording before a replay runs: not a baseline recording, malformed
metadata, the wrong key or a missing or mismatched reference are refused with one line.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from baseline.pipeline import LinkBudget, Prepared, link_budget
from jscec.errors import UserError
from link.capture import REFERENCE_SUFFIX, reference_path
from link.output import load_reference
from radio.pulse import PulseShape

#: ``jscec:payload`` of a baseline recording.
PAYLOAD = "digital-baseline"
#: Transmit-side truth kept in the reference file (fields of :class:`baseline.pipeline.Prepared`).
TRUTH = ("fits", "quality", "payload_bytes", "info", "psnr_ok", "ssim_ok")


def aes_key_id(key: bytes) -> str:
    """8 hex digits naming an AES key: a truncated SHA-256 of a domain tag and the key (reveals nothing usable)."""
    return hashlib.sha256(b"jscec digital-baseline aes-128 key id\x00" + bytes(key)).hexdigest()[:8]


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


def recording_meta(codec, prep: Prepared, key: bytes, *, mod: str, rate: str, k_symbols: int, shape, first: int,
                   frames: int, images: int, source: str, pulse: PulseShape) -> dict:
    """The ``jscec:`` global fields of a baseline recording (public parameters and the key's fingerprint only;
    the link adds its own, ``jscec:link`` among them)."""
    return {"description": f"jscec digital baseline ({codec.name} + AES-128-CTR + 802.11ad LDPC {rate} + "
            f"{mod.upper()}): Bob's RX input, {frames} frames of {images} images",
            "payload": PAYLOAD, "aes_key_id": aes_key_id(key),
            "frames_sent": frames, "images": images, "image_source": source,
            "pulse": {"sps": pulse.sps, "rolloff": pulse.rolloff, "span": pulse.span},
            "baseline": {"codec": codec.name, "mod": mod, "rate": rate, "k_symbols": int(k_symbols),
                         "budget": prep.budget.as_dict(), "shape": [int(v) for v in shape],
                         "image_indices": [int(i) for i in np.nonzero(prep.fits)[0]],
                         "first_frame": first, "cipher": "aes-128-ctr", "fec": "ieee802.11ad-ldpc-672"}}


@dataclass
class RecordedBaseline:
    """A baseline recording's transmission, read back (:func:`read_recording`)."""

    codec: object
    mod: str
    rate: str
    budget: LinkBudget
    shape: tuple
    pulse: PulseShape
    frames_sent: int
    key: bytes
    ref_path: Path
    images: np.ndarray
    mean_u8: np.ndarray
    prep: Prepared
    spec: dict


def read_recording(info, key_file: str) -> RecordedBaseline:
    """Check a recording (:class:`link.links.replay.RecordingInfo`) and read what was sent; ``UserError`` on
    anything that does not fit."""
    from baseline.source_codec import get_codec
    from crypto.aes_ctr import load_key

    g, name, meta_path = info.global_info, info.name, info.meta_path
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
    if info.samples == 0:
        raise UserError(f"no baseline frames found in {name} (it holds no samples)")
    return RecordedBaseline(codec, mod, code_rate, budget, shape, pulse, frames_sent, key, ref, images, mean_u8, prep,
                            spec)
