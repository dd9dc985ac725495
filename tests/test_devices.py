"""Device URIs, the Pluto and SoapySDR adapters against their fakes, replay, and error paths."""
import json
import sys

import numpy as np
import pytest

from radio.devices import RadioSettings, open_device, parse_uri
from radio.devices.fakes import (FakeAd9361, FakeAir, FakePluto, AirConditions, fake_adi_module, fake_soapy_module)
from radio.devices.pluto import PlutoDevice
from radio.devices.soapy import SoapyDevice
from jscec.errors import UserError
from radio.recording import RecordingWriter

BUF = 1000


def settings(**kw):
    base = dict(center_freq_hz=2.4e9, sample_rate_hz=1e6, tx_gain_db=0.0, rx_gain_db=0.0, buffer_size=BUF)
    base.update(kw)
    return RadioSettings(**base)


#: Full output through the SoapySDR fake: UHD's B210 TX gain scale tops out at 89.75 dB (unity in the fake).
SOAPY_UNITY_TX = 89.75


def unity_tx(kind: str) -> float:
    return SOAPY_UNITY_TX if "soapy" in kind else 0.0


def tone(n, amp=0.5, f=0.013):
    return (amp * np.exp(2j * np.pi * f * np.arange(n))).astype(np.complex64)


# -- URIs -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, kind, target, params", [
    ("pluto", "pluto", "", {}),
    ("pluto:ip:192.168.2.1", "pluto", "ip:192.168.2.1", {}),
    ("pluto:ip:pluto.local", "pluto", "ip:pluto.local", {}),
    ("pluto:usb:1.2.5", "pluto", "usb:1.2.5", {}),
    ("pluto:usb:", "pluto", "usb:", {}),
    ("soapy:driver=uhd,serial=31F4C2A", "soapy", "driver=uhd,serial=31F4C2A", {"driver": "uhd", "serial": "31F4C2A"}),
    ("file:caps/run1.sigmf-meta", "file", "caps/run1.sigmf-meta", {}),
    ("sim", "sim", "", {}),
    ("fake-pluto", "fake-pluto", "", {}),
    ("fake-soapy:cfo_hz=200,overflow_at=2+5", "fake-soapy", "cfo_hz=200,overflow_at=2+5",
     {"cfo_hz": "200", "overflow_at": "2+5"}),
])
def test_parse_good_uris(text, kind, target, params):
    u = parse_uri(text)
    assert (u.kind, u.target, u.params) == (kind, target, params)
    assert str(u) == text


@pytest.mark.parametrize("text", [
    "", "   ", "hackrf:0", "pluto:foo", "pluto:ip:", "pluto:usb:1.2", "soapy", "soapy:", "soapy:uhd",
    "soapy:driver=uhd,driver=uhd", "soapy:driver=", "file:", "fake-pluto:cfo", "sim:=3",
])
def test_bad_uris_are_one_line_user_errors_naming_the_uri(text):
    with pytest.raises(UserError) as err:
        parse_uri(text)
    msg = str(err.value)
    assert "\n" not in msg
    if text.strip():
        assert text.strip() in msg


def test_fake_options_are_checked():
    with pytest.raises(UserError, match="unknown option 'colour'"):
        open_device("fake-pluto:colour=red", settings())
    with pytest.raises(UserError, match="cfo_hz=fast"):
        open_device("fake-soapy:cfo_hz=fast", settings())


def test_sim_is_not_a_device_to_open():
    with pytest.raises(UserError, match="simulated loopback"):
        open_device("sim", settings())


@pytest.mark.parametrize("kw", [dict(sample_rate_hz=0), dict(center_freq_hz=-1), dict(buffer_size=3),
                                dict(channel=-1), dict(rf_bandwidth_hz=0)])
def test_radio_settings_validate(kw):
    with pytest.raises(UserError):
        settings(**kw)


# -- the Pluto fake follows pyadi-iio -------------------------------------------------------------

def test_fake_pluto_attribute_semantics():
    p = FakePluto()
    with pytest.raises(ValueError):
        p.sample_rate = 520e3
    p.gain_control_mode_chan0 = "slow_attack"
    p.rx_hardwaregain_chan0 = 10          # ignored outside manual mode, as in pyadi-iio
    assert p.rx_hardwaregain_chan0 == FakePluto.AGC_GAIN_DB
    p.gain_control_mode_chan0 = "manual"
    p.rx_hardwaregain_chan0 = 10
    assert p.rx_hardwaregain_chan0 == 10
    with pytest.raises(OSError):
        p.tx_hardwaregain_chan0 = 3        # TX gain is an attenuation
    p.tx(np.zeros(8, complex))
    with pytest.raises(Exception, match="destroyed"):
        p.tx_cyclic_buffer = True          # buffer exists
    with pytest.raises(Exception, match="length"):
        p.tx(np.zeros(9, complex))         # non-cyclic buffer length is fixed by the first tx()
    p.tx_destroy_buffer()
    p.tx_cyclic_buffer = True
    p.tx(np.zeros(8, complex))
    with pytest.raises(Exception, match="cyclic"):
        p.tx(np.zeros(8, complex))
    assert p.rx().dtype == np.complex128


# -- Pluto adapter --------------------------------------------------------------------------------

def pluto(s=None, **imp):
    adi = fake_adi_module(FakeAir(AirConditions(**imp)))
    dev = PlutoDevice(parse_uri("pluto:ip:192.168.2.1"), s or settings(), adi=adi)
    dev.configure()
    dev.start()
    return dev, dev._sdr


def test_pluto_configuration_reaches_the_library():
    dev, sdr = pluto(settings(center_freq_hz=915e6, sample_rate_hz=2e6, rf_bandwidth_hz=1.5e6,
                              tx_gain_db=-7.5, rx_gain_db=42))
    assert (sdr.sample_rate, sdr.rx_lo, sdr.tx_lo) == (2_000_000, 915_000_000, 915_000_000)
    assert (sdr.rx_rf_bandwidth, sdr.tx_rf_bandwidth) == (1_500_000, 1_500_000)
    assert sdr.gain_control_mode_chan0 == "manual" and sdr.rx_hardwaregain_chan0 == 42
    assert sdr.tx_hardwaregain_chan0 == -7.5 and sdr.tx_cyclic_buffer is False
    assert sdr.rx_buffer_size == BUF
    d = dev.describe()
    assert d["device"] == "pluto" and d["rx_gain_db"] == 42 and d["sample_rate_hz"] == 2e6 and "Pluto" in d["hw"]
    json.dumps(d)
    dev.close()


def test_pluto_agc_mode():
    dev, sdr = pluto(settings(agc=True, rx_gain_db=10))
    assert sdr.gain_control_mode_chan0 == "slow_attack"
    assert dev.describe()["gain_mode"] == "slow_attack"


def test_pluto_configure_resets_a_cyclic_buffer():
    dev, sdr = pluto()
    sdr.tx_destroy_buffer()
    sdr.tx_cyclic_buffer = True
    sdr.tx(np.zeros(BUF, complex))          # someone left a cyclic buffer running
    dev.configure()
    assert sdr.tx_cyclic_buffer is False


@pytest.mark.parametrize("kw, match", [
    (dict(sample_rate_hz=500e3), "sample_rate"),
    (dict(center_freq_hz=10e9), "rx_lo"),
    (dict(rx_gain_db=99), "rx_hardwaregain"),
])
def test_pluto_refused_settings_name_the_uri(kw, match):
    with pytest.raises(UserError, match=match) as err:
        pluto(settings(**kw))
    assert "pluto:ip:192.168.2.1" in str(err.value)


def test_pluto_checks_gain_sign_and_channel():
    with pytest.raises(UserError, match="<= 0 dB"):
        pluto(settings(tx_gain_db=5))
    with pytest.raises(UserError, match="not channel 2"):
        pluto(settings(channel=2))
    with pytest.raises(UserError, match="one RX channel, so there is no channel 1"):
        pluto(settings(channel=1), rx_channels=1)


def test_pluto_tx_rx_loop_scaling_and_buffers():
    dev, sdr = pluto()
    x = tone(2500)
    dev.tx(x)
    assert sdr.tx_pushes == 2               # whole buffers only; 500 samples held back
    dev.flush()
    assert sdr.tx_pushes == 3
    y = dev.rx(3000)
    assert y.samples.dtype == np.complex64 and y.samples.size == 3000 and not y.overflow
    # nominal amplitude 1.0 -> 2^14 DAC counts = half DAC full scale -> half ADC full scale
    np.testing.assert_allclose(y.samples[:2500], 0.5 * x, atol=2e-3)
    np.testing.assert_allclose(y.samples[2500:], 0, atol=1e-3)   # flush zero-padded
    assert dev.counters["tx_clipped"] == 0
    dev.tx(tone(BUF, amp=3.0))
    assert dev.counters["tx_clipped"] > 0
    dev.close()


def test_pluto_overflow_timeout_underflow_counters():
    dev, sdr = pluto(overflow_at={2}, timeout_at={4}, underflow_at={1}, lost_samples=300)
    dev.tx(tone(6 * BUF))
    assert dev.counters["underflows"] == 1
    blocks = [dev.rx(BUF) for _ in range(5)]
    assert [b.overflow for b in blocks] == [False, False, True, False, False]
    assert blocks[4].samples.size == 0 and dev.counters["timeouts"] == 1
    assert dev.counters["overflows"] == 1 and blocks[2].dropped == 0       # Pluto cannot count the loss
    np.testing.assert_allclose(blocks[2].samples, 0.5 * tone(6 * BUF)[2300:3300], atol=2e-3)


def test_pluto_block_never_spans_an_overflow():
    dev, sdr = pluto(overflow_at={1}, lost_samples=10)
    dev.tx(tone(4 * BUF))
    a = dev.rx(1500)
    b = dev.rx(1500)
    assert a.samples.size == BUF and not a.overflow      # stopped short of the discontinuity
    assert b.overflow and b.sample_index == BUF and b.samples.size == 1500


def test_pluto_busy_and_absent():
    dev, _ = pluto(busy=True)
    with pytest.raises(UserError, match="busy"):
        dev.rx(10)
    with pytest.raises(UserError) as err:
        pluto(absent=True)
    assert "pluto:ip:192.168.2.1" in str(err.value) and "No device found" in str(err.value)


def test_real_pyadi_with_no_pluto_attached():
    pytest.importorskip("adi")  # installed by scripts/setup-env.sh (pip install --no-deps pyadi-iio)
    with pytest.raises(UserError, match="pluto:usb:9.9.9"):
        open_device("pluto:usb:9.9.9", settings())


def test_pluto_missing_library_names_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "adi", None)
    with pytest.raises(UserError, match="pyadi-iio") as err:
        open_device("pluto:ip:192.168.2.1", settings())
    assert "--no-deps" in str(err.value)


# -- SoapySDR adapter -----------------------------------------------------------------------------

def soapy(s=None, **imp):
    mod = fake_soapy_module(FakeAir(AirConditions(**imp)))     # built in code: ideal (no hardware model)
    dev = SoapyDevice(parse_uri("soapy:driver=uhd,serial=ABC"), s or settings(tx_gain_db=SOAPY_UNITY_TX), soapy=mod)
    dev.configure()
    dev.start()
    return dev, dev._dev


def test_soapy_configuration_reaches_the_library():
    dev, d = soapy(settings(center_freq_hz=915e6, sample_rate_hz=2e6, tx_gain_db=50, rx_gain_db=30))
    assert d.args == {"driver": "uhd", "serial": "ABC"}
    assert d.getSampleRate(1, 0) == 2e6 and d.getFrequency(0, 0) == 915e6
    assert d.getGain(1, 0) == 30 and d.getGain(0, 0) == 50 and d.getGainMode(1, 0) is False
    assert len(d._streams) == 2 and all(s.active for s in d._streams)
    desc = dev.describe()
    assert desc["hw"] == "B210 [fake]" and desc["tx_gain_db"] == 50
    json.dumps(desc)
    dev.close()
    assert d._streams == []


def test_soapy_loop_applies_the_fake_impairments():
    fs, cfo, delay, gain_db = 1e6, 1234.0, 37, -6.0
    dev, _ = soapy(settings(rx_gain_db=3.0, tx_gain_db=88.75), cfo_hz=cfo, delay=delay, path_gain_db=gain_db)
    x = tone(3000, amp=0.3)
    dev.tx(x)
    y = dev.rx(4000).samples
    g = 10 ** ((gain_db + 3.0 + (88.75 - 89.75)) / 20)     # UHD's B210 TX scale: full output at 89.75 dB
    n = np.arange(delay, delay + 3000)
    np.testing.assert_allclose(y[:delay], 0, atol=1e-7)
    np.testing.assert_allclose(y[delay:delay + 3000], g * x * np.exp(2j * np.pi * cfo * n / fs), atol=1e-5)


def test_soapy_noise_power():
    dev, _ = soapy(noise_std=0.1, seed=3)
    y = dev.rx(20000).samples
    assert abs(np.mean(np.abs(y) ** 2) - 0.01) < 0.001


def test_soapy_error_codes_become_counters_and_gaps():
    dev, d = soapy(overflow_at={1}, drop_at={3}, timeout_at={5}, underflow_at={0}, lost_samples=250)
    x = tone(8 * BUF)
    dev.tx(x)
    assert dev.counters["underflows"] == 1          # reported by readStreamStatus
    blocks = [dev.rx(BUF) for _ in range(6)]
    assert [b.samples.size for b in blocks] == [BUF] * 5 + [0]
    assert blocks[1].overflow and blocks[1].dropped == 250        # timestamps give the exact loss
    assert not blocks[3].overflow and blocks[3].dropped == 250    # silent drop found by timestamps
    assert [b.sample_index for b in blocks[:5]] == [0, 1250, 2250, 3500, 4500]
    np.testing.assert_allclose(blocks[3].samples, x[3500:4500], atol=1e-6)
    assert blocks[3].timestamp_ns == 3_500_000
    c = dev.counters
    assert (c["overflows"], c["drops"], c["dropped_samples"], c["timeouts"]) == (1, 2, 500, 1)


def test_soapy_absent_device_names_the_uri():
    with pytest.raises(UserError) as err:
        soapy(absent=True)
    assert "soapy:driver=uhd,serial=ABC" in str(err.value) and "no match" in str(err.value)


def test_real_soapysdr_with_no_matching_device():
    pytest.importorskip("SoapySDR")
    with pytest.raises(UserError, match="soapy:driver=jscec_nonexistent_driver"):
        open_device("soapy:driver=jscec_nonexistent_driver", settings())


def test_soapy_missing_library(monkeypatch):
    monkeypatch.setitem(sys.modules, "SoapySDR", None)
    with pytest.raises(UserError, match="python3-soapysdr"):
        open_device("soapy:driver=uhd", settings())


def test_open_device_fakes_end_to_end():
    with open_device("fake-soapy:delay=5,bench=0", settings(tx_gain_db=SOAPY_UNITY_TX)) as dev:
        dev.tx(tone(100))
        assert np.allclose(dev.rx(105).samples[5:], tone(100), atol=1e-6)
    with pytest.raises(UserError, match="closed"):
        dev.rx(1)


# -- replay ---------------------------------------------------------------------------------------

def test_file_device_replays_a_recording(tmp_path):
    x = tone(2500)
    with RecordingWriter(tmp_path / "r", 1e6, 2.4e9, {"device": "fake"}) as w:
        w.write(x)
    dev = open_device(f"file:{tmp_path / 'r.sigmf-meta'}", settings(center_freq_hz=1e9))
    got, block = [], dev.rx(BUF)
    while not block.end_of_stream:
        got.append(block.samples)
        block = dev.rx(BUF)
    np.testing.assert_array_equal(np.concatenate(got), x)
    assert [g.size for g in got] == [1000, 1000, 500]
    assert dev.describe()["center_freq_hz"] == 2.4e9
    with pytest.raises(UserError, match="receive only"):
        dev.tx(x)
    dev.close()


def test_file_device_refuses_other_rate_and_missing_file(tmp_path):
    with RecordingWriter(tmp_path / "r", 2e6, 2.4e9) as w:
        w.write(tone(10))
    with pytest.raises(UserError, match="recorded at 2e"):
        open_device(f"file:{tmp_path / 'r'}", settings())
    with pytest.raises(UserError, match="no SigMF metadata"):
        open_device(f"file:{tmp_path / 'nope.sigmf-meta'}", settings())


# -- channels: Eve on a second RX channel of Bob's radio ---------------------------------------------

@pytest.mark.parametrize("text, device_text, channel", [
    ("pluto#1", "pluto", 1),
    ("pluto:ip:192.168.2.1#1", "pluto:ip:192.168.2.1", 1),
    ("pluto:usb:1.2.5#0", "pluto:usb:1.2.5", 0),
    ("soapy:driver=uhd,serial=X#1", "soapy:driver=uhd,serial=X", 1),
    ("fake-pluto:rx1_noise_std=2e-3#1", "fake-pluto:rx1_noise_std=2e-3", 1),
    ("fake-soapy", "fake-soapy", None),
    ("file:runs/a#1.sigmf-meta", "file:runs/a#1.sigmf-meta", None),   # a path, not a channel
])
def test_uri_channel_suffix(text, device_text, channel):
    u = parse_uri(text)
    assert (u.device_text, u.channel, u.rx_channel) == (device_text, channel, channel or 0)
    assert str(u) == text and str(u.device()) == device_text and u.device().channel is None
    assert u.device() == parse_uri(device_text)


@pytest.mark.parametrize("text", ["pluto#x", "pluto#", "pluto:ip:192.168.2.1#", "soapy:driver=uhd#a",
                                  "fake-pluto#-1", "pluto#1:ip:192.168.2.1"])
def test_bad_channel_suffix_is_a_one_line_error(text):
    with pytest.raises(UserError) as err:
        parse_uri(text)
    assert "\n" not in str(err.value) and text in str(err.value)


def test_fake_per_channel_options():
    imp = AirConditions.from_params({"noise_std": "1e-3", "rx1_noise_std": "0.1", "rx1_delay": "4"})
    assert imp.path(0).noise_std == 1e-3 and imp.path(1).noise_std == 0.1
    assert (imp.path(0).delay, imp.path(1).delay) == (0, 4)
    assert imp.path(0).seed != imp.path(1).seed        # independent noise per channel
    with pytest.raises(UserError, match="rx2_ options for a device with 2"):
        AirConditions.from_params({"rx2_noise_std": "0.1"}, "fake-pluto:rx2_noise_std=0.1")
    with pytest.raises(UserError, match="rx1_colour"):
        AirConditions.from_params({"rx1_colour": "red"})


def test_fake_air_feeds_both_channels_from_one_transmission():
    air = FakeAir(AirConditions(per_channel={1: {"path_gain_db": -6.0, "delay": 3}}))
    x = tone(100)
    air.transmit(x)
    a, b = air.receive(100, 1e6, channels=[0, 1])
    np.testing.assert_allclose(a, x, atol=1e-6)
    np.testing.assert_allclose(b[3:], 10 ** (-6 / 20) * x[:97], atol=1e-6)
    assert np.all(b[:3] == 0) and air.clock == 100


def two_channel(kind, **imp):
    imp = AirConditions(**imp)
    if kind == "pluto":
        dev = PlutoDevice(parse_uri("pluto:ip:192.168.2.1"), settings(), adi=fake_adi_module(FakeAir(imp)),
                          rx_channels=[0, 1])
    else:
        dev = SoapyDevice(parse_uri("soapy:driver=uhd"), settings(tx_gain_db=SOAPY_UNITY_TX),
                          soapy=fake_soapy_module(FakeAir(imp)), rx_channels=[0, 1])
    dev.configure()
    dev.start()
    return dev


def test_pluto_two_channels_use_pyadi_ad9361_as_documented():
    dev = two_channel("pluto", per_channel={1: {"noise_std": 0.05}})
    sdr = dev._sdr
    assert isinstance(sdr, FakeAd9361)                      # adi.ad9361, not adi.Pluto
    assert sdr.rx_enabled_channels == [0, 1] and sdr.tx_enabled_channels == [0]
    assert sdr.gain_control_mode_chan1 == "manual" and sdr.rx_hardwaregain_chan1 == 0
    assert dev.describe()["rx_channels"] == [0, 1]
    x = tone(3 * BUF)
    dev.tx(x)
    b = dev.rx(2500)
    assert b.samples.shape == (2, 2500) and b.num_samples == 2500
    np.testing.assert_allclose(b.samples[0], 0.5 * x[:2500], atol=2e-3)
    err1 = np.mean(np.abs(b.samples[1] - 0.5 * x[:2500]) ** 2)
    assert 0.0015 < err1 < 0.0035                           # channel 1 has its own noisier path
    dev.close()


def test_soapy_two_channels_one_stream_two_buffers():
    dev = two_channel("soapy", noise_std=1e-3, per_channel={1: {"noise_std": 0.05}}, overflow_at={1})
    d = dev._dev
    rx = [st for st in d._streams if st.direction == 1]
    assert len(rx) == 1 and rx[0].channels == [0, 1]       # setupStream(RX, CF32, [0, 1])
    assert d.getGainMode(1, 1) is False and d.getBandwidth(1, 1) == 1e6
    x = tone(8 * BUF)
    dev.tx(x)
    blocks = [dev.rx(BUF) for _ in range(3)]
    assert [b.samples.shape for b in blocks] == [(2, BUF)] * 3
    assert blocks[1].overflow and blocks[1].dropped == 100  # one event for both channels
    snr = [10 * np.log10(np.mean(np.abs(x[:BUF]) ** 2) / np.mean(np.abs(blocks[0].samples[c] - x[:BUF]) ** 2))
           for c in (0, 1)]
    assert snr[0] > 45 and 10 < snr[1] < 25
    dev.close()


@pytest.mark.parametrize("uri, words", [
    ("fake-pluto:rx_channels=1#1", "streams one RX channel, so there is no channel 1"),
    ("fake-pluto#2", "not channel 2"),
    ("fake-soapy:rx_channels=1#1", "no RX channel 1 on this device (it has 1)"),
    ("fake-soapy#3", "no RX channel 3 on this device (it has 2)"),
])
def test_missing_rx_channel_is_refused_in_one_line(uri, words):
    with pytest.raises(UserError) as err:
        open_device(uri, settings())
    assert words in str(err.value) and "\n" not in str(err.value) and uri.partition("#")[0] in str(err.value)


def test_pyadi_ad9361_on_one_channel_hardware_fails_at_first_read_as_pyadi_does():
    sdr = FakeAd9361(air=FakeAir(AirConditions(rx_channels=1)))
    with pytest.raises(Exception, match="Channel voltage2 not found"):
        sdr.rx()
    with pytest.raises(Exception, match="exceeds"):
        FakePluto().rx_enabled_channels = [0, 1]


@pytest.mark.parametrize("kind", ["pluto", "soapy"])
def test_retune_sets_the_device_and_reads_back(kind):
    dev = two_channel(kind)
    assert dev.retune(915e6) == 915e6 and dev.settings.center_freq_hz == 915e6
    if kind == "pluto":
        assert dev._sdr.lo_history[-2:] == [("rx_lo", 915_000_000), ("tx_lo", 915_000_000)]
    else:
        assert dev._dev.freq_history[-3:] == [(1, 0, 915e6), (1, 1, 915e6), (0, 0, 915e6)]
    with pytest.raises(UserError, match="cannot set rx_lo|frequency"):
        dev.retune(9e9)
    dev.close()


def test_recording_cannot_be_retuned(tmp_path):
    with RecordingWriter(tmp_path / "r", 1e6, 2.4e9) as w:
        w.write(tone(10))
    with open_device(f"file:{tmp_path / 'r'}", settings()) as dev:
        with pytest.raises(UserError, match="cannot be retuned"):
            dev.retune(915e6)


# -- identity, temperature, oscillator correction, gains while streaming ----------------------------

def test_pluto_serial_temperature_and_xo_correction_through_libiio_objects():
    dev = open_device("fake-pluto:bench=1,seed=9,temp_c=41.5", settings())
    sdr = dev._sdr
    assert dev.serial() == sdr.ctx.attrs["hw_serial"] == sdr.unit.serial
    assert dev.temperature_c() == pytest.approx(41.5)             # ad9361-phy temp0 input, milli-°C
    assert dev.xo_correction_hz() == 40e6
    assert dev.set_xo_correction_hz(40_000_123.4) == 40_000_123   # the driver's 1 Hz step
    assert sdr._ctrl.attrs["xo_correction"].value == "40000123"
    with pytest.raises(UserError, match="cannot set xo_correction = 40010000") as err:
        dev.set_xo_correction_hz(40.01e6)
    assert "\n" not in str(err.value)
    d = dev.describe()
    assert (d["serial"], d["temperature_c"], d["xo_correction_hz"]) == (sdr.unit.serial, 41.5, 40_000_123.0)
    assert dev.gain_range("rx") == (-3.0, 71.0, 1.0) and dev.gain_range("tx") == (-89.75, 0.0, 0.25)
    dev.retune(5.8e9)
    assert dev.gain_range("rx") == (-10.0, 62.0, 1.0)             # the AD9361 gain table by frequency


def test_soapy_serial_and_temperature_sensor():
    dev = open_device("fake-soapy:bench=1,seed=9,temp_c=44", settings())
    assert dev.serial() == dev._dev.unit.serial and dev.temperature_c() == pytest.approx(44.0)
    assert dev.xo_correction_hz() is None
    with pytest.raises(UserError, match="no reference-oscillator correction"):
        dev.set_xo_correction_hz(40e6)
    assert open_device("fake-soapy:serial=31F4C2A", settings()).serial() == "31F4C2A"
    u = SoapyDevice(parse_uri("soapy:driver=uhd,serial=X1"), settings(), soapy=fake_soapy_module())
    assert u.serial() == "X1"


@pytest.mark.parametrize("kind", ["fake-pluto", "fake-soapy"])
def test_digital_frequency_correction_is_phase_continuous_across_blocks(kind):
    dev = open_device(f"{kind}:cfo_hz=1234.5,bench=0", settings(tx_gain_db=unity_tx(kind)))
    dev.set_rx_frequency_correction(1234.5)
    x = tone(6 * BUF, amp=0.5, f=0.01)
    for k in range(6):
        dev.tx(x[k * BUF:(k + 1) * BUF])
    y = np.concatenate([dev.rx(700).samples for _ in range(8)])   # blocks that do not align with buffers
    ref = x[:y.size]
    err = y - ref * (np.vdot(ref, y) / np.vdot(ref, ref))
    assert np.max(np.abs(err)) < 2e-3                              # the CFO removed, no phase step anywhere
    assert dev.describe()["rx_frequency_correction_hz"] == 1234.5


@pytest.mark.parametrize("kind", ["fake-pluto", "fake-soapy"])
def test_gains_change_while_streaming_and_read_back(kind):
    dev = open_device(kind, settings(rx_gain_db=10))
    got = dev.set_gains(rx_gain_db=20, tx_gain_db=0 if kind == "fake-pluto" else 5)
    assert got["rx_gain_db"] == 20 and dev.settings.rx_gain_db == 20
    dev.tx(tone(BUF, amp=0.1))
    assert np.mean(np.abs(dev.rx(BUF).samples)) > 0
    if kind == "fake-pluto":
        with pytest.raises(UserError, match="attenuation"):
            dev.set_gains(tx_gain_db=3)
        with pytest.raises(UserError, match="rx_hardwaregain_chan0"):
            dev.set_gains(rx_gain_db=90)                           # beyond the AD9361 table
