"""Digital baseline pipeline (baseline.pipeline) and its commands."""
import json

import numpy as np
import pytest

from baseline.pipeline import (MODULATIONS, channel_uses, coded_error_curve, decode_symbols, encode_image, link_budget,
                               padded_length, payload_from_info, prepare, predicted_threshold, simulate_snr,
                               threshold_snr)
from crypto.aes_ctr import new_key
from jscec.errors import UserError
from baseline.source_codec import get_codec
from models.metrics import psnr_u8


def _images(n=3):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32]
    base = np.stack([yy * 6, xx * 6, (yy + xx) * 3], axis=-1)
    return np.stack([np.clip(base + rng.integers(0, 60, (32, 32, 3)), 0, 255) for _ in range(n)]).astype(np.uint8)


def synthetic_dataset(monkeypatch, imgs):
    """Make ``models.datasets.load_dataset`` return ``imgs`` (for CLI tests that need no real data)."""
    from models import datasets

    class _Set:
        images, name = imgs, "synthetic"

        def __len__(self):
            return len(imgs)

    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: _Set())


def test_channel_uses_rho_one_sixth():
    assert channel_uses(1 / 6, (32, 32, 3)) == 512
    with pytest.raises(UserError):
        channel_uses(1 / 7, (32, 32, 3))


@pytest.mark.parametrize("mod", list(MODULATIONS))
@pytest.mark.parametrize("rate", ["1/2", "5/8", "3/4", "13/16"])
def test_rate_selection_never_exceeds_budget(mod, rate):
    b = link_budget(mod, rate, 512)
    assert b.symbols <= 512 and b.coded_bits <= 512 * b.bits_per_symbol
    assert b.capacity_bytes * 8 <= b.info_bits and b.capacity_bytes % 16 == 0
    assert b.info_bits <= b.coded_bits * b.k / b.n + 1e-9     # never above the nominal rate
    assert b.info_bits - 8 * b.capacity_bytes < 128


def test_budget_values():
    b = link_budget("16qam", "1/2")
    assert (b.full_codewords, b.short_info, b.info_bits, b.capacity_bytes, b.symbols) == (3, 0, 1008, 112, 504)
    b = link_budget("qpsk", "3/4")     # 1024 bits: one codeword + a shortened one of 352 − 168 = 184 info bits
    assert (b.full_codewords, b.short_info, b.info_bits, b.coded_bits) == (1, 184, 688, 1024)


@pytest.mark.parametrize("mod,rate", [("qpsk", "3/4"), ("16qam", "1/2"), ("64qam", "3/4")])
def test_encode_decode_round_trip(mod, rate):
    codec, key = get_codec("heif"), new_key()
    img = _images(1)[0]
    b = link_budget(mod, rate)
    sym, meta = encode_image(img, codec, b, key, frame=9)
    assert sym.shape == (b.symbols,) and meta["fits"] and padded_length(meta["payload_bytes"]) <= b.capacity_bytes
    assert key.hex() not in json.dumps(meta)
    out, det = decode_symbols(sym, 1e-4, codec, b, key, frame=9)
    assert det["ldpc_ok"] and out is not None and psnr_u8(out[None], img[None])[0] > 20
    llr_out, erased = decode_symbols(np.zeros(b.coded_bits), 1.0, codec, b, key, 9, are_llrs=True)
    assert llr_out is None and not erased["ldpc_ok"]                        # no information: undecodable


def _seeded_keys(seed, n):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, 16, dtype=np.uint8).tobytes() for _ in range(n)]


@pytest.mark.parametrize("mod,rate", [("qpsk", "3/4"), ("16qam", "1/2"), ("64qam", "3/4")])
def test_wrong_key_leaves_an_undecodable_payload(mod, rate):
    """A clean channel and the wrong AES key: LDPC decodes, AES-CTR yields random bytes, and the codec
    finds no image in them. HEVC has no integrity check and AES-CTR no authentication, so now and then
    the decoder renders random bytes as a picture (measured: 6 of 200 random key pairs): that picture
    must then be garbage (PSNR at the mean image's level, far below the right key's)."""
    codec = get_codec("heif")
    img = _images(1)[0]
    b = link_budget(mod, rate)
    key, *wrong_keys = _seeded_keys(0, 17)      # fixed keys: the outcome is reproducible
    sym, meta = encode_image(img, codec, b, key, frame=9)
    right, det = decode_symbols(sym, 1e-4, codec, b, key, frame=9)
    right_psnr = psnr_u8(right[None], img[None])[0]
    sent = payload_from_info(det["info_bits"], b, key, 9)
    assert len(sent) == meta["payload_bytes"] and right_psnr > 20
    mean_psnr = psnr_u8(np.full((1, 32, 32, 3), 128, np.uint8), img[None])[0]     # ≈ 13.6 dB
    undecodable = 0
    for wk in wrong_keys:
        out, det = decode_symbols(sym, 1e-4, codec, b, wk, frame=9)
        assert det["ldpc_ok"]                                    # the channel was fine: only the key is wrong
        assert payload_from_info(det["info_bits"], b, wk, 9) != sent
        if out is None:
            undecodable += 1
        else:
            assert psnr_u8(out[None], img[None])[0] < mean_psnr + 2 < right_psnr - 4
    assert undecodable >= 14, f"{undecodable} of {len(wrong_keys)} wrong keys left an undecodable payload"


def test_cliff_failure_semantics():
    codec, key = get_codec("heif"), new_key()
    imgs = _images(4)
    mean_u8 = np.full((32, 32, 3), 128, np.uint8)
    b = link_budget("16qam", "1/2")
    prep = prepare(imgs, codec, b, key, mean_u8)
    means = np.repeat(mean_u8[None], 4, 0)
    pm, sm = psnr_u8(means, imgs), np.zeros(4)
    rows = [simulate_snr(prep, s, np.random.default_rng(i), pm, sm) for i, s in enumerate([3.0, 12.0])]
    assert rows[0]["undecodable"] == 4 and abs(rows[0]["psnr"] - pm.mean()) < 1e-9     # below: mean image
    assert rows[1]["undecodable"] == 0 and abs(rows[1]["psnr"] - prep.psnr_ok.mean()) < 1e-9   # above: flat
    assert rows[1]["psnr"] > rows[0]["psnr"] + 5


def test_threshold_helpers():
    rows = [{"snr_db": s, "undecodable_fraction": f} for s, f in [(0, 1.0), (1, 0.8), (2, 0.2), (3, 0.0)]]
    assert abs(threshold_snr(rows) - 1.5) < 1e-9
    assert threshold_snr([{"snr_db": 0, "undecodable_fraction": 1.0}]) is None
    curve = coded_error_curve("qpsk", "1/2", [0.0, 4.0], codewords=20)
    assert curve[0]["fer"] > 0.5 and curve[1]["fer"] == 0.0 and curve[1]["uncoded_ber"] > 0
    assert 0.0 <= predicted_threshold(curve, 1) <= 4.0


def test_shortened_codeword_has_its_own_earlier_waterfall():
    """BPSK 3/4 at ρ = 1/6 sends one codeword shortened to 344 of 504 information bits (rate ≈ 0.67)."""
    budget = link_budget("bpsk", "3/4", 512)
    assert budget.full_codewords == 0 and budget.short_info == 344
    curve = coded_error_curve("bpsk", "3/4", [1.0], codewords=200, short_info=budget.short_info)
    assert curve[0]["fer_short"] < 0.5 * curve[0]["fer"], curve
    full_only = predicted_threshold(curve + [{"snr_db": 9.0, "fer": 0.0, "fer_short": 0.0}], 1)
    assert predicted_threshold(curve + [{"snr_db": 9.0, "fer": 0.0, "fer_short": 0.0}], 0, shortened=True) < full_only


def test_cli_baseline_runs_and_refuses(tmp_path, monkeypatch):
    from scripts.cli import main

    synthetic_dataset(monkeypatch, _images(20))
    out = tmp_path / "b.json"
    assert main(["baseline", "--images", "2", "--mod", "16qam", "--rate", "1/2", "--snr", "3", "12",
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    run = doc["runs"][0]
    assert [r["undecodable"] for r in run["results"]] == [2, 0] and "key" not in json.dumps(doc).lower()
    assert main(["baseline", "--rate", "2/3"]) == 2
    assert main(["baseline", "--link", "ota"]) == 2
    assert main(["baseline", "--codec", "webp"]) == 2
    assert main(["baseline", "--mod", "8psk"]) == 2
