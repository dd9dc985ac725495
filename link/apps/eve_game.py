"""Eve in the loop (issue 20, item 5): the IND-CPA game of Def. 1 played on a run's own frames.

For each image the run picks a second candidate — the next image of the same size in the run (cyclic), or,
when no other image has its size, the image mirrored left to right — and hides which of the two was sent:
the pair's order comes from the operating system's randomness (:mod:`secrets`), not from the run's seed,
which the report names and Eve could know. Eve's receive chain gets only the ordered pairs (``pairs.npz``:
``pair_<index>``, the two candidate latents through Bob's encoder, zero-padded to whole cipher frames as
Alice pads them — the adversary of the game chooses both plaintexts, so she knows them) and guesses per
frame, with each per-symbol statistic of the IND-CPA harness, which candidate her soft ciphertext
encrypts (:func:`crypto.ind_cpa.guess_pair`). After the run, :func:`score` joins her guesses with the
hidden order: per distinguisher the success rate with its 95 % Wilson interval, and the advantage
Pr[b' = 1 | b = 1] − Pr[b' = 1 | b = 0] with its 95 % Newcombe interval (:func:`crypto.ind_cpa.advantage`),
and which statistic did best (the largest |advantage|: picked after the fact, so it flatters Eve).

Each frame is one challenge (its cipher frames are encrypted under fresh nonces); frames of one image
share its hidden bit. The harness's learned distinguishers are not run here: they need thousands of
labelled games of the same setting, and in ``jscec security ind-cpa`` they did no better than the
statistics. Costs: one more encoder pass for an image without a partner of its size, and per frame four
statistics over its payload (numpy, about a millisecond for 2048 symbols).
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crypto.framing import frames_needed
from crypto.ind_cpa import STATS, advantage, wilson

PAIRING = ("each image against the next image of its size in the run (cyclic), or its left-right mirror when no "
           "other image has its size; the pair's order hidden from Eve (OS randomness)")


@dataclass
class Game:
    """The run's pairs: ``pairs[i]`` (2, n) int16 candidate latents in Eve's order, ``truth[i]`` the row that
    was sent, ``partner[i]`` the other candidate (an image index, or ``"mirror"``)."""

    pairs: dict[int, np.ndarray] = field(default_factory=dict)
    truth: dict[int, int] = field(default_factory=dict)
    partner: dict[int, object] = field(default_factory=dict)


def _padded(z: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros(frames_needed(z.size, k) * k, np.int16)
    out[:z.size] = z
    return out


def make_game(plaintexts: dict[int, np.ndarray], sizes: dict[int, tuple], mirror: Callable[[int], np.ndarray],
              k: int) -> Game:
    """The pairs of the images ``plaintexts`` (index → latent in Z_p), ``sizes`` (index → (H, W)); ``mirror(i)``:
    the latent of image i mirrored left to right (called only for an image alone at its size)."""
    game = Game()
    order = sorted(plaintexts)
    for n, i in enumerate(order):
        partner = next((j for j in order[n + 1:] + order[:n] if tuple(sizes[j]) == tuple(sizes[i])), None)
        other = mirror(i) if partner is None else plaintexts[partner]
        sent, other = _padded(np.asarray(plaintexts[i]), k), _padded(np.asarray(other), k)
        b = secrets.randbits(1)
        game.pairs[i] = np.stack([other, sent] if b else [sent, other])
        game.truth[i] = b
        game.partner[i] = "mirror" if partner is None else int(partner)
    return game


def write_pairs(path, game: Game) -> Path:
    """Eve's view of the game (no truth): ``pair_<index>`` arrays."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{f"pair_{i}": p for i, p in game.pairs.items()})
    return path


def load_pairs(path) -> dict[int, np.ndarray]:
    """index → (2, n) int64 candidate latents of :func:`write_pairs`' file."""
    with np.load(path) as z:
        return {int(name.split("_")[1]): z[name].astype(np.int64) for name in z.files if name.startswith("pair_")}


def score(records, game: Game) -> dict:
    """Eve's per-frame guesses (her chain's per-frame records with ``guess``) against the hidden order."""
    rows = [{"counter": r["counter"], "image": r["image"], "chunk": r["chunk"], "sent": game.truth[r["image"]],
             "guess": r["guess"]} for r in records if "guess" in r and r.get("image") in game.truth]
    out = {"game": PAIRING, "frames": len(rows), "images": len(game.truth),
           "mirrored": sum(1 for p in game.partner.values() if p == "mirror")}
    if not rows:
        return {**out, "distinguishers": {}, "best": None, "per_frame": []}
    b = np.array([r["sent"] for r in rows])
    dists = {}
    for name in STATS:
        g = np.array([r["guess"][name] for r in rows])
        right = int((g == b).sum())
        lo, hi = wilson(right, len(rows))
        adv = advantage(g, b)
        dists[name] = {"success_rate": right / len(rows), "success_ci95": [lo, hi], "advantage": adv["advantage"],
                       "advantage_ci95": adv["ci95"]}
    best = max(dists, key=lambda n: abs(dists[n]["advantage"]))
    return {**out, "distinguishers": dists, "best": best, "per_frame": rows}


def summary_line(doc: dict) -> str | None:
    """One line for the printed table, or None without guesses."""
    if not doc or not doc.get("best"):
        return None
    d = doc["distinguishers"][doc["best"]]
    lo, hi = d["success_ci95"]
    alo, ahi = d["advantage_ci95"]
    return (f"Eve's distinguisher ({doc['best']}, best of {len(doc['distinguishers'])}): which of two candidate "
            f"images was sent, right on {100 * d['success_rate']:.1f} % of {doc['frames']} frames (95 % CI "
            f"{100 * lo:.1f}–{100 * hi:.1f} %), advantage {d['advantage']:+.3f} ({alo:+.3f} to {ahi:+.3f})")
