"""Secret files on disk, one way for all of them (cipher keys, AES keys, nonce counter states).

* :func:`write_atomic` — a temporary file created exclusively beside the target (``mkstemp``, mode 0600
  from the start), set to its mode, written, fsynced and renamed over the target; the folder is
  fsynced too, so the new name survives a crash. Readers never see a partial file and a secret is
  never readable by others, not even briefly.
* :func:`read_secret` — the bytes of a secret file, refusing one that group or others may read (one
  line naming the file and ``chmod 600``), a folder, a missing or an unreadable file.

No message here ever contains file contents.
"""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from jscec.errors import UserError


def write_atomic(path, data: bytes, mode: int = 0o600) -> Path:
    """Write ``data`` to ``path`` atomically with ``mode`` (see the module docstring)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    sync_folder(path.parent)
    return path


def sync_folder(folder) -> None:
    """fsync a folder, so that a rename inside it is on disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_secret(path, what: str) -> bytes:
    """The bytes of the secret file ``path`` (``what``: "key", "AES key", …); ``UserError`` in one line if it
    is missing, a folder, unreadable, or readable by group or others."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UserError(f"{what} file not found: {path}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{what} file {path} is a folder: give the key file itself") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UserError(f"{what} file {path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}): it holds a "
                        f"secret; run chmod 600 {path}")
    try:
        return path.read_bytes()
    except PermissionError:
        raise UserError(f"{what} file {path} is not readable (permission denied)") from None
