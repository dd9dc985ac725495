"""SoapySDR devices (USRPs through ``soapysdr-module-uhd``), through SoapySDR's Python binding.

Follows SoapySDR's documented API (``SoapySDR/Device.hpp`` and the Python example
``SoapySDR/python/apps/MeasureDelay.py``): ``SoapySDR.Device(args)`` (``RuntimeError`` "no match"
when nothing matches), ``setSampleRate``/``setFrequency``/``setBandwidth``/``setGainMode``/
``setGain`` per direction and channel, ``setupStream(direction, SOAPY_SDR_CF32, [channel])``,
``activateStream``, ``readStream(stream, [buff], n, timeoutUs=…)`` and ``writeStream`` returning
a result whose ``ret`` is a sample count or an error code, and ``readStreamStatus`` for
asynchronous TX events.

Error codes (``SoapySDR/Errors.h``): ``SOAPY_SDR_TIMEOUT`` −1 → ``counters['timeouts']``;
``SOAPY_SDR_OVERFLOW`` −4 (RX) → ``counters['overflows']`` and a discontinuity before the next
samples; ``SOAPY_SDR_UNDERFLOW`` −7 (from ``writeStream`` or ``readStreamStatus``) →
``counters['underflows']``; ``SOAPY_SDR_STREAM_ERROR`` −2, ``SOAPY_SDR_CORRUPTION`` −3 and
``SOAPY_SDR_TIME_ERROR`` −6 → ``counters['stream_errors']`` and a discontinuity. When reads carry
timestamps (``SOAPY_SDR_HAS_TIME``), a jump beyond the samples received gives the exact number of
samples lost (``dropped``), with or without an overflow code.

Samples are ``CF32`` (complex64), whose full scale is 1.0 in both directions — no scaling.

**Several RX channels** (Eve on a second channel of Bob's radio, e.g. a USRP B210): the RX stream
is set up once on all of them, ``setupStream(SOAPY_SDR_RX, SOAPY_SDR_CF32, [0, 1])``, and each
``readStream(stream, [buff0, buff1], n)`` fills one buffer per channel with the same number of
sample-aligned samples. Every RX channel gets the same rate, frequency, bandwidth and gain. A
channel at or beyond ``getNumChannels(SOAPY_SDR_RX)`` is refused with one line. TX uses
``settings.channel`` (0 unless set).

**Serial, temperature, carrier correction.** ``serial()`` is the URI's ``serial=`` argument, else the
hardware info's ``mboard_serial``/``serial`` (SoapyUHD's keys), else the URI; ``temperature_c()``
reads the RX channel's ``temp`` sensor where ``listSensors`` offers one (UHD exposes the AD9361's on a
B200/B210). UHD gives a B210 no reference correction through SoapySDR, so the calibration profile's
offset is applied digitally on receive (``set_rx_frequency_correction``, see
:mod:`radio.devices.base`).

**Retuning.** ``retune(f)`` calls ``setFrequency`` on every RX channel and the TX channel while the
streams run and returns ``getFrequency`` of the first RX channel; samples already in the driver's
buffers come from the old frequency.
"""
from __future__ import annotations

import numpy as np

from radio.devices.base import Chunk, Device, RadioSettings
from radio.devices.uri import DeviceUri
from jscec.errors import UserError

TIMEOUT_US = 200_000
MAX_RETRIES = 50


def import_soapy():
    """Import SoapySDR's Python binding, or explain in one line what to install."""
    try:
        import SoapySDR  # noqa: PLC0415
    except ImportError:
        raise UserError("SoapySDR devices need SoapySDR's Python binding: apt-get install python3-soapysdr "
                        "(and soapysdr-module-uhd for USRPs); use a venv made with --system-site-packages") from None
    return SoapySDR


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class SoapyDevice(Device):
    """A SoapySDR device; ``soapy`` is the SoapySDR module (or ``fakes.fake_soapy_module()``)."""

    kind = "soapy"

    def __init__(self, uri: DeviceUri, settings: RadioSettings, soapy=None, rx_channels=None):
        super().__init__(uri, settings, rx_channels)
        self._S = soapy if soapy is not None else import_soapy()
        try:
            self._dev = self._S.Device(dict(uri.params))
        except Exception as exc:  # RuntimeError("SoapySDR::Device::make() no match")
            raise UserError(f"cannot open SoapySDR device '{uri}': {_one_line(exc)} "
                            "(connected? driver module installed? not used by another program?)") from None
        self._rx_stream = None
        self._tx_stream = None
        self._rx_buf = np.zeros((len(self.rx_channels), settings.buffer_size), np.complex64)
        self._expect_ns = None     # timestamp the next RX sample should carry
        self._gap = False          # an error code was seen since the last samples

    # -- configuration ---------------------------------------------------------------------------
    def _call(self, what: str, fn, *args):
        try:
            return fn(*args)
        except Exception as exc:
            raise UserError(f"{self.uri}: cannot {what}: {_one_line(exc)}") from None

    def _channels(self):
        """(direction, channel) pairs in use: every RX channel, then the TX channel."""
        S = self._S
        return [(S.SOAPY_SDR_RX, c) for c in self.rx_channels] + [(S.SOAPY_SDR_TX, self.settings.channel)]

    def default_tx_gain_db(self) -> float:
        """10 dB below the top of the device's TX gain range (a B210 through UHD: 79.75 dB), where a
        SoapySDR device's full output is; the library's own default gain varies by driver."""
        r = self.gain_range("tx")
        if r is None:
            raise UserError(f"{self.uri}: the device reports no TX gain range; give a TX gain (--tx-gain)")
        lo, hi, _ = r
        return float(max(lo, hi - self.DEFAULT_TX_BACKOFF_DB))

    def configure(self) -> None:
        S, d, s = self._S, self._dev, self.settings
        for direction, ch in self._channels():
            have = self._call("count channels", d.getNumChannels, direction)
            if ch >= have:
                which = "RX" if direction == S.SOAPY_SDR_RX else "TX"
                raise UserError(f"{self.uri}: no {which} channel {ch} on this device (it has {have})")
            self._call(f"set sample rate {s.sample_rate_hz}", d.setSampleRate, direction, ch, float(s.sample_rate_hz))
            self._call(f"set frequency {s.center_freq_hz}", d.setFrequency, direction, ch, float(s.center_freq_hz))
            self._call(f"set bandwidth {s.bandwidth_hz}", d.setBandwidth, direction, ch, float(s.bandwidth_hz))
        for ch in self.rx_channels:
            self._call("set RX gain mode", d.setGainMode, S.SOAPY_SDR_RX, ch, bool(s.agc))
            if not s.agc:
                self._call(f"set RX gain {s.rx_gain_db}", d.setGain, S.SOAPY_SDR_RX, ch, float(s.rx_gain_db))
        self._resolve_tx_gain()     # None: 10 dB below the top of the range, at the frequency just set
        s = self.settings
        self._call(f"set TX gain {s.tx_gain_db}", d.setGain, S.SOAPY_SDR_TX, s.channel, float(s.tx_gain_db))

    def start(self) -> None:
        S, d = self._S, self._dev
        if self._rx_stream is None:
            self._rx_stream = self._call("set up the RX stream", d.setupStream, S.SOAPY_SDR_RX, S.SOAPY_SDR_CF32,
                                         list(self.rx_channels))
            self._call("activate the RX stream", d.activateStream, self._rx_stream)
        if self._tx_stream is None:
            self._tx_stream = self._call("set up the TX stream", d.setupStream, S.SOAPY_SDR_TX, S.SOAPY_SDR_CF32,
                                         [self.settings.channel])
            self._call("activate the TX stream", d.activateStream, self._tx_stream)

    def _tune(self, center_freq_hz: float) -> float:
        d = self._dev
        for direction, ch in self._channels():
            self._call(f"set frequency {center_freq_hz}", d.setFrequency, direction, ch, center_freq_hz)
        return float(self._call("read the frequency", d.getFrequency, self._S.SOAPY_SDR_RX, self.rx_channels[0]))

    def _require_started(self):
        if self._rx_stream is None:
            raise UserError(f"{self.uri}: start() the device before streaming")

    # -- streaming -------------------------------------------------------------------------------
    def _read_chunk(self) -> Chunk | None:
        self._require_started()
        S = self._S
        overflow = False
        for _ in range(MAX_RETRIES):
            sr = self._dev.readStream(self._rx_stream, list(self._rx_buf), self._rx_buf.shape[1],
                                      timeoutUs=TIMEOUT_US)
            ret = int(sr.ret)
            if ret > 0:
                break
            if ret == S.SOAPY_SDR_TIMEOUT or ret == 0:
                self.counters["timeouts"] += 1
                self._gap = self._gap or overflow
                return None
            if ret == S.SOAPY_SDR_OVERFLOW:
                self.counters["overflows"] += 1
                overflow = True
            else:
                self.counters["stream_errors"] += 1
                overflow = True
        else:
            raise UserError(f"{self.uri}: RX stream keeps failing ({S.errToStr(ret)})")
        overflow = overflow or self._gap
        self._gap = False
        dropped, ts = 0, None
        if sr.flags & S.SOAPY_SDR_HAS_TIME:
            ts = int(sr.timeNs)
            if self._expect_ns is not None:
                gap = int(round((ts - self._expect_ns) * self.settings.sample_rate_hz / 1e9))
                if gap > 0:
                    dropped = gap
                    self.counters["drops"] += 1
                    self.counters["dropped_samples"] += gap
            self._expect_ns = ts + int(round(ret * 1e9 / self.settings.sample_rate_hz))
        samples = self._rx_buf[:, :ret].copy()
        return Chunk(samples if len(self.rx_channels) > 1 else samples[0], overflow=overflow, dropped=dropped,
                     timestamp_ns=ts)

    def _poll_status(self) -> None:
        S = self._S
        for _ in range(MAX_RETRIES):
            sr = self._dev.readStreamStatus(self._tx_stream, timeoutUs=0)
            ret = int(sr.ret)
            if ret == S.SOAPY_SDR_UNDERFLOW:
                self.counters["underflows"] += 1
            elif ret in (S.SOAPY_SDR_TIMEOUT, S.SOAPY_SDR_NOT_SUPPORTED) or ret >= 0:
                return
            else:
                self.counters["stream_errors"] += 1

    def _write(self, samples: np.ndarray) -> None:
        self._require_started()
        S = self._S
        x = np.ascontiguousarray(samples, np.complex64)
        big = np.abs(x.real).max(initial=0) > 1 or np.abs(x.imag).max(initial=0) > 1
        if big:
            over = (np.abs(x.real) > 1) | (np.abs(x.imag) > 1)
            self.counters["tx_clipped"] += int(np.count_nonzero(over))
            x = (np.clip(x.real, -1, 1) + 1j * np.clip(x.imag, -1, 1)).astype(np.complex64)
        pos, failures = 0, 0
        while pos < x.size:
            n = min(self.settings.buffer_size, x.size - pos)
            sr = self._dev.writeStream(self._tx_stream, [x[pos:pos + n]], n, timeoutUs=TIMEOUT_US)
            ret = int(sr.ret)
            if ret > 0:
                pos += ret
                failures = 0
                continue
            failures += 1
            if ret == S.SOAPY_SDR_TIMEOUT:
                self.counters["timeouts"] += 1
            elif ret == S.SOAPY_SDR_UNDERFLOW:
                self.counters["underflows"] += 1
            else:
                self.counters["stream_errors"] += 1
            if failures >= MAX_RETRIES:
                raise UserError(f"{self.uri}: TX stream keeps failing ({S.errToStr(ret)})")
        self._poll_status()

    def _close(self) -> None:
        d, self._dev = self._dev, None
        if d is None:
            return
        for stream in (self._rx_stream, self._tx_stream):
            if stream is None:
                continue
            try:
                d.deactivateStream(stream)
                d.closeStream(stream)
            except Exception:
                pass
        self._rx_stream = self._tx_stream = None
        del d

    # -- gains while streaming ------------------------------------------------------------------
    def _apply_gains(self, rx: bool, tx: bool) -> None:
        S, d, s = self._S, self._dev, self.settings
        if rx and not s.agc:
            for ch in self.rx_channels:
                self._call(f"set RX gain {s.rx_gain_db}", d.setGain, S.SOAPY_SDR_RX, ch, float(s.rx_gain_db))
        if tx:
            self._call(f"set TX gain {s.tx_gain_db}", d.setGain, S.SOAPY_SDR_TX, s.channel, float(s.tx_gain_db))

    def gains(self) -> dict:
        S = self._S
        try:
            return {"rx_gain_db": float(self._dev.getGain(S.SOAPY_SDR_RX, self.rx_channels[0])),
                    "tx_gain_db": float(self._dev.getGain(S.SOAPY_SDR_TX, self.settings.channel))}
        except Exception:  # noqa: BLE001
            return super().gains()

    def gain_range(self, direction: str) -> tuple[float, float, float] | None:
        S = self._S
        d = S.SOAPY_SDR_RX if direction == "rx" else S.SOAPY_SDR_TX
        ch = self.rx_channels[0] if direction == "rx" else self.settings.channel
        try:
            r = self._dev.getGainRange(d, ch)
            return float(r.minimum()), float(r.maximum()), float(r.step() or 1.0)
        except Exception:  # noqa: BLE001
            return None

    # -- identity, temperature -------------------------------------------------------------------
    def serial(self) -> str:
        if self.uri.params.get("serial"):
            return str(self.uri.params["serial"])
        try:
            info = self._dev.getHardwareInfo()
            for key in ("mboard_serial", "serial"):
                if key in info and str(info[key]):
                    return str(info[key])
        except Exception:  # noqa: BLE001
            pass
        return self.uri.device_text

    def temperature_c(self) -> float | None:
        S, ch = self._S, self.rx_channels[0]
        try:
            if "temp" not in list(self._dev.listSensors(S.SOAPY_SDR_RX, ch)):
                return None
            return float(str(self._dev.readSensor(S.SOAPY_SDR_RX, ch, "temp")).split()[0])
        except Exception:  # noqa: BLE001 - no sensor: no reading
            return None

    # -- metadata --------------------------------------------------------------------------------
    def describe(self) -> dict:
        d = self._common_description()
        dev, S, ch = self._dev, self._S, self.rx_channels[0]
        if dev is None:
            return d
        d.update(self._identity_description())
        try:
            d["driver"] = str(dev.getDriverKey())
            d["hw"] = str(dev.getHardwareKey())
            info = dev.getHardwareInfo()
            d["hw_info"] = {str(k): str(info[k]) for k in info}
            d.update(
                sample_rate_hz=float(dev.getSampleRate(S.SOAPY_SDR_RX, ch)),
                center_freq_hz=float(dev.getFrequency(S.SOAPY_SDR_RX, ch)),
                tx_center_freq_hz=float(dev.getFrequency(S.SOAPY_SDR_TX, self.settings.channel)),
                rf_bandwidth_hz=float(dev.getBandwidth(S.SOAPY_SDR_RX, ch)),
                rx_gain_db=float(dev.getGain(S.SOAPY_SDR_RX, ch)),
                tx_gain_db=float(dev.getGain(S.SOAPY_SDR_TX, self.settings.channel)),
                rx_antenna=str(dev.getAntenna(S.SOAPY_SDR_RX, ch)),
                tx_antenna=str(dev.getAntenna(S.SOAPY_SDR_TX, self.settings.channel)),
            )
        except Exception:
            pass  # read-backs are informative only
        return d
