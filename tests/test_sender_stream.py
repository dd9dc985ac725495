"""The sender streams (issue 15, bounded memory): Alice makes her frames image by image while the link sends them.

* a :class:`link.sender.SymbolStream` cut into ZMQ messages holds at most a message and one chunk, and its
  messages are those of the same symbols sent as one array; a source that gives another length is refused;
* :class:`link.apps.alice.FrameSource` makes exactly the symbols Alice's old whole-run stream held (the same
  frames under the same counters), plans their number and lengths before encoding any image, reserves the
  run's counters before the first symbol, and never runs more than an image ahead of what was sent;
* Eve's pairs are written before the frames of their image leave and read back as they come;
* a whole loopback over GNU Radio with the streamed source decodes every image.
"""
import numpy as np
import pytest
import torch

from crypto.cipher import CipherKeys
from link.apps.alice import Alice, FrameSource
from link.apps.eve_game import GameWriter, PairsFile, load_pairs, make_game, partners
from link.sender import MESSAGE_SYMBOLS, SymbolStream, frame_stream, spooled, whole_buffers


def _model(mode="lwe"):
    from models.codec import CodecConfig, DeepJscec

    torch.manual_seed(0)
    return DeepJscec(CodecConfig(width=8, cipher_mode=mode)).eval()


def _images(n, seed=0, sizes=((32, 32),)):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*sizes[i % len(sizes)], 3), dtype=np.uint8) for i in range(n)]


def test_symbol_stream_messages_are_those_of_the_array_and_hold_one_message():
    rng = np.random.default_rng(1)
    parts = [(rng.standard_normal(int(n)) + 0j).astype(np.complex64) for n in rng.integers(1, 9000, 60)]
    whole = np.concatenate(parts)
    stream = SymbolStream(whole.size, iter(parts))
    got = list(stream.messages())
    want = [whole[i:i + MESSAGE_SYMBOLS] for i in range(0, whole.size, MESSAGE_SYMBOLS)]
    assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want))
    assert whole.size > 5 * MESSAGE_SYMBOLS
    assert stream.peak_held <= MESSAGE_SYMBOLS + max(p.size for p in parts)
    assert [m.size for m in SymbolStream.of(whole).messages()] == [m.size for m in want]


def test_a_source_of_another_length_than_announced_is_refused():
    with pytest.raises(RuntimeError, match="gave 10 of the 12 symbols"):
        list(SymbolStream(12, [np.zeros(10, np.complex64)]).messages())
    with pytest.raises(RuntimeError, match="more than the 8 symbols"):
        list(SymbolStream(8, [np.zeros(10, np.complex64)]).messages())


def test_a_spooled_stream_is_made_in_full_first_and_sent_in_the_same_messages(tmp_path):
    rng = np.random.default_rng(2)
    parts = [(rng.standard_normal(int(n)) + 1j).astype(np.complex64) for n in rng.integers(1, 5000, 40)]
    whole = np.concatenate(parts)
    made = []
    source = SymbolStream(whole.size, (made.append(p) or p for p in parts))
    stream = spooled(source, tmp_path)
    assert len(made) == len(parts) and source.peak_held <= MESSAGE_SYMBOLS + 5000   # all made, a message held
    assert list(tmp_path.iterdir()) == []                                           # an anonymous file
    got = list(stream.messages())
    assert all(m.size == MESSAGE_SYMBOLS for m in got[:-1]) and np.array_equal(np.concatenate(got), whole)
    arr = SymbolStream.of(whole)
    assert spooled(arr) is arr


def test_whole_buffers_pads_a_stream_as_it_pads_an_array():
    x = (np.arange(1000) + 1j).astype(np.complex64)
    padded = whole_buffers(SymbolStream.of(x), 4, 1024)
    assert np.array_equal(padded.array(), whole_buffers(x, 4, 1024)) and padded.size * 4 % 1024 == 0


@pytest.mark.parametrize("mode", ["lwe", "mask", "lwe-pk"])
def test_frame_source_makes_the_frames_of_the_whole_run_one_image_at_a_time(mode):
    model = _model("lwe" if mode == "lwe-pk" else mode)
    keys = CipherKeys.generate("lp-192", mode=mode, seed=bytes(16) + b"\x03")
    imgs = _images(24, sizes=((32, 32), (48, 40)))
    source = FrameSource(Alice(model, keys, "m", first_counter=500, subframes=1), imgs)
    stream = source.stream()
    # Planned from the sizes alone, before any image is encoded.
    assert source.images_encoded == 0 and source.frames_made == 0
    n_frames = source.frames_total
    sent = []
    for msg in stream.messages(n=2048):
        sent.append(msg)
        # Never more than the image being sent ahead of what left: no whole-run buffer.
        assert source.images_encoded <= source.images_done + 1
        assert stream.held <= 2048 + 8 * 1024
    assert source.frames_made == n_frames and source.images_done == len(imgs)
    assert stream.peak_held <= 2048 + max(max(p[1]) for p in source.plans.values())
    old = Alice(model, keys, "m", first_counter=500, subframes=1)
    frames = [f for i, im in enumerate(imgs) for f in old.frames_for_image(im, i)[0]]
    assert len(frames) == n_frames
    if mode == "lwe-pk":    # fresh OS randomness per Alice: the same layout, other d and ciphertexts
        assert sum(f.size for f in frames) == stream.size - frame_stream([]).size
    else:                   # the very symbols of the whole-run stream
        assert np.array_equal(np.concatenate(sent), frame_stream(frames))


def test_the_run_reserves_its_counters_before_the_first_symbol(tmp_path):
    from crypto.nonce_state import CounterState

    keys = CipherKeys.generate("lp-192", mode="mask", seed=bytes(16) + b"\x05")
    counters = CounterState(tmp_path / "bob.key", keys.key_id, block=16)
    imgs = _images(40)
    source = FrameSource(Alice(_model("mask"), keys, "m", counters=counters, subframes=1), imgs)
    assert counters.reserved == [[0, 40]]                         # one cipher frame per 32x32 image
    assert CounterState(tmp_path / "bob.key", keys.key_id).reserve(1) == 40   # persisted already
    headers = [int(source.alice.fmt.decode_header(f[source.alice.fmt.layout(0, 0).header].real).counter)
               for f in source.frames()]
    assert headers == list(range(40))


def test_eve_pairs_are_written_before_their_frames_leave(tmp_path):
    model = _model("lwe")
    keys = CipherKeys.generate("lp-192", mode="lwe", seed=bytes(16) + b"\x07")
    imgs = _images(7, sizes=((32, 32), (32, 32), (48, 40)))   # five 32x32 and two 48x40 images ...
    imgs.append(_images(1, seed=9, sizes=((24, 24),))[0])   # ... and a 24x24 one: its mirror is its partner
    assert partners([im.shape[:2] for im in imgs]) == [1, 3, 5, 4, 6, 2, 0, None]
    writer = GameWriter(tmp_path / "eve-pairs.bin", keys.k)
    source = FrameSource(Alice(model, keys, "m", first_counter=0, subframes=1), imgs, game=writer)
    eve = load_pairs(writer.path)
    assert isinstance(eve, PairsFile) and 0 not in eve
    alice = Alice(model, keys, "m", first_counter=0)
    for f in source.frames():
        index = int(alice.fmt.decode_header(f[alice.fmt.layout(0, 0).header].real).image_index)
        assert index in eve                                    # her pair is there when the frame leaves
    assert source.plaintexts_held_peak <= 4                    # per size: its first image and the next one
    plain = {i: alice.encode(im)[0] for i, im in enumerate(imgs)}
    want = make_game(plain, {i: im.shape[:2] for i, im in enumerate(imgs)},
                     lambda i: alice.encode(np.ascontiguousarray(imgs[i][:, ::-1]))[0], keys.k)
    game = writer.game
    assert game.partner == want.partner and game.partner[7] == "mirror"
    for i in range(len(imgs)):
        got = eve[i]
        assert got.dtype == np.int64
        assert np.array_equal(got[game.truth[i]], want.pairs[i][want.truth[i]])          # the image sent
        assert np.array_equal(got[1 - game.truth[i]], want.pairs[i][1 - want.truth[i]])  # its candidate
    assert sorted(eve) == list(range(len(imgs)))


def test_a_partial_pair_record_waits_for_the_rest(tmp_path):
    writer = GameWriter(tmp_path / "p.bin", 4)
    writer.add(0, np.arange(4), np.arange(4) + 1, 1)
    eve = PairsFile(writer.path)
    assert 0 in eve and 1 not in eve
    with open(writer.path, "ab") as f:        # half of image 1's record, as a reader may see it mid-write
        f.write(np.array([(1, 4)], [("index", "<i8"), ("n", "<i8")]).tobytes() + b"\0" * 6)
    assert eve.get(1) is None            # not yet readable
    with open(writer.path, "ab") as f:
        f.write(b"\0" * 10)
    assert eve.get(1) is not None and eve[1].shape == (2, 4)


def test_a_loopback_sends_a_run_it_never_holds(tiny_model, tmp_path):
    """Over GNU Radio: every image decoded, while the sender held at most a message and a frame of the stream."""
    pytest.importorskip("gnuradio.gr")
    from link.apps.deepjscec import DeepJscecApp, ImageOptions
    from link.links.sim import SimLink, SimOptions
    from link.runner import RunOptions, run
    from radio.frame import DEFAULT_FORMAT

    class Kept(DeepJscecApp):
        def transmission(self, link, out_dir):
            self.setup = super().transmission(link, out_dir)
            return self.setup

    n = 150
    app = Kept(ImageOptions(model=str(tiny_model), image_arrays=_images(n), subframes=1, keep_frames=False),
               log=lambda *a: None)
    report = run(app, SimLink(SimOptions(snr_b_db=30.0, snr_e_db=30.0)), RunOptions(out_dir=str(tmp_path / "out")),
                 log=lambda *a: None)
    setup, stream = app.setup, app.setup.stream
    assert report["bob"]["frames_ok"] == report["eve"]["frames_ok"] == setup.frames_sent == n
    assert setup.frames is None and report["eve_distinguisher"]["frames"] == n
    assert stream.produced == stream.size > 3 * MESSAGE_SYMBOLS
    assert stream.peak_held <= MESSAGE_SYMBOLS + DEFAULT_FORMAT.frame_len(setup.k, 0, True)
