"""``jscec baseline``: every (modulation, code rate) of the digital baseline over one link, as one JSON document.

``awgn`` runs :func:`baseline.pipeline.simulate` (symbols + complex AWGN in numpy, no frames); ``sim``, ``ota``
and ``replay`` run :mod:`link.apps.baseline` over the links through the one runner.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

from baseline.report import NOTE, NOTE_RADIO, key_for_run, parse_choices
from jscec.errors import UserError
from radio.impairments import Impairments
from radio.pulse import PulseShape

LINKS = ("awgn", "sim", "ota", "replay")


@dataclass
class BaselineOptions:
    link: str = "awgn"
    codec: str = "heif"
    mods: list = field(default_factory=lambda: ["16qam"])
    rates: list = field(default_factory=lambda: ["1/2", "3/4"])
    snrs_db: list = field(default_factory=lambda: [4.0, 6.0, 7.0, 8.0, 10.0, 12.0, 14.0])
    images: int = 100
    rho: float = 1 / 6
    rho_text: str = "1/6"             # as the user wrote it (printed)
    data: str | None = None
    ldpc_iters: int = 20
    decoder: str = "nms"
    key_file: str | None = None
    seed: int = 0
    impairments: Impairments = field(default_factory=Impairments)   # sim
    pulse: PulseShape = field(default_factory=PulseShape)            # sim, ota
    equalizer_taps: int = 0
    radio: object = None              # link.links.ota.RadioOptions (ota)
    record: str | None = None         # ota: recording base
    recording: str | None = None      # replay: the recording
    timeout_s: float = 600.0


def run_baseline(opts: BaselineOptions, on_result=lambda res: None, log=print) -> dict:
    """Run every (modulation, rate) over ``opts.link``; ``on_result(res)`` after each. Returns the JSON document."""
    from baseline.pipeline import channel_uses, eval_images, simulate
    from crypto.nonce_state import CounterState
    from link.apps.baseline import run_ota, run_replay, simulate_link
    from link.apps.baseline_recording import aes_key_id

    if opts.link not in LINKS:
        raise UserError(f"unknown --link {opts.link!r}: choose one of {', '.join(LINKS)}")
    if opts.link == "replay":
        import math

        res = run_replay(opts.recording, opts.key_file, equalizer_taps=opts.equalizer_taps, max_iter=opts.ldpc_iters,
                         method=opts.decoder, timeout_s=opts.timeout_s, log=log)
        rec = res["recording"]
        log(f"baseline: replay of {rec['meta']} ({rec['samples']} samples, {rec['frames_found']} frames found), "
            f"{res['images']} images of {rec['image_source']}")
        on_result(res)
        k = res["budget"]["k_symbols"]
        return {"command": "baseline", "link": "replay", "dataset": rec["image_source"],
                "rho": k / math.prod(rec["image_shape"]), "k_symbols": k, "images": res["images"],
                "note": NOTE_RADIO, "runs": [res]}
    (codec,), mods, rates = parse_choices([opts.codec], opts.mods, opts.rates, opts.ldpc_iters)
    if opts.record and len(mods) * len(rates) > 1:
        raise UserError("--record takes one --mod and one --rate (one recording per transmission)")
    progress = sys.stderr.isatty()
    images, mean_u8, name = eval_images(opts.data, opts.images, seed=opts.seed, progress=progress)
    k = channel_uses(opts.rho, images.shape[1:])
    key = key_for_run(opts.key_file)
    # AES-CTR nonces = frame numbers, never twice under one key: across modulations, rates and runs.
    counters = CounterState(opts.key_file, aes_key_id(key))
    radio = opts.radio
    log(f"baseline: {len(images)} test images of {name}, rho = {opts.rho_text} -> k = {k} symbols, seed {opts.seed}, "
        f"AES key {'from ' + opts.key_file if opts.key_file else 'random for this run'}, link {opts.link}"
        + (f" ({radio.tx} -> {radio.bob})" if opts.link == "ota" else ""))
    common = {"k_symbols": k, "max_iter": opts.ldpc_iters, "method": opts.decoder, "progress": progress}
    runs = []
    for mod in mods:
        for rate in rates:
            first = counters.reserve(len(images))
            if opts.link == "ota":
                res = run_ota(images, mean_u8, codec, mod, rate, key, radio, pulse=opts.pulse,
                              equalizer_taps=opts.equalizer_taps, seed=opts.seed, first_frame=first, record=opts.record,
                              key_file=opts.key_file, source=f"{name}: the first {len(images)} images of test split "
                              f"{opts.seed}", timeout_s=opts.timeout_s, log=log, **common)
            elif opts.link == "sim":
                res = simulate_link(images, mean_u8, codec, mod, rate, opts.snrs_db, key, seed=opts.seed,
                                    first_frame=first, impairments=opts.impairments, pulse=opts.pulse,
                                    equalizer_taps=opts.equalizer_taps, **common)
            else:
                res = simulate(images, mean_u8, codec, mod, rate, opts.snrs_db, key, seed=opts.seed,
                               first_frame=first, **common)
            res["frame_numbers"] = [first, first + len(images)]
            if not opts.key_file and "recording" in res:    # the fresh key was saved beside the recording
                counters.keep_with(res["recording"]["key_file"])
            runs.append(res)
            on_result(res)
    return {"command": "baseline", "link": opts.link, "dataset": name, "rho": opts.rho, "k_symbols": k,
            "images": len(images), "seed": opts.seed, "note": NOTE if opts.link == "awgn" else NOTE_RADIO,
            "runs": runs}
