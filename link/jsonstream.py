"""Reading a long JSON file without holding it: a top-level object whose big arrays are read when iterated.

A receive chain's ``<role>.json`` holds a record per frame (``per_frame``): tens of thousands in a long run.
:func:`load_object` reads the object's other fields and leaves the named arrays in the file as
:class:`JsonArray` sequences (their length counted on the way, nothing kept), so a runner that gathers the
chains' results holds a few numbers per run, not per frame. Any JSON text is read (whitespace and layout
free); values are decoded one at a time with :meth:`json.JSONDecoder.raw_decode` from a buffered reader.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

_WS = " \t\n\r"
_AFTER = _WS + ",:]}"
_DECODER = json.JSONDecoder()


class _Reader:
    """Buffered JSON text from a file: one value, one delimiter at a time."""

    CHUNK = 1 << 16

    def __init__(self, f, name: str):
        self.f = f
        self.name = name
        self.buf = ""
        self.pos = 0
        self.eof = False

    def _fill(self, size: int | None = None) -> bool:
        if self.eof:
            return False
        chunk = self.f.read(max(size or 0, self.CHUNK))
        if not chunk:
            self.eof = True
            return False
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next character that is not whitespace ('' at the end)."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.buf) or not self._fill():
                return self.buf[self.pos:self.pos + 1]

    def expect(self, ch: str) -> None:
        got = self.peek()
        if got != ch:
            raise ValueError(f"{self.name}: expected {ch!r}, found {got or 'the end'!r}")
        self.pos += 1

    def value(self):
        """The next JSON value. A number cut by the buffer's end (``2.`` of ``2.5e10``) would decode as
        another number: a value counts only once a delimiter follows it or the file ended."""
        self.peek()
        while True:
            try:
                v, end = _DECODER.raw_decode(self.buf, self.pos)
                if (end < len(self.buf) and self.buf[end] in _AFTER) or self.eof:
                    self.pos = end
                    return v
            except json.JSONDecodeError as exc:
                if self.eof:
                    raise ValueError(f"{self.name}: {exc}") from None
            # A value longer than the buffer (a field decoded whole): read as much again, so that a long
            # value is parsed a few times, not once per chunk.
            if not self._fill(len(self.buf) - self.pos):
                self.eof = True


def _walk(path: Path, lazy: frozenset, on_value, on_array) -> None:
    """Read the top-level object of ``path``: ``on_value(key, value)`` for each field not in ``lazy``, and
    ``on_array(key, elements)`` with an iterator over the elements of each array in ``lazy``."""
    with open(path, encoding="utf-8") as f:
        r = _Reader(f, str(path))
        r.expect("{")
        if r.peek() == "}":
            return
        while True:
            key = r.value()
            r.expect(":")
            if key in lazy and r.peek() == "[":
                r.expect("[")
                on_array(key, _elements(r))
            else:
                on_value(key, r.value())
            if r.peek() == ",":
                r.expect(",")
                continue
            r.expect("}")
            return


def _elements(r: _Reader) -> Iterator:
    if r.peek() == "]":
        r.expect("]")
        return
    while True:
        yield r.value()
        if r.peek() == ",":
            r.expect(",")
            continue
        r.expect("]")
        return


class JsonArray(Sequence):
    """One array field of a JSON file's top-level object, read from the file whenever it is iterated (the
    file must not change meanwhile). ``len`` was counted when the object was loaded; indexing reads up to the
    element; it equals any sequence with the same elements. Picklable (it is a path and a key)."""

    def __init__(self, path, key: str, length: int):
        self.path = Path(path)
        self.key = key
        self.length = int(length)

    def __iter__(self) -> Iterator:
        yield from _iter_key(self.path, self.key)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i):
        if isinstance(i, slice):
            return list(self)[i]
        n = range(self.length)[i]          # IndexError as a list would
        for j, v in enumerate(self):
            if j == n:
                return v
        raise IndexError(i)                 # the file changed under us

    def __eq__(self, other):
        if isinstance(other, (JsonArray, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"JsonArray({str(self.path)!r}, {self.key!r}, {self.length} elements)"


def _iter_key(path: Path, key: str) -> Iterator:
    with open(path, encoding="utf-8") as f:
        r = _Reader(f, str(path))
        r.expect("{")
        while r.peek() != "}":
            k = r.value()
            r.expect(":")
            if k == key and r.peek() == "[":
                r.expect("[")
                yield from _elements(r)
                return
            r.value()
            if r.peek() == ",":
                r.expect(",")


def load_object(path, lazy=()) -> dict:
    """The top-level JSON object of ``path``, with each array field named in ``lazy`` left in the file as a
    :class:`JsonArray` (the rest decoded as ``json.load`` would). ``ValueError`` for a malformed file."""
    path = Path(path)
    doc: dict = {}

    def on_array(key, elements):
        n = 0
        for _ in elements:
            n += 1
        doc[key] = JsonArray(path, key, n)

    _walk(path, frozenset(lazy), doc.__setitem__, on_array)
    return doc
