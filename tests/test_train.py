"""`jscec train` stopped after a few steps, then `--resume`d: the step count and the nonces continue."""
import json

import pytest

from models.checkpoint import card_path, load_checkpoint
from tests.conftest import jscec

# 64 images per epoch in batches of 16: 4 steps an epoch; --max-steps ends an epoch early.
FAST = ("--width", 8, "--epoch-size", 64, "--batch-size", 16, "--val-size", 16, "--threads", 1)


def _state(out):
    return json.loads(load_checkpoint(out.with_suffix(".last.pt"), kind="bob-training")["state_json"])


@pytest.fixture(scope="module")
def resumed(tmp_path_factory, tiny_data):
    """6 steps (epochs of 4 + 2 steps), then --resume to 12 steps: (out, first state, second state, resume log)."""
    out = tmp_path_factory.mktemp("train") / "m.pt"
    jscec("train", *FAST, "--max-steps", 6, "--out", out, "--data", tiny_data)
    first = _state(out)
    first_card = json.loads(card_path(out).read_text())
    p = jscec("train", *FAST, "--max-steps", 12, "--out", out, "--data", tiny_data, "--resume")
    return out, first, first_card, _state(out), p.stdout + p.stderr


def test_resume_continues_the_step_count_and_the_card_records_it(resumed):
    out, first, first_card, second, log = resumed
    assert (first["step"], first["epoch"]) == (6, 2)
    assert [h["step"] for h in first["history"]] == [4, 6] == [h["step"] for h in first_card["history"]]

    assert f"resumed from {out.with_suffix('.last.pt')} at step 6 (epoch 2)" in log
    # Continued, not restarted: a restart would read 12 steps over epochs 1–3 ([4, 8, 12]).
    assert (second["step"], second["epoch"]) == (12, 4)
    assert [(h["epoch"], h["step"]) for h in second["history"]] == [(1, 4), (2, 6), (3, 10), (4, 12)]
    assert second["history"][:2] == first["history"]
    assert second["nonce"] > first["nonce"] > 0            # cipher nonces go on from where the first run stopped

    card = json.loads(card_path(out).read_text())
    assert card == load_checkpoint(out)["card"]
    assert [h["step"] for h in card["history"]] == [4, 6, 10, 12]
    assert card["stop_reason"] == "max steps"
    # The card describes the best epoch of the whole (resumed) history.
    best = max(card["history"], key=lambda h: h["val_psnr"])
    assert (card["epochs"], card["steps"]) == (best["epoch"], best["step"])
    assert card["validation"]["psnr"] == best["val_psnr"]
    assert ("--resume" in card["command"]) == (best["epoch"] > 2)


def test_train_loss_of_an_epoch_cut_short_is_a_mean_over_its_own_steps(resumed):
    # Epochs 2 and 4 stop after 2 of 4 steps. At lr 1e-4 over a dozen steps the loss barely moves (epoch 3
    # reads within a few % of epoch 1), so each epoch's mean loss must stay near its predecessor's.
    history = resumed[3]["history"]
    for prev, cur in zip(history, history[1:]):
        assert 0.75 < cur["train_loss"] / prev["train_loss"] < 1.25, (prev, cur)


def test_resume_with_lr_continues_at_the_new_learning_rate(resumed, tiny_data):
    out = resumed[0]
    before = load_checkpoint(out.with_suffix(".last.pt"), kind="bob-training")["optimizer"]["param_groups"][0]["lr"]
    p = jscec("train", *FAST, "--max-steps", 14, "--out", out, "--data", tiny_data, "--resume", "--lr", 3e-5)
    assert "learning rate set to 3.00e-05" in p.stdout
    state = load_checkpoint(out.with_suffix(".last.pt"), kind="bob-training")
    assert before == 1e-4 and state["optimizer"]["param_groups"][0]["lr"] == 3e-5
    assert json.loads(state["state_json"])["step"] == 14


def test_resume_on_another_validation_set_forgets_the_best_score(resumed, tiny_data):
    out = resumed[0]
    p = jscec("train", *FAST[:-4], "--val-size", 5, "--threads", 1, "--max-steps", 16, "--patience-stop", 0,
              "--out", out, "--data", tiny_data, "--resume")
    assert "validation on 5 images instead of 10: the best score so far is forgotten" in p.stdout
    state = _state(out)
    assert state["val_images"] == 5 and state["step"] == 16
    # The first epoch on the new set is the best by definition: Bob's checkpoint is rewritten from it.
    card = json.loads(card_path(out).read_text())
    assert card["validation"]["images"] == 5 and card["steps"] >= 15


def test_ema_is_validated_saved_and_continued_on_resume(tmp_path, tiny_data):
    import torch

    out = tmp_path / "m.pt"
    decay = 0.5
    jscec("train", *FAST, "--max-steps", 4, "--out", out, "--data", tiny_data, "--ema", decay)
    last = load_checkpoint(out.with_suffix(".last.pt"), kind="bob-training")
    ema = last["ema_state_dict"]
    assert last["ema_decay"] == decay and int(ema["n_averaged"]) == 4
    # The one epoch is the best: Bob's checkpoint holds the average, not the last training weights.
    bob = load_checkpoint(out)["state_dict"]
    name = next(k for k, v in bob.items() if v.is_floating_point() and v.numel() > 1)
    assert torch.equal(bob[name], ema["module." + name])
    assert not torch.equal(bob[name], last["state_dict"][name])
    assert json.loads(card_path(out).read_text())["weight_average"] == {"ema_decay": decay}

    p = jscec("train", *FAST, "--max-steps", 6, "--out", out, "--data", tiny_data, "--ema", decay, "--resume")
    assert "weight average (EMA 0.5) continued over 4 steps" in p.stdout
    assert int(load_checkpoint(out.with_suffix(".last.pt"), kind="bob-training")["ema_state_dict"]["n_averaged"]) == 6
    bad = jscec("train", *FAST, "--max-steps", 7, "--out", out, "--data", tiny_data, "--ema", 2, "--resume", check=False)
    assert bad.returncode != 0 and "--ema must lie between 0 and 1" in bad.stderr


def test_cosine_annealing_continues_across_resume(tmp_path, tiny_data):
    import math

    from models.train import cosine_lr

    assert cosine_lr({"start": 10, "steps": 4, "lr": 1.0}, 10) == 1.0
    assert cosine_lr({"start": 10, "steps": 4, "lr": 1.0}, 12) == pytest.approx(0.5)
    assert cosine_lr({"start": 10, "steps": 4, "lr": 1.0}, 99) == 0.0

    out = tmp_path / "m.pt"
    p = jscec("train", *FAST, "--max-steps", 4, "--out", out, "--data", tiny_data, "--lr", 1e-3, "--cosine", 8)
    assert "learning rate annealed from 1.00e-03 to 0 over 8 steps" in p.stdout
    # The rate of the last update is stored: step 3 of 8 (steps count from 0).
    assert _state(out)["history"][-1]["lr"] == pytest.approx(0.5e-3 * (1 + math.cos(math.pi * 3 / 8)))
    jscec("train", *FAST, "--max-steps", 8, "--out", out, "--data", tiny_data, "--resume", "--cosine", 8)
    state = _state(out)
    assert state["cosine"] == {"start": 0, "steps": 8, "lr": 1e-3}
    assert state["history"][-1]["lr"] == pytest.approx(0.5e-3 * (1 + math.cos(math.pi * 7 / 8)))
    bad = jscec("train", *FAST, "--max-steps", 9, "--out", out, "--data", tiny_data, "--resume", "--cosine", -1,
                check=False)
    assert bad.returncode != 0 and "--cosine takes a number of steps" in bad.stderr


def test_cutout_fills_one_square_per_image_and_leaves_the_other_draws_alone():
    import numpy as np

    from models.train import augment

    batch = np.random.default_rng(0).integers(0, 100, (64, 32, 32, 3), dtype=np.uint8)
    plain = augment(batch, np.random.default_rng(5), crop=True)
    cut = augment(batch, np.random.default_rng(5), crop=True, cutout=6)
    grey = (cut != plain).any(-1)
    assert (cut[grey] == 128).all()
    full = 0
    for g in grey:
        ys, xs = np.nonzero(g)
        assert len(ys) and len(ys) == (np.ptp(ys) + 1) * (np.ptp(xs) + 1)   # one filled rectangle
        assert np.ptp(ys) < 6 and np.ptp(xs) < 6
        full += len(ys) == 36
    assert full > 32   # squares whose centre lies 3 pixels or more from every edge are whole


def test_weight_decay_and_cutout_are_set_recorded_and_refused_when_wrong(tmp_path, tiny_data, classed):
    out = tmp_path / "m.pt"
    p = jscec("train", "--task", "classify", "--width", "tiny", "--epoch-size", 32, "--batch-size", 8,
              "--val-size", 8, "--threads", 1, "--max-steps", 2, "--data", classed, "--out", out,
              "--weight-decay", 0.05, "--cutout", 8)
    assert "decoupled weight decay 0.05" in p.stdout
    group = load_checkpoint(out.with_suffix(".last.pt"), kind="bob-training")["optimizer"]["param_groups"][0]
    assert group["weight_decay"] == 0.05 and group["decoupled_weight_decay"]
    assert json.loads(card_path(out).read_text())["regularisation"] == {"weight_decay": 0.05, "cutout": 8}
    # A resumed run takes this run's flags: no --weight-decay, no decay.
    jscec("train", "--task", "classify", "--width", "tiny", "--epoch-size", 32, "--batch-size", 8,
          "--val-size", 8, "--threads", 1, "--max-steps", 3, "--data", classed, "--out", out, "--resume")
    assert load_checkpoint(out.with_suffix(".last.pt"), kind="bob-training")["optimizer"]["param_groups"][0][
        "weight_decay"] == 0.0
    for extra, message in ((("--cutout", 4), "--cutout is for --task classify"),
                           (("--weight-decay", -1), "must not be negative")):
        bad = jscec("train", *FAST, "--max-steps", 1, "--out", tmp_path / "b.pt", "--data", tiny_data, *extra,
                    check=False)
        assert bad.returncode != 0 and message in bad.stderr and "Traceback" not in bad.stderr


def test_freeze_encoder_trains_the_decoder_only_and_needs_a_trained_encoder(tmp_path, tiny_data, classed):
    import torch

    args = ("--task", "classify", "--width", "tiny", "--epoch-size", 32, "--batch-size", 8, "--val-size", 8,
            "--threads", 1, "--data", classed, "--lr", 1e-2)
    base, tuned = tmp_path / "base.pt", tmp_path / "tuned.pt"
    jscec("train", *args, "--max-steps", 2, "--out", base)
    p = jscec("train", *args, "--max-steps", 6, "--out", tuned, "--init", base, "--freeze-encoder",
              "--weight-decay", 0.5)
    assert "encoder frozen" in p.stdout
    before = load_checkpoint(base)["state_dict"]
    after = load_checkpoint(tuned.with_suffix(".last.pt"), kind="bob-training")["state_dict"]
    encoder = [k for k in before if k.startswith("encoder.")]
    decoder = [k for k in before if k.startswith("decoder.")]
    assert encoder and decoder
    assert all(torch.equal(before[k], after[k]) for k in encoder)          # neither stepped nor decayed
    assert sum(not torch.equal(before[k], after[k]) for k in decoder) > len(decoder) // 2
    assert json.loads(card_path(tuned).read_text())["trained"] == "decoder only (encoder frozen)"
    bad = jscec("train", *args, "--max-steps", 1, "--out", tmp_path / "b.pt", "--freeze-encoder", check=False)
    assert bad.returncode != 0 and "--freeze-encoder needs a trained encoder" in bad.stderr
    assert "Traceback" not in bad.stderr
