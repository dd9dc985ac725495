"""link.jsonstream: a JSON object's big arrays left in the file and read when iterated (bounded memory of the
runner that gathers the receive chains' summaries)."""
import json
import pickle

import numpy as np
import pytest

import link.jsonstream as js
from link.jsonstream import JsonArray, load_object

DOCS = ['{}', '{"a": 1}', '{"a": [], "b": 12345678, "c": [1, 2.5e10, -3E-2, true, null, {"x": [1]}], "d": "s\\"]"}',
        ' { "c" : [ 1 , 2 ] ,"a":[[]] } ', '{"c": ["\\u00e9t\\u00e9", "\\\\"], "z": false}']


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 16])
@pytest.mark.parametrize("text", DOCS)
def test_any_layout_reads_as_json_load_does(tmp_path, monkeypatch, chunk, text):
    monkeypatch.setattr(js._Reader, "CHUNK", chunk)
    path = tmp_path / "d.json"
    path.write_text(text)
    want = json.loads(text)
    got = load_object(path, lazy=("a", "c"))
    assert list(got) == list(want)
    for k, v in want.items():
        if k in ("a", "c") and isinstance(v, list):     # a named field that is no array is decoded as it is
            assert isinstance(got[k], JsonArray) and len(got[k]) == len(v)
            assert list(got[k]) == v and got[k] == v and (not v or got[k][-1] == v[-1])
        else:
            assert got[k] == v


def test_a_chain_summary_keeps_no_record_in_memory(tmp_path):
    from link.receiver.chains import write_json

    records = [{"counter": i, "ok": bool(i % 3), "mer_db": float(np.float32(i) / 7), "guess": {"stat-cos": i % 2}}
               for i in range(5000)]
    path = tmp_path / "eve.json"
    write_json(path, {"role": "eve", "frames_ok": 3333, "images": [{"index": 0}], "per_frame": records})
    doc = load_object(path, lazy=("per_frame",))
    assert doc["role"] == "eve" and doc["images"] == [{"index": 0}]
    frames = doc["per_frame"]
    assert isinstance(frames, JsonArray) and frames == records and frames[1234] == records[1234]
    assert pickle.loads(pickle.dumps(frames)) == records
    assert len(pickle.dumps(frames)) < 500            # a path and a key, not the records


@pytest.mark.parametrize("bad", ['{"a": [1, 2}', '{"a": 1', '[1]', '{"a": [1,', '{"a" 1}'])
def test_a_malformed_file_is_refused_with_its_name(tmp_path, bad):
    path = tmp_path / "bad.json"
    path.write_text(bad)
    with pytest.raises(ValueError, match="bad.json"):
        load_object(path, lazy=("a",))
