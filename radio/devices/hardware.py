"""Hardware models of the radios the CI fakes stand in for: one dataclass per device kind, with presets.

A :class:`HardwareModel` holds what the data sheets say about a kind of radio (converter bits, the
reference oscillator's tolerance, gain ranges and steps, noise figure, quadrature and carrier-leakage
figures); :meth:`HardwareModel.draw` makes one *unit* of it (:class:`HardwareUnit`): the values one
board happens to have, drawn from a seed, so that every fake run meets bench conditions. The fakes
(:mod:`radio.devices.fakes`) apply a unit's impairments on their transmit and receive paths, and the
air between two fakes uses both units' oscillators (see :class:`radio.devices.fakes.FakeAir`).

**What each impairment does** (RX = the receiving unit, TX = the transmitting one):

* *Reference oscillator (XO).* One oscillator drives the LO synthesisers *and* the sample clock, so an
  error of e ppm moves both: between two units, a carrier offset CFO = f_c·(e_TX − e_RX) and a
  sample-rate offset of (1 + e_TX)/(1 + e_RX) − 1 ≈ e_TX − e_RX, together. The error drifts with the
  die temperature: e(T) = e₂₅ + k·(T − 25 °C). An AD936x-based unit honours an ``xo_correction`` (the
  driver's belief of the reference frequency, Hz): the synthesisers are programmed for that frequency,
  so the effective error becomes 40 MHz·(1 + e)/xo_correction − 1 for both LO and sample clock.
* *RX front end.* Input-referred thermal noise kTB·F (F the noise figure at maximum gain) is amplified
  by the RX gain G; a back-end noise (mixer, baseband, ADC) adds after the gain, so the noise figure
  rises about dB for dB below a knee. Then a DC offset (the residual the AD936x tracking loops leave),
  IQ gain/phase imbalance, and the 12-bit ADC (rounding and clipping at full scale).
* *TX front end.* IQ imbalance, carrier (LO) leakage — a tone at the TX LO, hence at DC of the TX
  baseband, whose level relative to full scale falls more slowly than the attenuation — and the 12-bit
  DAC (in the Pluto fake, as before).

**Units.** The fakes' air unit (amplitude 1.0) is converter full scale: a DAC at full scale with 0 dB
attenuation produces 1.0, and 1.0 fills the ADC at 0 dB RX gain (see :mod:`radio.devices.fakes`). For the
thermal noise this needs an absolute level: ``air_dbm`` is the power of amplitude 1.0 in dBm, taken as
the AD9361's maximum TX output (so a full-scale DAC at 0 dB attenuation is ``air_dbm`` at its port).

**Figures and where they come from.** "DS" is the AD9361 data sheet, Rev. F (Analog Devices, 2016);
the AD9363 of the Pluto is the same die family with the same converters and a narrower tuning range.

============================  =================  =============================================================
figure                        preset             source
============================  =================  =============================================================
ADC/DAC resolution            12 bit             DS, Features ("integrated 12-bit DACs and ADCs"); the
                                                 AD9363 of the Pluto likewise
Pluto XO tolerance            ±25 ppm            ADALM-Pluto's 40 MHz reference (project DESIGN.md, "Facts
                                                 checked": a ±25 ppm-class part); drawn uniformly
B210 XO tolerance             ±2 ppm             Ettus USRP B200/B210 spec sheet, TCXO frequency accuracy
                                                 (DESIGN.md); drawn uniformly
XO temperature coefficient    ±0.13 / ±0.02      Pluto: a crystal like the Epson TSX-3225 that ADI's wiki
                              ppm/°C             page "Tuning the AD9361/AD9364" names (±15 ppm over its
                                                 −30…+85 °C range) spread linearly; B210: its TCXO's ±2 ppm
                                                 over 0…70 °C (modelled, linear, drawn uniformly)
die temperature               35–50 °C (Pluto),  not a data-sheet figure: the range a running unit's
                              40–55 °C (B210)    ``in_temp0_input`` reads in a closed case (modelled)
``xo_correction``             39992000 …         AD9361 Linux driver (``ad9361-phy`` attribute
                              40008000 Hz, 1 Hz  ``xo_correction``, ``xo_correction_available``); ADI's
                                                 "Tuning the AD9361/AD9364" page: tell the driver the
                                                 oscillator's actual frequency
RX gain, 70–1300 MHz          −1 … 73 dB, 1 dB   AD9361 Linux driver full gain table (``hardwaregain_
RX gain, 1300–4000 MHz        −3 … 71 dB, 1 dB   available`` of ``ad9361-phy``); the fakes' earlier −3…71
RX gain, 4000–6000 MHz        −10 … 62 dB, 1 dB  (same)
TX attenuation                0 … 89.75 dB,      DS, TX attenuation range and step (pyadi-iio's
                              0.25 dB            ``tx_hardwaregain`` −89.75…0)
B210 gains (UHD)              RX 0…76 dB, 1 dB;  UHD's B200 gain ranges, as SoapyUHD reports them
                              TX 0…89.75, 0.25
noise figure at max gain      2.0 / 3.0 / 3.8 dB DS, Features (2 dB at 800 MHz) and RX specifications
                              (0.8 / 2.4 / 5.5   (3 dB at 2.4 GHz, 3.8 dB at 5.5 GHz; interpolated
                              GHz)               linearly in frequency)
noise figure knee             15 dB below max    the shape of DS's "RX noise figure vs. RX gain index"
                              gain               plot (flat near maximum gain, then about dB for dB);
                                                 where the knee sits is modelled
``air_dbm``                   +7 dBm             DS, TX maximum output power at 2.4 GHz (≈ 7.5 dBm);
                                                 ADALM-Pluto "up to 7 dBm" (rounded)
RX quadrature imbalance       0.2 % gain, 0.2°   DS, RX quadrature gain/phase error (typical, tracking
                              phase (typ., σ)    on); an ADI engineer's answer on EngineerZone ("0.2 % and
                                                 0.2 degree typ ... image rejection ~ −50 dBc"); drawn
                                                 as normal with these standard deviations per channel
TX quadrature imbalance       as RX              assumed like the RX figures (TX quadrature tracking)
RX DC offset (residual)       −60 … −50 dBFS     not in DS: the residual the RF/BB DC tracking loops
                                                 leave (modelled), random phase, per channel
TX carrier leakage            −50 dBc at 0 dB,   DS, TX carrier leakage (with calibration) at 0 and
                              −32 dBc at 40 dB   40 dB attenuation, relative to a full-scale output;
                              attenuation        linear in dB between and beyond
TX noise floor, TX EVM        not modelled       DS: ≤ −157 dBm/Hz, ≤ −40 dB
LO step                       not modelled       DS: 2.4 Hz maximum step (fractional-N)
============================  =================  =============================================================

The data-sheet figures marked DS other than those on its first page (Features) were recalled from the
data sheet's specification table and could not be re-read where this was written; treat them as
typical, and check them against the sheet before relying on the exact numbers.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from jscec.errors import UserError

BOLTZMANN_DBM_HZ = -174.0       # kT at 290 K, dBm/Hz
XO_CORRECTION_SPAN_HZ = 8000    # ±8 kHz of 40 MHz (±200 ppm): the driver's xo_correction_available


@dataclass(frozen=True)
class GainRange:
    """A gain range (dB) that applies from ``f_lo`` to ``f_hi`` Hz, with its step."""

    f_lo: float
    f_hi: float
    minimum: float
    maximum: float
    step: float

    def clip(self, value: float) -> float:
        return float(min(max(value, self.minimum), self.maximum))

    def quantise(self, value: float) -> float:
        return float(round(value / self.step) * self.step)


@dataclass(frozen=True)
class HardwareModel:
    """What the data sheets say about one kind of radio (see the module docstring for the sources)."""

    kind: str
    chip: str
    adc_bits: int = 12
    dac_bits: int = 12
    xo_hz: float = 40e6
    xo_tolerance_ppm: float = 25.0
    xo_tempco_ppm_per_c: float = 0.13
    temperature_c: tuple = (35.0, 50.0)
    native_xo_correction: bool = True
    rx_gain: tuple = ()
    tx_gain: tuple = ()
    tx_gain_is_attenuation: bool = True
    nf_db: tuple = ((0.8e9, 2.0), (2.4e9, 3.0), (5.5e9, 3.8))
    nf_knee_db: float = 15.0
    air_dbm: float = 7.0
    rx_iq_gain_sigma: float = 0.002
    rx_iq_phase_sigma_deg: float = 0.2
    tx_iq_gain_sigma: float = 0.002
    tx_iq_phase_sigma_deg: float = 0.2
    dc_dbfs: tuple = (-60.0, -50.0)
    lo_leak_dbc_0db: float = -50.0
    lo_leak_dbc_40db: float = -32.0

    def gain_range(self, direction: str, freq_hz: float) -> GainRange:
        """The RX (``"rx"``) or TX (``"tx"``) gain range at ``freq_hz``."""
        table = self.rx_gain if direction == "rx" else self.tx_gain
        for r in table:
            if r.f_lo <= freq_hz < r.f_hi:
                return r
        return table[-1] if freq_hz >= table[-1].f_lo else table[0]

    def noise_figure_db(self, freq_hz: float) -> float:
        f, nf = zip(*self.nf_db)
        return float(np.interp(freq_hz, f, nf))

    def lo_leak_dbfs(self, attenuation_db: float) -> float:
        """TX carrier leakage (dB relative to a full-scale output at 0 dB attenuation) at an attenuation."""
        slope = (self.lo_leak_dbc_40db - self.lo_leak_dbc_0db) / 40.0   # dBc per dB of attenuation
        return self.lo_leak_dbc_0db - attenuation_db + slope * attenuation_db

    def draw(self, seed, **overrides) -> "HardwareUnit":
        """One unit of this model with realistic values drawn from ``seed``; ``overrides`` set fields of
        :class:`HardwareUnit` (e.g. ``xo_ppm=0``)."""
        salt = sum((i + 1) * ord(ch) for i, ch in enumerate(self.kind))   # units of two kinds differ
        rng = np.random.default_rng([0x48574D, salt, *np.atleast_1d(seed).astype(int).tolist()])
        tol = self.xo_tolerance_ppm
        lo_t, hi_t = self.temperature_c
        rx = []
        for _ in range(2):
            rx.append(FrontEnd(
                iq_gain=float(rng.normal(0, self.rx_iq_gain_sigma)),
                iq_phase_deg=float(rng.normal(0, self.rx_iq_phase_sigma_deg)),
                dc=complex(10 ** (rng.uniform(*self.dc_dbfs) / 20) * np.exp(2j * np.pi * rng.uniform()))))
        tx = FrontEnd(iq_gain=float(rng.normal(0, self.tx_iq_gain_sigma)),
                      iq_phase_deg=float(rng.normal(0, self.tx_iq_phase_sigma_deg)))
        values = dict(model=self, xo_ppm=float(rng.uniform(-tol, tol)),
                      xo_tempco=float(rng.uniform(-1, 1) * self.xo_tempco_ppm_per_c),
                      temperature_c=float(rng.uniform(lo_t, hi_t)), rx=tuple(rx), tx=tx,
                      lo_leak_phase=float(rng.uniform(0, 2 * np.pi)),
                      serial=f"{int(rng.integers(0, 2 ** 48)):012x}", bench=True)
        values.update(overrides)
        return HardwareUnit(**values)

    def ideal(self, **overrides) -> "HardwareUnit":
        """A unit with every impairment off (exact oscillator, no noise, DC, imbalance or leakage)."""
        values = dict(model=self, xo_ppm=0.0, xo_tempco=0.0, temperature_c=None, rx=(FrontEnd(), FrontEnd()),
                      tx=FrontEnd(), thermal=False, lo_leak=False, serial="ideal")
        values.update(overrides)
        return HardwareUnit(**values)


_AD9361_RX = (GainRange(70e6, 1300e6, -1, 73, 1), GainRange(1300e6, 4000e6, -3, 71, 1),
              GainRange(4000e6, 6000e6 + 1, -10, 62, 1))

#: ADALM-Pluto (AD9363, 40 MHz ±25 ppm reference); TX gain is pyadi-iio's attenuation (−89.75 … 0 dB).
PLUTO = HardwareModel(kind="pluto", chip="AD9363", xo_tolerance_ppm=25.0, xo_tempco_ppm_per_c=0.13,
                      temperature_c=(35.0, 50.0), native_xo_correction=True, rx_gain=_AD9361_RX,
                      tx_gain=(GainRange(0, 6e9 + 1, -89.75, 0.0, 0.25),), tx_gain_is_attenuation=True)

#: Ettus USRP B210 (AD9361, 40 MHz ±2 ppm TCXO) through SoapyUHD: UHD's gain ranges, no XO correction
#: attribute (SoapyUHD offers no frequency correction), so the project corrects it digitally.
B210 = HardwareModel(kind="b210", chip="AD9361", xo_tolerance_ppm=2.0, xo_tempco_ppm_per_c=0.02,
                     temperature_c=(40.0, 55.0), native_xo_correction=False,
                     rx_gain=(GainRange(0, 6e9 + 1, 0.0, 76.0, 1.0),),
                     tx_gain=(GainRange(0, 6e9 + 1, 0.0, 89.75, 0.25),), tx_gain_is_attenuation=False)

MODELS = {"pluto": PLUTO, "b210": B210}


@dataclass(frozen=True)
class FrontEnd:
    """One converter path's static impairments: IQ gain error (fraction), phase error (degrees), DC."""

    iq_gain: float = 0.0
    iq_phase_deg: float = 0.0
    dc: complex = 0j

    @property
    def image_rejection_db(self) -> float:
        """10·log10 of the wanted-to-image power ratio this imbalance gives (inf: none)."""
        g, th = 1 + self.iq_gain, np.deg2rad(self.iq_phase_deg)
        k1 = (1 + g * np.exp(-1j * th)) / 2
        k2 = (1 - g * np.exp(1j * th)) / 2
        return float("inf") if abs(k2) == 0 else float(20 * np.log10(abs(k1) / abs(k2)))

    def imbalance(self, x: np.ndarray) -> np.ndarray:
        """I unchanged, Q scaled by (1 + gain error) and rotated by the phase error: y = k1·x + k2·conj(x)."""
        if not (self.iq_gain or self.iq_phase_deg):
            return x
        g, th = 1 + self.iq_gain, np.deg2rad(self.iq_phase_deg)
        k1 = (1 + g * np.exp(-1j * th)) / 2
        k2 = (1 - g * np.exp(1j * th)) / 2
        return k1 * x + k2 * np.conj(x)


@dataclass
class HardwareUnit:
    """One board: its drawn impairments, its temperature and the ``xo_correction`` its driver holds.

    ``xo_ppm`` is the reference error at 25 °C; ``xo_tempco`` ppm per °C; ``temperature_c`` the die
    temperature (None: not reported, 25 °C for the XO); ``temperature_ramp_c``/``temperature_tau_s``
    warm the die by that much with that time constant over the unit's streaming time (0: steady).
    ``thermal``: input-referred thermal noise and back-end noise (gain-dependent noise floor);
    ``lo_leak``: TX carrier leakage; ``adc``: 12-bit rounding/clipping on receive (always on for the Pluto
    fake, whose ``rx()`` returns raw ADC counts; for SoapySDR's CF32 only when this is set).
    """

    model: HardwareModel
    xo_ppm: float = 0.0
    xo_tempco: float = 0.0
    temperature_c: float | None = None
    temperature_ramp_c: float = 0.0
    temperature_tau_s: float = 60.0
    rx: tuple = (FrontEnd(), FrontEnd())
    tx: FrontEnd = FrontEnd()
    thermal: bool = True
    lo_leak: bool = True
    lo_leak_phase: float = 0.0
    adc: bool = True
    serial: str = ""
    xo_correction_hz: float | None = None
    nf_db: float | None = None          # overrides the model's noise figure
    bench: bool = False                 # drawn with bench impairments (else ideal)
    time_s: float = field(default=0.0)  # streaming time so far (drives the warm-up ramp)

    def __post_init__(self):
        if self.xo_correction_hz is None:
            self.xo_correction_hz = float(self.model.xo_hz)
        self._streamed: dict = {}

    # -- oscillator ----------------------------------------------------------------------------------
    def temperature(self) -> float | None:
        if self.temperature_c is None:
            return None
        ramp = self.temperature_ramp_c * (1 - np.exp(-self.time_s / max(self.temperature_tau_s, 1e-9)))
        return float(self.temperature_c + ramp)

    def xo_error(self) -> float:
        """The effective fractional error of LO and sample clock (ppm·1e-6), ``xo_correction`` included."""
        t = self.temperature()
        ppm = self.xo_ppm + self.xo_tempco * ((25.0 if t is None else t) - 25.0)
        return float(self.model.xo_hz * (1 + ppm * 1e-6) / self.xo_correction_hz - 1)

    def set_xo_correction(self, hz) -> None:
        """The driver's ``xo_correction`` write: an integer within ±``XO_CORRECTION_SPAN_HZ`` of nominal."""
        value = int(round(float(hz)))
        if abs(value - self.model.xo_hz) > XO_CORRECTION_SPAN_HZ:
            raise OSError(22, f"Invalid argument (xo_correction {value})")
        self.xo_correction_hz = float(value)

    # -- noise ---------------------------------------------------------------------------------------
    def thermal_power(self, sample_rate: float, freq_hz: float) -> float:
        """Input-referred thermal noise power per sample (air units², kTB·F over the sample rate)."""
        nf = self.model.noise_figure_db(freq_hz) if self.nf_db is None else self.nf_db
        return 10 ** ((BOLTZMANN_DBM_HZ + nf + 10 * np.log10(sample_rate) - self.model.air_dbm) / 10)

    def backend_power(self, sample_rate: float, freq_hz: float) -> float:
        """Back-end noise power per sample at the ADC (full-scale units²): the thermal noise amplified by the
        maximum gain less the knee, so the noise figure rises 3 dB there."""
        g_max = self.model.gain_range("rx", freq_hz).maximum
        return self.thermal_power(sample_rate, freq_hz) * 10 ** ((g_max - self.model.nf_knee_db) / 10)

    def noise_floor_dbfs(self, rx_gain_db: float, sample_rate: float, freq_hz: float) -> float:
        """The expected noise power per sample at the ADC (dBFS) with no signal, at this RX gain."""
        if not self.thermal:
            return float("-inf")
        p = self.thermal_power(sample_rate, freq_hz) * 10 ** (rx_gain_db / 10) + self.backend_power(sample_rate, freq_hz)
        return float(10 * np.log10(p))

    # -- the two paths -------------------------------------------------------------------------------
    def receive(self, x: np.ndarray, channel: int, rx_gain_db: float, sample_rate: float, freq_hz: float,
                rng: np.random.Generator) -> np.ndarray:
        """Antenna samples (air units) → ADC input (full-scale units), before quantisation."""
        g = 10 ** (rx_gain_db / 20)
        n = x.size
        if self.thermal:
            s_in = np.sqrt(self.thermal_power(sample_rate, freq_hz) / 2)
            s_back = np.sqrt(self.backend_power(sample_rate, freq_hz) / 2)
            s = np.sqrt((g * s_in) ** 2 + s_back ** 2)
            y = g * x + s * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
        else:
            y = g * x
        fe = self.rx[channel] if channel < len(self.rx) else self.rx[-1]
        y = fe.imbalance(y)
        if fe.dc:
            y = y + fe.dc
        return y

    def transmit(self, x: np.ndarray, attenuation_db: float) -> np.ndarray:
        """DAC output (full-scale units, before the TX gain) → with TX imbalance and carrier leakage."""
        y = self.tx.imbalance(x)
        if self.lo_leak and y.size:
            # the leakage is fixed at the output; refer it to before the attenuation
            leak = 10 ** ((self.model.lo_leak_dbfs(attenuation_db) + attenuation_db) / 20)
            y = y + leak * np.exp(1j * self.lo_leak_phase)
        return y

    def advance(self, samples: int, sample_rate: float, direction: str = "rx") -> None:
        """Streaming time: the longer of what the unit has received and transmitted."""
        self._streamed[direction] = self._streamed.get(direction, 0.0) + samples / float(sample_rate)
        self.time_s = max(self._streamed.values())

    def describe(self) -> dict:
        """What the unit is (for tests and reports; a real radio knows none of this)."""
        return {"model": self.model.kind, "xo_ppm": self.xo_ppm, "xo_tempco_ppm_per_c": self.xo_tempco,
                "temperature_c": self.temperature(), "xo_correction_hz": self.xo_correction_hz,
                "effective_xo_ppm": self.xo_error() * 1e6,
                "rx_image_rejection_db": [fe.image_rejection_db for fe in self.rx],
                "rx_dc_dbfs": [float(20 * np.log10(abs(fe.dc))) if fe.dc else None for fe in self.rx],
                "tx_image_rejection_db": self.tx.image_rejection_db, "thermal": self.thermal,
                "lo_leak": self.lo_leak, "serial": self.serial}


#: URI keys of the hardware model (see :func:`unit_from_params`).
HARDWARE_KEYS = ("hardware", "bench", "ideal", "xo_ppm", "xo_tempco", "temp_c", "temp_ramp_c", "temp_tau_s",
                 "dc", "iq", "lo_leak", "nf", "adc", "serial")


def unit_from_params(default_kind: str, params: dict, seed, bench_default: bool, uri: str = "fake") -> HardwareUnit:
    """The unit a fake's URI asks for.

    ``hardware=pluto|b210`` picks the model (default: the fake's kind). ``bench=1`` draws every
    impairment from ``seed`` (the default when ``bench_default``); ``bench=0`` or ``ideal=1`` turns them
    all off. Then single keys set or turn off one impairment: ``xo_ppm=V`` (the error at 25 °C; 0: an exact
    oscillator, its temperature coefficient 0 too unless ``xo_tempco`` is given), ``xo_tempco=K`` (ppm/°C), ``temp_c=T`` (die temperature), ``temp_ramp_c``/``temp_tau_s`` (warm-up),
    ``dc=DBFS`` (0: none), ``iq=DB`` (image rejection in dB, split evenly between gain and phase error;
    0: none), ``lo_leak=0`` (none), ``nf=DB`` (noise figure at maximum gain; 0: no thermal or back-end
    noise), ``adc=0`` (no 12-bit rounding on a SoapySDR fake), ``serial=TEXT``.
    """
    def num(key):
        try:
            return float(params[key])
        except ValueError:
            raise UserError(f"bad device URI '{uri}': '{key}={params[key]}' is not a number") from None

    def flag(key):
        return str(params[key]).lower() in ("1", "true", "yes", "on")

    kind = str(params.get("hardware", default_kind)).lower()
    if kind not in MODELS:
        raise UserError(f"bad device URI '{uri}': hardware={kind} (known: {', '.join(MODELS)})")
    model = MODELS[kind]
    bench = flag("bench") if "bench" in params else bench_default
    if "ideal" in params and flag("ideal"):
        bench = False
    unit = model.draw(seed) if bench else model.ideal(adc=(default_kind == "pluto"))
    if not bench:
        unit.serial = model.draw(seed).serial   # a serial all the same: it names the device
    changes: dict = {}
    if "xo_ppm" in params:
        changes["xo_ppm"] = num("xo_ppm")
        if changes["xo_ppm"] == 0 and "xo_tempco" not in params:
            changes["xo_tempco"] = 0.0    # xo_ppm=0: an exact oscillator at any temperature
    if "xo_tempco" in params:
        changes["xo_tempco"] = num("xo_tempco")
    if "temp_c" in params:
        changes["temperature_c"] = num("temp_c")
    if "temp_ramp_c" in params:
        changes["temperature_ramp_c"] = num("temp_ramp_c")
    if "temp_tau_s" in params:
        changes["temperature_tau_s"] = num("temp_tau_s")
    if "dc" in params or "iq" in params:
        rx = list(unit.rx)
        tx = unit.tx
        for i, fe in enumerate(rx):
            if "dc" in params:
                level = num("dc")
                phase = np.angle(fe.dc) if fe.dc else 0.7 + 1.9 * i
                fe = dataclasses.replace(fe, dc=0j if level == 0 else complex(10 ** (level / 20) * np.exp(1j * phase)))
            if "iq" in params:
                fe = dataclasses.replace(fe, **_imbalance_for(num("iq"), i))
            rx[i] = fe
        if "iq" in params:
            tx = dataclasses.replace(tx, **_imbalance_for(num("iq"), 5))
        changes["rx"], changes["tx"] = tuple(rx), tx
    if "lo_leak" in params:
        changes["lo_leak"] = num("lo_leak") != 0
    if "nf" in params:
        nf = num("nf")
        changes["thermal"] = nf != 0
        changes["nf_db"] = nf if nf != 0 else None
    if "adc" in params:
        changes["adc"] = flag("adc")
    if "serial" in params:
        changes["serial"] = str(params["serial"])
    for key, value in changes.items():
        setattr(unit, key, value)
    return unit


def _imbalance_for(image_rejection_db: float, salt: int) -> dict:
    """Gain and phase errors whose image rejection is ``image_rejection_db`` (0: none), split evenly."""
    if image_rejection_db == 0:
        return {"iq_gain": 0.0, "iq_phase_deg": 0.0}
    # |k2/k1| ≈ sqrt(ε² + θ²)/2 for small errors; half the power to each
    r = 2 * 10 ** (-image_rejection_db / 20)
    sign = -1.0 if salt % 2 else 1.0
    return {"iq_gain": sign * r / np.sqrt(2), "iq_phase_deg": float(np.rad2deg(r / np.sqrt(2)))}


class Resampler:
    """A streaming fractional resampler: output sample i is the input at position ``pos + i·ratio``.

    Kaiser-windowed sinc (β 8.6), 32 taps, 512 phases with linear interpolation between neighbouring
    phases. On the link's RRC signal (sps 4, roll-off 0.25) its error is about −77 dB at half-sample
    offsets and −85 dB elsewhere, far below what 4096-QAM feels (≈ −45 dB). With ``ratio == 1`` at an
    integer position it passes the input through unchanged.
    """

    TAPS, PHASES, BETA = 32, 512, 8.6
    _table = None

    def __init__(self, take):
        self.take = take                                  # take(n) -> the next n input samples
        self.buf = np.zeros(self.TAPS // 2 - 1, np.complex128)   # history: silence before the start
        self.pos = float(self.TAPS // 2 - 1)              # position of the next output in buf

    @classmethod
    def table(cls) -> np.ndarray:
        if cls._table is None:
            half = cls.TAPS // 2
            d = (np.arange(cls.TAPS) - (half - 1))[None, :] - (np.arange(cls.PHASES + 1) / cls.PHASES)[:, None]
            arg = np.clip(1 - (d / half) ** 2, 0, None)
            h = np.sinc(d) * np.i0(cls.BETA * np.sqrt(arg)) / np.i0(cls.BETA)
            cls._table = h / h.sum(axis=1, keepdims=True)
        return cls._table

    def _fill(self, upto: int) -> None:
        if upto > self.buf.size:
            self.buf = np.concatenate([self.buf, self.take(upto - self.buf.size)])

    def produce(self, n: int, ratio: float) -> np.ndarray:
        half = self.TAPS // 2
        if ratio == 1.0 and self.pos == int(self.pos):
            i = int(self.pos)
            self._fill(i + n)     # no look-ahead: samples queued later follow without a gap
            out = self.buf[i:i + n].copy()
        else:
            last = self.pos + ratio * (n - 1)
            self._fill(int(np.floor(last)) + half + 1)
            out = _interpolate(self.buf, float(self.pos), float(ratio), int(n), self.table())
        self.pos += ratio * n
        keep = int(np.floor(self.pos)) - (half - 1)        # the oldest sample still needed
        if keep > 0:
            self.buf = self.buf[keep:]
            self.pos -= keep
        return out


@njit(cache=True)
def _interpolate(buf, pos, ratio, n, table):
    """out[i] = Σ_t buf[⌊p⌋ − 15 + t]·h_t(p − ⌊p⌋), p = pos + i·ratio (phases interpolated linearly)."""
    taps = table.shape[1]
    phases = table.shape[0] - 1
    half = taps // 2
    out = np.empty(n, np.complex128)
    for i in range(n):
        p = pos + ratio * i
        b = int(np.floor(p))
        q = (p - b) * phases
        qi = min(int(q), phases - 1)
        a = q - qi
        acc = 0j
        for t in range(taps):
            w = table[qi, t] * (1.0 - a) + table[qi + 1, t] * a
            acc += buf[b - (half - 1) + t] * w
        out[i] = acc
    return out


def resample(x: np.ndarray, ratio: float, start: float = 0.0) -> np.ndarray:
    """``x`` at positions ``start + i·ratio`` (i = 0 … while inside ``x``), by :class:`Resampler`."""
    x = np.asarray(x, np.complex128)
    n = int(np.floor((x.size - 1 - start) / ratio)) + 1 - Resampler.TAPS // 2
    fed = [False]

    def take(k):
        if fed[0]:
            return np.zeros(k, np.complex128)
        fed[0] = True
        return np.concatenate([x, np.zeros(max(0, k - x.size), np.complex128)])[:max(k, x.size)]

    r = Resampler(take)
    r.pos += start
    return r.produce(max(n, 0), ratio)
