"""The simulated loopback experiment: Alice → GNU Radio (TX, two channel branches, two RX) → Bob, Eve.

Alice (this process) encodes, encrypts and frames the images and pushes the frame symbols over ZMQ
into :class:`flowgraphs.loopback.SimLoopback`; Bob's and Eve's chains run as their own processes
(``jscec receive``) on the frame PDUs of their RX branch. The runner stops the flowgraph once both
synchronisers have consumed the whole stream, tells the chains, and gathers their results. What the
runners share lives in :mod:`link.apps.deepjscec`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from link.sender import TAIL_SYMBOLS, SenderThread
from link.links.flowgraph import run_flowgraph
from link.apps.deepjscec import Receivers, link_report, prepare
from link.report import write_report
from radio.transport import free_tcp_address


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
    image_arrays: list | None = None  # send these uint8 (H, W, 3) images instead of loading any


def run_loopback(opts: LoopbackOptions, log=print, *, recorder=None) -> dict:
    """Run the simulated loopback; returns the report (also written to ``<out_dir>/result.json``).

    ``recorder`` (``jscec capture``, :class:`link.capture.Recorder`): ``attach(setup, tb, tap, rx)``
    records the output of Bob's channel branch (= his RX chain's input) and logs his frames before the
    flowgraph starts; ``finish(tb)`` writes the recording and returns what goes under ``recording``.
    """
    from flowgraphs.chains import Impairments
    from flowgraphs.loopback import SimLoopback

    out_dir = Path(opts.out_dir)
    setup = prepare(model=opts.model, mode=opts.mode, data=opts.data, images=opts.images, key=opts.key,
                    seed=opts.seed, out_dir=out_dir, subframes=opts.subframes, threads=opts.threads, sps=opts.sps,
                    rolloff=opts.rolloff, image_arrays=opts.image_arrays)
    pulse, stream, keys = setup.pulse, setup.stream, setup.keys
    bob_imp = Impairments(**opts.bob_impairments)
    eve_imp = Impairments(**opts.eve_impairments)

    addr = {name: free_tcp_address() for name in ("tx", "bob", "eve")}
    with Receivers({"bob": addr["bob"], "eve": addr["eve"]}, out_dir, setup.model_path, key_path=setup.key_path,
                   ref_path=setup.ref_path, k=keys.k, mode=keys.mode, threads=opts.threads) as rx:
        tb = SimLoopback(addr["tx"], addr["bob"], addr["eve"], snr_b_db=opts.snr_b_db, snr_e_db=opts.snr_e_db,
                         bob_impairments=bob_imp, eve_impairments=eve_imp, pulse=pulse, seed=opts.seed,
                         equalizer_taps=opts.equalizer_taps)
        if recorder is not None:
            recorder.attach(setup, tb, tb.branches["bob"]["channel"], tb.branches["bob"]["rx"])
        sender = SenderThread(addr["tx"], stream)
        worst_rate = 1 - 2e-6 * max(abs(bob_imp.sro_ppm), abs(eve_imp.sro_ppm))
        expected = int((stream.size - TAIL_SYMBOLS // 2) * pulse.sps * worst_rate)
        t0 = time.monotonic()
        drained = run_flowgraph(tb, tb.samples_consumed, lambda now: bool(now) and min(now.values()) >= expected,
                                timeout_s=opts.timeout_s, total=expected, desc="loopback", on_start=sender.start)
        seconds = time.monotonic() - t0
        sender.close()
        if not drained:
            log(f"warning: the flowgraph stopped before consuming the whole stream ({tb.samples_consumed()})")
        sync_stats = tb.sync_stats()
        recording = recorder.finish(tb) if recorder is not None else None
        results = rx.finish(len(setup.frames), tb)

    report = link_report(
        results, snr_b_db=opts.snr_b_db, snr_e_db=opts.snr_e_db,
        impairments={"bob": bob_imp.to_dict(), "eve": eve_imp.to_dict()}, mode=keys.mode,
        params=setup.model.config.cipher_params, model=setup.model_name, images=setup.source,
        image_sizes=[list(im.shape) for im in setup.images], key_id=keys.key_id, pulse=pulse, seed=opts.seed,
        samples_per_branch=int(stream.size * pulse.sps), seconds=seconds, sync=sync_stats)
    if recording is not None:
        report["recording"] = recording
    write_report(report, setup.images, results, out_dir)
    return report
