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
    lay = DEFAULT_FORMAT.layout_of(header)
    d = tag = tag_ok = None
    if header.tagged:
        tag, tag_ok = DEFAULT_FORMAT.decode_tag(frame_symbols[lay.tag_block].real * 100)
    if header.d_len:
        from radio.frame import qpsk_llr

        d, _ = DEFAULT_FORMAT.decode_d(qpsk_llr(frame_symbols[lay.d_block], 0.01), header.d_len)
    return SyncedFrame(header=header, payload=frame_symbols[lay.payload], noise_var=noise_var, mer_db=60.0,
                       snr_db=60.0, cfo=0.0, sro_ppm=0.0, timing=0.0, gain=1.0, start=0.0, metric=1.0,
                       d_values=d, d_ok=d_ok if header.d_len else None, tag=tag, tag_ok=tag_ok)


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
    assert shape == sent.latent_shape
    # lwe and mask frames are authenticated: their keyed check symbols (16 per 1024 payload symbols) are erased.
    checks = [alice.auth.checks(1000 + 2 * j, 1024)[0] + 1024 * j for j in range(len(frames))] if mode != "lwe-pk" else []
    want = np.zeros(erased.size, bool)
    for c in checks:
        want[c[c < erased.size]] = True
    assert np.array_equal(erased, want) and (erased.sum() == 0) == (mode == "lwe-pk")   # padding's checks cost nothing
    with torch.no_grad():
        _, plaintext, _ = model.encode(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)
    err = ((values - plaintext[0].numpy() + 4093 / 2) % 4093 - 4093 / 2)[~erased]
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
    # The lost frame's 512 symbols, and the 8 check symbols of each frame that came (mask: authenticated).
    assert erased.sum() == 512 + 3 * 8 and erased[-512:].all()
    row = bob.decode_all({0: img})[0]
    assert row["frames_ok"] == 3 and row["frames_expected"] == 4
    assert row["erased_fraction"] == pytest.approx((512 + 3 * 8) / 2048)
    assert eve.decode_all({0: img})[0]["image"].shape == img.shape
    assert model_id("m") == bob.model_id


def test_decode_all_batches_images_of_each_size_and_scores_each_image():
    model = _model("mask")
    keys = CipherKeys.generate(params="lp-192", mode="mask", k=512, seed=b"e" * 32)
    alice = Alice(model, keys, "m", subframes=1)
    rng = np.random.default_rng(2)
    imgs = {i: rng.integers(0, 256, (32, 32, 3) if i != 3 else (40, 36, 3), dtype=np.uint8) for i in range(5)}
    chains = {size: BobChain(model, keys, "m", batch_size=size) for size in (2, 1)}
    for i, img in imgs.items():
        for f in alice.frames_for_image(img, i)[0]:
            for bob in chains.values():
                bob.handle(_received(f, 0, None))
    refs = {**imgs, 7: imgs[0]}                  # image 7 never arrived
    batched = chains[2].decode_all(refs)
    single = chains[1].decode_all(refs)
    assert [r["index"] for r in batched] == [0, 1, 2, 3, 4, 7]
    assert batched[-1]["image"] is None and "psnr" not in batched[-1]
    for b, s in zip(batched[:-1], single[:-1]):
        assert b["image"].shape == imgs[b["index"]].shape
        assert np.abs(b["image"].astype(int) - s["image"]).max() <= 1   # float rounding of a batch at most
        assert b["psnr"] == pytest.approx(s["psnr"], abs=0.05) and b["ssim"] == pytest.approx(s["ssim"], abs=1e-3)
    assert len({round(r["psnr"], 6) for r in batched[:-1]}) == 5   # each scored against its own reference
    assert chains[2].decode_all(refs) is batched                     # decoding ends once


def _stream(model, keys, seed, sizes, drop=(), order=None):
    """(received frames, images) of images of the given sizes; ``drop``: (image, chunk) pairs lost."""
    alice = Alice(model, keys, "m", first_counter=100, subframes=1)
    rng = np.random.default_rng(seed)
    imgs = {i: rng.integers(0, 256, size + (3,), dtype=np.uint8) for i, size in enumerate(sizes)}
    frames = []
    for i in (order or range(len(imgs))):
        for j, f in enumerate(alice.frames_for_image(imgs[i], i)[0]):
            if (i, j) not in drop:
                frames.append(_received(f, 0, None))
    return frames, imgs


class _DecodeAtTheEnd(BobChain):
    """The chain as it was: every image kept until decode_all (same batches, decoded at once)."""

    def _decode_closed(self, group):
        pass


def test_images_are_decoded_as_they_close_exactly_as_at_the_end():
    """Batches of closed images are decoded while frames arrive (memory stays flat); the images, scores
    and per-frame records are what decoding everything at the end gives, bit for bit."""
    model = _model("mask")
    keys = CipherKeys.generate(params="lp-192", mode="mask", k=512, seed=b"g" * 32)
    sizes = [(32, 32)] * 9 + [(64, 64)] + [(32, 32)] * 6 + [(64, 64), (64, 64)] + [(32, 32)] * 6 + [(64, 64)]
    lost = {(3, 0), (9, 1), (17, 3), (24, 0)}           # a whole small image, chunks of big ones (the last)
    frames, imgs = _stream(model, keys, 3, sizes, drop=lost)
    refs = {**imgs, 30: imgs[0]}
    streaming = BobChain(model, keys, "m", batch_size=4, references=refs)   # scores each batch at once
    scored_late = BobChain(model, keys, "m", batch_size=4)                   # scores from the spill at the end
    at_end = _DecodeAtTheEnd(model, keys, "m", batch_size=4)
    most_open = 0
    for f in frames:
        for chain in (streaming, scored_late, at_end):
            chain.handle(f)
        most_open = max(most_open, len(streaming.images))
    assert most_open <= 2 * 4 and len(at_end.images) == len(imgs) - 1     # per image size < a batch open
    expected = at_end.decode_all(refs)
    for rows in (streaming.decode_all(), scored_late.decode_all(refs)):
        assert [r["index"] for r in rows] == [r["index"] for r in expected] == list(range(25)) + [30]
        for r, e in zip(rows, expected):
            assert r.keys() == e.keys()
            for k in r:
                if k == "image":
                    assert (r[k] is None) == (e[k] is None) and (r[k] is None or np.array_equal(r[k], e[k]))
                else:
                    assert r[k] == e[k], (r["index"], k)
    rows = streaming.decode_all()                    # the same rows again
    by_index = {r["index"]: r for r in rows}
    assert by_index[9]["frames_ok"] == 3 and by_index[9]["frames_expected"] == 4
    assert by_index[9]["erased_fraction"] == pytest.approx((512 + 3 * 8) / 2048)   # a frame and 3 × 8 checks
    assert by_index[3]["image"] is None and by_index[3]["frames_expected"] is None and "psnr" in by_index[2]
    assert "ms_ssim" in by_index[9] and "ms_ssim" not in by_index[0] and by_index[24]["frames_ok"] == 3
    s, e = streaming.summary(rows, len(frames)), at_end.summary(expected, len(frames))
    assert list(s["images"]) == list(e["images"]) and list(s["per_frame"]) == list(e["per_frame"])
    assert {k: v for k, v in s.items() if k not in ("images", "per_frame")} == \
        {k: v for k, v in e.items() if k not in ("images", "per_frame")}


def test_results_are_written_from_the_spill_as_json_dumps_and_np_savez_would(tmp_path):
    import json

    from link.receiver.chains import write_results

    model = _model("mask")
    keys = CipherKeys.generate(params="lp-192", mode="mask", k=512, seed=b"h" * 32)
    frames, imgs = _stream(model, keys, 4, [(32, 32)] * 5 + [(64, 64)], drop={(5, 2)})
    bob = BobChain(model, keys, "m", batch_size=2)
    bob.handle(DroppedFrame(start=0.0, reason="header: CRC mismatch", metric=0.5, snr_db=float("nan")))
    for f in frames:
        bob.handle(f)
    rows = bob.decode_all(imgs)
    summary = bob.summary(rows, 9)
    write_results(tmp_path, "bob", summary, rows, bob.constellation)
    plain = {**summary, "images": list(summary["images"]), "per_frame": list(summary["per_frame"])}
    assert (tmp_path / "bob.json").read_text() == json.dumps(plain, indent=1) + "\n"
    assert plain["frames_received"] == len(frames) + 1 and plain["frames_ok"] == len(frames)
    assert plain["per_frame"][0] == {"ok": False, "reason": "header: CRC mismatch", "snr_db": None}
    assert [r["index"] for r in plain["images"]] == list(range(6)) and plain["psnr"] is not None
    with np.load(tmp_path / "bob-images.npz") as z:
        assert z.files == [f"image_{i}" for i in range(6)] + ["constellation"]
        for r in rows:
            assert np.array_equal(z[f"image_{r['index']}"], r["image"])
        assert np.array_equal(z["constellation"], np.concatenate(bob.constellation))


def test_a_frame_of_an_image_already_decoded_is_dropped_as_late():
    model = _model("mask")
    keys = CipherKeys.generate(params="lp-192", mode="mask", k=512, seed=b"i" * 32)
    frames, imgs = _stream(model, keys, 5, [(32, 32)] * 4)
    bob = BobChain(model, keys, "m", batch_size=2)
    eve = EveChain(model, EveDecoder(model.config).eval(), "m", 512, batch_size=2)
    for f in frames:
        bob.handle(f)
        eve.handle(f)
    assert bob.images == eve.images == {}        # one frame each: closed at once, decoded in pairs
    bob.handle(frames[0])                        # image 0 again: decoded already
    eve.handle(frames[0])
    assert eve.drops == {"late (image already decoded)": 1}
    assert bob.drops == {"replay": 1}            # Bob's replay window drops it before that
    for chain in (bob, eve):
        assert chain.records[-1]["ok"] is False and len(chain.records) == 5
        rows = chain.decode_all(imgs)
        assert [r["frames_ok"] for r in rows] == [1, 1, 1, 1]


def test_an_image_out_of_order_is_still_decoded():
    model = _model("mask")
    keys = CipherKeys.generate(params="lp-192", mode="mask", k=512, seed=b"j" * 32)
    frames, imgs = _stream(model, keys, 6, [(32, 32)] * 6, order=[0, 2, 3, 4, 1, 5])
    bob = BobChain(model, keys, "m", batch_size=2)
    for f in frames:
        bob.handle(f)
    rows = bob.decode_all(imgs)
    assert [r["index"] for r in rows] == list(range(6)) and all(r["frames_ok"] == 1 for r in rows)
    assert not bob.drops and all(r["psnr"] > 0 for r in rows)


def test_references_read_one_by_one_from_their_npz(tmp_path):
    from link.output import save_reference
    from link.receiver.chains import open_references

    imgs = [np.full((4, 5, 3), i, np.uint8) for i in range(3)]
    refs = open_references(save_reference(tmp_path / "reference.npz", imgs))
    assert len(refs) == 3 and sorted(refs) == [0, 1, 2] and 2 in refs and 3 not in refs
    assert np.array_equal(refs[1], imgs[1])
    refs.close()


@pytest.mark.parametrize("end_first", [False, True])
def test_serve_stops_when_every_published_message_came(end_first):
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
        if not end_first:
            push.send(b"not a pdu")
        ctl = ControlSocket(ctl_addr, bind=False)
        ctl.send({"end": True, "frames_sent": 1, "frames_published": 2})
        ctl.close()
        if end_first:       # the end message overtakes the last (malformed) message
            time.sleep(0.5)
            push.send(b"not a pdu")

    t = threading.Thread(target=runner)
    t.start()
    t0 = time.monotonic()
    sent = serve(bob, frames_addr, ctl_addr, idle_s=20.0, timeout_s=30.0)
    elapsed = time.monotonic() - t0
    t.join()
    push.close()
    assert sent == 1 and len(bob.images) == 1 and bob.drops["malformed message"] == 1
    assert elapsed < 5.0, "serve waited for the idle time although every published message had come"


@pytest.mark.parametrize("params, per_frame", [("lp-192", 4), ("lp-256", 3), ("lp-512", 1)])
def test_lwe_pk_radio_frames_carry_no_more_d_values_than_the_d_block_holds(params, per_frame):
    from radio.frame import MAX_D_LEN

    model = _model("lwe")
    keys = CipherKeys.generate(params=params, mode="lwe-pk", k=512, seed=b"d" * 32)
    bob = BobChain(model, keys, "m")
    frames, sent = Alice(model, keys, "m").frames_for_image(np.zeros((64, 64, 3), np.uint8), 0)
    assert Alice(model, keys, "m").subframes == per_frame and per_frame * keys.params.n2 <= MAX_D_LEN
    for f in frames:
        bob.handle(_received(f, 0, None))
    assert len(bob.records) == len(frames) and all(r["ok"] for r in bob.records)
