"""The digital baseline over the CI fake radios (`jscec baseline --link ota`), recorded, replayed (`--link replay`)."""
import json
import shutil

import numpy as np
import pytest

pytest.importorskip("gnuradio.gr")

from crypto.aes_ctr import new_key, save_key  # noqa: E402
from radio.recording import RecordingWriter  # noqa: E402
from tests.test_baseline import _images, synthetic_dataset  # noqa: E402

ONE = ["--mod", "16qam", "--rate", "1/2"]


def _main(*args):
    from scripts.cli import main
    return main(["baseline", *map(str, args)])


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One fake-Pluto transmission of 3 images at 16-QAM 1/2 (~40 dB), recorded."""
    d = tmp_path_factory.mktemp("baseline-ota")
    with pytest.MonkeyPatch.context() as mp:
        synthetic_dataset(mp, _images(40))
        assert _main("--link", "ota", "--tx", "fake-pluto", "--bob", "fake-pluto", "--images", 3, *ONE,
                     "--record", d / "rec", "--json", d / "ota.json") == 0
    return {"dir": d, "meta": d / "rec.sigmf-meta", "key": d / "keys" / "rec.aes.key",
            "live": json.loads((d / "ota.json").read_text())}


def test_fake_ota_round_trip_decodes_every_image(recorded):
    doc = recorded["live"]
    run = doc["runs"][0]
    (row,) = run["results"]
    assert doc["link"] == "ota" and run["radio"]["tx"] == run["radio"]["bob"] == "fake-pluto"
    assert row["frames_sent"] == row["frames_received"] == 3 and row["frames_dropped"] == 0
    assert row["undecodable"] == 0 and row["undetected_errors"] == 0
    assert row["psnr"] == run["error_free"]["psnr"] and row["ssim"] == run["error_free"]["ssim"]
    assert row["snr_estimated"] and row["snr_db"] > 30 and row["mer_db"] > 30
    (dev,) = run["devices"].values()
    assert dev["roles"] == ["tx", "bob"] and dev["counters"]["overflows"] == 0
    rec = run["recording"]
    assert rec["frames_annotated"] == 3 and rec["key_file"] == str(recorded["key"])
    assert recorded["key"].stat().st_mode & 0o777 == 0o600 and recorded["key"].parent.stat().st_mode & 0o777 == 0o700


def test_recording_says_what_replay_needs_and_holds_no_key(recorded):
    meta = json.loads(recorded["meta"].read_text())
    g = meta["global"]
    b = g["jscec:baseline"]
    assert g["jscec:payload"] == "digital-baseline" and g["jscec:frames_sent"] == g["jscec:images"] == 3
    assert (b["codec"], b["mod"], b["rate"], b["k_symbols"], b["shape"]) == ("heif", "16qam", "1/2", 512, [32, 32])
    assert b["image_indices"] == [0, 1, 2] and g["jscec:pulse"]["sps"] == 4
    assert [a["jscec:image"] for a in meta["annotations"]] == [0, 1, 2]
    assert [a["jscec:counter"] for a in meta["annotations"]] == [b["first_frame"] + i for i in range(3)]
    key = recorded["key"].read_text().strip()
    assert len(key) == 32
    for f in (recorded["meta"], recorded["dir"] / "ota.json"):
        assert key not in f.read_text().lower()
    assert (recorded["dir"] / "rec.reference.npz").is_file()


def test_replay_gives_the_live_result_and_is_deterministic(recorded, tmp_path, capsys):
    outs = []
    for i in range(2):
        out = tmp_path / f"replay{i}.json"
        assert _main("--link", "replay", "--recording", recorded["meta"], "--key", recorded["key"], "--json", out) == 0
        outs.append(out.read_text())
    assert outs[0] == outs[1]                                          # bit-for-bit repeatable
    doc = json.loads(outs[0])
    run, live = doc["runs"][0], recorded["live"]["runs"][0]
    assert doc["link"] == "replay" and run["recording"]["frames_found"] == 3
    (row,), (live_row,) = run["results"], live["results"]
    for r in (row, live_row):        # the live receiver stopped when it did; the recording may hold more samples
        r["sync"].pop("samples")
    assert row == live_row                                             # the live run's decoding, to the last digit
    for k in ("error_free", "mean_image", "budget", "fits", "codec", "mod", "rate"):
        assert run[k] == live[k]
    text = capsys.readouterr().out
    assert "frames rx/sent" in text and recorded["key"].read_text().strip() not in text


def test_fake_soapy_two_modulations_no_record(tmp_path, monkeypatch):
    synthetic_dataset(monkeypatch, _images(40))
    out = tmp_path / "o.json"
    assert _main("--link", "ota", "--tx", "fake-soapy", "--bob", "fake-soapy", "--images", 2, "--mod", "qpsk", "16qam",
                 "--rate", "1/2", "--json", out) == 0
    runs = json.loads(out.read_text())["runs"]
    assert [r["mod"] for r in runs] == ["qpsk", "16qam"]
    for r in runs:
        assert r["results"][0]["undecodable"] == 0 and r["results"][0]["frames_received"] == 2
        assert "recording" not in r
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.json"]


def _copy(recorded, d, name, meta=None, samples=None):
    """A copy of the recording (optionally other global metadata / samples) with its reference."""
    src = json.loads(recorded["meta"].read_text())
    g = src["global"] if meta is None else meta
    x = np.fromfile(str(recorded["meta"]).replace("-meta", "-data"), np.complex64) if samples is None else samples
    extra = {k: v for k, v in g.items() if k.startswith("jscec:") and k not in ("jscec:version", "jscec:device")}
    with RecordingWriter(d / name, 1e6, 2.4e9, {"device": "test"}, extra) as w:
        w.write(x)
    shutil.copyfile(recorded["dir"] / "rec.reference.npz", d / f"{name}.reference.npz")
    return d / f"{name}.sigmf-meta"


def _bad(case, recorded, d):
    g = json.loads(recorded["meta"].read_text())["global"]
    key = recorded["key"]
    if case == "not a baseline recording":
        return _copy(recorded, d, "deep", meta={k: v for k, v in g.items() if k != "jscec:baseline"}), key
    if case == "silence":
        return _copy(recorded, d, "silence", samples=np.zeros(50000, np.complex64)), key
    if case == "reference of another baseline":
        return _copy(recorded, d, "qpsk", meta={**g, "jscec:baseline": {**g["jscec:baseline"], "mod": "qpsk"}}), key
    if case == "wrong key":
        other = save_key(d / "other.key", new_key())
        return _copy(recorded, d, "wrongkey"), other
    if case == "no reference":
        meta = _copy(recorded, d, "noref")
        (d / "noref.reference.npz").unlink()
        return meta, key
    (d / "broken.sigmf-meta").write_text('{"global": {"core:datatype": "cf32_le",')
    return d / "broken.sigmf-meta", key


@pytest.mark.parametrize("case, words", [
    ("not a baseline recording", "deep.sigmf-meta is not a digital-baseline recording"),
    ("silence", "no baseline frames found in silence.sigmf-meta"),
    ("reference of another baseline", "qpsk.reference.npz is not the reference of qpsk.sigmf-meta"),
    ("wrong key", "is not the one wrongkey.sigmf-meta was sent with"),
    ("no reference", "no reference noref.reference.npz"),
    ("malformed", "not valid JSON")])
def test_replay_refuses_bad_recordings_with_one_line_and_no_output(case, words, recorded, tmp_path, capsys):
    meta, key = _bad(case, recorded, tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    capsys.readouterr()
    assert _main("--link", "replay", "--recording", meta, "--key", key, "--json", tmp_path / "out.json") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words in err and "Traceback" not in err
    assert key.read_text().strip() not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before        # no JSON, nothing else


@pytest.mark.parametrize("args, words", [
    (["--link", "replay"], "needs --recording"),
    (["--link", "replay", "--recording", "x.sigmf-meta"], "needs --key"),
    (["--link", "replay", "--recording", "x.sigmf-meta", "--key", "k", "--mod", "qpsk"], "come from the recording"),
    (["--link", "sim", "--record", "r"], "--record are for --link ota"),
    (["--link", "awgn", "--tx", "fake-pluto"], "--tx are for --link ota"),
    (["--link", "ota", "--recording", "r"], "--recording is for --link replay"),
    (["--link", "ota", "--snr", "10"], "the SNR is measured"),
    (["--link", "ota", "--cfo", "0.01"], "--link sim"),
    (["--link", "ota", "--tx", "fake-pluto", "--record", "r", "--mod", "qpsk", "16qam"], "one --mod and one --rate"),
    (["--link", "radio"], "unknown --link"),
])
def test_cli_refuses_options_of_another_link(args, words, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _main(*args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words in err
    assert list(tmp_path.iterdir()) == []


def test_ota_refuses_an_absent_radio_leaving_no_recording(tmp_path, monkeypatch, capsys):
    synthetic_dataset(monkeypatch, _images(40))
    assert _main("--link", "ota", "--tx", "fake-pluto", "--bob", "fake-pluto:absent=1", "--images", 1, *ONE,
                 "--record", tmp_path / "rec", "--json", tmp_path / "o.json") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot open PlutoSDR 'fake-pluto:absent=1'" in err
    assert list(tmp_path.iterdir()) == []


def test_deepjscec_replay_points_a_baseline_recording_to_the_baseline(recorded, tmp_path, monkeypatch, capsys):
    from scripts.cli import main
    monkeypatch.chdir(tmp_path)
    assert main(["replay", str(recorded["meta"]), "--chains", "eve"]) == 2
    err = capsys.readouterr().err.strip()
    assert "jscec baseline --link replay" in err and "\n" not in err
