"""Model soups: one Bob model whose weights are the average of several runs' weights (Wortsman et al., 2022).

Runs that continue from the same weights (warm restarts with other learning rates, weight decay or
augmentation) tend to stay in one basin of the loss, where the average of their weights is a model of its
own and is often better on held-out images than each of them. The greedy soup takes the ingredients best
validation score first and keeps each one only if the average with it scores higher on the validation split
(at SNR_train, on the link that ``jscec train`` validates on, or the mean over several such links), so it never
scores below its best ingredient.

An ingredient is a Bob checkpoint or a training checkpoint (``<out>.last.pt``; its moving average of the
weights when it keeps one, ``--ema``). All must share one configuration (architecture, cipher, SNR_train).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from jscec.errors import UserError
from models.checkpoint import card_path, load_checkpoint, load_state, save_checkpoint
from models.codec import CodecConfig, DeepJscec
from models.train import describe_validation, validate


def ingredient(path) -> tuple[CodecConfig, dict, dict]:
    """(configuration, weights, card) of a Bob or training checkpoint. A training checkpoint ``<out>.last.pt``
    gives its moving average of the weights when it keeps one, and the card of its run's ``<out>.pt`` with the
    epoch and step counts of its last epoch."""
    ck = load_checkpoint(path)
    if ck.get("kind") not in ("bob", "bob-training"):
        raise UserError(f"{path} is not a Bob model or training checkpoint (kind {ck.get('kind')!r})")
    state, card = ck["state_dict"], ck.get("card") or {}
    if "ema_state_dict" in ck:
        state = {k.removeprefix("module."): v for k, v in ck["ema_state_dict"].items() if k != "n_averaged"}
    run_card = card_path(Path(path).with_suffix("").with_suffix(".pt"))
    if ck["kind"] == "bob-training" and Path(path).name.endswith(".last.pt") and run_card.is_file():
        card = json.loads(run_card.read_text())
        if "state_json" in ck:   # the run card describes its best epoch; these weights are from its last
            last = json.loads(ck["state_json"])
            card = dict(card, epochs=last["epoch"], steps=last["step"])
    return CodecConfig.from_dict(ck["config"]), state, card


def average(states: list[dict]) -> dict:
    """The mean of each floating-point tensor (in float32); other tensors are taken from the first.

    A tensor that every ingredient holds unchanged (the encoder, when the runs were trained with
    ``--freeze-encoder``) is kept exactly: the float32 mean of three equal numbers can differ from them in the
    last bit.
    """
    def mean(k, v):
        if not v.is_floating_point():
            return v.clone()
        if all(torch.equal(s[k], v) for s in states[1:]):
            return v.float().clone()
        return torch.stack([s[k].float() for s in states]).mean(0)

    return {k: mean(k, v) for k, v in states[0].items()}


def validate_on_links(model, cfg: CodecConfig, images, labels, device, seed: int = 0, links: int = 1) -> dict:
    """:func:`models.train.validate` averaged over ``links`` validation links, seeds ``seed`` to ``seed + links − 1``.

    Each link has its own keys and channel noise; on 6000 CIFAR-10 images at 10 dB one model's accuracy moves
    by as much as a point from one link to another, more than the differences a soup decides on.
    """
    if links < 1:
        raise UserError(f"--links must be at least 1, not {links}")
    vals = [validate(model, cfg, images, labels, device, seed + i) for i in range(links)]
    return {k: float(np.mean([v[k] for v in vals])) for k in vals[0]}


def load_ingredients(paths) -> dict:
    """``{path: (configuration, weights, card)}`` of every ingredient (:func:`ingredient`), in order."""
    return {str(p): ingredient(p) for p in paths}


def greedy_soup(ingredients: dict, images: np.ndarray, labels: np.ndarray | None, out, *, seed: int = 0,
                links: int = 1, device="cpu", log=print) -> dict:
    """Build the greedy soup of the loaded ``ingredients`` (:func:`load_ingredients`) on the validation ``images``
    (and ``labels``), scored as the mean over ``links`` validation links, save it to ``out`` as a Bob checkpoint
    with its card, and return the card."""
    if len(ingredients) < 2:
        raise UserError("a soup needs at least two ingredients")
    paths, loaded = list(ingredients), list(ingredients.values())
    cfg = loaded[0][0]
    for p, (c, _, _) in zip(paths, loaded):
        if c != cfg:
            raise UserError(f"{p} has another configuration than {paths[0]}; a soup mixes runs of one model")
    model = DeepJscec(cfg).to(device)

    def score(state) -> dict:
        load_state(model, state, out)
        return validate_on_links(model, cfg, images, labels, device, seed, links)

    scored = []
    for p, (_, state, card) in zip(paths, loaded):
        val = score(state)
        scored.append((val["score"], str(p), state, card, val))
        log(f"ingredient {p}: {describe_validation(val)}")
    scored.sort(key=lambda t: -t[0])
    best_score, _, first_state, _, best_val = scored[0]
    base_card = next((c for *_, c, _ in scored if c), {})   # the best ingredient's card that is known
    kept, states = [scored[0][1]], [first_state]
    for s, p, state, _, _ in scored[1:]:
        val = score(average(states + [state]))
        taken = val["score"] > best_score
        log(f"with {p}: {describe_validation(val)} — {'kept' if taken else 'left out'}")
        if taken:
            kept.append(p)
            states.append(state)
            best_score, best_val = val["score"], val
    soup_state = average(states)
    validation = {k: v for k, v in best_val.items() if k != "score"}
    validation = dict(validation, images=int(len(images)), links=links, snr_db=cfg.snr_train_db)
    card = dict(base_card, validation=validation,
                soup={"method": "greedy (Wortsman et al. 2022)", "kept": kept,
                      "ingredients": [{"path": p, "validation": s} for s, p, *_ in scored]})
    card.pop("weights_dtype", None)
    save_checkpoint(Path(out), {"kind": "bob", "config": cfg.to_dict(), "state_dict": soup_state}, card)
    log(f"soup of {len(kept)} of {len(paths)}: {describe_validation(best_val)} → {out}")
    return card
