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
"""
from __future__ import annotations

import zlib
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

    @torch.no_grad()
    def encode(self, image_u8: np.ndarray) -> tuple[np.ndarray, tuple]:
        """One image (H, W, C) uint8 → its plaintext latent z̄ ∈ Z_p (int64) and latent shape."""
        x = to_tensor(image_u8[None], next(self.model.parameters()).device)
        _, plaintext, shape = self.model.encode(x)
        return plaintext[0].cpu().numpy().astype(np.int64), tuple(shape)

    def frames_for_image(self, image_u8: np.ndarray, index: int) -> tuple[list[np.ndarray], SentImage]:
        """One image (H, W, C) uint8 → its radio frames (complex64 symbol arrays) and a record."""
        h, w = image_u8.shape[:2]
        z, shape = self.encode(image_u8)
        if self.counters is not None:
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
