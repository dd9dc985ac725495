"""The synchroniser split over two processes gives what the one-process synchroniser gives, bit for bit."""
import numpy as np
import pytest

from link.sender import frame_stream
from radio.frame import DEFAULT_FORMAT, FrameFormat, FrameHeader, build_frame, random_frames
from radio.pulse import PulseShape, shape
from radio.sync import DroppedFrame, StreamSync, SyncedFrame, detection_filter
from radio.sync_process import ProcessSync, SyncWorkerError
from radio.zp_qam import modulate
from tests.test_sync import _impair

PULSE = PulseShape()


def _signal(rng):
    """Six frames, the fourth with a header beyond repair, through CFO, delay, SRO and noise."""
    frames, _ = random_frames(6, 700, rng, counter0=40)
    lay = DEFAULT_FORMAT.layout(700, 0)
    frames[3][lay.header[:120]] *= -1
    x = shape(frame_stream(frames), PULSE)
    y = _impair(x, rng, 25, 0.02, 0.6, 40e-6).astype(np.complex64)
    return y, detection_filter(y, PULSE)


def _run(sync, y, det, chunk=4096):
    out = []
    for i in range(0, y.size, chunk):
        out += sync.push(det[i:i + chunk], y[i:i + chunk])
    return out + sync.flush()


def _key(item):
    if isinstance(item, DroppedFrame):
        return ("drop", item.start, item.reason, item.metric, item.snr_db)
    return ("frame", item.counter, item.start, item.payload.tobytes(), item.noise_var, item.mer_db, item.snr_db,
            item.cfo, item.sro_ppm, item.timing, item.gain)


def test_same_frames_and_drops_in_the_same_order():
    y, det = _signal(np.random.default_rng(11))
    one = _run(StreamSync(PULSE), y, det)
    with ProcessSync(PULSE) as two_proc:
        two = _run(two_proc, y, det)
        stats = two_proc.stats
    assert [type(i) for i in one] == [SyncedFrame] * 3 + [DroppedFrame] + [SyncedFrame] * 2
    assert [_key(i) for i in two] == [_key(i) for i in one]
    assert stats.frames == 5 and stats.header_failures == 1


def test_same_frames_at_a_wide_cfo_with_receiver_faults():
    """Half a cycle per symbol, an IQ image and a DC offset: the worker's DC/IQ correction (carried from
    frame to frame) gives what the one-process synchroniser gives."""
    rng = np.random.default_rng(16)
    frames, _ = random_frames(5, 900, rng, counter0=70)
    x = shape(frame_stream(frames), PULSE)
    y = _impair(x, rng, 30, 0.48, 1.9, 20e-6)
    y = (y + 10 ** (-25 / 20) * np.exp(0.6j) * np.conj(y) + 0.7 * 10 ** (-30 / 20)).astype(np.complex64)
    det = detection_filter(y, PULSE)
    one = _run(StreamSync(PULSE), y, det)
    with ProcessSync(PULSE) as two_proc:
        two = _run(two_proc, y, det)
    assert [i.counter for i in one] == list(range(70, 75))
    # At this offset the matched filter takes most of the image: the correction stops once the rest no
    # longer matters (here at ~28 dB), but it is in force on every frame.
    assert all(20 < i.image_rejection_db < 32 and -35 < i.dc_dbc < -28 for i in one)
    assert [_key(i) for i in two] == [_key(i) for i in one]


def test_a_dead_worker_is_a_one_line_error():
    y, det = _signal(np.random.default_rng(12))
    sync = ProcessSync(PULSE)
    sync.wait_ready()
    sync._proc.kill()
    sync._proc.join()
    with pytest.raises(SyncWorkerError) as err:
        _run(sync, y, det)
    assert "synchroniser worker" in str(err.value) and "\n" not in str(err.value)
    sync.close()


def test_another_frame_format_reaches_the_worker():
    fmt = FrameFormat(guard=48)
    rng = np.random.default_rng(14)
    p = modulate(rng.integers(0, 4093, 600))
    syms = np.concatenate([np.zeros(300, np.complex64), build_frame(FrameHeader(counter=9), p, fmt=fmt),
                           np.zeros(1500, np.complex64)])
    y = shape(syms, PULSE).astype(np.complex64)
    det = detection_filter(y, PULSE)
    one = _run(StreamSync(PULSE, fmt), y, det)
    with ProcessSync(PULSE, fmt) as sync:
        two = _run(sync, y, det)
    assert [i.counter for i in two] == [9]
    assert [_key(i) for i in two] == [_key(i) for i in one]


def test_a_stream_without_frames_closes_cleanly():
    rng = np.random.default_rng(13)
    qam = shape(modulate(rng.integers(0, 4093, 20_000)), PULSE).astype(np.complex64)
    with ProcessSync(PULSE) as sync:
        assert [i for i in _run(sync, qam, detection_filter(qam, PULSE)) if isinstance(i, SyncedFrame)] == []
        assert sync.outstanding == 0


def test_jobs_wait_for_a_full_batch_or_a_release():
    y, det = _signal(np.random.default_rng(15))
    with ProcessSync(PULSE, batch=100, hold_s=60.0) as sync:
        sync.wait_ready()
        for i in range(0, y.size, 4096):
            sync.submit(det[i:i + 4096], y[i:i + 4096])
        assert sync.found == 6 and sync.submitted == 0          # held: neither a full batch nor old enough
        sync.release(waited_s=60.0)
        assert sync.submitted == 0
        sync.release()
        assert sync.submitted == 6
        got = [sync.receive(timeout=30) for _ in range(6)]
    assert [type(i) for i in got] == [SyncedFrame] * 3 + [DroppedFrame] + [SyncedFrame] * 2
    with ProcessSync(PULSE, batch=2, hold_s=60.0) as sync:
        for i in range(0, y.size, 4096):
            sync.submit(det[i:i + 4096], y[i:i + 4096])
            assert sync.submitted % 2 == 0 and sync.found - sync.submitted < 2
        assert sync.submitted == 6
