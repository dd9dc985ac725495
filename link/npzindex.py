"""The images of a large npz read one at a time, with an index of a few bytes per image.

``numpy.load`` of an npz (through :mod:`zipfile`) builds a ``ZipInfo`` object per member: about 600 bytes
each, 12 MB for a 20,000-image ``<role>-images.npz`` — held for as long as the file is open, in the runner
that only wants the panel's first images and the constellation. :class:`NpzIndex` reads the zip's central
directory once into two integer arrays (image index, member offset) and reads a member's ``.npy`` straight
from the file when asked. Members stored without compression (what ``np.savez`` and the receive chains write)
are read this way; a compressed npz (``np.savez_compressed``) is read through :func:`numpy.load` instead.
"""
from __future__ import annotations

import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"


def _central_directory(f, name: str) -> tuple[int, int, int]:
    """(offset, size, entries) of the central directory (zip64 where the file needs it)."""
    f.seek(0, 2)
    end = f.tell()
    tail_len = min(end, 22 + 65535 + 20)
    f.seek(end - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(_EOCD)
    if at < 0:
        raise ValueError(f"{name} is not a zip file (npz)")
    entries, size, offset = struct.unpack_from("<HIIH", tail, at + 10)[:3]
    loc = at - 20
    if loc >= 0 and tail[loc:loc + 4] == _EOCD64_LOCATOR:
        (eocd64,) = struct.unpack_from("<Q", tail, loc + 8)
        f.seek(eocd64)
        rec = f.read(56)
        if rec[:4] != _EOCD64:
            raise ValueError(f"{name}: damaged zip64 directory")
        entries, size, offset = struct.unpack_from("<QQQ", rec, 32)
    return offset, size, entries


def _zip64_values(extra: bytes, wanted: list[bool]) -> list[int]:
    """The zip64 extra field's values for the fields marked 0xFFFFFFFF (in order: size, compressed size,
    offset)."""
    i = 0
    while i + 4 <= len(extra):
        tag, n = struct.unpack_from("<HH", extra, i)
        if tag == 1:
            vals = struct.unpack_from(f"<{n // 8}Q", extra, i + 4)
            out, k = [], 0
            for w in wanted:
                out.append(vals[k] if w else None)
                k += bool(w)
            return out
        i += 4 + n
    return [None] * len(wanted)


class NpzIndex(Mapping):
    """``image_<index>`` members of an npz as a mapping index → array, read when asked; other members by
    :meth:`array`. Holds 16 bytes per image (and the file, open)."""

    def __init__(self, path):
        self.path = Path(path)
        self._fallback = None
        self._f = open(self.path, "rb")
        try:
            self._read_directory()
        except BaseException:
            self._f.close()
            raise

    def _read_directory(self) -> None:
        f, name = self._f, str(self.path)
        offset, size, entries = _central_directory(f, name)
        f.seek(offset)
        cd = f.read(size)
        indices, offsets, self._others = [], [], {}
        pos = 0
        for _ in range(entries):
            if cd[pos:pos + 4] != _CENTRAL:
                raise ValueError(f"{name}: damaged zip directory")
            (method, csize, usize, nlen, xlen, clen, local) = struct.unpack_from("<10xH8xIIHHH8xI", cd, pos)
            member = cd[pos + 46:pos + 46 + nlen].decode("utf-8")
            if method != zipfile.ZIP_STORED:          # compressed: let numpy read it
                self._f.close()
                self._fallback = np.load(self.path)
                self._names = {int(n.split("_")[1]): n for n in self._fallback.files if n.startswith("image_")}
                return
            if local == 0xFFFFFFFF:
                extra = cd[pos + 46 + nlen:pos + 46 + nlen + xlen]
                local = _zip64_values(extra, [usize == 0xFFFFFFFF, csize == 0xFFFFFFFF, True])[2]
            stem = member[:-4] if member.endswith(".npy") else member
            if stem.startswith("image_") and stem[6:].isdigit():
                indices.append(int(stem[6:]))
                offsets.append(local)
            else:
                self._others[stem] = local
            pos += 46 + nlen + xlen + clen
        order = np.argsort(np.asarray(indices, np.int64), kind="stable")
        self._indices = np.asarray(indices, np.int64)[order]
        self._offsets = np.asarray(offsets, np.int64)[order]

    def _read_at(self, local: int) -> np.ndarray:
        f = self._f
        f.seek(local)
        head = f.read(30)
        if head[:4] != _LOCAL:
            raise ValueError(f"{self.path}: damaged zip member at {local}")
        nlen, xlen = struct.unpack_from("<HH", head, 26)
        f.seek(local + 30 + nlen + xlen)
        return np.lib.format.read_array(f, allow_pickle=False)

    def _find(self, index) -> int | None:
        i = int(np.searchsorted(self._indices, index))
        return i if i < self._indices.size and self._indices[i] == index else None

    def array(self, name: str) -> np.ndarray:
        if self._fallback is not None:
            return self._fallback[name]
        if name not in self._others:
            raise KeyError(f"{name} is not in {self.path}")
        return self._read_at(self._others[name])

    def __getitem__(self, index) -> np.ndarray:
        if self._fallback is not None:
            return self._fallback[self._names[index]]
        i = self._find(index) if isinstance(index, (int, np.integer)) else None
        if i is None:
            raise KeyError(index)
        return self._read_at(int(self._offsets[i]))

    def __contains__(self, index) -> bool:
        if self._fallback is not None:
            return index in self._names
        return isinstance(index, (int, np.integer)) and self._find(index) is not None

    def __iter__(self):
        if self._fallback is not None:
            return iter(self._names)
        return (int(i) for i in self._indices)

    def __len__(self) -> int:
        return len(self._names) if self._fallback is not None else int(self._indices.size)

    def close(self) -> None:
        if self._fallback is not None:
            self._fallback.close()
        else:
            self._f.close()
