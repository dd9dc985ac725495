"""SigMF recordings: round trip, capture segments, annotations, malformed input, atomicity."""
import json
import os

import numpy as np
import pytest

from jscec.errors import UserError
from radio.recording import RecordingWriter, open_recording

DESC = {"device": "pluto", "hw": "PlutoSDR [test]", "rx_gain_db": 30.0, "tx_gain_db": -10.0,
        "gain_mode": "manual", "sample_rate_hz": 1e6}


def _signal(n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)


def _record(tmp_path, name="cap", n=5000):
    x = _signal(n)
    w = RecordingWriter(tmp_path / name, 1e6, 2.4e9, DESC, {"description": "unit test", "run_id": "r1"})
    w.write(x[:2000])
    w.retune(2.45e9, rx_gain_db=20)
    w.write(x[2000:])
    w.annotate(100, 400, label="frame", frame=7, mer_db=31.5)
    w.annotate(2500, 1000, label="frame", frame=8, mer_db=28.0)
    meta = w.close()
    return x, meta


def test_round_trip_captures_annotations_and_global(tmp_path):
    x, meta_path = _record(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cap.sigmf-data", "cap.sigmf-meta"]
    rec = open_recording(meta_path)
    assert len(rec) == x.size and rec.sample_rate == 1e6 and rec.center_freq == 2.4e9
    np.testing.assert_array_equal(rec.samples(), x)
    np.testing.assert_array_equal(rec.samples(1990, 20), x[1990:2010])
    assert [c["core:sample_start"] for c in rec.captures] == [0, 2000]
    assert [c["core:frequency"] for c in rec.captures] == [2.4e9, 2.45e9]
    assert rec.captures[0]["jscec:rx_gain_db"] == 30.0 and rec.captures[1]["jscec:rx_gain_db"] == 20.0
    assert rec.capture_at(1999)["core:frequency"] == 2.4e9 and rec.capture_at(2000)["core:frequency"] == 2.45e9
    a = rec.annotations
    assert [(n["core:sample_start"], n["core:sample_count"], n["jscec:frame"]) for n in a] == [(100, 400, 7), (2500, 1000, 8)]
    assert a[0]["core:label"] == "frame" and a[0]["jscec:mer_db"] == 31.5
    g = rec.global_info
    assert g["core:datatype"] == "cf32_le" and g["core:hw"] == "PlutoSDR [test]"
    assert g["jscec:rx_gain_db"] == 30.0 and g["jscec:version"] and g["jscec:run_id"] == "r1"
    assert g["core:description"] == "unit test" and g["core:recorder"] == "jscec"
    assert {"name": "jscec", "version": g["jscec:version"], "optional": True} in g["core:extensions"]
    rec.close()


def test_sigmf_package_reads_what_we_write(tmp_path):
    import sigmf
    x, meta_path = _record(tmp_path)
    handle = sigmf.fromfile(str(meta_path))
    handle.validate()
    np.testing.assert_allclose(handle.read_samples(), x)


def test_chunks_are_memmap_views_and_cover_everything(tmp_path):
    x, meta_path = _record(tmp_path, n=10_001)
    with open_recording(meta_path) as rec:
        chunks = list(rec.chunks(4096))
        assert [k for k, _ in chunks] == [0, 4096, 8192]
        assert all(isinstance(c, np.memmap) for _, c in chunks)  # views into the file, not copies
        assert not chunks[0][1].flags.writeable
        np.testing.assert_array_equal(np.concatenate([c for _, c in chunks]), x)


def test_open_by_base_or_data_name(tmp_path):
    x, _ = _record(tmp_path)
    for name in ("cap", "cap.sigmf-data"):
        with open_recording(tmp_path / name) as rec:
            assert len(rec) == x.size


def test_ci16_le_is_scaled_to_float(tmp_path):
    iq = np.array([[16384, -16384], [32767, 0], [-32768, 8192]], "<i2")
    (tmp_path / "c.sigmf-data").write_bytes(iq.tobytes())
    meta = {"global": {"core:datatype": "ci16_le", "core:sample_rate": 1e6, "core:version": "1.2.0"},
            "captures": [{"core:sample_start": 0, "core:frequency": 1e9}], "annotations": []}
    (tmp_path / "c.sigmf-meta").write_text(json.dumps(meta))
    with open_recording(tmp_path / "c.sigmf-meta") as rec:
        np.testing.assert_allclose(rec.samples(), [0.5 - 0.5j, 32767 / 32768, -1 + 0.25j])


# -- malformed input ------------------------------------------------------------------------------

def _write_pair(tmp_path, meta, data: bytes | None, raw_meta: bytes | None = None):
    (tmp_path / "m.sigmf-meta").write_bytes(raw_meta if raw_meta is not None else json.dumps(meta).encode())
    if data is not None:
        (tmp_path / "m.sigmf-data").write_bytes(data)
    return tmp_path / "m.sigmf-meta"


def _good_meta():
    return {"global": {"core:datatype": "cf32_le", "core:sample_rate": 1e6, "core:version": "1.2.0"},
            "captures": [{"core:sample_start": 0, "core:frequency": 1e9}], "annotations": []}


def _modify(path, value):
    def f(meta):
        node = meta
        for key in path[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
        return meta
    return f


_DELETE = object()
DATA_100 = np.zeros(100, np.complex64).tobytes()

MALFORMED = {
    "not-json": (None, DATA_100, b'{"global": {', "not valid JSON"),
    "not-utf8": (None, DATA_100, b"\xff\xfe\x00garbage", "not valid JSON"),
    "no-global": (lambda m: {"captures": []}, DATA_100, None, "no 'global'"),
    "no-datatype": (_modify(["global", "core:datatype"], _DELETE), DATA_100, None, "does not validate"),
    "bad-rate-type": (_modify(["global", "core:sample_rate"], "fast"), DATA_100, None, "does not validate"),
    "bad-capture": (_modify(["captures"], [{"core:frequency": 1e9}]), DATA_100, None, "does not validate"),
    "unsupported-datatype": (_modify(["global", "core:datatype"], "ri16_le"), DATA_100, None, "not supported"),
    "cf64": (_modify(["global", "core:datatype"], "cf64_le"), DATA_100, None, "not supported"),
    "missing-data": (lambda m: m, None, None, "missing"),
    "ragged-size": (lambda m: m, DATA_100 + b"\x00\x01\x02", None, "whole number"),
    "capture-beyond-end": (_modify(["captures"], [{"core:sample_start": 0}, {"core:sample_start": 500}]),
                           DATA_100, None, "beyond"),
    "annotation-beyond-end": (_modify(["annotations"], [{"core:sample_start": 90, "core:sample_count": 20}]),
                              DATA_100, None, "beyond"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_recordings_are_refused_in_one_line(tmp_path, case):
    change, data, raw, expect = MALFORMED[case]
    meta = change(_good_meta()) if change else None
    path = _write_pair(tmp_path, meta, data, raw)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(UserError) as err:
        open_recording(path)
    msg = str(err.value)
    assert expect in msg and "\n" not in msg and "m.sigmf" in msg
    assert sorted(os.listdir(tmp_path)) == before  # nothing created, nothing removed


def test_missing_metadata_file(tmp_path):
    with pytest.raises(UserError, match="no SigMF metadata"):
        open_recording(tmp_path / "absent.sigmf-meta")


def test_the_good_meta_used_above_is_accepted(tmp_path):
    path = _write_pair(tmp_path, _good_meta(), DATA_100)
    with open_recording(path) as rec:
        assert len(rec) == 100


# -- atomicity ------------------------------------------------------------------------------------

def test_abort_leaves_nothing(tmp_path):
    w = RecordingWriter(tmp_path / "a", 1e6, 2.4e9, DESC)
    w.write(_signal(1000))
    assert len(os.listdir(tmp_path)) == 1  # only the hidden temporary
    w.abort()
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError):
        w.write(_signal(10))


def test_exception_inside_with_block_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with RecordingWriter(tmp_path / "b", 1e6, 2.4e9, DESC) as w:
            w.write(_signal(1000))
            raise RuntimeError("radio unplugged")
    assert os.listdir(tmp_path) == []


def test_with_block_closes_normally(tmp_path):
    with RecordingWriter(tmp_path / "c", 1e6, 2.4e9, DESC) as w:
        w.write(_signal(10))
    assert sorted(os.listdir(tmp_path)) == ["c.sigmf-data", "c.sigmf-meta"]


def test_annotation_past_the_end_aborts_whole_recording(tmp_path):
    w = RecordingWriter(tmp_path / "d", 1e6, 2.4e9, DESC)
    w.write(_signal(100))
    w.annotate(50, 100, label="frame")
    with pytest.raises(UserError, match="runs past"):
        w.close()
    assert os.listdir(tmp_path) == []


def test_refuses_to_overwrite_unless_asked(tmp_path):
    _record(tmp_path, "e")
    with pytest.raises(UserError, match="already exists"):
        RecordingWriter(tmp_path / "e.sigmf-meta", 1e6, 2.4e9, DESC)
    w = RecordingWriter(tmp_path / "e", 1e6, 2.4e9, DESC, overwrite=True)
    w.write(_signal(3))
    w.close()
    with open_recording(tmp_path / "e") as rec:
        assert len(rec) == 3


def test_retune_without_samples_replaces_the_segment(tmp_path):
    w = RecordingWriter(tmp_path / "f", 1e6, 2.4e9, DESC)
    w.retune(915e6)
    w.write(_signal(10))
    w.close()
    with open_recording(tmp_path / "f") as rec:
        assert [c["core:frequency"] for c in rec.captures] == [915e6]


def test_bad_extra_global_key_is_refused(tmp_path):
    with pytest.raises(ValueError):
        RecordingWriter(tmp_path / "g", 1e6, 2.4e9, DESC, {"other:thing": 1})
    assert os.listdir(tmp_path) == []
