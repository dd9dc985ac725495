"""Checkpoints with their cards: weights plus the JSON description of what they are.

A checkpoint file is a ``torch.save`` dict holding only tensors and plain values (so it loads with
``weights_only=True``): ``format``, ``config`` (the ``CodecConfig``), ``state_dict``, ``card`` and,
for training checkpoints, optimiser/scheduler state. The card is also written beside it as JSON.
Files are written atomically (temporary file, then rename), so an interrupted save never leaves a
truncated checkpoint behind; a truncated or foreign file is refused with a one-line ``UserError``.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from jscec.errors import UserError

if TYPE_CHECKING:   # torch is imported where it is used: resolving a model's path needs no torch
    import torch

FORMAT = "deepjscec-hil/1"
#: The checkpoints shipped with the project.
BUNDLED_DIR = Path(__file__).resolve().parent / "checkpoints"


def atomic_write_bytes(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def card_path(checkpoint: Path) -> Path:
    return Path(checkpoint).with_suffix(".json")


def save_checkpoint(path, payload: dict, card: dict | None = None) -> None:
    """Save ``payload`` (must hold ``config`` and ``state_dict``) and write the card beside it."""
    payload = dict(payload, format=FORMAT)
    if card is not None and card.get("cipher_params"):
        card = dict(card, security=security_line(card.get("cipher_mode"), card["cipher_params"]))
    if card is not None:
        # Through JSON and back: the card holds only plain values, so the file loads with weights_only.
        card = json.loads(json.dumps(card, default=str))
        payload["card"] = card
    import torch

    atomic_write_bytes(Path(path), lambda f: torch.save(payload, f))
    if card is not None:
        text = json.dumps(card, indent=2, sort_keys=True) + "\n"
        atomic_write_bytes(card_path(path), lambda f: f.write(text.encode()))


def security_line(mode: str | None, params: str) -> str:
    """What a card says about the cipher's security level (``jscec security estimate``)."""
    if mode == "mask":
        return "mask mode: AES-128-CTR keystream under a shared 128-bit key; the LWE preset is unused"
    from crypto.cipher import PRESETS

    return f"{params}: {PRESETS[params].security_estimate}" if params in PRESETS else f"{params}: not estimated"


def load_checkpoint(path, kind: str | None = None) -> dict:
    """Load a checkpoint dict, refusing truncated, foreign or wrong-kind files with a ``UserError``."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UserError(f"checkpoint {path} is truncated or not a PyTorch file ({type(exc).__name__})") from None
    except Exception as exc:  # unpickling errors of foreign pickles
        raise UserError(f"checkpoint {path} cannot be read ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"checkpoint {path} is not a DeepJSCEC-HIL checkpoint")
    if kind is not None and payload.get("kind", "bob") != kind:
        raise UserError(f"checkpoint {path} holds a {payload.get('kind', 'bob')} model, not {kind}")
    return payload


def load_state(module: torch.nn.Module, state_dict: dict, path) -> None:
    """``load_state_dict`` with a one-line error when the weights do not fit the architecture."""
    try:
        module.load_state_dict(state_dict)
    except RuntimeError:
        raise UserError(f"checkpoint {path} does not match the model architecture in its card") from None


def restore_training(ck: dict, path, model, optimizer, scheduler, state: dict, log=print) -> None:
    """Continue a run from its training checkpoint ``ck`` (read from ``path``): the weights, the optimiser's
    and the scheduler's state, the run's ``state`` (updated in place) and torch's random state."""
    import torch

    load_state(model, ck["state_dict"], path)
    optimizer.load_state_dict(ck["optimizer"])
    scheduler.load_state_dict(ck["scheduler"])
    state.update(json.loads(ck["state_json"]))
    torch.set_rng_state(ck["torch_rng"])
    log(f"resumed from {path} at step {state['step']} (epoch {state['epoch']})")


def resolve_model(name_or_path: str) -> Path:
    """A bundled model name (e.g. ``cifar10-lwe``) or a path → the checkpoint path."""
    p = Path(name_or_path)
    if p.suffix == ".pt" or p.exists():
        return p
    candidate = BUNDLED_DIR / f"{name_or_path}.pt"
    if candidate.exists():
        return candidate
    names = sorted(q.stem for q in BUNDLED_DIR.glob("*.pt") if not q.stem.endswith(".eve"))
    raise UserError(f"unknown model {name_or_path!r}; bundled: {', '.join(names) or 'none'}")


def eve_path(checkpoint) -> Path:
    """Where Eve's decoder for a checkpoint lives (beside Bob's model)."""
    p = Path(checkpoint)
    return p.with_name(p.stem + ".eve.pt")
