"""The DeepJSCEC image application: what Alice sends and how Bob's and Eve's chains score it.

* :func:`prepare` — the sending side: Bob's model, the keys (fresh ones saved with mode 0600, or a
  key file), the images, their reference copy (``reference.npz``) and Alice's frame symbols as one
  stream with idle lead and tail (:func:`link.sender.frame_stream`).
* :class:`Receivers` — Bob's and Eve's chains as separate processes (``python -m link.receiver``),
  started on the frame-PDU addresses of an RX flowgraph, told when the stream ended, and gathered.
* :func:`side` / :func:`link_report` — the JSON every run writes (``bob``/``eve`` summaries, mode,
  model, images, key id — never a key or an error seed).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from link.output import save_reference
from link.sender import frame_stream
from radio.pulse import PulseShape


@dataclass
class Setup:
    """The sending side of one experiment."""

    model: object            # models.codec.DeepJscec (Bob's)
    model_path: Path
    keys: object             # crypto.cipher.CipherKeys
    key_path: Path           # Bob's secret key file (mode 0600)
    images: list             # uint8 (H, W, 3)
    source: str              # where the images came from
    ref_path: Path           # reference.npz of the images (image_<index>)
    frames: list             # radio frames (complex64 symbols)
    stream: np.ndarray       # frame_stream(frames)
    pulse: PulseShape

    @property
    def model_name(self) -> str:
        return self.model_path.stem


def prepare(*, model: str, mode: str | None, data: str | None, images: int, key: str | None, seed: int,
            out_dir: Path, subframes: int = 4, threads: int = 1, sps: int = 4, rolloff: float = 0.25,
            image_arrays: list[np.ndarray] | None = None) -> Setup:
    """Load the model, keys and images; encode, encrypt and frame the images (Alice)."""
    import torch

    from link.apps.alice import Alice
    from link.apps.images import load_images
    from link.apps.keys import prepare_keys
    from models.checkpoint import resolve_model
    from models.evaluate import load_bob

    torch.set_num_threads(threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = resolve_model(model)
    bob_model = load_bob(path)
    keys, key_path = prepare_keys(bob_model.config, key, out_dir, mode)
    if image_arrays is not None:
        imgs, source = [np.ascontiguousarray(im) for im in image_arrays], f"{len(image_arrays)} given images"
    else:
        imgs, source = load_images(data, images)
    ref_path = save_reference(out_dir / "reference.npz", imgs)
    rng = np.random.default_rng(seed)
    alice = Alice(bob_model, keys, path.stem, first_counter=int(rng.integers(0, 1 << 20)), subframes=subframes)
    frames = []
    for i, im in enumerate(imgs):
        f, _ = alice.frames_for_image(im, i)
        frames += f
    return Setup(bob_model, path, keys, key_path, imgs, source, ref_path, frames, frame_stream(frames),
                 PulseShape(sps, rolloff))


class Receivers:
    """Bob's and/or Eve's receive chains (``jscec receive`` processes) on given frame addresses.

    Use as a context manager: leaving it kills whatever still runs. ``finish`` tells every chain the
    stream ended and returns their results (``summary``, ``images``, ``constellation``) by role.
    """

    def __init__(self, addresses: dict[str, str], out_dir: Path, model_path: Path, *, key_path: Path | None,
                 ref_path: Path | None, k: int, mode: str, threads: int = 1):
        from link.receiver.process import ReceiverProcess

        self.chains = {}
        try:
            for role, addr in addresses.items():
                if role == "bob":
                    self.chains[role] = ReceiverProcess("bob", addr, out_dir, str(model_path), key=key_path,
                                                        reference=ref_path, k=k, threads=threads)
                else:
                    self.chains[role] = ReceiverProcess("eve", addr, out_dir, str(model_path),
                                                        reference=ref_path, k=k, threads=threads, mode=mode)
            for c in self.chains.values():
                c.wait_ready()
        except BaseException:
            self.kill()
            raise

    def finish(self, frames_sent: int | None, tb=None) -> dict:
        """End every chain at once (they decode in parallel), then collect. With the flowgraph ``tb``
        (its ``sync_stats``), each chain learns how many messages were published to it
        and stops when they all came instead of after an idle second."""
        stats = {} if tb is None else tb.sync_stats()
        for role, c in self.chains.items():
            published = stats[role]["frames_published"] + stats[role]["dropped_published"] if stats else None
            c.end(-1 if frames_sent is None else frames_sent, published)
        return {role: c.result() for role, c in self.chains.items()}

    def kill(self) -> None:
        for c in self.chains.values():
            c.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        return False


_SIDE_KEYS = ("psnr", "ssim", "ms_ssim", "mer_db", "frames_sent", "frames_ok", "frames_received", "frames_dropped")


def side(summary: dict) -> dict:
    """The part of a chain's summary that goes into the experiment's JSON."""
    return {k: summary[k] for k in _SIDE_KEYS if k in summary}


def empty_side() -> dict:
    return {"psnr": None, "ssim": None, "mer_db": None, "frames_sent": 0, "frames_ok": 0}


def link_report(results: dict, *, snr_b_db, snr_e_db, mode: str, params: str, model: str, images: str,
                image_sizes: list, key_id, pulse: PulseShape, impairments: dict | None = None, **extra) -> dict:
    """The JSON shared by every runner (``bob``/``eve`` first, as ``jscec loopback`` has always written)."""
    report = {
        "bob": side(results["bob"]["summary"]) if "bob" in results else empty_side(),
        "eve": side(results["eve"]["summary"]) if "eve" in results else empty_side(),
        "snr_b_db": snr_b_db, "snr_e_db": snr_e_db,
    }
    if impairments is not None:
        report["impairments"] = impairments
    report.update({"mode": mode, "params": params, "model": model, "images": images, "image_sizes": image_sizes,
                   "key_id": key_id, "pulse": {"sps": pulse.sps, "rolloff": pulse.rolloff}})
    report.update(extra)
    report["per_image"] = {name: r["summary"]["images"] for name, r in results.items()}
    return report
