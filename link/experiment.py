"""What every experiment runner shares (``loopback``, ``ota``, ``capture``, ``replay``).

* :func:`prepare` — the sending side: Bob's model, the keys (fresh ones saved with mode 0600, or a
  key file), the images, their reference copy (``reference.npz``) and Alice's frame symbols as one
  stream with idle lead and tail (:func:`frame_stream`).
* :class:`Receivers` — Bob's and Eve's chains as separate processes (``jscec receive``), started on
  the frame-PDU addresses of an RX flowgraph, told when the stream ended, and gathered.
* :func:`side` / :func:`link_report` — the JSON every runner writes (``bob``/``eve`` summaries, mode,
  model, images, key id — never a key or an error seed).
* :func:`staged_output` — an output folder that appears only when the run succeeds.
* :func:`run_flowgraph` — start a ZMQ-fed flowgraph and stop it on a condition (they never finish
  by themselves), with a progress bar, a timeout and a stall detector.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jscec.errors import UserError
from radio.pulse import PulseShape

#: Idle symbols before the first frame and after the last (the tail lets the last frame complete).
LEAD_SYMBOLS = 256
TAIL_SYMBOLS = 2048


def frame_stream(frames: list[np.ndarray]) -> np.ndarray:
    """Alice's frames as one symbol stream, with idle zeros before and after."""
    return np.concatenate([np.zeros(LEAD_SYMBOLS, np.complex64), *frames, np.zeros(TAIL_SYMBOLS, np.complex64)])


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


def save_reference(path: Path, images: list[np.ndarray]) -> Path:
    np.savez(path, **{f"image_{i}": im for i, im in enumerate(images)})
    return Path(path)


def load_reference(path: Path) -> list[np.ndarray]:
    try:
        with np.load(path) as z:
            named = {int(n.split("_")[1]): z[n] for n in z.files if n.startswith("image_")}
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read reference images {path}: {str(exc).splitlines()[0]}") from None
    return [named[i] for i in sorted(named)]


def prepare(*, model: str, mode: str | None, data: str | None, images: int, key: str | None, seed: int,
            out_dir: Path, subframes: int = 4, threads: int = 1, sps: int = 4, rolloff: float = 0.25,
            image_arrays: list[np.ndarray] | None = None) -> Setup:
    """Load the model, keys and images; encode, encrypt and frame the images (Alice)."""
    import torch

    from link.alice import Alice
    from link.images import load_images
    from link.keys import prepare_keys
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
        from link.receivers import ReceiverProcess

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


@contextlib.contextmanager
def staged_output(out_dir: Path):
    """A hidden staging folder beside ``out_dir``; its files move into ``out_dir`` only on success.

    On any exception the staging folder is removed and ``out_dir`` is left as it was (not created
    if it did not exist), so a refused run leaves nothing behind.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = out_dir.parent / f".{out_dir.name}.{os.getpid()}.tmp"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def commit_stage(stage: Path, out_dir: Path) -> None:
    """Move everything from ``stage`` into ``out_dir`` (replacing files of the same name)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in sorted(Path(stage).iterdir()):
        dest = out_dir / p.name
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        os.replace(p, dest)
    shutil.rmtree(stage, ignore_errors=True)


def run_flowgraph(tb, consumed, done, *, timeout_s: float, stall_s: float = 10.0, total: int | None = None,
                  desc: str = "samples", on_start=None, on_poll=None) -> bool:
    """Start ``tb`` and stop it when ``done(counts)`` holds, after ``timeout_s``, or on a stall.

    ``consumed()`` returns a dict of sample counters (progress: their minimum); ``on_poll(counts)``
    runs every poll (e.g. to flush a transmitter). A stall is ``stall_s`` seconds without any counter
    moving. Returns whether ``done`` was reached.
    """
    from tqdm import tqdm

    tb.start()
    reached = False
    try:
        if on_start:
            on_start()
        t0 = last_move = time.monotonic()
        last = None
        with tqdm(total=total, unit="sample", unit_scale=True, desc=desc, leave=False, disable=None) as bar:
            while True:
                time.sleep(0.05)
                now = consumed()
                low = min(now.values()) if now else 0
                bar.update(max(0, (min(low, total) if total else low) - bar.n))
                if on_poll:
                    on_poll(now)
                if done(now):
                    reached = True
                    break
                if now != last:
                    last, last_move = now, time.monotonic()
                if time.monotonic() - last_move > stall_s or time.monotonic() - t0 > timeout_s:
                    break
    finally:
        time.sleep(0.2)  # let the last PDUs leave the message sinks
        tb.stop()
        tb.wait()
    return reached


#: Idle symbols a :class:`SenderThread` sends as the stream's last ZMQ message, for real-time devices.
IDLE_TAIL_SYMBOLS = 1024


def whole_buffers(stream: np.ndarray, sps: int, buffer_size: int) -> np.ndarray:
    """``stream`` with idle symbols appended so that its TX samples fill whole hardware buffers.

    A radio adapter holds back a partial buffer until the end-of-stream flush, which comes a poll later;
    meanwhile the receiver hears silence, so a frame straddling the start of that last buffer would be
    cut in two. Padded, every frame leaves in a full buffer as soon as it is shaped.
    """
    samples = -(-stream.size * sps // buffer_size) * buffer_size
    return np.concatenate([stream, np.zeros(-(-samples // sps) - stream.size, np.complex64)])


class SenderThread:
    """Feeds a symbol stream to a TX flowgraph's ``zeromq.pull_source`` from a background thread.

    ``tail`` (for real-time devices) is sent after the stream as messages of its own: gr-zeromq
    3.10.5's ``pull_source`` hands on the last items of the last message it has received only when its
    next poll times out (100 ms later), so a radio would pause there and the receiver hear silence in
    the middle of a frame. With an idle tail, what waits is idle.
    """

    def __init__(self, address: str, stream: np.ndarray, tail: np.ndarray | None = None):
        from radio.transport import SymbolSender

        self.sender = SymbolSender(address)
        self.stream = stream
        self.tail = tail
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            self.sender.send(self.stream)
            if self.tail is not None:
                self.sender.send(self.tail)
        except Exception as exc:  # noqa: BLE001 - re-raised by close()
            self.errors.append(exc)

    def start(self):
        self.thread.start()

    def close(self) -> None:
        self.sender.close()
        if self.errors:
            raise self.errors[0]
