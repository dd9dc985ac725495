"""`jscec calibrate` and device profiles: the estimators on known signals, the procedure over two fake Plutos
(relative ppm, residual carrier offset after correction), the profile schema and its chain of references,
staleness warnings, the TX gain for --snr-b, and the commands over the fakes."""
import contextlib
import datetime as dt
import json

import numpy as np
import pytest

from calibration import measure
from calibration.calibrate import CalibrateOptions, run_calibration, verify_calibration
from calibration.correct import apply_xo_corrections
from calibration.profile import (Profiles, file_name, new_profile, plan_tx_gain, predict_snr, read_profile, staleness,
                                 validate, write_profile)
from jscec.errors import UserError
from radio.devices import RadioSettings, open_devices
from radio.devices.hardware import resample, unit_from_params

FC, FS = 2.4e9, 1e6
#: a quick calibration: fewer sweep points and samples than the defaults
QUICK = dict(xo_samples=2 ** 18, sweep_samples=40000, buffer=16384, tx_gains=[0.0, -20.0, -40.0],
             rx_gains=[0.0, 30.0, 60.0, 71.0], progress=False)


def _capture(e_t, e_r, fc=FC, fs=FS, snr_db=35.0, n=2 ** 18, seed=0, amp=0.05):
    c = measure.comb()
    r = (1 + e_t) / (1 + e_r)
    f = fc * (e_t - e_r) / (fs * (1 + e_r))
    x = np.tile(c.samples, int(n * 1.01 / c.period) + 4) * amp
    y = resample(x, r, start=321.7)[:n] * np.exp(2j * np.pi * f * np.arange(n))
    rng = np.random.default_rng(seed)
    sigma = amp / 10 ** (snr_db / 20)
    y = y + sigma / np.sqrt(2) * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    return c, y, f, r


@pytest.mark.parametrize("seed", range(4))
def test_offset_from_carrier_and_sample_rate_agree_and_are_exact(seed):
    rng = np.random.default_rng(seed)
    e_t, e_r = rng.uniform(-25e-6, 25e-6, 2)
    c, y, f, r = _capture(e_t, e_r, seed=seed)
    off = measure.estimate_offset(y, c, FC, FS)
    p = off.ppm(FC, FS)
    assert (off.cfo - f) * FS == pytest.approx(0, abs=0.5)            # Hz
    assert p["ppm"] == pytest.approx((e_r - e_t) / (1 + e_r) * 1e6, abs=1e-3)
    assert p["ppm_from_sro"] == pytest.approx(p["ppm_from_cfo"], abs=0.01) and p["agree"]


def test_the_sample_rate_offset_picks_the_carriers_alias():
    # 5.8 GHz, ±25 ppm each, at 521 kS/s: a carrier offset beyond half the sample rate
    fs = 521e3
    c, y, f, r = _capture(24e-6, -24e-6, fc=5.8e9, fs=fs)
    assert abs(f) > 0.5
    off = measure.estimate_offset(y, c, 5.8e9, fs)
    assert off.cfo == pytest.approx(f, abs=1e-6)
    assert measure.estimate_offset(y, c).cfo == pytest.approx((f + 0.5) % 1 - 0.5, abs=1e-6)   # alone: aliased


def test_disagreeing_clocks_are_flagged():
    c, y, f, r = _capture(10e-6, 0.0)
    y = y * np.exp(2j * np.pi * 0.3e-6 * FC / FS * np.arange(y.size))   # the LO off by 0.3 ppm more than the clock
    p = measure.estimate_offset(y, c, FC, FS).ppm(FC, FS)
    assert not p["agree"] and p["disagreement_ppm"] == pytest.approx(-0.3, abs=0.01)


def test_snr_and_image_rejection_of_a_known_capture():
    c, y, f, r = _capture(5e-6, -3e-6, snr_db=30.0)
    off = measure.estimate_offset(y, c, FC, FS)
    pw = measure.comb_powers(y, c, off)
    assert pw["snr_db"] == pytest.approx(30.0, abs=0.15)
    assert pw["signal_dbfs"] == pytest.approx(20 * np.log10(0.05), abs=0.05)
    assert pw["image_rejection_bound"]                                  # no image: only a bound
    g, th = 1.004, np.deg2rad(0.3)                                       # an RX imbalance of ~48 dB
    k1, k2 = (1 + g * np.exp(-1j * th)) / 2, (1 - g * np.exp(1j * th)) / 2
    pw = measure.comb_powers(k1 * y + k2 * np.conj(y), c, off)
    assert pw["image_rejection_rx_db"] == pytest.approx(20 * np.log10(abs(k1) / abs(k2)), abs=1.0)
    assert pw["image_rejection_tx_db"] > pw["image_rejection_rx_db"] + 5


@pytest.mark.parametrize("seeds", [(1, 2), (21, 22), (41, 42)])
def test_calibrate_two_fake_plutos_recovers_ppm_and_the_correction_leaves_under_100_hz(seeds, tmp_path):
    a, b = seeds
    tx, rx = f"fake-pluto:bench=1,seed={a}", f"fake-pluto:bench=1,seed={b}"
    opts = CalibrateOptions(tx=tx, rx=[rx], folder=str(tmp_path), **QUICK)
    report = run_calibration(opts, log=lambda s: None)
    truth = (unit_from_params("pluto", {"bench": "1"}, b, False).xo_error()
             - unit_from_params("pluto", {"bench": "1"}, a, False).xo_error()) * 1e6
    (serial, r), = report["receivers"].items()
    assert abs(truth) > 0.5
    assert r["xo"]["ppm"] == pytest.approx(truth, abs=0.05) and r["xo"]["agree"]
    doc = read_profile(tmp_path / file_name(serial))
    assert doc["xo"]["reference"] == report["tx_serial"] and doc["version"] == 1
    assert read_profile(tmp_path / file_name(report["tx_serial"]))["xo"]["reference"] == report["tx_serial"]
    pts = doc["rx"]["0"]["snr_curves"][report["tx_serial"]]["points"]
    snr = [p["snr_db"] for p in sorted(pts, key=lambda p: p["tx_gain_db"])]
    assert np.allclose(np.diff(snr), 20, atol=0.5)                     # 20 dB of TX gain, 20 dB of SNR
    floor = {p["rx_gain_db"]: p["noise_dbfs"] for p in doc["rx"]["0"]["noise_floor"]}
    assert floor[71.0] - floor[60.0] > 6 and abs(floor[30.0] - floor[0.0]) < 1
    assert doc["conditions"]["temperature_c"] is not None and doc["software"]["numpy"]
    assert (tmp_path / report["plot"].split("/")[-1]).is_file()
    left = verify_calibration(opts, log=lambda s: None, samples=2 ** 17)
    assert abs(left[serial]["residual_cfo_hz"]) < 100 and left[serial]["correction"]["method"] == "native"


def test_digital_correction_for_a_radio_without_its_own(tmp_path):
    opts = CalibrateOptions(tx="fake-pluto:bench=1,seed=3", rx=["fake-soapy:bench=1,seed=4"], folder=str(tmp_path),
                            **QUICK)
    report = run_calibration(opts, log=lambda s: None)
    (serial, r), = report["receivers"].items()
    truth = (unit_from_params("b210", {"bench": "1"}, 4, False).xo_error()
             - unit_from_params("pluto", {"bench": "1"}, 3, False).xo_error()) * 1e6
    assert r["xo"]["ppm"] == pytest.approx(truth, abs=0.05)
    left = verify_calibration(opts, log=lambda s: None, samples=2 ** 17)[serial]
    assert left["correction"]["method"] == "digital" and abs(left["residual_cfo_hz"]) < 100


# -- profiles -------------------------------------------------------------------------------------

def _doc(serial, ref=None, ppm=0.0, x_self=None, x_ref=None, created=None, temp=40.0):
    d = new_profile({"serial": serial, "kind": "pluto"}, {"temperature_c": temp}, {})
    d["xo"] = {"reference": ref or serial, "ppm": ppm, "xo_correction_hz": x_self, "reference_xo_correction_hz": x_ref}
    if created:
        d["created"] = created
    return d


def test_profile_schema_is_checked_in_one_line(tmp_path):
    good = _doc("A")
    path = write_profile(good, tmp_path / "A.json")
    assert read_profile(path)["device"]["serial"] == "A"
    for doc, words in (({"schema": "x"}, "not a jscec device profile"),
                       (dict(good, version=99), "newer than this jscec"),
                       (dict(good, device={}), "no device serial"),
                       (dict(good, xo={"ppm": "3"}), "numeric")):
        with pytest.raises(UserError, match=words) as err:
            validate(doc, "p.json")
        assert "\n" not in str(err.value)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserError, match="cannot read profile"):
        read_profile(tmp_path / "bad.json")
    assert file_name("usb:1.2/x y") == "usb_1.2_x_y.json"


def test_a_chain_of_profiles_joins_two_radios(tmp_path):
    # B is 10 ppm fast of A; C is 4 ppm slow of B, measured while C's xo_correction was 20 Hz (0.5 ppm) high
    write_profile(_doc("A"), tmp_path / "A.json")
    write_profile(_doc("B", "A", 10.0), tmp_path / "B.json")
    write_profile(_doc("C", "B", -4.5, x_self=40e6 + 20), tmp_path / "C.json")
    p = Profiles(tmp_path)
    assert (p.nominal_ratio("C", "A") - 1) * 1e6 == pytest.approx(10 - 4.5 + 0.5, abs=1e-3)
    assert (p.nominal_ratio("A", "B") - 1) * 1e6 == pytest.approx(-10, abs=1e-3)
    assert p.nominal_ratio("A", "Z") is None and p.nominal_ratio("Z", "Z") == 1.0


def test_stale_or_other_temperature_profiles_are_warned_about():
    old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=30)).isoformat()
    doc = _doc("A", created=old, temp=40.0)
    lines = staleness(doc, temperature_c=47.0)
    assert any("30.0 h old" in s for s in lines) and any("47.0 °C" in s and "40.0 °C" in s for s in lines)
    assert staleness(_doc("A", temp=40.0), temperature_c=43.0) == []
    assert staleness(_doc("A", temp=40.0), temperature_c=None) == []


def test_ota_corrections_warn_about_a_profile_from_another_temperature(tmp_path):
    opts = CalibrateOptions(tx="fake-pluto:bench=1,seed=5,temp_c=40", rx=["fake-pluto:bench=1,seed=6,temp_c=40"],
                            folder=str(tmp_path), **QUICK)
    run_calibration(opts, log=lambda s: None)
    lines = []
    with contextlib.ExitStack() as stack:
        devs = open_devices({"tx": "fake-pluto:bench=1,seed=5,temp_c=40", "bob": "fake-pluto:bench=1,seed=6,temp_c=52",
                             "eve": "fake-pluto:bench=1,seed=7"}, RadioSettings(FC, FS), stack)
        done = apply_xo_corrections(devs, Profiles(tmp_path), stack, log=lines.append)
        assert devs["bob"].xo_correction_hz() != 40e6
        unit = devs["bob"]._sdr.unit
    assert unit.xo_correction_hz == 40e6                           # restored when the run ended
    assert [e["method"] for e in done.values()] == ["native", None]
    assert any("52.0 °C" in s and "±5 °C" in s for s in lines)
    assert any("no calibration profile joins" in s and "jscec calibrate" in s for s in lines)


def _curve_doc():
    d = _doc("B", "A", 1.0)
    pts = [{"tx_gain_db": g, "signal_dbfs": -20 + g, "noise_dbfs": -62.0, "snr_db": 42 + g} for g in (0, -20, -40, -60)]
    d["rx"] = {"0": {"noise_floor": [{"rx_gain_db": 30, "noise_dbfs": -62.0}, {"rx_gain_db": 60, "noise_dbfs": -55.0}],
                     "snr_curves": {"A": {"rx_gain_db": 30, "tx_level": 0.25, "sample_rate_hz": FS, "points": pts}}}}
    return d


def test_tx_gain_for_a_requested_snr_from_the_curve():
    d = _curve_doc()
    # per symbol at sps 4: 42 + g + 6.02 dB
    plan = plan_tx_gain(d, 0, "A", 10.0, rx_gain_db=30, sps=4, tx_level=0.25, sample_rate_hz=FS,
                        gain_range=(-89.75, 0.0, 0.25))
    assert plan["tx_gain_db"] == pytest.approx(-38.0, abs=0.125) and abs(plan["predicted_db"] - 10) <= 0.13
    snr, _ = predict_snr(d, 0, "A", -38.0, rx_gain_db=60, sps=4, tx_level=0.125, sample_rate_hz=FS)
    assert snr == pytest.approx(42 - 38 + 6.02 + 30 - 7 - 6.02, abs=0.05)   # +30 dB signal, +7 dB noise, −6 dB level
    with pytest.raises(UserError, match="no SNR curve"):
        plan_tx_gain(d, 0, "Z", 10.0, rx_gain_db=30, sps=4, tx_level=0.25, sample_rate_hz=FS, gain_range=None)
    far = plan_tx_gain(d, 0, "A", 90.0, rx_gain_db=30, sps=4, tx_level=0.25, sample_rate_hz=FS,
                       gain_range=(-89.75, 0.0, 0.25))
    assert far["tx_gain_db"] == 0.0 and any("out of reach" in n for n in far["notes"])


# -- the commands ------------------------------------------------------------------------------------

def test_calibrate_command_writes_profiles_plot_and_report(tmp_path):
    from tests.conftest import jscec

    p = jscec("calibrate", "--tx", "fake-pluto:bench=1,seed=31", "--rx", "fake-pluto:bench=1,seed=32",
              "--rx", "fake-soapy:bench=1,seed=33", "--profiles", tmp_path / "prof", "--xo-samples", 2 ** 17,
              "--sweep-samples", 40000, "--tx-gains", 0, -30, "--rx-gains", 0, 70, "--verify",
              "--json", tmp_path / "r.json")
    report = json.loads((tmp_path / "r.json").read_text())
    assert len(report["receivers"]) == 2 and len(report["profiles"]) == 3
    assert (tmp_path / "prof" / report["plot"].split("/")[-1]).is_file()
    assert "agree" in p.stdout and p.stdout.count("verify ") == 2
    assert all(abs(v["residual_cfo_hz"]) < 100 for v in report["verify"].values())
    bad = jscec("calibrate", "--tx", "fake-pluto", "--rx", "fake-pluto:absent=1", "--profiles", tmp_path / "x",
                check=False)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "cannot open PlutoSDR 'fake-pluto:absent=1'" in bad.stderr
