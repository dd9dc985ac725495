"""GNU Radio QA-style tests of the link's blocks and flowgraphs (known symbols in, assert what comes out)."""
import importlib.util
import os
import subprocess
import time
from pathlib import Path

import numpy as np
from gnuradio import blocks, gr

from calibration.snr import mer_db
from flowgraphs.chains import ChannelBranch, RxChain, TxChain, fractional_delay_taps
from radio.impairments import Impairments
from link.sender import frame_stream
from radio.frame import random_frames
from radio.pulse import PulseShape
from flowgraphs.pdu import FrameReceiver, pdu_to_frame
from radio.transport import SymbolSender, free_tcp_address

ROOT = Path(__file__).resolve().parents[1]
PULSE = PulseShape()


def _frames(n, payload_len, rng, counter0=0):
    frames, sent = random_frames(n, payload_len, rng, counter0)
    return frame_stream(frames), sent




def test_known_symbols_through_rotator_noise_and_delay():
    """vector source → TX RRC → rotator (CFO) → fractional delay → noise → RxChain → PDUs."""
    rng = np.random.default_rng(0)
    syms, sent = _frames(3, 1024, rng, counter0=77)
    cfo = 0.04
    tb = gr.top_block()
    src = blocks.vector_source_c(syms, False)
    tx = TxChain(PULSE)
    rot = blocks.rotator_cc(2 * np.pi * cfo / PULSE.sps)
    from gnuradio import analog, filter as gr_filter

    delay = gr_filter.fir_filter_ccc(1, fractional_delay_taps(0.42))
    noise = analog.noise_source_c(analog.GR_GAUSSIAN, PULSE.noise_voltage(30), 5)
    add = blocks.add_cc()
    rx = RxChain(PULSE)
    dbg = blocks.message_debug()
    tb.connect(src, tx, rot, delay, (add, 0))
    tb.connect(noise, blocks.head(gr.sizeof_gr_complex, syms.size * PULSE.sps), (add, 1))
    tb.connect(add, rx)
    tb.msg_connect(rx, "frames", dbg, "store")
    tb.run()
    frames = [pdu_to_frame(dbg.get_message(i)) for i in range(dbg.num_messages())]
    assert [f.counter for f in frames] == [77, 78, 79]
    for f in frames:
        assert mer_db(sent[f.counter - 77], f.payload) > 29.0
        assert abs(f.cfo - cfo) < 1e-3
        assert abs(f.mer_db - 30) < 1.5


def _rx_pdus(samples, sync_process):
    """Samples → RxChain → PDUs; the frames, and whether ``tb.run()`` ended by itself."""
    import threading

    tb = gr.top_block()
    rx = RxChain(PULSE, sync_process=sync_process)
    dbg = blocks.message_debug()
    tb.connect(blocks.vector_source_c(samples, False), rx)
    tb.msg_connect(rx, "frames", dbg, "store")
    runner = threading.Thread(target=tb.run, daemon=True)
    runner.start()
    runner.join(60)
    ended = not runner.is_alive()
    if not ended:
        tb.stop()
        tb.wait()
    return [pdu_to_frame(dbg.get_message(i)) for i in range(dbg.num_messages())], ended


def test_frame_sync_with_a_worker_process_publishes_the_same_frames():
    from radio.pulse import shape
    from tests.test_sync import _impair

    # The impaired signal is made once in numpy: GNU Radio's rotator depends (in the last bits) on
    # how the scheduler cuts the stream, so two flowgraph runs would not see the same samples.
    rng = np.random.default_rng(21)
    syms, _ = _frames(5, 1500, rng, counter0=300)
    samples = _impair(shape(syms, PULSE), rng, 22, -0.02, 0.3, 30e-6).astype(np.complex64)
    one, _ = _rx_pdus(samples, False)
    two, ended = _rx_pdus(samples, True)
    assert ended, "tb.run() did not end: the publisher must finish after the last frame"
    assert [f.counter for f in two] == [300, 301, 302, 303, 304]
    assert [(f.counter, f.start, f.payload.tobytes(), f.mer_db, f.cfo) for f in two] == \
        [(f.counter, f.start, f.payload.tobytes(), f.mer_db, f.cfo) for f in one]


def test_a_dead_synchroniser_worker_ends_the_run_with_its_error():
    from radio.sync_process import SyncWorkerError

    rng = np.random.default_rng(22)
    syms, _ = _frames(3, 1000, rng)
    tb = gr.top_block()
    rx = RxChain(PULSE, sync_process=True)
    dbg = blocks.message_debug()
    tb.connect(blocks.vector_source_c(syms, False), TxChain(PULSE), rx)
    tb.msg_connect(rx, "frames", dbg, "store")
    rx.sync.sync.wait_ready()
    rx.sync.sync._proc.kill()
    tb.start()
    deadline = time.monotonic() + 60
    while rx.sync.samples_done() < syms.size * PULSE.sps and time.monotonic() < deadline:
        time.sleep(0.05)
    tb.stop()
    tb.wait()
    assert isinstance(rx.sync.error, SyncWorkerError)
    assert "\n" not in str(rx.sync.error) and dbg.num_messages() == 0


def test_channel_branch_sets_the_symbol_snr_and_impairments():
    rng = np.random.default_rng(1)
    syms, sent = _frames(4, 2048, rng, counter0=5)
    tb = gr.top_block()
    src = blocks.vector_source_c(syms, False)
    ch = ChannelBranch(20.0, Impairments(cfo=-0.03, sro_ppm=100, delay=1.7, phase_noise=0.003, gain=0.5,
                                         phase=2.0), PULSE, seed=3)
    rx = RxChain(PULSE)
    dbg = blocks.message_debug()
    tb.connect(src, TxChain(PULSE), ch, rx)
    tb.msg_connect(rx, "frames", dbg, "store")
    tb.run()
    frames = [pdu_to_frame(dbg.get_message(i)) for i in range(dbg.num_messages())]
    assert [f.counter for f in frames] == [5, 6, 7, 8]
    mers = [mer_db(sent[f.counter - 5], f.payload) for f in frames]
    assert 19.3 < np.mean(mers) < 20.5, mers
    assert all(abs(f.sro_ppm + 100) < 30 for f in frames)
    # FrameSync reports the amplitude after the matched filter, whose peak is Σh² = sps per unit symbol:
    # a channel gain of 0.5 reads as 0.5·sps (measured: 1.993–2.000 for sps = 4).
    gains = [f.gain for f in frames]
    assert all(abs(g - 0.5 * PULSE.sps) / (0.5 * PULSE.sps) < 0.02 for g in gains), gains


def test_noise_only_input_gives_no_frames():
    tb = gr.top_block()
    from gnuradio import analog

    noise = analog.noise_source_c(analog.GR_GAUSSIAN, 1.0, 9)
    head = blocks.head(gr.sizeof_gr_complex, 1_000_000)
    rx = RxChain(PULSE)
    dbg = blocks.message_debug()
    tb.connect(noise, head, rx)
    tb.msg_connect(rx, "frames", dbg, "store")
    tb.run()
    assert dbg.num_messages() == 0
    assert rx.sync.stats()["frames"] == 0


def test_symbols_travel_over_zmq_into_a_pull_source():
    addr = free_tcp_address()
    sender = SymbolSender(addr)
    from gnuradio import zeromq

    tb = gr.top_block()
    src = zeromq.pull_source(gr.sizeof_gr_complex, 1, addr, 100, False, -1)
    sink = blocks.vector_sink_c()
    tb.connect(src, blocks.head(gr.sizeof_gr_complex, 70_000), sink)
    tb.start()
    data = (np.arange(70_000) + 1j * np.arange(70_000)[::-1]).astype(np.complex64)
    sender.send(data, chunk=30_000)
    deadline = time.monotonic() + 30
    while len(sink.data()) < data.size and time.monotonic() < deadline:
        time.sleep(0.05)
    tb.stop()  # a ZMQ-fed flowgraph never finishes by itself (DESIGN.md)
    tb.wait()
    sender.close()
    assert np.array_equal(np.asarray(sink.data(), dtype=np.complex64), data)


def _grcc(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), GRC_BLOCKS_PATH=str(ROOT / "flowgraphs" / "grc"))
    for name in ("tx", "rx", "sim_loopback"):
        r = subprocess.run(["grcc", "-o", str(tmp_path), str(ROOT / "flowgraphs" / "grc" / f"{name}.grc")],
                           env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    return tmp_path


def test_grc_flowgraphs_compile_and_the_sim_loopback_runs(tmp_path):
    out = _grcc(tmp_path)
    assert {p.name for p in out.glob("*.py")} == {"jscec_tx.py", "jscec_rx.py", "jscec_sim_loopback.py"}
    spec = importlib.util.spec_from_file_location("jscec_sim_loopback", out / "jscec_sim_loopback.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    a_tx, a_bob, a_eve = free_tcp_address(), free_tcp_address(), free_tcp_address()
    sender = SymbolSender(a_tx)
    tb = mod.jscec_sim_loopback(symbols_address=a_tx, bob_address=a_bob, eve_address=a_eve, snr_b_db=25.0,
                                snr_e_db=5.0)
    bob, eve = FrameReceiver(a_bob), FrameReceiver(a_eve)
    rng = np.random.default_rng(2)
    syms, sent = _frames(3, 512, rng, counter0=900)
    tb.start()
    sender.send(syms)
    got = {"bob": [], "eve": []}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (len(got["bob"]) < 3 or len(got["eve"]) < 3):
        for name, r in (("bob", bob), ("eve", eve)):
            f = r.recv(0.05)
            if f is not None:
                got[name].append(f)
    tb.stop()
    tb.wait()
    for r in (bob, eve):
        r.close()
    sender.close()
    assert [f.counter for f in got["bob"]] == [900, 901, 902]
    assert [f.counter for f in got["eve"]] == [900, 901, 902]
    assert np.mean([f.mer_db for f in got["bob"]]) > np.mean([f.mer_db for f in got["eve"]]) + 15


def test_frame_log_records_frames_and_drops_and_ignores_foreign_messages():
    import pmt

    from flowgraphs.device_link import FrameLog
    from radio.frame import DEFAULT_FORMAT, FrameHeader
    from radio.sync import DroppedFrame, SyncedFrame
    from flowgraphs.pdu import frame_to_pdu

    header = FrameHeader(counter=9, mode="mask", key_id="00000001", model_id=1, constellation="zp4096",
                         payload_len=512, image_index=4, chunk_index=2, chunk_count=3, height=32, width=32)
    frame = SyncedFrame(header=header, payload=np.zeros(512, np.complex64), noise_var=0.01, mer_db=21.0,
                        snr_db=20.5, cfo=0.0, sro_ppm=0.0, timing=0.0, gain=1.0, start=100.0, metric=0.9)
    log = FrameLog(4)
    for msg in (frame_to_pdu(frame), frame_to_pdu(DroppedFrame(start=7.0, reason="header: CRC mismatch", metric=0.6)),
                pmt.intern("hello"), pmt.cons(pmt.make_dict(), pmt.PMT_NIL),
                pmt.cons(pmt.dict_add(pmt.make_dict(), pmt.intern("start"), pmt.intern("x")), pmt.PMT_NIL)):
        log._handle(msg)
    assert log.frames == [{"start": 100.0, "length": DEFAULT_FORMAT.frame_len(512) * 4, "counter": 9, "image": 4,
                           "chunk": 2, "mer_db": 21.0, "snr_db": 20.5}]
    assert log.drops == [{"start": 7.0, "reason": "header: CRC mismatch"}]
