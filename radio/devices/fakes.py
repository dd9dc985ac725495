"""In-process stand-ins for pyadi-iio's ``adi`` module and the ``SoapySDR`` module.

They let the real adapters (``radio.devices.pluto``, ``radio.devices.soapy``) run in CI with no
radio attached: each fake loops what it transmits into what it receives through a
:class:`FakeAir` that applies configurable impairments and injects stream events.

The fakes copy the behaviour the adapters rely on, as documented by the libraries:

* :class:`FakePluto` follows pyadi-iio's ``adi.Pluto`` (ad936x.py, rx_tx.py, compat.py of
  pyadi-iio 0.0.21): ``sample_rate`` below 521 kHz raises ``ValueError``; ``rx_hardwaregain_chan0``
  is written only while ``gain_control_mode_chan0 == 'manual'`` (otherwise the write is ignored
  and the read-back is the AGC's gain); ``tx_hardwaregain_chan0`` is an attenuation (≤ 0 dB);
  ``tx_cyclic_buffer`` cannot change once a TX buffer exists (``tx_destroy_buffer()`` first); a
  second ``tx()`` on a cyclic buffer raises; non-cyclic ``tx()`` fixes the buffer length on the
  first call and refuses other lengths afterwards; ``tx()`` converts I and Q with
  ``astype(int16)`` (so values beyond ±32767 wrap, as in pyadi-iio); ``rx()`` returns
  ``complex128`` raw counts from the AD9363's 12-bit ADC, whose scan format ``le:S12/16>>0`` is
  sign-extended into int16 (±2048). The DAC takes ``le:S16/16`` samples with the 12 converter
  bits at the top, so a ``tx()`` amplitude of 2^14 is half of DAC full scale. Overflow and
  underflow are visible, as on the hardware, in bit 2 (ADC) and bit 0 (DAC) of the AXI DMAC status
  register 0x80000088 of ``_rxadc`` / ``_txdac`` (write-one-to-clear; libiio's
  ``iio_adi_xflow_check`` reads the same bits). Failures of libiio attribute writes are
  ``OSError`` (EINVAL), a refill timeout is ``OSError(ETIMEDOUT)``, a busy device ``OSError(EBUSY)``
  at buffer creation, and an absent device ``Exception('No device found')`` at construction.
  :class:`FakeAd9361` is pyadi-iio's ``adi.ad9361`` (two complex channels; ``rx_enabled_channels
  = [0, 1]`` makes ``rx()`` return a list of two arrays; ``*_chan1`` attributes); on hardware with
  one RX channel its first ``rx()`` raises ``Exception('Channel voltage2 not found')``.
* :class:`FakeSoapyDevice` follows SoapySDR's Python API (SoapySDR.i / Device.hpp):
  ``setupStream(direction, format, channels, kwargs)``, ``activateStream``, ``readStream(stream,
  [buff], numElems, flags, timeoutUs)`` returning a result with ``.ret`` (samples, or an error
  code), ``.flags`` and ``.timeNs``; ``writeStream``; ``readStreamStatus`` (where UHD reports TX
  underflows); error codes ``SOAPY_SDR_TIMEOUT`` −1, ``SOAPY_SDR_STREAM_ERROR`` −2,
  ``SOAPY_SDR_OVERFLOW`` −4, ``SOAPY_SDR_UNDERFLOW`` −7; ``SoapySDR.Device(args)`` raising
  ``RuntimeError('SoapySDR::Device::make() no match')`` when no device matches. A stream set up
  on channels ``[0, 1]`` takes one buffer per channel in ``readStream(stream, [b0, b1], n)``.

Both fakes offer two RX channels by default (``rx_channels`` option), each hearing the transmission
through its own conditions (``rxN_<key>`` options, see :class:`AirConditions`), and record every
LO/frequency they are set to (``FakePluto.lo_history``, ``FakeSoapyDevice.freq_history``).

Air units: 1.0 is converter full scale (DAC output, ADC input). Loop gain from TX samples to RX
samples is ``tx gain · path gain · rx gain`` (dB add); the Pluto DAC sits 6 dB below full scale
at the nominal 2^14 level, and its TX gain is pyadi-iio's (an attenuation, full output at 0 dB). The
SoapySDR fake's TX gain is UHD's B210 scale: 0 … 89.75 dB, full output at the top, so its TX gain adds
``gain − 89.75`` dB (89.75: unity; the device default, 10 dB below the top, −10 dB as on a Pluto).

**Hardware model (bench conditions).** Each fake device is one unit of a hardware model
(:mod:`radio.devices.hardware`: ``fake-pluto`` an ADALM-Pluto/AD9363, ``fake-soapy`` a USRP B210/AD9361;
the module lists every figure and its source). With the model on, a unit draws from the URI's ``seed``
a reference-oscillator error (±25 ppm Pluto, ±2 ppm B210) that moves its LO *and* sample clock — the
air between two units resamples (receive sample k sees the transmitter's sample (1+e_TX)/(1+e_RX)·k,
:class:`Resampler`) and rotates by f_c·(e_TX − e_RX) — a temperature and the oscillator's drift with it,
RX DC offset and IQ imbalance per channel, TX IQ imbalance and carrier leakage, a noise figure with
back-end noise (a gain-dependent noise floor), and 12-bit conversion; the Pluto fake honours
``xo_correction`` and reports ``in_temp0_input`` on ``ad9361-phy`` (``_ctrl``), the SoapySDR fake a
``temp`` sensor and a ``mboard_serial``; the B210 fake's TX gain takes UHD's scale (full output at
89.75 dB).

The model is **on by default** for every fake opened by URI (:func:`bench_default`), so every fake run
meets bench conditions: the synchroniser acquires the ±0.5 cycles per symbol of two uncalibrated Plutos at
2.4 GHz and removes DC, IQ imbalance and the transmitter's carrier leakage (:mod:`radio.sync`). The URI key
``bench=0`` (or ``ideal=1``) turns it off for one device, ``JSCEC_FAKE_BENCH=0`` for every fake; ``xo_ppm=0``,
``dc=0``, ``iq=0``, ``lo_leak=0``, ``nf=0`` turn single impairments off (or set them) (keys:
:func:`radio.devices.hardware.unit_from_params`). Without the model a fake behaves as it did before there was
one: exact oscillators, no front-end impairments, the Pluto's 12-bit ADC only, exact samples for tests; a
serial number is still drawn from ``seed``. A :class:`FakeAir` built in code (``AirConditions()``, not from a
URI) is ideal unless its ``hardware`` keys say ``bench=1``.

Units drawn from the same ``seed`` are the same: two fakes of one kind both left at ``seed=0`` have the same
oscillator (no carrier offset between them); give them different seeds (``fake-pluto:seed=1``,
``fake-pluto:seed=2``) for two boards that disagree as real ones do.
"""
from __future__ import annotations

import errno
import os
import re
import threading
from collections import deque
from dataclasses import dataclass, field, fields
from types import SimpleNamespace

import numpy as np

from jscec.errors import UserError
from radio.devices.hardware import HARDWARE_KEYS, HardwareUnit, Resampler, unit_from_params

STATUS_REG = 0x80000088
ADC_OVERFLOW_BIT = 0x4
DAC_UNDERFLOW_BIT = 0x1


def _indices(value) -> frozenset:
    if isinstance(value, str):
        return frozenset(int(v) for v in value.replace(";", " ").replace("+", " ").split() if v)
    return frozenset(int(v) for v in value)


#: Conditions of the path to one RX channel; ``rxN_<key>`` in a URI sets one for channel N only.
PATH_KEYS = ("path_gain_db", "cfo_hz", "delay", "noise_std", "seed")
_PER_CHANNEL = re.compile(r"^rx(\d+)_(" + "|".join(PATH_KEYS) + r")$")


@dataclass
class AirConditions:
    """What the fake channel does, and which stream events it injects where.

    Event positions are 0-based counts of hardware reads (RX) or buffer pushes (TX):
    ``overflow_at`` loses ``lost_samples`` before that RX read and reports it (Pluto: ADC status
    bit; SoapySDR: ``SOAPY_SDR_OVERFLOW`` then a timestamp jump); ``drop_at`` loses them silently
    (only timestamps reveal it); ``timeout_at`` makes that RX read time out; ``underflow_at``
    makes that TX push underflow. In URIs, index lists are written with ``+``:
    ``fake-soapy:cfo_hz=200,overflow_at=2+5``.

    ``rx_channels`` is how many RX channels the fake device offers (2 by default, like an
    AD9361 Pluto in 2R2T mode or a USRP B210; 1 to model a single-channel radio). Every RX channel
    hears the same transmission through its own path: ``path_gain_db``, ``cfo_hz``, ``delay``,
    ``noise_std`` and ``seed`` apply to every channel unless ``per_channel[N]`` overrides them
    (URI: ``rxN_<key>``, e.g. ``fake-pluto:rx1_noise_std=2e-3`` gives channel 1 a noisier path).
    Stream events hit all channels of a stream at once.
    """

    path_gain_db: float = 0.0
    cfo_hz: float = 0.0
    delay: int = 0
    noise_std: float = 0.0
    seed: int = 0
    lost_samples: int = 100
    overflow_at: frozenset = field(default_factory=frozenset)
    drop_at: frozenset = field(default_factory=frozenset)
    timeout_at: frozenset = field(default_factory=frozenset)
    underflow_at: frozenset = field(default_factory=frozenset)
    absent: bool = False
    busy: bool = False
    rx_channels: int = 2
    per_channel: dict = field(default_factory=dict)
    hardware: dict = field(default_factory=dict)   # hardware-model URI keys (radio.devices.hardware)
    uri: str = "fake"                               # the URI, for messages
    bench_by_default: bool = False                  # hardware model on unless ``bench=0`` (URIs: bench_default())

    def __post_init__(self):
        for name in ("overflow_at", "drop_at", "timeout_at", "underflow_at"):
            setattr(self, name, _indices(getattr(self, name)))

    def path(self, channel: int) -> SimpleNamespace:
        """The path impairments of RX ``channel`` (the common ones, overridden per channel).

        Channel 0's noise generator is seeded with ``seed``; channel N's with ``[seed, N]`` unless
        ``rxN_seed`` is given, so the channels' noise is independent.
        """
        values = {k: getattr(self, k) for k in PATH_KEYS}
        if channel:
            values["seed"] = [int(self.seed), int(channel)]
        values.update(self.per_channel.get(channel, {}))
        return SimpleNamespace(**values)

    @classmethod
    def from_params(cls, params: dict, uri: str = "fake") -> "AirConditions":
        """Build from URI ``key=value`` strings; unknown keys or bad values raise UserError."""
        known = {f.name: f for f in fields(cls) if f.name not in ("per_channel", "hardware", "uri", "bench_by_default")}
        kwargs, per_channel, hardware = {}, {}, {}
        for key, text in params.items():
            if key in HARDWARE_KEYS:
                hardware[key] = text
                continue
            m = _PER_CHANNEL.match(key)
            name = m.group(2) if m else key
            if name not in known:
                raise UserError(f"bad device URI '{uri}': unknown option '{key}' "
                                f"(known: {', '.join(sorted(known) + list(HARDWARE_KEYS))}, "
                                f"rxN_<{'|'.join(PATH_KEYS)}>)")
            try:
                if name.endswith("_at"):
                    value = _indices(text)
                elif name in ("absent", "busy"):
                    value = text.lower() in ("1", "true", "yes")
                elif name in ("delay", "seed", "lost_samples", "rx_channels"):
                    value = int(text)
                else:
                    value = float(text)
            except ValueError:
                raise UserError(f"bad device URI '{uri}': '{key}={text}' is not a valid value") from None
            if m:
                per_channel.setdefault(int(m.group(1)), {})[name] = value
            else:
                kwargs[name] = value
        imp = cls(**kwargs, per_channel=per_channel, hardware=hardware, uri=uri, bench_by_default=bench_default())
        if imp.rx_channels < 1:
            raise UserError(f"bad device URI '{uri}': rx_channels must be at least 1")
        for ch in per_channel:
            if ch >= imp.rx_channels:
                raise UserError(f"bad device URI '{uri}': rx{ch}_ options for a device with "
                                f"{imp.rx_channels} RX channel(s)")
        return imp


def bench_default() -> bool:
    """Whether fakes opened by URI draw bench impairments (hardware model) unless the URI says ``bench=0``:
    yes, unless ``JSCEC_FAKE_BENCH=0`` is in the environment."""
    return os.environ.get("JSCEC_FAKE_BENCH", "1").strip().lower() not in ("0", "false", "no", "off")


class _Path:
    """The propagation to one RX channel: delay line, gain, CFO and noise."""

    def __init__(self, imp: SimpleNamespace):
        self.imp = imp
        self.gain = 10 ** (imp.path_gain_db / 20)
        self.tail = np.zeros(int(imp.delay), np.complex128)   # the delay line's content
        self.rng = np.random.default_rng(imp.seed)
        self.front_rng = np.random.default_rng([*np.atleast_1d(imp.seed).tolist(), 0x7E])  # RX hardware noise

    def delay_line(self, x: np.ndarray) -> np.ndarray:
        n = x.size
        if self.tail.size:
            y = np.concatenate([self.tail, x])
            x, self.tail = y[:n], y[n:]
        return x

    def apply(self, x: np.ndarray, clock: int, sample_rate: float) -> np.ndarray:
        n = x.size
        x = self.delay_line(x) * self.gain
        if self.imp.cfo_hz:
            k = clock + np.arange(n)
            x = x * np.exp(2j * np.pi * self.imp.cfo_hz * k / sample_rate)
        if self.imp.noise_std:
            x = x + self.imp.noise_std / np.sqrt(2) * (
                self.rng.standard_normal(n) + 1j * self.rng.standard_normal(n))
        return x


class FakeAir:
    """The loop from a transmitter to one fake device's receiver channels (shareable between two fakes).

    ``transmit(samples, source)`` queues samples in air units, sent by the :class:`HardwareUnit`
    ``source`` (None: this air's own device); ``receive(n, rate, channels, freq_hz)`` returns the next
    ``n`` samples of RX channel 0 (a list, one array per channel, for ``channels=[0, 1]``): what was
    queued (or the cyclic buffer, repeated), then silence, as the receiving device's clock samples it.

    **Two oscillators.** With the transmitter's effective reference error e_TX and this device's e_RX
    (:meth:`HardwareUnit.xo_error`, ``xo_correction`` and temperature included), receive sample k sees
    the transmitter's sample (1 + e_TX)/(1 + e_RX)·k — a streaming :class:`Resampler` does this — rotated
    by the carrier offset f_c·(e_TX − e_RX) (phase continuous on the receive clock; f_c = the RX LO).
    With equal errors (one device looped to itself, or ideal units) samples pass unchanged.

    Then each channel's path: a delay line of ``delay`` samples, path gain, ``cfo_hz`` (a further
    offset, e.g. Doppler) and complex Gaussian noise CN(0, noise_std²) at the antenna. The receiving
    device applies its front end (:meth:`HardwareUnit.receive`: gain-dependent noise, DC, IQ
    imbalance) and its ADC. ``skip(n)`` loses ``n`` samples as an overflow does.
    """

    def __init__(self, impairments: AirConditions | None = None, unit: HardwareUnit | None = None):
        self.imp = impairments or AirConditions()
        self.unit = unit                       # this device's hardware (set by the first fake opened on it)
        self._queue: deque[np.ndarray] = deque()
        self._cyclic: np.ndarray | None = None
        self._cyclic_pos = 0
        self._paths = [_Path(self.imp.path(c)) for c in range(int(self.imp.rx_channels))]
        self._clock = 0  # receive sample clock
        self._lock = threading.Lock()
        self._source: HardwareUnit | None = None
        self._resampler = Resampler(self._take)
        self._xo_phase = 0.0                    # cycles of the oscillators' carrier offset so far

    def attach(self, kind: str) -> HardwareUnit:
        """The hardware unit of the device this air belongs to, made from the URI's keys on first use."""
        if self.unit is None:
            self.unit = unit_from_params(kind, self.imp.hardware, self.imp.seed, self.imp.bench_by_default,
                                         self.imp.uri)
        return self.unit

    @property
    def clock(self) -> int:
        return self._clock

    @property
    def rx_channels(self) -> int:
        return len(self._paths)

    def transmit(self, samples: np.ndarray, source: HardwareUnit | None = None) -> None:
        with self._lock:
            self._queue.append(np.asarray(samples, np.complex128).copy())
            self._source = source

    def set_cyclic(self, samples: np.ndarray | None, source: HardwareUnit | None = None) -> None:
        with self._lock:
            self._cyclic = None if samples is None else np.asarray(samples, np.complex128).copy()
            self._cyclic_pos = 0
            self._source = source

    def _take(self, n: int) -> np.ndarray:
        out = np.zeros(n, np.complex128)
        i = 0
        while i < n and self._queue:
            head = self._queue[0]
            k = min(n - i, head.size)
            out[i:i + k] = head[:k]
            if k == head.size:
                self._queue.popleft()
            else:
                self._queue[0] = head[k:]
            i += k
        if i < n and self._cyclic is not None and self._cyclic.size:
            idx = (self._cyclic_pos + np.arange(n - i)) % self._cyclic.size
            out[i:] = self._cyclic[idx]
            self._cyclic_pos = int((self._cyclic_pos + n - i) % self._cyclic.size)
        return out

    def _clocks(self, freq_hz: float | None, sample_rate: float) -> tuple[float, float]:
        """(resampling ratio, carrier offset in cycles per receive sample) between source and receiver."""
        rx, tx = self.unit, self._source
        if rx is None or tx is None or tx is rx:
            return 1.0, 0.0
        e_rx, e_tx = rx.xo_error(), tx.xo_error()
        if e_rx == e_tx:
            return 1.0, 0.0
        ratio = (1 + e_tx) / (1 + e_rx)
        cfo = 0.0 if not freq_hz else freq_hz * (e_tx - e_rx) / (sample_rate * (1 + e_rx))
        return ratio, cfo

    def _advance(self, n: int, freq_hz: float | None, sample_rate: float) -> np.ndarray:
        ratio, cfo = self._clocks(freq_hz, sample_rate)
        x = self._resampler.produce(n, ratio)
        if cfo:
            x = x * np.exp(2j * np.pi * (self._xo_phase + cfo * np.arange(n)))
            self._xo_phase = float((self._xo_phase + cfo * n) % 1.0)
        if self.unit is not None:
            self.unit.advance(n, sample_rate, "rx")
        return x

    def receive(self, n: int, sample_rate: float, channels=None, freq_hz: float | None = None):
        """The next ``n`` samples (air units, at the antenna) of channel 0, or a list for ``channels``."""
        chans = [0] if channels is None else list(channels)
        with self._lock:
            x = self._advance(n, freq_hz, sample_rate)
            out = [self._paths[c].apply(x, self._clock, sample_rate) for c in chans]
            self._clock += n
        return out[0] if channels is None else out

    def front_end(self, x: np.ndarray, channel: int, rx_gain_db: float, sample_rate: float,
                  freq_hz: float) -> np.ndarray:
        """Antenna samples of ``channel`` → ADC input (full-scale units) through this device's front end."""
        if self.unit is None:
            return x * 10 ** (rx_gain_db / 20)
        return self.unit.receive(x, channel, rx_gain_db, sample_rate, freq_hz, self._paths[channel].front_rng)

    def skip(self, n: int, sample_rate: float = 1e6, freq_hz: float | None = None) -> None:
        with self._lock:
            x = self._advance(n, freq_hz, sample_rate)
            for path in self._paths:   # the lost samples pass every channel's delay line
                path.delay_line(x)
            self._clock += n


class BroadcastAir(FakeAir):
    """A FakeAir whose transmissions also reach the other fakes' airs (one shared ether): several fake
    devices, each with its own hardware unit and paths, hearing whichever of them transmits."""

    def __init__(self, impairments: AirConditions | None = None, unit: HardwareUnit | None = None):
        super().__init__(impairments, unit)
        self.ether: list[FakeAir] = [self]

    def transmit(self, samples, source=None):
        for air in self.ether:
            FakeAir.transmit(air, samples, source)

    def set_cyclic(self, samples, source=None):
        for air in self.ether:
            FakeAir.set_cyclic(air, samples, source)


def join_ether(airs: list) -> None:
    """Let every air of ``airs`` (BroadcastAir) hear what any of them transmits."""
    for air in airs:
        air.ether = [air] + [a for a in airs if a is not air]


#: What the fakes' air does unless a URI says otherwise, when several fakes share one ether (``jscec ota``,
#: ``jscec calibrate``): −30 dB path loss and, without the bench model, a little noise at the antenna
#: (with the default gains and --tx-level, about 35 dB SNR at the ADC of a fake Pluto). With the bench model
#: the noise comes from the receiver's front end (noise figure, gain-dependent back-end noise) instead.
SHARED_AIR_DEFAULTS = {"path_gain_db": "-30", "noise_std": "2e-5"}


def shared_air_params(params: dict) -> dict:
    """A shared-ether fake's URI options with the defaults filled in (see :data:`SHARED_AIR_DEFAULTS`)."""
    out = dict(SHARED_AIR_DEFAULTS)
    bench = bench_default()
    if "bench" in params:
        bench = str(params["bench"]).lower() in ("1", "true", "yes", "on")
    if "ideal" in params and str(params["ideal"]).lower() in ("1", "true", "yes", "on"):
        bench = False
    if bench:
        out.pop("noise_std")
    out.update(params)
    return out


# ---------------------------------------------------------------------------------------------
# pyadi-iio
# ---------------------------------------------------------------------------------------------

class FakeIioDevice:
    """The part of an ``iio.Device`` the Pluto adapter touches: the DMA status register and the
    scan channels (``find_channel`` returns None for a channel the hardware lacks, as libiio does)."""

    def __init__(self, name: str, channels=(), attrs: dict | None = None):
        self.name = name
        self.status = 0
        self.channels = [SimpleNamespace(id=c, name=None, scan_element=True, attrs={}) for c in channels]
        self.attrs = dict(attrs or {})

    def add_channel(self, cid: str, attrs: dict, output: bool = False) -> None:
        self.channels.append(SimpleNamespace(id=cid, name=None, scan_element=False, attrs=dict(attrs),
                                             output=output))

    def find_channel(self, name_or_id: str, is_output: bool = False):
        return next((c for c in self.channels
                     if c.id == name_or_id and getattr(c, "output", False) == bool(is_output)), None)

    def reg_read(self, reg: int) -> int:
        return self.status if reg == STATUS_REG else 0

    def reg_write(self, reg: int, value: int) -> None:
        if reg == STATUS_REG:
            self.status &= ~int(value)  # write one to clear


def _einval(what):
    return OSError(errno.EINVAL, f"Invalid argument ({what})")


class FakeAttr:
    """A libiio attribute (``iio.DeviceAttr``/``ChannelAttr``): ``.value`` reads and writes text."""

    def __init__(self, read, write=None):
        self._read, self._write = read, write

    @property
    def value(self) -> str:
        return str(self._read())

    @value.setter
    def value(self, text) -> None:
        if self._write is None:
            raise OSError(errno.EACCES, "Permission denied")
        self._write(text)


class FakePluto:
    """A PlutoSDR with pyadi-iio's ``adi.Pluto`` semantics (the ``ad9364`` class: one complex RX and
    TX channel, ``voltage0``/``voltage1`` = I/Q), on fake hardware whose ADC core offers
    ``air.rx_channels`` complex channels (2 = a Rev C/D Pluto in 2R2T mode; see :class:`FakeAd9361`).

    Every LO write is kept in ``lo_history`` as ``(attribute, value)``, so tests can see retunes.
    """

    _rx_channel_names = ["voltage0", "voltage1"]
    _tx_channel_names = ["voltage0", "voltage1"]
    RX_FULL_SCALE = 2048      # le:S12/16>>0
    AGC_GAIN_DB = 40          # what the read-back shows while an AGC mode is active

    def __init__(self, uri: str = "", *, air: FakeAir | None = None):
        self.air = air or FakeAir()
        imp = self.air.imp
        if imp.absent:
            raise Exception("No device found")
        self.uri = uri or "ip:192.168.2.1"
        self.unit = self.air.attach("pluto")
        self.ctx = SimpleNamespace(attrs={
            "hw_model": "Analog Devices PlutoSDR Rev.C (Z7010-AD9363A) [fake]",
            "hw_serial": self.unit.serial,
            "fw_version": "v0.38-fake", "ad9361-phy,model": "ad9363a"})
        hw = [f"voltage{i}" for i in range(2 * self.air.rx_channels)]
        self._rxadc = FakeIioDevice("cf-ad9361-lpc", hw)
        self._txdac = FakeIioDevice("cf-ad9361-dds-core-lpc", hw)
        unit = self.unit
        span = f"[{int(unit.model.xo_hz) - 8000} 1 {int(unit.model.xo_hz) + 8000}]"
        self._ctrl = FakeIioDevice("ad9361-phy", attrs={
            "xo_correction": FakeAttr(lambda: int(unit.xo_correction_hz), self._set_xo_correction),
            "xo_correction_available": FakeAttr(lambda: span)})
        for out, direction in ((False, "rx"), (True, "tx")):   # in/out_voltage0_hardwaregain_available
            self._ctrl.add_channel("voltage0", {"hardwaregain_available": FakeAttr(
                lambda d=direction: self._gain_available(d))}, output=out)
        if unit.temperature() is not None:   # in_temp0_input, milli-degrees Celsius
            self._ctrl.add_channel("temp0", {"input": FakeAttr(lambda: int(round(unit.temperature() * 1000)))})
        self._sample_rate = 30720000
        self._rx_lo = 2400000000
        self._tx_lo = 2450000000
        self._rx_bw = 18000000
        self._tx_bw = 18000000
        self._gain_mode = {0: "slow_attack", 1: "slow_attack"}
        self._rx_gain = {0: 71.0, 1: 71.0}
        self._tx_gain = {0: -10.0, 1: -10.0}
        self.lo_history: list[tuple[str, int]] = []
        self.rx_buffer_size = 1024
        n_class = len(self._rx_channel_names) // 2   # pyadi-iio enables every channel of the class
        self._rx_enabled = list(range(n_class))
        self._tx_enabled = list(range(n_class))
        self._tx_cyclic_buffer = False
        self._txbuf = None
        self._rxbuf = None
        self._tx_buffer_size = None
        self.rx_reads = 0
        self.tx_pushes = 0

    def _gain_available(self, direction: str) -> str:
        r = self.unit.model.gain_range(direction, self._rx_lo if direction == "rx" else self._tx_lo)
        return f"[{r.minimum:g} {r.step:g} {r.maximum:g}]"

    def _set_xo_correction(self, text) -> None:
        try:
            self.unit.set_xo_correction(float(text))
        except ValueError:
            raise _einval("xo_correction") from None

    # -- attributes as pyadi-iio exposes them --------------------------------------------------
    @property
    def sample_rate(self):
        return self._sample_rate

    @sample_rate.setter
    def sample_rate(self, rate):
        if rate < 521e3:
            raise ValueError("Error: Does not currently support sample rates below 521e3")
        if rate > 61.44e6:
            raise _einval("sampling_frequency")
        self._sample_rate = int(rate)

    def _lo(self, value, what):
        if not 70e6 <= value <= 6e9:
            raise _einval(what)
        return int(value)

    def _set_lo(self, name, value, what):
        setattr(self, f"_{name}", self._lo(value, what))
        self.lo_history.append((name, getattr(self, f"_{name}")))

    rx_lo = property(lambda self: self._rx_lo, lambda self, v: self._set_lo("rx_lo", v, "RX_LO frequency"))
    tx_lo = property(lambda self: self._tx_lo, lambda self, v: self._set_lo("tx_lo", v, "TX_LO frequency"))

    def _bw(self, value):
        if not 200e3 <= value <= 56e6:
            raise _einval("rf_bandwidth")
        return int(value)

    rx_rf_bandwidth = property(lambda self: self._rx_bw, lambda self, v: setattr(self, "_rx_bw", self._bw(v)))
    tx_rf_bandwidth = property(lambda self: self._tx_bw, lambda self, v: setattr(self, "_tx_bw", self._bw(v)))

    # per-channel gain attributes (chan0 here, chan1 on FakeAd9361), as pyadi-iio's ad936x.py
    def _get_mode(self, ch):
        return self._gain_mode[ch]

    def _set_mode(self, ch, mode):
        if mode not in ("manual", "slow_attack", "fast_attack", "hybrid"):
            raise _einval("gain_control_mode")
        self._gain_mode[ch] = mode

    def _get_rx_gain(self, ch):
        return self._rx_gain[ch] if self._gain_mode[ch] == "manual" else float(self.AGC_GAIN_DB)

    def _set_rx_gain(self, ch, value):
        if self._gain_mode[ch] != "manual":
            return  # pyadi-iio writes the gain only in manual mode
        r = self.unit.model.gain_range("rx", self._rx_lo)
        if not r.minimum <= value <= r.maximum:
            raise _einval("hardwaregain")
        self._rx_gain[ch] = r.quantise(value)

    def _get_tx_gain(self, ch):
        return self._tx_gain[ch]

    def _set_tx_gain(self, ch, value):
        r = self.unit.model.gain_range("tx", self._tx_lo)
        if not r.minimum <= value <= r.maximum:   # pyadi-iio's tx_hardwaregain: −attenuation, −89.75…0
            raise _einval("hardwaregain")
        self._tx_gain[ch] = r.quantise(value)  # 0.25 dB steps

    gain_control_mode_chan0 = property(lambda self: self._get_mode(0), lambda self, v: self._set_mode(0, v))
    rx_hardwaregain_chan0 = property(lambda self: self._get_rx_gain(0), lambda self, v: self._set_rx_gain(0, v))
    tx_hardwaregain_chan0 = property(lambda self: self._get_tx_gain(0), lambda self, v: self._set_tx_gain(0, v))

    @property
    def tx_cyclic_buffer(self):
        return self._tx_cyclic_buffer

    @tx_cyclic_buffer.setter
    def tx_cyclic_buffer(self, value):
        if self._txbuf:
            raise Exception("TX buffer already created, buffer must be "
                            "destroyed then recreated to modify tx_cyclic_buffer")
        self._tx_cyclic_buffer = bool(value)

    def _enabled_setter(self, value):
        """pyadi-iio's rx/tx_enabled_channels check: against the class's channel names only."""
        value = list(value)
        if not value:
            raise Exception("rx_enabled_channels cannot be empty")
        if max(value) > len(self._rx_channel_names) / 2 - 1:
            raise Exception("RX mapping exceeds available channels")
        return value

    rx_enabled_channels = property(lambda self: self._rx_enabled,
                                   lambda self, v: setattr(self, "_rx_enabled", self._enabled_setter(v)))
    tx_enabled_channels = property(lambda self: self._tx_enabled,
                                   lambda self, v: setattr(self, "_tx_enabled", self._enabled_setter(v)))

    def _init_rx_buffer(self):
        """As pyadi-iio's ``compat_libiio_v0_rx._rx_init_channels``: every channel of the class must exist."""
        for m in self._rx_channel_names:
            if self._rxadc.find_channel(m) is None:
                raise Exception(f"Channel {m} not found")
        if self.air.imp.busy:
            raise OSError(errno.EBUSY, "Device or resource busy")
        self._rxbuf = True

    # -- streaming -------------------------------------------------------------------------------
    def tx(self, data_np=None):
        if self.tx_enabled_channels != [0]:
            raise NotImplementedError("the fake transmits on channel 0 only")
        if self._txbuf and self._tx_cyclic_buffer:
            raise Exception("TX buffer has been submitted in cyclic mode. "
                            "To push more data the tx buffer must be destroyed first.")
        data = np.asarray(data_np)
        i = np.real(data).astype(np.int16)
        q = np.imag(data).astype(np.int16)
        if not self._txbuf:
            if self.air.imp.busy:
                raise OSError(errno.EBUSY, "Device or resource busy")
            self._tx_buffer_size = len(i)
            self._txbuf = True
        if len(i) != self._tx_buffer_size:
            raise Exception("Buffer length different than data length. "
                            "Cannot change buffer length on the fly")
        # 12-bit DAC, MSB aligned: drop the low 4 bits; full scale 2^15 -> 1.0 in air units
        dac = ((i >> 4).astype(np.float64) + 1j * (q >> 4).astype(np.float64)) / 2048.0
        dac = self.unit.transmit(dac, attenuation_db=-self._tx_gain[0])   # TX imbalance, carrier leakage
        dac *= 10 ** (self._tx_gain[0] / 20)
        if self.tx_pushes in self.air.imp.underflow_at:
            self._txdac.status |= DAC_UNDERFLOW_BIT
        self.tx_pushes += 1
        self.unit.advance(dac.size, self._sample_rate, "tx")
        if self._tx_cyclic_buffer:
            self.air.set_cyclic(dac, source=self.unit)
        else:
            self.air.transmit(dac, source=self.unit)

    def tx_destroy_buffer(self):
        self._txbuf = None
        self.air.set_cyclic(None, source=self.unit)

    def rx(self):
        if not self._rxbuf:
            self._init_rx_buffer()
        k = self.rx_reads
        self.rx_reads += 1
        imp = self.air.imp
        if k in imp.timeout_at:
            raise OSError(errno.ETIMEDOUT, "Connection timed out")
        if k in imp.overflow_at:
            self.air.skip(imp.lost_samples, self._sample_rate, self._rx_lo)
            self._rxadc.status |= ADC_OVERFLOW_BIT
        if k in imp.drop_at:
            self.air.skip(imp.lost_samples, self._sample_rate, self._rx_lo)
        chans = list(self.rx_enabled_channels)
        xs = self.air.receive(int(self.rx_buffer_size), self._sample_rate, channels=chans, freq_hz=self._rx_lo)
        out = []
        for ch, x in zip(chans, xs):
            adc = self.air.front_end(x, ch, self._get_rx_gain(ch), self._sample_rate, self._rx_lo)
            raw = adc * self.RX_FULL_SCALE
            i = np.clip(np.round(raw.real), -2048, 2047).astype(np.int16)
            q = np.clip(np.round(raw.imag), -2048, 2047).astype(np.int16)
            out.append(i + 1j * q)  # complex128, as pyadi-iio's rx() builds it
        return out[0] if len(out) == 1 else out   # a list only when several channels are enabled

    def rx_destroy_buffer(self):
        self._rxbuf = None


class FakeAd9361(FakePluto):
    """pyadi-iio's ``adi.ad9361`` class (two complex channels, ``voltage0``…``voltage3``) — what a
    Pluto in 2R2T mode is opened with. On single-channel hardware it opens, but the first ``rx()``
    raises ``Exception('Channel voltage2 not found')``, as pyadi-iio does."""

    _rx_channel_names = ["voltage0", "voltage1", "voltage2", "voltage3"]
    _tx_channel_names = ["voltage0", "voltage1", "voltage2", "voltage3"]

    gain_control_mode_chan1 = property(lambda self: self._get_mode(1), lambda self, v: self._set_mode(1, v))
    rx_hardwaregain_chan1 = property(lambda self: self._get_rx_gain(1), lambda self, v: self._set_rx_gain(1, v))
    tx_hardwaregain_chan1 = property(lambda self: self._get_tx_gain(1), lambda self, v: self._set_tx_gain(1, v))


def fake_adi_module(air: FakeAir | None = None) -> SimpleNamespace:
    """A stand-in for ``import adi``: ``Pluto(uri=...)`` and ``ad9361(uri=...)`` open fakes on ``air``."""
    shared = air or FakeAir()
    return SimpleNamespace(Pluto=lambda uri="": FakePluto(uri, air=shared),
                           ad9361=lambda uri="": FakeAd9361(uri, air=shared),
                           __version__="0.0.21-fake", air=shared)


# ---------------------------------------------------------------------------------------------
# SoapySDR
# ---------------------------------------------------------------------------------------------

SOAPY_SDR_TX, SOAPY_SDR_RX = 0, 1
SOAPY_SDR_END_BURST, SOAPY_SDR_HAS_TIME = 2, 4
SOAPY_SDR_TIMEOUT, SOAPY_SDR_STREAM_ERROR, SOAPY_SDR_CORRUPTION = -1, -2, -3
SOAPY_SDR_OVERFLOW, SOAPY_SDR_NOT_SUPPORTED, SOAPY_SDR_TIME_ERROR, SOAPY_SDR_UNDERFLOW = -4, -5, -6, -7
_ERR_TEXT = {-1: "TIMEOUT", -2: "STREAM_ERROR", -3: "CORRUPTION", -4: "OVERFLOW",
             -5: "NOT_SUPPORTED", -6: "TIME_ERROR", -7: "UNDERFLOW"}


@dataclass
class StreamResult:
    ret: int
    flags: int = 0
    timeNs: int = 0
    chanMask: int = 0


class _Stream:
    def __init__(self, direction, fmt, channels):
        self.direction, self.fmt, self.channels = direction, fmt, list(channels)
        self.active = False
        self.closed = False
        self.count = 0          # reads or writes so far
        self.status = deque()   # pending readStreamStatus results (TX)
        self.overflowed = set()  # RX reads whose overflow was already reported


class FakeSoapyDevice:
    """A SoapySDR device that looks like a USRP B210: ``air.rx_channels`` RX and TX channels (2 by
    default; ``rx_channels=1`` makes it a B200), one LO and sample clock per direction shared by the
    channels (as on the AD9361), gains, AGC, bandwidth and antenna per channel, and SoapySDR's
    stream API — a stream over channels ``[0, 1]`` fills one buffer per channel in each
    ``readStream``. Every ``setFrequency`` is kept in ``freq_history`` as ``(direction, channel, Hz)``.
    """

    MTU = 4096
    AGC_GAIN_DB = 40.0

    def __init__(self, args=None, *, air: FakeAir | None = None):
        self.air = air or FakeAir()
        if self.air.imp.absent:
            raise RuntimeError("SoapySDR::Device::make() no match")
        self.args = dict(args or {}) if not isinstance(args, str) else dict(
            kv.split("=", 1) for kv in args.split(",") if kv)
        self.num_channels = self.air.rx_channels
        self.unit = self.air.attach("b210")
        both = (SOAPY_SDR_RX, SOAPY_SDR_TX)
        chans = range(self.num_channels)
        self._rate = {d: 1e6 for d in both}
        self._freq = {d: 2.4e9 for d in both}
        self._gain = {(d, c): 0.0 for d in both for c in chans}
        self._agc = {(d, c): False for d in both for c in chans}
        self._bw = {(d, c): 1e6 for d in both for c in chans}
        self._antenna = {(d, c): ("RX2" if d == SOAPY_SDR_RX else "TX/RX") for d in both for c in chans}
        self.freq_history: list[tuple[int, int, float]] = []
        self._streams: list[_Stream] = []

    # -- identity and settings -----------------------------------------------------------------
    def getDriverKey(self):
        return "fake"

    def getHardwareKey(self):
        return "B210 [fake]" if self.num_channels > 1 else "B200 [fake]"

    def getHardwareInfo(self):
        return {"fw_version": "8.0-fake", "fpga_version": "16.0-fake", "mboard_serial": self.unit.serial}

    def listSensors(self, *args):
        """Device sensors (no argument) or a channel's (direction, channel): the AD9361's ``temp``."""
        if not args:
            return ["ref_locked"]
        return ["lo_locked"] + (["temp"] if self.unit.temperature() is not None else [])

    def readSensor(self, *args):
        name = args[-1]
        if name == "temp" and len(args) == 3 and self.unit.temperature() is not None:
            return f"{self.unit.temperature():.2f}"
        if name in ("lo_locked", "ref_locked"):
            return "true"
        raise RuntimeError(f"no sensor {name}")

    def hasFrequencyCorrection(self, direction, channel):
        return False   # SoapyUHD offers none: the project corrects a B210 digitally

    def getNumChannels(self, direction):
        return self.num_channels

    def _ch(self, channel):
        if not 0 <= channel < self.num_channels:
            raise RuntimeError(f"invalid channel {channel}")

    def listAntennas(self, direction, channel):
        self._ch(channel)
        return ["TX/RX", "RX2"] if direction == SOAPY_SDR_RX else ["TX/RX"]

    def setAntenna(self, direction, channel, name):
        if name not in self.listAntennas(direction, channel):
            raise RuntimeError(f"invalid antenna {name}")
        self._antenna[direction, channel] = name

    def getAntenna(self, direction, channel):
        self._ch(channel)
        return self._antenna[direction, channel]

    def setSampleRate(self, direction, channel, rate):
        self._ch(channel)
        if not 0 < rate <= 56e6:
            raise RuntimeError(f"sample rate {rate} out of range")
        self._rate[direction] = float(rate)

    def getSampleRate(self, direction, channel):
        return self._rate[direction]

    def setFrequency(self, direction, channel, freq, args=None):
        self._ch(channel)
        if not 70e6 <= freq <= 6e9:
            raise RuntimeError(f"frequency {freq} out of range")
        self._freq[direction] = float(freq)
        self.freq_history.append((direction, channel, float(freq)))

    def getFrequency(self, direction, channel, name=None):
        return self._freq[direction]

    def setBandwidth(self, direction, channel, bw):
        self._ch(channel)
        self._bw[direction, channel] = float(bw)

    def getBandwidth(self, direction, channel):
        return self._bw[direction, channel]

    def hasGainMode(self, direction, channel):
        return direction == SOAPY_SDR_RX

    def setGainMode(self, direction, channel, automatic):
        self._ch(channel)
        if automatic and direction != SOAPY_SDR_RX:
            raise RuntimeError("no automatic gain on TX")
        self._agc[direction, channel] = bool(automatic)

    def getGainMode(self, direction, channel):
        return self._agc[direction, channel]

    def setGain(self, direction, channel, value):
        self._ch(channel)
        r = self.unit.model.gain_range("rx" if direction == SOAPY_SDR_RX else "tx", self._freq[direction])
        self._gain[direction, channel] = r.quantise(r.clip(value))  # drivers clip to the range

    def getGainRange(self, direction, channel):
        r = self.unit.model.gain_range("rx" if direction == SOAPY_SDR_RX else "tx", self._freq[direction])
        return SimpleNamespace(minimum=lambda: r.minimum, maximum=lambda: r.maximum, step=lambda: r.step)

    def getGain(self, direction, channel):
        if self._agc[direction, channel]:
            return self.AGC_GAIN_DB
        return self._gain[direction, channel]

    # -- streams ---------------------------------------------------------------------------------
    def setupStream(self, direction, fmt, channels=(0,), kwargs=None):
        if fmt != "CF32":
            raise RuntimeError(f"fake supports CF32 only, not {fmt}")
        for c in channels:
            self._ch(c)
        if direction == SOAPY_SDR_TX and list(channels) != [0]:
            raise RuntimeError("the fake transmits on channel 0 only")
        if self.air.imp.busy:
            raise RuntimeError("device busy: streamer already in use")
        s = _Stream(direction, fmt, channels)
        self._streams.append(s)
        return s

    def getStreamMTU(self, stream):
        return self.MTU

    def activateStream(self, stream, flags=0, timeNs=0, numElems=0):
        stream.active = True
        return 0

    def deactivateStream(self, stream, flags=0, timeNs=0):
        stream.active = False
        return 0

    def closeStream(self, stream):
        stream.closed = True
        self._streams.remove(stream)

    def readStream(self, stream, buffs, numElems, flags=0, timeoutUs=100000):
        if not stream.active or stream.direction != SOAPY_SDR_RX:
            return StreamResult(SOAPY_SDR_STREAM_ERROR)
        if len(buffs) != len(stream.channels):
            return StreamResult(SOAPY_SDR_STREAM_ERROR)   # one buffer per stream channel
        k = stream.count
        stream.count += 1
        imp = self.air.imp
        if k in imp.timeout_at:
            return StreamResult(SOAPY_SDR_TIMEOUT)
        if k in imp.overflow_at and k not in stream.overflowed:
            stream.overflowed.add(k)  # reported once; the retried read k then delivers samples
            stream.count -= 1
            self.air.skip(imp.lost_samples, self._rate[SOAPY_SDR_RX], self._freq[SOAPY_SDR_RX])
            return StreamResult(SOAPY_SDR_OVERFLOW)
        freq = self._freq[SOAPY_SDR_RX]
        rate = self._rate[SOAPY_SDR_RX]
        if k in imp.drop_at:
            self.air.skip(imp.lost_samples, rate, freq)
        n = int(min(numElems, self.MTU))
        t_ns = int(round(self.air.clock * 1e9 / rate))
        xs = self.air.receive(n, rate, channels=stream.channels, freq_hz=freq)
        for buff, ch, x in zip(buffs, stream.channels, xs):
            y = self.air.front_end(x, ch, self.getGain(SOAPY_SDR_RX, ch), rate, freq)
            if self.unit.adc:   # 12-bit ADC; UHD's sc16 wire format carries the counts, CF32 scales them
                full = 2.0 ** (self.unit.model.adc_bits - 1)
                y = (np.clip(np.round(y.real * full), -full, full - 1)
                     + 1j * np.clip(np.round(y.imag * full), -full, full - 1)) / full
            buff[:n] = y.astype(np.complex64)
        return StreamResult(n, SOAPY_SDR_HAS_TIME, t_ns)

    def writeStream(self, stream, buffs, numElems, flags=0, timeNs=0, timeoutUs=100000):
        if not stream.active or stream.direction != SOAPY_SDR_TX:
            return StreamResult(SOAPY_SDR_STREAM_ERROR)
        k = stream.count
        stream.count += 1
        if k in self.air.imp.underflow_at:
            stream.status.append(StreamResult(SOAPY_SDR_UNDERFLOW))
        n = int(min(numElems, self.MTU))
        x = np.asarray(buffs[0][:n], np.complex128)
        # UHD's B210 TX gain: full output (air 1.0 at DAC full scale) at the top of its range
        top = self.unit.model.gain_range("tx", self._freq[SOAPY_SDR_TX]).maximum
        y = x * 10 ** ((self.getGain(SOAPY_SDR_TX, 0) - top) / 20)
        y = np.clip(y.real, -1, 1) + 1j * np.clip(y.imag, -1, 1)  # DAC full scale
        y = self.unit.transmit(y, attenuation_db=0.0)   # TX imbalance, carrier leakage
        self.unit.advance(y.size, self._rate[SOAPY_SDR_TX], "tx")
        self.air.transmit(y, source=self.unit)
        return StreamResult(n, flags)

    def readStreamStatus(self, stream, timeoutUs=100000):
        if stream.status:
            return stream.status.popleft()
        return StreamResult(SOAPY_SDR_TIMEOUT)


def fake_soapy_module(air: FakeAir | None = None) -> SimpleNamespace:
    """A stand-in for ``import SoapySDR``: constants, ``errToStr`` and ``Device(args)`` on ``air``."""
    shared = air or FakeAir()
    mod = SimpleNamespace(
        Device=lambda args=None: FakeSoapyDevice(args, air=shared),
        errToStr=lambda code: _ERR_TEXT.get(int(code), "UNKNOWN"),
        getAPIVersion=lambda: "0.8.0-fake",
        air=shared,
        SOAPY_SDR_CF32="CF32", SOAPY_SDR_CS16="CS16",
    )
    for name, value in globals().items():
        if name.startswith("SOAPY_SDR_"):
            setattr(mod, name, value)
    return mod
