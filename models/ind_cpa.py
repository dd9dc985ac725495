"""``jscec security ind-cpa``: the IND-CPA game set (crypto.ind_cpa) over the radio's channel.

For each mode, plaintext pair and SNR: ``train_games`` labelled games train the learned
distinguishers, ``test_games`` fresh games measure every distinguisher's advantage; the two controls
(known error seed, reused nonce) run on ``control_games`` games of their own. Each game's ciphertext
goes through 4096-QAM → complex AWGN at the SNR → soft demap (eqs. 13–15, as in
models.secure_channel) or arrives noiseless (``None``). Every game uses a nonce of its own; each cell
(mode, pair, SNR) has its own generator and nonce range, plays its test games in batches (memory stays
bounded at millions of games) and can be kept in a JSON-lines store, so a long run resumes where it
stopped. Image pairs are test images of the dataset through Bob's encoder (the bundled
model by default); without a model or dataset they fall back to random centroid latents.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from crypto import ind_cpa as G
from crypto.cipher import CipherKeys, get_params
from jscec.errors import UserError
from radio.channel import awgn, noise_variance
from radio.zp_qam import modulate, soft_demap


@dataclass
class IndCpaConfig:
    modes: Sequence[str] = ("lwe", "lwe-pk", "mask")
    params: str = "lp-192"
    snrs_db: Sequence[float | None] = (None, 0.0, 10.0, 30.0)   # None: no channel
    pairs: Sequence[str] = G.PAIRS
    distinguishers: Sequence[str] = G.DISTINGUISHERS
    train_games: int = 10_000
    test_games: int = 20_000
    control_games: int = 5_000
    k: int = 512
    model: str | None = "cifar10-lwe"   # Bob's encoder for image pairs (None: synthetic latents)
    data: str | None = None
    pool_images: int = 256
    seed: int = 0
    test_batch: int = 20_000           # test games played and scored at a time (memory)
    store: str | None = None           # JSON lines: finished cells, reused when a run resumes
    extra: dict = field(default_factory=dict)


def make_channel(snr_db: float | None, rng: np.random.Generator):
    """c (B, k) int → what an eavesdropper demaps: soft 4096-QAM after AWGN at ``snr_db`` (None: c itself)."""
    if snr_db is None:
        return None

    def channel(c):
        return soft_demap(awgn(modulate(c), snr_db, rng), noise_variance(snr_db))

    return channel


def image_latents(model: str, data: str | None, n: int, k: int) -> tuple[np.ndarray, str]:
    """The first n test images of the dataset through Bob's encoder: (n, k) plaintexts in Z_p."""
    import torch

    from models.checkpoint import resolve_model
    from models.datasets import load_dataset, split_indices
    from models.evaluate import load_bob
    from models.images import to_tensor

    path = resolve_model(model)
    bob = load_bob(path)
    ds = load_dataset(data, progress=False)
    test = split_indices(len(ds.images), seed=bob.card.get("split_seed", 0))["test"][:n]
    with torch.no_grad():
        z = np.concatenate([bob.encode(to_tensor(ds.images[test[i:i + 64]], "cpu"))[1].numpy()
                            for i in range(0, len(test), 64)])
    if z.shape[1] != k:
        raise ValueError(f"{path.stem}'s latents have {z.shape[1]} symbols, not k = {k}")
    return z.astype(np.int64), f"{len(z)} {ds.name} test images through {path.stem}'s encoder"


def _keys(mode: str, params: str, k: int, seed: int) -> CipherKeys:
    master = hashlib.sha256(f"jscec/ind-cpa/{seed}/{mode}/{params}".encode()).digest()
    return CipherKeys.generate(params, mode, k, seed=master)


def _cell_key(mode: str, pair: str, snr: float | None) -> str:
    return f"{mode}/{pair}/{'none' if snr is None else f'{float(snr):g}'}"


def fingerprint(cfg: IndCpaConfig) -> str:
    """What a stored cell must share with this run to be reused: everything but the cells' list."""
    keep = {k: v for k, v in asdict(cfg).items() if k not in ("modes", "snrs_db", "pairs", "extra", "test_batch",
                                                               "store")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=list).encode()).hexdigest()[:16]


def load_store(path, cfg: IndCpaConfig) -> dict[str, dict]:
    """Rows of this configuration already in the JSON-lines store at ``path`` (missing: none)."""
    rows, fp = {}, fingerprint(cfg)
    p = Path(path)
    if not p.exists():
        return rows
    for n, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise UserError(f"{p}: line {n} is not JSON (a run stopped mid-write? delete that line)") from None
        if row.get("fingerprint") == fp:
            rows[row["cell"]] = row
    return rows


def run_ind_cpa(cfg: IndCpaConfig, log=print, progress: bool = False) -> dict:
    """Play every game; returns the JSON-ready report (``results``: one row per mode, pair and SNR).

    Each cell (mode, pair, SNR) trains the learned distinguishers on ``train_games`` games and scores
    the battery on ``test_games`` fresh games, played ``test_batch`` at a time so memory stays bounded.
    Every cell has its own generator and nonce range, so with ``store`` (JSON lines) a stopped run
    resumes at the first missing cell and gives the numbers an uninterrupted run would.
    """
    t0 = time.time()
    params = get_params(cfg.params)
    rng = np.random.default_rng([cfg.seed, 0x1ADC])
    pool, pool_source = None, None
    if {"images", "nearest", "farthest"} & set(cfg.pairs):
        if cfg.model:
            pool, pool_source = image_latents(cfg.model, cfg.data, cfg.pool_images, cfg.k)
        else:
            pool = G.synthetic_pool(cfg.pool_images, cfg.k, rng, params.p)
            pool_source = f"{cfg.pool_images} random latents (symbols uniform over the 16 centroids)"
    sources = G.pairs_for(cfg.pairs, cfg.k, pool, params.p)
    stored = load_store(cfg.store, cfg) if cfg.store else {}
    fp = fingerprint(cfg)
    rows = []
    for mode in cfg.modes:
        keys = _keys(mode, cfg.params, cfg.k, cfg.seed)
        for src in sources:
            for snr in cfg.snrs_db:
                cell = _cell_key(mode, src.name, snr)
                if cell in stored:
                    rows.append(stored[cell])
                    log(f"{cell}: kept from {cfg.store}")
                    continue
                row = _play_cell(cfg, keys, src, snr, progress)
                row.update(fingerprint=fp)
                rows.append(row)
                if cfg.store:
                    with open(cfg.store, "a") as fh:
                        fh.write(json.dumps(row) + "\n")
                log(f"{mode:<6} {src.name:<9} SNR {'none' if snr is None else f'{snr:g} dB':>7}: max |adv| "
                    f"{row['max_abs_advantage']:.4f}; controls known-seed "
                    f"{row['controls']['known-seed']['best']:.3f}, reused-nonce "
                    f"{row['controls']['reused-nonce']['best']:.3f} ({row['seconds']:.0f} s)")
    return {"command": "security ind-cpa",
            "config": {k: v for k, v in asdict(cfg).items() if k not in ("extra", "store")},
            "params": {"name": params.name, "n1": params.n1, "n2": params.n2, "q": params.p, "s": params.s},
            "pool": pool_source, "advantage": "Pr[b'=1 | b=1] - Pr[b'=1 | b=0], 95 % Newcombe interval",
            "summary": summarize(rows), "results": rows, "minutes": round((time.time() - t0) / 60, 1)}


def _play_cell(cfg: IndCpaConfig, keys: CipherKeys, src: G.PairSource, snr: float | None, progress: bool) -> dict:
    t = time.time()
    cell = _cell_key(keys.mode, src.name, snr)
    tag = int.from_bytes(hashlib.sha256(cell.encode()).digest()[:4], "big") >> 12   # 20 bits
    rng = np.random.default_rng([cfg.seed, 0x1ADC, tag])
    # Disjoint nonce ranges per cell (the challenger's counter) and for the controls' own encryptor.
    challenger = G.Challenger(keys, first_nonce=(2 * tag) << 40)          # lwe-pk: Alice with the public key only
    control = G.Challenger(keys, public_only=False, first_nonce=(2 * tag + 1) << 40)   # the key's own error seed
    channel = make_channel(snr, rng)

    def play(who, n):
        clean = who.play(src, n, rng)
        if channel is None:
            return clean
        return G.Games(clean.b, clean.m0, clean.m1, _through(channel, np.rint(clean.view).astype(np.int64)),
                       clean.d, clean.nonces)

    scorer = G.Scorer(play(challenger, cfg.train_games), cfg.distinguishers, seed=cfg.seed)
    batch = cfg.test_batch or cfg.test_games
    with tqdm(total=cfg.test_games, desc=cell, unit="game", disable=not progress, leave=False,
              file=sys.stderr) as bar:
        for s in range(0, cfg.test_games, batch):
            n = min(batch, cfg.test_games - s)
            scorer.add(play(challenger, n))
            bar.update(n)
    res = scorer.results()
    ctl = play(control, cfg.control_games)
    stats = [d for d in cfg.distinguishers if d in G.STATS]
    controls = {"known-seed": G.evaluate(G.known_seed_view(keys, ctl), names=stats, seed=cfg.seed),
                "reused-nonce": G.evaluate(G.reused_nonce_view(keys, ctl, channel), names=stats, seed=cfg.seed)}
    return {"cell": cell, "mode": keys.mode, "pair": src.name, "snr_db": snr, "distinguishers": res,
            "max_abs_advantage": max(abs(r["advantage"]) for r in res.values()),
            "controls": {name: dict(c, best=max(v["advantage"] for v in c.values())) for name, c in controls.items()},
            "seconds": round(time.time() - t, 1)}


def _through(channel, c_int: np.ndarray) -> np.ndarray:
    out = np.empty(c_int.shape, np.float64)
    for s in range(0, len(c_int), 4096):
        out[s:s + 4096] = channel(c_int[s:s + 4096])
    return out


def summarize(rows: list[dict]) -> dict:
    """The figures the targets are stated in: the largest |advantage| and CI bound of the real games,
    how many intervals exclude 0, and the weakest control."""
    real = [(r, name, d) for r in rows for name, d in r["distinguishers"].items()]
    worst = max(real, key=lambda t: abs(t[2]["advantage"]))
    bound = max(max(abs(d["ci95"][0]), abs(d["ci95"][1])) for _, _, d in real)
    excl = [f"{r['mode']}/{r['pair']}/{r['snr_db']}/{n}" for r, n, d in real if d["ci95"][0] > 0 or d["ci95"][1] < 0]
    ctl = {name: min(r["controls"][name]["best"] for r in rows) for name in G.CONTROLS}
    return {"estimates": len(real), "max_abs_advantage": round(abs(worst[2]["advantage"]), 4),
            "max_abs_advantage_at": f"{worst[0]['mode']}/{worst[0]['pair']}/{worst[0]['snr_db']}/{worst[1]}",
            "max_abs_ci95_bound": round(bound, 4),
            "ci95_excluding_zero": len(excl), "ci95_excluding_zero_expected": round(0.05 * len(real), 1),
            "ci95_excluding_zero_at": excl, "controls_min_best": ctl}
