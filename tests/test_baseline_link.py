"""The digital baseline over the simulated GNU Radio link (link.apps.baseline, `jscec baseline --link sim`)."""
import json

import numpy as np

from baseline.pipeline import decode_symbols, link_budget, prepare, simulate
from link.apps.baseline import baseline_frame, carry_frames, receive_frames, sim_link, simulate_link
from crypto.aes_ctr import new_key
from baseline.source_codec import get_codec
from models.metrics import psnr_u8
from radio.impairments import Impairments
from radio.sync import SyncedFrame
from tests.test_baseline import _images, synthetic_dataset

MEAN = np.full((32, 32, 3), 128, np.uint8)
IMPAIRED = Impairments(cfo=0.01, sro_ppm=20.0, delay=1.3)


def test_high_snr_every_image_decodes_through_the_radio_link_as_on_awgn():
    codec, key = get_codec("heif"), new_key()
    imgs = _images(4)
    b = link_budget("16qam", "1/2")
    prep = prepare(imgs, codec, b, key, MEAN, first_frame=40)
    assert prep.fits.all()
    frames = [baseline_frame(s, b, 40 + i, i) for i, s in enumerate(prep.symbols)]   # counter = AES nonce
    got = carry_frames(frames, sim_link(30.0, IMPAIRED, seed=1))     # through the runner, Bob's branch only
    received, stats = got["frames"], got["sync"]
    assert all(isinstance(f, SyncedFrame) for f in received) and stats["frames"] == 4
    h = received[0].header
    assert (h.mode, h.constellation, h.payload_len, h.height, h.width) == ("none", "qam16", b.symbols, 32, 32)
    assert [f.counter for f in received] == [40, 41, 42, 43]
    assert [f.header.image_index for f in received] == [0, 1, 2, 3]
    rx = receive_frames(received, codec, b, key, 4)
    assert rx["received"] == 4 and rx["dropped"] == 0 and min(rx["mer_db"]) > 27
    for i in range(4):
        assert np.array_equal(rx["info"][i], prep.info[i])                 # the same payload, bit for bit
        clean, _ = decode_symbols(prep.symbols[i], 1e-4, codec, b, key, 40 + i)   # the awgn path, no noise
        assert rx["images"][i] is not None and np.array_equal(rx["images"][i], clean)
    assert psnr_u8(np.stack([rx["images"][i] for i in range(4)]), imgs).mean() == prep.psnr_ok.mean()


def test_simulate_link_matches_awgn_at_high_snr_and_scores_losses_as_mean_image():
    codec, key = get_codec("heif"), new_key()
    imgs = _images(4)
    res = simulate_link(imgs, MEAN, codec, "qpsk", "3/4", [-8.0, 25.0], key, seed=3)
    ref = simulate(imgs, MEAN, codec, "qpsk", "3/4", [-8.0, 25.0], key, seed=3)
    low, high = res["results"]
    mean_psnr = psnr_u8(np.repeat(MEAN[None], 4, 0), imgs).mean()
    assert low["undecodable"] == 4 and abs(low["psnr"] - mean_psnr) < 1e-9            # all scored as the mean image
    assert low["frames_sent"] == 4 and low["frames_received"] + low["frames_dropped"] == 4
    assert low["frames_dropped"] >= 1                                                # headers fail far below 0 dB
    assert high["undecodable"] == 0 and high["frames_received"] == 4 and high["frames_dropped"] == 0
    assert abs(high["mer_db"] - 25) < 1.5
    for k in ("psnr", "ssim", "undecodable"):
        assert high[k] == ref["results"][1][k]
    assert res["error_free"] == ref["error_free"] and res["radio"]["frame_symbols"] > 512
    json.dumps(res)


def test_cli_baseline_link_sim_and_refusals(tmp_path, monkeypatch, capsys):
    from scripts.cli import main

    synthetic_dataset(monkeypatch, _images(20))
    out = tmp_path / "b.json"
    assert main(["baseline", "--link", "sim", "--images", "2", "--mod", "16qam", "--rate", "1/2", "--snr", "-8", "20",
                 "--cfo", "0.005", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    run = doc["runs"][0]
    assert doc["link"] == "sim" and run["radio"]["impairments"]["cfo"] == 0.005
    assert [r["undecodable"] for r in run["results"]] == [2, 0]
    assert [r["frames_sent"] for r in run["results"]] == [2, 2] and run["results"][1]["frames_received"] == 2
    assert "frames rx/sent" in capsys.readouterr().out
    for args, words in ((["--equalizer", "2"], "--equalizer takes 0 or an odd number"),
                        (["--sps", "1"], "bad pulse shape")):    # (ota and replay: tests/test_baseline_ota.py)
        assert main(["baseline", "--link", "sim", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and words in err
