"""The link's flowgraph with radios (or a recording) instead of the simulated channel, and two taps.

    zeromq.pull_source (frame symbols) → TxChain → ×tx_level → DeviceSink(tx device)
    DeviceSource(bob device) [→ throttle] → RxChain → push_msg_sink (Bob)  ─→ FrameLog
    DeviceSource(eve device) [→ throttle] → RxChain → push_msg_sink (Eve)  ─→ FrameLog

(when Eve's device is Bob's, one RxChain feeds both push_msg_sinks: the same samples synchronise
the same way; when Eve listens on another channel of Bob's radio — ``receivers['eve'] = (device,
address, 1)`` — the one DeviceSource has an output per channel and each feeds its own RxChain)

``jscec ota`` uses all of it, ``jscec replay`` only the RX half (a ``file:`` device), ``jscec
capture`` adds a :class:`RecordingSink` on the RX input. The ``throttle`` paces devices that deliver samples
as fast as asked (the CI fakes), as a radio's sample clock would. ``FrameLog`` keeps a small record
of every frame an RX chain publishes (start sample, length, counter, MER — no payload), which
capture turns into SigMF annotations and replay uses to say "no frames". ``RecordingSink`` starts a
new SigMF capture segment at every ``rx_freq`` tag (a retune, see ``flowgraphs.device_blocks``).

As with every Python block in GNU Radio 3.10, this flowgraph keeps references to its Python blocks.
"""
from __future__ import annotations

import json

import numpy as np
import pmt
from gnuradio import blocks, gr, zeromq

from flowgraphs.blocks import FRAMES_PORT
from flowgraphs.chains import RxChain, TxChain, widen_output_buffer
from flowgraphs.device_blocks import TAG_FREQ, DeviceSink, DeviceSource
from jscec.errors import UserError
from radio.frame import DEFAULT_FORMAT, VERSION_AUTH
from radio.pulse import PulseShape

ZMQ_TIMEOUT_MS = 100


#: The PDU fields FrameLog reads.
_LOG_KEYS = {name: pmt.intern(name) for name in ("start", "dropped", "header", "mer_db", "snr_db")}


class FrameLog(gr.basic_block):
    """Message sink: one small dict per frame PDU (``frames``) and per dropped detection (``drops``)."""

    def __init__(self, sps: int, fmt=DEFAULT_FORMAT):
        gr.basic_block.__init__(self, name="jscec_frame_log", in_sig=None, out_sig=None)
        self.sps = int(sps)
        self.fmt = fmt
        self.frames: list[dict] = []
        self.drops: list[dict] = []
        self.message_port_register_in(pmt.intern("in"))
        self.set_msg_handler(pmt.intern("in"), self._handle)

    def _handle(self, pdu):
        # dict_ref of the few fields needed: pmt.to_python of the whole meta costs 5× more.
        meta = pmt.car(pdu) if pmt.is_pair(pdu) else pmt.PMT_NIL
        if not pmt.is_dict(meta):
            return   # not one of ours: ignore
        ref = {name: pmt.dict_ref(meta, key, pmt.PMT_NIL) for name, key in _LOG_KEYS.items()}
        try:
            start = pmt.to_double(ref["start"])
            if pmt.is_symbol(ref["dropped"]):
                self.drops.append({"start": start, "reason": pmt.symbol_to_string(ref["dropped"])})
                return
            header = json.loads(pmt.symbol_to_string(ref["header"]))
            length = self.fmt.frame_len(int(header.get("payload_len", 0)), int(header.get("d_len", 0)),
                                        int(header.get("version", 1)) == VERSION_AUTH) * self.sps
            record = {"start": start, "length": int(length), "counter": int(header["counter"]),
                      "image": int(header.get("image_index", 0)), "chunk": int(header.get("chunk_index", 0)),
                      "mer_db": pmt.to_double(ref["mer_db"]), "snr_db": pmt.to_double(ref["snr_db"])}
        except (KeyError, TypeError, ValueError):   # pmt's wrong-type error is a ValueError
            return
        self.frames.append(record)


class RecordingSink(gr.sync_block):
    """Stream sink: every sample into ``writer.write`` (a :class:`radio.recording.RecordingWriter`);
    an ``rx_freq`` tag starts a new capture segment (``writer.retune``) at its sample."""

    def __init__(self, writer):
        gr.sync_block.__init__(self, name="jscec_recording_sink", in_sig=[np.complex64], out_sig=None)
        self.writer = writer
        self.error: BaseException | None = None
        self._key_freq = pmt.intern(TAG_FREQ)

    def work(self, input_items, output_items):
        x = input_items[0]
        start = self.nitems_read(0)
        try:
            pos = 0
            tags = sorted(self.get_tags_in_window(0, 0, len(x), self._key_freq), key=lambda t: t.offset)
            for tag in tags:
                at = int(tag.offset - start)
                self.writer.write(x[pos:at])
                self.writer.retune(pmt.to_double(tag.value))
                pos = at
            self.writer.write(x[pos:])
        except Exception as exc:  # noqa: BLE001 - reported by the runner
            self.error = exc
            return -1
        return len(x)


class SafeDeviceSource(DeviceSource):
    """A ``DeviceSource`` that ends its stream on a device error and keeps it for the runner."""

    error: BaseException | None = None

    def work(self, input_items, output_items):
        try:
            return super().work(input_items, output_items)
        except Exception as exc:  # noqa: BLE001 - re-raised by the runner, not inside the scheduler
            self.error = exc
            return -1


class SafeDeviceSink(DeviceSink):
    error: BaseException | None = None

    def work(self, input_items, output_items):
        try:
            return super().work(input_items, output_items)
        except Exception as exc:  # noqa: BLE001
            self.error = exc
            return -1

    def stop(self):
        try:
            return super().stop()
        except Exception as exc:  # noqa: BLE001
            self.error = self.error or exc
            return True


class DeviceLink(gr.top_block):
    """TX (optional) into ``tx_device``; one RX chain per role from ``receivers[role] = (device, address)``
    or ``(device, address, channel)``.

    ``address`` None: the chain still runs (its FrameLog records the frames) but publishes nowhere.
    ``channel``: which of the device's ``rx_channels`` the role listens to (default: its first).
    ``throttle``: a set of ``id(device)`` to pace at their sample rate.
    ``sync_process``: each RX chain finishes its frames in a worker process (two cores; same frames).
    """

    def __init__(self, receivers: dict, *, pulse: PulseShape = PulseShape(), tx_address: str | None = None,
                 tx_device=None, tx_level: float = 0.25, equalizer_taps: int = 0, throttle: set | None = None,
                 sync_process: bool = False):
        gr.top_block.__init__(self, "jscec_device_link", catch_exceptions=False)
        self.pulse = pulse
        self.tx_sink = None
        if tx_device is not None:
            self.source = zeromq.pull_source(gr.sizeof_gr_complex, 1, tx_address, ZMQ_TIMEOUT_MS, False, -1)
            self.tx = TxChain(pulse)
            self.level = blocks.multiply_const_cc(complex(tx_level))
            self.tx_sink = SafeDeviceSink(tx_device)
            self.connect(self.source, self.tx, self.level, self.tx_sink)
        self.sources: dict[tuple, object] = {}   # (id(device), channel) → (block, port) after the throttle
        self.device_sources: dict[int, SafeDeviceSource] = {}   # id(device) → its DeviceSource
        self._source_blocks = []
        self.branches = {}
        for role, spec in receivers.items():
            device, address = spec[0], spec[1]
            chans = tuple(getattr(device, "rx_channels", (0,)))
            channel = spec[2] if len(spec) > 2 and spec[2] is not None else chans[0]
            if channel not in chans:
                raise UserError(f"{device.uri}: RX channel {channel} is not streamed (streaming {list(chans)})")
            if id(device) not in self.device_sources:
                self._add_source(device, chans, throttle)
            key = (id(device), channel)
            shared = next((b for b in self.branches.values()
                           if b["device"] is device and b["channel"] == channel), None)
            if shared is not None:  # the same samples: one synchroniser feeds both chains
                rx, log = shared["rx"], shared["log"]
            else:
                rx = RxChain(pulse, equalizer_taps, sync_process)
                log = FrameLog(pulse.sps)
                self.connect(self.sources[key], rx)
                self.msg_connect(rx, FRAMES_PORT, log, "in")
            branch = {"device": device, "channel": channel, "rx": rx, "log": log}
            if address is not None:
                sink = zeromq.push_msg_sink(address, ZMQ_TIMEOUT_MS, True)
                self.msg_connect(rx, FRAMES_PORT, sink, "in")
                branch["sink"] = sink
            self.branches[role] = branch

    def _add_source(self, device, chans: tuple, throttle) -> None:
        src = SafeDeviceSource(device)
        if device.kind == "file":
            # Replays read as fast as they can. Not for radios or the fakes: a fake's RX clock would
            # run ahead of its TX by up to the buffer and read air the TX has not sent yet.
            widen_output_buffer(src)
        self._source_blocks.append(src)
        self.device_sources[id(device)] = src
        for port, channel in enumerate(chans):
            head = (src, port)
            if throttle and id(device) in throttle:   # one per channel: the source feeds them in step
                thr = blocks.throttle(gr.sizeof_gr_complex, device.settings.sample_rate_hz, True)
                self._source_blocks.append(thr)
                self.connect(head, thr)
                head = (thr, 0)
            self.sources[(id(device), channel)] = head

    def _head(self, role: str):
        b = self.branches[role]
        return self.sources[(id(b["device"]), b["channel"])]

    def add_recorder(self, role: str, writer) -> RecordingSink:
        """Record the samples entering ``role``'s RX chain (connect before ``start``)."""
        self.recorder = RecordingSink(writer)
        self.connect(self._head(role), self.recorder)
        return self.recorder

    def devices(self) -> list:
        """Every distinct device of the link: the receivers' (in role order), then the transmitter."""
        found = {id(b["device"]): b["device"] for b in self.branches.values()}
        if self.tx_sink is not None:
            found.setdefault(id(self.tx_sink.device), self.tx_sink.device)
        return list(found.values())

    def set_retune(self, role: str, schedule) -> None:
        """Retune during the run (before ``start``): ``role``'s DeviceSource follows ``schedule`` (a
        :class:`flowgraphs.device_blocks.RetuneSchedule` without ``retune``), moving every device of the
        link together and tagging ``rx_freq`` with the frequency ``role``'s device reads back. Every
        device visits every frequency once now, so one a radio refuses fails before the run."""
        first = self.branches[role]["device"]
        others = [d for d in self.devices() if d is not first]

        def retune(freq):
            for d in others:
                d.retune(freq)
            return first.retune(freq)

        for freq in [*schedule.freqs[1:], schedule.freqs[0]]:
            retune(freq)
        schedule.retune = retune
        self.device_sources[id(first)].schedule = schedule

    def close(self) -> None:
        """Release the RX chains' synchroniser workers, also when the flowgraph never ran."""
        for b in self.branches.values():
            b["rx"].sync.close()

    def samples_consumed(self) -> dict[str, int]:
        return {role: int(b["rx"].sync.samples_done()) for role, b in self.branches.items()}

    def frame_logs(self) -> dict[str, FrameLog]:
        return {role: b["log"] for role, b in self.branches.items()}

    def sync_stats(self) -> dict[str, dict]:
        return {role: b["rx"].sync.stats() for role, b in self.branches.items()}

    def device_errors(self) -> list[BaseException]:
        blocks_ = [b for b in self._source_blocks if isinstance(b, SafeDeviceSource)]
        if self.tx_sink is not None:
            blocks_.append(self.tx_sink)
        rec = getattr(self, "recorder", None)
        if rec is not None:
            blocks_.append(rec)
        blocks_ += [b["rx"].sync for b in self.branches.values()]   # a synchroniser worker's failure
        return [b.error for b in blocks_ if getattr(b, "error", None) is not None]

    def raise_device_error(self, what: str) -> None:
        """Re-raise the first device error of the run as a one-line ``UserError`` (``what`` failed: …)."""
        errors = self.device_errors()
        if errors:
            if isinstance(errors[0], UserError):
                raise errors[0]
            raise UserError(f"{what} failed: {str(errors[0]).splitlines()[0]}")

    def source_counters(self) -> dict[int, dict]:
        return {id(b.device): {"overflows_tagged": b.overflows, "drops_tagged": b.drops}
                for b in self._source_blocks if isinstance(b, SafeDeviceSource)}
