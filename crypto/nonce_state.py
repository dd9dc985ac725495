"""Frame counters (nonces) never reused under one key, across runs (DESIGN.md, security note 6).

Every sender — DeepJSCEC's Alice on any link, the digital baseline's AES-CTR on any link — takes its
frame counters from the :class:`CounterState` of its key. The state lives beside the key file as
``<key file>.counter`` (JSON: format, key id, the next counter never handed out; mode 0600) and is only
ever moved forward:

* counters are reserved in blocks (:data:`BLOCK`, or more when one request needs more): the new
  ``next`` is written atomically and fsynced (:func:`crypto.keyfile.write_atomic`) *before* any counter
  of the block is returned, so a crash may skip counters but never repeats them;
* an exclusive lock (``flock`` on ``<key file>.counter.lock``) keeps two runs under one key from
  reserving the same block at once;
* the header carries a 32-bit counter: a key whose counters are used up refuses to send and says to
  make a new key.

A key no file holds (the baseline's key of one run) starts at 0 and keeps its state in memory. Replays
decrypt what was recorded and reserve nothing; the training path draws its own in-memory nonces.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from crypto.keyfile import read_secret, write_atomic
from jscec.errors import UserError

FORMAT = "deepjscec-hil/counter-state/1"
SUFFIX = ".counter"
#: Counters a run reserves from the file at a time.
BLOCK = 4096
#: The frame header's counter field is 32 bits wide.
COUNTER_LIMIT = 1 << 32


def state_path(key_path) -> Path:
    key_path = Path(key_path)
    return key_path.with_name(key_path.name + SUFFIX)


class CounterState:
    """The frame counters of one key: :meth:`reserve` hands out runs of counters never handed out before."""

    def __init__(self, key_path, key_id: str, *, limit: int = COUNTER_LIMIT, block: int = BLOCK):
        """``key_path`` None: a key no file holds (counters from 0, state in memory only)."""
        self.path = None if key_path is None else state_path(key_path)
        self.key_id = str(key_id)
        self.limit = int(limit)
        self.block = int(block)
        self._next = 0 if key_path is None else None     # in memory: the next counter to hand out ...
        self._end = self.limit if key_path is None else 0  # ... up to the end of the reserved block
        self.reserved: list[list[int]] = []                 # [first, end) runs handed out by this object

    def reserve(self, count: int) -> int:
        """The first of ``count`` consecutive counters that no run under this key has been given; persisted
        (when the key has a file) before this returns."""
        count = int(count)
        if count < 1:
            raise ValueError("reserve at least one counter")
        if self._next is None or self._next + count > self._end:
            self._take_block(count)
        first = self._next
        self._next += count
        if self.reserved and self.reserved[-1][1] == first:
            self.reserved[-1][1] = self._next
        else:
            self.reserved.append([first, self._next])
        return first

    def _take_block(self, count: int) -> None:
        if self.path is None:       # in memory: the whole counter space is this object's
            self._refuse_if_exhausted(self._next, count)
            return
        with _locked(self.path.with_name(self.path.name + ".lock")):
            start = self._read()
            self._refuse_if_exhausted(start, count)
            end = min(self.limit, start + max(count, self.block))
            write_atomic(self.path, (json.dumps({"format": FORMAT, "key_id": self.key_id, "next": end}) + "\n")
                         .encode(), 0o600)
        self._next, self._end = start, end

    def _refuse_if_exhausted(self, start: int, count: int) -> None:
        if start + count > self.limit:
            raise UserError(f"the frame counters of key {self.key_id} are used up ({start} of {self.limit} given "
                            f"out, {count} more needed): make a new key (run without --key) and share it with Bob")

    def _read(self) -> int:
        if not self.path.exists():
            return 0
        data = read_secret(self.path, "counter state")
        try:
            doc = json.loads(data.decode())
            if doc.get("format") != FORMAT:
                raise ValueError
            nxt = int(doc["next"])
            if nxt < 0:
                raise ValueError
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
            raise UserError(f"counter state {self.path} is damaged: refusing to guess which frame counters were "
                            "used under this key (make a new key, or restore the file)") from None
        return nxt

    def keep_with(self, key_path) -> Path:
        """Give an in-memory state a file beside ``key_path`` (a fresh key saved after its run): the next
        run under that key continues after every counter handed out here."""
        self.path = state_path(key_path)
        write_atomic(self.path, (json.dumps({"format": FORMAT, "key_id": self.key_id, "next": self._next}) + "\n")
                     .encode(), 0o600)
        self._end = self._next
        return self.path

    def as_dict(self) -> dict:
        """What a report says of the counters this run used (public: counters are in every header)."""
        return {"state": None if self.path is None else str(self.path), "reserved": [list(r) for r in self.reserved]}


class _locked:
    """An exclusive ``flock`` on ``path`` (created 0600) for the duration of a ``with``."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        return False
