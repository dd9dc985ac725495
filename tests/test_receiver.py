"""Alice and the receive chains without radio: framing, decryption, drops, erasures."""
import numpy as np
import pytest
import torch

from link.apps.alice import Alice, model_id
from link.receiver.chains import BobChain, EveChain
from crypto.cipher import CipherKeys
from models.codec import CodecConfig, DeepJscec, EveDecoder
from radio.frame import DEFAULT_FORMAT
from radio.sync import DroppedFrame, SyncedFrame


def _model(mode):
    torch.manual_seed(0)
    return DeepJscec(CodecConfig(width=8, cipher_mode=mode)).eval()


def _received(frame_symbols, header_counter, alice, noise_var=1e-6, d_ok=True):
    """What the synchroniser would deliver for a perfectly received frame."""
    # Rebuild the header from the frame the way the receiver decodes it.
    hdr_syms = frame_symbols[DEFAULT_FORMAT.layout(0, 0).header]
    header = DEFAULT_FORMAT.decode_header(hdr_syms.real * 100)
    lay = DEFAULT_FORMAT.layout(header.payload_len, header.d_len)
    d = None
    if header.d_len:
        from radio.frame import qpsk_llr

        d, _ = DEFAULT_FORMAT.decode_d(qpsk_llr(frame_symbols[lay.d_block], 0.01), header.d_len)
    return SyncedFrame(header=header, payload=frame_symbols[lay.payload], noise_var=noise_var, mer_db=60.0,
                       snr_db=60.0, cfo=0.0, sro_ppm=0.0, timing=0.0, gain=1.0, start=0.0, metric=1.0,
                       d_values=d, d_ok=d_ok if header.d_len else None)


@pytest.mark.parametrize("mode", ["mask", "lwe", "lwe-pk"])
def test_bob_recovers_the_plaintext_of_every_frame(mode):
    model = _model("lwe" if mode == "lwe-pk" else mode)
    keys = CipherKeys.generate(params="lp-192", mode=mode, k=512, seed=b"k" * 32)
    alice = Alice(model, keys, "m", first_counter=1000, subframes=2)
    img = np.random.default_rng(0).integers(0, 256, (40, 36, 3), dtype=np.uint8)
    frames, sent = alice.frames_for_image(img, 0)
    assert sent.frames == len(frames) == -(-(-(-sent.k // 512)) // 2)
    bob = BobChain(model, keys, "m")
    for f in frames:
        bob.handle(_received(f, 0, alice))
    values, erased, shape = bob.assemble(0)
    assert not erased.any() and shape == sent.latent_shape
    with torch.no_grad():
        _, plaintext, _ = model.encode(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)
    err = (values - plaintext[0].numpy() + 4093 / 2) % 4093 - 4093 / 2
    if mode == "mask":
        assert np.abs(err).max() < 1e-3       # no decryption noise
    else:
        assert 200 < err.std() < 300          # the LWE term, std ≈ 245 (DESIGN.md, note 4)
    rows = bob.decode_all({0: img})
    assert rows[0]["image"].shape == img.shape and rows[0]["frames_ok"] == len(frames)


def test_frames_not_for_bob_are_counted_and_dropped():
    model = _model("lwe")
    keys = CipherKeys.generate(params="lp-192", mode="lwe", k=512, seed=b"a" * 32)
    other = CipherKeys.generate(params="lp-192", mode="lwe", k=512, seed=b"b" * 32)
    img = np.zeros((32, 32, 3), np.uint8)
    frames, _ = Alice(model, other, "m").frames_for_image(img, 0)
    bob = BobChain(model, keys, "m")
    bob.handle(_received(frames[0], 0, None))
    frames2, _ = Alice(model, keys, "another-model").frames_for_image(img, 0)
    bob.handle(_received(frames2[0], 0, None))
    bob.handle(DroppedFrame(start=0.0, reason="header: CRC mismatch", metric=0.5))
    assert dict(bob.drops) == {"other key": 1, "other model": 1, "header CRC": 1}
    assert bob.images == {}
    assert [r["ok"] for r in bob.records] == [False, False, False]


def test_lwe_pk_frame_with_a_bad_d_block_is_dropped():
    model = _model("lwe")
    keys = CipherKeys.generate(params="lp-192", mode="lwe-pk", k=512, seed=b"c" * 32)
    frames, _ = Alice(model, keys, "m").frames_for_image(np.zeros((32, 32, 3), np.uint8), 0)
    bob = BobChain(model, keys, "m")
    bob.handle(_received(frames[0], 0, None, d_ok=False))
    assert dict(bob.drops) == {"d block CRC": 1}


def test_lost_frames_are_erased_not_guessed():
    model = _model("mask")
    keys = CipherKeys.generate(params="lp-192", mode="mask", k=512, seed=b"d" * 32)
    img = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    frames, sent = Alice(model, keys, "m", subframes=1).frames_for_image(img, 0)
    assert len(frames) == 4
    bob = BobChain(model, keys, "m")
    eve = EveChain(model, EveDecoder(model.config).eval(), "m", 512)
    for f in frames[:3]:
        bob.handle(_received(f, 0, None))
        eve.handle(_received(f, 0, None))
    _, erased, _ = bob.assemble(0)
    assert erased.sum() == 512 and erased[-512:].all()
    row = bob.decode_all({0: img})[0]
    assert row["frames_ok"] == 3 and row["frames_expected"] == 4 and row["erased_fraction"] == pytest.approx(0.25)
    assert eve.decode_all({0: img})[0]["image"].shape == img.shape
    assert model_id("m") == bob.model_id


def test_decode_all_batches_images_of_each_size_and_scores_each_image():
    model = _model("mask")
    keys = CipherKeys.generate(params="lp-192", mode="mask", k=512, seed=b"e" * 32)
    alice = Alice(model, keys, "m", subframes=1)
    rng = np.random.default_rng(2)
    imgs = {i: rng.integers(0, 256, (32, 32, 3) if i != 3 else (40, 36, 3), dtype=np.uint8) for i in range(5)}
    bob = BobChain(model, keys, "m")
    for i, img in imgs.items():
        for f in alice.frames_for_image(img, i)[0]:
            bob.handle(_received(f, 0, None))
    refs = {**imgs, 7: imgs[0]}                  # image 7 never arrived
    batched = bob.decode_all(refs, batch_size=2)
    single = bob.decode_all(refs, batch_size=1)
    assert [r["index"] for r in batched] == [0, 1, 2, 3, 4, 7]
    assert batched[-1]["image"] is None and "psnr" not in batched[-1]
    for b, s in zip(batched[:-1], single[:-1]):
        assert b["image"].shape == imgs[b["index"]].shape
        assert np.abs(b["image"].astype(int) - s["image"]).max() <= 1   # float rounding of a batch at most
        assert b["psnr"] == pytest.approx(s["psnr"], abs=0.05) and b["ssim"] == pytest.approx(s["ssim"], abs=1e-3)
    assert len({round(r["psnr"], 6) for r in batched[:-1]}) == 5   # each scored against its own reference


def test_serve_stops_when_every_published_message_came():
    import threading
    import time

    import pmt
    import zmq

    from link.receiver.chains import serve
    from flowgraphs.pdu import frame_to_pdu
    from radio.transport import ControlSocket, free_tcp_address

    model = _model("mask")
    keys = CipherKeys.generate(params="lp-192", mode="mask", k=512, seed=b"f" * 32)
    frames, _ = Alice(model, keys, "m").frames_for_image(np.zeros((32, 32, 3), np.uint8), 0)
    frames_addr, ctl_addr = free_tcp_address(), free_tcp_address()
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.bind(frames_addr)
    bob = BobChain(model, keys, "m")

    def runner():
        time.sleep(0.3)
        push.send(pmt.serialize_str(frame_to_pdu(_received(frames[0], 0, None))))
        push.send(b"not a pdu")
        ctl = ControlSocket(ctl_addr, bind=False)
        ctl.send({"end": True, "frames_sent": 1, "frames_published": 2})
        ctl.close()

    t = threading.Thread(target=runner)
    t.start()
    t0 = time.monotonic()
    sent = serve(bob, frames_addr, ctl_addr, idle_s=20.0, timeout_s=30.0)
    elapsed = time.monotonic() - t0
    t.join()
    push.close()
    assert sent == 1 and len(bob.images) == 1 and bob.drops["malformed message"] == 1
    assert elapsed < 5.0, "serve waited for the idle time although every published message had come"
