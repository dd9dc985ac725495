"""The live view (``--live``, link/live): the hub's view of a run's messages, its server on 127.0.0.1, a sender
that never waits — and a person's look at a live `jscec loopback` in headless Chromium."""
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from jscec.errors import UserError
from link.live import ENV, run_meta
from link.live.publish import Publisher
from link.live.state import CONSTELLATION_FRAMES, LiveState

ROOT = Path(__file__).resolve().parents[1]


def _frame(counter, ok=True, reason=None, mer=25.0):
    rec = {"counter": counter, "image": counter // 2, "chunk": counter % 2, "mer_db": mer, "snr_db": mer + 0.1,
           "cfo": 0.01, "sro_ppm": 20.0, "timing": 0.1, "ok": ok}
    if reason:
        rec["reason"] = reason
    return rec


def _points(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64).tobytes()


def test_the_hub_folds_a_runs_messages_into_what_the_page_draws(tmp_path):
    ref = tmp_path / "reference.npz"
    sent = np.zeros((40, 60, 3), np.uint8)
    sent[:, :30] = 200
    np.savez(ref, image_0=sent)
    st = LiveState()
    st.apply({"kind": "run", "src": "7", "t": 100.0, "app": "DeepJSCEC", "link": "sim", "roles": ["bob", "eve"],
              "requested_snr_db": {"bob": 20.0, "eve": 5.0}, "reference": str(ref)})
    for i in range(20):
        st.apply({"kind": "frame", "src": "7", "t": 101.0 + i, "role": "bob", "rec": _frame(i)}, _points(seed=i))
    st.apply({"kind": "frame", "src": "7", "t": 121.0, "role": "bob", "rec": _frame(20, False, "other key")})
    st.apply({"kind": "frame", "src": "7", "t": 121.5, "role": "eve", "rec": {"ok": False, "reason": "header CRC",
                                                                              "snr_db": None}})
    tone = np.exp(2j * np.pi * 0.125 * np.arange(16384)).astype(np.complex64)
    st.apply({"kind": "spectrum", "src": "7", "t": 122.0, "role": "bob", "stats": {"frames": 20, "bad": float("nan")}},
             tone.tobytes())
    img = np.full((32, 48, 3), 90, np.uint8)
    st.apply({"kind": "image", "src": "7", "t": 123.0, "role": "bob", "index": 0, "shape": [32, 48, 3]}, img.tobytes())
    st.apply({"kind": "scores", "src": "7", "t": 123.1, "role": "bob", "rows": [{"index": 0, "psnr": 27.5,
                                                                                 "ssim": 0.81}]})
    assert st.flush() == 6          # run, bob's 21 frames as one update, eve's, the spectrum, image, scores
    kinds = [json.loads(u)["type"] for _, u in st.log]
    assert kinds == ["run", "frames", "frames", "spectrum", "images", "images"]
    frames = json.loads(st.log[1][1])
    assert len(frames["rows"]) == 21 and len(frames["points"]) == CONSTELLATION_FRAMES and frames["sent"] == 121.0
    snap = json.loads(st.snapshot_json())           # valid JSON: no NaN anywhere
    (run,) = snap["runs"]
    bob = run["roles"]["bob"]
    assert bob["counters"] == {"received": 21, "ok": 20, "dropped": {"other key": 1}, "decoded": 1}
    assert run["roles"]["eve"]["counters"]["dropped"] == {"header CRC": 1}
    assert bob["series"]["t"][0] == 1.0 and bob["series"]["mer"][0] == 25.0 and len(bob["series"]["t"]) == 20
    assert len(bob["constellation"]) == CONSTELLATION_FRAMES and len(bob["constellation"][0]) == 128
    psd = np.array(bob["spectrum"]["psd"])
    assert np.argmax(psd) == psd.size // 2 + psd.size // 8 and bob["spectrum"]["unit"] == "cycles/sample"
    assert bob["sync"] == {"frames": 20, "bad": None} and bob["images"] == [[0, 27.5, 0.81, None, None, None]]
    assert run["meta"]["requested_snr_db"] == {"bob": 20.0, "eve": 5.0}
    from PIL import Image

    got = Image.open(io.BytesIO(st.png(run["id"], "bob", 0)))
    assert got.size == (48, 32) and np.asarray(got)[0, 0].tolist() == [90, 90, 90]
    orig = np.asarray(Image.open(io.BytesIO(st.png(run["id"], "original", 0))))
    assert orig.shape == (40, 60, 3) and (orig == sent).all()
    assert st.png(run["id"], "eve", 0) is None and st.png("nope", "bob", 0) is None


def test_a_classifiers_labels_reach_the_page_with_their_class_names(tmp_path):
    """A classification run's chains decode no image: their labels (class names from the reference file),
    confidences and right/wrong marks take the decoded image's place, and count as decoded."""
    ref = tmp_path / "reference.npz"
    np.savez(ref, image_3=np.zeros((32, 32, 3), np.uint8), labels=np.array([-1, -1, -1, 5]),
             classes=np.array(["airplane", "automobile", "bird", "cat", "deer", "dog"]))
    st = LiveState()
    st.apply({"kind": "run", "src": "8", "t": 1.0, "app": "DeepJSCEC", "link": "sim", "roles": ["bob", "eve"],
              "reference": str(ref)})
    sink = []
    pub = Publisher.__new__(Publisher)          # the real message format, handed to the hub directly
    pub.send = lambda kind, fields=None, blob=b"": sink.append({"kind": kind, "src": "8", "t": 2.0, **fields})
    pub.labels("bob", [{"index": 3, "label": 5, "confidence": 0.9312, "correct": True}])
    pub.labels("eve", [{"index": 3, "label": 2, "confidence": 0.1, "correct": None}])
    for head in sink:
        st.apply(head)
    st.flush()
    (run,) = st.snapshot()["runs"]
    assert run["roles"]["bob"]["images"] == [[3, None, None, "dog", 0.931, True]]
    assert run["roles"]["eve"]["images"] == [[3, None, None, "bird", 0.1, None]]
    assert run["roles"]["bob"]["counters"]["decoded"] == 1
    # The truth arriving later updates the row, without counting the image twice.
    st.apply({"kind": "scores", "src": "8", "t": 3.0, "role": "eve", "rows": [{"index": 3, "label": 2,
                                                                               "confidence": 0.1, "correct": False}]})
    eve = st.snapshot()["runs"][0]["roles"]["eve"]
    assert eve["images"] == [[3, None, None, "bird", 0.1, False]] and eve["counters"]["decoded"] == 1


def test_a_page_follows_the_log_from_its_snapshot_and_counts_each_message_once():
    st = LiveState()
    st.apply({"kind": "frame", "src": "3", "t": 1.0, "role": "eve", "rec": _frame(0)})   # no run yet: one is made
    snap = st.snapshot()                    # flushes first: the frame is in the snapshot, before its seq
    assert snap["runs"][0]["roles"]["eve"]["counters"]["received"] == 1
    seq, ups = st.since(snap["seq"])
    assert ups == []
    st.apply({"kind": "frame", "src": "3", "t": 2.0, "role": "eve", "rec": _frame(1)})
    st.flush()
    seq, ups = st.since(snap["seq"])
    assert [json.loads(u)["rows"][0][1] for u in ups] == [1]
    st.log.clear()                          # a page further behind than the log reaches: a new snapshot
    assert st.since(0)[1] is None
    # Runs of one process follow each other; messages go to that process's latest run.
    st.apply({"kind": "run", "src": "3", "t": 3.0, "app": "DeepJSCEC"})
    st.apply({"kind": "frame", "src": "3", "t": 4.0, "role": "bob", "rec": _frame(2)})
    ids = list(st.runs)
    assert len(ids) == 2 and "bob" in st.runs[ids[1]].roles and "bob" not in st.runs[ids[0]].roles
    # A campaign's progress (jscec campaign --live).
    st.apply({"kind": "campaign", "src": "9", "t": 5.0, "event": "start", "plan": "p", "total": 4, "done": 1})
    st.apply({"kind": "campaign", "src": "9", "t": 6.0, "event": "cell", "done": 2, "line": "[2/4] cell two"})
    st.apply({"kind": "campaign", "src": "9", "t": 7.0, "event": "end", "status": "finished"})
    c = st.snapshot()["campaign"]
    assert (c["plan"], c["done"], c["total"], c["lines"], c["ended"]) == ("p", 2, 4, ["[2/4] cell two"], 7.0)


def test_a_publisher_never_waits_for_a_hub_that_is_not_there():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]          # nothing listens there
    pub = Publisher(f"tcp://127.0.0.1:{port}", "1")
    t0 = time.perf_counter()
    for i in range(20000):
        pub.frame("bob", _frame(i), np.zeros(512, np.complex64))
    assert time.perf_counter() - t0 < 5.0 and pub.dropped > 0
    t0 = time.perf_counter()
    pub.close()
    assert time.perf_counter() - t0 < 3.0


def test_run_meta_is_public():
    class Link:
        kind = "sim"

        class opts:
            snr_b_db, snr_e_db = 12.0, 3.0

    class Tx:
        key_path = Path("/secret/keys/bob.key")
        keys = object()
        frames_sent = 9
        images = [np.zeros((2, 2, 3))]
        model_name, mode = "cifar10-lwe", "lwe"
        ref_path = Path("/out/reference.npz")

    class TB:
        branches = {"bob": {}, "eve": {}}

    meta = run_meta(type("App", (), {"name": "DeepJSCEC"})(), Link(), Tx(), TB(), "/out")
    text = json.dumps(meta)
    assert "bob.key" not in text and "secret" not in text
    assert meta["requested_snr_db"] == {"bob": 12.0, "eve": 3.0} and meta["roles"] == ["bob", "eve"]
    assert meta["frames_sent"] == 9 and meta["images"] == 1 and meta["reference"] == "/out/reference.npz"


def _get(url, host=None):
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.headers.get("Content-Type"), r.read()


def test_the_live_view_serves_on_127_0_0_1_and_refuses_a_busy_port_and_other_hosts(monkeypatch):
    from link.live import publisher
    from link.live.view import LiveView

    monkeypatch.delenv(ENV, raising=False)
    lines = []
    with LiveView(0, log=lines.append) as view:
        assert lines == [f"live view: {view.url}"] and view.url.startswith("http://127.0.0.1:")
        status, ctype, body = _get(view.url)
        assert status == 200 and ctype.startswith("text/html") and b"DeepJSCEC-HIL" in body
        with pytest.raises(urllib.error.HTTPError) as err:      # another site's page reaching us (DNS rebinding)
            _get(view.url, host=f"attacker.example:{view.port}")
        assert err.value.code == 403
        # A second view on the same port is refused in one line.
        with pytest.raises(UserError) as busy:
            LiveView(view.port).__enter__()
        assert "in use" in str(busy.value) and "--live-port" in str(busy.value) and "\n" not in str(busy.value)
        # Messages reach a page's event stream within half a second.
        pub = publisher()
        got, ready = [], threading.Event()

        def follow():
            with urllib.request.urlopen(view.url + "api/events?since=0", timeout=20) as stream:
                ready.set()
                for raw in stream:
                    line = raw.decode().strip()
                    if line.startswith("data: "):
                        for u in json.loads(line[6:]):
                            got.append((time.time(), u))
                            if u["type"] == "images":
                                return

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        assert ready.wait(10)
        pub.send("run", {"app": "DeepJSCEC", "link": "sim", "roles": ["bob"]})
        pub.frame("bob", _frame(0), np.ones(512, np.complex64))
        pub.images("bob", [0], np.full((1, 8, 8, 3), 200, np.uint8))
        reader.join(10)
        by_type = {u["type"]: (t, u) for t, u in got}
        assert {"run", "frames", "images"} <= by_type.keys()
        t, frames = by_type["frames"]
        assert t - frames["sent"] < 0.5 and frames["rows"][0][1] == 0
        run_id = by_type["run"][1]["run"]["id"]
        status, ctype, png = _get(f"{view.url}image/{run_id}/bob/0.png")
        assert ctype == "image/png" and png[:8] == b"\x89PNG\r\n\x1a\n"
        with pytest.raises(urllib.error.HTTPError):
            _get(f"{view.url}image/{run_id}/bob/5.png")
    assert view.wait() == 0 and ENV not in os.environ
    assert not os.path.exists(view.address.removeprefix("ipc://"))     # its private socket folder is gone


@pytest.mark.skipif(not any(os.path.exists(p) for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser")),
                    reason="no chromium binary (Debian package chromium; scripts/setup-env.sh installs it)")
def test_a_person_watches_a_live_loopback_in_headless_chromium(tmp_path):
    """`jscec loopback --live` as a person runs it; the page, in headless Chromium, shows frames arriving while the run
    goes, the figures drawn, and Bob's and Eve's images once decoded. A screenshot is written
    ($JSCEC_LIVE_SCREENSHOT, else the test's folder)."""
    from tests.browser import Browser

    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop(ENV, None)
    proc = subprocess.Popen([sys.executable, "-m", "scripts.cli", "loopback", "--live", "--live-port", "0",
                             "--snr-b", "20", "--snr-e", "5", "--out", str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    try:
        url = None
        for line in proc.stdout:
            output.append(line)
            m = re.search(r"live view: (http://127\.0\.0\.1:\d+/)", line)
            if m:
                url = m.group(1)
                break
        assert url, "".join(output)
        threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True).start()
        probe = """(() => {
          const n = (id) => { const e = document.getElementById(id); return e ? +e.textContent : 0; };
          const pts = (id) => +(document.getElementById(id).dataset.points || 0);
          const loaded = (cls) => [...document.querySelectorAll('#images img.decoded.' + cls)]
                                    .filter((i) => i.complete && i.naturalWidth > 0).length;
          return {bob: n('frames-bob-ok'), eve: n('frames-eve-ok'), updates: +document.body.dataset.updates,
                  spectrum: pts('spectrum'), constBob: pts('const-bob'), constEve: pts('const-eve'),
                  mer: pts('plot-mer'), snr: pts('plot-snr'), cfo: pts('plot-cfo'), sro: pts('plot-sro'),
                  imgBob: loaded('bob'), imgEve: loaded('eve'), imgSent: loaded('original'),
                  decodedBob: n('images-bob-decoded'), latency: +(document.getElementById('latency').dataset.seconds || -1),
                  title: document.getElementById('title').textContent,
                  requested: document.querySelector('#row-bob td:nth-child(2)')?.textContent || ''};
        })()"""
        with Browser(1400, 1250) as page:
            page.open(url)
            seen, ended = [], None
            deadline = time.monotonic() + 900      # a generous bound: a machine shared with other jobs is slow
            while time.monotonic() < deadline:
                s = page.evaluate(probe)
                seen.append(s)
                if s["imgBob"] >= 3 and s["imgEve"] >= 3 and s["imgSent"] >= 3:
                    break
                if proc.poll() is not None:        # the command ended: the page keeps what it shows
                    ended = ended or time.monotonic()
                    if time.monotonic() - ended > 5:
                        break
                time.sleep(0.1)
            shot = Path(os.environ.get("JSCEC_LIVE_SCREENSHOT") or tmp_path / "live.png")
            page.screenshot(shot)
        assert proc.wait(900) == 0, "".join(output)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    last = seen[-1]
    # Frames appeared and updated while the run went: several counts between none and all of them.
    counts = sorted({s["bob"] for s in seen})
    assert len([c for c in counts if 0 < c < last["bob"]]) >= 2, counts
    result = json.loads((out / "result.json").read_text())
    assert last["bob"] == result["bob"]["frames_ok"] == result["bob"]["frames_sent"]
    assert last["eve"] == result["eve"]["frames_ok"] and last["updates"] > 5
    # The figures are drawn; images appear (sent, Bob's, Eve's) with the decoded counts; SNR requested is shown.
    for key in ("spectrum", "constBob", "constEve", "mer", "snr", "cfo", "sro"):
        assert last[key] > 0, (key, last)
    assert last["imgBob"] == last["imgEve"] == last["imgSent"] == 3 and last["decodedBob"] == 3
    assert "20.0 dB" in last["requested"] and "DeepJSCEC over sim" in last["title"]
    assert 0 <= last["latency"] < 0.5
    assert shot.stat().st_size > 20000
