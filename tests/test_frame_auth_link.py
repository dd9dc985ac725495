"""Mallory on the link (issue 20, item 4): forged, replayed, modified and spliced frames over the numpy ``awgn``
link and the GNU Radio ``sim`` link, through the runner and Bob's and Eve's receive-chain processes.

Run A sends Alice's frames of four 64×64 images (4 radio frames each). Run B sends the very same frames under
a copy of the key — so the same counters and ciphertexts, and the same channel noise on every sample they
share — except that image 3's first three frames are changed on their way (c + p/2 on every payload symbol,
c + δ with δ uniform, another frame's payload under its header and tag), and after the last frame Mallory
adds old frames again and frames whose counter, chunk, key id or image index she changed (header CRC
recomputed).
Bob must drop and count each of Mallory's frames, decode the others exactly as in run A (images 0–2 bit for
bit), and in run C, which sends run A's frames again under run A's own key, drop them all as replays (the
floor his replay window left beside the key). Eve has no key: she decodes as before.
"""
import dataclasses
import json
import shutil

import numpy as np
import pytest

pytest.importorskip("gnuradio.gr")

from crypto.zp import P  # noqa: E402
from link.apps.deepjscec import DeepJscecApp, ImageOptions  # noqa: E402
from link.links.awgn import AwgnLink, AwgnOptions  # noqa: E402
from link.runner import RunOptions, run  # noqa: E402
from link.sender import frame_stream  # noqa: E402
from radio.frame import DEFAULT_FORMAT as F  # noqa: E402
from radio.zp_qam import hard_demap, modulate  # noqa: E402
from tests.test_frame_auth import add_delta, forge  # noqa: E402


class _Replayed(DeepJscecApp):
    """Sends a prepared transmission again, with its frames replaced by ``frames`` and its key by ``key``."""

    def __init__(self, opts, setup, frames, key):
        super().__init__(opts, log=lambda *a: None)
        self._setup = dataclasses.replace(setup, frames=frames, stream=frame_stream(frames), key_path=key)

    def transmission(self, link, out_dir):
        return self._setup


class _Recorder(DeepJscecApp):
    def transmission(self, link, out_dir):
        self.setup = super().transmission(link, out_dir)
        return self.setup


def _images():
    import skimage.data
    import skimage.transform

    out = []
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        img = getattr(skimage.data, name)()[..., :3]
        out.append((skimage.transform.resize(img, (64, 64), anti_aliasing=True) * 255 + 0.5).astype(np.uint8))
    return out


def _mallory(frames, rng):
    """Run B's frames: image 3's first three changed in flight, then old and forged frames."""
    lay = F.layout(512, 0, True)
    spliced = frames[14].copy()
    spliced[lay.payload] = frames[6][lay.payload]
    random_delta = frames[13].copy()
    random_delta[lay.payload] = modulate((hard_demap(frames[13][lay.payload]) + rng.integers(1, P, 512)) % P)
    sent = frames[:12] + [add_delta(frames[12], P // 2), random_delta, spliced, frames[15]]
    extra = [frames[0], frames[5],                                             # replays (images still open)
             forge(frames[6], counter=1 << 20), forge(frames[6], image_index=0), forge(frames[9], chunk_index=0),
             forge(frames[7], key_id="01234567"),                              # not for Bob: dropped before the MAC
             forge(forge(frames[7], key_id="01234567"), key_id=frames_key_id(frames[7]), image_index=2)]
    return sent + extra, {"replay": 2, "mac": 4, "payload check": 3, "other key": 1}


def frames_key_id(frame):
    return F.decode_header(frame[F.layout(0, 0).header].real).key_id_hex


def _bob_images(out):
    with np.load(out / "bob-images.npz") as z:
        return {n: z[n].copy() for n in z.files if n.startswith("image_")}


def _attack_runs(link_factory, tiny_model, tmp_path):
    opts = ImageOptions(model=str(tiny_model), image_arrays=_images(), subframes=1)
    a = _Recorder(opts, log=lambda *a: None)
    rep_a = run(a, link_factory(), RunOptions(out_dir=str(tmp_path / "a")), log=lambda *a: None)
    frames = a.setup.frames
    assert len(frames) == 16 and F.decode_header(frames[0][F.layout(0, 0).header].real).tagged
    key_b = tmp_path / "b-key" / "bob.key"
    key_b.parent.mkdir()
    shutil.copy2(a.setup.key_path, key_b)             # the key alone: no replay state beside it
    sent, want = _mallory(frames, np.random.default_rng(0))
    rep_b = run(_Replayed(opts, a.setup, sent, key_b), link_factory(), RunOptions(out_dir=str(tmp_path / "b")),
                log=lambda *a: None)
    rep_c = run(_Replayed(opts, a.setup, frames, a.setup.key_path), link_factory(),
                RunOptions(out_dir=str(tmp_path / "c")), log=lambda *a: None)
    return rep_a, rep_b, rep_c, want


def _check(rep_a, rep_b, rep_c, want, tmp_path):
    bob_a, bob_b = rep_a["bob"], rep_b["bob"]
    assert bob_a["frames_ok"] == 16 and bob_a["frames_dropped"] == {}
    assert bob_b["frames_dropped"] == want and bob_b["frames_ok"] == 13
    assert bob_b["authentication"]["frames_authenticated"] == 13
    rows_a = {r["index"]: r for r in rep_a["per_image"]["bob"]}
    rows_b = {r["index"]: r for r in rep_b["per_image"]["bob"]}
    for i in range(3):                                # Bob's other images: as without Mallory
        assert rows_b[i]["frames_ok"] == rows_b[i]["frames_expected"] == 4
        assert rows_b[i]["erased_fraction"] == rows_a[i]["erased_fraction"] < 0.04   # the check symbols only
        # The float PSNR may move in the 6th digit: over the sim link, frame timing decides which images share a
        # decode batch, and a batch's size changes the convolutions' rounding; the uint8 images below do not move.
        assert rows_b[i]["psnr"] == pytest.approx(rows_a[i]["psnr"], rel=1e-5)
    img_a, img_b = _bob_images(tmp_path / "a"), _bob_images(tmp_path / "b")      # bit for bit
    assert all(np.array_equal(img_a[f"image_{i}"], img_b[f"image_{i}"]) for i in range(3))
    assert rows_b[3]["frames_ok"] == 1                # only its unchanged frame
    per_frame = json.loads((tmp_path / "b" / "bob.json").read_text())["per_frame"]
    assert sorted(r["reason"] for r in per_frame if not r["ok"]) == sorted(k for k, v in want.items() for _ in range(v))
    # Eve verifies nothing: she decodes every frame that synchronised, Mallory's included.
    assert rep_b["eve"]["frames_ok"] == len(per_frame) and not rep_b["eve"].get("authentication")
    # Run C: run A's own frames again, under run A's key and its replay state: every one a replay.
    assert rep_c["bob"]["frames_ok"] == 0 and rep_c["bob"]["frames_dropped"] == {"replay": 16}


def test_mallory_over_the_numpy_awgn_link(tiny_model, tmp_path):
    runs = _attack_runs(lambda: AwgnLink(AwgnOptions(snr_b_db=10.0, snr_e_db=10.0, seed=4)), tiny_model, tmp_path)
    _check(*runs, tmp_path)


def test_mallory_over_the_gnu_radio_sim_link(tiny_model, tmp_path):
    from link.links.sim import SimLink, SimOptions
    from radio.impairments import Impairments

    imp = Impairments(cfo=0.01, sro_ppm=20.0, phase_noise=0.002, delay=0.3)
    runs = _attack_runs(lambda: SimLink(SimOptions(snr_b_db=15.0, snr_e_db=10.0, bob=imp, eve=imp, seed=4)),
                        tiny_model, tmp_path)
    _check(*runs, tmp_path)
