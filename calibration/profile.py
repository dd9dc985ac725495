"""Device profiles: what ``jscec calibrate`` measured about one radio, filed under its serial number.

One JSON file per device serial (``<serial>.json``) in the profiles folder — ``calibration/profiles/``
beside this module unless ``--profiles DIR`` or ``$JSCEC_PROFILES`` names another — or a path given
with ``--out``. Schema ``jscec-device-profile``, version 1::

    {
      "schema": "jscec-device-profile", "version": 1,
      "created": "2026-12-06T16:00:00+00:00",          # UTC, when this calibration ran
      "software": {"jscec": "0.1.0", "python": "3.11.2", "numpy": "1.26.4",
                   "pyadi-iio": "0.0.21", "libiio": "0.24", "soapysdr": null},
      "device": {"serial": "104473dc599300131c0015003feb1e4ba5", "kind": "pluto", "uri": "pluto:ip:…",
                 "hw": "Analog Devices PlutoSDR Rev.C (Z7010-AD9363A)", "fw_version": "v0.38",
                 "native_xo_correction": true},
      "conditions": {"center_freq_hz": 2.4e9, "sample_rate_hz": 1e6, "rf_bandwidth_hz": 1e6,
                     "temperature_c": 41.3},              # the device's own sensor (null: none)
      "xo": {                                            # this device's reference against another's
        "reference": "<serial of the transmitter it was measured against>",  # own serial: a root
        "ppm": 13.2107,                                  # e_self − e_reference (effective, see below)
        "ppm_std": 0.0001,
        "ppm_from_cfo": 13.2107, "ppm_from_cfo_std": 0.00001,
        "ppm_from_sro": 13.2104, "ppm_from_sro_std": 0.0003,
        "agree": true, "disagreement_ppm": 0.0003, "tolerance_ppm": 0.01,
        "cfo_hz": -31705.6, "sro_ppm": -13.21,
        "xo_correction_hz": 40000000,                    # this device's xo_correction while measured
        "reference_xo_correction_hz": 40000000,          # the reference's (null: none)
        "temperature_c": 41.3, "reference_temperature_c": 44.0,
        "center_freq_hz": 2.4e9, "sample_rate_hz": 1e6},
      "rx": {"<channel>": {
        "noise_floor": [{"rx_gain_db": 0, "noise_dbfs": -62.3, "noise_dbfs_per_hz": -122.3}, …],  # TX off
        "dc_dbfs": -55.1,                                # |mean|² with the TX off, at the curve's RX gain
        "image_rejection_db": 52.0,                      # tones / their IQ images (TX and RX together)
        "image_rejection_tx_db": 54.1, "image_rejection_rx_db": 55.9,   # null where they coincide
        "snr_curves": {"<transmitter serial>": {
          "tx_uri": "…", "rx_gain_db": 30, "tx_level": 0.25, "sample_rate_hz": 1e6,
          "center_freq_hz": 2.4e9, "created": "…", "temperature_c": 41.3,
          "points": [{"tx_gain_db": 0, "signal_dbfs": -18.2, "noise_dbfs": -62.1, "snr_db": 43.9}, …]}}}},
      "plot": "snr-vs-tx-gain-<tx serial>.png"
    }

**Conventions.** ``ppm`` is e_self − e_reference: positive when this device's oscillator runs fast of
the reference's. Both are *effective* errors, with the ``xo_correction`` values then in force; a chain
of profiles (A measured against B, B against C) gives A against C. The SNR points are per sample over
the whole sample band with the calibration comb at RMS ``tx_level`` (of the device's nominal TX
amplitude): the link's SNR per symbol after the matched filter is ``snr_db + 10·log10(sps)`` at the
same RMS level (:func:`predict_snr`). ``noise_dbfs`` is the noise power per sample at the ADC.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
from pathlib import Path

import numpy as np

from jscec.errors import UserError

SCHEMA = "jscec-device-profile"
VERSION = 1
#: Profiles older than this are warned about (a crystal ages, the bench moves).
MAX_AGE_H = 24.0
#: Profiles measured at a device temperature further than this from now are warned about.
TEMPERATURE_BAND_C = 5.0
NOMINAL_XO_HZ = 40e6


def default_folder() -> Path:
    """``$JSCEC_PROFILES`` or ``calibration/profiles/`` beside this module."""
    env = os.environ.get("JSCEC_PROFILES")
    return Path(env) if env else Path(__file__).resolve().parent / "profiles"


def file_name(serial: str) -> str:
    """The profile's file name for a serial (characters other than letters, digits, ``.-_`` become ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(serial)) + ".json"


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def new_profile(device: dict, conditions: dict, software: dict) -> dict:
    return {"schema": SCHEMA, "version": VERSION, "created": now_utc(), "software": software,
            "device": device, "conditions": conditions, "xo": None, "rx": {}}


def validate(doc, source: str = "profile") -> dict:
    """Check a profile's schema, version and the fields every user relies on; one-line UserError."""
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise UserError(f"{source}: not a jscec device profile (no \"schema\": \"{SCHEMA}\")")
    version = doc.get("version")
    if not isinstance(version, int) or version < 1:
        raise UserError(f"{source}: bad profile version {version!r}")
    if version > VERSION:
        raise UserError(f"{source}: profile version {version} is newer than this jscec understands ({VERSION})")
    dev = doc.get("device")
    if not isinstance(dev, dict) or not dev.get("serial"):
        raise UserError(f"{source}: profile has no device serial")
    for key in ("created", "conditions", "rx"):
        if key not in doc:
            raise UserError(f"{source}: profile has no \"{key}\"")
    xo = doc.get("xo")
    if xo is not None and (not isinstance(xo, dict) or not isinstance(xo.get("ppm"), (int, float))
                           or not xo.get("reference")):
        raise UserError(f"{source}: profile's \"xo\" needs \"reference\" and a numeric \"ppm\"")
    return doc


def read_profile(path) -> dict:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"no profile at {path}") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read profile {path}: {str(exc).splitlines()[0]}") from None
    return validate(doc, str(path))


def write_profile(doc: dict, path) -> Path:
    """Write atomically (temporary file, then rename) as indented JSON."""
    validate(doc, "profile to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=_json_default) + "\n")
    os.replace(tmp, path)
    return path


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON: {type(o).__name__}")


class Profiles:
    """The profiles a run may use: files given explicitly first, then a folder's ``<serial>.json``."""

    def __init__(self, folder=None, files=()):
        self.folder = Path(folder) if folder else default_folder()
        self._by_serial: dict[str, dict] = {}
        for f in files or ():
            doc = read_profile(f)
            doc["_path"] = str(f)
            self._by_serial[str(doc["device"]["serial"])] = doc

    def get(self, serial: str) -> dict | None:
        serial = str(serial)
        if serial not in self._by_serial:
            path = self.folder / file_name(serial)
            doc = None
            if path.is_file():
                doc = read_profile(path)
                doc["_path"] = str(path)
            self._by_serial[serial] = doc
        return self._by_serial[serial]

    def ratio_to_root(self, serial: str) -> tuple[str, float] | None:
        """(root serial, (1 + e_self)/(1 + e_root) at *nominal* xo_correction), following the chain of
        profiles (each measured against its ``reference``); a device without a profile is its own root.
        None for a cycle."""
        seen, ratio, cur = set(), 1.0, str(serial)
        while True:
            doc = self.get(cur)
            xo = (doc or {}).get("xo")
            if not xo or str(xo["reference"]) == cur:
                return cur, ratio
            if cur in seen:
                return None
            seen.add(cur)
            x_self = xo.get("xo_correction_hz") or NOMINAL_XO_HZ
            x_ref = xo.get("reference_xo_correction_hz") or NOMINAL_XO_HZ
            # effective ratio while measured → the ratio both would have at nominal xo_correction
            ratio *= (1 + float(xo["ppm"]) * 1e-6) * (x_self / x_ref)
            cur = str(xo["reference"])

    def nominal_ratio(self, serial_a: str, serial_b: str) -> float | None:
        """(1 + e_a)/(1 + e_b) at nominal xo_correction, or None when no chain of profiles joins them."""
        if str(serial_a) == str(serial_b):
            return 1.0
        a, b = self.ratio_to_root(serial_a), self.ratio_to_root(serial_b)
        if a is None or b is None or a[0] != b[0]:
            return None
        return a[1] / b[1]


def staleness(doc: dict, temperature_c: float | None, max_age_h: float = MAX_AGE_H,
              band_c: float = TEMPERATURE_BAND_C, now: _dt.datetime | None = None) -> list[str]:
    """Warnings about a profile: older than ``max_age_h``, or measured more than ``band_c`` away from the
    device's temperature now."""
    out = []
    serial = doc["device"]["serial"]
    try:
        created = _dt.datetime.fromisoformat(str(doc["created"]))
        if created.tzinfo is None:
            created = created.replace(tzinfo=_dt.timezone.utc)
        age_h = ((now or _dt.datetime.now(_dt.timezone.utc)) - created).total_seconds() / 3600
        if age_h > max_age_h:
            out.append(f"profile of {serial} is {age_h:.1f} h old (more than {max_age_h:g} h): "
                       "run jscec calibrate again")
    except ValueError:
        out.append(f"profile of {serial} has an unreadable creation time {doc['created']!r}")
    t_cal = (doc.get("conditions") or {}).get("temperature_c")
    if temperature_c is not None and t_cal is not None and abs(temperature_c - t_cal) > band_c:
        out.append(f"{serial} is at {temperature_c:.1f} °C but was calibrated at {t_cal:.1f} °C "
                   f"(outside ±{band_c:g} °C): its oscillator has moved; run jscec calibrate again")
    return out


# ---------------------------------------------------------------------------------------------------
# SNR against TX gain
# ---------------------------------------------------------------------------------------------------

def snr_curve(doc: dict, channel: int, tx_serial: str) -> dict | None:
    rx = (doc.get("rx") or {}).get(str(channel)) or {}
    return (rx.get("snr_curves") or {}).get(str(tx_serial))


def _noise_at(doc: dict, channel: int, rx_gain_db: float) -> float | None:
    table = ((doc.get("rx") or {}).get(str(channel)) or {}).get("noise_floor") or []
    pts = sorted((float(p["rx_gain_db"]), float(p["noise_dbfs"])) for p in table if p.get("noise_dbfs") is not None)
    if not pts:
        return None
    g, n = zip(*pts)
    if not g[0] - 0.5 <= rx_gain_db <= g[-1] + 0.5:
        return None
    # interpolate in power: noise = a·G + b over the bracketing points behaves well in dB too
    return float(np.interp(rx_gain_db, g, n))


def predict_snr(doc: dict, channel: int, tx_serial: str, tx_gain_db: float, *, rx_gain_db: float, sps: int,
                tx_level: float, sample_rate_hz: float) -> tuple[float | None, list[str]]:
    """The link's SNR per symbol (dB) expected at ``tx_gain_db``, from a receiver's profile; (None, why) when
    the profile cannot say."""
    notes = []
    curve = snr_curve(doc, channel, tx_serial)
    if curve is None:
        return None, [f"profile of {doc['device']['serial']} has no SNR curve for channel {channel} against "
                      f"transmitter {tx_serial} (run jscec calibrate --tx <that radio> --rx <this one>)"]
    pts = sorted((float(p["tx_gain_db"]), float(p["signal_dbfs"]), float(p["noise_dbfs"]))
                 for p in curve["points"] if np.isfinite(p.get("signal_dbfs", np.nan)))
    if len(pts) < 2:
        return None, ["the SNR curve has fewer than two points"]
    g, sig, noi = (np.array(v) for v in zip(*pts))
    if tx_gain_db < g[0] - 1e-9 or tx_gain_db > g[-1] + 1e-9:
        notes.append(f"TX gain {tx_gain_db:g} dB is outside the calibrated {g[0]:g} … {g[-1]:g} dB (extrapolated)")
    if tx_gain_db <= g[0]:
        signal = sig[0] + (tx_gain_db - g[0])
    elif tx_gain_db >= g[-1]:
        signal = sig[-1] + (tx_gain_db - g[-1])
    else:
        signal = float(np.interp(tx_gain_db, g, sig))
    noise = float(np.median(noi))
    cal_rx = float(curve["rx_gain_db"])
    if abs(rx_gain_db - cal_rx) > 1e-9:
        # the signal follows the RX gain dB for dB; the noise follows the noise-floor table
        n_cal, n_now = _noise_at(doc, channel, cal_rx), _noise_at(doc, channel, rx_gain_db)
        if n_cal is None or n_now is None:
            return None, [f"RX gain {rx_gain_db:g} dB differs from the curve's {cal_rx:g} dB and the noise-floor "
                          "table does not cover both"]
        signal += rx_gain_db - cal_rx
        noise += n_now - n_cal
    fs_cal = float(curve.get("sample_rate_hz") or sample_rate_hz)
    if abs(fs_cal - sample_rate_hz) > 1e-6 * fs_cal:
        noise += 10 * math.log10(sample_rate_hz / fs_cal)   # white noise: power per sample ∝ rate
        notes.append(f"sample rate {sample_rate_hz:g} differs from the calibration's {fs_cal:g} (noise scaled)")
    signal += 20 * math.log10(tx_level / float(curve["tx_level"]))
    return float(signal - noise + 10 * math.log10(sps)), notes


def plan_tx_gain(doc: dict, channel: int, tx_serial: str, target_db: float, *, rx_gain_db: float, sps: int,
                 tx_level: float, sample_rate_hz: float, gain_range: tuple[float, float, float] | None) -> dict:
    """The TX gain that gives ``target_db`` SNR per symbol at a receiver, from its profile's curve."""
    lo, hi, step = gain_range or (-np.inf, np.inf, 0.25)
    curve = snr_curve(doc, channel, tx_serial)
    if curve is None:
        _, why = predict_snr(doc, channel, tx_serial, 0.0, rx_gain_db=rx_gain_db, sps=sps, tx_level=tx_level,
                             sample_rate_hz=sample_rate_hz)
        raise UserError(f"--snr-b: {why[0]}")
    gains = sorted(float(p["tx_gain_db"]) for p in curve["points"])
    cand = np.arange(max(lo, gains[0] - 20), min(hi, gains[-1] + 20) + step / 2, step)
    preds = []
    for gdb in cand:
        snr, notes = predict_snr(doc, channel, tx_serial, float(gdb), rx_gain_db=rx_gain_db, sps=sps,
                                 tx_level=tx_level, sample_rate_hz=sample_rate_hz)
        if snr is None:
            raise UserError(f"--snr-b: {notes[0]}")
        preds.append(snr)
    preds = np.array(preds)
    i = int(np.argmin(np.abs(preds - target_db)))
    chosen, predicted = float(cand[i]), float(preds[i])
    notes = []
    if abs(predicted - target_db) > max(step, 0.5):
        notes.append(f"--snr-b {target_db:g} dB is out of reach: the closest TX gain {chosen:g} dB gives "
                     f"{predicted:.1f} dB")
    if not gains[0] <= chosen <= gains[-1]:
        notes.append(f"TX gain {chosen:g} dB lies outside the calibrated {gains[0]:g} … {gains[-1]:g} dB")
    return {"requested_db": float(target_db), "tx_gain_db": chosen, "predicted_db": predicted, "notes": notes}
