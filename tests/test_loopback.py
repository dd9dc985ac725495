"""End to end: `jscec loopback` on a few CIFAR-10 test images with the bundled models."""
import json
import stat

import pytest

from scripts.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("loopback")
    rc = main(["loopback", "--data", "--images", "4", "--snr-b", "20", "--snr-e", "5", "--cfo", "0.03",
               "--sro-ppm", "50", "--out", str(out), "--json", str(out / "cli.json"), "--seed", "3"])
    assert rc == 0
    return out, json.loads((out / "cli.json").read_text())


def test_bob_decodes_every_frame_and_eve_does_not_recover_the_images(run):
    out, rep = run
    bob, eve = rep["bob"], rep["eve"]
    for side in (bob, eve):
        assert {"psnr", "ssim", "mer_db", "frames_sent", "frames_ok"} <= side.keys()
    assert bob["frames_ok"] == bob["frames_sent"] == 4
    assert abs(bob["mer_db"] - 20) < 1.0 and abs(eve["mer_db"] - 5) < 1.0
    assert bob["psnr"] > 20 and bob["psnr"] > eve["psnr"] + 5
    assert rep["impairments"]["bob"]["cfo"] == 0.03
    assert (out / "panel.png").stat().st_size > 0 and (out / "constellation.png").stat().st_size > 0


def test_the_key_file_is_private_and_no_secret_leaks(run):
    out, rep = run
    key = out / "keys" / "bob.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    seeds = json.loads(key.read_text())["seeds"]
    for path in [out / "cli.json", out / "result.json", out / "bob.json", out / "eve.json", out / "bob.log",
                 out / "eve.log"]:
        text = path.read_text()
        assert not any(s in text for s in seeds.values()), path
