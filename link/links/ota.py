"""The over-the-air link: the simulated link's chain with radios instead of the simulated channel.

    Alice → ZMQ → TxChain → DeviceSink(--tx)      DeviceSource(--bob) → RxChain → Bob's chain
                                                  DeviceSource(--eve) → RxChain → Eve's chain

Devices are opened (configured, started) before anything else runs: an absent or busy radio is a
one-line ``UserError`` naming its URI, raised before any receiver process starts or any result is
written. One URI names one device: ``--tx`` and ``--bob`` may be the same radio (TX looped to RX),
and ``--eve`` the same as ``--bob`` (then both chains hear the same samples). A ``#N`` suffix names
an RX channel (:mod:`radio.devices.uri`): ``--bob pluto:ip:H --eve pluto:ip:H#1`` opens that radio
once, streams its channels 0 and 1 together and gives Eve channel 1 — refused in one line when the
radio has one RX channel or no such channel. ``--tx`` always transmits on channel 0.

Stop condition: once the transmitter has been handed the whole stream it is flushed (a partial
hardware buffer is zero-padded and sent); the receivers then keep going until each has consumed
``tx_len × RX_MARGIN`` more samples plus a few buffers (what a device or GNU Radio may still hold),
or ``timeout_s`` passes.

The CI fakes (``fake-pluto``, ``fake-soapy``) share a simulated air: whatever the TX fake sends
reaches every fake receiver, each through its own impairments (``FAKE_AIR_DEFAULTS``, overridden by
the URI's options, e.g. ``fake-pluto:noise_std=1e-4``). A fake offers two RX channels with their own
paths (``rx1_noise_std=2e-3`` makes channel 1 noisier): ``--bob fake-pluto:rx1_noise_std=2e-3 --eve
fake-pluto:rx1_noise_std=2e-3#1``. Fakes deliver samples as fast as they are asked, so the
flowgraph paces them at their sample rate.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np

from jscec.errors import UserError
from link.links import Carried, Link, mean_snr, timed
from link.links.flowgraph import run_flowgraph
from link.sender import IDLE_TAIL_SYMBOLS, SenderThread, whole_buffers

#: What the fakes' air does unless a URI says otherwise: -30 dB path loss and a little noise
#: (with the default gains and --tx-level, about 35 dB SNR at the ADC of a fake Pluto).
FAKE_AIR_DEFAULTS = {"path_gain_db": "-30", "noise_std": "2e-5"}
#: RX keeps going for this fraction of the TX stream after the TX flush (plus RX_EXTRA_BUFFERS).
RX_MARGIN = 1.05
RX_EXTRA_BUFFERS = 2
GR_BUFFERING = 65536


@dataclass
class RadioOptions:
    """The radios of an over-the-air run (device URIs as in ``jscec ota --help``) and their settings."""

    tx: str = "pluto"
    bob: str = "pluto"
    eve: str | None = None
    freq: float = 2.4e9
    rate: float = 1e6
    bw: float | None = None
    tx_gain: float = -10.0
    rx_gain: float = 30.0
    agc: bool = False
    buffer: int = 32768
    tx_level: float = 0.25           # RMS amplitude of the TX samples (1.0 = the device's nominal level)

    def settings(self):
        """The devices' :class:`radio.devices.RadioSettings`; refuses a ``tx_level`` outside (0, 1]."""
        from radio.devices import RadioSettings

        if not 0 < self.tx_level <= 1:
            raise UserError(f"--tx-level must be in (0, 1], got {self.tx_level}")
        return RadioSettings(center_freq_hz=self.freq, sample_rate_hz=self.rate, rf_bandwidth_hz=self.bw,
                             tx_gain_db=self.tx_gain, rx_gain_db=self.rx_gain, agc=self.agc, buffer_size=self.buffer)

    def uris(self) -> dict[str, str | None]:
        return {"tx": self.tx, "bob": self.bob, "eve": self.eve}


def _broadcast_air_class():
    from radio.devices.fakes import FakeAir

    class BroadcastAir(FakeAir):
        """A FakeAir whose transmissions also reach the other fakes' airs (one shared ether)."""

        def __init__(self, impairments):
            super().__init__(impairments)
            self.ether: list[FakeAir] = [self]

        def transmit(self, samples):
            for air in self.ether:
                FakeAir.transmit(air, samples)

        def set_cyclic(self, samples):
            for air in self.ether:
                FakeAir.set_cyclic(air, samples)

    return BroadcastAir


def role_channels(uris: dict[str, str | None]) -> dict[str, int]:
    """Role → the RX channel its URI names (``#N``; 0 without a suffix)."""
    from radio.devices import parse_uri

    return {role: parse_uri(u).rx_channel for role, u in uris.items() if u}


def open_devices(uris: dict[str, str | None], settings, stack: contextlib.ExitStack) -> dict[str, object]:
    """Open every distinct device once (role → device); fakes share one ether. Closed by ``stack``.

    URIs naming channels of one device (equal but for ``#N``) share it, and it streams every channel
    the receiving roles name (see :func:`role_channels`); the ``tx`` role must use channel 0.
    """
    from radio.devices import open_device, parse_uri
    from radio.devices.fakes import AirConditions

    parsed = {role: parse_uri(u) for role, u in uris.items() if u}
    if "tx" in parsed and parsed["tx"].rx_channel != 0:
        raise UserError(f"'{parsed['tx']}': transmission uses channel 0 (drop the #{parsed['tx'].channel})")
    groups: dict[str, dict] = {}   # device URI text → {"uri", "channels"}
    for role, u in parsed.items():
        g = groups.setdefault(u.device_text, {"uri": u.device(), "channels": set()})
        if role != "tx":
            g["channels"].add(u.rx_channel)
    by_text, ether = {}, []
    BroadcastAir = _broadcast_air_class()
    for text, g in groups.items():
        u, air = g["uri"], None
        if u.kind.startswith("fake"):
            params = dict(FAKE_AIR_DEFAULTS)
            params.update(u.params)
            air = BroadcastAir(AirConditions.from_params(params, text))
            ether.append(air)
        dev = open_device(u, settings, air=air, rx_channels=sorted(g["channels"]) or [0])
        stack.callback(dev.close)
        by_text[text] = dev
    for air in ether:
        air.ether = [air] + [a for a in ether if a is not air]
    return {role: by_text[u.device_text] for role, u in parsed.items()}


def prime_rx(devices: dict[str, object]) -> None:
    """Read once from every receiver, so a busy radio is refused now rather than inside the flowgraph."""
    seen = set()
    for role, dev in devices.items():
        if role != "tx" and id(dev) not in seen:
            seen.add(id(dev))
            dev.rx(1)


def prime_tx(device) -> None:
    """Send one buffer of silence: creates the TX buffer (refused if busy) just before the stream, so the
    DAC does not run dry (underflow) between this and the stream's first buffer."""
    device.tx(np.zeros(device.settings.buffer_size, np.complex64))


def send_and_listen(tb, tx_device, address: str, stream: np.ndarray, sps: int, buffer_size: int,
                    timeout_s: float, log=print) -> tuple[bool, float, int]:
    """Transmit ``stream`` through the radio flowgraph ``tb`` and keep its receivers listening.

    The stream is padded to whole TX buffers and followed by an idle tail (see
    :class:`link.sender.SenderThread`); once the TX device has been handed all of it, it is flushed
    and the receivers listen ``RX_MARGIN`` of it (plus ``RX_EXTRA_BUFFERS`` buffers) longer. Returns
    (drained: the receivers heard it all, seconds, samples transmitted).
    """
    stream = whole_buffers(stream, sps, buffer_size)
    tail = np.zeros(IDLE_TAIL_SYMBOLS, np.complex64)
    sender = SenderThread(address, stream, tail=tail)
    tx_len = int((stream.size + tail.size) * sps)
    extra = int(tx_len * RX_MARGIN) + RX_EXTRA_BUFFERS * buffer_size + GR_BUFFERING
    state = {"flushed_at": None}

    def on_poll(now):
        if state["flushed_at"] is None and tb.tx_sink.items >= tx_len:
            tx_device.flush()
            state["flushed_at"] = dict(now)

    def done(now):
        at = state["flushed_at"]
        return at is not None and all(now[r] >= at[r] + extra for r in now)

    prime_tx(tx_device)
    t0 = time.monotonic()
    drained = run_flowgraph(tb, tb.samples_consumed, done, timeout_s=timeout_s, stall_s=30.0, desc="ota",
                            on_start=sender.start, on_poll=on_poll)
    seconds = time.monotonic() - t0
    sender.close()
    tb.raise_device_error("device stream")
    if not drained:
        log(f"warning: stopped before the receivers had the whole stream ({tb.samples_consumed()})")
    return drained, seconds, tx_len


def counters(devices: dict[str, object], tb=None) -> dict:
    """Per URI: its roles, the device's counters and what DeviceSource tagged."""
    out = {}
    tagged = tb.source_counters() if tb is not None else {}
    for role, dev in devices.items():
        entry = out.setdefault(str(dev.uri), {"roles": [], "counters": dict(dev.counters), "device": dev.kind})
        entry["roles"].append(role)
        if id(dev) in tagged:
            entry.update(tagged[id(dev)])
    return out


class OtaLink(Link):
    """Radios (or the CI fakes): TX device → air → Bob's (and Eve's) RX device."""

    kind = "ota"

    def __init__(self, opts: RadioOptions = RadioOptions()):
        self.opts = opts
        self.devices: dict[str, object] = {}

    def open(self, stack: contextlib.ExitStack) -> None:
        self.settings = self.opts.settings()
        self.devices = open_devices(self.opts.uris(), self.settings, stack)
        prime_rx(self.devices)

    def roles(self, wanted):
        return [r for r in wanted if r in self.devices]

    def build(self, outputs: dict, pulse, equalizer_taps: int = 0):
        from flowgraphs.device_link import DeviceLink
        from radio.transport import free_tcp_address

        self.tx_address = free_tcp_address()
        channel = role_channels({r: self.opts.uris()[r] for r in outputs})
        throttle = {id(d) for d in self.devices.values() if d.uri.kind.startswith("fake")}
        return DeviceLink({r: (self.devices[r], outputs[r], channel[r]) for r in outputs}, pulse=pulse,
                          tx_address=self.tx_address, tx_device=self.devices["tx"], tx_level=self.opts.tx_level,
                          equalizer_taps=equalizer_taps, throttle=throttle)

    def recording_device(self, tb) -> dict:
        return tb.branches["bob"]["device"].describe()

    def carry(self, tb, tx, timeout_s: float, log=print) -> Carried:
        drained, seconds, tx_len = send_and_listen(tb, self.devices["tx"], self.tx_address, tx.stream, tx.pulse.sps,
                                                   self.settings.buffer_size, timeout_s, log)
        return Carried(drained, seconds, fields={"samples_transmitted": tx_len})

    def radio_fields(self) -> dict:
        o = self.opts
        return {"tx": o.tx, "bob": o.bob, "eve": o.eve, "center_freq_hz": o.freq, "sample_rate_hz": o.rate,
                "rf_bandwidth_hz": self.settings.bandwidth_hz, "tx_gain_db": o.tx_gain, "rx_gain_db": o.rx_gain,
                "agc": o.agc, "buffer_size": o.buffer, "tx_level": o.tx_level}

    def device_fields(self, tb) -> dict:
        """Per URI: roles, counters, what DeviceSource tagged and the device's description."""
        described = {str(d.uri): d.describe() for d in {id(d): d for d in self.devices.values()}.values()}
        return {uri: dict(c, description=described[uri]) for uri, c in counters(self.devices, tb).items()}

    def report_fields(self, tb, carried: Carried) -> dict:
        logs = tb.frame_logs()
        return {"snr_b_db": mean_snr(logs["bob"].frames) if "bob" in logs else None,
                "snr_e_db": mean_snr(logs["eve"].frames) if "eve" in logs else None,
                "link": "ota", "snr_estimated": True, "radio": self.radio_fields(), "devices": self.device_fields(tb),
                "discontinuity_drops": {r: sum(1 for d in log.drops if d["reason"] == "discontinuity")
                                        for r, log in logs.items()},
                "samples_transmitted": carried.fields["samples_transmitted"],
                "samples_received": tb.samples_consumed(), "seconds": carried.seconds, "drained": carried.drained,
                "sync": tb.sync_stats()}
