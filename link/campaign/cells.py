"""Running one cell: the project's own functions, called as the commands call them, results as store rows.

* DeepJSCEC on ``symbols``: :func:`models.evaluate.evaluate` (what ``jscec eval`` runs) at the cell's SNR,
  seed and images — the same numbers as ``jscec eval --snr S --seed SEED --images N``;
* the baseline on ``symbols``: :func:`baseline.pipeline.simulate` over the cell's SNR list (what ``jscec
  baseline --link awgn`` runs, noise of the i-th SNR from ``[seed, i]``) under the cell's own AES key;
* DeepJSCEC on ``awgn``/``sim``/``ota``: :func:`link.runner.run` of :class:`link.apps.deepjscec.DeepJscecApp`
  over the link (with a SigMF capture when the plan records), output in ``<store>.cells/<cell_id>/``;
* the baseline on ``sim``/``ota`` and any ``replay``: :func:`link.apps.baseline_sweep.run_baseline` or the
  runner over :class:`link.links.replay.ReplayLink`.

A cell returns a plain dict (it crosses a process boundary): ``seconds``, ``summary`` (JSON), and rows
for the store's ``points``, ``images``, ``frames``, ``drops`` and ``devices`` tables.

The AES key of a simulated baseline cell is HMAC-SHA-256(campaign key, cell id)[:16], the campaign key
being a secret file beside the store (``<store>.keys/campaign.key``, mode 0600), and its frame numbers
(AES-CTR nonces) start at 0: each (key, nonce) belongs to one cell, whose payloads are a function of
its settings, so a cell run again after an interruption encrypts the same payloads under the same
nonces and nothing else ever does. Nothing of a simulated cell leaves the process. Baseline cells over
radios take a fresh random key per run, with counters as ``jscec baseline`` takes them.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import json
import shutil
import time
from pathlib import Path

from jscec.errors import UserError

_QUIET = lambda *a, **k: None  # noqa: E731


def campaign_key(store_path) -> bytes:
    """The campaign's secret (made on first use, mode 0600)."""
    from crypto.aes_ctr import load_key, new_key, save_key
    from link.campaign.store import keys_dir

    path = keys_dir(store_path) / "campaign.key"
    if not path.exists():
        save_key(path, new_key())
    return load_key(path)


def cell_aes_key(store_path, cell_id: str) -> bytes:
    """The AES-128 key of one simulated baseline cell (never written anywhere)."""
    return hmac.new(campaign_key(store_path), b"jscec campaign baseline cell\x00" + cell_id.encode(),
                    hashlib.sha256).digest()[:16]


@functools.lru_cache(maxsize=4)
def _dataset(data: str):
    from models.datasets import load_dataset

    return load_dataset(None if data == "default" else data, progress=False)


@functools.lru_cache(maxsize=8)
def _eval_images(data: str, split_seed: int, count: int):
    from models.datasets import mean_image, split_indices

    ds = _dataset(data)
    split = split_indices(len(ds.images), seed=split_seed)
    test = split["test"][:count]
    return ds.images[test], mean_image(ds.images[split["train"]]), ds.name


@functools.lru_cache(maxsize=8)
def _models(path: str):
    from models.evaluate import load_bob, load_eve

    return load_bob(path), load_eve(path)


@functools.lru_cache(maxsize=8)
def _baseline_images(data: str, count: int, seed: int):
    from baseline.pipeline import eval_images

    return eval_images(None if data == "default" else data, count, seed=seed)


def run_cell(cell: dict, store_path: str, threads: int = 0) -> dict:
    """Run ``cell`` (:meth:`link.campaign.plan.Cell.as_dict`); its rows for the store."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    system, link = cell["system"], cell["link"]
    if system == "deepjscec" and link == "symbols":
        out = _deepjscec_symbols(cell)
    elif system == "baseline" and link == "symbols":
        out = _baseline_symbols(cell, store_path)
    elif system == "deepjscec":
        out = _deepjscec_framed(cell, store_path)
    elif system == "baseline":
        out = _baseline_radio(cell, store_path)
    else:
        out = _replay(cell, store_path)
    out["seconds"] = time.perf_counter() - t0
    return out


# -- symbol level ---------------------------------------------------------------------------------------
def _deepjscec_symbols(cell: dict) -> dict:
    from models.evaluate import evaluate

    s = cell["settings"]
    bob, eve = _models(s["model_path"])
    images, mean_img, name = _eval_images(s["data"], int(bob.card.get("split_seed", 0)), s["images"])
    snr = s["point"]["snr_db"]
    rep = evaluate(bob, eve, images, [snr], mean_img, seed=cell["seed"], per_image=True)
    (row,) = rep["results"]
    points, rows = [], []
    for role in ("bob", "eve"):
        if role not in row:
            continue
        per = row[role].pop("per_image")
        points.append({"role": role, "snr_db": snr, "snr_b_db": snr, "snr_e_db": snr, "psnr": row[role]["psnr"],
                       "ssim": row[role]["ssim"], "ms_ssim": row[role].get("ms_ssim"), "images": len(per["psnr"])})
        rows += [{"role": role, "snr_db": snr, "image": i, "psnr": p, "ssim": q,
                  "ms_ssim": per["ms_ssim"][i] if "ms_ssim" in per else None}
                 for i, (p, q) in enumerate(zip(per["psnr"], per["ssim"]))]
    summary = {"command": "eval", "model": Path(s["model_path"]).stem, "dataset": name, "rho": bob.config.rho,
               "cipher_mode": bob.config.cipher_mode, "cipher_params": bob.config.cipher_params,
               "images": len(images), "seed": cell["seed"], "mean_image": rep["mean_image"], "results": rep["results"]}
    return {"summary": summary, "points": points, "images": rows}


def _baseline_symbols(cell: dict, store_path) -> dict:
    from baseline.pipeline import channel_uses, simulate
    from baseline.report import NOTE, parse_choices
    from link.apps.baseline_recording import aes_key_id

    s = cell["settings"]
    (codec,), (mod,), (rate,) = parse_choices([s["codec"]], [s["mod"]], [s["rate"]], s["ldpc_iters"])
    images, mean_u8, name = _baseline_images(s["data"], s["images"], cell["seed"])
    k = channel_uses(s["rho_value"], images.shape[1:])
    key = cell_aes_key(store_path, cell["cell_id"])
    res = simulate(images, mean_u8, codec, mod, rate, s["snrs_db"], key, k_symbols=k, seed=cell["seed"],
                   first_frame=0, max_iter=s["ldpc_iters"], method=s["decoder"], per_image=True)
    res["frame_numbers"] = [0, len(images)]
    points, rows = [], []
    for r in res["results"]:
        per = r.pop("per_image")
        points.append({"role": "bob", "snr_db": r["snr_db"], "snr_b_db": r["snr_db"], "psnr": r["psnr"],
                       "ssim": r["ssim"], "images": r["images"], "undecodable": r["undecodable"],
                       "extra": {k2: r[k2] for k2 in ("no_fit", "ldpc_detected_failures", "undetected_errors")}})
        rows += [{"role": "bob", "snr_db": r["snr_db"], "image": i, "psnr": p, "ssim": q, "decoded": d}
                 for i, (p, q, d) in enumerate(zip(per["psnr"], per["ssim"], per["decoded"]))]
    summary = {"command": "baseline", "link": "awgn", "dataset": name, "rho": s["rho_value"], "k_symbols": k,
               "images": len(images), "seed": cell["seed"], "aes_key_id": aes_key_id(key), "note": NOTE, "run": res}
    return {"summary": summary, "points": points, "images": rows}


# -- framed links ---------------------------------------------------------------------------------------
def _fresh_dir(store_path, cell_id: str) -> Path:
    from link.campaign.store import cells_dir

    out = cells_dir(store_path) / cell_id
    if out.exists():            # what an interrupted run of this cell left
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _radio_options(link: dict, tx_gain: float | None = None):
    from link.links.ota import RadioOptions

    o = RadioOptions(tx=link["tx"], bob=link["bob"], eve=link.get("eve"))
    for key, attr in (("freq", "freq"), ("sample_rate", "rate"), ("bw", "bw"), ("rx_gain", "rx_gain"),
                      ("agc", "agc"), ("buffer", "buffer"), ("tx_level", "tx_level"), ("tx_gain", "tx_gain")):
        if key in link:
            setattr(o, attr, link[key])
    if tx_gain is not None:
        o.tx_gain = tx_gain
    return o


def _impairments(link: dict, point: dict):
    from radio.impairments import Impairments

    return Impairments(**{k: float(point.get(k, link.get(k, 0.0))) for k in ("cfo", "sro_ppm", "phase_noise",
                                                                           "delay")})


def _deepjscec_framed(cell: dict, store_path) -> dict:
    from link.apps.deepjscec import DeepJscecApp, ImageOptions
    from link.runner import RunOptions, run

    s, point, seed = cell["settings"], cell["settings"]["point"], cell["seed"]
    out = _fresh_dir(store_path, cell["cell_id"])
    lk = s["link"]
    if cell["link"] == "awgn":
        from link.links.awgn import AwgnLink, AwgnOptions

        link = AwgnLink(AwgnOptions(snr_b_db=point["snr_db"], snr_e_db=point["snr_e_db"], seed=seed))
    elif cell["link"] == "sim":
        from link.links.sim import SimLink, SimOptions

        imp = _impairments(lk, point)
        link = SimLink(SimOptions(snr_b_db=point["snr_db"], snr_e_db=point["snr_e_db"], bob=imp, eve=imp, seed=seed))
    else:
        from link.links.ota import OtaLink

        link = OtaLink(_radio_options(lk, point.get("tx_gain_db")))
    app = DeepJscecApp(ImageOptions(model=s["model_path"], mode=s["mode"], data=None if s["data"] == "photos"
                                    else s["data"], images=s["images"], seed=seed, sps=lk.get("sps"),
                                    rolloff=lk.get("rolloff"),
                                    chains=("bob", "eve") if cell["link"] != "ota" or lk.get("eve") else ("bob",)),
                       log=_QUIET)
    run_opts = RunOptions(out_dir=str(out), equalizer_taps=s.get("equalizer_taps", 0), timeout_s=s.get("timeout_s",
                                                                                                      900.0))
    if s.get("record"):
        from link.capture import CaptureOptions, run_capture

        report = run_capture(app, link, run_opts, CaptureOptions(recording=str(out / "capture"),
                                                                 rate=lk.get("sample_rate", 1e6),
                                                                 freq=lk.get("freq", 2.4e9)), log=_QUIET)
    else:
        report = run(app, link, run_opts, log=_QUIET)
    return _framed_rows(report, out, point, cell["link"])


def _framed_rows(report: dict, out: Path, point: dict, kind: str) -> dict:
    per_image = report.pop("per_image", {})
    points, rows, frames, drops = [], [], [], []
    for role in ("bob", "eve"):
        side = report.get(role) or {}
        if not side.get("frames_sent") and role not in per_image:
            continue
        set_snr = point.get("snr_db") if role == "bob" else point.get("snr_e_db")
        measured = report.get("snr_b_db" if role == "bob" else "snr_e_db") if kind == "ota" else None
        chain = {}
        path = out / f"{role}.json"
        if path.is_file():
            chain = json.loads(path.read_text())
        rec_frames = chain.get("per_frame", [])
        snrs = [f["snr_db"] for f in rec_frames if f.get("ok") and f.get("snr_db") is not None]
        points.append({"role": role, "snr_db": set_snr, "snr_b_db": point.get("snr_db"),
                       "snr_e_db": point.get("snr_e_db"), "tx_gain_db": point.get("tx_gain_db"),
                       "psnr": side.get("psnr"), "ssim": side.get("ssim"), "ms_ssim": side.get("ms_ssim"),
                       "mer_db": side.get("mer_db"),
                       "measured_snr_db": measured if measured is not None else (sum(snrs) / len(snrs) if snrs
                                                                                else None),
                       "images": len(per_image.get(role, [])), "frames_sent": side.get("frames_sent"),
                       "frames_ok": side.get("frames_ok")})
        for r in per_image.get(role, []):
            rows.append({"role": role, "snr_db": set_snr, "image": r["index"], "psnr": r.get("psnr"),
                         "ssim": r.get("ssim"), "ms_ssim": r.get("ms_ssim"),
                         "decoded": int(bool(r.get("frames_ok")))})
        for i, f in enumerate(rec_frames):
            frames.append({"role": role, "seq": i, **{k: f.get(k) for k in ("counter", "image", "chunk", "ok", "reason",
                                                                            "mer_db", "snr_db", "cfo", "sro_ppm",
                                                                            "timing")}})
        drops += [{"role": role, "reason": k, "count": v} for k, v in (side.get("frames_dropped") or {}).items()]
    devices = [{"role": uri, "description": d} for uri, d in (report.get("devices") or {}).items()]
    rec = report.get("recording")
    return {"summary": report, "points": points, "images": rows, "frames": frames, "drops": drops,
            "devices": devices, "out_dir": str(out), "recording": rec.get("meta") if isinstance(rec, dict) else None}


def _baseline_radio(cell: dict, store_path) -> dict:
    from link.apps.baseline_sweep import BaselineOptions, run_baseline

    s, point = cell["settings"], cell["settings"]["point"]
    lk = s["link"]
    out = _fresh_dir(store_path, cell["cell_id"])
    opts = BaselineOptions(link=cell["link"], codec=s["codec"], mods=[s["mod"]], rates=[s["rate"]],
                           snrs_db=s["snrs_db"] or [10.0], images=s["images"], rho=s["rho_value"], rho_text=s["rho"],
                           data=None if s["data"] == "default" else s["data"], ldpc_iters=s["ldpc_iters"],
                           decoder=s["decoder"], seed=cell["seed"], equalizer_taps=s.get("equalizer_taps", 0),
                           timeout_s=s.get("timeout_s", 900.0))
    if cell["link"] == "sim":
        opts.impairments = _impairments(lk, point)
    else:
        opts.radio = _radio_options(lk, point.get("tx_gain_db"))
        if s.get("record"):
            opts.record = str(out / "capture")
    doc = run_baseline(opts, log=_QUIET)
    return _baseline_rows(doc, point, out)


def _baseline_rows(doc: dict, point: dict, out: Path | None) -> dict:
    (res,) = doc["runs"]
    points = []
    for r in res["results"]:
        points.append({"role": "bob", "snr_db": r["snr_db"] if not r.get("snr_estimated") else None,
                       "snr_b_db": r["snr_db"], "tx_gain_db": point.get("tx_gain_db"), "psnr": r["psnr"],
                       "ssim": r["ssim"], "mer_db": r.get("mer_db"),
                       "measured_snr_db": r["snr_db"] if r.get("snr_estimated") else None,
                       "images": r["images"], "undecodable": r["undecodable"],
                       "frames_sent": r.get("frames_sent"), "frames_ok": r.get("frames_received"),
                       "extra": {k: r[k] for k in ("frames_dropped", "undetected_errors") if k in r}})
    rec = res.get("recording")
    devices = [{"role": uri, "description": d} for uri, d in (res.get("devices") or {}).items()]
    return {"summary": doc, "points": points, "devices": devices, "out_dir": str(out) if out else None,
            "recording": rec.get("meta") if isinstance(rec, dict) else None}


def _replay(cell: dict, store_path) -> dict:
    s = cell["settings"]
    meta = json.loads(Path(s["recording"]).read_text()).get("global", {}) if Path(s["recording"]).is_file() else {}
    if meta.get("jscec:payload") == "digital-baseline":
        from link.apps.baseline_sweep import BaselineOptions, run_baseline

        if not s.get("key"):
            raise UserError(f"replaying {Path(s['recording']).name} needs its AES key: recordings = [{{path = …, "
                            "key = …}}]")
        doc = run_baseline(BaselineOptions(link="replay", recording=s["recording"], key_file=s["key"]), log=_QUIET)
        out = _baseline_rows(doc, {}, None)
        out["label"] = f"baseline replay {Path(s['recording']).name}"
        return out
    from link.apps.deepjscec import DeepJscecApp, ImageOptions
    from link.links.replay import ReplayLink, ReplayOptions
    from link.runner import RunOptions, run

    out = _fresh_dir(store_path, cell["cell_id"])
    app = DeepJscecApp(ImageOptions(model=None, key=s.get("key"), chains=("bob", "eve") if s.get("key") else ("eve",)),
                       log=_QUIET)
    report = run(app, ReplayLink(ReplayOptions(s["recording"])), RunOptions(out_dir=str(out)), log=_QUIET)
    rows = _framed_rows(report, out, {}, "ota")
    rows["label"] = f"DeepJSCEC replay {Path(s['recording']).name}"
    return rows
