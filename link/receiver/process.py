"""Bob's and Eve's chains as separate processes (``python -m link.receiver``), driven by a runner."""
from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path


from jscec.errors import UserError
from radio.transport import ControlSocket, free_tcp_address


class ChainDied(UserError):
    """A receive chain's process ended without its results: killed, crashed, failed or timed out.

    ``role``, ``exit_code`` (the process's; negative: the signal that killed it; None: it hung and
    was stopped); the message is one line naming the chain (``Eve's receive chain died (exit code -9)``).
    """

    def __init__(self, role: str, exit_code: int | None, message: str):
        super().__init__(message)
        self.role = role
        self.exit_code = exit_code


def chain_name(role: str) -> str:
    return f"{role.capitalize()}'s receive chain"


class ReceiverProcess:
    """Starts ``python -m link.receiver --role ROLE`` and talks to it through its control socket."""

    def __init__(self, role: str, frames_address: str, out_dir: Path, model: str, *, key: Path | None = None,
                 reference: Path | None = None, k: int = 512, threads: int = 1, mode: str | None = None,
                 auth: str = "required", replay_state: str = "key", game: Path | None = None):
        self.role = role
        self.out_dir = Path(out_dir)
        self.control_address = free_tcp_address()
        cmd = [sys.executable, "-m", "link.receiver", "--role", role, "--frames", frames_address,
               "--control", self.control_address, "--model", str(model), "--out", str(self.out_dir),
               "--k", str(k), "--threads", str(threads)]
        if key is not None:
            cmd += ["--key", str(key)]
        if reference is not None:
            cmd += ["--reference", str(reference)]
        if mode is not None:
            cmd += ["--mode", mode]
        if role == "bob":
            cmd += ["--auth", auth, "--replay-state", replay_state]
        if game is not None:
            cmd += ["--game", str(game)]
        self.log_path = self.out_dir / f"{role}.log"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        root = Path(__file__).resolve().parents[2]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
                   JSCEC_PARENT_PID=str(os.getpid()))   # the chain exits when this process is gone
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, text=True, cwd=root, env=env)

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ChainDied(self.role, self.proc.returncode,
                                f"{chain_name(self.role)} exited before it was ready (exit code "
                                f"{self.proc.returncode}): {self._last_log_line()}")
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r and self.proc.stdout.readline().strip() == "ready":
                return
        raise UserError(f"{chain_name(self.role)} did not start within {timeout_s:.0f} s")

    def end(self, frames_sent: int, frames_published: int | None = None) -> None:
        """Tell the chain the stream ended: ``frames_sent`` by Alice, ``frames_published`` (frames and
        drop notices) by the RX flowgraph to this chain — with it, the chain stops as soon as all came."""
        msg = {"end": True, "frames_sent": int(frames_sent)}
        if frames_published is not None:
            msg["frames_published"] = int(frames_published)
        ctl = ControlSocket(self.control_address, bind=False)
        try:
            ctl.send(msg)
        finally:
            ctl.close()   # LINGER lets the message out

    def alive(self) -> bool:
        return self.proc.poll() is None

    def result(self, timeout_s: float = 300.0) -> dict:
        """Wait for the chain (after :meth:`end`) and return its results; :class:`ChainDied` if it has none."""
        try:
            rc = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise ChainDied(self.role, None, f"{chain_name(self.role)} did not finish within {timeout_s:.0f} s "
                                             "(stopped)") from None
        finally:
            self._log.close()
        if rc != 0:
            raise ChainDied(self.role, rc, self.death())
        from link.jsonstream import load_object

        # Its per-frame records stay in the file, read when iterated: the runner holds no per-frame state.
        summary = load_object(self.out_dir / f"{self.role}.json", lazy=("per_frame",))
        from link.npzindex import NpzIndex

        images = NpzIndex(self.out_dir / f"{self.role}-images.npz")     # index → image, read when used
        return {"summary": summary, "images": images, "constellation": images.array("constellation")}

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self._log.closed:
            self._log.close()

    def death(self) -> str:
        """One line on how the (ended) process ended: ``Eve's receive chain died (exit code -9)`` when a
        signal killed it, with the last line of its log when it failed by itself."""
        rc = self.proc.returncode
        if rc is not None and rc < 0:
            return f"{chain_name(self.role)} died (exit code {rc})"
        return f"{chain_name(self.role)} failed (exit code {rc}): {self._last_log_line()}"

    def _last_log_line(self) -> str:
        if not self._log.closed:
            self._log.flush()
        try:
            lines = [ln.strip() for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            lines = []
        return lines[-1] if lines else "no message"
