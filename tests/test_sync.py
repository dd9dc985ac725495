"""The synchroniser on numpy streams: recovery through CFO, timing, SRO and noise; no false frames."""
import numpy as np
import pytest

from link.sender import frame_stream
from radio.frame import FrameHeader, build_frame, random_frames
from radio.pulse import PulseShape, shape
from radio.sync import DroppedFrame, StreamSync, SyncedFrame, detection_filter, synchronize
from radio.zp_qam import modulate

PULSE = PulseShape()


def _stream(n_frames, payload_len, rng, counter0=10):
    frames, sent = random_frames(n_frames, payload_len, rng, counter0)
    return shape(frame_stream(frames), PULSE), sent


def _impair(x, rng, snr_db, cfo, delay, sro=0.0, gain=0.7, phase=1.0):
    """Sinc-interpolated delay and sample-rate offset, CFO, gain, complex AWGN at symbol SNR."""
    n = np.arange(int((x.size - 64) / (1 + sro)))
    t = n * (1 + sro) + delay
    k = np.arange(-24, 25)
    idx = np.floor(t).astype(int)
    frac = t - idx
    y = np.zeros(n.size, complex)
    for kk in k:
        j = np.clip(idx + kk, 0, x.size - 1)
        y += x[j] * np.sinc(kk - frac) * np.kaiser(k.size, 8)[kk + 24]
    y = y * gain * np.exp(1j * (phase + 2 * np.pi * cfo / PULSE.sps * n))
    sigma = PULSE.noise_voltage(snr_db, gain)
    return y + sigma / np.sqrt(2) * (rng.standard_normal(n.size) + 1j * rng.standard_normal(n.size))


@pytest.mark.parametrize("cfo,delay,sro", [(0.05, 0.37, 100e-6), (-0.05, 2.81, -100e-6), (0.0, 0.0, 0.0)])
def test_frames_are_recovered_at_30_db(cfo, delay, sro):
    rng = np.random.default_rng(3)
    x, sent = _stream(4, 1024, rng)
    out, stats = synchronize(_impair(x, rng, 30, cfo, delay, sro), PULSE)
    frames = [f for f in out if isinstance(f, SyncedFrame)]
    assert [f.counter for f in frames] == [10, 11, 12, 13]
    for f in frames:
        ref = sent[f.counter - 10]
        mer = 10 * np.log10(np.mean(np.abs(ref) ** 2) / np.mean(np.abs(f.payload - ref) ** 2))
        assert mer >= 29.0, mer
        assert abs(f.mer_db - mer) < 1.5
        assert abs(f.cfo - cfo) < 1e-3
        # sro_ppm is the receiver's clock against the transmitter's: reading the TX signal at
        # t = n·(1 + ε) means a receiver clock slow by ε.
        assert abs(f.sro_ppm + sro * 1e6) < 30


def test_frames_are_found_at_5_db():
    rng = np.random.default_rng(4)
    x, _ = _stream(10, 512, rng)
    out, stats = synchronize(_impair(x, rng, 5, 0.02, 1.3), PULSE)
    assert sorted(f.counter for f in out if isinstance(f, SyncedFrame)) == list(range(10, 20))


def test_no_false_frames_on_noise_or_random_qam():
    rng = np.random.default_rng(5)
    noise = (rng.standard_normal(400_000) + 1j * rng.standard_normal(400_000)).astype(np.complex64)
    out, stats = synchronize(noise, PULSE)
    assert out == [] and stats.frames == 0
    qam = shape(modulate(rng.integers(0, 4093, 100_000)), PULSE)
    out, stats = synchronize(qam, PULSE)
    assert [f for f in out if isinstance(f, SyncedFrame)] == []


def test_a_corrupted_header_is_counted_and_dropped():
    rng = np.random.default_rng(6)
    p = modulate(rng.integers(0, 4093, 512))
    f = build_frame(FrameHeader(counter=5), p)
    from radio.frame import DEFAULT_FORMAT

    lay = DEFAULT_FORMAT.layout(512, 0)
    f[lay.header[:120]] *= -1  # far more errors than the Golay words correct
    syms = np.concatenate([np.zeros(200, np.complex64), f, np.zeros(1500, np.complex64)])
    out, stats = synchronize(shape(syms, PULSE), PULSE)
    assert stats.header_failures == 1 and stats.frames == 0
    assert len(out) == 1 and isinstance(out[0], DroppedFrame)


def test_the_equaliser_removes_a_short_echo():
    from radio.sync import SyncConfig

    rng = np.random.default_rng(7)
    x, sent = _stream(3, 2048, rng)
    echo = np.zeros(2 * PULSE.sps + 1, complex)
    echo[0], echo[PULSE.sps] = 1.0, 0.15j  # an echo one symbol late, −16.5 dB
    y = _impair(np.convolve(x, echo)[: x.size], rng, 35, 0.01, 0.6)

    def mer(cfg):
        out, _ = synchronize(y, PULSE, config=cfg)
        f = [f for f in out if isinstance(f, SyncedFrame)]
        assert len(f) == 3
        return np.mean([10 * np.log10(1 / np.mean(np.abs(fr.payload - sent[fr.counter - 10]) ** 2)) for fr in f])

    plain, equalised = mer(SyncConfig()), mer(SyncConfig(equalizer_taps=5))
    assert plain < 20 and equalised > 30, (plain, equalised)


@pytest.mark.parametrize("seed", range(8))
def test_cut_streams_in_odd_chunks_never_raise(seed):
    """Streams that start and end inside frames, at any SNR, CFO and SRO accepted, pushed in chunks of
    any size: the synchroniser reports what it found and never reads outside its samples (the
    compiled loops raise IndexError there instead of reading memory)."""
    rng = np.random.default_rng(100 + seed)
    x, _ = _stream(3, int(rng.integers(64, 2000)), rng)
    y = _impair(x, rng, rng.uniform(-2, 30), rng.uniform(-0.11, 0.11), rng.uniform(0, 4), rng.uniform(-1.5e-3, 1.5e-3))
    y = y[int(rng.integers(0, 3000)):]
    y = y[:int(rng.integers(y.size // 2, y.size))].astype(np.complex64)
    det = detection_filter(y, PULSE)
    sync, out, k = StreamSync(PULSE), [], 0
    while k < y.size:
        c = int(rng.integers(1, 9000))
        out += sync.push(det[k:k + c], y[k:k + c])
        k += c
    out += sync.flush()
    assert all(isinstance(f, (SyncedFrame, DroppedFrame)) for f in out)
    assert sync.stats.frames <= 3
