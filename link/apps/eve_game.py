"""Eve in the loop (issue 20, item 5): the IND-CPA game of Def. 1 played on a run's own frames.

For each image the run picks a second candidate — the next image of the same size in the run (cyclic), or,
when no other image has its size, the image mirrored left to right — and hides which of the two was sent:
the pair's order comes from the operating system's randomness (:mod:`secrets`), not from the run's seed,
which the report names and Eve could know. Eve's receive chain gets only the ordered pairs (the two candidate
latents through Bob's encoder, zero-padded to whole cipher frames as Alice pads them — the adversary of the
game chooses both plaintexts, so she knows them): a sending run appends each image's pair to
``eve-pairs.bin`` as Alice makes its frames, before they are sent (:class:`GameWriter`; her chain reads them
as they come, :class:`PairsFile`), so neither side holds the run's pairs; :func:`make_game` and
:func:`write_pairs` (``pair_<index>`` in an npz) make the same pairs at once. She guesses per
frame, with each per-symbol statistic of the IND-CPA harness, which candidate her soft ciphertext
encrypts (:func:`crypto.ind_cpa.guess_pair`). After the run, :func:`score` joins her guesses with the
hidden order: per distinguisher the success rate with its 95 % Wilson interval, and the advantage
Pr[b' = 1 | b = 1] − Pr[b' = 1 | b = 0] with its 95 % Newcombe interval (:func:`crypto.ind_cpa.advantage`),
and which statistic did best (the largest |advantage|: picked after the fact, so it flatters Eve; its
interval over all four statistics at once, Bonferroni's 1 − 0.05/4 per statistic, ``ci95_family``, is the one
that holds for a statistic chosen that way).

Each frame is one challenge (its cipher frames are encrypted under fresh nonces); frames of one image
share its hidden bit. The harness's learned distinguishers are not run here: they need thousands of
labelled games of the same setting, and in ``jscec security ind-cpa`` they did no better than the
statistics. Costs: one more encoder pass for an image without a partner of its size, and per frame four
statistics over its payload (numpy, about a millisecond for 2048 symbols).
"""
from __future__ import annotations

import secrets
from array import array
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crypto.framing import frames_needed
from crypto.ind_cpa import STATS, advantage, wilson

#: z of the intervals that hold for all four statistics at once (Bonferroni: two-sided 1 − 0.05/4 each).
Z_FAMILY = 2.497705
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


def load_pairs(path):
    """index → (2, n) int64 candidate latents: of :func:`write_pairs`' npz (a dict), or of a
    :class:`GameWriter`'s stream file (a :class:`PairsFile`, read as its pairs are written)."""
    with open(path, "rb") as f:
        streamed = f.read(len(PAIRS_MAGIC)) == PAIRS_MAGIC
    if streamed:
        return PairsFile(path)
    with np.load(path) as z:
        return {int(name.split("_")[1]): z[name].astype(np.int64) for name in z.files if name.startswith("pair_")}


def partners(sizes: list[tuple]) -> list[int | None]:
    """Each image's partner in the game: the next image of its size in the run (cyclic), None when it is
    alone at its size (then its mirror is the other candidate) — :func:`make_game`'s pairing."""
    by_size: dict[tuple, list[int]] = {}
    for i, s in enumerate(sizes):
        by_size.setdefault(tuple(int(v) for v in s), []).append(i)
    out: list[int | None] = [None] * len(sizes)
    for idx in by_size.values():
        if len(idx) > 1:
            for n, i in enumerate(idx):
                out[i] = idx[(n + 1) % len(idx)]
    return out


#: First bytes of a streamed pairs file; then per image a record: index and n (int64, little-endian) and the
#: (2, n) int16 candidate latents in Eve's order.
PAIRS_MAGIC = b"JSCEC-PAIRS-1\n"
_RECORD = np.dtype([("index", "<i8"), ("n", "<i8")])


class _Column(MutableMapping):
    """image index → a small integer, kept in an array (a few bytes per image instead of a dict entry and its
    int objects: a long run's game). ``encode``/``decode`` map the stored values (``"mirror"`` ↔ -1)."""

    def __init__(self, typecode: str, encode=int, decode=int):
        self._values = array(typecode)
        self._present = bytearray()
        self._count = 0
        self._encode, self._decode = encode, decode

    def _slot(self, index) -> int:
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)) \
                or not 0 <= index < len(self._values) or not self._present[index]:
            raise KeyError(index)
        return int(index)

    def __getitem__(self, index):
        return self._decode(self._values[self._slot(index)])

    def __setitem__(self, index, value) -> None:
        index = int(index)
        if index < 0:
            raise KeyError(index)
        grow = index + 1 - len(self._values)
        if grow > 0:
            self._values.extend([0] * grow)
            self._present.extend(bytes(grow))
        self._values[index] = self._encode(value)
        self._count += not self._present[index]
        self._present[index] = 1

    def __delitem__(self, index) -> None:
        self._present[self._slot(index)] = 0
        self._count -= 1

    def __iter__(self):
        return (i for i, has in enumerate(self._present) if has)

    def __len__(self) -> int:
        return self._count


def _partner_in(p) -> int:
    return -1 if p == "mirror" else int(p)


def _partner_out(v: int):
    return "mirror" if v < 0 else v


class GameWriter:
    """The game made image by image while the frames are sent (:class:`link.apps.alice.FrameSource`): each
    image's pair is appended to Eve's file (:data:`PAIRS_MAGIC` records, flushed) before its frames leave, so her
    chain (:class:`PairsFile`) finds it when they arrive; only the hidden order (``game.truth``) and the partners
    stay in memory — the pairs themselves are not kept."""

    def __init__(self, path, k: int):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.k = int(k)
        self.game = Game(truth=_Column("b"), partner=_Column("q", _partner_in, _partner_out))
        self._f = open(self.path, "wb")
        self._f.write(PAIRS_MAGIC)
        self._f.flush()

    def add(self, index: int, sent: np.ndarray, other: np.ndarray, partner: int | None) -> None:
        sent, other = _padded(np.asarray(sent), self.k), _padded(np.asarray(other), self.k)
        b = secrets.randbits(1)
        pair = np.stack([other, sent] if b else [sent, other]).astype("<i2")
        head = np.array([(int(index), sent.size)], _RECORD)
        self._f.write(head.tobytes() + pair.tobytes())
        self._f.flush()
        self.game.truth[int(index)] = b
        self.game.partner[int(index)] = "mirror" if partner is None else int(partner)

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


class PairsFile(Mapping):
    """Eve's view of a streamed game (:class:`GameWriter`'s file): index → (2, n) int64 candidate latents, read
    from the file when asked for. Records appended since the last look are indexed on a miss (a record not
    yet whole is left for the next look); only their offsets are kept."""

    def __init__(self, path):
        self.path = Path(path)
        self._offsets: dict[int, tuple[int, int]] = {}
        self._end = len(PAIRS_MAGIC)

    def _scan(self) -> None:
        with open(self.path, "rb") as f:
            size = f.seek(0, 2)
            pos = self._end
            while pos + _RECORD.itemsize <= size:
                f.seek(pos)
                head = np.frombuffer(f.read(_RECORD.itemsize), _RECORD)[0]
                end = pos + _RECORD.itemsize + 4 * int(head["n"])
                if end > size:
                    break
                self._offsets[int(head["index"])] = (pos + _RECORD.itemsize, int(head["n"]))
                pos = end
            self._end = pos

    def __contains__(self, index) -> bool:
        if index not in self._offsets:
            self._scan()
        return index in self._offsets

    def __getitem__(self, index) -> np.ndarray:
        if index not in self:
            raise KeyError(index)
        offset, n = self._offsets[index]
        return np.fromfile(self.path, "<i2", 2 * n, offset=offset).reshape(2, n).astype(np.int64)

    def __iter__(self):
        self._scan()
        return iter(sorted(self._offsets))

    def __len__(self) -> int:
        self._scan()
        return len(self._offsets)


def score(records, game: Game) -> dict:
    """Eve's per-frame guesses (her chain's per-frame records with ``guess``, any iterable: read once) against
    the hidden order. Frames with the same guesses share one ``guess`` dict (a long run's rows stay small)."""
    shared: dict = {}
    rows = [{"counter": r["counter"], "image": r["image"], "chunk": r["chunk"], "sent": game.truth[r["image"]],
             "guess": shared.setdefault(tuple(r["guess"].items()), r["guess"])}
            for r in records if "guess" in r and r.get("image") in game.truth]
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
                       "advantage_ci95": adv["ci95"], "success_ci95_family": list(wilson(right, len(rows), Z_FAMILY)),
                       "advantage_ci95_family": advantage(g, b, Z_FAMILY)["ci95"]}
    best = max(dists, key=lambda n: abs(dists[n]["advantage"]))
    return {**out, "distinguishers": dists, "best": best, "per_frame": rows}


def summary_line(doc: dict) -> str | None:
    """One line for the printed table, or None without guesses."""
    if not doc or not doc.get("best"):
        return None
    d = doc["distinguishers"][doc["best"]]
    lo, hi = d.get("success_ci95_family", d["success_ci95"])
    alo, ahi = d.get("advantage_ci95_family", d["advantage_ci95"])
    return (f"Eve's distinguisher ({doc['best']}, best of {len(doc['distinguishers'])}): which of two candidate "
            f"images was sent, right on {100 * d['success_rate']:.1f} % of {doc['frames']} frames, advantage "
            f"{d['advantage']:+.3f} (95 % CI over the {len(doc['distinguishers'])} statistics: "
            f"{100 * lo:.1f}–{100 * hi:.1f} % right, advantage {alo:+.3f} to {ahi:+.3f})")
