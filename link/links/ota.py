"""The over-the-air experiment: the loopback's chain with radios instead of the simulated channel.

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
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from link.sender import IDLE_TAIL_SYMBOLS, SenderThread, whole_buffers
from link.links.flowgraph import run_flowgraph
from link.apps.deepjscec import Receivers, link_report, prepare
from link.report import write_report
from jscec.errors import UserError
from radio.transport import free_tcp_address

#: What the fakes' air does unless a URI says otherwise: -30 dB path loss and a little noise
#: (with the default gains and --tx-level, about 35 dB SNR at the ADC of a fake Pluto).
FAKE_AIR_DEFAULTS = {"path_gain_db": "-30", "noise_std": "2e-5"}
#: RX keeps going for this fraction of the TX stream after the TX flush (plus RX_EXTRA_BUFFERS).
RX_MARGIN = 1.05
RX_EXTRA_BUFFERS = 2
GR_BUFFERING = 65536


@dataclass
class OtaOptions:
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
    model: str = "cifar10-lwe"
    mode: str | None = None
    data: str | None = None
    images: int = 3
    sps: int = 4
    rolloff: float = 0.25
    equalizer_taps: int = 0
    key: str | None = None
    seed: int = 0
    out_dir: str = "out/ota"
    subframes: int = 4
    timeout_s: float = 600.0
    threads: int = 1
    image_arrays: list | None = None


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
    from radio.devices.fakes import Impairments

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
            air = BroadcastAir(Impairments.from_params(params, text))
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


def mean_snr(frames: list[dict]):
    v = [f["snr_db"] for f in frames if np.isfinite(f["snr_db"])]
    return float(np.mean(v)) if v else None


def run_ota(opts: OtaOptions, log=print, *, recorder=None) -> dict:
    """Run the experiment over radios; returns the report (also ``<out_dir>/result.json``).

    ``recorder`` (``jscec capture --link ota``) is attached to Bob's RX input (see ``run_loopback``).
    """
    from radio.devices import RadioSettings

    settings = RadioSettings(center_freq_hz=opts.freq, sample_rate_hz=opts.rate, rf_bandwidth_hz=opts.bw,
                             tx_gain_db=opts.tx_gain, rx_gain_db=opts.rx_gain, agc=opts.agc,
                             buffer_size=opts.buffer)
    if not 0 < opts.tx_level <= 1:
        raise UserError(f"--tx-level must be in (0, 1], got {opts.tx_level}")
    out_dir = Path(opts.out_dir)
    existed = out_dir.exists()
    try:
        return _run_ota(opts, settings, out_dir, log, recorder)
    except UserError:
        if not existed:  # a refused run leaves nothing behind
            shutil.rmtree(out_dir, ignore_errors=True)
        raise


def _run_ota(opts: OtaOptions, settings, out_dir: Path, log, recorder) -> dict:
    from flowgraphs.device_link import DeviceLink

    with contextlib.ExitStack() as stack:
        devices = open_devices({"tx": opts.tx, "bob": opts.bob, "eve": opts.eve}, settings, stack)
        prime_rx(devices)
        setup = prepare(model=opts.model, mode=opts.mode, data=opts.data, images=opts.images, key=opts.key,
                        seed=opts.seed, out_dir=out_dir, subframes=opts.subframes, threads=opts.threads,
                        sps=opts.sps, rolloff=opts.rolloff, image_arrays=opts.image_arrays)
        pulse, keys = setup.pulse, setup.keys
        roles = [r for r in ("bob", "eve") if r in devices]
        channel = role_channels({"bob": opts.bob, "eve": opts.eve})
        addr = {r: free_tcp_address() for r in ["tx", *roles]}
        with Receivers({r: addr[r] for r in roles}, out_dir, setup.model_path, key_path=setup.key_path,
                       ref_path=setup.ref_path, k=keys.k, mode=keys.mode, threads=opts.threads) as rx:
            throttle = {id(d) for d in devices.values() if d.uri.kind.startswith("fake")}
            tb = DeviceLink({r: (devices[r], addr[r], channel[r]) for r in roles}, pulse=pulse, tx_address=addr["tx"],
                            tx_device=devices["tx"], tx_level=opts.tx_level, equalizer_taps=opts.equalizer_taps,
                            throttle=throttle)
            if recorder is not None:
                recorder.attach(setup, tb, None, tb.branches["bob"]["rx"])
            drained, seconds, tx_len = send_and_listen(tb, devices["tx"], addr["tx"], setup.stream, pulse.sps,
                                                       settings.buffer_size, opts.timeout_s, log)
            recording = recorder.finish(tb) if recorder is not None else None
            results = rx.finish(len(setup.frames), tb)
        descriptions = {str(d.uri): d.describe() for d in {id(d): d for d in devices.values()}.values()}
        device_counters = counters(devices, tb)
    logs = {r: tb.branches[r]["log"] for r in roles}
    sync = tb.sync_stats()
    report = link_report(
        results, snr_b_db=mean_snr(logs["bob"].frames),
        snr_e_db=mean_snr(logs["eve"].frames) if "eve" in logs else None,
        mode=keys.mode, params=setup.model.config.cipher_params, model=setup.model_name, images=setup.source,
        image_sizes=[list(im.shape) for im in setup.images], key_id=keys.key_id, pulse=pulse, seed=opts.seed,
        link="ota", snr_estimated=True,
        radio={"tx": opts.tx, "bob": opts.bob, "eve": opts.eve, "center_freq_hz": opts.freq,
               "sample_rate_hz": opts.rate, "rf_bandwidth_hz": settings.bandwidth_hz, "tx_gain_db": opts.tx_gain,
               "rx_gain_db": opts.rx_gain, "agc": opts.agc, "buffer_size": opts.buffer, "tx_level": opts.tx_level},
        devices={uri: dict(device_counters[uri], description=descriptions[uri]) for uri in device_counters},
        discontinuity_drops={r: sum(1 for d in logs[r].drops if d["reason"] == "discontinuity") for r in roles},
        samples_transmitted=tx_len, samples_received=tb.samples_consumed(), seconds=seconds, drained=drained,
        sync=sync)
    if recording is not None:
        report["recording"] = recording
    write_report(report, setup.images, results, out_dir)
    return report
