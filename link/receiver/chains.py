"""Bob's and Eve's receive chains: synchronised frames (over ZMQ) → images.

* **Bob** (holds the key): soft demap (eqs. 14–15, σ_l from the model card, noise variance from the
  frame's pilots) → decrypt each cipher frame under its nonce (eq. 27; in ``lwe-pk`` with the d block,
  which must pass its CRC) → soft dequantise / circular features → decoder g_φ.
* **Eve** (no key): soft demap → her chosen-plaintext-attack decoder ḡ_ψ on the soft ciphertext.

Frames reach a chain only after their header passed its CRC; a chain also drops frames that are not
for it (another key id, model or mode) and counts every drop by reason.

**Authentication** (``lwe``, ``mask``: :mod:`crypto.frame_auth`). Bob verifies, before he decrypts, that
a frame carries a tag block (``no tag``: a version-1 frame, accepted only when replaying a recording made
before frames were authenticated, ``auth="legacy"``) that survived the channel (``tag block CRC``), that
its MAC tag over header and d block is right (``mac``), that its counters are fresh (``replay``: Bob's
:class:`crypto.frame_auth.ReplayWindow`), and that its keyed check symbols arrived as sent within the
noise (``payload check``); a frame failing any is counted under that reason and never decoded. The
check symbols' latent values are erased. Eve has no key: she verifies nothing and decodes as before.
In ``lwe-pk`` nothing can be authenticated (no shared secret); Bob decodes what passes the CRCs.

**Eve's distinguisher** (``game``: image index → the two candidate latents of that image, one of them
sent, in an order Eve does not know): per frame she also guesses which candidate was sent with each
per-symbol statistic of the IND-CPA harness (:func:`crypto.ind_cpa.guess_pair`) on her soft
ciphertext; the guesses go into her per-frame records (``guess``) and the runner scores them. Latent symbols of frames that
never arrived are erased (decoder features 0) rather than guessed. :func:`serve` is the process main
loop used by ``jscec receive``.

**Bounded memory.** A chain keeps only what is still open: the received values of images whose
frames may still come. Every frame's record goes to a JSON-lines spill file as it arrives; an image
is *closed* once all its chunks came or a frame of a later image arrived (frames come in the order
they were sent), and closed images are decoded ``batch_size`` at a time, in index order per image
size — the very batches :meth:`ReceiveChain.decode_all` formed when it decoded everything at the end —
and written to a spill file with a few numbers per image (index, frame counts, erasures, scores).
Spill files are anonymous temporary files (``spill_dir``, default the system's temporary folder):
they vanish with the process, however it ends. The results (:func:`write_results`) are written by
streaming from them, in the same formats as before.
"""
from __future__ import annotations

import bisect
import json
import os
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from link.apps.alice import latent_shape_for, model_id
from crypto.cipher import CipherKeys, Decryptor
from crypto.frame_auth import ReplayWindow, payload_check
from crypto.ind_cpa import guess_pair
from models.evaluate import quality
from models.images import to_tensor
from radio.sync import DroppedFrame, SyncedFrame
from radio.zp_qam import modulate, soft_demap

#: Received payload symbols kept for the constellation plot.
CONSTELLATION_KEEP = 20000
#: Images decoded (and scored) per call of the decoder: CIFAR-size images decode ~1.3× faster
#: in batches than one by one, and score ~6× faster (scratch measurement, one core).
DECODE_BATCH = 64
#: Drop reason of a frame of an image that was already decoded (frames out of order or repeated).
LATE = "late (image already decoded)"
#: What Bob's summary names as the frames' authentication (crypto.frame_auth).
AUTH_SCHEME = "HMAC-SHA256/64 tag over header and d block, keyed check symbols (8 or 16 a frame), replay window"
#: Drop reasons of frames that fail authentication (Bob, lwe and mask).
NO_TAG, TAG_CRC, MAC, REPLAY, PAYLOAD_CHECK = "no tag", "tag block CRC", "mac", "replay", "payload check"
#: Score keys in the order :func:`models.evaluate.quality` returns them.
_SCORES = ("psnr", "ssim", "ms_ssim")


@dataclass
class _ImageBuffer:
    height: int
    width: int
    chunk_count: int
    values: dict = field(default_factory=dict)   # chunk_index → received values (float64)


class _SpillFile:
    """An append-only anonymous temporary file (unlinked at once: it disappears with the process)."""

    def __init__(self, directory=None):
        self._f = tempfile.TemporaryFile(dir=directory)
        self.size = 0

    def append(self, data: bytes) -> int:
        offset = self.size
        self._f.write(data)
        self.size += len(data)
        return offset

    def read(self, offset: int, n: int) -> bytes:
        self._f.flush()
        return os.pread(self._f.fileno(), n, offset)

    def blocks(self, block: int = 1 << 20):
        self._f.flush()
        for offset in range(0, self.size, block):
            yield os.pread(self._f.fileno(), min(block, self.size - offset), offset)


class FrameRecords(Sequence):
    """The chain's per-frame records (dicts, in arrival order), kept in a JSON-lines spill file."""

    def __init__(self, directory=None):
        self._file = _SpillFile(directory)
        self._offsets = array("q")

    def append(self, record: dict) -> None:
        self._offsets.append(self._file.append(json.dumps(record).encode() + b"\n"))

    def __len__(self) -> int:
        return len(self._offsets)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = range(len(self))[i]
        end = self._offsets[i + 1] if i + 1 < len(self) else self._file.size
        return json.loads(self._file.read(self._offsets[i], end - self._offsets[i]))

    def __iter__(self):
        rest = b""
        for block in self._file.blocks():
            lines = (rest + block).split(b"\n")
            rest = lines.pop()
            for line in lines:
                yield json.loads(line)


class DecodedRows(Sequence):
    """What :meth:`ReceiveChain.decode_all` returns: one row per image in index order — ``index``,
    ``image`` (uint8 HWC, or None), ``frames_ok``, ``frames_expected``, ``erased_fraction`` and,
    with a reference, ``psnr``, ``ssim`` (``ms_ssim`` for images ≥ 64×64). Rows are built when used;
    images are read from the chain's spill file."""

    def __init__(self, chain: "ReceiveChain", indices: np.ndarray, positions: np.ndarray):
        self._chain = chain
        self._indices = indices        # image index per row, ascending
        self._positions = positions    # the chain's decode position of each row's image, -1: never seen

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = range(len(self))[i]
        return self._chain._row(int(self._indices[i]), int(self._positions[i]), with_image=True)

    def __iter__(self):
        return self.rows(with_image=True)

    def rows(self, with_image: bool = True):
        for index, pos in zip(self._indices, self._positions):
            yield self._chain._row(int(index), int(pos), with_image=with_image)


class _RowsWithoutImages(Sequence):
    """The ``images`` list of a summary: :class:`DecodedRows` without the images (never read)."""

    def __init__(self, rows: DecodedRows):
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i):
        row = self._rows[i]
        return [_without_image(r) for r in row] if isinstance(i, slice) else _without_image(row)

    def __iter__(self):
        return self._rows.rows(with_image=False)


def _without_image(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "image"}


class ReceiveChain:
    """What Bob and Eve share: frame bookkeeping, per-frame records, image assembly, metrics.

    ``references`` (index → uint8 HWC image; any mapping, e.g. :func:`open_references`) lets each batch
    be scored as it is decoded; without them, :meth:`decode_all` scores at the end (from the spill).
    """

    role = "receiver"
    #: A live view's publisher (:func:`link.live.publisher`): each frame handled and each image decoded.
    live = None

    def __init__(self, model_name: str, latent_model, mode: str, sigma_l: float, k: int, *,
                 references: Mapping | None = None, spill_dir=None, device=None, batch_size: int = DECODE_BATCH):
        self.model_id = model_id(model_name)
        self.latent_model = latent_model     # the DeepJscec whose config fixes latent shapes
        self.mode = mode
        self.sigma_l = sigma_l
        self.k = k
        self.references = references
        self.batch_size = batch_size
        self._device = device
        self.images: dict[int, _ImageBuffer] = {}     # images still open (not decoded)
        self.records = FrameRecords(spill_dir)
        self.drops = Counter()
        self.constellation: list[np.ndarray] = []
        self._kept = 0
        self._frames_ok = 0
        self._mers = array("d")
        self._watermark = -1                           # highest image index a frame was accepted for
        self._open: dict[tuple, list[int]] = {}        # (latent shape, height, width) → open indices, ascending
        self._pixels = _SpillFile(spill_dir)           # decoded images, uint8 HWC, back to back
        # One entry per decoded image, in decode order (its "position"):
        self._index, self._ok, self._expected = array("q"), array("i"), array("i")
        self._erased, self._offset, self._shape = array("d"), array("q"), array("i")   # shape: 3 per image
        self._batch = array("i")                        # position → batch number
        self._scored = array("b")                       # position → 1 if scored against a reference
        self._batches: list[list] = []                  # batch → [first position, count, score keys or None]
        self._score_values = {key: array("d") for key in _SCORES}
        self._rows: DecodedRows | None = None

    @property
    def device(self):
        if self._device is None:
            params = next(self._decoder_module().parameters(), None)
            self._device = params.device if params is not None else torch.device("cpu")
        return self._device

    def _decoder_module(self):
        raise NotImplementedError

    # -- frames
    def handle(self, item) -> None:
        if isinstance(item, DroppedFrame):
            self.drops["header CRC" if item.reason.startswith("header") else item.reason] += 1
            self.records.append({"ok": False, "reason": item.reason, "snr_db": _num(item.snr_db)})
            if self.live is not None:
                self.live.frame(self.role, {"ok": False, "reason": item.reason, "snr_db": _num(item.snr_db)})
            return
        reason = self._reject_reason(item)
        if reason is None and self._rows is None and self._is_decoded(item.header.image_index):
            reason = LATE
        if reason is None:
            try:
                values = self._values(item)
            except ValueError as exc:
                values, reason = None, str(exc)
        rec = {"counter": item.counter, "image": item.header.image_index, "chunk": item.header.chunk_index,
               "mer_db": _num(item.mer_db), "snr_db": _num(item.snr_db), "cfo": _num(item.cfo),
               "sro_ppm": _num(item.sro_ppm), "timing": _num(item.timing), "ok": reason is None}
        rec.update(self._record_extra(item, values if reason is None else None))
        if reason is not None:
            self.drops[reason] += 1
            rec["reason"] = reason
        else:
            self._frames_ok += 1
            if rec["mer_db"] is not None:
                self._mers.append(rec["mer_db"])
            if self._kept < CONSTELLATION_KEEP:
                self.constellation.append(item.payload[: CONSTELLATION_KEEP - self._kept])
                self._kept += self.constellation[-1].size
        self.records.append(rec)
        if self.live is not None:
            self.live.frame(self.role, rec, item.payload if reason is None else None)
        if reason is None:
            self._add(item.header, values)

    def _is_decoded(self, index: int) -> bool:
        """Whether image ``index`` was decoded already (only possible for frames out of order)."""
        if index > self._watermark or index in self.images or not len(self._index):
            return False
        return bool((np.frombuffer(self._index, np.int64) == index).any())

    def _add(self, hdr, values: np.ndarray) -> None:
        index = hdr.image_index
        buf = self.images.get(index)
        if buf is None:
            buf = self.images[index] = _ImageBuffer(hdr.height, hdr.width, hdr.chunk_count)
            bisect.insort(self._open.setdefault(self._group(buf), []), index)
        buf.values[hdr.chunk_index] = values
        if self._rows is not None:      # after decode_all: kept for assemble(), never decoded
            return
        if index > self._watermark:     # every image before this one is closed now
            self._watermark = index
            for group in list(self._open):
                self._decode_closed(group)
        else:                           # complete now, or closed already (a frame out of order)
            self._decode_closed(self._group(buf))

    def _group(self, buf: _ImageBuffer) -> tuple:
        return latent_shape_for(self.latent_model, buf.height, buf.width), buf.height, buf.width

    def _decode_closed(self, group: tuple) -> None:
        """Decode whole batches of the group's closed images (index order, as decode_all always did)."""
        indices = self._open[group]
        while len(indices) >= self.batch_size:
            closed = bisect.bisect_left(indices, self._watermark)
            if closed < len(indices) and indices[closed] == self._watermark:
                buf = self.images[self._watermark]
                closed += len(buf.values) >= buf.chunk_count
            if closed < self.batch_size:
                return
            self._decode_batch(group, indices[:self.batch_size], self.device, self.references)
            del indices[:self.batch_size]

    def _reject_reason(self, item: SyncedFrame) -> str | None:
        h = item.header
        if h.model_id != self.model_id:
            return "other model"
        if h.mode != self.mode:
            return "other cipher mode"
        if h.constellation != "zp4096":
            return "other constellation"
        if h.payload_len == 0 or h.payload_len % self.k:
            return "payload not whole cipher frames"
        return None

    def _values(self, item: SyncedFrame) -> np.ndarray:
        raise NotImplementedError

    def _record_extra(self, item: SyncedFrame, values) -> dict:
        """More fields of a frame's record (``values``: its received values, None when it was dropped)."""
        return {}

    def stream_ended(self) -> None:
        """The stream ended (no more frames will come): persist what outlives the run."""

    # -- images
    def assemble(self, index: int) -> tuple[np.ndarray, np.ndarray, tuple] | None:
        """(received values (k,), erased mask (k,), latent shape) of an open image, or None if it was
        never seen (or is decoded already)."""
        buf = self.images.get(index)
        if buf is None:
            return None
        shape = latent_shape_for(self.latent_model, buf.height, buf.width)
        k_img = int(np.prod(shape))
        per = max(v.size for v in buf.values.values())
        values = np.zeros(buf.chunk_count * per)
        erased = np.ones(values.size, dtype=bool)
        for j, v in buf.values.items():
            lost = np.isnan(v)    # symbols erased inside a frame that arrived (Bob: the check symbols)
            values[j * per: j * per + v.size] = np.where(lost, 0.0, v)
            erased[j * per: j * per + v.size] = lost
        return values[:k_img], erased[:k_img], shape

    def _decode_batch(self, group: tuple, indices: list[int], device, references) -> None:
        """Decode open images of one size, write them to the spill, score them if references are known."""
        shape, height, width = group
        parts = [self.assemble(index) for index in indices]
        values = torch.from_numpy(np.stack([p[0] for p in parts])).to(device)
        erased = torch.from_numpy(np.stack([p[1] for p in parts])).to(device)
        with torch.no_grad():
            imgs = self._outputs(self._decode(values, erased, shape, (height, width)))
        first = len(self._index)
        self._batches.append([first, len(indices), None])
        for index, (_, mask, _), img in zip(indices, parts, imgs):
            buf = self.images.pop(index)
            self._index.append(index)
            self._ok.append(len(buf.values))
            self._expected.append(buf.chunk_count)
            self._erased.append(float(mask.mean()))
            self._keep(img)
            self._batch.append(len(self._batches) - 1)
            self._scored.append(0)
            for key in _SCORES:
                self._score_values[key].append(float("nan"))
        if self.live is not None:
            self._show(indices, imgs)
        if references is not None:
            self._score_batch(len(self._batches) - 1, imgs, references, device)

    # What the decoder's output becomes (a task's chain, link.receiver.classify, keeps labels instead).
    def _outputs(self, x_hat: torch.Tensor) -> np.ndarray:
        """The decoder's batch → what is kept per image: uint8 HWC images."""
        return (x_hat.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)

    def _keep(self, img: np.ndarray) -> None:
        """Keep one decoded image (in decode order) in the spill file."""
        self._offset.append(self._pixels.append(np.ascontiguousarray(img).tobytes()))
        self._shape.extend(img.shape)

    def _show(self, indices: list[int], imgs: np.ndarray) -> None:
        """Send a decoded batch to the live view."""
        self.live.images(self.role, indices, imgs)

    def _stored(self, first: int, count: int) -> np.ndarray:
        """The outputs kept at positions ``first`` … ``first + count - 1``, as :meth:`_score_batch` takes them."""
        # In the decoder's memory layout (channels first, seen as HWC): the scores come
        # out bit for bit as when a batch is scored straight from the decoder.
        imgs = np.stack([self._image(p) for p in range(first, first + count)])
        return np.ascontiguousarray(imgs.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1)

    def _score_batch(self, batch: int, imgs: np.ndarray, references: Mapping, device) -> None:
        first, count, _ = self._batches[batch]
        indices = self._index[first:first + count]
        scored = [j for j, index in enumerate(indices) if index in references]
        keys = ()
        if scored:
            q = quality(to_tensor(imgs[scored], device),
                        to_tensor(np.stack([references[indices[j]] for j in scored]), device))
            keys = tuple(q)
            for key in keys:
                if key not in self._score_values:
                    raise ValueError(f"unknown score {key}")
            for n, j in enumerate(scored):
                self._scored[first + j] = 1
                for key, v in q.items():
                    self._score_values[key][first + j] = float(v[n])
            if self.live is not None:
                self.live.scores(self.role, [indices[j] for j in scored], q)
        self._batches[batch][2] = keys

    def _image(self, position: int) -> np.ndarray:
        h, w, c = self._shape[3 * position: 3 * position + 3]
        data = self._pixels.read(self._offset[position], h * w * c)
        return np.frombuffer(data, np.uint8).reshape(h, w, c).copy()

    def _row(self, index: int, position: int, with_image: bool) -> dict:
        if position < 0:
            row = {"index": index, "image": None, "frames_ok": 0, "frames_expected": None}
        else:
            row = {"index": index, "image": self._image(position) if with_image else None,
                   "frames_ok": int(self._ok[position]), "frames_expected": int(self._expected[position]),
                   "erased_fraction": float(self._erased[position])}
            if self._scored[position]:
                keys = self._batches[self._batch[position]][2]
                row.update({key: self._score_values[key][position] for key in keys})
        if not with_image:
            del row["image"]
        return row

    def decode_all(self, references: Mapping | None = None, device=None,
                   batch_size: int | None = None) -> DecodedRows:
        """Decode the images still open and score what is not scored yet; rows of every image seen
        and every reference, in index order (PSNR/SSIM with a reference, MS-SSIM ≥ 64×64).

        Images of one size are decoded ``batch_size`` (default: the chain's) at a time, in index order
        (the batches depend only on which images arrived, so a replay decodes exactly as the live run
        did). Ends the chain's decoding: frames handled afterwards are recorded but never decoded; a
        second call returns the same rows.
        """
        if self._rows is not None:
            return self._rows
        device = self.device if device is None else device
        references = references if references is not None else self.references
        size = batch_size or self.batch_size
        for group in sorted(self._open, key=lambda g: self._open[g][0] if self._open[g] else -1):
            indices = self._open[group]
            for i in range(0, len(indices), size):
                self._decode_batch(group, indices[i:i + size], device, references)
            indices.clear()
        if references is not None:      # batches decoded before the references were known
            for batch, (first, count, done) in enumerate(self._batches):
                if done is None:
                    self._score_batch(batch, self._stored(first, count), references, device)
        seen = np.frombuffer(self._index, np.int64)
        extra = np.setdiff1d(np.fromiter((int(i) for i in (references or ())), np.int64), seen)
        indices = np.concatenate([seen, extra])
        positions = np.concatenate([np.arange(seen.size), np.full(extra.size, -1)])
        order = np.argsort(indices, kind="stable")
        self._rows = DecodedRows(self, indices[order], positions[order])
        return self._rows

    def _decode(self, values, erased, shape, size):
        raise NotImplementedError

    def summary(self, rows, frames_sent: int | None) -> dict:
        """The chain's JSON (``<role>.json``). Its ``images`` and ``per_frame`` lists are read from the
        spill files when used (:func:`write_results` streams them; ``json.dumps`` needs lists)."""
        scores = {key: array("d") for key in _SCORES}
        n_scored = 0
        all_ms = True
        rows_plain = rows.rows(with_image=False) if isinstance(rows, DecodedRows) else rows
        for r in rows_plain:
            if "psnr" in r:
                n_scored += 1
                scores["psnr"].append(r["psnr"])
                scores["ssim"].append(r["ssim"])
                if "ms_ssim" in r:
                    scores["ms_ssim"].append(r["ms_ssim"])
                else:
                    all_ms = False
        images = _RowsWithoutImages(rows) if isinstance(rows, DecodedRows) else [_without_image(r) for r in rows]
        res = {"role": self.role, "frames_sent": frames_sent, "frames_received": len(self.records),
               "frames_ok": self._frames_ok, "frames_dropped": dict(self.drops),
               "mer_db": float(np.mean(self._mers)) if len(self._mers) else None,
               "psnr": float(np.mean(scores["psnr"])) if n_scored else None,
               "ssim": float(np.mean(scores["ssim"])) if n_scored else None,
               "images": images,
               "per_frame": self.records}
        if n_scored and all_ms:
            res["ms_ssim"] = float(np.mean(scores["ms_ssim"]))
        return res


class BobChain(ReceiveChain):
    """Bob: verifies (lwe, mask), decrypts and decodes.

    ``auth``: ``"required"`` (every link that sends: a frame without a tag block is dropped as ``no tag``)
    or ``"legacy"`` (replaying a recording made before frames carried tags: such frames are decoded and
    counted as unauthenticated; frames with a tag block are verified all the same). ``window``: the replay
    window (:class:`crypto.frame_auth.ReplayWindow`; default one in this process only).
    """

    role = "bob"

    def __init__(self, model, keys: CipherKeys, model_name: str, *, auth: str = "required",
                 window: ReplayWindow | None = None, **kwargs):
        super().__init__(model_name, model, keys.mode, model.config.sigma_l, keys.k, **kwargs)
        if auth not in ("required", "legacy"):
            raise ValueError(f"auth must be 'required' or 'legacy', got {auth!r}")
        self.model = model
        self.keys = keys
        self.decryptor = Decryptor(keys)
        self.auth = keys.frame_auth()          # None in lwe-pk: no shared secret
        self.auth_policy = auth
        self.window = window if window is not None else ReplayWindow()
        self.frames_authenticated = 0
        self.frames_unauthenticated = 0
        self._check = None                     # (positions, PayloadCheck) of the frame being handled

    def _decoder_module(self):
        return self.model

    def _reject_reason(self, item):
        self._check = None
        reason = super()._reject_reason(item)
        if reason is None and item.header.key_id_hex != self.keys.key_id:
            return "other key"
        if reason is None and self.mode == "lwe-pk" and not item.d_ok:
            return "d block CRC"
        if reason is None and self.auth is not None:
            reason = self._verify(item)
        return reason

    def _verify(self, item) -> str | None:
        """The authentication checks of a frame of Bob's key (module docstring), cheapest first; None: passed."""
        h = item.header
        if not h.tagged:
            return None if self.auth_policy == "legacy" else NO_TAG
        if not item.tag_ok:
            return TAG_CRC
        if not self.auth.verify(h.info_bytes(), item.d_values, item.tag):
            return MAC
        if not self.window.check(self.keys.key_id, h.counter, h.payload_len // self.k):
            return REPLAY
        pos, expected = self.auth.checks(h.counter, h.payload_len)
        result = payload_check(item.payload[pos], modulate(expected), item.noise_var)
        self._check = (pos, result)
        return None if result.ok else PAYLOAD_CHECK

    def _values(self, item):
        n_sub = item.header.payload_len // self.k
        c_hat = soft_demap(item.payload, item.noise_var, sigma_l=self.sigma_l).reshape(n_sub, self.k)
        nonces = item.counter + np.arange(n_sub)
        d = None
        if self.mode == "lwe-pk":
            d = np.asarray(item.d_values, dtype=np.int64).reshape(n_sub, -1)
        values = self.decryptor.decrypt_batch(c_hat, nonces, d=d).ravel()
        if self.auth is not None:       # the frame is accepted: its counters are spent
            if item.header.tagged:
                self.window.accept(self.keys.key_id, item.counter, n_sub)
                values[self._check[0]] = np.nan     # check symbols carry no plaintext: erased
                self.frames_authenticated += 1
            else:
                self.frames_unauthenticated += 1
        return values

    def _record_extra(self, item, values) -> dict:
        if self._check is None:
            return {}
        return {"check_ratio": round(self._check[1].mean_ratio, 3)}

    def stream_ended(self) -> None:
        self.window.close()

    def summary(self, rows, frames_sent: int | None) -> dict:
        res = super().summary(rows, frames_sent)
        if self.auth is None:
            res["authentication"] = {"scheme": None, "reason": f"{self.mode}: no secret shared with Alice"}
        else:
            res["authentication"] = {"scheme": AUTH_SCHEME, "policy": self.auth_policy,
                                     "frames_authenticated": self.frames_authenticated,
                                     "frames_unauthenticated": self.frames_unauthenticated}
        return res

    def _decode(self, values, erased, shape, size):
        return self.model.decode(values.float(), shape, out_size=size, erased=erased)


class EveChain(ReceiveChain):
    """Eve: her chosen-plaintext-attack decoder on the soft ciphertext; with a ``game`` (image index →
    (2, n) candidate latents, zero-padded to whole cipher frames as Alice pads them), also her
    distinguisher's guess per frame (module docstring)."""

    role = "eve"

    def __init__(self, bob_model, eve_decoder, model_name: str, k: int, mode: str | None = None, *,
                 game: Mapping | None = None, **kwargs):
        super().__init__(model_name, bob_model, mode or bob_model.config.cipher_mode, bob_model.config.sigma_l, k,
                         **kwargs)
        self.eve = eve_decoder
        self.game = game

    def _decoder_module(self):
        return self.eve

    def _values(self, item):
        return soft_demap(item.payload, item.noise_var, sigma_l=self.sigma_l)

    def _record_extra(self, item, values) -> dict:
        h = item.header
        if self.game is None or values is None or h.image_index not in self.game:
            return {}
        pair = self.game[h.image_index]
        padded = pair.shape[1]
        start = h.chunk_index * h.payload_len if h.chunk_index < h.chunk_count - 1 else padded - h.payload_len
        if start < 0 or start + h.payload_len > padded:
            return {}
        seg = pair[:, start:start + h.payload_len]
        return {"guess": guess_pair(values, seg[0], seg[1], seed=h.counter)}

    def _decode(self, values, erased, shape, size):
        return self.eve(values.float(), shape, out_size=size, erased=erased)


def _num(v) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


class NpzImages(Mapping):
    """The images of an npz (``image_<index>``: a ``reference.npz`` or a ``<role>-images.npz``) as a
    mapping index → image, each read from the file when asked for; other arrays by :meth:`array`."""

    def __init__(self, path):
        self._npz = np.load(path)
        self._names = {int(n.split("_")[1]): n for n in self._npz.files if n.startswith("image_")}

    def array(self, name: str) -> np.ndarray:
        return self._npz[name]

    def __getitem__(self, index):
        return self._npz[self._names[index]]

    def __contains__(self, index):
        return index in self._names

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)

    def close(self):
        self._npz.close()


def open_references(path):
    """The reference images of ``path`` as a mapping index → uint8 HWC image, read as they are used (with an
    index of 16 bytes per image: :class:`link.npzindex.NpzIndex`)."""
    from link.npzindex import NpzIndex

    return NpzIndex(path)


def serve(chain: ReceiveChain, frames_address: str, control_address: str, *, idle_s: float = 1.0,
          timeout_s: float = 900.0) -> int | None:
    """Receive frames until the runner says the stream ended, then until ``idle_s`` passes without a
    frame — or at once when the runner said how many messages its flowgraph published
    (``frames_published``) and that many came. Gives up after ``timeout_s``.

    Returns the number of frames the runner says it sent (None if it never said).
    """
    from flowgraphs.pdu import FrameReceiver
    from radio.transport import ControlSocket

    rx = FrameReceiver(frames_address)
    ctl = ControlSocket(control_address, bind=True)
    t0 = time.monotonic()
    end = idle_since = None
    try:
        while time.monotonic() - t0 < timeout_s:
            published = None if end is None else end.get("frames_published")
            if published is not None and rx.messages >= published:
                break
            # Short waits, so the count above is checked again soon: a malformed message is read (and
            # counted) inside recv, which would otherwise go on waiting for a frame until its timeout.
            item = rx.recv(0.1)
            if item is not None:
                chain.handle(item)
                idle_since = None
                continue
            if end is not None:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= idle_s:
                    break
                continue
            end = ctl.poll()
        if rx.malformed:
            chain.drops["malformed message"] += rx.malformed
    finally:
        rx.close()
        ctl.close()
    return None if end is None else end.get("frames_sent")


def write_json(path: Path, obj) -> None:
    """``json.dumps(obj, indent=1)`` and a newline into ``path``, byte for byte, streaming every
    sequence that is not a list or tuple (the spilled ``images`` and ``per_frame`` of a summary)."""
    with open(path, "w") as f:
        _write_json(f, obj, 0)
        f.write("\n")


def _write_json(f, v, level: int) -> None:
    pad = "\n" + " " * (level + 1)
    if isinstance(v, dict) and v and all(isinstance(k, str) for k in v):
        for n, (k, x) in enumerate(v.items()):
            f.write(("{" if n == 0 else ",") + pad + json.dumps(k) + ": ")
            _write_json(f, x, level + 1)
        f.write("\n" + " " * level + "}")
    elif isinstance(v, Sequence) and not isinstance(v, (str, bytes, list, tuple)):
        empty = True
        for n, x in enumerate(v):
            f.write(("[" if n == 0 else ",") + pad)
            _write_json(f, x, level + 1)
            empty = False
        f.write("[]" if empty else "\n" + " " * level + "]")
    else:
        f.write(json.dumps(v, indent=1).replace("\n", "\n" + " " * level))


def write_results(out_dir: Path, role: str, summary: dict, rows, constellation: list) -> None:
    """``<role>.json`` (the summary) and ``<role>-images.npz`` (``image_<index>`` of every decoded
    image, in index order, and ``constellation``), streamed: one image in memory at a time."""
    import itertools
    import zipfile

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / f"{role}.json", summary)
    arrays = ((f"image_{r['index']}", r["image"]) for r in rows if r["image"] is not None)
    last = ("constellation", np.concatenate(constellation) if constellation else np.zeros(0, np.complex64))
    # What np.savez writes, one array at a time.
    with zipfile.ZipFile(out_dir / f"{role}-images.npz", mode="w", compression=zipfile.ZIP_STORED,
                         allowZip64=True) as zf:
        for name, arr in itertools.chain(arrays, [last]):
            with zf.open(name + ".npy", "w", force_zip64=True) as fid:
                np.lib.format.write_array(fid, np.asanyarray(arr), allow_pickle=True)
