"""The simulated loopback experiment: Alice → GNU Radio (TX, two channel branches, two RX) → Bob, Eve.

Alice (this process) encodes, encrypts and frames the images and pushes the frame symbols over ZMQ
into :class:`flowgraphs.loopback.SimLoopback`; Bob's and Eve's chains run as their own processes
(``jscec receive``) on the frame PDUs of their RX branch. The runner stops the flowgraph once both
synchronisers have consumed the whole stream, tells the chains, and gathers their results.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from link.alice import Alice
from link.images import load_images
from link.receivers import ReceiverProcess
from link.report import write_report
from radio.errors import UserError
from radio.pulse import PulseShape
from radio.transport import SymbolSender, free_tcp_address

#: Idle symbols before the first frame and after the last (the tail lets the last frame complete).
LEAD_SYMBOLS = 256
TAIL_SYMBOLS = 2048


@dataclass
class LoopbackOptions:
    model: str = "cifar10-lwe"
    mode: str | None = None          # cipher mode of the link; None: the model's
    data: str | None = None          # None: scikit-image sample photographs
    images: int = 3
    snr_b_db: float = 10.0
    snr_e_db: float = 10.0
    bob_impairments: dict = field(default_factory=dict)
    eve_impairments: dict = field(default_factory=dict)
    sps: int = 4
    rolloff: float = 0.25
    equalizer_taps: int = 0
    key: str | None = None           # Bob's key file; None: fresh random keys saved in out_dir
    seed: int = 0                    # channel noise, first frame counter
    out_dir: str = "out/loopback"
    subframes: int = 4
    timeout_s: float = 900.0
    threads: int = 1


def frame_stream(frames: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.zeros(LEAD_SYMBOLS, np.complex64), *frames, np.zeros(TAIL_SYMBOLS, np.complex64)])


def run_loopback(opts: LoopbackOptions, log=print) -> dict:
    import torch

    from flowgraphs.chains import Impairments
    from flowgraphs.loopback import SimLoopback, run_until_drained
    from link.keys import prepare_keys
    from models.checkpoint import resolve_model
    from models.evaluate import load_bob

    torch.set_num_threads(opts.threads)
    out_dir = Path(opts.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = resolve_model(opts.model)
    model = load_bob(path)
    keys, key_path = prepare_keys(model.config, opts.key, out_dir, opts.mode)
    images, source = load_images(opts.data, opts.images)
    ref_path = out_dir / "reference.npz"
    np.savez(ref_path, **{f"image_{i}": im for i, im in enumerate(images)})

    rng = np.random.default_rng(opts.seed)
    alice = Alice(model, keys, path.stem, first_counter=int(rng.integers(0, 1 << 20)), subframes=opts.subframes)
    frames = []
    for i, im in enumerate(images):
        f, _ = alice.frames_for_image(im, i)
        frames += f
    stream = frame_stream(frames)
    pulse = PulseShape(opts.sps, opts.rolloff)
    bob_imp = Impairments(**opts.bob_impairments)
    eve_imp = Impairments(**opts.eve_impairments)

    addr = {name: free_tcp_address() for name in ("tx", "bob", "eve")}
    chains = {}
    try:
        chains["bob"] = ReceiverProcess("bob", addr["bob"], out_dir, str(path), key=key_path, reference=ref_path,
                                        k=keys.k, threads=opts.threads)
        chains["eve"] = ReceiverProcess("eve", addr["eve"], out_dir, str(path), reference=ref_path, k=keys.k,
                                        threads=opts.threads, mode=keys.mode)
        for c in chains.values():
            c.wait_ready()
        tb = SimLoopback(addr["tx"], addr["bob"], addr["eve"], snr_b_db=opts.snr_b_db, snr_e_db=opts.snr_e_db,
                         bob_impairments=bob_imp, eve_impairments=eve_imp, pulse=pulse, seed=opts.seed,
                         equalizer_taps=opts.equalizer_taps)
        sender = SymbolSender(addr["tx"])
        errors = []

        def send():
            try:
                sender.send(stream)
            except Exception as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        worst_rate = 1 - 2e-6 * max(abs(bob_imp.sro_ppm), abs(eve_imp.sro_ppm))
        expected = int((stream.size - TAIL_SYMBOLS // 2) * pulse.sps * worst_rate)
        t0 = time.monotonic()
        thread = threading.Thread(target=send, daemon=True)
        from tqdm import tqdm

        with tqdm(total=expected, unit="sample", unit_scale=True, desc="loopback", leave=False,
                  disable=None) as bar:
            def progress(n):
                bar.update(max(0, min(n, expected) - bar.n))

            drained = run_until_drained(tb, tb.samples_consumed, expected, timeout_s=opts.timeout_s,
                                        progress=progress, on_start=thread.start)
        seconds = time.monotonic() - t0
        sender.close()
        if errors:
            raise errors[0]
        if not drained:
            log(f"warning: the flowgraph stopped before consuming the whole stream ({tb.samples_consumed()})")
        sync_stats = tb.sync_stats()
        results = {name: c.finish(len(frames)) for name, c in chains.items()}
    finally:
        for c in chains.values():
            c.kill()

    report = {
        "bob": _side(results["bob"]["summary"]), "eve": _side(results["eve"]["summary"]),
        "snr_b_db": opts.snr_b_db, "snr_e_db": opts.snr_e_db,
        "impairments": {"bob": bob_imp.to_dict(), "eve": eve_imp.to_dict()},
        "mode": keys.mode, "params": model.config.cipher_params, "model": path.stem,
        "images": source, "image_sizes": [list(im.shape) for im in images], "key_id": keys.key_id,
        "pulse": {"sps": pulse.sps, "rolloff": pulse.rolloff}, "seed": opts.seed,
        "samples_per_branch": int(stream.size * pulse.sps), "seconds": seconds,
        "sync": sync_stats,
        "per_image": {name: r["summary"]["images"] for name, r in results.items()},
    }
    write_report(report, images, results, out_dir)
    return report


def _side(summary: dict) -> dict:
    keys = ("psnr", "ssim", "ms_ssim", "mer_db", "frames_sent", "frames_ok", "frames_received", "frames_dropped")
    return {k: summary[k] for k in keys if k in summary}
