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

**Calibration profiles** (``jscec calibrate``, :mod:`calibration.profile`): once the radios are open,
every receiver is put on the transmitter's clock where profiles join the two
(:mod:`calibration.correct`: the AD936x's own ``xo_correction``, else a digital rotation), with a warning
for a missing, stale or other-temperature profile; ``snr_b`` sets the TX gain that Bob's profile curve
says gives that SNR per symbol, and the report puts the SNRs measured from the pilots beside it
(``snr_b_requested_db``, ``snr_b_predicted_db``, ``snr_b_db``, ``snr_e_db``).

The CI fakes (``fake-pluto``, ``fake-soapy``) share a simulated air: whatever the TX fake sends
reaches every fake receiver, each through its own impairments (``FAKE_AIR_DEFAULTS``, overridden by
the URI's options, e.g. ``fake-pluto:noise_std=1e-4``), and each with its own hardware
(:mod:`radio.devices.hardware`, unless ``bench=0`` or ``JSCEC_FAKE_BENCH=0``: an oscillator error,
DC, IQ imbalance, carrier leakage and a gain-dependent noise floor drawn from the URI's ``seed``). A fake offers two RX channels with their own
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
from link.links import Carried, Link, mean_snr
from link.links.flowgraph import run_flowgraph
from link.sender import IDLE_TAIL_SYMBOLS, SenderThread, spooled, whole_buffers

#: What the fakes' air does unless a URI says otherwise (:data:`radio.devices.fakes.SHARED_AIR_DEFAULTS`).
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
    tx_gain: float | None = None    # None: the TX radio's default, 10 dB below its full output
    rx_gain: float = 30.0
    agc: bool = False
    buffer: int = 32768
    tx_level: float = 0.25           # RMS amplitude of the TX samples (1.0 = the device's nominal level)
    snr_b: float | None = None       # Bob's SNR per symbol to set (dB): the TX gain from Bob's profile curve
    profiles: str | None = None      # profiles folder (default: calibration/profiles or $JSCEC_PROFILES)
    profile_files: tuple = ()        # profiles given explicitly (used before the folder's)
    xo_correction: bool = True       # apply the profiles' oscillator corrections
    profile_max_age_h: float = 24.0  # older profiles are warned about
    temperature_band_c: float = 5.0  # profiles from further than this from the device's temperature: warned
    sps: int = 4                     # samples per symbol of the link (for --snr-b; the pulse's when built)

    def settings(self):
        """The devices' :class:`radio.devices.RadioSettings`; refuses a ``tx_level`` outside (0, 1]."""
        from radio.devices import RadioSettings

        if not 0 < self.tx_level <= 1:
            raise UserError(f"--tx-level must be in (0, 1], got {self.tx_level}")
        return RadioSettings(center_freq_hz=self.freq, sample_rate_hz=self.rate, rf_bandwidth_hz=self.bw,
                             tx_gain_db=self.tx_gain, rx_gain_db=self.rx_gain, agc=self.agc, buffer_size=self.buffer)

    def uris(self) -> dict[str, str | None]:
        return {"tx": self.tx, "bob": self.bob, "eve": self.eve}


def role_channels(uris: dict[str, str | None]) -> dict[str, int]:
    """Role → the RX channel its URI names (``#N``; 0 without a suffix)."""
    from radio.devices import role_channels as channels

    return channels(uris)


def open_devices(uris: dict[str, str | None], settings, stack: contextlib.ExitStack) -> dict[str, object]:
    """Open every distinct device once (role → device); fakes share one ether. Closed by ``stack``
    (:func:`radio.devices.open_devices`)."""
    from radio.devices import open_devices as open_all

    return open_all(uris, settings, stack)


def apply_profiles(devices: dict, opts: RadioOptions, stack: contextlib.ExitStack, log=print) -> dict:
    """The calibration profiles' part of opening the radios: oscillator corrections of the receivers
    (:func:`calibration.correct.apply_xo_corrections`) and, with ``opts.snr_b``, the TX gain that Bob's profile
    says gives that SNR (refused in one line when no profile can say). Returns what was done."""
    from calibration.correct import apply_xo_corrections
    from calibration.profile import Profiles

    profiles = Profiles(opts.profiles, opts.profile_files)
    out = {"profiles_used": profiles, "xo_corrections": {}, "snr_plan": None,
           "profiles_folder": str(profiles.folder)}
    if "tx" not in devices:
        return out
    if opts.xo_correction:
        out["xo_corrections"] = apply_xo_corrections(devices, profiles, stack, log=log,
                                                     max_age_h=opts.profile_max_age_h,
                                                     band_c=opts.temperature_band_c)
    if opts.snr_b is not None:
        out["snr_plan"] = set_snr_b(devices, opts, profiles, opts.sps, log)
    return out


def set_snr_b(devices: dict, opts: RadioOptions, profiles, sps: int, log=print) -> dict:
    """Set the TX gain that gives Bob ``opts.snr_b`` dB per symbol, from his profile's SNR curve against
    this transmitter; Eve's expected SNR too where her profile has a curve."""
    from calibration.profile import plan_tx_gain, predict_snr
    from radio.devices import role_channels

    if "bob" not in devices:
        raise UserError("--snr-b needs Bob's radio (--bob)")
    tx, bob = devices["tx"], devices["bob"]
    if opts.agc:
        raise UserError("--snr-b needs manual RX gain (drop --agc)")
    doc = profiles.get(bob.serial())
    if doc is None:
        raise UserError(f"--snr-b: no calibration profile for Bob's radio {bob.serial()} ({bob.uri.device_text}) "
                        f"in {profiles.folder}: run jscec calibrate --tx {tx.uri.device_text} --rx {bob.uri.device_text}")
    channels = role_channels(opts.uris())
    plan = plan_tx_gain(doc, channels["bob"], tx.serial(), float(opts.snr_b), rx_gain_db=float(opts.rx_gain), sps=sps,
                        tx_level=float(opts.tx_level), sample_rate_hz=float(opts.rate),
                        gain_range=tx.gain_range("tx"))
    got = tx.set_gains(tx_gain_db=plan["tx_gain_db"])["tx_gain_db"]
    plan["tx_gain_db"] = float(got)
    for note in plan["notes"]:
        log(f"warning: {note}")
    eve = devices.get("eve")
    plan["eve_predicted_db"] = None
    if eve is not None:
        edoc = profiles.get(eve.serial())
        if edoc is not None:
            plan["eve_predicted_db"], _ = predict_snr(
                edoc, channels["eve"], tx.serial(), float(got), rx_gain_db=float(opts.rx_gain), sps=sps,
                tx_level=float(opts.tx_level), sample_rate_hz=float(opts.rate))
    plan["sps"] = int(sps)
    log(f"--snr-b {opts.snr_b:g} dB: TX gain {got:g} dB from {bob.serial()}'s profile (expects "
        f"{plan['predicted_db']:.1f} dB)")
    return plan


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


def send_and_listen(tb, tx_device, address: str, stream, sps: int, buffer_size: int,
                    timeout_s: float, log=print) -> tuple[bool, float, int]:
    """Transmit ``stream`` (an array, or a :class:`link.sender.SymbolStream` made as it is sent) through the
    radio flowgraph ``tb`` and keep its receivers listening.

    A stream made as it is sent is first made in full into a temporary file (:func:`link.sender.spooled`: a radio's
    DAC must never wait for Alice's encoder). The stream is padded to whole TX buffers and followed by an idle tail
    (see :class:`link.sender.SenderThread`); once the TX device has been handed all of it, it is flushed
    and the receivers listen ``RX_MARGIN`` of it (plus ``RX_EXTRA_BUFFERS`` buffers) longer. Returns
    (drained: the receivers heard it all, seconds, samples transmitted).
    """
    stream = whole_buffers(spooled(stream), sps, buffer_size)
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
        return sender.failed or (at is not None and all(now[r] >= at[r] + extra for r in now))

    prime_tx(tx_device)
    t0 = time.monotonic()
    try:
        drained = run_flowgraph(tb, tb.samples_consumed, done, timeout_s=timeout_s, stall_s=30.0, desc="ota",
                                on_start=sender.start, on_poll=on_poll)
    except BaseException:
        sender.abort()
        raise
    seconds = time.monotonic() - t0
    sender.close()      # the source's error, if it failed (the flowgraph stopped at once)
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
        self.calibration: dict = {}

    def open(self, stack: contextlib.ExitStack, log=print) -> None:
        self.settings = self.opts.settings()
        self.devices = open_devices(self.opts.uris(), self.settings, stack)
        self.calibration = apply_profiles(self.devices, self.opts, stack, log)
        prime_rx(self.devices)

    def roles(self, wanted):
        return [r for r in wanted if r in self.devices]

    def build(self, outputs: dict, pulse, equalizer_taps: int = 0):
        from flowgraphs.device_link import DeviceLink
        from radio.transport import free_tcp_address

        if self.opts.snr_b is not None and pulse.sps != self.opts.sps:   # plan again for this pulse
            self.calibration["snr_plan"] = set_snr_b(self.devices, self.opts, self.calibration["profiles_used"],
                                                     pulse.sps)

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
        tx_gain = self.devices["tx"].settings.tx_gain_db if "tx" in self.devices else o.tx_gain
        return {"tx": o.tx, "bob": o.bob, "eve": o.eve, "center_freq_hz": o.freq, "sample_rate_hz": o.rate,
                "rf_bandwidth_hz": self.settings.bandwidth_hz, "tx_gain_db": tx_gain, "rx_gain_db": o.rx_gain,
                "agc": o.agc, "buffer_size": o.buffer, "tx_level": o.tx_level, "snr_b_requested_db": o.snr_b,
                "xo_correction": o.xo_correction}

    def device_fields(self, tb) -> dict:
        """Per URI: roles, counters, what DeviceSource tagged and the device's description."""
        described = {str(d.uri): d.describe() for d in {id(d): d for d in self.devices.values()}.values()}
        return {uri: dict(c, description=described[uri]) for uri, c in counters(self.devices, tb).items()}

    def report_fields(self, tb, carried: Carried) -> dict:
        logs = tb.frame_logs()
        cal = {k: v for k, v in self.calibration.items() if k != "profiles_used"}
        plan = cal.get("snr_plan") or {}
        return {"snr_b_db": mean_snr(logs["bob"].frames) if "bob" in logs else None,
                "snr_e_db": mean_snr(logs["eve"].frames) if "eve" in logs else None,
                "snr_b_requested_db": plan.get("requested_db"), "snr_b_predicted_db": plan.get("predicted_db"),
                "snr_e_predicted_db": plan.get("eve_predicted_db"), "calibration": cal,
                "link": "ota", "snr_estimated": True, "radio": self.radio_fields(), "devices": self.device_fields(tb),
                "discontinuity_drops": {r: sum(1 for d in log.drops if d["reason"] == "discontinuity")
                                        for r, log in logs.items()},
                "samples_transmitted": carried.fields["samples_transmitted"],
                "samples_received": tb.samples_consumed(), "seconds": carried.seconds, "drained": carried.drained,
                "sync": tb.sync_stats()}
