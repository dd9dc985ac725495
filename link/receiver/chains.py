"""Bob's and Eve's receive chains: synchronised frames (over ZMQ) → images.

* **Bob** (holds the key): soft demap (eqs. 14–15, σ_l from the model card, noise variance from the
  frame's pilots) → decrypt each cipher frame under its nonce (eq. 27; in ``lwe-pk`` with the d block,
  which must pass its CRC) → soft dequantise / circular features → decoder g_φ.
* **Eve** (no key): soft demap → her chosen-plaintext-attack decoder ḡ_ψ on the soft ciphertext.

Frames reach a chain only after their header passed its CRC; a chain also drops frames that are not
for it (another key id, model or mode) and counts every drop by reason. Latent symbols of frames that
never arrived are erased (decoder features 0) rather than guessed. :func:`serve` is the process main
loop used by ``jscec receive``.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from link.apps.alice import latent_shape_for, model_id
from crypto.cipher import CipherKeys, Decryptor
from models.evaluate import quality
from models.images import to_tensor
from radio.sync import DroppedFrame, SyncedFrame
from radio.zp_qam import soft_demap

#: Received payload symbols kept for the constellation plot.
CONSTELLATION_KEEP = 20000
#: Images decoded (and scored) per call of the decoder: CIFAR-size images decode ~1.3× faster
#: in batches than one by one, and score ~6× faster (scratch measurement, one core).
DECODE_BATCH = 64


@dataclass
class _ImageBuffer:
    height: int
    width: int
    chunk_count: int
    values: dict = field(default_factory=dict)   # chunk_index → received values (float64)


class ReceiveChain:
    """What Bob and Eve share: frame bookkeeping, per-frame records, image assembly, metrics."""

    role = "receiver"

    def __init__(self, model_name: str, latent_model, mode: str, sigma_l: float, k: int):
        self.model_id = model_id(model_name)
        self.latent_model = latent_model     # the DeepJscec whose config fixes latent shapes
        self.mode = mode
        self.sigma_l = sigma_l
        self.k = k
        self.images: dict[int, _ImageBuffer] = {}
        self.records: list[dict] = []
        self.drops = Counter()
        self.constellation: list[np.ndarray] = []
        self._kept = 0

    # -- frames
    def handle(self, item) -> None:
        if isinstance(item, DroppedFrame):
            self.drops["header CRC" if item.reason.startswith("header") else item.reason] += 1
            self.records.append({"ok": False, "reason": item.reason, "snr_db": _num(item.snr_db)})
            return
        reason = self._reject_reason(item)
        if reason is None:
            try:
                values = self._values(item)
            except ValueError as exc:
                values, reason = None, str(exc)
        rec = {"counter": item.counter, "image": item.header.image_index, "chunk": item.header.chunk_index,
               "mer_db": _num(item.mer_db), "snr_db": _num(item.snr_db), "cfo": _num(item.cfo),
               "sro_ppm": _num(item.sro_ppm), "timing": _num(item.timing), "ok": reason is None}
        if reason is not None:
            self.drops[reason] += 1
            rec["reason"] = reason
        else:
            hdr = item.header
            buf = self.images.setdefault(hdr.image_index, _ImageBuffer(hdr.height, hdr.width, hdr.chunk_count))
            buf.values[hdr.chunk_index] = values
            if self._kept < CONSTELLATION_KEEP:
                self.constellation.append(item.payload[: CONSTELLATION_KEEP - self._kept])
                self._kept += self.constellation[-1].size
        self.records.append(rec)

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

    # -- images
    def assemble(self, index: int) -> tuple[np.ndarray, np.ndarray, tuple] | None:
        """(received values (k,), erased mask (k,), latent shape) of one image, or None if never seen."""
        buf = self.images.get(index)
        if buf is None:
            return None
        shape = latent_shape_for(self.latent_model, buf.height, buf.width)
        k_img = int(np.prod(shape))
        per = max(v.size for v in buf.values.values())
        values = np.zeros(buf.chunk_count * per)
        erased = np.ones(values.size, dtype=bool)
        for j, v in buf.values.items():
            values[j * per: j * per + v.size] = v
            erased[j * per: j * per + v.size] = False
        return values[:k_img], erased[:k_img], shape

    def decode_all(self, references: dict[int, np.ndarray] | None = None, device="cpu",
                   batch_size: int = DECODE_BATCH) -> list[dict]:
        """Decode every image seen; with references, per-image PSNR/SSIM (MS-SSIM ≥ 64×64).

        Images of one size are decoded ``batch_size`` at a time, in index order (the batches depend
        only on which images arrived, so a replay decodes exactly as the live run did).
        """
        indices = sorted(set(self.images) | set(references or {}))
        rows = {index: {"index": index, "image": None, "frames_ok": 0, "frames_expected": None} for index in indices}
        groups: dict[tuple, list] = {}
        for index in indices:
            got = self.assemble(index)
            if got is None:
                continue
            values, erased, shape = got
            buf = self.images[index]
            rows[index].update(frames_ok=len(buf.values), frames_expected=buf.chunk_count,
                               erased_fraction=float(erased.mean()))
            groups.setdefault((shape, buf.height, buf.width), []).append((index, values, erased))
        for (shape, height, width), members in groups.items():
            for i in range(0, len(members), batch_size):
                part = members[i:i + batch_size]
                values = torch.from_numpy(np.stack([m[1] for m in part])).to(device)
                erased = torch.from_numpy(np.stack([m[2] for m in part])).to(device)
                with torch.no_grad():
                    x_hat = self._decode(values, erased, shape, (height, width))
                imgs = (x_hat.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
                for (index, _, _), img in zip(part, imgs):
                    rows[index]["image"] = img
                scored = [j for j, m in enumerate(part) if references is not None and m[0] in references]
                if scored:
                    q = quality(to_tensor(imgs[scored], device),
                                to_tensor(np.stack([references[part[j][0]] for j in scored]), device))
                    for n, j in enumerate(scored):
                        rows[part[j][0]].update({k: float(v[n]) for k, v in q.items()})
        return [rows[index] for index in indices]

    def _decode(self, values, erased, shape, size):
        raise NotImplementedError

    def summary(self, rows: list[dict], frames_sent: int | None) -> dict:
        ok = [r for r in self.records if r.get("ok")]
        mers = [r["mer_db"] for r in ok if r.get("mer_db") is not None]
        scored = [r for r in rows if "psnr" in r]
        res = {"role": self.role, "frames_sent": frames_sent, "frames_received": len(self.records),
               "frames_ok": len(ok), "frames_dropped": dict(self.drops),
               "mer_db": float(np.mean(mers)) if mers else None,
               "psnr": float(np.mean([r["psnr"] for r in scored])) if scored else None,
               "ssim": float(np.mean([r["ssim"] for r in scored])) if scored else None,
               "images": [{k: v for k, v in r.items() if k != "image"} for r in rows],
               "per_frame": self.records}
        if scored and all("ms_ssim" in r for r in scored):
            res["ms_ssim"] = float(np.mean([r["ms_ssim"] for r in scored]))
        return res


class BobChain(ReceiveChain):
    role = "bob"

    def __init__(self, model, keys: CipherKeys, model_name: str):
        super().__init__(model_name, model, keys.mode, model.config.sigma_l, keys.k)
        self.model = model
        self.keys = keys
        self.decryptor = Decryptor(keys)

    def _reject_reason(self, item):
        reason = super()._reject_reason(item)
        if reason is None and item.header.key_id_hex != self.keys.key_id:
            return "other key"
        if reason is None and self.mode == "lwe-pk" and not item.d_ok:
            return "d block CRC"
        return reason

    def _values(self, item):
        n_sub = item.header.payload_len // self.k
        c_hat = soft_demap(item.payload, item.noise_var, sigma_l=self.sigma_l).reshape(n_sub, self.k)
        nonces = item.counter + np.arange(n_sub)
        d = None
        if self.mode == "lwe-pk":
            d = np.asarray(item.d_values, dtype=np.int64).reshape(n_sub, -1)
        return self.decryptor.decrypt_batch(c_hat, nonces, d=d).ravel()

    def _decode(self, values, erased, shape, size):
        return self.model.decode(values.float(), shape, out_size=size, erased=erased)


class EveChain(ReceiveChain):
    role = "eve"

    def __init__(self, bob_model, eve_decoder, model_name: str, k: int, mode: str | None = None):
        super().__init__(model_name, bob_model, mode or bob_model.config.cipher_mode, bob_model.config.sigma_l, k)
        self.eve = eve_decoder

    def _values(self, item):
        return soft_demap(item.payload, item.noise_var, sigma_l=self.sigma_l)

    def _decode(self, values, erased, shape, size):
        return self.eve(values.float(), shape, out_size=size, erased=erased)


def _num(v) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


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
    end = None
    try:
        while time.monotonic() - t0 < timeout_s:
            published = None if end is None else end.get("frames_published")
            if published is not None and rx.messages >= published:
                break
            item = rx.recv(0.1 if end is None else idle_s)
            if item is not None:
                chain.handle(item)
                continue
            if end is not None:
                break
            end = ctl.poll()
        if rx.malformed:
            chain.drops["malformed message"] += rx.malformed
    finally:
        rx.close()
        ctl.close()
    return None if end is None else end.get("frames_sent")


def write_results(out_dir: Path, role: str, summary: dict, rows: list[dict], constellation: list) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{role}.json").write_text(json.dumps(summary, indent=1) + "\n")
    arrays = {f"image_{r['index']}": r["image"] for r in rows if r["image"] is not None}
    arrays["constellation"] = (np.concatenate(constellation) if constellation else np.zeros(0, np.complex64))
    np.savez(out_dir / f"{role}-images.npz", **arrays)
