"""Eve in the loop (issue 20, item 5): the IND-CPA game on a run's own frames — pairing, hidden order, Eve's
per-frame guesses in her chain, the score, and a control that shows the guesses see a leak when there is one."""
import numpy as np
import pytest
import torch

from crypto.cipher import CipherKeys
from crypto.ind_cpa import STATS, guess_pair
from crypto.zp import P, centroids
from link.apps.eve_game import make_game, score, summary_line, write_pairs, load_pairs
from radio.frame import DEFAULT_FORMAT as F, FrameHeader
from radio.sync import SyncedFrame
from radio.zp_qam import modulate


def test_pairs_use_the_next_image_of_the_same_size_else_the_mirror_and_hide_the_order(tmp_path):
    rng = np.random.default_rng(0)
    plain = {i: rng.integers(0, P, 700 if i < 3 else 512) for i in range(4)}
    sizes = {0: (40, 40), 1: (40, 40), 2: (40, 40), 3: (32, 32)}
    mirrored = []
    game = make_game(plain, sizes, lambda i: mirrored.append(i) or np.full(512, 7), 512)
    assert mirrored == [3] and game.partner == {0: 1, 1: 2, 2: 0, 3: "mirror"}
    for i, pair in game.pairs.items():
        assert pair.shape == (2, 1024 if i < 3 else 512) and pair.dtype == np.int16
        sent = np.zeros(pair.shape[1], np.int64)
        sent[:plain[i].size] = plain[i]
        assert np.array_equal(pair[game.truth[i]], sent)            # the row Eve must name
        assert not np.array_equal(pair[1 - game.truth[i]], sent)
    back = load_pairs(write_pairs(tmp_path / "pairs.npz", game))
    assert set(back) == set(game.pairs) and all(np.array_equal(back[i], game.pairs[i]) for i in back)
    assert b"truth" not in (tmp_path / "pairs.npz").read_bytes()
    # The order comes from the OS, not from any seed: over many images both orders occur.
    many = make_game({i: np.arange(512) + i for i in range(64)}, {i: (32, 32) for i in range(64)}, None, 512)
    assert 10 < sum(many.truth.values()) < 54


def test_guesses_see_a_leak_and_nothing_in_a_ciphertext():
    """The control: Eve's view is the plaintext itself plus channel-like noise (the cipher's mask removed, as
    with a leaked seed) — every statistic names the sent candidate; on real ciphertext they guess."""
    rng = np.random.default_rng(1)
    keys = CipherKeys.generate("lp-192", "mask", 512, seed=b"eve game" * 4)
    enc = keys.encryptor()
    right_leak, right_ct = {n: 0 for n in STATS}, {n: 0 for n in STATS}
    games = 400
    for g in range(games):
        m = centroids(P)[rng.integers(0, 16, (2, 512))]
        b = int(rng.integers(0, 2))
        leak = (m[b] + rng.normal(0, 300, 512)) % P
        ct = enc.encrypt(m[b], g).c + rng.normal(0, 300, 512)
        for n, v in guess_pair(leak, m[0], m[1], seed=g).items():
            right_leak[n] += v == b
        for n, v in guess_pair(ct % P, m[0], m[1], seed=g).items():
            right_ct[n] += v == b
    assert all(v == games for v in right_leak.values())
    assert all(abs(v / games - 0.5) < 0.1 for v in right_ct.values())
    with pytest.raises(ValueError):
        guess_pair(np.zeros(3), np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError):
        guess_pair(np.zeros(3), np.zeros(3), np.zeros(3), names=["mlp"])


def _frame_item(header, payload_values, noise=0.0, rng=None):
    y = modulate(payload_values)
    if noise:
        y = y + (noise * (rng.standard_normal(y.size) + 1j * rng.standard_normal(y.size))).astype(np.complex64)
    return SyncedFrame(header=header, payload=y.astype(np.complex64), noise_var=max(2 * noise ** 2, 1e-4), mer_db=30.0,
                       snr_db=30.0, cfo=0.0, sro_ppm=0.0, timing=0.0, gain=1.0, start=0.0, metric=1.0)


def test_eves_chain_records_a_guess_per_frame_and_the_score_reads_them():
    """Eve's chain with a game: a guess per frame from the segment of the pair the frame carries. Frames that
    carry the plaintext unencrypted (a leak: header mode ``mask`` but no mask) are named right every time; the
    score gives success rates, intervals and the advantage."""
    from link.receiver.chains import EveChain
    from models.codec import CodecConfig, DeepJscec, EveDecoder

    torch.manual_seed(0)
    model = DeepJscec(CodecConfig(width=8, cipher_mode="mask")).eval()
    rng = np.random.default_rng(2)
    plain = {i: centroids(P)[rng.integers(0, 16, 2048)] for i in range(6)}     # 64×64 images: 2048 symbols
    game = make_game(plain, {i: (64, 64) for i in plain}, None, 512)
    eve = EveChain(model, EveDecoder(model.config).eval(), "m", 512, game=game.pairs)
    from link.apps.alice import model_id

    for i, z in plain.items():
        for chunk in range(2):              # two radio frames of 1024 symbols each
            h = FrameHeader(counter=100 * i + chunk, mode="mask", model_id=model_id("m"), payload_len=1024,
                            image_index=i, chunk_index=chunk, chunk_count=2, height=64, width=64)
            eve.handle(_frame_item(h, z[1024 * chunk:1024 * (chunk + 1)], 0.01, rng))
    records = list(eve.records)
    assert len(records) == 12 and all(set(r["guess"]) == set(STATS) for r in records)
    doc = score(records, game)
    assert doc["frames"] == 12 and doc["images"] == 6 and doc["mirrored"] == 0
    for name, d in doc["distinguishers"].items():
        assert d["success_rate"] == 1.0 and d["success_ci95"][0] > 0.7
        if 0 < sum(game.truth.values()) < 6:
            assert d["advantage"] == 1.0
    assert [r["sent"] for r in doc["per_frame"]] == [game.truth[i] for i in plain for _ in range(2)]
    assert "right on 100.0 % of 12 frames" in summary_line(doc)
    assert all(d["advantage_ci95_family"][0] <= d["advantage_ci95"][0] for d in doc["distinguishers"].values())
    assert score([], game)["best"] is None and summary_line(score([], game)) is None


def test_eve_guesses_on_frames_built_by_alice_at_chance():
    """The same chain on Alice's real (encrypted, authenticated) frames: the guesses carry no information —
    they agree with the hidden order about half the time."""
    from link.apps.alice import Alice
    from link.receiver.chains import EveChain
    from models.codec import CodecConfig, DeepJscec, EveDecoder

    torch.manual_seed(0)
    model = DeepJscec(CodecConfig(width=8, cipher_mode="mask")).eval()
    keys = CipherKeys.generate("lp-192", "mask", 512, seed=b"eve game, alice" * 2 + b"xx")
    alice = Alice(model, keys, "m", subframes=1)
    rng = np.random.default_rng(3)
    imgs = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(60)]
    plain, frames = {}, []
    for i, im in enumerate(imgs):
        f, sent = alice.frames_for_image(im, i)
        plain[i] = sent.plaintext
        frames += f
    game = make_game(plain, {i: (32, 32) for i in plain}, None, 512)
    eve = EveChain(model, EveDecoder(model.config).eval(), "m", 512, game=game.pairs)
    for f in frames:
        h = F.decode_header(f[F.layout(0, 0).header].real)
        eve.handle(SyncedFrame(header=h, payload=f[F.layout_of(h).payload], noise_var=1e-4, mer_db=40.0, snr_db=40.0,
                               cfo=0.0, sro_ppm=0.0, timing=0.0, gain=1.0, start=0.0, metric=1.0))
    doc = score(list(eve.records), game)
    assert doc["frames"] == 60
    for d in doc["distinguishers"].values():
        assert 0.25 < d["success_rate"] < 0.75      # Binomial(60, 1/2) leaves this range with p ≈ 1e-4
