"""``jscec calibrate``: measure radios on the bench and write one profile per device (:mod:`calibration.profile`).

    TX radio ──comb──▶ air ──▶ RX radio(s)        (same URIs as ``jscec ota``; ``#N`` names a channel)

Steps, each over every receiver at once (the transmitter keeps a buffer or two ahead of the receivers;
buffers read right after a change of gain are discarded):

1. **Noise floor per RX gain, TX off** — the transmitter sends zeros; at each RX gain the noise power
   per sample (:func:`calibration.measure.noise_power`, blind to DC and spurs) and, at the run's RX gain,
   the residual DC.
2. **Oscillator offset** — the transmitter sends the calibration comb at RMS ``tx_level`` and
   ``tx_gain``; ``xo_samples`` per receiving device give the carrier offset and the sample-rate offset
   (:func:`calibration.measure.estimate_offset`), two estimates of e_RX − e_TX that must agree, and the
   image rejection. The native ``xo_correction`` of each radio is left as found (and recorded).
3. **SNR against TX gain** — the comb at each TX gain of the sweep; signal and noise per sample at
   every receiving channel (:func:`calibration.measure.comb_powers`).

Then each receiving device's profile gets its ``xo`` (against the transmitter) and its channels'
noise floor, DC, image rejection and SNR curve (kept per transmitter serial); the transmitter's
profile is made a root (reference of itself) unless it already has one. A PNG plots SNR against TX
gain for every receiver.
"""
from __future__ import annotations

import contextlib
import math
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calibration import measure
from calibration.profile import (VERSION, Profiles, file_name, new_profile, now_utc, read_profile,
                                 write_profile)
from jscec.errors import UserError

SETTLE_BUFFERS = 2        # buffers discarded after a change (kernel buffers, gain settling)
TX_LEAD_BUFFERS = 2       # buffers the transmitter keeps ahead of the receivers


@dataclass
class CalibrateOptions:
    """What to calibrate and how (``jscec calibrate --help``)."""

    tx: str
    rx: list = field(default_factory=list)
    freq: float = 2.4e9
    rate: float = 1e6
    bw: float | None = None
    tx_gain: float | None = None          # for the offset measurement (default: the top of the sweep − 10 dB)
    rx_gain: float = 30.0
    tx_level: float = 0.25
    buffer: int = 32768
    xo_samples: int = 2 ** 20
    sweep_samples: int = 65536
    tx_gains: list | None = None          # default: the TX range's top, down 60 dB in 5 dB steps
    rx_gains: list | None = None          # default: the RX range in 10 dB steps, and rx_gain
    folder: str | None = None             # profiles folder (default: calibration/profiles or $JSCEC_PROFILES)
    out: str | None = None                # one receiver: this file; several: this folder
    plot: str | None = None               # PNG path (default: beside the profiles)
    progress: bool = True


def _software() -> dict:
    out = {"python": platform.python_version(), "numpy": np.__version__, "jscec": None, "pyadi-iio": None,
           "libiio": None, "soapysdr": None}
    try:
        from importlib.metadata import version
        out["jscec"] = version("deepjscec-hil")
    except Exception:  # noqa: BLE001
        pass
    for key, mod, attr in (("pyadi-iio", "adi", "__version__"), ("soapysdr", "SoapySDR", "getAPIVersion")):
        try:
            m = __import__(mod)
            v = getattr(m, attr)
            out[key] = str(v() if callable(v) else v)
        except Exception:  # noqa: BLE001 - not installed: null
            pass
    try:
        import iio
        out["libiio"] = ".".join(str(v) for v in iio.version[:2])
    except Exception:  # noqa: BLE001
        pass
    return out


class _Bench:
    """The opened devices and the lock-step streaming: the transmitter pushes a buffer, every receiving
    device reads one (all its channels)."""

    def __init__(self, devices: dict, opts: CalibrateOptions, comb: measure.Comb, bar):
        self.devices = devices
        self.tx = devices["tx"]
        self.opts = opts
        self.n = int(opts.buffer)
        self.receivers = {}      # id(device) → device, in role order
        for role, dev in devices.items():
            if role != "tx":
                self.receivers.setdefault(id(dev), dev)
        reps = int(math.ceil(self.n / comb.period)) + 1
        self._comb = np.tile(comb.samples, reps) * opts.tx_level
        self._pos = 0
        self._period = comb.period
        self.sending = False
        self.bar = bar

    def _chunk(self) -> np.ndarray:
        if not self.sending:
            return np.zeros(self.n, np.complex64)
        start = self._pos % self._period
        self._pos += self.n
        return self._comb[start:start + self.n].astype(np.complex64)

    def start(self):
        for _ in range(TX_LEAD_BUFFERS):
            self.tx.tx(self._chunk())

    def step(self) -> dict:
        """One lock-step: returns id(device) → samples (channels, n)."""
        self.tx.tx(self._chunk())
        out = {}
        for key, dev in self.receivers.items():
            parts, have = [], 0
            while have < self.n:
                block = dev.rx(self.n - have)
                if block.num_samples == 0:
                    raise UserError(f"{dev.uri}: no samples from the receiver (timeout)")
                if block.discontinuity and have:
                    parts, have = [], 0   # a gap: start the buffer again
                s = np.atleast_2d(block.samples)
                parts.append(s)
                have += s.shape[1]
            out[key] = np.concatenate(parts, axis=1)[:, :self.n]
        if self.bar is not None:
            self.bar.update(1)
        return out

    def capture(self, samples: int) -> dict:
        """Discard ``SETTLE_BUFFERS``, then ``samples`` per receiving device: id → (channels, samples)."""
        for _ in range(SETTLE_BUFFERS):
            self.step()
        got = {k: [] for k in self.receivers}
        for _ in range(int(math.ceil(samples / self.n))):
            for k, v in self.step().items():
                got[k].append(v)
        return {k: np.concatenate(v, axis=1)[:, :samples] for k, v in got.items()}

    def set_gains(self, rx=None, tx=None):
        read = {}
        if tx is not None:
            read["tx"] = self.tx.set_gains(tx_gain_db=tx)["tx_gain_db"]
        if rx is not None:
            read["rx"] = {k: d.set_gains(rx_gain_db=rx)["rx_gain_db"] for k, d in self.receivers.items()}
        return read


def _default_tx_gains(dev) -> list:
    r = dev.gain_range("tx")
    lo, hi, step = r if r else (-89.75, 0.0, 0.25)
    top = hi
    return [float(g) for g in np.arange(top, max(lo, top - 60) - 1e-9, -5.0)]


def _default_rx_gains(devices: list, rx_gain: float) -> list:
    """Every 10 dB of the RX range all receivers share, its ends and the run's RX gain."""
    ranges = [r for r in (d.gain_range("rx") for d in devices) if r] or [(0.0, 70.0, 1.0)]
    lo, hi = max(r[0] for r in ranges), min(r[1] for r in ranges)
    gains = set(float(g) for g in np.arange(math.ceil(lo / 10) * 10, hi + 1e-9, 10.0))
    gains |= {float(lo), float(hi), float(rx_gain)}
    return sorted(gains)


def _identity(dev) -> dict:
    d = dev.describe()
    return {"serial": dev.serial(), "kind": dev.uri.kind, "uri": dev.uri.device_text, "hw": d.get("hw"),
            "fw_version": d.get("fw_version") or (d.get("hw_info") or {}).get("fw_version"),
            "native_xo_correction": dev.xo_correction_hz() is not None}


def run_calibration(opts: CalibrateOptions, log=print) -> dict:
    """Calibrate ``opts.tx`` against every ``opts.rx``; write the profiles and the plot; return a report."""
    from radio.devices import RadioSettings, open_devices

    if not opts.rx:
        raise UserError("calibrate needs at least one --rx URI")
    if not 0 < opts.tx_level <= 1:
        raise UserError(f"--tx-level must be in (0, 1], got {opts.tx_level}")
    if opts.xo_samples < 16 * measure.PERIOD:
        raise UserError(f"--xo-samples must be at least {16 * measure.PERIOD}")
    if opts.sweep_samples < 9 * measure.PERIOD:
        raise UserError(f"--sweep-samples must be at least {9 * measure.PERIOD} (nine periods of the comb)")
    uris = {"tx": opts.tx}
    for i, u in enumerate(opts.rx):
        uris[f"rx{i}"] = u
    if len(set(opts.rx)) != len(opts.rx):
        raise UserError("the same --rx URI is given twice")
    settings = RadioSettings(center_freq_hz=opts.freq, sample_rate_hz=opts.rate, rf_bandwidth_hz=opts.bw,
                             tx_gain_db=None, rx_gain_db=opts.rx_gain, buffer_size=opts.buffer)
    comb = measure.comb()
    report = {"created": now_utc(), "tx": opts.tx, "rx": list(opts.rx), "center_freq_hz": opts.freq,
              "sample_rate_hz": opts.rate, "receivers": {}}
    with contextlib.ExitStack() as stack:
        devices = open_devices(uris, settings, stack)
        tx = devices["tx"]
        tx_gains = [float(g) for g in (opts.tx_gains or _default_tx_gains(tx))]
        tx_gain = float(opts.tx_gain) if opts.tx_gain is not None else max(tx_gains) - 10.0
        if tx.uri.kind in ("pluto", "fake-pluto") and tx_gain > 0:
            raise UserError(f"{tx.uri}: Pluto TX gain is an attenuation (<= 0 dB), got {tx_gain}")
        receivers = [d for r, d in devices.items() if r != "tx"]
        rx_gains = [float(g) for g in (opts.rx_gains or _default_rx_gains(receivers, opts.rx_gain))]
        if opts.rx_gain not in rx_gains:
            rx_gains = sorted(rx_gains + [float(opts.rx_gain)])
        per_capture_sweep = SETTLE_BUFFERS + math.ceil(opts.sweep_samples / opts.buffer)
        total = (len(rx_gains) * (SETTLE_BUFFERS + math.ceil(opts.sweep_samples / opts.buffer))
                 + SETTLE_BUFFERS + math.ceil(opts.xo_samples / opts.buffer) + len(tx_gains) * per_capture_sweep)
        bar = None
        if opts.progress:
            from tqdm import tqdm
            bar = stack.enter_context(tqdm(total=total, unit="buffer", desc="calibrate", leave=False, disable=None))
        bench = _Bench(devices, opts, comb, bar)
        roles_of = {}
        for role, dev in devices.items():
            if role != "tx":
                roles_of.setdefault(id(dev), []).append(role)
        temps_start = {k: d.temperature_c() for k, d in bench.receivers.items()}
        tx_temp_start = tx.temperature_c()
        bench.start()
        # 1. noise floor per RX gain, TX off
        bench.sending = False
        floors = {k: {} for k in bench.receivers}
        dc = {}
        for g in rx_gains:
            read = bench.set_gains(rx=g)["rx"]
            cap = bench.capture(opts.sweep_samples)
            for k, y in cap.items():
                for ci, ch in enumerate(bench.receivers[k].rx_channels):
                    p = measure.noise_power(y[ci])
                    floors[k].setdefault(ch, []).append(
                        {"rx_gain_db": float(read[k]), "noise_dbfs": measure._db(p),
                         "noise_dbfs_per_hz": measure._db(p / opts.rate)})
                    if abs(g - opts.rx_gain) < 1e-9:
                        dc[(k, ch)] = measure._db(measure.dc_power(y[ci]))
        bench.set_gains(rx=opts.rx_gain)
        # 2. oscillator offset
        bench.set_gains(**{"tx": tx_gain})
        bench.sending = True
        cap = bench.capture(opts.xo_samples)
        offsets, xo = {}, {}
        for k, y in cap.items():
            dev = bench.receivers[k]
            if dev is tx:   # the transmitter hears itself: one oscillator, no offset
                off = measure.Offset(0.0, 1.0, 0.0, 0.0, 0)
            else:
                off = measure.estimate_offset(y[0], comb, opts.freq, opts.rate)
            offsets[k] = off
            xo[k] = off.ppm(opts.freq, opts.rate)
            xo[k]["tones_used"] = off.tones_used
            if not xo[k]["agree"]:
                log(f"warning: {dev.uri}: the offset from the carrier ({xo[k]['ppm_from_cfo']:+.4f} ppm) and from "
                    f"the sample rate ({xo[k]['ppm_from_sro']:+.4f} ppm) disagree by "
                    f"{xo[k]['disagreement_ppm']:+.4f} ppm: do LO and sample clock share one reference?")
        residual = {}
        for k, y in cap.items():
            dev = bench.receivers[k]
            residual[k] = {ch: measure.comb_powers(y[ci][:opts.sweep_samples], comb, offsets[k])
                           for ci, ch in enumerate(dev.rx_channels)}
        # 3. SNR against TX gain
        curves = {k: {ch: [] for ch in d.rx_channels} for k, d in bench.receivers.items()}
        for g in tx_gains:
            read = bench.set_gains(tx=g)["tx"]
            cap = bench.capture(opts.sweep_samples)
            for k, y in cap.items():
                for ci, ch in enumerate(bench.receivers[k].rx_channels):
                    pw = measure.comb_powers(y[ci], comb, offsets[k])
                    curves[k][ch].append({"tx_gain_db": float(read), "signal_dbfs": pw["signal_dbfs"],
                                          "noise_dbfs": pw["noise_dbfs"], "snr_db": pw["snr_db"]})
        temps_end = {k: d.temperature_c() for k, d in bench.receivers.items()}
        tx_temp_end = tx.temperature_c()
        # profiles
        software = _software()
        profiles = Profiles(opts.folder)
        tx_id = _identity(tx)
        tx_serial = tx_id["serial"]
        tx_xo = tx.xo_correction_hz()
        written = {}
        out_single = opts.out if opts.out and len(bench.receivers) == 1 and opts.out.endswith(".json") else None
        folder = Path(opts.out) if opts.out and not out_single else profiles.folder

        def target(serial: str) -> Path:
            return Path(out_single) if out_single else folder / file_name(serial)

        tx_t = _mean_temp(tx_temp_start, tx_temp_end)
        for k, dev in bench.receivers.items():
            ident = _identity(dev)
            serial = ident["serial"]
            t = _mean_temp(temps_start[k], temps_end[k])
            path = target(serial)
            doc = _load_or_new(path, ident, software, opts, t)
            doc["device"], doc["software"], doc["created"] = ident, software, now_utc()
            doc["version"] = VERSION
            doc["conditions"] = _conditions(opts, t)
            if dev is not tx:
                doc["xo"] = dict(xo[k], reference=tx_serial, reference_uri=tx.uri.device_text,
                                 xo_correction_hz=dev.xo_correction_hz(), reference_xo_correction_hz=tx_xo,
                                 temperature_c=t, reference_temperature_c=tx_t, center_freq_hz=opts.freq,
                                 sample_rate_hz=opts.rate)
            elif not doc.get("xo"):
                doc["xo"] = _root_xo(serial, dev, opts, t)
            for ch in dev.rx_channels:
                entry = doc["rx"].setdefault(str(ch), {})
                res = residual[k][ch]
                entry.update(noise_floor=floors[k][ch], dc_dbfs=dc.get((k, ch)),
                             image_rejection_db=res["image_rejection_db"],
                             image_rejection_tx_db=res["image_rejection_tx_db"],
                             image_rejection_rx_db=res["image_rejection_rx_db"])
                entry.setdefault("snr_curves", {})[tx_serial] = {
                    "tx_uri": tx.uri.device_text, "rx_gain_db": float(opts.rx_gain), "tx_level": float(opts.tx_level),
                    "sample_rate_hz": float(opts.rate), "center_freq_hz": float(opts.freq), "created": now_utc(),
                    "temperature_c": t, "points": curves[k][ch]}
            written[serial] = (doc, path)
            report["receivers"][serial] = {
                "uri": dev.uri.device_text, "roles": roles_of[k], "channels": list(dev.rx_channels),
                "xo": doc["xo"] if dev is not tx else {"ppm": 0.0, "reference": tx_serial, "same_device": True},
                "temperature_c": t, "dc_dbfs": {ch: dc.get((k, ch)) for ch in dev.rx_channels},
                "image_rejection_db": {ch: residual[k][ch]["image_rejection_db"] for ch in dev.rx_channels},
                "noise_floor": floors[k], "snr_curve": curves[k], "profile": str(path)}
        if tx_serial not in written:
            path = target(tx_serial) if not out_single else Path(out_single).with_name(file_name(tx_serial))
            doc = _load_or_new(path, tx_id, software, opts, tx_t)
            if not doc.get("xo"):
                doc["xo"] = _root_xo(tx_serial, tx, opts, tx_t)
            doc["device"], doc["software"] = tx_id, software
            written[tx_serial] = (doc, path)
        plot = opts.plot or str((Path(out_single).parent if out_single else folder)
                                / f"snr-vs-tx-gain-{file_name(tx_serial)[:-5]}.png")
        for serial, (doc, path) in written.items():
            if serial != tx_serial or tx_serial in report["receivers"]:
                doc["plot"] = Path(plot).name
            write_profile(doc, path)
        report["profiles"] = {s: str(p) for s, (_, p) in written.items()}
        report["tx_serial"] = tx_serial
        report["tx_gain_db"] = tx_gain
        report["tx_temperature_c"] = tx_t
        report["plot"] = _plot(report, plot)
    return report


def _mean_temp(a, b):
    vals = [v for v in (a, b) if v is not None]
    return float(np.mean(vals)) if vals else None


def _conditions(opts, t):
    return {"center_freq_hz": float(opts.freq), "sample_rate_hz": float(opts.rate),
            "rf_bandwidth_hz": float(opts.bw or opts.rate), "rx_gain_db": float(opts.rx_gain),
            "temperature_c": t}


def _root_xo(serial, dev, opts, t):
    return {"reference": serial, "ppm": 0.0, "ppm_std": 0.0, "xo_correction_hz": dev.xo_correction_hz(),
            "reference_xo_correction_hz": dev.xo_correction_hz(), "temperature_c": t,
            "reference_temperature_c": t, "center_freq_hz": float(opts.freq), "sample_rate_hz": float(opts.rate)}


def _load_or_new(path: Path, ident: dict, software: dict, opts, t) -> dict:
    if path.is_file():
        try:
            doc = read_profile(path)
            if str(doc["device"]["serial"]) == str(ident["serial"]):
                doc.pop("_path", None)
                return doc
        except UserError:
            pass   # unreadable or another device's: start afresh
    return new_profile(ident, _conditions(opts, t), software)


def _plot(report: dict, path: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for serial, r in report["receivers"].items():
        for ch, pts in r["snr_curve"].items():
            g = [p["tx_gain_db"] for p in pts]
            s = [p["snr_db"] for p in pts]
            ax.plot(g, s, "o-", label=f"{r['uri']} #{ch} ({serial[:12]})")
    ax.set_xlabel("TX gain (dB)")
    ax.set_ylabel("SNR per sample, full band (dB)")
    ax.set_title(f"SNR against TX gain, TX {report['tx_serial'][:12]}, {report['center_freq_hz'] / 1e6:g} MHz",
                 fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def verify_calibration(opts: CalibrateOptions, log=print, samples: int | None = None) -> dict:
    """Open the radios again, apply the profiles' oscillator corrections (:mod:`calibration.correct`) and
    measure what offset is left: per receiving device, the residual carrier offset (Hz) and clock offset."""
    from calibration.correct import apply_xo_corrections
    from radio.devices import RadioSettings, open_devices

    uris = {"tx": opts.tx}
    for i, u in enumerate(opts.rx):
        uris[f"rx{i}"] = u
    settings = RadioSettings(center_freq_hz=opts.freq, sample_rate_hz=opts.rate, rf_bandwidth_hz=opts.bw,
                             tx_gain_db=None, rx_gain_db=opts.rx_gain, buffer_size=opts.buffer)
    comb = measure.comb()
    out = {}
    with contextlib.ExitStack() as stack:
        devices = open_devices(uris, settings, stack)
        tx = devices["tx"]
        tx_gains = [float(g) for g in (opts.tx_gains or _default_tx_gains(tx))]
        corrections = apply_xo_corrections(devices, Profiles(opts.folder), stack, log=log)
        bench = _Bench(devices, opts, comb, None)
        bench.start()
        bench.set_gains(tx=float(opts.tx_gain) if opts.tx_gain is not None else max(tx_gains) - 10.0)
        bench.sending = True
        cap = bench.capture(samples or opts.xo_samples)
        for k, y in cap.items():
            dev = bench.receivers[k]
            serial = dev.serial()
            if dev is tx:
                continue
            off = measure.estimate_offset(y[0], comb, opts.freq, opts.rate)
            p = off.ppm(opts.freq, opts.rate)
            out[serial] = {"uri": dev.uri.device_text, "correction": corrections.get(serial),
                           "residual_cfo_hz": p["cfo_hz"], "residual_ppm": p["ppm"],
                           "residual_sro_ppm": p["sro_ppm"]}
    return out
