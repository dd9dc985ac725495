"""crypto.nonce_state: frame counters never handed out twice under one key, across runs and processes."""
import json
import multiprocessing
import stat

import pytest

from crypto.nonce_state import BLOCK, CounterState, state_path
from jscec.errors import UserError


def test_runs_under_one_key_continue_where_the_last_stopped(tmp_path):
    key = tmp_path / "bob.key"
    a = CounterState(key, "k1")
    assert [a.reserve(3), a.reserve(2)] == [0, 3] and a.reserved == [[0, 5]]
    doc = json.loads(state_path(key).read_text())
    assert doc["next"] == BLOCK and doc["key_id"] == "k1"            # the whole block, persisted at once
    assert stat.S_IMODE(state_path(key).stat().st_mode) == 0o600
    b = CounterState(key, "k1")                                       # the next run (or a crashed one's successor)
    assert b.reserve(1) == BLOCK                                      # skips what the last run may have used
    big = CounterState(key, "k1").reserve(3 * BLOCK)                  # a request larger than a block gets it whole
    assert big == 2 * BLOCK and json.loads(state_path(key).read_text())["next"] == 5 * BLOCK


def test_a_key_without_a_file_counts_from_zero_in_memory_and_can_be_kept_later(tmp_path):
    c = CounterState(None, "k2")
    assert [c.reserve(10), c.reserve(10)] == [0, 10]
    c.keep_with(tmp_path / "fresh.aes.key")
    assert CounterState(tmp_path / "fresh.aes.key", "k2").reserve(1) == 20


def test_used_up_counters_refuse_to_send(tmp_path):
    c = CounterState(tmp_path / "k.key", "k3", limit=100, block=40)
    assert c.reserve(60) == 0
    with pytest.raises(UserError, match="used up.*make a new key"):
        CounterState(tmp_path / "k.key", "k3", limit=100, block=40).reserve(41)
    with pytest.raises(UserError, match="used up"):
        CounterState(None, "k4", limit=5).reserve(6)


def test_a_damaged_state_is_refused_not_guessed(tmp_path):
    key = tmp_path / "k.key"
    path = state_path(key)
    for text in ("{not json", json.dumps({"format": "other", "next": 5}), json.dumps({"format": "x"})):
        path.write_text(text)
        path.chmod(0o600)
        with pytest.raises(UserError, match="damaged"):
            CounterState(key, "k").reserve(1)
    path.chmod(0o644)
    with pytest.raises(UserError, match="chmod 600"):
        CounterState(key, "k").reserve(1)


def _reserve_many(key, out, n):
    c = CounterState(key, "shared", block=7)
    out.put([c.reserve(3) for _ in range(n)])


def test_two_processes_under_one_key_never_get_the_same_counter(tmp_path):
    key = tmp_path / "k.key"
    q = multiprocessing.get_context("fork").Queue()
    procs = [multiprocessing.get_context("fork").Process(target=_reserve_many, args=(key, q, 40)) for _ in range(3)]
    for p in procs:
        p.start()
    got = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    used = [n for firsts in got for f in firsts for n in range(f, f + 3)]
    assert len(used) == len(set(used)) == 3 * 40 * 3
