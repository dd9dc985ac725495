"""The one exception type the CLI turns into a one-line error message, and that message."""
from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or environment (missing radio, malformed file, wrong key).

    The message must be one line and must never contain secret material.
    """


def user_message(exc: BaseException) -> str | None:
    """The one line a command prints for an error the user can act on (None: a bug, let it raise)."""
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return f"{exc.strerror}: {exc.filename}"
    return None
