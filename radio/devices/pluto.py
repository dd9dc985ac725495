"""ADALM-Pluto through pyadi-iio (``adi.Pluto``), used exactly as pyadi-iio documents it.

**pyadi-iio and Debian's libiio (decision).** Every pyadi-iio release on PyPI (0.0.2 … 0.0.21)
declares ``pylibiio>=0.25``. Debian 12 ships libiio 0.24 and its binding ``python3-libiio``, which
pip sees as ``pylibiio 0.24``; a plain ``pip install pyadi-iio`` therefore pulls ``pylibiio 1.0``
from PyPI, a binding for libiio v1 that does not match the libiio 0.24 C library installed (and
used by GNU Radio's gr-iio). We install pyadi-iio *without* its dependencies::

    .venv/bin/python -m pip install --no-deps "pyadi-iio==0.0.21"

so ``import adi`` uses Debian's ``iio`` module. This works because pyadi-iio 0.0.21 selects its
buffer code by ``iio.version`` (``adi/compat.py``: ``compat_libiio_v0_rx/tx`` when the major
version is 0, which uses only ``iio.Buffer``, ``refill``, ``push``, ``Channel.read/enabled`` —
all present in libiio 0.24). Checked on this machine: ``import adi`` succeeds, ``adi.__version__``
is 0.0.21, ``iio.version`` is (0, 24), and ``adi.Pluto(uri="ip:192.168.2.1")`` with no radio
raises ``Exception("No device found")``. What does not work with libiio 0.24: only the libiio-v1
paths (``iio.Stream``, ``iio.ChannelsMask``, ``iio.Block``), which pyadi-iio never takes on 0.24.
pyadi-iio's other dependency, numpy ≥ 1.20, is already installed.

**Scaling.** ``tx()`` takes complex values in DAC counts: the AD9363 DAC is 12 bits, MSB-aligned
in int16 (``le:S16/16``), and pyadi-iio's examples scale unit-amplitude signals by 2^14, leaving
6 dB of headroom. We do the same (``TX_SCALE``), clip to ±32767 (pyadi-iio's ``astype(int16)``
would wrap) and count clipped samples. ``rx()`` returns raw ADC counts (``le:S12/16>>0``: 12-bit,
sign-extended, ±2048) as ``complex128``; we divide by ``RX_FULL_SCALE`` = 2048.

**Buffers.** ``tx_cyclic_buffer`` is set to False in ``configure()`` — it must be set before the
first ``tx()``, and changing it later needs ``tx_destroy_buffer()``. In non-cyclic mode pyadi-iio
fixes the TX buffer length at the first ``tx()`` and refuses other lengths, so this adapter pushes
exactly ``settings.buffer_size`` samples per ``tx()`` and keeps the remainder for the next call
(``flush()`` zero-pads it).

**Two RX channels (Eve on Bob's radio).** An AD9361-based Pluto (Rev C/D with firmware set to
2R2T: ``fw_setenv attr_name compatible; fw_setenv attr_val ad9361; fw_setenv compatible ad9361;
fw_setenv mode 2r2t``) streams two RX channels from one LO. pyadi-iio drives it with its
``adi.ad9361`` class rather than ``adi.Pluto``: ``rx_enabled_channels = [0, 1]`` and ``rx()``
returns a list of two arrays (one per channel, sample-aligned), ``gain_control_mode_chan1`` /
``rx_hardwaregain_chan1`` set channel 1's gain, and ``tx_enabled_channels = [0]`` keeps TX on one
channel. This adapter uses ``adi.ad9361`` whenever a channel other than 0 is asked for (URI
``pluto:ip:HOST#1``, or Bob and Eve on channels 0 and 1) and first checks that the ADC core
(``cf-ad9361-lpc``) has the scan channels ``voltage2``/``voltage3``: a 1R1T radio (AD9363 in its
default mode) is refused with one line instead of pyadi-iio's ``Channel voltage2 not found`` at
the first read. Without a context URI (``pluto#1``) it opens ``ip:pluto.local``.

**Retuning.** ``retune(f)`` writes ``rx_lo`` and ``tx_lo`` (the RX LO is shared by both RX
channels) and returns ``rx_lo`` read back. Samples already in libiio's kernel buffers when the LO
moves still come from the old frequency.

**Serial, temperature, reference correction.** ``serial()`` is the libiio context attribute
``hw_serial`` (the URI where the context has none); ``temperature_c()`` reads the AD936x sensor,
channel ``temp0`` of ``ad9361-phy``, attribute ``input`` (milli-degrees Celsius); the reference
correction is the ``ad9361-phy`` device attribute ``xo_correction`` — the frequency (Hz, an integer
within ``xo_correction_available``, 40 MHz ± 8 kHz) the driver believes its 40 MHz reference runs at;
writing it reprograms the LO and baseband PLLs, so the carrier and the sample clock move together
(ADI wiki, "Tuning the AD9361/AD9364": read the oscillator's actual frequency and tell the driver).
pyadi-iio 0.0.21 has no property for it; we use the libiio objects it keeps (``_ctrl``, the
``ad9361-phy`` device), as its own ``_get_iio_dev_attr``/``_set_iio_dev_attr`` do.

**Overflows and underflows.** pyadi-iio reports neither. The AXI DMA cores of the Pluto flag
them in status register 0x80000088 (bit 2 = ADC overflow on ``cf-ad9361-lpc``, bit 0 = DAC
underflow on ``cf-ad9361-dds-core-lpc``; write-one-to-clear), which libiio's
``iio_adi_xflow_check`` tool reads. We read it through the ``iio.Device`` objects pyadi-iio keeps
(``_rxadc``, ``_txdac``) after each buffer; where register access fails, detection is switched
off and ``describe()['xflow_detection']`` says so. The number of samples lost is unknown, so an
overflow is reported with ``dropped = 0``.
"""
from __future__ import annotations

import errno

import numpy as np

from radio.devices.base import Chunk, Device, RadioSettings, clip_to_int16
from radio.devices.uri import DeviceUri
from jscec.errors import UserError

TX_SCALE = 2.0 ** 14
RX_FULL_SCALE = 2048.0
STATUS_REG = 0x80000088
ADC_OVERFLOW = 0x4
DAC_UNDERFLOW = 0x1
PIP_LINE = 'pip install --no-deps "pyadi-iio==0.0.21"'


def import_adi():
    """Import pyadi-iio, or explain in one line what to install."""
    try:
        import adi  # noqa: PLC0415
    except ImportError as exc:
        if (exc.name or "").startswith("iio"):
            raise UserError("Pluto support needs libiio's Python binding: "
                            "apt-get install python3-libiio (see scripts/setup-env.sh)") from None
        raise UserError(f"Pluto support needs pyadi-iio: run scripts/setup-env.sh or {PIP_LINE}") from None
    except OSError as exc:  # libiio.so missing or unloadable
        raise UserError(f"Pluto support needs the libiio library (apt-get install libiio0): {exc}") from None
    return adi


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class PlutoDevice(Device):
    """A PlutoSDR; ``adi`` is the pyadi-iio module (or :func:`radio.devices.fakes.fake_adi_module`)."""

    kind = "pluto"

    def __init__(self, uri: DeviceUri, settings: RadioSettings, adi=None, rx_channels=None):
        super().__init__(uri, settings, rx_channels)
        if settings.tx_gain_db is not None and settings.tx_gain_db > 0:
            raise UserError(f"{uri}: Pluto TX gain is an attenuation and must be <= 0 dB, "
                            f"got {settings.tx_gain_db}")
        if self.rx_channels[-1] > 1:
            raise UserError(f"{uri}: a PlutoSDR has RX channels 0 and 1 at most, "
                            f"not channel {self.rx_channels[-1]}")
        adi = adi if adi is not None else import_adi()
        two = self.rx_channels != (0,)
        try:  # adi.ad9361 for a 2R2T radio (see the module docstring)
            self._sdr = adi.ad9361(uri=uri.target or "ip:pluto.local") if two else adi.Pluto(uri=uri.target)
        except Exception as exc:  # pyadi-iio raises a bare Exception("No device found")
            raise UserError(f"cannot open PlutoSDR '{uri}': {_one_line(exc)} "
                            "(plugged in and reachable? not used by another program?)") from None
        self._tx_rest = np.zeros(0, np.complex64)
        self._xflow = True
        self._started = False
        if two:
            self._check_rx_channels()

    def _check_rx_channels(self) -> None:
        """Refuse channels the ADC core does not stream (a 1R1T radio has only voltage0/voltage1)."""
        rxadc = getattr(self._sdr, "_rxadc", None)
        try:
            have = sum(1 for k in range(2) if rxadc.find_channel(f"voltage{2 * k}") is not None)
        except Exception:  # noqa: BLE001 - cannot tell: let pyadi-iio say it at the first read
            return
        missing = [c for c in self.rx_channels if c >= have]
        if missing:
            self.close()
            if have == 1:
                raise UserError(f"{self.uri}: this PlutoSDR streams one RX channel, so there is no channel "
                                f"{missing[0]} (two channels need an AD9361-based radio in 2R2T mode)")
            raise UserError(f"{self.uri}: no RX channel {missing[0]} (this radio has {have})")

    # -- configuration ---------------------------------------------------------------------------
    def _set(self, name: str, value):
        try:
            setattr(self._sdr, name, value)
        except Exception as exc:  # ValueError (sample rate) or OSError from libiio
            raise UserError(f"{self.uri}: cannot set {name} = {value}: {_one_line(exc)}") from None

    def configure(self) -> None:
        self._resolve_tx_gain()    # None: −10 dB (an attenuation of 10 dB)
        s = self.settings
        self._set("sample_rate", int(s.sample_rate_hz))
        self._set("rx_rf_bandwidth", int(s.bandwidth_hz))
        self._set("tx_rf_bandwidth", int(s.bandwidth_hz))
        self._set("rx_lo", int(s.center_freq_hz))
        self._set("tx_lo", int(s.center_freq_hz))
        for ch in self.rx_channels:
            self._set(f"gain_control_mode_chan{ch}", "slow_attack" if s.agc else "manual")
            if not s.agc:
                self._set(f"rx_hardwaregain_chan{ch}", float(s.rx_gain_db))
        self._set("tx_hardwaregain_chan0", float(s.tx_gain_db))
        self._set("rx_enabled_channels", list(self.rx_channels))
        self._set("tx_enabled_channels", [0])
        if getattr(self._sdr, "_rxbuf", None):
            self._sdr.rx_destroy_buffer()  # a new rx_buffer_size takes effect with a new buffer
        self._set("rx_buffer_size", int(s.buffer_size))
        if getattr(self._sdr, "_txbuf", None):
            self._sdr.tx_destroy_buffer()  # tx_cyclic_buffer may change only without a buffer
        self._set("tx_cyclic_buffer", False)

    def start(self) -> None:
        for dev in (getattr(self._sdr, "_rxadc", None), getattr(self._sdr, "_txdac", None)):
            try:
                dev.reg_write(STATUS_REG, ADC_OVERFLOW | DAC_UNDERFLOW)  # clear stale flags
            except Exception:
                self._xflow = False
        self._started = True

    # -- streaming -------------------------------------------------------------------------------
    def _status(self, dev_name: str, bit: int) -> bool:
        if not self._xflow:
            return False
        try:
            dev = getattr(self._sdr, dev_name)
            val = dev.reg_read(STATUS_REG)
            if val & bit:
                dev.reg_write(STATUS_REG, val)
                return True
        except Exception:
            self._xflow = False
        return False

    def _stream_error(self, exc: BaseException, what: str) -> UserError:
        if isinstance(exc, OSError) and exc.errno == errno.EBUSY:
            return UserError(f"PlutoSDR '{self.uri}' is busy (another program holds its {what} buffer)")
        return UserError(f"{self.uri}: {what} failed: {_one_line(exc)}")

    def _read_chunk(self) -> Chunk | None:
        try:
            raw = self._sdr.rx()
        except OSError as exc:
            if exc.errno in (errno.ETIMEDOUT, errno.EAGAIN):
                self.counters["timeouts"] += 1
                return None
            raise self._stream_error(exc, "RX") from None
        except Exception as exc:
            raise self._stream_error(exc, "RX") from None
        overflow = self._status("_rxadc", ADC_OVERFLOW)
        if overflow:
            self.counters["overflows"] += 1
        # one array for one channel; a list of arrays (one per enabled channel) for several
        samples = (np.asarray(raw) * (1.0 / RX_FULL_SCALE)).astype(np.complex64)
        return Chunk(samples, overflow=overflow)

    def _tune(self, center_freq_hz: float) -> float:
        self._set("rx_lo", int(center_freq_hz))
        self._set("tx_lo", int(center_freq_hz))
        return float(self._sdr.rx_lo)

    def _push(self, block: np.ndarray) -> None:
        try:
            self._sdr.tx(block)
        except Exception as exc:
            raise self._stream_error(exc, "TX") from None
        if self._status("_txdac", DAC_UNDERFLOW):
            self.counters["underflows"] += 1

    def _write(self, samples: np.ndarray) -> None:
        n = self.settings.buffer_size
        x = clip_to_int16(samples, TX_SCALE, self.counters)
        if self._tx_rest.size:
            x = np.concatenate([self._tx_rest, x])
        full = (x.size // n) * n
        for k in range(0, full, n):
            self._push(x[k:k + n])
        self._tx_rest = x[full:].copy()

    def flush(self) -> None:
        if self._tx_rest.size and not self._closed:
            block = np.zeros(self.settings.buffer_size, np.complex64)
            block[:self._tx_rest.size] = self._tx_rest
            self._tx_rest = np.zeros(0, np.complex64)
            self._push(block)

    def _close(self) -> None:
        sdr, self._sdr = self._sdr, None
        if sdr is None:
            return
        # destroy buffers while the context is alive (pyadi-iio notes a libiio 0.x crash otherwise)
        for name in ("rx_destroy_buffer", "tx_destroy_buffer"):
            try:
                getattr(sdr, name)()
            except Exception:
                pass
        del sdr

    # -- gains while streaming ------------------------------------------------------------------
    def _apply_gains(self, rx: bool, tx: bool) -> None:
        s = self.settings
        if rx and not s.agc:
            for ch in self.rx_channels:
                self._set(f"rx_hardwaregain_chan{ch}", float(s.rx_gain_db))
        if tx:
            if s.tx_gain_db > 0:
                raise UserError(f"{self.uri}: Pluto TX gain is an attenuation and must be <= 0 dB, got {s.tx_gain_db}")
            self._set("tx_hardwaregain_chan0", float(s.tx_gain_db))

    def gains(self) -> dict:
        try:
            return {"rx_gain_db": float(getattr(self._sdr, f"rx_hardwaregain_chan{self.rx_channels[0]}")),
                    "tx_gain_db": float(self._sdr.tx_hardwaregain_chan0)}
        except Exception:  # noqa: BLE001
            return super().gains()

    def gain_range(self, direction: str) -> tuple[float, float, float] | None:
        """From the driver's ``hardwaregain_available`` (``[min step max]``), else the AD936x tables."""
        try:
            chan = self._phy().find_channel("voltage0", direction == "tx")
            lo, step, hi = (float(v) for v in chan.attrs["hardwaregain_available"].value.strip("[] ").split())
            return lo, hi, step
        except Exception:  # noqa: BLE001 - fall back to the part's tables
            from radio.devices.hardware import PLUTO

            freq = self.settings.center_freq_hz
            r = PLUTO.gain_range(direction, freq)
            return r.minimum, r.maximum, r.step

    # -- identity, temperature, reference correction ---------------------------------------------
    def serial(self) -> str:
        attrs = dict(getattr(getattr(self._sdr, "ctx", None), "attrs", {}) or {})
        return str(attrs.get("hw_serial") or self.uri.device_text)

    def _phy(self):
        phy = getattr(self._sdr, "_ctrl", None)
        if phy is None:
            raise UserError(f"{self.uri}: the ad9361-phy device is not reachable through pyadi-iio")
        return phy

    def temperature_c(self) -> float | None:
        try:
            chan = self._phy().find_channel("temp0", False)
            return None if chan is None else float(chan.attrs["input"].value) / 1000.0
        except Exception:  # noqa: BLE001 - no sensor: no reading
            return None

    def xo_correction_hz(self) -> float | None:
        try:
            return float(self._phy().attrs["xo_correction"].value)
        except Exception:  # noqa: BLE001 - an older driver without the attribute
            return None

    def set_xo_correction_hz(self, hz: float) -> float:
        value = int(round(float(hz)))
        try:
            self._phy().attrs["xo_correction"].value = str(value)
        except UserError:
            raise
        except Exception as exc:
            raise UserError(f"{self.uri}: cannot set xo_correction = {value}: {_one_line(exc)}") from None
        got = self.xo_correction_hz()
        return float(value if got is None else got)

    # -- metadata --------------------------------------------------------------------------------
    def describe(self) -> dict:
        d = self._common_description()
        sdr = self._sdr
        if sdr is None:
            return d
        d.update(self._identity_description())
        attrs = dict(getattr(getattr(sdr, "ctx", None), "attrs", {}) or {})
        d["hw"] = str(attrs.get("hw_model", "ADALM-Pluto"))
        if "fw_version" in attrs:
            d["fw_version"] = str(attrs["fw_version"])
        try:
            d.update(
                sample_rate_hz=float(sdr.sample_rate),
                center_freq_hz=float(sdr.rx_lo),
                tx_center_freq_hz=float(sdr.tx_lo),
                rf_bandwidth_hz=float(sdr.rx_rf_bandwidth),
                gain_mode=str(sdr.gain_control_mode_chan0),
                rx_gain_db=float(getattr(sdr, f"rx_hardwaregain_chan{self.rx_channels[0]}")),
                tx_gain_db=float(sdr.tx_hardwaregain_chan0),
            )
            if len(self.rx_channels) > 1:
                d["rx_gain_db_per_channel"] = [float(getattr(sdr, f"rx_hardwaregain_chan{c}"))
                                               for c in self.rx_channels]
        except Exception:
            pass  # read-backs are informative only
        d["tx_scale"] = TX_SCALE
        d["rx_full_scale"] = RX_FULL_SCALE
        d["xflow_detection"] = self._xflow
        return d
