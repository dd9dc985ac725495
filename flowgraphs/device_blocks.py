"""GNU Radio blocks that stream to and from a :class:`radio.devices.Device` (Pluto, SoapySDR, a
recording, or the fakes).

The caller owns the device: open it with ``radio.devices.open_device`` (configured and
started), hand it to the blocks, and close it after the flowgraph has stopped. One device may
feed a ``DeviceSink`` and a ``DeviceSource`` at once. As with every Python block in GNU Radio
3.10, keep a Python reference to the block while the flowgraph runs (``tb.connect(DeviceSource(d),
…)`` with no reference left crashes when the wrapper is garbage-collected).

``DeviceSource`` has one output per RX channel the device streams (``device.rx_channels``; output
i is channel ``rx_channels[i]``, all sample-aligned), and marks every discontinuity with a stream
tag on the first sample after it, on every output, so a synchroniser can drop the frames it cuts:

* ``rx_overflow`` — samples were lost (value: the number lost, ``pmt.from_long``; 0 if unknown);
* ``rx_drop`` — samples were lost and the device's timestamps say how many (value: that number);
* ``rx_freq`` — the device was retuned just before this sample (value: the centre frequency read
  back from the device, ``pmt.from_double``; the tag gr-uhd's ``usrp_source`` uses).

``rx_overflow`` and ``rx_drop`` may appear on the same sample. ``DeviceSource`` ends the stream
(``WORK_DONE``) when a finite device (a recording) has nothing left.

A :class:`RetuneSchedule` given to ``DeviceSource`` retunes during the run: the source stops each
read at the next boundary, calls the schedule (which retunes the device, and any others it was
given) and tags ``rx_freq``. :class:`RetuneTagger` tags the same boundaries on a stream with no
device behind it (the simulated link), so a recorder downstream sees one kind of event either way.
"""
from __future__ import annotations

import numpy as np
import pmt
from gnuradio import gr

TAG_OVERFLOW = "rx_overflow"
TAG_DROP = "rx_drop"
TAG_FREQ = "rx_freq"


class RetuneSchedule:
    """Centre frequencies visited in turn (cyclically), ``dwell`` samples each, from sample 0.

    The first frequency is the one the run starts on (the devices are opened there); at samples
    ``dwell``, ``2·dwell``, … ``retune(f)`` is called with the next one and returns the frequency in
    force (read back from the device; None or no ``retune``: ``f`` itself). ``events`` lists
    ``(sample, requested Hz, actual Hz)`` for every retune made, the start included.
    """

    def __init__(self, freqs, dwell: int, retune=None):
        self.freqs = [float(f) for f in freqs]
        self.dwell = int(dwell)
        if not self.freqs or self.dwell <= 0:
            raise ValueError("a retune schedule needs frequencies and a positive dwell")
        self.retune = retune
        self.events: list[tuple[int, float, float]] = [(0, self.freqs[0], self.freqs[0])]

    @property
    def next_at(self) -> int | None:
        """Sample index of the next retune (None: a single frequency never retunes)."""
        return len(self.events) * self.dwell if len(self.freqs) > 1 else None

    def fire(self) -> float:
        """Retune to the next frequency (at sample ``next_at``); return the frequency in force."""
        at = self.next_at
        f = self.freqs[len(self.events) % len(self.freqs)]
        actual = self.retune(f) if self.retune is not None else None
        actual = f if actual is None else float(actual)
        self.events.append((at, f, actual))
        return actual


class DeviceSource(gr.sync_block):
    """0 inputs, one complex output per RX channel: samples pulled from ``device.rx()``, tagged at
    discontinuities (and retunes, with a ``schedule``)."""

    def __init__(self, device, chunk: int | None = None, schedule: RetuneSchedule | None = None):
        self.n_out = len(getattr(device, "rx_channels", (0,)))
        gr.sync_block.__init__(self, name="DeviceSource", in_sig=None, out_sig=[np.complex64] * self.n_out)
        self.device = device
        self.chunk = int(chunk or device.settings.buffer_size)
        self.schedule = schedule
        self.overflows = 0   # discontinuities tagged rx_overflow
        self.drops = 0       # discontinuities tagged rx_drop
        self._carry = None   # a discontinuity seen on an empty block, to tag on the next sample
        self._freq = None    # a retune made, to tag on the next sample
        self._key_overflow = pmt.intern(TAG_OVERFLOW)
        self._key_drop = pmt.intern(TAG_DROP)
        self._key_freq = pmt.intern(TAG_FREQ)
        self._srcid = pmt.intern("DeviceSource")

    def _tag_all(self, key, value) -> None:
        offset = self.nitems_written(0)
        for port in range(self.n_out):
            self.add_item_tag(port, offset, key, value, self._srcid)

    def _tag(self, overflow: bool, dropped: int) -> None:
        if overflow:
            self.overflows += 1
            self._tag_all(self._key_overflow, pmt.from_long(int(dropped)))
        if dropped > 0:
            self.drops += 1
            self._tag_all(self._key_drop, pmt.from_long(int(dropped)))

    def _limit(self, n: int) -> int:
        """Retune if a boundary is due now; never read across the next one."""
        s = self.schedule
        if s is None or s.next_at is None:
            return n
        written = self.nitems_written(0)
        if written >= s.next_at:
            self._freq = s.fire()
        return max(1, min(n, s.next_at - written))

    def work(self, input_items, output_items):
        n_max = self._limit(min(len(output_items[0]), self.chunk))
        block = self.device.rx(n_max)
        n = block.num_samples
        overflow, dropped = block.overflow, block.dropped
        if self._carry is not None:
            overflow = overflow or self._carry[0]
            dropped += self._carry[1]
        if n == 0:
            if block.end_of_stream:
                return -1  # WORK_DONE
            self._carry = (overflow, dropped) if (overflow or dropped) else None
            return 0
        self._carry = None
        if overflow or dropped:
            self._tag(overflow, dropped)
        if self._freq is not None:
            self._tag_all(self._key_freq, pmt.from_double(self._freq))
            self._freq = None
        samples = block.samples.reshape(self.n_out, n)
        for port in range(self.n_out):
            output_items[port][:n] = samples[port]
        return n


class RetuneTagger(gr.sync_block):
    """1 complex in, 1 out, unchanged: tags ``rx_freq`` at a schedule's boundaries (no device)."""

    def __init__(self, schedule: RetuneSchedule):
        gr.sync_block.__init__(self, name="RetuneTagger", in_sig=[np.complex64], out_sig=[np.complex64])
        self.schedule = schedule
        self._key = pmt.intern(TAG_FREQ)
        self._srcid = pmt.intern("RetuneTagger")

    def work(self, input_items, output_items):
        x, out = input_items[0], output_items[0]
        n = len(x)
        start = self.nitems_written(0)
        s = self.schedule
        while s.next_at is not None and s.next_at < start + n:
            at = s.next_at
            self.add_item_tag(0, at, self._key, pmt.from_double(s.fire()), self._srcid)
        out[:n] = x
        return n


class DeviceSink(gr.sync_block):
    """1 complex input: samples handed to ``device.tx()`` in buffer-size chunks; ``flush()`` on stop."""

    def __init__(self, device, chunk: int | None = None):
        gr.sync_block.__init__(self, name="DeviceSink", in_sig=[np.complex64], out_sig=None)
        self.device = device
        self.chunk = int(chunk or device.settings.buffer_size)
        self.items = 0

    @property
    def underflows(self) -> int:
        return int(self.device.counters["underflows"])

    def work(self, input_items, output_items):
        x = input_items[0]
        for k in range(0, len(x), self.chunk):
            self.device.tx(x[k:k + self.chunk])
        self.items += len(x)
        return len(x)

    def stop(self):
        self.device.flush()
        return True
