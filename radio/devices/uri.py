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
``fake-soapy[:k=v,...]``        (see :class:`radio.devices.fakes.Impairments` for the keys)
==============================  ==============================================================
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from radio.errors import UserError

KINDS = ("pluto", "soapy", "file", "sim", "fake-pluto", "fake-soapy")

_FORMS = ("pluto[:ip:HOST|:usb:B.D.I], soapy:driver=NAME[,key=value...], file:PATH.sigmf-meta, "
          "sim, fake-pluto, fake-soapy")

_IIO_URI = re.compile(r"^(ip:[A-Za-z0-9.\-:\[\]%]+|usb:(\d+\.\d+\.\d+)?|local:)$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class DeviceUri:
    """A parsed device URI.

    ``kind`` is one of :data:`KINDS`; ``target`` is what follows ``kind:`` (a libiio URI for
    Pluto, a path for ``file``, '' when absent); ``params`` holds the ``key=value`` pairs of
    ``soapy``, ``sim`` and the fakes. ``str(uri)`` gives back the text it was parsed from.
    """

    kind: str
    target: str = ""
    params: dict = field(default_factory=dict, compare=False)
    text: str = ""

    def __str__(self) -> str:
        return self.text or (f"{self.kind}:{self.target}" if self.target else self.kind)


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
    if kind not in KINDS:
        raise UserError(f"unknown device URI '{text}'; use one of: {_FORMS}")
    if kind == "pluto":
        if rest and not _IIO_URI.match(rest):
            raise UserError(f"bad Pluto URI '{text}': expected pluto:ip:HOST or pluto:usb:BUS.DEV.INTF")
        return DeviceUri(kind, rest, {}, text)
    if kind == "soapy":
        params = _parse_pairs(rest, text)
        if not params:
            raise UserError(f"bad SoapySDR URI '{text}': give device arguments, e.g. soapy:driver=uhd")
        return DeviceUri(kind, rest, params, text)
    if kind == "file":
        if not rest:
            raise UserError(f"bad file URI '{text}': expected file:PATH.sigmf-meta")
        return DeviceUri(kind, rest, {}, text)
    # sim and the fakes: optional key=value options
    return DeviceUri(kind, rest, _parse_pairs(rest, text), text)
