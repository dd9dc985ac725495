"""Bob's and Eve's receive chains for a classification model (``task == "classify"``, paper Sec. V-B).

The chains are :class:`link.receiver.chains.BobChain` and :class:`~link.receiver.chains.EveChain` — the same
frames, authentication, decryption, erasures, batches and spill files — with one difference: their decoder
(Bob's g_φ, Eve's ḡ_ψ) gives class logits, so each image becomes a predicted **label** (the arg max) and its
softmax **confidence** instead of a decoded image. With the reference labels (``labels`` of the run's
``reference.npz``, :func:`open_labels`) each label is scored (``correct``) and the summary gives the
``accuracy`` over every labelled image, an image whose frames never arrived counting as wrong; without them
the labels are still given. Rows (``<role>.json``'s ``images``): ``index``, frame counts, ``erased_fraction``,
``label``, ``confidence`` and, with a reference, ``true_label`` and ``correct``. ``<role>-images.npz`` holds
the constellation only (no images are decoded).
"""
from __future__ import annotations

from array import array
from collections.abc import Mapping

import numpy as np
import torch

from link.receiver.chains import BobChain, EveChain

TASK = "classify"


def open_labels(path) -> dict[int, int] | None:
    """The reference labels of a run's ``reference.npz`` (``labels``: one per image index, −1 where unknown)
    as index → label; None when it holds none (an image run's reference)."""
    with np.load(path) as z:
        if "labels" not in z.files:
            return None
        labels = np.asarray(z["labels"], np.int64).ravel()
    return {i: int(v) for i, v in enumerate(labels) if v >= 0}


class _Labels:
    """What a classification chain keeps per decoded image: its label and confidence (mixed into Bob's and
    Eve's chains before them, so their frame handling and decoders stay as they are)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._labels = array("q")        # position → predicted label
        self._confidence = array("d")    # position → softmax probability of that label
        self._truth: Mapping | None = None

    def _outputs(self, logits: torch.Tensor) -> np.ndarray:
        return logits.float().cpu().numpy()

    def _keep(self, logits: np.ndarray) -> None:
        p = np.exp(logits - logits.max())
        label = int(np.argmax(logits))
        self._labels.append(label)
        self._confidence.append(float(p[label] / p.sum()))

    def _show(self, indices, logits) -> None:
        """To the live view: each image's label and confidence (the last ``len(indices)`` kept), and whether
        it is right where the run's reference labels are known."""
        first = len(self._labels) - len(indices)
        truth = self._truth if self._truth is not None else self.references
        rows = []
        for n, index in enumerate(indices):
            label = int(self._labels[first + n])
            known = truth.get(index) if truth is not None else None
            rows.append({"index": index, "label": label, "confidence": self._confidence[first + n],
                         "correct": None if known is None else label == int(known)})
        self.live.labels(self.role, rows)

    def _stored(self, first: int, count: int):
        return None      # the labels are scored from what _keep stored

    def _image(self, position: int):
        return None

    def _score_batch(self, batch: int, outputs, references: Mapping, device) -> None:
        self._truth = references
        self._batches[batch][2] = ()      # scored: the label rows carry the truth (_row)

    def decode_all(self, references: Mapping | None = None, device=None, batch_size: int | None = None):
        if references is not None:
            self._truth = references
        elif self._truth is None:
            self._truth = self.references
        return super().decode_all(references, device, batch_size)

    def _row(self, index: int, position: int, with_image: bool) -> dict:
        row = super()._row(index, position, with_image)
        if position >= 0:
            row["label"] = int(self._labels[position])
            row["confidence"] = round(float(self._confidence[position]), 4)
        truth = self._truth.get(index) if self._truth is not None else None
        if truth is not None:
            row["true_label"] = int(truth)
            row["correct"] = row.get("label") == int(truth)
        return row

    def summary(self, rows, frames_sent: int | None) -> dict:
        res = super().summary(rows, frames_sent)
        for key in ("psnr", "ssim", "ms_ssim"):
            res.pop(key, None)
        labelled = correct = classified = 0
        for r in rows.rows(with_image=False) if hasattr(rows, "rows") else rows:
            classified += "label" in r
            if "true_label" in r:
                labelled += 1
                correct += bool(r["correct"])
        snrs = [r["snr_db"] for r in self.records if r.get("ok") and r.get("snr_db") is not None]
        res.update({"task": TASK, "images_classified": classified, "images_labelled": labelled,
                    "accuracy": correct / labelled if labelled else None,
                    "snr_db": float(np.mean(snrs)) if snrs else None})
        return res


class ClassifyBobChain(_Labels, BobChain):
    """Bob's chain for a classifier: verifies, decrypts, and his decoder g_φ gives the labels."""


class ClassifyEveChain(_Labels, EveChain):
    """Eve's chain for a classifier: her attack classifier ḡ_ψ on the soft ciphertext gives the labels."""


def chain_classes(task: str) -> tuple[type, type]:
    """Bob's and Eve's chain classes for a model's task (``image`` or ``classify``)."""
    return (ClassifyBobChain, ClassifyEveChain) if task == TASK else (BobChain, EveChain)
