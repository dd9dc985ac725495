"""The live GNU Radio Companion flowgraphs (flowgraphs/grc/*_gui.grc, QT GUI): they compile with grcc, carry GNU
Radio's QT GUI sinks, and — run headless under Xvfb for a few seconds as GRC would run them — the simulated one
synchronises its demo frames while its window draws, and the Pluto one (its device swapped for a stand-in that
plays frames) does too and still publishes its frames for a receive chain."""
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("gnuradio.gr")

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
GUI = {"sim_loopback_gui": "jscec_sim_loopback_gui", "pluto_rx_gui": "jscec_rx_pluto_gui",
       "soapy_rx_gui": "jscec_rx_soapy_gui"}

#: Runs generated QT GUI flowgraphs in turn, each for a few seconds: grabs its window, prints its counters.
DRIVER = r'''
import importlib.util, json, signal, sys
signal.alarm(160)       # a watchdog: whatever hangs, this process ends
import numpy as np
from PyQt5 import Qt
from gnuradio import blocks, gr

def load(path, cls):
    spec = importlib.util.spec_from_file_location(cls, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

class StandIn(gr.hier_block2):
    """A Pluto source's stand-in: plays frames at its sample rate; answers the settings calls."""
    def __init__(self, samples, rate):
        gr.hier_block2.__init__(self, "stand_in", gr.io_signature(0, 0, 0), gr.io_signature(1, 1, gr.sizeof_gr_complex))
        self.src = blocks.vector_source_c(samples.tolist(), True)
        self.thr = blocks.throttle(gr.sizeof_gr_complex, rate)
        self.connect(self.src, self.thr, self)
        self.gains = []
    def set_gain(self, chan, gain):
        self.gains.append(gain)
    def __getattr__(self, name):
        if name.startswith("set_"):
            return lambda *a: None
        return gr.hier_block2.__getattr__(self, name)

app = Qt.QApplication([])
out = {}
jobs = json.loads(sys.argv[1])
def run(k=0):
    if k == len(jobs):
        print(json.dumps(out), flush=True)
        app.quit()
        return
    job = jobs[k]
    mod = load(job["path"], job["cls"])
    stand = None
    if job.get("stand_in"):
        from flowgraphs.demo import demo_frames
        from radio.pulse import PulseShape, shape
        stand = StandIn((0.3 * shape(demo_frames(4), PulseShape())).astype(np.complex64), 250e3)
        mod.iio.fmcomms2_source_fc32 = lambda *a: stand
    drain = None
    if "frames_address" in job.get("kwargs", {}):      # a receive chain's place: the ZMQ sink needs a reader
        from radio.transport import Drain
        drain = Drain(job["kwargs"]["frames_address"])
    tb = getattr(mod, job["cls"])(**job.get("kwargs", {}))
    tb.resize(1200, 860)
    tb.start()
    tb.show()
    def done():
        if stand is not None:
            tb.set_rx_gain(42)      # the slider's callback reaches the device
        saved = tb.grab().save(job["png"])
        syncs = {n: getattr(tb, n).stats() for n in ("bob_frame_sync", "eve_frame_sync", "frame_sync") if hasattr(tb, n)}
        tb.stop()
        tb.wait()
        if drain is not None:
            drain.close()
        out[job["cls"]] = {"sync": syncs, "saved": saved, "gains": stand.gains if stand is not None else None,
                           "to_chain": drain.received if drain is not None else None}
        tb.close()
        run(k + 1)
    Qt.QTimer.singleShot(int(job["seconds"] * 1000), done)

Qt.QTimer.singleShot(0, run)
app.exec_()
'''


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    if shutil.which("grcc") is None:
        pytest.skip("grcc (Debian package gnuradio) is not installed")
    out = tmp_path_factory.mktemp("grc_gui")
    env = dict(os.environ, PYTHONPATH=str(ROOT), GRC_BLOCKS_PATH=str(ROOT / "flowgraphs" / "grc"))
    for name in GUI:
        r = subprocess.run(["grcc", "-o", str(out), str(ROOT / "flowgraphs" / "grc" / f"{name}.grc")], env=env,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    return out


def test_the_gui_flowgraphs_compile_with_qt_gui_sinks(generated):
    for name, cls in GUI.items():
        text = (generated / f"{cls}.py").read_text()
        assert "gr.top_block, Qt.QWidget" in text, name        # generate_options: qt_gui
        for sink in ("qtgui.freq_sink_c(", "qtgui.waterfall_sink_c(", "qtgui.const_sink_c("):
            assert sink in text, (name, sink)
        assert "FrameSync(" in text and "pdu.pdu_to_tagged_stream(gr.types.complex_t" in text, name
    sim = (generated / "jscec_sim_loopback_gui.py").read_text()
    for slider in ("snr_b_db", "snr_e_db", "cfo", "sro_ppm"):       # QT GUI Range sliders with their callbacks
        assert f"self._{slider}_range = Range(" in sim and f"def set_{slider}(self" in sim, slider
    assert "set_noise_voltage(PulseShape(self.sps, self.rolloff).noise_voltage(self.snr_b_db))" in sim
    assert "set_frequency_offset((self.cfo / self.sps))" in sim and "DemoFrames(" in sim
    for kind, device in (("pluto", "iio.fmcomms2_source_fc32"), ("soapy", "soapy.source(")):
        text = (generated / f"jscec_rx_{kind}_gui.py").read_text()
        assert device in text and "zeromq.push_msg_sink" in text and "self.samples_in.set_gain(0, self.rx_gain)" in text


def test_a_gui_flowgraph_runs_headless_under_xvfb(generated, tmp_path):
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run (Debian package xvfb) is not installed: scripts/setup-env.sh installs it")
    jobs = [{"path": str(generated / "jscec_sim_loopback_gui.py"), "cls": "jscec_sim_loopback_gui", "seconds": 4,
             "png": str(tmp_path / "sim.png")},
            {"path": str(generated / "jscec_rx_pluto_gui.py"), "cls": "jscec_rx_pluto_gui", "seconds": 3,
             "png": str(tmp_path / "pluto.png"), "stand_in": True,
             "kwargs": {"frames_address": "tcp://127.0.0.1:0".replace(":0", f":{_free_port()}")}}]
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_RUNTIME_DIR=str(tmp_path / "runtime"))
    (tmp_path / "runtime").mkdir(mode=0o700)
    proc = subprocess.Popen(["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", sys.executable, str(driver),
                             json.dumps(jobs)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)      # xvfb-run, Xvfb and the flowgraph alike
        stdout, stderr = proc.communicate()
        pytest.fail("the QT GUI flowgraphs did not finish within 180 s: " + stderr[-2000:])
    assert proc.returncode == 0, stdout[-2000:] + stderr[-3000:]
    res = json.loads(stdout.strip().splitlines()[-1])
    sim = res["jscec_sim_loopback_gui"]
    assert sim["saved"]
    for role in ("bob_frame_sync", "eve_frame_sync"):
        s = sim["sync"][role]
        assert s["frames_published"] >= 5 and s["header_failures"] == 0, (role, s)   # ~50 frames/s at 250 kS/s
    pluto = res["jscec_rx_pluto_gui"]
    assert pluto["sync"]["frame_sync"]["frames_published"] >= 2 and pluto["to_chain"] >= 2 and 42 in pluto["gains"]
    from PIL import Image

    for name in ("sim.png", "pluto.png"):
        img = np.asarray(Image.open(tmp_path / name).convert("L"), dtype=float)
        assert img.shape[0] >= 600 and img.std() > 10, name       # a drawn window, not a blank one


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
