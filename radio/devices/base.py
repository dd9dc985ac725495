"""The one interface every radio adapter implements, its settings and its receive blocks.

Conventions shared by all adapters:

* Samples cross this interface as ``complex64`` normalised to the converter's full scale: on
  receive, 1.0 is ADC full scale (Pluto: ±2048 raw counts; SoapySDR ``CF32``: 1.0); on transmit,
  an amplitude of 1.0 is the adapter's nominal level (Pluto: 2^14 DAC counts, i.e. 6 dB below
  full scale, as pyadi-iio's examples recommend; SoapySDR ``CF32``: 1.0). Values that would
  exceed the converter range are clipped and counted in ``counters['tx_clipped']``.
* ``rx(n)`` returns an :class:`RxBlock` of at most ``n`` *contiguous* samples — of every RX
  channel the device streams (``rx_channels``, from the URI's ``#N`` or ``open_device(...,
  rx_channels=[0, 1])``), sample-aligned: ``samples`` is ``(n,)`` for one channel and
  ``(channels, n)`` for several. A discontinuity
  (overflow, samples dropped) is reported only at the *start* of a block: an adapter that meets
  one mid-way returns what it has and flags the next block. A timeout returns an empty block.
* ``counters`` counts events since ``open``: ``overflows``, ``underflows``, ``timeouts``,
  ``drops`` (discontinuities with a known number of lost samples), ``dropped_samples``,
  ``stream_errors`` and ``tx_clipped`` (samples clipped on transmit).
* Opening, configuring or starting a device that is absent, busy or refuses a setting raises
  :class:`jscec.errors.UserError` with one line that names the URI.
* ``describe()`` gives a JSON-able dict for SigMF global metadata; it never holds secrets.
* ``retune(f)`` moves the RX and TX centre frequency while streaming and returns the frequency
  read back from the hardware; samples the device or its driver already buffered (and the LO's
  settling time) still belong to the old tuning.
* Identity and state for calibration profiles: ``serial()`` (what a profile is filed under),
  ``temperature_c()`` (None where the radio reports none), and the reference-oscillator correction:
  ``xo_correction_hz()`` / ``set_xo_correction_hz(hz)`` where the radio has its own (AD936x
  ``xo_correction``: the frequency the driver believes its reference runs at, which moves LO and
  sample clock together), else ``set_rx_frequency_correction(hz)``: a digital one, a phase-continuous
  rotation of every received sample by −hz (on the device's sample index, so it stays continuous
  across blocks and gaps).
"""
from __future__ import annotations

import abc
import dataclasses
from collections import deque
from dataclasses import dataclass

import numpy as np

from radio.devices.uri import DeviceUri
from jscec.errors import UserError

COUNTER_NAMES = ("overflows", "underflows", "timeouts", "drops", "dropped_samples",
                 "stream_errors", "tx_clipped")


@dataclass(frozen=True)
class RadioSettings:
    """What to ask of a radio. Gains are in dB and manual unless ``agc`` is set.

    ``tx_gain_db`` is passed to the device as its TX gain: on a Pluto it is the (non-positive)
    ``tx_hardwaregain``, 0 dB being full output; on SoapySDR devices it is the overall TX gain (a USRP
    B210 through UHD: 0 … 89.75 dB, full output at the top). None (the default) asks for the device's own
    default, 10 dB below its full output (:meth:`Device.default_tx_gain_db`: a Pluto's −10 dB, a SoapySDR
    device's TX gain range maximum − 10 dB, so 79.75 dB on a B210); the device resolves it in ``configure``.
    ``rf_bandwidth_hz`` defaults to the sample rate. ``buffer_size`` is samples per hardware
    buffer (Pluto ``rx_buffer_size`` and TX chunk; SoapySDR read/write size).
    """

    center_freq_hz: float
    sample_rate_hz: float
    rf_bandwidth_hz: float | None = None
    tx_gain_db: float | None = None
    rx_gain_db: float = 30.0
    agc: bool = False
    buffer_size: int = 32768
    channel: int = 0

    def __post_init__(self):
        if not self.center_freq_hz > 0:
            raise UserError(f"centre frequency must be positive, got {self.center_freq_hz} Hz")
        if not self.sample_rate_hz > 0:
            raise UserError(f"sample rate must be positive, got {self.sample_rate_hz} Hz")
        if self.rf_bandwidth_hz is not None and not self.rf_bandwidth_hz > 0:
            raise UserError(f"RF bandwidth must be positive, got {self.rf_bandwidth_hz} Hz")
        if int(self.buffer_size) != self.buffer_size or self.buffer_size < 16:
            raise UserError(f"buffer size must be an integer >= 16, got {self.buffer_size}")
        if int(self.channel) != self.channel or self.channel < 0:
            raise UserError(f"channel must be a non-negative integer, got {self.channel}")

    @property
    def bandwidth_hz(self) -> float:
        return float(self.rf_bandwidth_hz or self.sample_rate_hz)


@dataclass
class RxBlock:
    """Contiguous received samples and what happened just before the first of them.

    ``samples`` is ``(n,)`` complex64 for a device streaming one RX channel, ``(channels, n)`` for
    several (row i is ``device.rx_channels[i]``); ``num_samples`` is ``n`` either way.

    ``sample_index`` is the index of ``samples[0]`` on the device's sample clock (lost samples
    are counted when their number is known). ``overflow`` says samples were lost before
    ``samples[0]`` (number unknown unless ``dropped`` > 0); ``dropped`` is the number known lost.
    ``timestamp_ns`` is the device time of ``samples[0]`` when the device reports one.
    ``end_of_stream`` is set by finite sources (recordings) once nothing is left.
    """

    samples: np.ndarray
    sample_index: int
    overflow: bool = False
    dropped: int = 0
    timestamp_ns: int | None = None
    end_of_stream: bool = False

    @property
    def discontinuity(self) -> bool:
        return self.overflow or self.dropped > 0

    @property
    def num_samples(self) -> int:
        return int(self.samples.shape[-1])


@dataclass
class Chunk:
    """What an adapter's ``_read_chunk`` hands the base class: one hardware read."""

    samples: np.ndarray          # complex64, normalised: (n,), or (channels, n) for several channels
    overflow: bool = False       # samples lost before this chunk (count unknown unless dropped)
    dropped: int = 0             # samples known lost before this chunk
    timestamp_ns: int | None = None
    end_of_stream: bool = False   # an end-of-stream chunk carries no samples


@dataclass
class _Pending:
    chunk: Chunk
    offset: int = 0


class Device(abc.ABC):
    """A radio (or a recording) behind one small interface; see the module docstring.

    Lifecycle: ``open_device`` → ``configure()`` → ``start()`` → ``tx``/``rx`` … → ``close()``
    (also a context manager). Subclasses implement ``configure``, ``start``, ``_read_chunk``,
    ``_write``, ``_close`` and ``describe``; this class does the block bookkeeping.
    """

    kind = "device"
    can_tx = True

    def __init__(self, uri: DeviceUri, settings: RadioSettings, rx_channels=None):
        self.uri = uri
        self.settings = settings
        if rx_channels is None:
            rx_channels = (settings.channel if uri.channel is None else uri.channel,)
        chans = tuple(sorted({int(c) for c in rx_channels}))
        if not chans or chans[0] < 0:
            raise UserError(f"{uri}: RX channels must be non-negative integers, got {list(rx_channels)}")
        self.rx_channels = chans
        self.counters = {name: 0 for name in COUNTER_NAMES}
        self._rx_correction_hz = 0.0
        self._next_index = 0
        self._pending: deque[_Pending] = deque()
        self._closed = False

    # -- what adapters implement -------------------------------------------------------------
    @abc.abstractmethod
    def configure(self) -> None:
        """Apply ``self.settings`` to the hardware and read them back."""

    @abc.abstractmethod
    def start(self) -> None:
        """Create/activate the streams."""

    @abc.abstractmethod
    def _read_chunk(self) -> Chunk | None:
        """One hardware read, or None on a timeout (count it in ``counters``)."""

    def _write(self, samples: np.ndarray) -> None:
        raise UserError(f"{self.uri}: this device cannot transmit")

    def _close(self) -> None:
        """Release the hardware."""

    @abc.abstractmethod
    def describe(self) -> dict:
        """Device, hardware, gains, frequency and rate as a JSON-able dict (no secrets)."""

    #: How far below its full output a device transmits unless told otherwise (``tx_gain_db=None``), dB.
    DEFAULT_TX_BACKOFF_DB = 10.0

    def default_tx_gain_db(self) -> float:
        """The TX gain a device gets when ``settings.tx_gain_db`` is None: 10 dB below its full output
        (adapters whose gain scale differs override it)."""
        return -self.DEFAULT_TX_BACKOFF_DB

    def _resolve_tx_gain(self) -> None:
        """Settle ``settings.tx_gain_db`` (None: :meth:`default_tx_gain_db`); adapters call it first in
        ``configure``."""
        if self.settings.tx_gain_db is None:
            self.settings = dataclasses.replace(self.settings, tx_gain_db=float(self.default_tx_gain_db()))

    # -- the interface -----------------------------------------------------------------------
    def tx(self, samples) -> None:
        """Transmit ``samples`` (1-D complex, nominal amplitude 1.0) as a continuous stream."""
        self._check_open()
        x = np.asarray(samples)
        if x.ndim != 1:
            raise ValueError(f"tx() takes a 1-D array of samples, got shape {x.shape}")
        if x.size:
            self._write(x.astype(np.complex64, copy=False))

    def flush(self) -> None:
        """Push out anything held back to fill a hardware buffer (zero-padded)."""

    def retune(self, center_freq_hz: float) -> float:
        """Move RX and TX to ``center_freq_hz`` while streaming; return the frequency read back."""
        self._check_open()
        if not center_freq_hz > 0:
            raise UserError(f"{self.uri}: centre frequency must be positive, got {center_freq_hz} Hz")
        actual = self._tune(float(center_freq_hz))
        self.settings = dataclasses.replace(self.settings, center_freq_hz=float(center_freq_hz))
        return float(actual)

    def _tune(self, center_freq_hz: float) -> float:
        raise UserError(f"{self.uri}: this device cannot be retuned")

    # -- gains while streaming ------------------------------------------------------------------------
    def set_gains(self, rx_gain_db: float | None = None, tx_gain_db: float | None = None) -> dict:
        """Change the manual RX gain (every streamed channel) and/or the TX gain of a running device;
        returns the gains read back (``rx_gain_db``, ``tx_gain_db``). Samples already buffered keep the old
        gains: discard a few buffers after a change."""
        self._check_open()
        changes = {}
        if rx_gain_db is not None:
            changes["rx_gain_db"] = float(rx_gain_db)
        if tx_gain_db is not None:
            changes["tx_gain_db"] = float(tx_gain_db)
        if changes:
            self.settings = dataclasses.replace(self.settings, **changes)
            self._apply_gains(rx_gain_db is not None, tx_gain_db is not None)
        return self.gains()

    def _apply_gains(self, rx: bool, tx: bool) -> None:
        raise UserError(f"{self.uri}: this device has no gains to change")

    def gains(self) -> dict:
        """The RX (first streamed channel) and TX gains, read back where the device allows."""
        tx = self.settings.tx_gain_db
        return {"rx_gain_db": float(self.settings.rx_gain_db), "tx_gain_db": None if tx is None else float(tx)}

    def gain_range(self, direction: str) -> tuple[float, float, float] | None:
        """(minimum, maximum, step) of the ``"rx"`` or ``"tx"`` gain at the current frequency, or None."""
        return None

    # -- identity, temperature, oscillator correction ---------------------------------------------
    def serial(self) -> str:
        """The device's serial number (what its calibration profile is filed under)."""
        return self.uri.device_text

    def temperature_c(self) -> float | None:
        """The radio's own temperature reading in °C, or None where it reports none."""
        return None

    def xo_correction_hz(self) -> float | None:
        """The reference frequency the driver assumes (AD936x ``xo_correction``), or None: no native correction."""
        return None

    def set_xo_correction_hz(self, hz: float) -> float:
        """Set the native reference correction; returns the value read back."""
        raise UserError(f"{self.uri}: this radio has no reference-oscillator correction of its own")

    def set_rx_frequency_correction(self, hz: float) -> None:
        """Digital carrier correction: rotate every received sample by −``hz`` (phase continuous)."""
        self._rx_correction_hz = float(hz)

    @property
    def rx_frequency_correction_hz(self) -> float:
        return self._rx_correction_hz

    def _correct(self, samples: np.ndarray, first_index: int) -> np.ndarray:
        f = self._rx_correction_hz / float(self.settings.sample_rate_hz)
        if not f or samples.shape[-1] == 0:
            return samples
        start = (f * float(first_index)) % 1.0 if abs(first_index) < 2 ** 52 else 0.0
        ph = np.exp(-2j * np.pi * (start + f * np.arange(samples.shape[-1]))).astype(np.complex64)
        return (samples * ph).astype(np.complex64, copy=False)

    def _empty(self) -> np.ndarray:
        n = len(self.rx_channels)
        return np.zeros((n, 0) if n > 1 else 0, np.complex64)

    def rx(self, n: int | None = None) -> RxBlock:
        """Receive at most ``n`` contiguous samples (default: one buffer); see RxBlock."""
        self._check_open()
        n = int(n or self.settings.buffer_size)
        if n <= 0:
            raise ValueError("rx(n) needs n > 0")
        parts, have = [], 0
        head = None  # (overflow, dropped, timestamp_ns, sample_index) of the block's first sample
        while have < n:
            if not self._pending:
                chunk = self._read_chunk()
                if chunk is None:
                    break  # timeout: return what we have (maybe nothing)
                self._pending.append(_Pending(chunk))
            p = self._pending[0]
            c, fresh = p.chunk, p.offset == 0
            if fresh and have and (c.overflow or c.dropped or c.end_of_stream):  # EOS: empty
                break  # a gap or the end belongs to the next block
            if head is None:
                if fresh:
                    self._next_index += c.dropped
                ts = None if c.timestamp_ns is None else \
                    c.timestamp_ns + int(round(p.offset * 1e9 / self.settings.sample_rate_hz))
                head = (fresh and c.overflow, c.dropped if fresh else 0, ts, self._next_index)
            size = c.samples.shape[-1]
            if c.end_of_stream and p.offset >= size:
                self._pending.popleft()
                return RxBlock(self._empty(), self._next_index, head[0], head[1], None, end_of_stream=True)
            take = min(n - have, size - p.offset)
            parts.append(c.samples[..., p.offset:p.offset + take])
            have += take
            p.offset += take
            self._next_index += take
            if p.offset >= size and not c.end_of_stream:
                self._pending.popleft()
        if len(parts) == 1:
            samples = np.array(parts[0], dtype=np.complex64)  # own copy: chunks may be reused
        elif parts:
            samples = np.concatenate(parts, axis=-1).astype(np.complex64, copy=False)
        else:
            samples = self._empty()
        if head is None:
            return RxBlock(samples, self._next_index)
        return RxBlock(self._correct(samples, head[3]), head[3], head[0], head[1], head[2])

    def close(self) -> None:
        """Flush, release the hardware; safe to call twice."""
        if self._closed:
            return
        try:
            if self.can_tx:
                try:
                    self.flush()
                except UserError:
                    pass
        finally:
            self._closed = True
            self._close()

    def _check_open(self):
        if self._closed:
            raise UserError(f"{self.uri}: device already closed")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- helpers for adapters ----------------------------------------------------------------
    def _common_description(self) -> dict:
        s = self.settings
        return {
            "device": self.kind,
            "uri": str(self.uri),
            "center_freq_hz": float(s.center_freq_hz),
            "sample_rate_hz": float(s.sample_rate_hz),
            "rf_bandwidth_hz": s.bandwidth_hz,
            "tx_gain_db": None if s.tx_gain_db is None else float(s.tx_gain_db),
            "rx_gain_db": float(s.rx_gain_db),
            "gain_mode": "agc" if s.agc else "manual",
            "buffer_size": int(s.buffer_size),
            "channel": int(s.channel),
            "rx_channels": list(self.rx_channels),
        }

    def _identity_description(self) -> dict:
        """Serial, temperature and oscillator corrections (read-backs; informative only)."""
        d = {}
        for key, read in (("serial", self.serial), ("temperature_c", self.temperature_c),
                          ("xo_correction_hz", self.xo_correction_hz)):
            try:
                d[key] = read()
            except Exception:  # noqa: BLE001 - a read-back never fails a run
                d[key] = None
        d["rx_frequency_correction_hz"] = self._rx_correction_hz
        return d


def clip_to_int16(x: np.ndarray, scale: float, counters: dict) -> np.ndarray:
    """Scale complex ``x`` by ``scale``, clip I and Q to int16 and count the clipped samples."""
    limit = 32767.0
    y = x.astype(np.complex64) * np.float32(scale)
    over = (np.abs(y.real) > limit) | (np.abs(y.imag) > limit)
    n_over = int(np.count_nonzero(over))
    if n_over:
        counters["tx_clipped"] += n_over
        y = np.clip(y.real, -limit, limit) + 1j * np.clip(y.imag, -limit, limit)
    return np.round(y).astype(np.complex64)
