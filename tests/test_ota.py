"""`jscec ota` end to end over the CI fakes (fake-pluto, fake-soapy), and its refusals."""
import json

import pytest

pytest.importorskip("gnuradio.gr")

from tests.conftest import jscec  # noqa: E402


@pytest.mark.parametrize("kind", ["fake-pluto", "fake-soapy"])
def test_ota_over_fakes_end_to_end(kind, tiny_model, tiny_data, tmp_path):
    out = tmp_path / "out"
    p = jscec("ota", "--tx", kind, "--bob", kind, "--eve", f"{kind}:noise_std=2e-3,cfo_hz=150",
              "--model", tiny_model, "--data", tiny_data, "--images", 2, "--out", out, "--json", tmp_path / "r.json")
    assert "Bob" in p.stdout and "Eve" in p.stdout
    report = json.loads((out / "result.json").read_text())
    assert json.loads((tmp_path / "r.json").read_text())["bob"] == report["bob"]
    for who in ("bob", "eve"):
        assert report[who]["frames_sent"] == report[who]["frames_ok"] == 2
        assert report[who]["psnr"] is not None
    assert report["bob"]["mer_db"] > 30 and report["bob"]["mer_db"] > report["eve"]["mer_db"]
    assert set(report["devices"]) == {kind, f"{kind}:noise_std=2e-3,cfo_hz=150"}
    for d in report["devices"].values():
        assert {"overflows", "underflows", "drops"} <= set(d["counters"])
        assert d["counters"]["overflows"] == 0 and d["description"]["uri"]
    assert report["discontinuity_drops"] == {"bob": 0, "eve": 0}
    assert report["link"] == "ota" and report["mode"] == "lwe"
    for f in ("panel.png", "constellation.png", "bob-images.npz", "eve-images.npz"):
        assert (out / f).is_file()
    assert (out / "keys" / "bob.key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("tx, bob, eve, words", [
    ("fake-pluto", "fake-pluto:absent=1", None, "cannot open PlutoSDR 'fake-pluto:absent=1'"),
    ("fake-pluto", "fake-soapy:absent=1", None, "cannot open SoapySDR device 'fake-soapy:absent=1'"),
    ("fake-pluto", "fake-pluto:busy=1", None, "'fake-pluto:busy=1' is busy"),
    ("fake-pluto", "fake-soapy:busy=1", None, "fake-soapy:busy=1"),
    ("fake-pluto:busy=1", "fake-pluto", None, "'fake-pluto:busy=1' is busy"),   # found when TX starts
    # Eve on a second channel of Bob's radio, when it has none
    ("fake-pluto", "fake-pluto:rx_channels=1", "fake-pluto:rx_channels=1#1",
     "streams one RX channel, so there is no channel 1"),
    ("fake-pluto", "fake-soapy:rx_channels=1", "fake-soapy:rx_channels=1#1",
     "no RX channel 1 on this device (it has 1)"),
    ("fake-pluto", "fake-soapy", "fake-soapy#2", "no RX channel 2 on this device (it has 2)"),
    ("fake-pluto#1", "fake-pluto", None, "transmission uses channel 0"),
])
def test_ota_refuses_absent_or_busy_radio_or_missing_channel(tx, bob, eve, words, tiny_model, tiny_data, tmp_path):
    out = tmp_path / "out"
    p = jscec("ota", "--tx", tx, "--bob", bob, *(["--eve", eve] if eve else []), "--model", tiny_model,
              "--data", tiny_data, "--images", 1, "--out", out, check=False)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in p.stderr
    assert not out.exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == []


def test_ota_reports_overflows_and_discontinuity_drops(tiny_model, tiny_data, tmp_path):
    bob = "fake-soapy:overflow_at=" + "+".join(str(i) for i in range(1, 200, 2))
    out = tmp_path / "out"
    jscec("ota", "--tx", "fake-soapy", "--bob", bob, "--model", tiny_model, "--data", tiny_data, "--images", 2,
          "--out", out)
    report = json.loads((out / "result.json").read_text())
    dev = report["devices"][bob]
    # Every overflow whose samples reached the flowgraph is tagged; one more may sit in the read-ahead
    # chunk the adapter holds when the flowgraph stops.
    assert 0 < dev["overflows_tagged"] <= dev["counters"]["overflows"] <= dev["overflows_tagged"] + 1
    dropped = report["bob"]["frames_dropped"].get("discontinuity", 0)
    assert dropped == report["discontinuity_drops"]["bob"]
    # A gap inside a frame drops it as a discontinuity once its header decoded; one inside the header region
    # fails the header's CRC first (where the gaps fall depends on how the streams line up).
    unreadable = report["bob"]["frames_dropped"].get("header CRC", 0)
    assert report["bob"]["frames_ok"] + dropped + unreadable == report["bob"]["frames_sent"] == 2
    assert report["eve"]["frames_ok"] == 0   # no Eve radio given


@pytest.mark.parametrize("kind, noise", [("fake-pluto", "5e-4"), ("fake-soapy", "2e-3")])   # Eve ~15 dB
def test_ota_eve_on_a_second_channel_of_bobs_radio(kind, noise, tiny_model, tiny_data, tmp_path):
    radio = f"{kind}:rx1_noise_std={noise}"   # channel 1 (Eve's) hears the same air through more noise
    out = tmp_path / "out"
    jscec("ota", "--tx", kind, "--bob", radio, "--eve", f"{radio}#1", "--model", tiny_model, "--data", tiny_data,
          "--images", 1, "--out", out)
    report = json.loads((out / "result.json").read_text())
    assert report["devices"][radio]["roles"] == ["bob", "eve"]          # opened once, both channels streamed
    assert report["devices"][radio]["description"]["rx_channels"] == [0, 1]
    assert report["radio"]["eve"] == f"{radio}#1"
    for who in ("bob", "eve"):
        assert report[who]["frames_sent"] == report[who]["frames_ok"]
    assert report["bob"]["mer_db"] > report["eve"]["mer_db"] + 10


BENCH = "bench=1,dc=0,iq=0,lo_leak=0"   # oscillators, noise figure and path loss; DC/IQ/leakage are the RX chain's


def test_snr_b_lands_on_the_requested_snr_after_calibration(tiny_model, tiny_data, tmp_path):
    from calibration.calibrate import CalibrateOptions, run_calibration

    tx = f"fake-pluto:{BENCH},seed=51,path_gain_db=-50"
    bob = f"fake-pluto:{BENCH},seed=52,path_gain_db=-50"
    eve = f"fake-soapy:{BENCH},seed=53,path_gain_db=-48"
    run_calibration(CalibrateOptions(tx=tx, rx=[bob, eve], folder=str(tmp_path / "prof"), xo_samples=2 ** 18,
                                     sweep_samples=40000, buffer=16384, tx_gains=[0.0, -15.0, -30.0],
                                     rx_gains=[0.0, 30.0], progress=False), log=lambda s: None)
    out = tmp_path / "out"
    p = jscec("ota", "--tx", tx, "--bob", bob, "--eve", eve, "--profiles", tmp_path / "prof", "--snr-b", 10,
              "--model", tiny_model, "--data", tiny_data, "--images", 4, "--out", out)
    report = json.loads((out / "result.json").read_text())
    assert report["snr_b_requested_db"] == 10.0 and report["radio"]["tx_gain_db"] < -5
    assert abs(report["snr_b_db"] - 10.0) <= 0.5                  # measured from the pilots
    assert report["bob"]["frames_ok"] == 4 and report["snr_e_db"] is not None
    assert report["snr_e_predicted_db"] == pytest.approx(report["snr_e_db"], abs=1.0)
    methods = {c["method"] for c in report["calibration"]["xo_corrections"].values()}
    assert methods == {"native", "digital"}                       # Bob's Pluto by xo_correction, Eve's B210 digitally
    assert "SNR: Bob requested 10 dB" in p.stdout and "measured" in p.stdout


def test_snr_b_without_a_profile_is_refused_in_one_line(tiny_model, tiny_data, tmp_path):
    p = jscec("ota", "--tx", f"fake-pluto:{BENCH},seed=1", "--bob", f"fake-pluto:{BENCH},seed=2", "--snr-b", 10,
              "--profiles", tmp_path / "none", "--model", tiny_model, "--data", tiny_data, "--images", 1,
              "--out", tmp_path / "out", check=False)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "no calibration profile for Bob's radio" in lines[0] and "jscec calibrate" in lines[0]
    assert not (tmp_path / "out").exists()
