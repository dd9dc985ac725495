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


def test_eve_at_bobs_snr_recovers_nothing_beyond_the_mean_image(tmp_path, monkeypatch):
    """Bob and Eve both at 20 dB: Eve's chain (started without any key) stays at the mean image's PSNR."""
    import numpy as np

    from link.receiver.process import ReceiverProcess
    from models.datasets import load_dataset, mean_image, split_indices
    from models.metrics import psnr_u8

    commands = {}
    start = ReceiverProcess.__init__

    def spy(self, role, *args, **kwargs):
        start(self, role, *args, **kwargs)
        commands[role] = [str(a) for a in self.proc.args]

    monkeypatch.setattr(ReceiverProcess, "__init__", spy)
    n = 8
    rc = main(["loopback", "--model", "cifar10-lwe", "--data", "--images", str(n), "--snr-b", "20", "--snr-e", "20",
               "--out", str(tmp_path), "--json", str(tmp_path / "cli.json"), "--seed", "5"])
    assert rc == 0
    rep = json.loads((tmp_path / "cli.json").read_text())
    bob, eve = rep["bob"], rep["eve"]
    assert rep["snr_b_db"] == rep["snr_e_db"] == 20
    assert bob["frames_ok"] == eve["frames_ok"] == n
    assert abs(bob["mer_db"] - 20) < 1.0 and abs(eve["mer_db"] - 20) < 1.0   # the same channel quality

    # The mean image of CIFAR-10's training split (the images the loopback sends are the test split's
    # first n; README: 12.68 dB over the whole test set) scored against the images actually sent.
    ds = load_dataset(None)
    split = split_indices(len(ds.images), seed=0)
    with np.load(tmp_path / "reference.npz") as z:
        sent = np.stack([z[f"image_{i}"] for i in range(n)])
    assert np.array_equal(sent, ds.images[split["test"][:n]])
    mean_u8 = np.clip(np.rint(mean_image(ds.images[split["train"]]) * 255), 0, 255).astype(np.uint8)
    mean_psnr = float(psnr_u8(np.repeat(mean_u8[None], n, 0), sent).mean())
    assert abs(eve["psnr"] - mean_psnr) < 0.5, (eve["psnr"], mean_psnr)     # measured: within 0.02 dB
    assert bob["psnr"] > 22 and bob["psnr"] > mean_psnr + 8                   # README: 24.96 dB at 20 dB

    # Eve's receiver process is started with no key: no --key argument, nothing of Bob's key file.
    key_file = tmp_path / "keys" / "bob.key"
    assert key_file.is_file()
    assert "--key" in commands["bob"] and str(key_file) in commands["bob"]
    assert commands["eve"][commands["eve"].index("--role") + 1] == "eve"
    assert not any(a == "--key" or a.startswith("--key=") or a.startswith(str(key_file.parent)) for a in commands["eve"])
    assert str(key_file) not in (tmp_path / "eve.log").read_text()
