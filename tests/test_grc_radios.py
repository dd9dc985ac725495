"""The GNU Radio Companion flowgraphs for real radios (flowgraphs/grc/{pluto,soapy}_{tx,rx}.grc): they compile with
grcc, use GNU Radio's own device blocks (gr-iio, gr-soapy), and — with the device block swapped for a stand-in that
plays known frames — the RX flowgraph as generated publishes every frame and the TX one shapes what Alice sends."""
import importlib.util
import os
import subprocess
import time

import numpy as np
import pytest

pytest.importorskip("gnuradio.gr")

from gnuradio import blocks, gr  # noqa: E402

from flowgraphs.pdu import FrameReceiver  # noqa: E402
from radio.frame import FrameHeader, build_frame  # noqa: E402
from radio.pulse import PulseShape, shape  # noqa: E402
from radio.transport import SymbolSender, free_tcp_address  # noqa: E402
from radio.zp_qam import modulate  # noqa: E402

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
FLOWGRAPHS = {"pluto_tx": "jscec_tx_pluto", "pluto_rx": "jscec_rx_pluto", "soapy_tx": "jscec_tx_soapy",
              "soapy_rx": "jscec_rx_soapy"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("grc")
    env = dict(os.environ, PYTHONPATH=str(ROOT), GRC_BLOCKS_PATH=str(ROOT / "flowgraphs" / "grc"))
    for name in FLOWGRAPHS:
        r = subprocess.run(["grcc", "-o", str(out), str(ROOT / "flowgraphs" / "grc" / f"{name}.grc")], env=env,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    return out


def _module(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class _Stand(gr.hier_block2):
    """A device block's stand-in: plays ``samples`` (a source) or keeps what it gets (a sink); every ``set_*``,
    ``has_*`` or ``list_*`` call a generated flowgraph makes is recorded and answered."""

    def __init__(self, samples=None):
        if samples is None:
            gr.hier_block2.__init__(self, "stand_sink", gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                    gr.io_signature(0, 0, 0))
            self.sink = blocks.vector_sink_c()
            self.connect(self, self.sink)
        else:
            gr.hier_block2.__init__(self, "stand_source", gr.io_signature(0, 0, 0),
                                    gr.io_signature(1, 1, gr.sizeof_gr_complex))
            self.connect(blocks.vector_source_c(samples.tolist(), False), self)
        self.calls = []

    def __getattr__(self, name):
        if name.startswith(("set_", "has_", "list_")):
            return lambda *a: self.calls.append((name, a)) or (() if name.startswith("list_") else False)
        return gr.hier_block2.__getattr__(self, name)


def _frames(n=3, counter0=40):
    rng = np.random.default_rng(5)
    out = []
    for i in range(n):
        h = FrameHeader(counter=counter0 + i, mode="mask", key_id="0000abcd", model_id=7, constellation="zp4096",
                        image_index=i, chunk_index=0, chunk_count=1, height=32, width=32)
        out.append(build_frame(h, modulate(rng.integers(0, 4093, 512))))
    return np.concatenate([np.zeros(256, np.complex64), *out, np.zeros(2048, np.complex64)])


def test_the_radio_flowgraphs_use_gnu_radios_device_blocks(generated):
    text = {name: (generated / f"{mod}.py").read_text() for name, mod in FLOWGRAPHS.items()}
    assert "iio.fmcomms2_sink_fc32" in text["pluto_tx"] and "iio.fmcomms2_source_fc32" in text["pluto_rx"]
    assert "soapy.sink(" in text["soapy_tx"] and "soapy.source(" in text["soapy_rx"]
    for name in ("pluto_rx", "soapy_rx"):
        assert "FrameSync(" in text[name] and "zeromq.push_msg_sink" in text[name]
    for name in ("pluto_tx", "soapy_tx"):
        assert "zeromq.pull_source" in text[name] and "interp_fir_filter_ccf" in text[name]


@pytest.mark.parametrize("kind", ["pluto", "soapy"])
def test_the_rx_flowgraph_as_generated_publishes_every_frame(kind, generated, monkeypatch):
    mod = _module(generated / f"{FLOWGRAPHS[f'{kind}_rx']}.py")
    samples = (0.3 * shape(_frames(), PulseShape())).astype(np.complex64)
    stand = _Stand(samples)
    if kind == "pluto":
        monkeypatch.setattr(mod.iio, "fmcomms2_source_fc32", lambda *a: stand)
    else:
        monkeypatch.setattr(mod.soapy, "source", lambda *a: stand)
    address = free_tcp_address()
    tb = getattr(mod, FLOWGRAPHS[f"{kind}_rx"])(frames_address=address, freq=915e6, rx_gain=20)
    rx = FrameReceiver(address)
    tb.start()
    got = []
    deadline = time.monotonic() + 60
    while len(got) < 3 and time.monotonic() < deadline:
        f = rx.recv(0.1)
        if f is not None:
            got.append(f)
    tb.stop()
    tb.wait()
    rx.close()
    assert [f.counter for f in got] == [40, 41, 42] and min(f.mer_db for f in got) > 35
    assert any(name == "set_frequency" and 915e6 in args for name, args in stand.calls)   # the tuning it was given
    assert any(name == "set_gain" and 20 in args for name, args in stand.calls)


@pytest.mark.parametrize("kind", ["pluto", "soapy"])
def test_the_tx_flowgraph_as_generated_shapes_alices_symbols(kind, generated, monkeypatch):
    mod = _module(generated / f"{FLOWGRAPHS[f'{kind}_tx']}.py")
    stand = _Stand()
    if kind == "pluto":
        monkeypatch.setattr(mod.iio, "fmcomms2_sink_fc32", lambda *a: stand)
    else:
        monkeypatch.setattr(mod.soapy, "sink", lambda *a: stand)
    address = free_tcp_address()
    tb = getattr(mod, FLOWGRAPHS[f"{kind}_tx"])(symbols_address=address, tx_level=0.5)
    symbols = _frames(1)
    sender = SymbolSender(address)
    tb.start()
    sender.send(symbols)
    pulse = PulseShape()
    deadline = time.monotonic() + 30
    while len(stand.sink.data()) < symbols.size * pulse.sps and time.monotonic() < deadline:
        time.sleep(0.05)
    tb.stop()
    tb.wait()
    sender.close()
    got = np.asarray(stand.sink.data(), np.complex64)[: symbols.size * pulse.sps]
    want = 0.5 * shape(symbols, pulse)[: got.size]
    assert got.size == symbols.size * pulse.sps and np.allclose(got, want, atol=1e-5)
