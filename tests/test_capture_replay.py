"""`jscec capture` (simulated loopback → SigMF) and `jscec replay`: same result, deterministic, strict input."""
import json
import shutil

import numpy as np
import pytest

pytest.importorskip("gnuradio.gr")

from radio.recording import RecordingWriter  # noqa: E402
from tests.conftest import jscec  # noqa: E402


DWELL = 5_000


@pytest.fixture(scope="module")
def captured(tiny_model, tiny_data, tmp_path_factory):
    """A simulated-link capture that retunes between two frequencies every DWELL samples (so every replay
    test below also replays a multi-segment recording)."""
    out = tmp_path_factory.mktemp("capture")
    p = jscec("capture", "--model", tiny_model, "--data", tiny_data, "--images", 2, "--seed", 5,
              "--out", out / "run", "--recording", out / "rec", "--freq", 2.4e9, 2.45e9, "--dwell-samples", DWELL)
    key = out / "run" / "keys" / "bob.key"
    assert str(key) in p.stdout and (out / "rec.reference.npz").is_file()
    return {"dir": out, "meta": out / "rec.sigmf-meta", "key": key, "live": json.loads((out / "run" / "result.json").read_text())}


def test_capture_metadata_annotates_frames_and_holds_no_secret(captured):
    meta = json.loads(captured["meta"].read_text())
    g = meta["global"]
    assert g["core:datatype"] == "cf32_le" and g["core:sample_rate"] == 1e6
    assert g["jscec:pulse"]["sps"] == 4 and g["jscec:version"] and g["jscec:device"]["device"] == "sim"
    n = (captured["dir"] / "rec.sigmf-data").stat().st_size // 8
    caps = meta["captures"]
    assert len(caps) == -(-n // DWELL) > 2                        # a segment per retune
    assert [c["core:sample_start"] for c in caps] == list(range(0, n, DWELL))
    assert [c["core:frequency"] for c in caps] == [2.4e9, 2.45e9] * (len(caps) // 2) + [2.4e9] * (len(caps) % 2)
    assert all(c["core:datetime"] for c in caps)
    assert g["jscec:retune"] == {"frequencies_hz": [2.4e9, 2.45e9], "dwell_samples": DWELL}
    assert [s["sample_start"] for s in captured["live"]["recording"]["segments"]] == list(range(0, n, DWELL))
    anns = meta["annotations"]
    assert len(anns) == captured["live"]["bob"]["frames_sent"] == 2
    assert all(a["core:sample_count"] > 0 and "jscec:counter" in a and "jscec:mer_db" in a for a in anns)
    text = captured["meta"].read_text()
    assert "seed" not in text.lower() and "secret" not in text.lower()
    assert captured["key"].read_bytes()[:32] not in captured["meta"].read_bytes()


def _replay(captured, out, *extra):
    return jscec("replay", captured["meta"], "--key", captured["key"], "--out", out, *extra)


def _snapshot(out):
    report = json.loads((out / "result.json").read_text())
    report.pop("timing")
    images = {}
    for who in ("bob", "eve"):
        with np.load(out / f"{who}-images.npz") as z:
            images[who] = {n: z[n].copy() for n in z.files}
    return report, images


def test_replay_matches_live_run_and_is_deterministic(captured, tmp_path):
    out = tmp_path / "replay"
    _replay(captured, out)
    first, first_images = _snapshot(out)
    live = captured["live"]
    assert first["bob"]["psnr"] == live["bob"]["psnr"]       # to the last digit
    assert first["bob"]["ssim"] == live["bob"]["ssim"]
    assert first["bob"]["frames_ok"] == first["bob"]["frames_sent"] == 2
    assert first["recording"]["frames_found"] == 2
    for f in ("panel.png", "constellation.png"):
        assert (out / f).is_file()
    _replay(captured, out)
    second, second_images = _snapshot(out)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    for who in ("bob", "eve"):
        assert first_images[who].keys() == second_images[who].keys()
        for n in first_images[who]:
            assert first_images[who][n].tobytes() == second_images[who][n].tobytes()


def test_replay_without_reference_images_saves_both_images_and_scores_nothing(captured, tmp_path):
    """A recording with no <base>.reference.npz beside it (someone else's, or the reference lost): the same
    images are decoded and saved, nothing is scored, and the run says so in one line — not an error."""
    base = tmp_path / "bare"
    for ext in (".sigmf-meta", ".sigmf-data"):
        shutil.copyfile(captured["dir"] / f"rec{ext}", str(base) + ext)
    with_ref, without = tmp_path / "with", tmp_path / "without"
    _replay(captured, with_ref)
    p = jscec("replay", str(base) + ".sigmf-meta", "--key", captured["key"], "--out", without)
    assert "no reference images" in p.stdout and "not scored" in p.stdout and "Traceback" not in p.stderr
    report, images = _snapshot(without)
    scored, scored_images = _snapshot(with_ref)
    assert report["references"] is None and report["image_sizes"] is None
    assert scored["references"].endswith("rec.reference.npz")
    for who in ("bob", "eve"):
        assert report[who]["psnr"] is None and report[who]["ssim"] is None
        assert report[who]["frames_ok"] == scored[who]["frames_ok"] > 0
        assert all("psnr" not in row for row in report["per_image"][who])
        assert images[who].keys() == scored_images[who].keys() and len(images[who]) > 1   # images + constellation
        for n in images[who]:
            assert images[who][n].tobytes() == scored_images[who][n].tobytes()
        assert report["files"][f"{who}_images"].endswith(f"{who}-images.npz")
    assert scored["bob"]["psnr"] is not None and (without / "panel.png").is_file()
    p = jscec("replay", str(base) + ".sigmf-meta", "--key", captured["key"], "--out", tmp_path / "x",
              "--reference", tmp_path / "missing.npz", check=False)
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [
        f"jscec replay: error: no reference images {tmp_path / 'missing.npz'}"]


def _recording(base, samples, reference):
    with RecordingWriter(base, 1e6, 2.4e9, {"device": "test"}) as w:
        w.write(samples)
    shutil.copyfile(reference, str(base) + ".reference.npz")
    return str(base) + ".sigmf-meta"


def _bad_inputs(captured, d):
    rng = np.random.default_rng(0)
    ref = captured["dir"] / "rec.reference.npz"
    cases = {}
    cases["no frames"] = _recording(d / "silence", np.zeros(40000, np.complex64), ref)
    noise = 0.3 * (rng.standard_normal(60000) + 1j * rng.standard_normal(60000))
    tone = np.exp(2j * np.pi * 0.05 * np.arange(60000))
    cases["other signal"] = _recording(d / "other", (noise + tone).astype(np.complex64), ref)
    meta = json.loads(captured["meta"].read_text())
    data = (captured["dir"] / "rec.sigmf-data").read_bytes()
    for name, meta_text, data_bytes in (
            ("malformed meta", '{"global": {"core:datatype": "cf32_le",', data),
            ("unsupported datatype", json.dumps({**meta, "global": {**meta["global"], "core:datatype": "cu8"}}), data),
            ("short data file", json.dumps({**meta, "annotations": []}), data[:-3])):
        base = d / name.replace(" ", "_")
        (d / (base.name + ".sigmf-meta")).write_text(meta_text)
        (d / (base.name + ".sigmf-data")).write_bytes(data_bytes)
        shutil.copyfile(ref, str(base) + ".reference.npz")
        cases[name] = str(base) + ".sigmf-meta"
    return cases


@pytest.mark.parametrize("case, words", [
    ("malformed meta", "not valid JSON"), ("unsupported datatype", "not supported"),
    ("short data file", "not a whole number"), ("no frames", "no DeepJSCEC frames found in silence.sigmf-meta"),
    ("other signal", "no DeepJSCEC frames found in other.sigmf-meta")])
def test_replay_refuses_bad_recordings_leaving_nothing(case, words, captured, tiny_model, tmp_path):
    rec = _bad_inputs(captured, tmp_path)[case]
    out = tmp_path / "out"
    before = sorted(p.name for p in tmp_path.iterdir())
    p = jscec("replay", rec, "--key", captured["key"], "--out", out, "--chains", "bob",
              "--model", tiny_model, check=False)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in p.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before   # no output, no staging folder


def test_ota_capture_retunes_the_fake_radios_and_segments_follow(tiny_model, tiny_data, tmp_path, monkeypatch):
    from link.apps.deepjscec import DeepJscecApp, ImageOptions
    from link.capture import CaptureOptions, run_capture
    from link.links.ota import OtaLink, RadioOptions
    from link.runner import RunOptions
    from radio.devices import fakes

    made = []
    init = fakes.FakePluto.__init__

    def keep(self, *args, **kw):
        init(self, *args, **kw)
        made.append(self)

    monkeypatch.setattr(fakes.FakePluto, "__init__", keep)
    freqs = [2.4e9, 915e6, 5.8e9]
    app = DeepJscecApp(ImageOptions(model=str(tiny_model), mode="lwe", data=str(tiny_data), images=1))
    link = OtaLink(RadioOptions(tx="fake-pluto", bob="fake-pluto", eve="fake-pluto:rx1_noise_std=5e-4#1"))
    report = run_capture(app, link, RunOptions(out_dir=str(tmp_path / "run"), timeout_s=120),
                         CaptureOptions(recording=str(tmp_path / "rec"), freq=freqs, dwell_s=0.2), log=lambda *a: None)
    assert report["bob"]["frames_ok"] == report["bob"]["frames_sent"]       # the link followed the retunes
    meta = json.loads((tmp_path / "rec.sigmf-meta").read_text())
    caps = meta["captures"]
    assert len(caps) >= 3 and [c["core:sample_start"] for c in caps] == [k * 200_000 for k in range(len(caps))]
    assert [c["core:frequency"] for c in caps] == [freqs[k % 3] for k in range(len(caps))]
    assert meta["global"]["jscec:device"]["uri"] == "fake-pluto"
    # every fake radio (TX/Bob's, and Eve's two-channel one) was really set to each frequency, in turn
    assert len(made) == 2
    for sdr in made:
        rx = [f for name, f in sdr.lo_history if name == "rx_lo"]
        assert rx[:4] == [2.4e9, 915e6, 5.8e9, 2.4e9]                        # open, then the pre-run check
        assert rx[4:4 + len(caps) - 1] == [freqs[k % 3] for k in range(1, len(caps))]
    text = (tmp_path / "rec.sigmf-meta").read_text().lower()
    assert "secret" not in text and "bob.key" not in text
