"""The fakes' hardware models (radio.devices.hardware): presets, draws from a seed, URI switches, and what each
impairment does to the samples — two oscillators moving carrier and sample clock together, the resampler,
xo_correction, temperature, gain-dependent noise, DC, IQ imbalance, carrier leakage, converters."""
import contextlib

import numpy as np
import pytest

from jscec.errors import UserError
from radio.devices import RadioSettings, open_device, open_devices
from radio.devices.fakes import AirConditions, BroadcastAir, FakeAir, bench_default, join_ether
from radio.devices.hardware import B210, MODELS, PLUTO, Resampler, resample, unit_from_params
from radio.pulse import PulseShape

FC, FS = 2.4e9, 1e6


def settings(**kw):
    base = dict(center_freq_hz=FC, sample_rate_hz=FS, tx_gain_db=0.0, rx_gain_db=0.0, buffer_size=8192)
    base.update(kw)
    return RadioSettings(**base)


# -- presets and draws ------------------------------------------------------------------------------

def test_presets_hold_the_parts_figures():
    assert (PLUTO.chip, PLUTO.adc_bits, PLUTO.dac_bits, PLUTO.xo_tolerance_ppm) == ("AD9363", 12, 12, 25.0)
    assert (B210.chip, B210.adc_bits, B210.xo_tolerance_ppm) == ("AD9361", 12, 2.0)
    r = PLUTO.gain_range("rx", 2.4e9)
    assert (r.minimum, r.maximum, r.step) == (-3, 71, 1)
    assert (PLUTO.gain_range("rx", 800e6).maximum, PLUTO.gain_range("rx", 5.8e9).maximum) == (73, 62)
    t = PLUTO.gain_range("tx", 2.4e9)
    assert (t.minimum, t.maximum, t.step) == (-89.75, 0.0, 0.25)
    assert (B210.gain_range("rx", 2.4e9).maximum, B210.gain_range("tx", 2.4e9).maximum) == (76.0, 89.75)
    assert PLUTO.native_xo_correction and not B210.native_xo_correction
    assert PLUTO.noise_figure_db(0.8e9) == 2.0 and PLUTO.noise_figure_db(2.4e9) == 3.0
    assert PLUTO.lo_leak_dbfs(0) == -50 and PLUTO.lo_leak_dbfs(40) + 40 == pytest.approx(-32)


@pytest.mark.parametrize("model", list(MODELS.values()))
def test_draws_are_realistic_deterministic_and_distinct(model):
    units = [model.draw(s) for s in range(300)]
    ppm = np.array([u.xo_ppm for u in units])
    assert np.all(np.abs(ppm) <= model.xo_tolerance_ppm)
    assert ppm.std() == pytest.approx(model.xo_tolerance_ppm / np.sqrt(3), rel=0.15)   # uniform over ±tol
    lo, hi = model.temperature_c
    assert all(lo <= u.temperature_c <= hi for u in units)
    irr = np.array([u.rx[0].image_rejection_db for u in units])
    assert 40 < np.median(irr) < 60                    # ~50 dB: 0.2 % and 0.2° typical
    dc = np.array([20 * np.log10(abs(u.rx[0].dc)) for u in units])
    assert np.all((dc >= -60) & (dc <= -50))
    assert model.draw(7).xo_ppm == model.draw(7).xo_ppm and model.draw(7).serial == model.draw(7).serial
    assert len({u.serial for u in units}) == len(units)
    assert PLUTO.draw(3).serial != B210.draw(3).serial


def test_uri_keys_switch_each_impairment_off_or_set_it():
    full = unit_from_params("pluto", {"bench": "1"}, 5, False)
    assert full.xo_ppm != 0 and full.thermal and full.lo_leak and full.rx[0].dc
    ideal = unit_from_params("pluto", {"bench": "1", "ideal": "1"}, 5, False)
    assert (ideal.xo_ppm, ideal.thermal, ideal.lo_leak, ideal.rx[0].dc, ideal.rx[0].iq_gain) == (0, False, False, 0, 0)
    assert ideal.serial == full.serial                  # the same device, every impairment off
    one = unit_from_params("pluto", {"bench": "1", "xo_ppm": "0", "dc": "0", "iq": "0"}, 5, False)
    assert one.xo_ppm == 0 and one.rx[0].dc == 0 and one.rx[0].image_rejection_db == float("inf")
    assert one.thermal and one.lo_leak                  # the others stay
    set_ = unit_from_params("b210", {"bench": "1", "iq": "30", "dc": "-40", "xo_ppm": "1.5", "temp_c": "33"}, 5,
                            False)
    assert set_.rx[0].image_rejection_db == pytest.approx(30, abs=0.2)
    assert 20 * np.log10(abs(set_.rx[1].dc)) == pytest.approx(-40)
    assert (set_.xo_ppm, set_.temperature_c, set_.model.kind) == (1.5, 33.0, "b210")
    with pytest.raises(UserError, match="hardware=hackrf"):
        unit_from_params("pluto", {"hardware": "hackrf"}, 0, False, "fake-pluto:hardware=hackrf")
    with pytest.raises(UserError, match="xo_ppm=fast"):
        unit_from_params("pluto", {"xo_ppm": "fast"}, 0, False, "fake-pluto:xo_ppm=fast")


def test_bench_is_on_by_default_and_switched_off_by_uri_or_environment(monkeypatch):
    """Every fake opened by URI meets bench conditions unless told otherwise; one built in code is ideal."""
    monkeypatch.delenv("JSCEC_FAKE_BENCH", raising=False)
    assert bench_default()
    unit = open_device("fake-pluto:seed=4", settings())._sdr.unit
    assert unit.xo_ppm != 0 and unit.thermal and unit.lo_leak and unit.rx[0].dc and unit.bench
    assert unit.xo_ppm == PLUTO.draw(4).xo_ppm                       # drawn from the URI's seed
    assert open_device("fake-soapy:seed=4", settings())._dev.unit.xo_ppm == B210.draw(4).xo_ppm
    for off in ("bench=0", "ideal=1"):
        unit = open_device(f"fake-pluto:seed=4,{off}", settings())._sdr.unit
        assert unit.xo_ppm == 0 and not unit.thermal and not unit.lo_leak and not unit.rx[0].dc
    assert FakeAir(AirConditions()).attach("pluto").xo_ppm == 0       # built in code: ideal
    monkeypatch.setenv("JSCEC_FAKE_BENCH", "0")
    assert not bench_default()
    assert open_device("fake-pluto:seed=4", settings())._sdr.unit.xo_ppm == 0
    assert open_device("fake-soapy:seed=4,bench=1", settings())._dev.unit.xo_ppm != 0


def test_default_tx_gain_is_10_db_below_full_output_on_either_fake():
    """RadioSettings.tx_gain_db None: the device's default — a Pluto's −10 dB attenuation, the top of a B210's
    UHD range less 10 dB — so either fake transmits at the same level (the B210 scale clips −10 dB to nothing)."""
    got = {}
    for kind in ("fake-pluto", "fake-soapy"):
        dev = open_device(f"{kind}:bench=1,seed=5,xo_ppm=0,dc=0,iq=0,lo_leak=0,nf=0",
                          RadioSettings(center_freq_hz=FC, sample_rate_hz=FS, rx_gain_db=0.0, buffer_size=4096))
        got[kind] = dev.settings.tx_gain_db
        scale = 2.0 if kind == "fake-pluto" else 1.0                   # the Pluto's nominal level: half scale
        dev.tx(np.full(4096, 0.25 * scale, np.complex64))
        level = np.mean(np.abs(dev.rx(4096).samples[100:]))
        assert level == pytest.approx(0.25 * 10 ** (-10 / 20), rel=0.02), kind
    assert got == {"fake-pluto": -10.0, "fake-soapy": 79.75}


# -- the resampler ----------------------------------------------------------------------------------

def _periodic_rrc(n=8192, seed=1):
    rng = np.random.default_rng(seed)
    p = PulseShape()
    sym = (rng.integers(0, 64, n // 4) - 31.5 + 1j * (rng.integers(0, 64, n // 4) - 31.5)) / 18.5   # 4096-QAM
    up = np.zeros(n, complex)
    up[::4] = sym
    h = np.r_[p.taps, np.zeros(n - p.taps.size)]
    return np.fft.ifft(np.fft.fft(up) * np.fft.fft(h))


def test_resampler_is_exact_enough_for_4096_qam_and_transparent_at_ratio_one():
    x = _periodic_rrc()
    n = x.size
    X, f = np.fft.fft(x), np.fft.fftfreq(n)
    ratio, start = 1 + 50e-6, 0.37
    y = resample(np.tile(x, 3), ratio, start=n + start)[:4000]
    t = start + ratio * np.arange(4000)                          # exact: the band-limited periodic signal
    exact = np.array([np.sum(X * np.exp(2j * np.pi * f * ti)) / n for ti in t[::40]])
    err = 10 * np.log10(np.mean(np.abs(y[::40] - exact) ** 2) / np.mean(np.abs(exact) ** 2))
    assert err < -70
    chunks = iter([x[:1000], x[1000:5000], x[5000:]])
    r = Resampler(lambda k: next(chunks)[:k] if True else None)
    out = np.concatenate([r.produce(1000, 1.0), r.produce(4000, 1.0)])
    assert np.array_equal(out, x[:5000])                         # ratio 1: samples pass unchanged


# -- two oscillators ----------------------------------------------------------------------------------

def _pair(tx_params, rx_params, **kw):
    stack = contextlib.ExitStack()
    devs = open_devices({"tx": f"fake-pluto:{tx_params}", "rx": f"fake-pluto:{rx_params}"},
                        settings(**kw), stack)
    return stack, devs["tx"], devs["rx"]


def _tone_freqs(y, nus):
    """Frequencies (cycles/sample) of the strongest components near each nominal one, by phase slope."""
    out = []
    n = np.arange(y.size)
    for nu in nus:
        z = y * np.exp(-2j * np.pi * nu * n)
        k = 512
        seg = z[: (z.size // k) * k].reshape(-1, k).mean(axis=1)
        ph = np.unwrap(np.angle(seg))
        out.append(nu + np.polyfit(np.arange(ph.size) * k, ph, 1)[0] / (2 * np.pi))
    return np.array(out)


@pytest.mark.parametrize("tx_ppm, rx_ppm, freq", [(10.0, -5.0, 2.4e9), (-20.0, 20.0, 5.8e9), (3.0, 3.0, 2.4e9)])
def test_one_oscillator_moves_carrier_and_sample_clock_together(tx_ppm, rx_ppm, freq):
    keys = "ideal=1,path_gain_db=0,noise_std=0"
    stack, tx, rx = _pair(f"{keys},xo_ppm={tx_ppm},seed=1", f"{keys},xo_ppm={rx_ppm},seed=2", center_freq_hz=freq)
    with stack:
        n = 8192 * 12
        k = np.arange(n)
        x = 0.2 * (np.exp(2j * np.pi * 0.1 * k) + np.exp(-2j * np.pi * 0.05 * k))
        for i in range(0, n, 8192):
            tx.tx(x[i:i + 8192])
        y = np.concatenate([rx.rx(8192).samples for _ in range(10)])[4096:]
    e_t, e_r = tx_ppm * 1e-6, rx_ppm * 1e-6
    r = (1 + e_t) / (1 + e_r)
    f = freq * (e_t - e_r) / (FS * (1 + e_r))
    if abs(f) > 0.5:
        f = (f + 0.5) % 1 - 0.5
    got = _tone_freqs(y, [(0.1 * r + f + 0.5) % 1 - 0.5, (-0.05 * r + f + 0.5) % 1 - 0.5])
    # the tones arrive at ν·r + f: both the carrier offset and the clock ratio as predicted
    slope = (got[0] - got[1]) / 0.15
    assert slope == pytest.approx(r, abs=2e-7)
    assert (got[0] - 0.1 * slope) * FS == pytest.approx(f * FS, abs=0.5)


def test_xo_correction_attribute_moves_both_and_is_checked():
    stack, tx, rx = _pair("bench=1,seed=1,dc=0,iq=0,lo_leak=0", "bench=1,seed=2,dc=0,iq=0,lo_leak=0")
    with stack:
        unit_t, unit_r = tx._sdr.unit, rx._sdr.unit
        assert rx.xo_correction_hz() == 40e6
        before = unit_r.xo_error()
        # tell the receiver's driver its reference runs where the transmitter's does, relative to it
        target = 40e6 * (1 + unit_r.xo_error()) / (1 + unit_t.xo_error())
        got = rx.set_xo_correction_hz(target)
        assert got == round(target) and rx._sdr._ctrl.attrs["xo_correction"].value == str(int(round(target)))
        assert abs(unit_r.xo_error() - unit_t.xo_error()) < 0.0125e-6 < abs(before - unit_t.xo_error())
        with pytest.raises(UserError, match="xo_correction"):
            rx.set_xo_correction_hz(40e6 + 9000)                 # beyond xo_correction_available
        assert rx._sdr._ctrl.attrs["xo_correction_available"].value == "[39992000 1 40008000]"


def test_temperature_sensor_and_oscillator_drift():
    dev = open_device("fake-pluto:bench=1,seed=3,temp_c=40,xo_tempco=0.1,xo_ppm=2", settings())
    assert dev.temperature_c() == pytest.approx(40.0)
    unit = dev._sdr.unit
    assert unit.xo_error() * 1e6 == pytest.approx(2 + 0.1 * 15)
    warm = open_device("fake-pluto:bench=1,seed=3,temp_c=40,temp_ramp_c=10,temp_tau_s=0.004,xo_tempco=0.1,xo_ppm=2",
                       settings())
    for _ in range(4):
        warm.rx(8192)
    assert warm.temperature_c() == pytest.approx(50.0, abs=0.1)    # warmed up over 33 ms of streaming
    assert warm._sdr.unit.xo_error() * 1e6 == pytest.approx(2 + 0.1 * 25, abs=0.02)
    soapy = open_device("fake-soapy:bench=1,seed=3,temp_c=47", settings())
    assert soapy.temperature_c() == pytest.approx(47.0) and soapy.xo_correction_hz() is None
    assert open_device("fake-pluto:seed=3,bench=0", settings()).temperature_c() is None   # no sensor without the model


# -- front ends ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["fake-pluto", "fake-soapy"])
def test_noise_floor_follows_the_rx_gain_as_the_model_says(kind):
    dev = open_device(f"{kind}:bench=1,seed=8,dc=0,noise_std=0", settings(rx_gain_db=0, buffer_size=65536))
    unit = dev._sdr.unit if kind == "fake-pluto" else dev._dev.unit
    got = {}
    for g in (0, 20, 40, 60, 70):
        dev.set_gains(rx_gain_db=g)
        y = dev.rx(65536).samples
        got[g] = 10 * np.log10(np.mean(np.abs(y - y.mean()) ** 2))
        want = 10 * np.log10(10 ** (unit.noise_floor_dbfs(g, FS, FC) / 10) + 2 / (12 * 2048 ** 2))  # + 12-bit LSB
        assert got[g] == pytest.approx(want, abs=0.3)
    assert got[70] - got[60] > 6 and got[20] - got[0] < 0.5        # NF-limited at the top, back-end-limited below


def test_dc_image_and_carrier_leakage_land_where_expected():
    stack, tx, rx = _pair("bench=1,seed=4,xo_ppm=0,iq=0,nf=0,path_gain_db=0,noise_std=0,lo_leak=0",
                          "bench=1,seed=5,xo_ppm=0,iq=30,dc=-45,nf=0,path_gain_db=0,noise_std=0")
    with stack:
        n = 8192 * 4
        x = 0.25 * np.exp(2j * np.pi * 0.125 * np.arange(n))
        for i in range(0, n, 8192):
            tx.tx(x[i:i + 8192])
        y = np.concatenate([rx.rx(8192).samples for _ in range(4)]).astype(complex)
    spec = np.abs(np.fft.fft(y)) ** 2 / y.size ** 2
    tone, image, dc = spec[n // 8], spec[-n // 8], spec[0]
    assert 10 * np.log10(tone / image) == pytest.approx(30, abs=0.5)
    assert 10 * np.log10(dc) == pytest.approx(-45, abs=0.5)
    # carrier leakage: −50 dBc of full scale at 0 dB attenuation, −32 dBc at 40 dB
    for att, dbc in ((0.0, -50.0), (40.0, -32.0)):
        stack, tx, rx = _pair("bench=1,seed=4,xo_ppm=0,iq=0,nf=0,path_gain_db=0,noise_std=0",
                              "bench=1,seed=5,xo_ppm=0,iq=0,dc=0,nf=0,path_gain_db=0,noise_std=0",
                              tx_gain_db=-att, rx_gain_db=30)
        with stack:
            for _ in range(2):
                tx.tx(np.zeros(8192, complex))
            leak = np.mean(rx.rx(8192).samples[100:]) / 10 ** (30 / 20)
        full_scale_out = 10 ** (-att / 20)                        # the DAC at full scale, after the attenuation
        assert 20 * np.log10(abs(leak) / full_scale_out) == pytest.approx(dbc, abs=0.3)


def test_converters_quantise_and_clip():
    dev = open_device("fake-soapy:bench=1,seed=2,noise_std=0.5,dc=0", settings(rx_gain_db=0))
    y = dev.rx(4096).samples.astype(complex)
    assert np.allclose(y.real * 2048, np.round(y.real * 2048)) and y.real.max() <= 2047 / 2048
    assert y.real.min() == -1.0                                   # clipped at full scale
    plain = open_device("fake-soapy:seed=2,noise_std=0.01,bench=0", settings(rx_gain_db=0)).rx(4096).samples
    assert not np.allclose(plain.real * 2048, np.round(plain.real * 2048))   # legacy fake: CF32 unquantised


def test_b210_tx_gain_scale_with_the_bench_model():
    air = FakeAir(AirConditions(hardware={"bench": "1", "dc": "0", "iq": "0", "lo_leak": "0", "nf": "0",
                                          "xo_ppm": "0"}))
    from radio.devices.fakes import fake_soapy_module
    from radio.devices.soapy import SoapyDevice
    from radio.devices import parse_uri

    dev = SoapyDevice(parse_uri("soapy:driver=uhd"), settings(tx_gain_db=79.75, buffer_size=4096),
                      soapy=fake_soapy_module(air))
    dev.configure()
    dev.start()
    dev.tx(np.full(4096, 0.5, np.complex64))
    assert np.mean(np.abs(dev.rx(4096).samples)) == pytest.approx(0.5 * 10 ** (-10 / 20), rel=1e-3)
    assert dev.gain_range("tx") == (0.0, 89.75, 0.25) and dev.gain_range("rx") == (0.0, 76.0, 1.0)


def test_ether_carries_each_transmitters_oscillator():
    a = BroadcastAir(AirConditions(seed=1, hardware={"bench": "1"}))
    b = BroadcastAir(AirConditions(seed=2, hardware={"bench": "1"}))
    join_ether([a, b])
    ua, ub = a.attach("pluto"), b.attach("pluto")
    a.transmit(np.ones(100), source=ua)
    assert b._clocks(FC, FS)[0] == pytest.approx((1 + ua.xo_error()) / (1 + ub.xo_error()))
    assert a._clocks(FC, FS) == (1.0, 0.0)                        # a device hearing itself: one oscillator
