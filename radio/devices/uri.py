"""Device URIs: one string names every radio, recording and stand-in the link can use.

Accepted forms (``parse_uri`` refuses anything else with a one-line ``UserError``):

==============================  ==============================================================
``pluto``                       a PlutoSDR found by pyadi-iio's own discovery (USB, then
                                ``ip:pluto.local``)
``pluto:ip:192.168.2.1``        a PlutoSDR by libiio context URI (``ip:HOST``, ``usb:B.D.I``,
``pluto:usb:1.2.5``             ``usb:`` = the first one on USB, ``local:`` = on the device)
``soapy:driver=uhd,serial=X``   a SoapySDR device (USRPs through ``soapysdr-module-uhd``); the
                                ``key=value`` pairs are SoapySDR device arguments
``file:capture.sigmf-meta``     replay of a SigMF recording (``.sigmf-meta``, ``.sigmf-data`` or
                                the base name); receive only
``sim``                         the simulated loopback (parsed here, handled by the link)
``fake-pluto[:k=v,...]``        in-process fakes that loop TX into RX through impairments
``fake-soapy[:k=v,...]``        (see :class:`radio.devices.fakes.AirConditions` for the keys)
==============================  ==============================================================

**Channels.** Any radio URI (not ``file:`` or ``sim``) may end in ``#N`` to name RX channel ``N``
of that device (0-based; no suffix means channel 0): ``pluto:ip:192.168.2.1#1``,
``soapy:driver=uhd,serial=X#1``, ``fake-pluto:rx1_noise_std=2e-3#1``. URIs that are equal once
the suffix is removed (:attr:`DeviceUri.device_text`) name the *same physical device*: ``jscec
ota --bob pluto:ip:192.168.2.1 --eve pluto:ip:192.168.2.1#1`` opens that radio once and streams
channels 0 and 1 together (a Pluto needs an AD9361-based 2R2T variant; see
:mod:`radio.devices.pluto`). Transmission always uses channel 0 (``#0`` or no suffix on ``--tx``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from jscec.errors import UserError

KINDS = ("pluto", "soapy", "file", "sim", "fake-pluto", "fake-soapy")

_FORMS = ("pluto[:ip:HOST|:usb:B.D.I][#CHANNEL], soapy:driver=NAME[,key=value...][#CHANNEL], "
          "file:PATH.sigmf-meta, sim, fake-pluto[#CHANNEL], fake-soapy[#CHANNEL]")

_IIO_URI = re.compile(r"^(ip:[A-Za-z0-9.\-:\[\]%]+|usb:(\d+\.\d+\.\d+)?|local:)$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_CHANNEL = re.compile(r"^(.*)#(\d+)$")
#: kinds whose URI may name an RX channel with a ``#N`` suffix
CHANNEL_KINDS = ("pluto", "soapy", "fake-pluto", "fake-soapy")


@dataclass(frozen=True)
class DeviceUri:
    """A parsed device URI.

    ``kind`` is one of :data:`KINDS`; ``target`` is what follows ``kind:`` (a libiio URI for
    Pluto, a path for ``file``, '' when absent); ``params`` holds the ``key=value`` pairs of
    ``soapy``, ``sim`` and the fakes. ``channel`` is the RX channel named by a ``#N`` suffix (None
    when absent: channel 0). ``str(uri)`` gives back the text it was parsed from.
    """

    kind: str
    target: str = ""
    params: dict = field(default_factory=dict, compare=False)
    text: str = ""
    channel: int | None = None

    def __str__(self) -> str:
        return self.text or (f"{self.kind}:{self.target}" if self.target else self.kind)

    @property
    def rx_channel(self) -> int:
        return 0 if self.channel is None else self.channel

    @property
    def device_text(self) -> str:
        """The URI without its channel suffix: equal for every channel of one physical device."""
        text = str(self)
        return text if self.channel is None else text.rpartition("#")[0]

    def device(self) -> "DeviceUri":
        """This URI with the channel suffix removed (names the whole device)."""
        return DeviceUri(self.kind, self.target, dict(self.params), self.device_text)


def _parse_pairs(text: str, uri: str) -> dict:
    pairs = {}
    if not text:
        return pairs
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not _KEY.match(key) or value == "":
            raise UserError(f"bad device URI '{uri}': expected key=value pairs, got '{item}'")
        if key in pairs:
            raise UserError(f"bad device URI '{uri}': '{key}' given twice")
        pairs[key] = value
    return pairs


def parse_uri(uri: str) -> DeviceUri:
    """Parse a device URI (see the module docstring); raise ``UserError`` naming it if malformed."""
    if not isinstance(uri, str) or not uri.strip():
        raise UserError(f"empty device URI; use one of: {_FORMS}")
    text = uri.strip()
    kind, _, rest = text.partition(":")
    kind = kind.lower()
    channel = None
    if kind not in KINDS and "#" in kind:  # "pluto#1", "fake-soapy#1": a channel, no target
        kind, _, suffix = kind.partition("#")
        rest = f"#{suffix}{':' + rest if rest else ''}"
    if kind not in KINDS:
        raise UserError(f"unknown device URI '{text}'; use one of: {_FORMS}")
    if kind in CHANNEL_KINDS and "#" in rest:
        m = _CHANNEL.match(rest)
        if not m:
            raise UserError(f"bad device URI '{text}': a channel is written #N at the end (N = 0, 1, ...)")
        rest, channel = m.group(1), int(m.group(2))
    if kind == "pluto":
        if rest and not _IIO_URI.match(rest):
            raise UserError(f"bad Pluto URI '{text}': expected pluto:ip:HOST or pluto:usb:BUS.DEV.INTF")
        return DeviceUri(kind, rest, {}, text, channel)
    if kind == "soapy":
        params = _parse_pairs(rest, text)
        if not params:
            raise UserError(f"bad SoapySDR URI '{text}': give device arguments, e.g. soapy:driver=uhd")
        return DeviceUri(kind, rest, params, text, channel)
    if kind == "file":
        if not rest:
            raise UserError(f"bad file URI '{text}': expected file:PATH.sigmf-meta")
        return DeviceUri(kind, rest, {}, text)
    # sim and the fakes: optional key=value options
    return DeviceUri(kind, rest, _parse_pairs(rest, text), text, channel)
