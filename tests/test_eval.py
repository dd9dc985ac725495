"""`jscec eval` on a few CIFAR-10 test images with the bundled `cifar10-lwe` model and its Eve decoder."""
import json

from tests.conftest import jscec

# README (Measured): cifar10-lwe at 10 dB over all 6000 test images: Bob 23.81 dB / SSIM 0.801, Eve and the
# mean image 12.68 dB. Per-image PSNR at 10 dB spreads with a std of ≈ 1.8 dB (measured on 500 test images),
# so the mean of 20 images has a standard error of ≈ 0.4 dB: a floor 1.8 dB under 23.81 (≈ 4.5 standard
# errors; the lowest of 2000 random 20-image subsets measured 22.56 dB) fails only if Bob really got worse.
BOB_PSNR_FLOOR = 23.81 - 1.8
BOB_SSIM_FLOOR = 0.75
EVE_MARGIN_DB = 0.5


def test_eval_bob_above_the_table_and_eve_at_the_mean_image(tmp_path):
    out = tmp_path / "eval.json"
    p = jscec("eval", "--model", "cifar10-lwe", "--images", 20, "--snr", 10, "--threads", 2, "--json", out)
    rep = json.loads(out.read_text())
    assert rep["model"] == "cifar10-lwe" and rep["images"] == 20 and rep["cipher_mode"] == "lwe"
    assert [r["snr_db"] for r in rep["results"]] == [10.0]
    bob, eve, mean = rep["results"][0]["bob"], rep["results"][0]["eve"], rep["mean_image"]
    assert bob["psnr"] > BOB_PSNR_FLOOR and bob["ssim"] > BOB_SSIM_FLOOR, bob
    assert 11.0 < mean["psnr"] < 14.5                                  # the mean image of these 20 images
    assert abs(eve["psnr"] - mean["psnr"]) < EVE_MARGIN_DB, (eve, mean)
    assert eve["ssim"] < mean["ssim"] + 0.05 < bob["ssim"]
    assert f"{bob['psnr']:.2f}" in p.stdout and "mean image" in p.stdout
