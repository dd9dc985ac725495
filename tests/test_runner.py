"""The one runner (link.runner): any application over any link, and what every run shares."""
import contextlib
import json

import numpy as np
import pytest

pytest.importorskip("gnuradio.gr")

from jscec.errors import UserError  # noqa: E402
from link.links import Link  # noqa: E402
from link.links.awgn import AwgnLink, AwgnOptions  # noqa: E402
from link.runner import RunOptions, run  # noqa: E402


def test_deepjscec_over_the_numpy_awgn_link(tiny_model, tiny_data, tmp_path):
    from link.apps.deepjscec import DeepJscecApp, ImageOptions

    app = DeepJscecApp(ImageOptions(model=str(tiny_model), data=str(tiny_data), images=2))
    out = tmp_path / "awgn"
    report = run(app, AwgnLink(AwgnOptions(snr_b_db=30.0, snr_e_db=5.0)), RunOptions(out_dir=str(out)),
                 log=lambda *a: None)
    assert report["link"] == "awgn" and (report["snr_b_db"], report["snr_e_db"]) == (30.0, 5.0)
    for who in ("bob", "eve"):
        assert report[who]["frames_sent"] == report[who]["frames_ok"] == 2
    assert report["bob"]["mer_db"] > 27 and report["eve"]["mer_db"] < 8      # the SNR each branch was given
    assert report["sync"]["bob"]["frames_published"] == 2
    assert json.loads((out / "result.json").read_text())["bob"] == report["bob"]
    assert (out / "keys" / "bob.key").stat().st_mode & 0o777 == 0o600


def test_baseline_over_the_numpy_awgn_link_decodes_every_image():
    from baseline.pipeline import link_budget, prepare
    from baseline.source_codec import get_codec
    from crypto.aes_ctr import new_key
    from link.apps.baseline import baseline_frames, carry_frames, receive_frames
    from tests.test_baseline import _images

    codec, key, imgs = get_codec("heif"), new_key(), _images(3)
    b = link_budget("16qam", "1/2")
    prep = prepare(imgs, codec, b, key, np.full((32, 32, 3), 128, np.uint8), first_frame=7)
    got = carry_frames(baseline_frames(prep, 7), AwgnLink(AwgnOptions(snr_b_db=30.0)))
    assert [f.counter for f in got["frames"]] == [7, 8, 9] and got["sync"]["frames_published"] == 3
    rx = receive_frames(got["frames"], codec, b, key, 3)
    assert rx["received"] == 3 and all(np.array_equal(rx["info"][i], prep.info[i]) for i in range(3))


class _Refusing(Link):
    kind = "refusing"

    def open(self, stack: contextlib.ExitStack) -> None:
        raise UserError("no such radio")


class _NeverCalled:
    def __getattr__(self, name):
        raise AssertionError(f"the application's {name} ran before the link was open")


def test_a_refused_link_leaves_no_output_and_touches_no_application(tmp_path):
    out = tmp_path / "never"
    with pytest.raises(UserError, match="no such radio"):
        run(_NeverCalled(), _Refusing(), RunOptions(out_dir=str(out)))
    assert not out.exists()


def test_a_refused_run_keeps_an_output_folder_that_existed(tiny_model, tmp_path):
    from link.apps.deepjscec import DeepJscecApp, ImageOptions

    out = tmp_path / "kept"
    out.mkdir()
    (out / "mine.txt").write_text("a user's file")
    app = DeepJscecApp(ImageOptions(model=str(tiny_model), key=str(tmp_path / "missing.key")))
    with pytest.raises(Exception):
        run(app, AwgnLink(), RunOptions(out_dir=str(out)))
    assert (out / "mine.txt").read_text() == "a user's file"


def test_the_baseline_captured_over_the_sim_link_replays_to_the_live_score(tmp_path):
    """Capture and replay are the runner's, not an application's: the baseline records over ``sim`` too."""
    from baseline.pipeline import link_budget, prepare
    from baseline.source_codec import get_codec
    from crypto.aes_ctr import new_key, save_key
    from link.apps.baseline import baseline_frames, carry_frames, mean_scores, run_replay, score_frames, sim_link
    from link.apps.baseline_recording import recording_meta, save_truth
    from link.capture import Recorder
    from radio.pulse import PulseShape
    from tests.test_baseline import _images

    codec, key, imgs = get_codec("heif"), new_key(), _images(3)
    mean = np.full((32, 32, 3), 128, np.uint8)
    prep = prepare(imgs, codec, link_budget("qpsk", "1/2"), key, mean, first_frame=5)
    frames = baseline_frames(prep, 5)
    meta = recording_meta(codec, prep, key, mod="qpsk", rate="1/2", k_symbols=512, shape=(32, 32), first=5,
                          frames=len(frames), images=3, source="synthetic", pulse=PulseShape())
    rec = Recorder(tmp_path / "rec", sample_rate=1e6, center_freq=2.4e9)
    got = carry_frames(frames, sim_link(12.0, seed=4), recorder=rec, meta=meta,
                       truth_path=save_truth(tmp_path / "truth.npz", imgs, mean, prep))
    live = score_frames(prep, got["frames"], len(frames), codec, key, *mean_scores(imgs, mean), None)
    assert got["recording"]["frames_annotated"] == len(frames) == live["frames_received"]
    doc = json.loads((tmp_path / "rec.sigmf-meta").read_text())["global"]
    assert doc["jscec:link"] == "sim" and doc["jscec:payload"] == "digital-baseline"
    res = run_replay(str(tmp_path / "rec.sigmf-meta"), str(save_key(tmp_path / "k.aes.key", key)))
    (row,) = res["results"]
    for k in ("psnr", "ssim", "undecodable", "frames_received", "mer_db"):
        assert row[k] == live[k]


def test_a_carrier_offset_beyond_the_range_ends_the_run_in_one_line_naming_calibrate(tiny_model, tiny_data, tmp_path):
    from tests.conftest import jscec

    out = tmp_path / "far"
    far = "fake-pluto:cfo_hz=200000"          # 0.8 cycles/symbol at 1 MS/s and 4 samples per symbol
    p = jscec("ota", "--tx", far, "--bob", far, "--model", tiny_model, "--data", tiny_data, "--images", 2,
              "--out", out, check=False)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "carrier offset +0.80 cycles/symbol" in lines[-1] and "jscec calibrate" in lines[-1]
    report = json.loads((out / "result.json").read_text())             # the report is still written
    assert report["bob"]["frames_ok"] == 0 and report["sync"]["bob"]["cfo_out_of_range"] >= 2
