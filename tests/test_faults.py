"""Failing cleanly (issue 15): a receive chain that dies, `jscec receive` on bad addresses, SIGTERM/SIGHUP.

Every failure ends in one line and a non-zero exit status, never a traceback or a hang; a run that lost
a receive chain still writes its partial report; an interrupted command leaves no process and no
temporary file behind.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("gnuradio.gr")

from radio.transport import free_tcp_address  # noqa: E402
from tests.conftest import ROOT, jscec  # noqa: E402


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")


def _start(*args, module="scripts.cli"):
    return subprocess.Popen([sys.executable, "-m", module, *map(str, args)], cwd=ROOT, env=_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc: parent ids)."""
    parents = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(d.name))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _running(pid: int) -> bool:
    """Exists and is not a zombie (an orphan's zombie waits for a reaper, it uses nothing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.strip()]


# -- a receive chain that dies ---------------------------------------------------------------------

def _kill_when(monkeypatch, role: str, method: str):
    """Kill ``role``'s chain process (SIGKILL) right after the runner's ``ReceiverProcess.<method>`` for it:
    ``wait_ready`` — as soon as it is ready, before the frames flow; ``end`` — after the stream, before
    its results."""
    from link.receiver.process import ReceiverProcess

    original = getattr(ReceiverProcess, method)
    killed = []

    def patched(self, *args, **kwargs):
        if self.role == role and method == "end":
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            killed.append(self.proc.pid)
            return None
        out = original(self, *args, **kwargs)
        if self.role == role:
            os.kill(self.proc.pid, signal.SIGKILL)
            killed.append(self.proc.pid)
        return out

    monkeypatch.setattr(ReceiverProcess, method, patched)
    return killed


def test_eve_killed_mid_loopback_ends_the_run_in_one_line_with_a_partial_report(tiny_model, tiny_data, tmp_path,
                                                                                  monkeypatch, capsys):
    from scripts.cli import main

    killed = _kill_when(monkeypatch, "eve", "wait_ready")
    out = tmp_path / "run"
    t0 = time.monotonic()
    rc = main(["loopback", "--model", str(tiny_model), "--data", str(tiny_data), "--images", "6", "--snr-b", "25",
               "--out", str(out), "--json", str(out / "cli.json")])
    took = time.monotonic() - t0
    err = capsys.readouterr().err
    assert killed and rc == 2
    assert _error_lines(err) == [f"jscec loopback: error: Eve's receive chain died (exit code -9); "
                                 f"partial report in {out / 'result.json'}"]
    assert took < 60   # no hang on the dead chain's frame sink
    rep = json.loads((out / "result.json").read_text())
    assert rep["eve"]["error"] == "Eve's receive chain died (exit code -9)" and rep["eve"]["exit_code"] == -9
    assert rep["eve"]["psnr"] is None and rep["eve"]["frames_sent"] == 6
    bob = rep["bob"]   # the surviving chain decoded the whole stream
    assert "error" not in bob and bob["frames_ok"] == bob["frames_sent"] == 6 and bob["psnr"] is not None
    assert [r["index"] for r in rep["per_image"]["bob"]] == list(range(6)) and rep["per_image"]["eve"] == []
    assert rep["sync"]["eve"]["frames_published"] == 6   # the link still counted Eve's frames
    assert (out / "panel.png").is_file() and (out / "keys" / "bob.key").is_file()
    assert not (out / "cli.json").exists()   # no successful run's output
    assert not _running(killed[0])


@pytest.mark.parametrize("when", ["wait_ready", "end"])
def test_bob_killed_over_the_awgn_link_leaves_eve_s_results_and_names_bob(when, tiny_model, tiny_data, tmp_path,
                                                                          monkeypatch):
    from jscec.errors import UserError
    from link.apps.deepjscec import DeepJscecApp, ImageOptions
    from link.links.awgn import AwgnLink, AwgnOptions
    from link.runner import RunFailed, RunOptions, run

    _kill_when(monkeypatch, "bob", when)
    out = tmp_path / "awgn"
    app = DeepJscecApp(ImageOptions(model=str(tiny_model), data=str(tiny_data), images=3))
    with pytest.raises(RunFailed) as failed:
        run(app, AwgnLink(AwgnOptions(snr_b_db=30.0, snr_e_db=30.0)), RunOptions(out_dir=str(out)),
            log=lambda *a: None)
    assert isinstance(failed.value, UserError) and "\n" not in str(failed.value)
    assert str(failed.value) == (f"Bob's receive chain died (exit code -9); partial report in {out / 'result.json'}")
    rep = json.loads((out / "result.json").read_text())
    assert rep == failed.value.report | {"files": rep["files"]}
    assert rep["bob"]["error"].startswith("Bob's receive chain died") and rep["bob"]["frames_ok"] == 0
    assert rep["eve"]["frames_ok"] == rep["eve"]["frames_sent"] == 3 and "error" not in rep["eve"]


# -- jscec receive ---------------------------------------------------------------------------------

@pytest.fixture
def busy_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield f"tcp://127.0.0.1:{s.getsockname()[1]}"
    s.close()


@pytest.mark.parametrize("case", ["frames not an address", "frames port out of range", "control busy",
                                  "module: control busy"])
def test_receive_refuses_a_bad_or_busy_address_in_one_line_before_ready(case, busy_port, tmp_path):
    frames, control = free_tcp_address(), free_tcp_address()
    if case == "frames not an address":
        frames = "notanaddress"
    elif case == "frames port out of range":
        frames = "tcp://127.0.0.1:99999"
    else:
        control = busy_port
    args = ["--role", "eve", "--frames", frames, "--control", control, "--out", tmp_path / "rx"]
    module = "link.receiver" if case.startswith("module") else "scripts.cli"
    p = _start(*([] if module == "link.receiver" else ["receive"]), *args, module=module)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2 and "ready" not in out
    lines = _error_lines(err)
    prefix = "eve's receiver: error: " if module == "link.receiver" else "jscec receive: error: "
    assert len(lines) == 1 and lines[0].startswith(prefix), err
    assert (control if "busy" in case else frames) in lines[0]
    if "busy" in case:
        assert "Address already in use" in lines[0]


def test_receive_exits_non_zero_when_no_frame_arrived_before_its_timeout(tiny_model, tmp_path):
    frames = free_tcp_address()
    p = jscec("receive", "--role", "eve", "--model", tiny_model, "--frames", frames, "--control", free_tcp_address(),
              "--out", tmp_path / "rx", "--timeout", 1, check=False, timeout=120)
    assert p.returncode == 2 and p.stdout.strip() == "ready"
    assert _error_lines(p.stderr) == [f"jscec receive: error: no frame arrived on {frames} within 1 s (is the RX "
                                      "flowgraph running and publishing there?)"]
    assert not (tmp_path / "rx" / "eve.json").exists()


# -- SIGTERM / SIGHUP ------------------------------------------------------------------------------

def test_sighup_interrupts_receive_like_ctrl_c(tiny_model, tmp_path):
    p = _start("receive", "--role", "eve", "--model", tiny_model, "--frames", free_tcp_address(),
               "--control", free_tcp_address(), "--out", tmp_path / "rx", "--timeout", 60)
    try:
        assert p.stdout.readline().strip() == "ready"
        p.send_signal(signal.SIGHUP)
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert _error_lines(err) == ["jscec receive: interrupted (SIGHUP)"]


def test_sigterm_to_capture_stops_every_child_and_removes_temporary_files(tiny_model, tmp_path):
    out = tmp_path / "cap"
    p = _start("capture", "--model", tiny_model, "--out", out)   # the three sample photographs: ~1.7 M samples
    try:
        deadline = time.monotonic() + 120
        tmp = []
        while p.poll() is None and time.monotonic() < deadline:
            tmp = [f for f in out.glob(".capture.sigmf-data.*.tmp") if f.stat().st_size > 0]
            if tmp:   # the flowgraph runs and the recording is being written
                break
            time.sleep(0.01)
        assert tmp, "the capture never started recording"
        children = _descendants(p.pid)
        assert any("link.receiver" in Path(f"/proc/{c}/cmdline").read_text() for c in children if _running(c))
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert _error_lines(err)[-1] == "jscec capture: interrupted (SIGTERM)" and "Traceback" not in err
    time.sleep(0.2)
    assert not [c for c in children if _running(c)]
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob(".*.tmp*"))
    assert (out / "keys" / "bob.key").is_file()   # the keys stay
