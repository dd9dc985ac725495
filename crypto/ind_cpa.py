"""The IND-CPA game of the paper's Def. 1, played empirically (numpy only).

One game: the adversary picks two plaintexts m0, m1 ∈ Z_p^k; the challenger draws b ∈ {0, 1}, encrypts
m_b under a fresh nonce (its ``Encryptor`` refuses reuse) and hands the adversary what an
eavesdropper receives — the soft ciphertext ĉ after an optional channel (4096-QAM, AWGN, soft demap:
the caller passes it in, since this package does not import ``radio``), and in ``lwe-pk`` the
transmitted d (digitally protected, so noiseless). The adversary guesses b'. Over N games the
advantage is Pr[b' = 1 | b = 1] − Pr[b' = 1 | b = 0] ∈ [−1, 1] (= 2·Pr[b' = b] − 1 for balanced b),
given with a 95 % interval (:func:`advantage`).

Plaintext pairs (:func:`pairs_for`): ``zero-half`` (all 0 vs all ⌊p/2⌋), ``images`` (a fresh pair of
distinct latents per game from a pool, e.g. test images through Bob's encoder), ``nearest`` and
``farthest`` (the pool's pair closest / furthest apart, circularly).

Distinguishers (the adversary's battery), each from her view v (ĉ, or ĉ with the leak removed in a
control) and the pair:
* per-symbol statistics, no training: ``stat-cos`` Σ cos 2π(v − m_b)/p, ``stat-resultant``
  |Σ e^{2πi(v − m_b)/p}|, ``stat-l1`` −Σ|v − m_b| (circular), ``stat-chi2`` the χ² of the 64-bin
  histogram of v − m_b (the residual of the right guess is the mask, or in a leak, small noise);
  each guesses the b with the larger score;
* ``linear``: logistic regression, and ``mlp``: one hidden layer of 64 ReLU units, both in numpy,
  trained (Adam, early stopping on a held-out tenth) on ≥ 10⁴ labelled games of the same setting and
  fresh nonces, on the features cos/sin 2π(v − m0)/p, cos/sin 2π(v − m1)/p (and cos/sin 2πd/p in
  ``lwe-pk``).

Controls, to show that the harness sees a leak when there is one (advantage ≈ 1):
* ``known-seed``: the adversary knows the error seed (the paper's remark that Eve may know it):
  v = ĉ − Pᵀe1 = m_b + e3 + channel noise (``mask`` mode: she knows the mask key, v = ĉ − m);
* ``reused-nonce``: a second encryptor under the same key starts from the same counter (the bug
  that nonce state guards against) and has sent a known m_ref = m0 under each game's nonce:
  v = ĉ − ĉ_ref + m_ref = m_b + channel noise. (Alice in ``lwe-pk`` with only the public key draws
  her error seed fresh per encryptor, so this control encrypts with the key's own seed there.)
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from crypto.cipher import CipherKeys, Encryptor, lwe_errors
from crypto.zp import P, centered, centroids

PAIRS = ("zero-half", "images", "nearest", "farthest")
STATS = ("stat-cos", "stat-resultant", "stat-l1", "stat-chi2")
LEARNED = ("linear", "mlp")
DISTINGUISHERS = STATS + LEARNED
CONTROLS = ("known-seed", "reused-nonce")
_CHUNK = 2048


# ---------------------------------------------------------------------------- statistics
def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    ph = successes / n
    den = 1 + z * z / n
    mid = (ph + z * z / (2 * n)) / den
    half = z * math.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n)) / den
    return mid - half, mid + half


def advantage(guess: np.ndarray, b: np.ndarray, z: float = 1.959964) -> dict:
    """Advantage Pr[b' = 1 | b = 1] − Pr[b' = 1 | b = 0] ∈ [−1, 1] (2·Pr[b' = b] − 1 when b is balanced,
    and exactly 0 for a guess that ignores the ciphertext), with Newcombe's 95 % interval for a
    difference of proportions (Wilson intervals of each, combined; ``z`` another level)."""
    guess, b = np.asarray(guess).astype(bool), np.asarray(b).astype(bool)
    n1, n0 = int(b.sum()), int((~b).sum())
    k1, k0 = int(guess[b].sum()), int(guess[~b].sum())
    p1, p0 = k1 / max(n1, 1), k0 / max(n0, 1)
    (l1, u1), (l0, u0) = wilson(k1, n1, z), wilson(k0, n0, z)
    d = p1 - p0
    lo = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    hi = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return {"advantage": d, "ci95": [max(-1.0, lo), min(1.0, hi)], "games": n1 + n0,
            "accuracy": float((guess == b).mean())}


# ---------------------------------------------------------------------------- plaintext pairs
@dataclass
class PairSource:
    """How each game's (m0, m1) is drawn: fixed arrays (k,), or a pool (N, k) from which a fresh
    ordered pair of distinct rows is drawn per game."""

    name: str
    m0: np.ndarray | None = None
    m1: np.ndarray | None = None
    pool: np.ndarray | None = None

    def draw(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if self.pool is None:
            return np.broadcast_to(self.m0, (n, self.m0.size)), np.broadcast_to(self.m1, (n, self.m1.size))
        i = rng.integers(0, len(self.pool), n)
        j = (i + rng.integers(1, len(self.pool), n)) % len(self.pool)
        return self.pool[i], self.pool[j]


def circular_l1(a: np.ndarray, b: np.ndarray, p: int = P) -> np.ndarray:
    return np.abs(centered(a.astype(np.float64) - b.astype(np.float64), p)).sum(axis=-1)


def extreme_pairs(pool: np.ndarray, p: int = P) -> tuple[tuple[int, int], tuple[int, int]]:
    """Indices of the nearest and the farthest distinct pair of rows of ``pool`` (circular L1)."""
    pool = np.asarray(pool)
    dist = np.stack([circular_l1(pool, row[None, :], p) for row in pool])
    np.fill_diagonal(dist, np.inf)
    near = np.unravel_index(int(dist.argmin()), dist.shape)
    np.fill_diagonal(dist, -np.inf)
    far = np.unravel_index(int(dist.argmax()), dist.shape)
    return (int(near[0]), int(near[1])), (int(far[0]), int(far[1]))


def synthetic_pool(n: int, k: int, rng: np.random.Generator, p: int = P) -> np.ndarray:
    """Latent-like plaintexts without a model: symbols uniform over the 16 quantiser centroids."""
    return centroids(p)[rng.integers(0, 16, (n, k))]


def pairs_for(names, k: int, pool: np.ndarray | None, p: int = P) -> list[PairSource]:
    """The named pair sources; ``images``/``nearest``/``farthest`` need a latent pool (N ≥ 2, k)."""
    out = []
    for name in names:
        if name == "zero-half":
            out.append(PairSource(name, np.zeros(k, np.int64), np.full(k, p // 2, np.int64)))
            continue
        if pool is None or len(pool) < 2:
            raise ValueError(f"pair {name!r} needs a pool of at least two latents")
        if name == "images":
            out.append(PairSource(name, pool=np.asarray(pool, np.int64)))
        elif name in ("nearest", "farthest"):
            near, far = extreme_pairs(pool, p)
            i, j = near if name == "nearest" else far
            out.append(PairSource(name, np.asarray(pool[i], np.int64), np.asarray(pool[j], np.int64)))
        else:
            raise ValueError(f"unknown pair {name!r}; choose from {', '.join(PAIRS)}")
    return out


# ---------------------------------------------------------------------------- games
@dataclass
class Games:
    """N played games: the hidden bits, the pairs, the adversary's view, and (lwe-pk) d."""

    b: np.ndarray           # (N,) 0/1
    m0: np.ndarray          # (N, k)
    m1: np.ndarray          # (N, k)
    view: np.ndarray        # (N, k) float64 in [0, p)
    d: np.ndarray | None    # (N, n2) int64 or None
    nonces: np.ndarray      # (N,)

    def __len__(self):
        return len(self.b)

    def subset(self, sl) -> "Games":
        return Games(self.b[sl], self.m0[sl], self.m1[sl], self.view[sl], None if self.d is None else self.d[sl],
                     self.nonces[sl])


Channel = Callable[[np.ndarray], np.ndarray]


def _noiseless(c: np.ndarray) -> np.ndarray:
    return c.astype(np.float64)


class Challenger:
    """Holds the keys and encrypts m_b under fresh nonces from its own running counter.

    ``public_only``: in ``lwe-pk``, encrypt as Alice with only the public key (fresh OS error seed).
    """

    def __init__(self, keys: CipherKeys, *, public_only: bool = True, first_nonce: int = 0):
        self.keys = keys
        self.encryptor = Encryptor(keys.public()) if keys.mode == "lwe-pk" and public_only else Encryptor(keys)
        self.next_nonce = first_nonce

    def play(self, pairs: PairSource, n: int, rng: np.random.Generator, channel: Channel | None = None) -> Games:
        """n games: draw (m0, m1) and b, encrypt m_b under n fresh nonces, pass c through ``channel``."""
        channel = channel or _noiseless
        m0, m1 = pairs.draw(n, rng)
        b = rng.integers(0, 2, n)
        z = np.where(b[:, None] == 1, m1, m0)
        nonces = np.arange(self.next_nonce, self.next_nonce + n, dtype=np.int64)
        self.next_nonce += n
        view = np.empty(z.shape, np.float64)
        ds = [] if self.keys.mode == "lwe-pk" else None
        for s in range(0, n, _CHUNK):
            ct = self.encryptor.encrypt_batch(z[s:s + _CHUNK], nonces[s:s + _CHUNK])
            view[s:s + _CHUNK] = channel(ct.c)
            if ds is not None:
                ds.append(ct.d)
        return Games(b, m0, m1, view,
                     None if ds is None else np.concatenate(ds), nonces)


def known_seed_view(keys: CipherKeys, games: Games) -> Games:
    """Control: the adversary removes Pᵀe1 (lwe, lwe-pk: she knows the error seed) or the mask (mask
    mode: she knows the mask key) from what she received. The games must come from ``keys``' own
    encryptor (``Challenger(keys, public_only=False)``)."""
    p = keys.params.p
    out = np.empty_like(games.view)
    for s in range(0, len(games), _CHUNK):
        nonces = games.nonces[s:s + _CHUNK].tolist()
        if keys.mode == "mask":
            m = keys.mask_batch(nonces)
        else:
            e1, _, _ = lwe_errors(keys.error_seed, keys.params, keys.k, nonces, with_e3=False)
            m = (e1.astype(np.float64) @ keys.public()._Pf).astype(np.int64)
        out[s:s + _CHUNK] = np.mod(games.view[s:s + _CHUNK] - m, p)
    return Games(games.b, games.m0, games.m1, out, games.d, games.nonces)


def reused_nonce_view(keys: CipherKeys, games: Games, channel: Channel | None = None) -> Games:
    """Control: a second encryptor under the same key (its own ledger, the same counter) has sent the
    known m_ref = m0 under each game's nonce; the adversary sees both and forms ĉ − ĉ_ref + m_ref."""
    channel = channel or _noiseless
    p = keys.params.p
    twin = Encryptor(keys)   # a second run from the same counter: what crypto.nonce_state prevents
    out = np.empty_like(games.view)
    for s in range(0, len(games), _CHUNK):
        sl = slice(s, s + _CHUNK)
        ref = channel(twin.encrypt_batch(games.m0[sl], games.nonces[sl]).c)
        out[sl] = np.mod(games.view[sl] - ref + games.m0[sl], p)
    return Games(games.b, games.m0, games.m1, out, games.d, games.nonces)


# ---------------------------------------------------------------------------- distinguishers
_TABLES: dict = {}


def _table(p: int):
    """cos and sin of 2πx/p for x ∈ Z_p (float32): plaintexts index it instead of evaluating trig."""
    if p not in _TABLES:
        a = (2 * np.pi / p) * np.arange(p)
        _TABLES[p] = (np.cos(a).astype(np.float32), np.sin(a).astype(np.float32))
    return _TABLES[p]


def _chunk(games: Games, stats, want_features: bool, p: int):
    """One pass over a few games: each statistic's score difference (hypothesis 1 − hypothesis 0)
    and, if wanted, the learned distinguishers' features. cos/sin 2π(v − m)/p come from cos/sin of
    the view (evaluated once) and the table of the integer plaintexts."""
    v = games.view
    a = (2 * np.pi / p) * v
    cv, sv = np.cos(a).astype(np.float32), np.sin(a).astype(np.float32)
    tc, ts = _table(p)
    scores = {name: [] for name in stats}
    parts = []
    for m in (games.m0, games.m1):
        cm, sm = tc[m], ts[m]
        c, sn = cv * cm + sv * sm, sv * cm - cv * sm          # cos, sin of 2π(v − m)/p
        if want_features:
            parts += [c, sn]
        for name in stats:
            if name == "stat-cos":
                scores[name].append(c.sum(axis=1, dtype=np.float64))
            elif name == "stat-resultant":
                scores[name].append(np.hypot(c.sum(axis=1, dtype=np.float64), sn.sum(axis=1, dtype=np.float64)))
            elif name == "stat-l1":
                scores[name].append(-np.abs(centered(v - m, p)).sum(axis=1))
            elif name == "stat-chi2":
                bins = np.floor(np.mod(v - m, p) * (64 / p)).astype(np.int64).clip(0, 63)
                counts = np.bincount((bins + 64 * np.arange(len(v))[:, None]).ravel(),
                                     minlength=64 * len(v)).reshape(len(v), 64)
                expected = v.shape[1] / 64
                scores[name].append(((counts - expected) ** 2 / expected).sum(axis=1))
            else:
                raise ValueError(f"unknown statistic {name!r}")
    if want_features and games.d is not None:
        parts += [tc[games.d], ts[games.d]]
    return {k: sc[1] - sc[0] for k, sc in scores.items()}, (np.concatenate(parts, axis=1) if want_features else None)


def stat_scores(name: str, games: Games, p: int = P) -> np.ndarray:
    """Score of hypothesis 1 minus score of hypothesis 0 (> 0: guess 1) for a per-symbol statistic."""
    return np.concatenate([_chunk(games.subset(slice(s, s + _CHUNK)), [name], False, p)[0][name]
                           for s in range(0, len(games), _CHUNK)])


def guess_pair(view, m0, m1, names=STATS, seed: int = 0, p: int = P) -> dict:
    """One received ciphertext (e.g. a radio frame's soft ciphertext, ``jscec loopback``'s Eve): each
    per-symbol statistic's guess of which candidate plaintext it encrypts, 0 (``m0``) or 1 (``m1``), ties
    broken by a fair coin seeded by ``seed``. The learned distinguishers need labelled games of the same
    setting and are left out."""
    view = np.asarray(view, np.float64).reshape(1, -1)
    m0, m1 = (np.asarray(m, np.int64).reshape(1, -1) for m in (m0, m1))
    if not view.shape == m0.shape == m1.shape:
        raise ValueError(f"view and candidates must have one length, got {view.shape[1]}, {m0.shape[1]}, {m1.shape[1]}")
    names = list(names)
    unknown = [n for n in names if n not in STATS]
    if unknown:
        raise ValueError(f"per-frame guesses use the statistics {', '.join(STATS)}, not {', '.join(unknown)}")
    scores, _ = _chunk(Games(np.zeros(1, np.int64), m0, m1, view, None, np.zeros(1, np.int64)), names, False, p)
    coin = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x6E55]).integers(0, 2, len(names))
    return {n: int(coin[i]) if abs(float(scores[n][0])) <= 1e-6 * view.shape[1] else int(scores[n][0] > 0)
            for i, n in enumerate(names)}


def features(games: Games, p: int = P) -> np.ndarray:
    """cos/sin 2π(v − m0)/p, cos/sin 2π(v − m1)/p (and cos/sin 2πd/p when d is present), float32."""
    return np.concatenate([_chunk(games.subset(slice(s, s + _CHUNK)), [], True, p)[1]
                           for s in range(0, len(games), _CHUNK)])


class _Adam:
    def __init__(self, params, lr):
        self.params, self.lr, self.t = params, lr, 0
        self.m = [np.zeros_like(q) for q in params]
        self.v = [np.zeros_like(q) for q in params]

    def step(self, grads):
        self.t += 1
        for q, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            q -= self.lr * (m / (1 - 0.9 ** self.t)) / (np.sqrt(v / (1 - 0.999 ** self.t)) + 1e-8)


class LearnedDistinguisher:
    """Logistic regression (hidden = 0) or a one-hidden-layer ReLU MLP, trained with Adam on
    standardised features, early stopping on a held-out tenth (numpy only)."""

    def __init__(self, hidden: int = 0, *, epochs: int = 30, batch: int = 256, lr: float = 1e-3,
                 weight_decay: float = 1e-4, patience: int = 4, seed: int = 0):
        self.hidden, self.epochs, self.batch, self.lr = hidden, epochs, batch, lr
        self.wd, self.patience, self.rng = weight_decay, patience, np.random.default_rng(seed)

    def _forward(self, x):
        if self.hidden:
            h = np.maximum(0, x @ self.w1 + self.b1)
            return (h @ self.w2 + self.b2)[:, 0], h
        return (x @ self.w1 + self.b1)[:, 0], None

    def fit(self, x: np.ndarray, y: np.ndarray) -> "LearnedDistinguisher":
        x = np.asarray(x, np.float32)
        y = np.asarray(y, np.float32)
        self.mu, self.sd = x.mean(0), x.std(0) + 1e-6
        x = (x - self.mu) / self.sd
        n_val = max(1, len(x) // 10)
        order = self.rng.permutation(len(x))
        xv, yv, xt, yt = x[order[:n_val]], y[order[:n_val]], x[order[n_val:]], y[order[n_val:]]
        f = x.shape[1]
        if self.hidden:
            self.w1 = (self.rng.standard_normal((f, self.hidden)) * math.sqrt(2 / f)).astype(np.float32)
            self.b1 = np.zeros(self.hidden, np.float32)
            self.w2 = (self.rng.standard_normal((self.hidden, 1)) * math.sqrt(1 / self.hidden)).astype(np.float32)
            self.b2 = np.zeros(1, np.float32)
            params = [self.w1, self.b1, self.w2, self.b2]
        else:
            self.w1 = np.zeros((f, 1), np.float32)
            self.b1 = np.zeros(1, np.float32)
            params = [self.w1, self.b1]
        opt = _Adam(params, self.lr)
        best, best_params, bad = -1.0, [q.copy() for q in params], 0
        for _ in range(self.epochs):
            perm = self.rng.permutation(len(xt))
            for s in range(0, len(xt), self.batch):
                idx = perm[s:s + self.batch]
                xb, yb = xt[idx], yt[idx]
                logit, h = self._forward(xb)
                g = (1 / (1 + np.exp(-logit)) - yb)[:, None] / len(idx)   # dLoss/dlogit (log-loss)
                if self.hidden:
                    gw2 = h.T @ g + self.wd * self.w2
                    gh = (g @ self.w2.T) * (h > 0)
                    grads = [xb.T @ gh + self.wd * self.w1, gh.sum(0), gw2, g.sum(0)]
                else:
                    grads = [xb.T @ g + self.wd * self.w1, g.sum(0)]
                opt.step(grads)
            acc = float(((self._forward(xv)[0] > 0) == (yv > 0.5)).mean())
            if acc > best:
                best, best_params, bad = acc, [q.copy() for q in params], 0
            else:
                bad += 1
                if bad >= self.patience:
                    break
        for q, b in zip(params, best_params):
            q[...] = b
        self.val_accuracy = best
        return self

    def decision(self, x: np.ndarray) -> np.ndarray:
        out = np.empty(len(x))
        for s in range(0, len(x), _CHUNK):
            out[s:s + _CHUNK] = self._forward((np.asarray(x[s:s + _CHUNK], np.float32) - self.mu) / self.sd)[0]
        return out


def learned(name: str, seed: int = 0) -> LearnedDistinguisher:
    if name == "linear":
        return LearnedDistinguisher(0, lr=3e-3, seed=seed)
    if name == "mlp":
        return LearnedDistinguisher(64, seed=seed)
    raise ValueError(f"unknown learned distinguisher {name!r}")


class Scorer:
    """The battery of distinguishers, scored over test games that may arrive in batches.

    ``Scorer(train, names)`` fits the learned distinguishers on ``train`` (skipped without it);
    ``add(test)`` scores a batch of fresh test games and keeps only each guess, so millions of games
    fit in memory; ``results()`` gives each distinguisher's advantage over every game added so far.
    Ties (equal scores up to rounding: e.g. shift-invariant statistics on a pair of constant
    plaintexts) are broken by a fair coin, seeded per distinguisher and batch.
    """

    def __init__(self, train: Games | None = None, names=DISTINGUISHERS, seed: int = 0, p: int = P):
        unknown = [n for n in names if n not in STATS and n not in LEARNED]
        if unknown:
            raise ValueError(f"unknown distinguisher(s) {', '.join(unknown)}")
        self.stats, self.seed, self.p = [n for n in names if n in STATS], seed, p
        self.models, self.train_games = {}, 0 if train is None else len(train)
        if train is not None and any(n in LEARNED for n in names):
            x_train = features(train, p)
            self.models = {n: learned(n, seed).fit(x_train, train.b) for n in names if n in LEARNED}
        self.names = [n for n in names if n in self.stats or n in self.models]
        self._guesses = {n: [] for n in self.names}
        self._b: list[np.ndarray] = []

    def add(self, test: Games) -> "Scorer":
        scores = {n: np.empty(len(test)) for n in self.names}
        for s in range(0, len(test), _CHUNK):
            sc, x = _chunk(test.subset(slice(s, s + _CHUNK)), self.stats, bool(self.models), self.p)
            for n, v in sc.items():
                scores[n][s:s + _CHUNK] = v
            for n, model in self.models.items():
                scores[n][s:s + _CHUNK] = model.decision(x)
        batch = len(self._b)
        for i, name in enumerate(self.names):
            coin = np.random.default_rng([self.seed, i, batch]).integers(0, 2, len(test)).astype(bool)
            tie = np.abs(scores[name]) <= 1e-6 * test.view.shape[1]
            self._guesses[name].append(np.where(tie, coin, scores[name] > 0))
        self._b.append(np.asarray(test.b))
        return self

    def results(self) -> dict:
        b = np.concatenate(self._b) if self._b else np.zeros(0, np.int64)
        out = {}
        for name in self.names:
            out[name] = advantage(np.concatenate(self._guesses[name]) if self._b else np.zeros(0, bool), b)
            if name in self.models:
                out[name].update(train_games=self.train_games, val_accuracy=round(self.models[name].val_accuracy, 4))
        return out


def evaluate(test: Games, train: Games | None = None, names=DISTINGUISHERS, seed: int = 0,
             p: int = P) -> dict:
    """Each distinguisher's advantage on ``test`` (learned ones trained on ``train`` first; skipped
    without it)."""
    return Scorer(train, names, seed, p).add(test).results()
