"""The one exception type the CLI turns into a one-line error message."""


class UserError(Exception):
    """A problem with the user's input or environment (missing radio, malformed file, wrong key).

    The message must be one line and must never contain secret material.
    """
