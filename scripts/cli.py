"""`jscec`: one console command, one subcommand per module ``scripts/cmd_<name>.py``.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``
and keeps heavy imports (torch, GNU Radio) inside ``run`` so that ``jscec --help`` stays fast.

Exit status: 0 done; 2 an error the user can act on (one line ``jscec CMD: error: ...``, no traceback;
a receive chain that died during a run is one, after the partial report is written); 130 interrupted.
SIGTERM and SIGHUP are handled as Ctrl-C (SIGINT) is, with the same status 130 (``jscec campaign``, which
stops its workers on SIGTERM itself, has always answered 130 too): the command unwinds (receiver processes
and synchroniser workers stopped, unfinished recordings and staged output folders removed; keys and
finished outputs kept), says ``jscec CMD: interrupted`` (``(SIGTERM)``/``(SIGHUP)`` added), and a second
SIGTERM or SIGHUP during that clean-up is ignored so that it completes.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys
import threading

import scripts
from jscec.errors import UserError, user_message


def _command_modules():
    for info in sorted(pkgutil.iter_modules(scripts.__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            yield importlib.import_module(f"scripts.{info.name}")


EPILOG = ("exit status: 0 done, 2 error (one line), 130 interrupted: Ctrl-C, SIGTERM or SIGHUP (children "
          "stopped, temporary files removed, keys and finished outputs kept)")

#: The exit status of an interrupted command, whichever signal interrupted it.
INTERRUPTED = 130

#: Signals that interrupt a command as Ctrl-C does.
INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP, raised where the command runs: a KeyboardInterrupt, so every clean-up
    that handles Ctrl-C handles all three."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Interrupts:
    """While inside (main thread only): SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted`, and
    ``signum`` keeps the first one — an interrupt can reach the command in a disguise (an import of a
    compiled module turns it into ``ImportError``), and the command is interrupted all the same. After a
    SIGTERM or SIGHUP, further ones are ignored so that the clean-up runs to its end (Ctrl-C still
    interrupts it, as Python's own handler would)."""

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signum is None:
            self.signum = signum
        if signum != signal.SIGINT:
            for s in INTERRUPTS[1:]:
                signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in INTERRUPTS}
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
        return False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jscec",
        description="DeepJSCEC hardware-in-the-loop: secure deep JSCC over GNU Radio, simulated or real radios.",
        epilog=EPILOG,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        # (argparse %-formats a help line: a literal "95%" in a HELP must not break `jscec --help`)
        p = sub.add_parser(mod.NAME, help=mod.HELP.replace("%", "%%"),
                           description=getattr(mod, "DESCRIPTION", mod.HELP),
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    interrupts = Interrupts()
    try:
        with interrupts:
            return int(args._run(args) or 0)
    except BaseException as exc:  # noqa: BLE001 - an interrupt, a user's error (one line), or a bug (raised)
        signum = interrupts.signum or (signal.SIGINT if isinstance(exc, KeyboardInterrupt) else None)
        if signum is not None:
            named = "" if signum == signal.SIGINT else f" ({signal.Signals(signum).name})"
            print(f"jscec {args.command}: interrupted{named}", file=sys.stderr)
            return INTERRUPTED
        message = user_message(exc) if isinstance(exc, (UserError, OSError)) else None
        if message is None:
            raise
        print(f"jscec {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
