"""Store a checkpoint's weights in half precision, for the checkpoints bundled with the project.

All bundled checkpoints together must stay near 20 MB. Float16 halves them; loading converts back
to float32 (``load_state_dict`` copies into the module's own dtype). The card records the storage
dtype. The effect on the figures is measured in the README (``jscec eval`` before and after).

Usage: ``python -m models.bundle CHECKPOINT...``
"""
from __future__ import annotations

import argparse
import sys

import torch

from models.checkpoint import load_checkpoint, save_checkpoint


def halve(path) -> int:
    """Rewrite ``path`` with float16 weights; returns the number of tensors converted."""
    ck = load_checkpoint(path)
    state = {k: v.half() if v.is_floating_point() else v for k, v in ck["state_dict"].items()}
    changed = sum(v.is_floating_point() and v.dtype != torch.float16 for v in ck["state_dict"].values())
    card = dict(ck.get("card") or {}, weights_dtype="float16")
    payload = {k: v for k, v in ck.items() if k not in ("format", "card", "state_dict")}
    save_checkpoint(path, dict(payload, state_dict=state), card)
    return changed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.bundle", description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+", help="checkpoint files to rewrite in place")
    args = p.parse_args(argv)
    for path in args.checkpoints:
        print(f"{path}: {halve(path)} tensors to float16")
    return 0


if __name__ == "__main__":
    sys.exit(main())
