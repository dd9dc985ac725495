"""Using profiles on a run: oscillator corrections for the receivers, and the warnings that go with them.

Every receiving device is brought onto the transmitter's clock (only relative offsets are known, and
only they matter). With the profiles' chain giving the nominal ratio ρ = (1 + e_RX)/(1 + e_TX) (both at
their nominal ``xo_correction``, :meth:`calibration.profile.Profiles.nominal_ratio`):

* **native** (an AD936x radio: ``xo_correction``): tell the receiver's driver its reference runs at
  ρ·X_TX (X_TX: the transmitter's ``xo_correction`` now, nominal where it has none), rounded to the
  driver's 1 Hz step; its LO and sample clock then follow the transmitter's, and the carrier offset
  left is the rounding (≤ 0.0125 ppm, 30 Hz at 2.4 GHz). The previous value is restored when the run
  ends (the driver would keep it until the radio restarts).
* **digital** (no native correction, e.g. a B210 through SoapySDR): rotate the received samples by the
  expected carrier offset, f_c·(1 − ρ_eff)/ρ_eff (ρ_eff with the transmitter's correction), on the
  device's sample index; the sample-rate offset stays, at most a few tens of ppm, which the synchroniser
  tracks.
"""
from __future__ import annotations

from calibration.profile import NOMINAL_XO_HZ, MAX_AGE_H, TEMPERATURE_BAND_C, Profiles, staleness


def apply_xo_corrections(devices: dict, profiles: Profiles, stack=None, tx_role: str = "tx", log=print,
                         max_age_h: float = MAX_AGE_H, band_c: float = TEMPERATURE_BAND_C) -> dict:
    """Correct every receiving device of ``devices`` (role → device) onto ``devices[tx_role]``'s clock.

    Returns, per receiving device serial: roles, method (``native``, ``digital``, ``same device`` or
    None: no profile joins it to the transmitter), the values set and the expected residual offset.
    Warnings (no profile, a stale one, another temperature band) go to ``log``. ``stack`` (an
    ``ExitStack``) restores native corrections when it closes.
    """
    tx = devices[tx_role]
    tx_serial = tx.serial()
    freq = float(tx.settings.center_freq_hz)
    warned: set = set()
    out: dict = {}

    def warn_stale(dev, serial):
        if serial in warned:
            return
        warned.add(serial)
        doc = profiles.get(serial)
        if doc is None:
            return
        for line in staleness(doc, dev.temperature_c(), max_age_h, band_c):
            log(f"warning: {line}")

    seen = {}
    for role, dev in devices.items():
        if role == tx_role:
            continue
        if id(dev) in seen:
            seen[id(dev)]["roles"].append(role)
            continue
        serial = dev.serial()
        entry = {"serial": serial, "uri": dev.uri.device_text, "roles": [role], "tx_serial": tx_serial,
                 "method": None}
        seen[id(dev)] = entry
        out[serial] = entry
        if dev is tx:
            entry["method"] = "same device"
            continue
        ratio = profiles.nominal_ratio(serial, tx_serial)
        if ratio is None:
            log(f"warning: no calibration profile joins {serial} ({dev.uri.device_text}) to the transmitter "
                f"{tx_serial}: no oscillator correction (run jscec calibrate --tx {tx.uri.device_text} "
                f"--rx {dev.uri.device_text})")
            continue
        warn_stale(dev, serial)
        warn_stale(tx, tx_serial)
        x_tx = tx.xo_correction_hz() or NOMINAL_XO_HZ
        entry["relative_ppm"] = (ratio - 1) * 1e6
        previous = dev.xo_correction_hz()
        if previous is not None:
            got = dev.set_xo_correction_hz(ratio * x_tx)
            if stack is not None:
                stack.callback(_restore, dev, previous)
            eff = ratio * x_tx / got          # (1 + e_RX,eff)/(1 + e_TX,eff) now
            entry.update(method="native", xo_correction_hz=got, previous_xo_correction_hz=previous,
                         residual_ppm=(eff - 1) * 1e6, residual_cfo_hz=freq * (1 - eff) / eff)
        else:
            eff = ratio * x_tx / NOMINAL_XO_HZ
            cfo = freq * (1 - eff) / eff
            dev.set_rx_frequency_correction(cfo)
            entry.update(method="digital", rx_frequency_correction_hz=cfo, residual_ppm=0.0,
                         residual_cfo_hz=0.0, uncorrected_sro_ppm=(1 / eff - 1) * 1e6)
    return out


def _restore(dev, value) -> None:
    try:
        dev.set_xo_correction_hz(value)
    except Exception:  # noqa: BLE001 - the device may be gone already
        pass
