"""GNU Radio blocks that stream to and from a :class:`radio.devices.Device` (Pluto, SoapySDR, a
recording, or the fakes).

The caller owns the device: open it with ``radio.devices.open_device`` (configured and
started), hand it to the blocks, and close it after the flowgraph has stopped. One device may
feed a ``DeviceSink`` and a ``DeviceSource`` at once. As with every Python block in GNU Radio
3.10, keep a Python reference to the block while the flowgraph runs (``tb.connect(DeviceSource(d),
…)`` with no reference left crashes when the wrapper is garbage-collected).

``DeviceSource`` marks every discontinuity with a stream tag on the first sample after it, so a
synchroniser can drop the frames it cuts:

* ``rx_overflow`` — samples were lost (value: the number lost, ``pmt.from_long``; 0 if unknown);
* ``rx_drop`` — samples were lost and the device's timestamps say how many (value: that number).

Both keys may appear on the same sample. ``DeviceSource`` ends the stream (``WORK_DONE``) when a
finite device (a recording) has nothing left.
"""
from __future__ import annotations

import numpy as np
import pmt
from gnuradio import gr

TAG_OVERFLOW = "rx_overflow"
TAG_DROP = "rx_drop"


class DeviceSource(gr.sync_block):
    """0 inputs, 1 complex output: samples pulled from ``device.rx()``, tagged at discontinuities."""

    def __init__(self, device, chunk: int | None = None):
        gr.sync_block.__init__(self, name="DeviceSource", in_sig=None, out_sig=[np.complex64])
        self.device = device
        self.chunk = int(chunk or device.settings.buffer_size)
        self.overflows = 0   # discontinuities tagged rx_overflow
        self.drops = 0       # discontinuities tagged rx_drop
        self._carry = None   # a discontinuity seen on an empty block, to tag on the next sample
        self._key_overflow = pmt.intern(TAG_OVERFLOW)
        self._key_drop = pmt.intern(TAG_DROP)
        self._srcid = pmt.intern("DeviceSource")

    def _tag(self, overflow: bool, dropped: int) -> None:
        offset = self.nitems_written(0)
        if overflow:
            self.overflows += 1
            self.add_item_tag(0, offset, self._key_overflow, pmt.from_long(int(dropped)), self._srcid)
        if dropped > 0:
            self.drops += 1
            self.add_item_tag(0, offset, self._key_drop, pmt.from_long(int(dropped)), self._srcid)

    def work(self, input_items, output_items):
        out = output_items[0]
        block = self.device.rx(min(len(out), self.chunk))
        n = block.samples.size
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
        out[:n] = block.samples
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
