"""Radios, recordings and stand-ins behind one interface, chosen by URI.

    from radio.devices import RadioSettings, open_device
    settings = RadioSettings(center_freq_hz=2.4e9, sample_rate_hz=1e6, rx_gain_db=30)   # TX gain: the device's default
    with open_device("pluto:ip:192.168.2.1", settings) as dev:   # configured and started
        dev.tx(samples)                # complex64, nominal amplitude 1.0
        block = dev.rx(4096)           # RxBlock: samples, overflow, dropped, sample_index, ...
        print(dev.counters, dev.describe())

Several RX channels of one radio stream together (``open_device(uri, settings, rx_channels=[0,
1])``: ``block.samples`` is then ``(2, n)``), and ``dev.retune(freq)`` moves a running device.
URIs (``#N`` names a channel) are described in :mod:`radio.devices.uri`, the interface and its conventions (scaling,
blocks, counters) in :mod:`radio.devices.base`, each adapter in its module (``pluto``, ``soapy``,
``file``) and the CI fakes in :mod:`radio.devices.fakes`.
"""
from __future__ import annotations

from radio.devices.base import COUNTER_NAMES, Device, RadioSettings, RxBlock
from radio.devices.uri import DeviceUri, parse_uri
from jscec.errors import UserError

__all__ = ["COUNTER_NAMES", "Device", "DeviceUri", "RadioSettings", "RxBlock", "open_device", "open_devices",
           "parse_uri", "role_channels"]


def open_device(uri: str | DeviceUri, settings: RadioSettings, *, start: bool = True, air=None,
                rx_channels=None) -> Device:
    """Open, configure and (unless ``start=False``) start the device named by ``uri``.

    ``air`` (a :class:`radio.devices.fakes.FakeAir`) lets two fake devices share one channel;
    by default each fake gets its own, built from the URI's options. ``rx_channels`` (e.g. ``[0,
    1]``) streams several RX channels of the device at once; by default the one the URI names
    (``#N``, else ``settings.channel``). ``sim`` is refused here: the simulated loopback is run by
    the link, not through a device.
    """
    u = uri if isinstance(uri, DeviceUri) else parse_uri(uri)
    if u.kind == "sim":
        raise UserError("'sim' is the simulated loopback, handled by the link; it is not a device to open")
    if u.kind == "pluto":
        from radio.devices.pluto import PlutoDevice
        dev = PlutoDevice(u, settings, rx_channels=rx_channels)
    elif u.kind == "soapy":
        from radio.devices.soapy import SoapyDevice
        dev = SoapyDevice(u, settings, rx_channels=rx_channels)
    elif u.kind == "file":
        from radio.devices.file import FileDevice
        dev = FileDevice(u, settings)
    else:
        from radio.devices import fakes
        if air is None:
            air = fakes.FakeAir(fakes.AirConditions.from_params(u.params, str(u)))
        if u.kind == "fake-pluto":
            from radio.devices.pluto import PlutoDevice
            dev = PlutoDevice(u, settings, adi=fakes.fake_adi_module(air), rx_channels=rx_channels)
        else:
            from radio.devices.soapy import SoapyDevice
            dev = SoapyDevice(u, settings, soapy=fakes.fake_soapy_module(air), rx_channels=rx_channels)
    try:
        dev.configure()
        if start:
            dev.start()
    except BaseException:
        dev.close()
        raise
    return dev


def role_channels(uris: dict) -> dict:
    """Role → the RX channel its URI names (``#N``; 0 without a suffix)."""
    return {role: parse_uri(u).rx_channel for role, u in uris.items() if u}


def open_devices(uris: dict, settings: RadioSettings, stack, tx_role: str = "tx") -> dict:
    """Open every distinct device of ``uris`` (role → URI) once; returns role → device, closed by ``stack``.

    URIs naming channels of one device (equal but for ``#N``) share it, and it streams every channel
    the receiving roles name; the ``tx_role`` must use channel 0. Fakes share one ether (what one
    transmits, every fake hears, each through its own air and hardware), with
    :data:`radio.devices.fakes.SHARED_AIR_DEFAULTS` unless their URI says otherwise.
    """
    parsed = {role: parse_uri(u) for role, u in uris.items() if u}
    if tx_role in parsed and parsed[tx_role].rx_channel != 0:
        raise UserError(f"'{parsed[tx_role]}': transmission uses channel 0 (drop the #{parsed[tx_role].channel})")
    groups: dict = {}   # device URI text → {"uri", "channels"}
    for role, u in parsed.items():
        g = groups.setdefault(u.device_text, {"uri": u.device(), "channels": set()})
        if role != tx_role:
            g["channels"].add(u.rx_channel)
    by_text, airs = {}, []
    for text, g in groups.items():
        u, air = g["uri"], None
        if u.kind.startswith("fake"):
            from radio.devices import fakes
            air = fakes.BroadcastAir(fakes.AirConditions.from_params(fakes.shared_air_params(u.params), text))
            airs.append(air)
        dev = open_device(u, settings, air=air, rx_channels=sorted(g["channels"]) or [0])
        stack.callback(dev.close)
        by_text[text] = dev
    if airs:
        from radio.devices import fakes
        fakes.join_ether(airs)
    return {role: by_text[u.device_text] for role, u in parsed.items()}
