"""Alice: images → DeepJSCEC plaintext → encryption → 4096-QAM → radio frames.

One cipher frame is ``keys.k`` plaintext symbols under one nonce, cut by
:func:`crypto.framing.to_cipher_frames` (the training path, ``models.secure_channel``, uses the same
cut). A radio frame carries up to ``subframes`` cipher frames of one image: its header's ``counter``
is the nonce of the first, the others follow (counter + 1, …), and the running counter advances by
the number of cipher frames, so no nonce is ever reused (the encryptor refuses reuse anyway).
``chunk_index``/``chunk_count`` place the radio frame within its image; ``height``/``width`` let a
receiver rebuild the latent shape. In ``lwe-pk`` mode the frame's d vectors (n2 values per cipher
frame) travel in the header-protected d block.

Authentication (``lwe`` and ``mask``, where Alice and Bob share a secret; :mod:`crypto.frame_auth`): each
radio frame's payload gets its keyed check symbols (replacing ciphertext symbols at keyed positions) and the
frame a tag block with the MAC of its header (version 2). ``lwe-pk`` frames stay version 1: no shared secret.

A run's frames (:class:`FrameSource`) are made one image at a time while the link sends them: planned from the
image sizes before any is encoded, under counters reserved for the whole run up front, so the sender's memory
does not grow with the run.
"""
from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from crypto.cipher import CipherKeys, Encryptor
from crypto.framing import frames_needed, to_cipher_frames
from models.codec import DeepJscec
from models.images import to_tensor
from radio.frame import DEFAULT_FORMAT, MAX_D_LEN, FrameHeader, build_frame
from radio.zp_qam import modulate

#: Cipher frames per radio frame (2048 payload symbols with k = 512).
DEFAULT_SUBFRAMES = 4


def compatible_modes(model_mode: str, link_mode: str) -> bool:
    """A model trained in ``lwe`` mode also serves ``lwe-pk``: Bob's plaintext noise is the same."""
    return model_mode == link_mode or (model_mode, link_mode) == ("lwe", "lwe-pk")


def model_id(name: str) -> int:
    """The 16-bit model id a header carries: CRC-32 of the model's name, folded."""
    return zlib.crc32(name.encode()) & 0xFFFF


@dataclass
class SentImage:
    index: int
    height: int
    width: int
    k: int                 # plaintext symbols of the image (before padding to whole cipher frames)
    latent_shape: tuple
    frames: int            # radio frames
    first_counter: int
    plaintext: np.ndarray | None = None   # the image's latent in Z_p (int16): Eve's game (link.apps.eve_game)


def latent_shape_for(model: DeepJscec, height: int, width: int) -> tuple[int, int, int]:
    """(C, h, w) of the latent of an image of this size (sides padded to the downsampling factor)."""
    f = model.config.downsampling
    return (model.config.latent_ch, -(-height // f), -(-width // f))


class Alice:
    """Encodes, encrypts, modulates and frames images.

    ``keys``: ``CipherKeys`` or, for ``lwe-pk``, a ``PublicKey`` — in ``lwe-pk`` mode Alice holds only the
    public key either way, and her error randomness is fresh from the operating system for this Alice
    (``crypto.cipher.Encryptor``). Frame counters come from ``counters`` (a
    :class:`crypto.nonce_state.CounterState`: never reused under the key, across runs), or, in tests,
    run on from ``first_counter``.
    """

    def __init__(self, model: DeepJscec, keys, model_name: str, first_counter: int = 0,
                 subframes: int = DEFAULT_SUBFRAMES, fmt=DEFAULT_FORMAT, counters=None, authenticate: bool = True):
        public_only = isinstance(keys, CipherKeys) and keys.mode == "lwe-pk"
        self.encryptor = Encryptor(keys.public() if public_only else keys)
        self.mode, self.k, self.key_id = self.encryptor.mode, self.encryptor.k, self.encryptor.key_id
        if not compatible_modes(model.config.cipher_mode, self.mode):
            raise ValueError(f"key mode {self.mode} does not match the model's cipher mode {model.config.cipher_mode}")
        self.model = model
        self.model_id = model_id(model_name)
        self.counter = first_counter
        self.counters = counters
        # In lwe-pk each cipher frame adds n2 d values to the header-protected d block, which holds at most
        # MAX_D_LEN: fewer cipher frames per radio frame for the larger presets (lp-256: 3, lp-512: 1).
        per_d = self.encryptor.params.n2 if self.mode == "lwe-pk" else 0
        self.subframes = max(1, min(subframes, MAX_D_LEN // per_d)) if per_d else subframes
        self.fmt = fmt
        # Tests of a receiver's handling of unauthenticated (version-1) frames pass authenticate=False.
        self.auth = self.encryptor.frame_auth() if authenticate else None
        self._sizes: dict[tuple[int, int], int] = {}      # image size -> plaintext symbols (plaintext_size)

    @torch.no_grad()
    def encode(self, image_u8: np.ndarray) -> tuple[np.ndarray, tuple]:
        """One image (H, W, C) uint8 → its plaintext latent z̄ ∈ Z_p (int64) and latent shape."""
        x = to_tensor(image_u8[None], next(self.model.parameters()).device)
        _, plaintext, shape = self.model.encode(x)
        return plaintext[0].cpu().numpy().astype(np.int64), tuple(shape)

    def plaintext_size(self, height: int, width: int) -> int:
        """Plaintext symbols of an image of this size: the encoder's output for a blank image of it (once
        per size), so that a run knows its frames before it encodes any image."""
        if (height, width) not in self._sizes:
            z, _ = self.encode(np.zeros((height, width, self.model.config.image_channels), np.uint8))
            self._sizes[(height, width)] = int(z.size)
        return self._sizes[(height, width)]

    def plan(self, height: int, width: int) -> tuple[int, list[int]]:
        """(cipher frames, the length in symbols of each radio frame) of an image of this size."""
        n_cipher = frames_needed(self.plaintext_size(height, width), self.k)
        per_d = self.encryptor.params.n2 if self.mode == "lwe-pk" else 0
        lengths = []
        for start in range(0, n_cipher, self.subframes):
            n = min(self.subframes, n_cipher - start)
            lengths.append(self.fmt.frame_len(n * self.k, n * per_d, self.auth is not None))
        return n_cipher, lengths

    def frames_for_image(self, image_u8: np.ndarray, index: int,
                         first_counter: int | None = None) -> tuple[list[np.ndarray], SentImage]:
        """One image (H, W, C) uint8 → its radio frames (complex64 symbol arrays) and a record."""
        z, shape = self.encode(image_u8)
        return self.frames_for_plaintext(z, shape, image_u8.shape[:2], index, first_counter)

    def frames_for_plaintext(self, z: np.ndarray, shape: tuple, size: tuple, index: int,
                             first_counter: int | None = None) -> tuple[list[np.ndarray], SentImage]:
        """An image's plaintext ``z`` (latent ``shape``, image ``size`` (H, W)) → its radio frames and a record.

        Counters: from ``first_counter`` (reserved by the caller), else reserved now from ``counters``, else
        the running counter."""
        h, w = size
        if first_counter is not None:
            self.counter = int(first_counter)
        elif self.counters is not None:
            self.counter = self.counters.reserve(frames_needed(z.size, self.k))
        cipher_frames, nonces = to_cipher_frames(z, self.k, self.counter)
        n_cipher = len(nonces)
        ct = self.encryptor.encrypt_batch(cipher_frames, nonces)
        symbols = modulate(ct.c).reshape(n_cipher, self.k)
        n_radio = -(-n_cipher // self.subframes)
        frames = []
        for j in range(n_radio):
            sl = slice(j * self.subframes, min((j + 1) * self.subframes, n_cipher))
            header = FrameHeader(counter=int(nonces[sl.start]), mode=self.mode, key_id=self.key_id,
                                 model_id=self.model_id, constellation="zp4096", image_index=index,
                                 chunk_index=j, chunk_count=n_radio, height=h, width=w)
            d = None if ct.d is None else ct.d[sl].ravel()
            payload = symbols[sl].ravel()
            if self.auth is not None:
                pos, values = self.auth.checks(header.counter, payload.size)
                payload = payload.copy()
                payload[pos] = modulate(values)
            frames.append(build_frame(header, payload, d=d, fmt=self.fmt, auth=self.auth))
        sent = SentImage(index=index, height=h, width=w, k=z.size, latent_shape=tuple(shape), frames=n_radio,
                         first_counter=self.counter, plaintext=z.astype(np.int16))
        self.counter += n_cipher
        return frames, sent


class FrameSource:
    """A run's radio frames, made image by image while the link sends them (bounded memory).

    Before anything is sent, :meth:`__init__` plans every image's frames from its size alone
    (:meth:`Alice.plan`: the number of frames and their lengths, so the stream's length, the link's stop rule and
    a recording's ``frames_sent`` are known) and reserves the run's frame counters from the key's counter state
    in one block (persisted before this returns: a crash skips them, never reuses them). :meth:`frames` then
    encodes, encrypts and frames one image at a time as the sender asks for symbols; nothing of an image is kept
    once its frames are handed on, unless ``keep_frames`` (tests) asks for ``frames_kept``.

    With Eve's game (``game``: a :class:`link.apps.eve_game.GameWriter`), an image's pair is written before its
    frames are handed on; the partner's latent (the next image of its size, or the first for the last) is
    computed once and kept only until both its uses are done (``plaintexts_held``, at most one per image size
    and one ahead).
    """

    def __init__(self, alice: Alice, images: list[np.ndarray], *, game=None, keep_frames: bool = False):
        self.alice = alice
        self.images = images
        self.game = game
        self.plans = {}
        lengths, n_cipher = [], []
        for im in images:
            size = tuple(im.shape[:2])
            if size not in self.plans:
                self.plans[size] = alice.plan(*size)
            n_cipher.append(self.plans[size][0])
            lengths.append(self.plans[size][1])
        self.frames_total = sum(len(f) for f in lengths)
        self.symbols_total = sum(sum(f) for f in lengths)
        total = sum(n_cipher)
        if alice.counters is not None:
            first = alice.counters.reserve(total) if total else alice.counter
        else:
            first = alice.counter
        self.first_counters = np.cumsum([first] + n_cipher[:-1], dtype=np.int64) if images else np.zeros(0, np.int64)
        self.frames_kept: list[np.ndarray] | None = [] if keep_frames else None
        self.images_done = 0       # images whose frames were all handed on
        self.images_encoded = 0    # encoder passes over the run's images (a partner's counts when made)
        self.frames_made = 0
        self._latents: dict[int, tuple[np.ndarray, tuple]] = {}
        self.plaintexts_held_peak = 0

    def _latent(self, i: int, uses: dict) -> tuple[np.ndarray, tuple]:
        if i not in self._latents:
            self._latents[i] = self.alice.encode(self.images[i])
            self.images_encoded += 1
            self.plaintexts_held_peak = max(self.plaintexts_held_peak, len(self._latents))
        out = self._latents[i]
        uses[i] -= 1
        if uses[i] == 0:
            del self._latents[i]
        return out

    def frames(self) -> Iterator[np.ndarray]:
        """The run's frames in order (single pass)."""
        from link.apps.eve_game import partners

        partner = partners([im.shape[:2] for im in self.images]) if self.game is not None else None
        uses = {i: 1 for i in range(len(self.images))}
        if partner is not None:
            for j in partner:
                if j is not None:
                    uses[j] += 1
        for i, im in enumerate(self.images):
            z, shape = self._latent(i, uses)
            if partner is not None:
                if partner[i] is None:
                    other = self.alice.encode(np.ascontiguousarray(im[:, ::-1]))[0]
                else:
                    other = self._latent(partner[i], uses)[0]
                self.game.add(i, z, other, partner[i])
            frames, _ = self.alice.frames_for_plaintext(z, shape, im.shape[:2], i, int(self.first_counters[i]))
            expected = self.plans[tuple(im.shape[:2])][1]
            if [f.size for f in frames] != expected:
                raise RuntimeError(f"image {i}: frames of {[f.size for f in frames]} symbols, planned {expected}")
            del z
            for f in frames:
                self.frames_made += 1
                if self.frames_kept is not None:
                    self.frames_kept.append(f)
                yield f
            self.images_done += 1
        if self.game is not None:
            self.game.close()

    def stream(self):
        """The frames as a :class:`link.sender.SymbolStream` with idle lead and tail (:func:`link.sender.frame_stream`'s
        symbols, made as they are sent)."""
        from link.sender import frames_as_stream

        return frames_as_stream(self.frames(), self.symbols_total)
