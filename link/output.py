"""What a run writes: the reference images it scores against, and an output folder that appears only
when the run succeeds (:func:`staged_output`, then :func:`commit_stage`)."""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import numpy as np

from jscec.errors import UserError


def save_reference(path: Path, images: list[np.ndarray]) -> Path:
    np.savez(path, **{f"image_{i}": im for i, im in enumerate(images)})
    return Path(path)


def load_reference(path: Path) -> list[np.ndarray]:
    try:
        with np.load(path) as z:
            named = {int(n.split("_")[1]): z[n] for n in z.files if n.startswith("image_")}
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read reference images {path}: {str(exc).splitlines()[0]}") from None
    return [named[i] for i in sorted(named)]


@contextlib.contextmanager
def staged_output(out_dir: Path):
    """A hidden staging folder beside ``out_dir``; its files move into ``out_dir`` only on success.

    On any exception the staging folder is removed and ``out_dir`` is left as it was (not created
    if it did not exist), so a refused run leaves nothing behind.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = out_dir.parent / f".{out_dir.name}.{os.getpid()}.tmp"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def commit_stage(stage: Path, out_dir: Path) -> None:
    """Move everything from ``stage`` into ``out_dir`` (replacing files of the same name)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in sorted(Path(stage).iterdir()):
        dest = out_dir / p.name
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        os.replace(p, dest)
    shutil.rmtree(stage, ignore_errors=True)
