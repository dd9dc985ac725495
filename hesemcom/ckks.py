"""Model 4: the HE-friendly JSCC (Model 3) evaluated on CKKS ciphertexts with TenSEAL / Microsoft SEAL.

TenSEAL (0.3.18) makes the context and the keys; the evaluation calls SEAL through ``tenseal.sealapi``
(TenSEAL's Python vectors have no slot rotation, and its ``.mm()`` is slow).

**Parameters** (printed with every run): ring degree N = 8192, coefficient moduli [50, 40, 40, 40, 48] bits
(log Q = 218), scale 2^40. The HE standard (homomorphicencryption.org, 2018; ternary secret, classical) allows
log Q ≤ 218 at N = 8192 for 128-bit security, and SEAL refuses any context above that bound (its default
``sec_level = tc128``), so the context's existence is the check. Depth 3: convolution (plaintext
multiplication), square (ciphertext multiplication + relinearisation), fully connected (plaintext multiplication);
the 50-bit first prime leaves 10 bits for the class scores (|score| < 512).

**Packing** (SIMD): each image is a 32×32 block of 1024 slots (the 28×28 image at rows/columns 2…29, zeros
around it), 4 images per ciphertext (N/2 = 4096 slots). On the ciphertext, with rotations inside each block:

* convolution: Σ_dy rot(Σ_dx w[dy, dx] · rot(x, dx), 32·dy) + b (2(k − 1) rotations for k×k taps; the zero
  border is the convolution's padding);
* square;
* average pooling: y + rot(y, 1) + rot(y, 32) + rot(y, 33); the 196 features sit at the even (row, column)
  slots. The normalisation 1/(4·rms) is folded into the convolution (its weights times √(1/(4·rms)));
* **channel**: the features' AWGN is added to the ciphertext's slots (a plaintext vector with the noise at the
  196 feature slots), the paper's setting — the noise hits the features, not the ciphertext's polynomial
  coefficients (what a radio would do to transmitted ciphertext bits is Model 4 over the digital chain);
* fully connected: for each pair of classes (j, j + 5), a plaintext multiplication by W_j + i·W_{j+5} (CKKS
  slots are complex; the features are real, so the real part carries class j and the imaginary part class
  j + 5) at the feature slots, and a rotate-and-sum over the block's even rows and columns (8 rotations); the
  key holder decrypts the 5 score ciphertexts.

**Key updates**: ``key_every`` = N regenerates the secret, public, relinearisation and Galois keys every N
images (batches never straddle an update); each update's key-generation time is reported.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

#: max log2(Q) for 128-bit classical security, HE standard (ternary secret), per ring degree N.
HE_STANDARD_128 = {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881}
BLOCK, ROW, PAD = 1024, 32, 2
SIDE = 28


@dataclass(frozen=True)
class CkksParams:
    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: tuple = (50, 40, 40, 40, 48)
    scale_bits: int = 40

    @property
    def log_q(self) -> int:
        return int(sum(self.coeff_mod_bit_sizes))

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree // 2

    @property
    def images_per_ciphertext(self) -> int:
        return self.slots // BLOCK

    def security(self) -> dict:
        bound = HE_STANDARD_128.get(self.poly_modulus_degree)
        return {"scheme": "CKKS", **asdict(self), "log_q": self.log_q, "he_standard_max_log_q_128": bound,
                "security_bits": 128 if bound and self.log_q <= bound else None,
                "depth": len(self.coeff_mod_bit_sizes) - 2}

    def describe(self) -> str:
        s = self.security()
        return (f"CKKS N = {self.poly_modulus_degree}, moduli {list(self.coeff_mod_bit_sizes)} (log Q = {self.log_q} "
                f"≤ {s['he_standard_max_log_q_128']}: 128-bit per the HE standard), scale 2^{self.scale_bits}, "
                f"{self.images_per_ciphertext} images per ciphertext")


def block_offset(r, c):
    """Slot of pixel (r, c) inside an image's block."""
    return (np.asarray(r) + PAD) * ROW + np.asarray(c) + PAD


#: slots of the 196 features (pooled (r', c') at the block's (2r', 2c') pixel), feature order r'·14 + c'.
FEATURE_SLOTS = block_offset(2 * (np.arange(196) // 14), 2 * (np.arange(196) % 14))
#: rotate-and-sum steps that gather a block's feature slots (even columns 2…32, even rows 2…32) into SCORE_SLOT
SUM_STEPS = (2, 4, 8, 16, 2 * ROW, 4 * ROW, 8 * ROW, 16 * ROW)
SCORE_SLOT = int(block_offset(0, 0))


class Keys:
    """One key set: a TenSEAL context (secret, public, relinearisation, Galois keys) and SEAL's tools."""

    def __init__(self, params: CkksParams, context=None):
        """Fresh keys for ``params``, or the keys of ``context`` (a TenSEAL context, e.g. :meth:`from_bytes`)."""
        import tenseal as ts
        from tenseal import sealapi as sa

        t0 = time.perf_counter()
        if context is None:
            self.ctx = ts.context(ts.SCHEME_TYPE.CKKS, params.poly_modulus_degree,
                                  coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes))
            self.ctx.global_scale = 2.0 ** params.scale_bits
            self.ctx.generate_galois_keys()   # powers of two; SEAL composes the other steps from them
        else:
            self.ctx = context
        self.seconds = time.perf_counter() - t0
        sc = self.ctx.seal_context().data
        self.sa, self.params = sa, params
        self.encoder = sa.CKKSEncoder(sc)
        self.ev = sa.Evaluator(sc)
        self.encryptor = sa.Encryptor(sc, self.ctx.public_key().data)
        self.decryptor = sa.Decryptor(sc, self.ctx.secret_key().data)
        self.galois = self.ctx.galois_keys().data if self.ctx.has_galois_keys() else None   # from_bytes: use_galois
        self.relin = self.ctx.relin_keys().data
        self.scale = 2.0 ** params.scale_bits

    def to_bytes(self) -> bytes:
        """The key set (secret, public and relinearisation keys; not the 50 MB of Galois keys, see
        :meth:`decoder_galois_keys`) serialised by TenSEAL: a secret, to be written only as a key file (mode
        0600)."""
        return self.ctx.serialize(save_public_key=True, save_secret_key=True, save_galois_keys=False,
                                  save_relin_keys=True)

    @classmethod
    def from_bytes(cls, data: bytes, params: CkksParams = CkksParams()) -> "Keys":
        """The key set :meth:`to_bytes` wrote (the same secret key: decryptions are bit-identical; TenSEAL makes
        fresh Galois keys, so load the decoder's with :meth:`use_galois`)."""
        import tenseal as ts

        ctx = ts.context_from(data)
        if not ctx.is_private() or ctx.seal_context().data.first_context_data().parms().poly_modulus_degree() \
                != params.poly_modulus_degree:
            raise ValueError("not a private CKKS key set of these parameters")
        return cls(params, ctx)

    def decoder_galois_keys(self) -> bytes:
        """Fresh Galois keys for the decoder's rotations only (:data:`SUM_STEPS`), serialised by SEAL (seeded:
        half the size; 8 keys, ≈ 8.5 MB at N = 8192). Public evaluation keys: a recording of Model 4 keeps them
        so that its replay evaluates the decoder with the very keys the live run used (fresh Galois keys would
        change the scores in their last bits). Use them with :meth:`use_galois`."""
        import os
        import tempfile

        sc = self.ctx.seal_context().data
        elts = sc.key_context_data().galois_tool().get_elts_from_steps(list(SUM_STEPS))
        ser = self.sa.KeyGenerator(sc, self.ctx.secret_key().data).create_galois_keys(elts)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "galois")
            ser.save(path)
            return open(path, "rb").read()

    def use_galois(self, data: bytes) -> None:
        """Rotate with the Galois keys :meth:`decoder_galois_keys` serialised (their steps only)."""
        import os
        import tempfile

        gk = self.sa.GaloisKeys()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "galois")
            with open(path, "wb") as f:
                f.write(data)
            gk.load(self.ctx.seal_context().data, path)
        self.galois = gk

    def key_id(self) -> str:
        """8 hex digits naming the key set: a truncated SHA-256 of its serialised public key (reveals nothing)."""
        import hashlib

        pub = self.ctx.serialize(save_public_key=True, save_secret_key=False, save_galois_keys=False,
                                 save_relin_keys=False)
        return hashlib.sha256(b"jscec hesemcom ckks key id\x00" + pub).hexdigest()[:8]

    def encode(self, values, ct=None, scale=None):
        pt = self.sa.Plaintext()
        if ct is None:
            self.encoder.encode(values, scale or self.scale, pt)
        else:
            self.encoder.encode(values, ct.parms_id(), scale or self.scale, pt)
        return pt

    def rotate(self, ct, steps: int):
        out = self.sa.Ciphertext()
        self.ev.rotate_vector(ct, int(steps), self.galois, out)
        return out

    def decrypt(self, ct) -> np.ndarray:
        pt = self.sa.Plaintext()
        self.decryptor.decrypt(ct, pt)
        return np.asarray(self.encoder.decode_double(pt))

    def decrypt_complex(self, ct) -> np.ndarray:
        pt = self.sa.Plaintext()
        self.decryptor.decrypt(ct, pt)
        return np.asarray(self.encoder.decode_complex(pt))

    def size_bytes(self, ct) -> int:
        """Serialised size of one ciphertext (SEAL's compressed format)."""
        import os
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "ct")
            ct.save(path)
            return int(os.path.getsize(path))


def pack(images: np.ndarray, params: CkksParams) -> list[np.ndarray]:
    """Float images (B, 28, 28) → slot vectors, ``images_per_ciphertext`` blocks each."""
    per = params.images_per_ciphertext
    out = []
    for i in range(0, len(images), per):
        v = np.zeros(params.slots)
        for j, img in enumerate(images[i:i + per]):
            blk = np.zeros((ROW, ROW))
            blk[PAD:PAD + SIDE, PAD:PAD + SIDE] = img
            v[j * BLOCK:(j + 1) * BLOCK] = blk.reshape(-1)
        out.append(v)
    return out


class EncryptedModel3:
    """Model 3's weights as the evaluator needs them (the weights are the model's, not secret from it)."""

    def __init__(self, he: dict, params: CkksParams):
        self.w, self.b = np.asarray(he["conv_w"]), float(he["conv_b"])
        self.fc_w, self.fc_b = np.asarray(he["fc_w"]), np.asarray(he["fc_b"])
        self.k = self.w.shape[0]
        self.params = params
        per = params.images_per_ciphertext
        self.fc_vectors = []     # class j real, class j + 5 imaginary: one reduction gives two scores
        for j in range(5):
            v = np.zeros(params.slots, complex)
            for b in range(per):
                v[b * BLOCK + FEATURE_SLOTS] = self.fc_w[j] + 1j * self.fc_w[j + 5]
            self.fc_vectors.append(v.tolist())

    def noise_vector(self, noise: np.ndarray) -> np.ndarray:
        v = np.zeros(self.params.slots)
        for b, n in enumerate(noise):
            v[b * BLOCK + FEATURE_SLOTS] = n
        return v

    def evaluate(self, keys: Keys, ct, noise: np.ndarray | None):
        """One ciphertext of packed images (+ the features' channel noise, (n_images, 196)) → 5 score
        ciphertexts (classes j and j + 5 of the b-th image at slot b·1024 + SCORE_SLOT, real and imaginary)."""
        return self.scores(keys, self.features(keys, ct), noise)

    def features(self, keys: Keys, ct):
        """The encoder on the ciphertext: the 196 power-normalised features at FEATURE_SLOTS of each block."""
        ev, r = keys.ev, self.k // 2
        # separable in the rotations: Σ_dy rot(Σ_dx w[dy, dx]·rot(x, dx), 32·dy): 2(k − 1) rotations, not k² − 1
        shifted = {dx: ct if dx == 0 else keys.rotate(ct, dx) for dx in range(-r, r + 1)}
        acc = None
        for dy in range(-r, r + 1):
            row = None
            for dx in range(-r, r + 1):
                term = keys.sa.Ciphertext()
                src = shifted[dx]
                ev.multiply_plain(src, keys.encode(float(self.w[dy + r, dx + r]), src), term)
                if row is None:
                    row = term
                else:
                    ev.add_inplace(row, term)
            row = row if dy == 0 else keys.rotate(row, ROW * dy)
            if acc is None:
                acc = row
            else:
                ev.add_inplace(acc, row)
        ev.rescale_to_next_inplace(acc)
        bias = keys.encode(self.b, acc, acc.scale)
        ev.add_plain_inplace(acc, bias)
        ev.square_inplace(acc)
        ev.relinearize_inplace(acc, keys.relin)
        ev.rescale_to_next_inplace(acc)
        pooled = keys.sa.Ciphertext()
        ev.add(acc, keys.rotate(acc, 1), pooled)
        for s in (ROW, ROW + 1):
            ev.add_inplace(pooled, keys.rotate(acc, s))
        return pooled

    def scores(self, keys: Keys, features, noise: np.ndarray | None):
        """The channel (noise added to the feature slots) and the decoder on the ciphertext."""
        ev = keys.ev
        pooled = keys.sa.Ciphertext()
        if noise is not None:
            ev.add_plain(features, keys.encode(self.noise_vector(noise).tolist(), features, features.scale), pooled)
        else:
            pooled = features
        scores = []
        for j in range(5):
            z = keys.sa.Ciphertext()
            ev.multiply_plain(pooled, keys.encode(self.fc_vectors[j], pooled), z)
            ev.rescale_to_next_inplace(z)
            for s in SUM_STEPS:
                ev.add_inplace(z, keys.rotate(z, s))
            scores.append(z)
        return scores


def plain_logits(he: dict, x: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
    """The same computation in float64 numpy (the decrypted scores' reference)."""
    w, b = np.asarray(he["conv_w"]), float(he["conv_b"])
    k = w.shape[0]
    r = k // 2
    xp = np.pad(x, ((0, 0), (r, r), (r, r)))
    y = np.full(x.shape, b)
    for dy in range(k):
        for dx in range(k):
            y = y + w[dy, dx] * xp[:, dy:dy + SIDE, dx:dx + SIDE]
    y = y * y
    f = y.reshape(-1, 14, 2, 14, 2).sum((2, 4)).reshape(-1, 196)
    if noise is not None:
        f = f + noise
    return f @ np.asarray(he["fc_w"]).T + np.asarray(he["fc_b"])


@dataclass
class Model4Result:
    logits: list                 # per noise setting: (B, 10) decrypted scores (+ the public FC bias)
    reference: list              # per noise setting: float64 plaintext scores with the same noise
    key_updates: list = field(default_factory=list)     # seconds of each key generation
    encrypt_s: float = 0.0       # client: packing, encoding, encryption
    encoder_s: float = 0.0       # encoder on the ciphertext (convolution, square, pooling)
    decoder_s: list = field(default_factory=list)       # per noise setting: channel noise + decoder
    decrypt_s: list = field(default_factory=list)       # per noise setting: key holder's decryption
    ciphertexts: int = 0
    ciphertext_bytes: int = 0    # one input ciphertext, serialised
    images: int = 0
    cpu_s: float = 0.0           # process CPU time of one complete pass (encryption … first decryption)

    def summary(self) -> dict:
        n = max(1, self.images)
        per = (self.encrypt_s + self.encoder_s + (self.decoder_s[0] if self.decoder_s else 0)
               + (self.decrypt_s[0] if self.decrypt_s else 0)) / n
        err = max((float(np.max(np.abs(a - b))) for a, b in zip(self.logits, self.reference)), default=None)
        return {"images": self.images, "ciphertexts": self.ciphertexts,
                "input_ciphertext_bytes": self.ciphertext_bytes or None,
                "key_updates": len(self.key_updates),
                "keygen_s_per_update": float(np.mean(self.key_updates)) if self.key_updates else None,
                "encrypt_s_per_image": self.encrypt_s / n, "encoder_s_per_image": self.encoder_s / n,
                "decoder_s_per_image": float(np.mean(self.decoder_s)) / n if self.decoder_s else None,
                "decrypt_s_per_image": float(np.mean(self.decrypt_s)) / n if self.decrypt_s else None,
                "seconds_per_image": per, "cpu_s_per_image": self.cpu_s / n, "max_abs_error": err}


def run_model4(he: dict, x: np.ndarray, noises, params: CkksParams = CkksParams(), *,
               key_every: int | None = None, measure_size: bool = False, keys: Keys | None = None) -> Model4Result:
    """Model 4 on float images ``x`` (B, 28, 28) in [0, 1], for each of ``noises`` (a list of per-image feature
    noise arrays (B, 196), or None entries for no channel).

    Keys are generated at the start and every ``key_every`` images (None: once). Each group of images is
    encrypted and encoded once; the channel and the decoder then run on the encrypted features once per noise
    setting (the encoder is deterministic), and the key holder decrypts the scores. ``seconds_per_image`` of
    the summary is one complete pass: encryption + encoder + one decoder + one decryption.
    """
    model = EncryptedModel3(he, params)
    per = params.images_per_ciphertext
    noises = list(noises)
    group = len(x) if not key_every else int(key_every)
    res = Model4Result([np.zeros((len(x), 10)) for _ in noises], [plain_logits(he, x, nz) for nz in noises],
                       decoder_s=[0.0] * len(noises), decrypt_s=[0.0] * len(noises), images=len(x))
    for g0 in range(0, len(x), max(1, group)):
        if keys is None or key_every:
            keys = Keys(params)
            res.key_updates.append(keys.seconds)
        xs = x[g0:g0 + group]
        for c0 in range(0, len(xs), per):
            n = min(per, len(xs) - c0)
            lo = g0 + c0
            c_start = time.process_time()
            t0 = time.perf_counter()
            pt = keys.encode(pack(xs[c0:c0 + n], params)[0].tolist())
            ct = keys.sa.Ciphertext()
            keys.encryptor.encrypt(pt, ct)
            t1 = time.perf_counter()
            feats = model.features(keys, ct)
            res.encrypt_s += t1 - t0
            res.encoder_s += time.perf_counter() - t1
            for k, nz in enumerate(noises):
                t2 = time.perf_counter()
                scores = model.scores(keys, feats, None if nz is None else nz[lo:lo + n])
                t3 = time.perf_counter()
                dec = np.stack([keys.decrypt_complex(s)[np.arange(n) * BLOCK + SCORE_SLOT] for s in scores], 1)
                res.logits[k][lo:lo + n] = np.concatenate([dec.real, dec.imag], 1) + model.fc_b
                res.decoder_s[k] += t3 - t2
                res.decrypt_s[k] += time.perf_counter() - t3
                if k == 0:
                    res.cpu_s += time.process_time() - c_start
            res.ciphertexts += 1
            if measure_size and res.ciphertexts == 1:
                res.ciphertext_bytes = keys.size_bytes(ct)
    return res
