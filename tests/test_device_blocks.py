"""DeviceSource / DeviceSink in tiny GNU Radio flowgraphs, against the fakes and a recording."""
import numpy as np
import pytest

gr = pytest.importorskip("gnuradio.gr")
from gnuradio import blocks  # noqa: E402
import pmt  # noqa: E402

from flowgraphs.device_blocks import DeviceSink, DeviceSource, RetuneSchedule, RetuneTagger  # noqa: E402
from flowgraphs.device_link import RecordingSink  # noqa: E402
from radio.devices import RadioSettings, open_device  # noqa: E402
from radio.recording import RecordingWriter, open_recording  # noqa: E402

BUF = 1000


def settings(**kw):
    base = dict(center_freq_hz=2.4e9, sample_rate_hz=1e6, tx_gain_db=0.0, rx_gain_db=0.0, buffer_size=BUF)
    base.update(kw)
    return RadioSettings(**base)


#: Full output through the SoapySDR fake (UHD's B210 TX gain scale tops out at 89.75 dB).
SOAPY_UNITY_TX = 89.75


def signal(n, seed=1):
    rng = np.random.default_rng(seed)
    return (0.15 * (rng.standard_normal(n) + 1j * rng.standard_normal(n))).astype(np.complex64)


def transmit(dev, x):
    tb = gr.top_block()
    sink = DeviceSink(dev)
    tb.connect(blocks.vector_source_c(x.tolist()), sink)
    tb.run()
    return sink


def receive(dev, n):
    tb = gr.top_block()
    src = DeviceSource(dev)
    vs = blocks.vector_sink_c()
    tb.connect(src, blocks.head(gr.sizeof_gr_complex, n), vs)
    tb.run()
    tags = [(t.offset, pmt.symbol_to_string(t.key), pmt.to_long(t.value)) for t in vs.tags()]
    return np.array(vs.data(), np.complex64), sorted(tags), src


def test_loop_through_fake_soapy_with_impairments_and_tags():
    fs, cfo, delay = 1e6, 800.0, 25
    dev = open_device(f"fake-soapy:bench=0,cfo_hz={cfo},delay={delay},overflow_at=3,lost_samples=120",
                      settings(tx_gain_db=SOAPY_UNITY_TX))     # ideal: exact samples
    x = signal(5000)
    sink = transmit(dev, x)
    assert sink.items == 5000
    y, tags, src = receive(dev, 4500)
    # before the overflow: delayed, rotated copy of x
    n = np.arange(delay, 3000)
    np.testing.assert_allclose(y[delay:3000], x[:3000 - delay] * np.exp(2j * np.pi * cfo * n / fs), atol=1e-5)
    # the overflow lost 120 samples just before output sample 3000, and is tagged there
    assert tags == [(3000, "rx_drop", 120), (3000, "rx_overflow", 120)]
    n2 = np.arange(3120, 3120 + 1000)
    np.testing.assert_allclose(y[3000:4000], x[3120 - delay:4120 - delay] * np.exp(2j * np.pi * cfo * n2 / fs),
                               atol=1e-5)
    assert (src.overflows, src.drops) == (1, 1)
    dev.close()


def test_fake_pluto_overflow_is_tagged_with_unknown_count_and_underflows_counted():
    dev = open_device("fake-pluto:bench=0,overflow_at=2,underflow_at=0,lost_samples=300", settings())
    x = signal(4000)
    sink = transmit(dev, x)
    assert sink.underflows == 1
    y, tags, src = receive(dev, 3000)
    assert tags == [(2000, "rx_overflow", 0)]   # the Pluto cannot say how many were lost
    scale = 0.5                                   # nominal level is half DAC full scale
    np.testing.assert_allclose(y[:2000], scale * x[:2000], atol=2e-3)
    np.testing.assert_allclose(y[2000:3000], scale * x[2300:3300], atol=2e-3)
    dev.close()


def test_no_tags_without_events():
    dev = open_device("fake-soapy", settings())
    transmit(dev, signal(3000))
    y, tags, _ = receive(dev, 3000)
    assert tags == [] and y.size == 3000
    dev.close()


def test_sink_flushes_partial_buffer_on_stop():
    dev = open_device("fake-pluto", settings())
    sdr = dev._sdr
    transmit(dev, signal(2500))
    assert sdr.tx_pushes == 3   # two full buffers, then the zero-padded rest at stop()
    dev.close()


def test_replay_source_finishes_by_itself(tmp_path):
    x = signal(3500)
    with RecordingWriter(tmp_path / "cap", 1e6, 2.4e9, {"device": "fake"}) as w:
        w.write(x)
    dev = open_device(f"file:{tmp_path / 'cap.sigmf-meta'}", settings())
    tb = gr.top_block()
    vs = blocks.vector_sink_c()
    src = DeviceSource(dev)  # keep a Python reference to Python blocks while the flowgraph runs
    tb.connect(src, vs)
    tb.run()   # returns only because the source reports WORK_DONE at the end of the recording
    np.testing.assert_array_equal(np.array(vs.data(), np.complex64), x)
    dev.close()


def _tags(sink):
    return sorted((t.offset, pmt.symbol_to_string(t.key)) for t in sink.tags())


def test_two_channel_source_has_one_aligned_output_per_channel():
    dev = open_device("fake-pluto:bench=0,rx1_delay=7,rx1_path_gain_db=-6,overflow_at=2,lost_samples=50", settings(),
                      rx_channels=[0, 1])
    x = signal(4000)
    transmit(dev, x)
    tb = gr.top_block()
    src = DeviceSource(dev)
    sinks = [blocks.vector_sink_c() for _ in range(2)]
    for port, vs in enumerate(sinks):
        tb.connect((src, port), blocks.head(gr.sizeof_gr_complex, 3000), vs)
    tb.run()
    y0, y1 = (np.array(vs.data(), np.complex64) for vs in sinks)
    np.testing.assert_allclose(y0[:2000], 0.5 * x[:2000], atol=2e-3)
    np.testing.assert_allclose(y1[7:2000], 0.5 * 10 ** (-6 / 20) * x[:1993], atol=2e-3)
    np.testing.assert_allclose(y1[2000:3000], 0.5 * 10 ** (-6 / 20) * x[2043:3043], atol=2e-3)
    assert _tags(sinks[0]) == _tags(sinks[1]) == [(2000, "rx_overflow")]   # the event is on both channels
    dev.close()


def test_source_retunes_on_schedule_and_the_recording_gets_a_segment_per_retune(tmp_path):
    dev = open_device("fake-soapy", settings())
    transmit(dev, signal(100))
    schedule = RetuneSchedule([2.4e9, 915e6, 5.8e9], 1500, retune=dev.retune)
    tb = gr.top_block()
    src = DeviceSource(dev, schedule=schedule)
    writer = RecordingWriter(tmp_path / "hop", 1e6, 2.4e9, dev.describe())
    rec = RecordingSink(writer)
    tb.connect(src, blocks.head(gr.sizeof_gr_complex, 5000), rec)
    tb.run()
    writer.close()
    assert rec.error is None and writer.count == 5000
    # (the source may run ahead of head() before the flowgraph stops)
    assert schedule.events[:4] == [(0, 2.4e9, 2.4e9), (1500, 915e6, 915e6), (3000, 5.8e9, 5.8e9), (4500, 2.4e9, 2.4e9)]
    assert [f for d, c, f in dev._dev.freq_history if d == 1][1:4] == [915e6, 5.8e9, 2.4e9]   # the fake was set
    with open_recording(tmp_path / "hop") as r:
        assert [(c["core:sample_start"], c["core:frequency"]) for c in r.captures] == \
            [(0, 2.4e9), (1500, 915e6), (3000, 5.8e9), (4500, 2.4e9)]
        assert all(c["core:datetime"] for c in r.captures)
    dev.close()


def test_retune_tagger_marks_the_same_boundaries_without_a_device(tmp_path):
    x = signal(2600)
    schedule = RetuneSchedule([1e9, 2e9], 1000)
    tb = gr.top_block()
    tagger = RetuneTagger(schedule)
    writer = RecordingWriter(tmp_path / "sim", 1e6, 1e9)
    rec = RecordingSink(writer)
    tb.connect(blocks.vector_source_c(x.tolist()), tagger, rec)
    tb.run()
    writer.close()
    with open_recording(tmp_path / "sim") as r:
        np.testing.assert_array_equal(r.samples(), x)
        assert [(c["core:sample_start"], c["core:frequency"]) for c in r.captures] == \
            [(0, 1e9), (1000, 2e9), (2000, 1e9)]


def test_one_frequency_never_retunes():
    s = RetuneSchedule([2.4e9], 10)
    assert s.next_at is None
    with pytest.raises(ValueError):
        RetuneSchedule([2.4e9, 1e9], 0)
