"""Issue 15's findings as tests: no nonce twice under one key across runs (DeepJSCEC and the baseline's AES-CTR),
a sender killed after reserving, key files others may read, and Eve's result independent of Bob's key."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("gnuradio.gr")

from tests.conftest import ROOT, jscec  # noqa: E402


def _counters(out) -> set[int]:
    """Every nonce of every cipher frame Bob received (a header counter and the subframes after it)."""
    bob = json.loads((out / "bob.json").read_text())
    per_frame = [f for f in bob["per_frame"] if f.get("ok")]
    report = json.loads((out / "result.json").read_text())
    used = {n for first, end in report["frame_counters"] for n in range(first, end)}
    assert {f["counter"] for f in per_frame} <= used        # the headers carry reserved counters only
    return used


def test_runs_under_one_key_never_share_a_frame_counter(tiny_model, tiny_data, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    common = ("--model", tiny_model, "--data", tiny_data, "--images", 2, "--snr-b", 30)
    jscec("loopback", *common, "--out", a)
    key = a / "keys" / "bob.key"
    jscec("loopback", *common, "--key", key, "--out", b)              # same key, same --seed
    jscec("capture", *common, "--key", key, "--out", c)               # and another command
    runs = [_counters(x) for x in (a, b, c)]
    assert all(runs) and not (runs[0] & runs[1]) and not (runs[0] & runs[2]) and not (runs[1] & runs[2])
    assert json.loads((b / "result.json").read_text())["bob"]["frames_ok"] == 2
    state = json.loads((a / "keys" / "bob.key.counter").read_text())
    assert state["next"] > max(max(r) for r in runs)


def test_a_sender_killed_after_reserving_never_has_its_counters_reused(tiny_model, tiny_data, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-m", "scripts.cli", "loopback", "--model", str(tiny_model), "--data",
                          str(tiny_data), "--images", "20", "--out", str(a)], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state = a / "keys" / "bob.key.counter"
    deadline = time.monotonic() + 120
    while not state.exists() and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.02)
    os.killpg(p.pid, signal.SIGKILL)                   # reserved, and perhaps nothing sent yet
    p.wait()
    reserved_until = json.loads(state.read_text())["next"]
    assert reserved_until > 0
    jscec("loopback", "--model", tiny_model, "--data", tiny_data, "--images", 2, "--key", a / "keys" / "bob.key",
          "--out", b)
    assert min(_counters(b)) >= reserved_until


def test_baseline_aes_nonces_are_unique_across_modulations_rates_and_runs(tmp_path, monkeypatch):
    from crypto.aes_ctr import new_key, save_key
    from scripts.cli import main
    from tests.test_baseline import _images, synthetic_dataset

    synthetic_dataset(monkeypatch, _images(40))
    key = save_key(tmp_path / "k.aes.key", new_key())
    ranges = []
    for i, link in enumerate(("awgn", "sim")):
        out = tmp_path / f"{i}.json"
        assert main(["baseline", "--link", link, "--key-file", str(key), "--images", "3", "--mod", "16qam", "64qam",
                     "--rate", "1/2", "--snr", "30", "--json", str(out)]) == 0
        ranges += [run["frame_numbers"] for run in json.loads(out.read_text())["runs"]]
    numbers = [n for first, end in ranges for n in range(first, end)]
    assert len(ranges) == 4 and len(numbers) == len(set(numbers))


def test_ota_baseline_two_modulations_use_different_frame_numbers(tmp_path, monkeypatch):
    from scripts.cli import main
    from tests.test_baseline import _images, synthetic_dataset

    synthetic_dataset(monkeypatch, _images(40))
    out = tmp_path / "o.json"
    assert main(["baseline", "--link", "ota", "--tx", "fake-pluto", "--bob", "fake-pluto", "--images", "2", "--mod",
                 "16qam", "64qam", "--rate", "1/2", "--json", str(out)]) == 0
    runs = json.loads(out.read_text())["runs"]
    firsts = [r["radio"]["first_frame"] for r in runs]
    assert firsts[0] != firsts[1] and [r["frame_numbers"][0] for r in runs] == firsts


def test_a_key_file_others_may_read_is_refused_in_one_line(tiny_model, tiny_data, tmp_path):
    jscec("loopback", "--model", tiny_model, "--data", tiny_data, "--images", 1, "--out", tmp_path / "a")
    key = tmp_path / "a" / "keys" / "bob.key"
    key.chmod(0o644)
    p = jscec("loopback", "--model", tiny_model, "--data", tiny_data, "--images", 1, "--key", key,
              "--out", tmp_path / "b", check=False)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and "chmod 600" in lines[0] and str(key) in lines[0]
    assert not (tmp_path / "b").exists()
    p = jscec("loopback", "--model", tiny_model, "--images", 1, "--key", tmp_path / "a" / "keys", check=False)
    assert p.returncode == 2 and "is a folder" in p.stderr


def test_replaying_with_a_key_of_another_mode_leaves_eve_unchanged(tiny_model, tiny_data, tmp_path):
    from crypto.cipher import CipherKeys

    cap = tmp_path / "cap"
    jscec("capture", "--model", tiny_model, "--data", tiny_data, "--images", 2, "--out", cap,
          "--recording", tmp_path / "rec")
    meta = tmp_path / "rec.sigmf-meta"
    right = jscec("replay", meta, "--key", cap / "keys" / "bob.key", "--out", tmp_path / "r1", "--json",
                  tmp_path / "r1.json")
    assert right.returncode == 0
    wrong_key = CipherKeys.generate(mode="mask").save(tmp_path / "mask.key")
    jscec("replay", meta, "--key", wrong_key, "--out", tmp_path / "r2", "--json", tmp_path / "r2.json")
    r1, r2 = (json.loads((tmp_path / f"r{i}.json").read_text()) for i in (1, 2))
    assert r1["mode"] == r2["mode"] == "lwe" and r1["bob"]["frames_ok"] == 2 and r2["bob"]["frames_ok"] == 0
    e1, e2 = (np.load(tmp_path / f"r{i}" / "eve-images.npz") for i in (1, 2))
    assert e1.files == e2.files and all(np.array_equal(e1[k], e2[k]) for k in e1.files)   # Eve's images, bit for bit
    for k, v in r1["eve"].items():
        assert r2["eve"][k] == (pytest.approx(v, abs=1e-6) if isinstance(v, float) else v), k
