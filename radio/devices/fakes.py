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
* :class:`FakeSoapyDevice` follows SoapySDR's Python API (SoapySDR.i / Device.hpp):
  ``setupStream(direction, format, channels, kwargs)``, ``activateStream``, ``readStream(stream,
  [buff], numElems, flags, timeoutUs)`` returning a result with ``.ret`` (samples, or an error
  code), ``.flags`` and ``.timeNs``; ``writeStream``; ``readStreamStatus`` (where UHD reports TX
  underflows); error codes ``SOAPY_SDR_TIMEOUT`` −1, ``SOAPY_SDR_STREAM_ERROR`` −2,
  ``SOAPY_SDR_OVERFLOW`` −4, ``SOAPY_SDR_UNDERFLOW`` −7; ``SoapySDR.Device(args)`` raising
  ``RuntimeError('SoapySDR::Device::make() no match')`` when no device matches.

Air units: 1.0 is converter full scale (DAC output, ADC input). Loop gain from TX samples to RX
samples is ``tx gain · path gain · rx gain`` (dB add); the Pluto DAC sits 6 dB below full scale
at the nominal 2^14 level.
"""
from __future__ import annotations

import errno
import threading
from collections import deque
from dataclasses import dataclass, field, fields
from types import SimpleNamespace

import numpy as np

from radio.errors import UserError

STATUS_REG = 0x80000088
ADC_OVERFLOW_BIT = 0x4
DAC_UNDERFLOW_BIT = 0x1


def _indices(value) -> frozenset:
    if isinstance(value, str):
        return frozenset(int(v) for v in value.replace(";", " ").replace("+", " ").split() if v)
    return frozenset(int(v) for v in value)


@dataclass
class Impairments:
    """What the fake channel does, and which stream events it injects where.

    Event positions are 0-based counts of hardware reads (RX) or buffer pushes (TX):
    ``overflow_at`` loses ``lost_samples`` before that RX read and reports it (Pluto: ADC status
    bit; SoapySDR: ``SOAPY_SDR_OVERFLOW`` then a timestamp jump); ``drop_at`` loses them silently
    (only timestamps reveal it); ``timeout_at`` makes that RX read time out; ``underflow_at``
    makes that TX push underflow. In URIs, index lists are written with ``+``:
    ``fake-soapy:cfo_hz=200,overflow_at=2+5``.
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

    def __post_init__(self):
        for name in ("overflow_at", "drop_at", "timeout_at", "underflow_at"):
            setattr(self, name, _indices(getattr(self, name)))

    @classmethod
    def from_params(cls, params: dict, uri: str = "fake") -> "Impairments":
        """Build from URI ``key=value`` strings; unknown keys or bad values raise UserError."""
        known = {f.name: f for f in fields(cls)}
        kwargs = {}
        for key, text in params.items():
            if key not in known:
                raise UserError(f"bad device URI '{uri}': unknown option '{key}' "
                                f"(known: {', '.join(sorted(known))})")
            try:
                if key.endswith("_at"):
                    kwargs[key] = _indices(text)
                elif key in ("absent", "busy"):
                    kwargs[key] = text.lower() in ("1", "true", "yes")
                elif key in ("delay", "seed", "lost_samples"):
                    kwargs[key] = int(text)
                else:
                    kwargs[key] = float(text)
            except ValueError:
                raise UserError(f"bad device URI '{uri}': '{key}={text}' is not a valid value") from None
        return cls(**kwargs)


class FakeAir:
    """The loop from a fake's transmitter to its receiver (shareable between two fakes).

    ``transmit`` queues samples in air units; ``receive(n)`` returns the next ``n``: first
    ``delay`` zeros, then what was queued (or the cyclic buffer, repeated), then silence, with
    path gain, carrier frequency offset (phase continuous on the receive sample clock) and complex
    Gaussian noise CN(0, noise_std²) added. ``skip(n)`` loses ``n`` samples as an overflow does.
    """

    def __init__(self, impairments: Impairments | None = None):
        self.imp = impairments or Impairments()
        self._queue: deque[np.ndarray] = deque()
        self._cyclic: np.ndarray | None = None
        self._cyclic_pos = 0
        self._delay_left = int(self.imp.delay)
        self._clock = 0  # receive sample clock
        self._rng = np.random.default_rng(self.imp.seed)
        self._lock = threading.Lock()

    @property
    def clock(self) -> int:
        return self._clock

    def transmit(self, samples: np.ndarray) -> None:
        with self._lock:
            self._queue.append(np.asarray(samples, np.complex128).copy())

    def set_cyclic(self, samples: np.ndarray | None) -> None:
        with self._lock:
            self._cyclic = None if samples is None else np.asarray(samples, np.complex128).copy()
            self._cyclic_pos = 0

    def _take(self, n: int) -> np.ndarray:
        out = np.zeros(n, np.complex128)
        i = 0
        if self._delay_left:
            d = min(self._delay_left, n)
            self._delay_left -= d
            i = d
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

    def receive(self, n: int, sample_rate: float) -> np.ndarray:
        with self._lock:
            x = self._take(n) * 10 ** (self.imp.path_gain_db / 20)
            if self.imp.cfo_hz:
                k = self._clock + np.arange(n)
                x = x * np.exp(2j * np.pi * self.imp.cfo_hz * k / sample_rate)
            if self.imp.noise_std:
                x = x + self.imp.noise_std / np.sqrt(2) * (
                    self._rng.standard_normal(n) + 1j * self._rng.standard_normal(n))
            self._clock += n
            return x

    def skip(self, n: int) -> None:
        with self._lock:
            self._take(n)
            self._clock += n


# ---------------------------------------------------------------------------------------------
# pyadi-iio
# ---------------------------------------------------------------------------------------------

class FakeIioDevice:
    """The part of an ``iio.Device`` the Pluto adapter touches: the DMA status register."""

    def __init__(self, name: str):
        self.name = name
        self.status = 0

    def reg_read(self, reg: int) -> int:
        return self.status if reg == STATUS_REG else 0

    def reg_write(self, reg: int, value: int) -> None:
        if reg == STATUS_REG:
            self.status &= ~int(value)  # write one to clear


def _einval(what):
    return OSError(errno.EINVAL, f"Invalid argument ({what})")


class FakePluto:
    """A PlutoSDR (AD9363, one RX and one TX channel) with pyadi-iio's ``adi.Pluto`` semantics."""

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
        self.ctx = SimpleNamespace(attrs={
            "hw_model": "Analog Devices PlutoSDR Rev.C (Z7010-AD9363A) [fake]",
            "fw_version": "v0.38-fake", "ad9361-phy,model": "ad9363a"})
        self._rxadc = FakeIioDevice("cf-ad9361-lpc")
        self._txdac = FakeIioDevice("cf-ad9361-dds-core-lpc")
        self._sample_rate = 30720000
        self._rx_lo = 2400000000
        self._tx_lo = 2450000000
        self._rx_bw = 18000000
        self._tx_bw = 18000000
        self._gain_mode = "slow_attack"
        self._rx_gain = 71.0
        self._tx_gain = -10.0
        self.rx_buffer_size = 1024
        self.rx_enabled_channels = [0]
        self.tx_enabled_channels = [0]
        self._tx_cyclic_buffer = False
        self._txbuf = None
        self._rxbuf = None
        self._tx_buffer_size = None
        self.rx_reads = 0
        self.tx_pushes = 0

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

    rx_lo = property(lambda self: self._rx_lo,
                     lambda self, v: setattr(self, "_rx_lo", self._lo(v, "RX_LO frequency")))
    tx_lo = property(lambda self: self._tx_lo,
                     lambda self, v: setattr(self, "_tx_lo", self._lo(v, "TX_LO frequency")))

    def _bw(self, value):
        if not 200e3 <= value <= 56e6:
            raise _einval("rf_bandwidth")
        return int(value)

    rx_rf_bandwidth = property(lambda self: self._rx_bw, lambda self, v: setattr(self, "_rx_bw", self._bw(v)))
    tx_rf_bandwidth = property(lambda self: self._tx_bw, lambda self, v: setattr(self, "_tx_bw", self._bw(v)))

    @property
    def gain_control_mode_chan0(self):
        return self._gain_mode

    @gain_control_mode_chan0.setter
    def gain_control_mode_chan0(self, mode):
        if mode not in ("manual", "slow_attack", "fast_attack", "hybrid"):
            raise _einval("gain_control_mode")
        self._gain_mode = mode

    @property
    def rx_hardwaregain_chan0(self):
        return self._rx_gain if self._gain_mode == "manual" else float(self.AGC_GAIN_DB)

    @rx_hardwaregain_chan0.setter
    def rx_hardwaregain_chan0(self, value):
        if self._gain_mode != "manual":
            return  # pyadi-iio writes the gain only in manual mode
        if not -3 <= value <= 71:
            raise _einval("hardwaregain")
        self._rx_gain = float(round(value))

    @property
    def tx_hardwaregain_chan0(self):
        return self._tx_gain

    @tx_hardwaregain_chan0.setter
    def tx_hardwaregain_chan0(self, value):
        if not -89.75 <= value <= 0:
            raise _einval("hardwaregain")
        self._tx_gain = round(value * 4) / 4  # 0.25 dB steps

    @property
    def tx_cyclic_buffer(self):
        return self._tx_cyclic_buffer

    @tx_cyclic_buffer.setter
    def tx_cyclic_buffer(self, value):
        if self._txbuf:
            raise Exception("TX buffer already created, buffer must be "
                            "destroyed then recreated to modify tx_cyclic_buffer")
        self._tx_cyclic_buffer = bool(value)

    def _check_channels(self, chans):
        if list(chans) != [0]:
            raise Exception("RX mapping exceeds available channels")

    # -- streaming -------------------------------------------------------------------------------
    def _gain_lin(self) -> float:
        return 10 ** (self.rx_hardwaregain_chan0 / 20)

    def tx(self, data_np=None):
        self._check_channels(self.tx_enabled_channels)
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
        dac *= 10 ** (self._tx_gain / 20)
        if self.tx_pushes in self.air.imp.underflow_at:
            self._txdac.status |= DAC_UNDERFLOW_BIT
        self.tx_pushes += 1
        if self._tx_cyclic_buffer:
            self.air.set_cyclic(dac)
        else:
            self.air.transmit(dac)

    def tx_destroy_buffer(self):
        self._txbuf = None
        self.air.set_cyclic(None)

    def rx(self):
        self._check_channels(self.rx_enabled_channels)
        if not self._rxbuf:
            if self.air.imp.busy:
                raise OSError(errno.EBUSY, "Device or resource busy")
            self._rxbuf = True
        k = self.rx_reads
        self.rx_reads += 1
        imp = self.air.imp
        if k in imp.timeout_at:
            raise OSError(errno.ETIMEDOUT, "Connection timed out")
        if k in imp.overflow_at:
            self.air.skip(imp.lost_samples)
            self._rxadc.status |= ADC_OVERFLOW_BIT
        if k in imp.drop_at:
            self.air.skip(imp.lost_samples)
        x = self.air.receive(int(self.rx_buffer_size), self._sample_rate) * self._gain_lin()
        raw = x * self.RX_FULL_SCALE
        i = np.clip(np.round(raw.real), -2048, 2047).astype(np.int16)
        q = np.clip(np.round(raw.imag), -2048, 2047).astype(np.int16)
        return i + 1j * q  # complex128, as pyadi-iio's rx() builds it

    def rx_destroy_buffer(self):
        self._rxbuf = None


def fake_adi_module(air: FakeAir | None = None) -> SimpleNamespace:
    """A stand-in for ``import adi`` whose ``Pluto(uri=...)`` opens a FakePluto on ``air``."""
    shared = air or FakeAir()
    return SimpleNamespace(Pluto=lambda uri="": FakePluto(uri, air=shared), __version__="0.0.21-fake",
                           air=shared)


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
    """A one-channel SoapySDR device (looks like a USRP B200) with SoapySDR's stream API."""

    MTU = 4096
    GAIN_RANGE = {SOAPY_SDR_RX: (0.0, 76.0), SOAPY_SDR_TX: (0.0, 89.75)}
    AGC_GAIN_DB = 40.0

    def __init__(self, args=None, *, air: FakeAir | None = None):
        self.air = air or FakeAir()
        if self.air.imp.absent:
            raise RuntimeError("SoapySDR::Device::make() no match")
        self.args = dict(args or {}) if not isinstance(args, str) else dict(
            kv.split("=", 1) for kv in args.split(",") if kv)
        self._rate = {SOAPY_SDR_RX: 1e6, SOAPY_SDR_TX: 1e6}
        self._freq = {SOAPY_SDR_RX: 2.4e9, SOAPY_SDR_TX: 2.4e9}
        self._gain = {SOAPY_SDR_RX: 0.0, SOAPY_SDR_TX: 0.0}
        self._agc = {SOAPY_SDR_RX: False, SOAPY_SDR_TX: False}
        self._bw = {SOAPY_SDR_RX: 1e6, SOAPY_SDR_TX: 1e6}
        self._antenna = {SOAPY_SDR_RX: "RX2", SOAPY_SDR_TX: "TX/RX"}
        self._streams: list[_Stream] = []
        self._rx_time_clock = 0

    # -- identity and settings -----------------------------------------------------------------
    def getDriverKey(self):
        return "fake"

    def getHardwareKey(self):
        return "B200 [fake]"

    def getHardwareInfo(self):
        return {"fw_version": "8.0-fake", "fpga_version": "16.0-fake"}

    def getNumChannels(self, direction):
        return 1

    def _ch(self, channel):
        if channel != 0:
            raise RuntimeError(f"invalid channel {channel}")

    def listAntennas(self, direction, channel):
        self._ch(channel)
        return ["TX/RX", "RX2"] if direction == SOAPY_SDR_RX else ["TX/RX"]

    def setAntenna(self, direction, channel, name):
        if name not in self.listAntennas(direction, channel):
            raise RuntimeError(f"invalid antenna {name}")
        self._antenna[direction] = name

    def getAntenna(self, direction, channel):
        self._ch(channel)
        return self._antenna[direction]

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

    def getFrequency(self, direction, channel, name=None):
        return self._freq[direction]

    def setBandwidth(self, direction, channel, bw):
        self._ch(channel)
        self._bw[direction] = float(bw)

    def getBandwidth(self, direction, channel):
        return self._bw[direction]

    def hasGainMode(self, direction, channel):
        return direction == SOAPY_SDR_RX

    def setGainMode(self, direction, channel, automatic):
        self._ch(channel)
        if automatic and direction != SOAPY_SDR_RX:
            raise RuntimeError("no automatic gain on TX")
        self._agc[direction] = bool(automatic)

    def getGainMode(self, direction, channel):
        return self._agc[direction]

    def setGain(self, direction, channel, value):
        self._ch(channel)
        lo, hi = self.GAIN_RANGE[direction]
        self._gain[direction] = float(min(max(value, lo), hi))  # drivers clip to the range

    def getGain(self, direction, channel):
        if self._agc[direction]:
            return self.AGC_GAIN_DB
        return self._gain[direction]

    # -- streams ---------------------------------------------------------------------------------
    def setupStream(self, direction, fmt, channels=(0,), kwargs=None):
        if fmt != "CF32":
            raise RuntimeError(f"fake supports CF32 only, not {fmt}")
        for c in channels:
            self._ch(c)
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

    def _lin(self, direction):
        return 10 ** (self.getGain(direction, 0) / 20)

    def readStream(self, stream, buffs, numElems, flags=0, timeoutUs=100000):
        if not stream.active or stream.direction != SOAPY_SDR_RX:
            return StreamResult(SOAPY_SDR_STREAM_ERROR)
        k = stream.count
        stream.count += 1
        imp = self.air.imp
        if k in imp.timeout_at:
            return StreamResult(SOAPY_SDR_TIMEOUT)
        if k in imp.overflow_at and k not in stream.overflowed:
            stream.overflowed.add(k)  # reported once; the retried read k then delivers samples
            stream.count -= 1
            self.air.skip(imp.lost_samples)
            return StreamResult(SOAPY_SDR_OVERFLOW)
        if k in imp.drop_at:
            self.air.skip(imp.lost_samples)
        n = int(min(numElems, self.MTU))
        rate = self._rate[SOAPY_SDR_RX]
        t_ns = int(round(self.air.clock * 1e9 / rate))
        x = self.air.receive(n, rate) * self._lin(SOAPY_SDR_RX)
        buffs[0][:n] = x.astype(np.complex64)
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
        y = x * self._lin(SOAPY_SDR_TX)
        y = np.clip(y.real, -1, 1) + 1j * np.clip(y.imag, -1, 1)  # DAC full scale
        self.air.transmit(y)
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
