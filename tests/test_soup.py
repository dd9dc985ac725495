"""`jscec soup`: the greedy soup of runs of one model, validated as `jscec train` validates."""
import json

import pytest
import torch

from jscec.errors import UserError
from models.checkpoint import card_path, load_checkpoint
from models.soup import average, ingredient
from tests.conftest import jscec

TRAIN = ("train", "--task", "classify", "--width", "tiny", "--mode", "mask", "--epoch-size", 48, "--batch-size", 16,
         "--val-size", 24, "--noise-ramp", 0, "--snr-train", 20, "--threads", 1)


def test_average_is_the_mean_of_float_tensors_and_keeps_the_rest():
    a = {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(2)}
    b = {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(7)}
    soup = average([a, b])
    assert torch.equal(soup["w"], torch.tensor([2.0, 4.0])) and int(soup["n"]) == 2


def test_average_keeps_a_tensor_all_ingredients_share_bit_for_bit():
    shared = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    # The float32 mean of three equal numbers is not always the number itself (here for about 15 % of them).
    assert not torch.equal(torch.stack([shared] * 3).mean(0), shared)
    soup = average([{"w": shared.clone()} for _ in range(3)])
    assert torch.equal(soup["w"], shared)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, classed):
    """Two warm restarts of one tiny classifier: (first run's best, second's training checkpoint with its EMA)."""
    d = tmp_path_factory.mktemp("soup")
    jscec(*TRAIN, "--epochs", 2, "--out", d / "a.pt", "--data", classed)
    for f in ("a.pt", "a.json", "a.last.pt"):
        (d / f.replace("a", "b")).write_bytes((d / f).read_bytes())
    jscec(*TRAIN, "--epochs", 4, "--resume", "--lr", 3e-3, "--ema", 0.9, "--cutout", 8, "--out", d / "b.pt",
          "--data", classed)
    return d / "a.pt", d / "b.last.pt"


def test_greedy_soup_scores_at_least_its_best_ingredient_and_lists_them(runs, classed, tmp_path):
    a, b = runs
    out = tmp_path / "s.pt"
    p = jscec("soup", a, b, "--out", out, "--data", classed, "--val-size", 0, "--threads", 1)
    card = json.loads(card_path(out).read_text())
    scores = {i["path"]: i["validation"] for i in card["soup"]["ingredients"]}
    assert set(scores) == {str(a), str(b)}
    assert card["task"] == "classify" and card["cipher_mode"] == "mask"   # the best ingredient's card, completed
    # A training checkpoint's card is its run's.
    run_card = json.loads(card_path(b.with_name("b.pt")).read_text())
    last_state = json.loads(load_checkpoint(b, kind="bob-training")["state_json"])
    assert ingredient(b)[2] == dict(run_card, epochs=last_state["epoch"], steps=last_state["step"])
    assert (last_state["epoch"], run_card["task"]) == (4, "classify")
    assert card["validation"]["accuracy"] >= max(scores.values())
    assert card["soup"]["kept"][0] == max(scores, key=scores.get)
    weights = load_checkpoint(out, kind="bob")["state_dict"]
    states = {str(a): ingredient(a)[1], str(b): ingredient(b)[1]}
    expected = average([states[p] for p in card["soup"]["kept"]])
    assert all(torch.equal(weights[k], expected[k]) for k in expected)
    # The training checkpoint gives its moving average, not its last training weights.
    last = load_checkpoint(b, kind="bob-training")
    name = next(k for k, v in last["state_dict"].items() if v.is_floating_point() and v.numel() > 1)
    assert torch.equal(states[str(b)][name], last["ema_state_dict"]["module." + name])
    assert not torch.equal(states[str(b)][name], last["state_dict"][name])
    assert "ingredient" in p.stdout and f"soup of {len(card['soup']['kept'])} of 2" in p.stdout


def test_a_soup_of_other_models_or_of_one_is_refused(runs, classed, tmp_path, tiny_data):
    a, _ = runs
    other = tmp_path / "o.pt"
    jscec("train", "--width", 8, "--epoch-size", 16, "--batch-size", 16, "--val-size", 16, "--max-steps", 1,
          "--threads", 1, "--out", other, "--data", tiny_data)
    bad = jscec("soup", a, other, "--out", tmp_path / "s.pt", "--data", classed, check=False)
    assert bad.returncode == 2 and "another configuration" in bad.stderr and "Traceback" not in bad.stderr
    with pytest.raises(UserError, match="at least two"):
        from models.soup import greedy_soup, load_ingredients
        greedy_soup(load_ingredients([a]), None, None, tmp_path / "s.pt")


def test_links_scores_each_candidate_as_the_mean_over_validation_links(runs, classed, tmp_path):
    from models.codec import DeepJscec
    from models.datasets import load_dataset, split_indices
    from models.soup import validate_on_links
    from models.train import validate

    a, b = runs
    out = tmp_path / "s.pt"
    jscec("soup", a, b, "--out", out, "--data", classed, "--val-size", 0, "--threads", 1, "--links", 3,
          "--seed", 2)
    card = json.loads(card_path(out).read_text())
    data = load_dataset(classed)
    val = split_indices(len(data.images), seed=card["split_seed"])["val"]
    cfg = ingredient(a)[0]
    model = DeepJscec(cfg)
    model.load_state_dict(load_checkpoint(out, kind="bob")["state_dict"])
    per_link = [validate(model, cfg, data.images[val], data.labels[val], "cpu", s) for s in (2, 3, 4)]
    losses = [v["loss"] for v in per_link]
    assert len(set(losses)) == 3                       # each link has its own keys and noise
    assert card["validation"]["loss"] == pytest.approx(sum(losses) / 3)
    assert card["validation"]["accuracy"] == pytest.approx(sum(v["accuracy"] for v in per_link) / 3)
    assert card["validation"]["links"] == 3
    with pytest.raises(UserError, match="--links must be at least 1"):
        validate_on_links(model, cfg, data.images[val], data.labels[val], "cpu", links=0)
