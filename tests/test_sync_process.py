"""The synchroniser split over two processes gives what the one-process synchroniser gives, bit for bit."""
import numpy as np
import pytest

from link.sender import frame_stream
from radio.frame import DEFAULT_FORMAT, FrameFormat, FrameHeader, build_frame, random_frames
from radio.pulse import PulseShape, shape
from radio.sync import DroppedFrame, StreamSync, SyncedFrame, matched_filter
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
    return y, matched_filter(y, PULSE.taps)


def _run(sync, y, mf, chunk=4096):
    out = []
    for i in range(0, y.size, chunk):
        out += sync.push(mf[i:i + chunk], y[i:i + chunk])
    return out + sync.flush()


def _key(item):
    if isinstance(item, DroppedFrame):
        return ("drop", item.start, item.reason, item.metric, item.snr_db)
    return ("frame", item.counter, item.start, item.payload.tobytes(), item.noise_var, item.mer_db, item.snr_db,
            item.cfo, item.sro_ppm, item.timing, item.gain)


def test_same_frames_and_drops_in_the_same_order():
    y, mf = _signal(np.random.default_rng(11))
    one = _run(StreamSync(PULSE), y, mf)
    with ProcessSync(PULSE) as two_proc:
        two = _run(two_proc, y, mf)
        stats = two_proc.stats
    assert [type(i) for i in one] == [SyncedFrame] * 3 + [DroppedFrame] + [SyncedFrame] * 2
    assert [_key(i) for i in two] == [_key(i) for i in one]
    assert stats.frames == 5 and stats.header_failures == 1


def test_a_dead_worker_is_a_one_line_error():
    y, mf = _signal(np.random.default_rng(12))
    sync = ProcessSync(PULSE)
    sync.wait_ready()
    sync._proc.kill()
    sync._proc.join()
    with pytest.raises(SyncWorkerError) as err:
        _run(sync, y, mf)
    assert "synchroniser worker" in str(err.value) and "\n" not in str(err.value)
    sync.close()


def test_another_frame_format_reaches_the_worker():
    fmt = FrameFormat(guard=48)
    rng = np.random.default_rng(14)
    p = modulate(rng.integers(0, 4093, 600))
    syms = np.concatenate([np.zeros(300, np.complex64), build_frame(FrameHeader(counter=9), p, fmt=fmt),
                           np.zeros(1500, np.complex64)])
    y = shape(syms, PULSE).astype(np.complex64)
    mf = matched_filter(y, PULSE.taps)
    one = _run(StreamSync(PULSE, fmt), y, mf)
    with ProcessSync(PULSE, fmt) as sync:
        two = _run(sync, y, mf)
    assert [i.counter for i in two] == [9]
    assert [_key(i) for i in two] == [_key(i) for i in one]


def test_a_stream_without_frames_closes_cleanly():
    rng = np.random.default_rng(13)
    qam = shape(modulate(rng.integers(0, 4093, 20_000)), PULSE).astype(np.complex64)
    with ProcessSync(PULSE) as sync:
        assert [i for i in _run(sync, qam, matched_filter(qam, PULSE.taps)) if isinstance(i, SyncedFrame)] == []
        assert sync.outstanding == 0


def test_jobs_wait_for_a_full_batch_or_a_release():
    y, mf = _signal(np.random.default_rng(15))
    with ProcessSync(PULSE, batch=100, hold_s=60.0) as sync:
        sync.wait_ready()
        for i in range(0, y.size, 4096):
            sync.submit(mf[i:i + 4096], y[i:i + 4096])
        assert sync.found == 6 and sync.submitted == 0          # held: neither a full batch nor old enough
        sync.release(waited_s=60.0)
        assert sync.submitted == 0
        sync.release()
        assert sync.submitted == 6
        got = [sync.receive(timeout=30) for _ in range(6)]
    assert [type(i) for i in got] == [SyncedFrame] * 3 + [DroppedFrame] + [SyncedFrame] * 2
    with ProcessSync(PULSE, batch=2, hold_s=60.0) as sync:
        for i in range(0, y.size, 4096):
            sync.submit(mf[i:i + 4096], y[i:i + 4096])
            assert sync.submitted % 2 == 0 and sync.found - sync.submitted < 2
        assert sync.submitted == 6
