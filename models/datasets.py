"""Dataset readers: CIFAR-10 python batches, image-folder trees, Tiny ImageNet and IDX (MNIST family).

``load_dataset(path)`` works out the format from what ``path`` holds — a directory, a .tar/.tar.gz/.tgz
(read as one sequential stream), a .zip, or a single IDX file — and returns the *whole* dataset (the
train and test parts together, ordered by member name) as one ``ImageSet`` of uint8 (N, H, W, C)
images; ``split_indices`` then makes the project's seeded 0.8/0.1/0.1 split.

Recognised contents, in order of precedence:

* CIFAR-10 python batches: ``data_batch_1`` … ``data_batch_5``, ``test_batch`` (+ ``batches.meta`` for
  the class names), e.g. the official ``cifar-10-python.tar.gz`` or its extracted directory.
* Tiny ImageNet: ``wnids.txt``, ``train/<wnid>/images/*.JPEG``, ``val/images/*`` labelled by
  ``val/val_annotations.txt``; the unlabelled ``test/images`` are left out.
* IDX: ``*-images-idx3-ubyte[.gz]`` with the matching ``*-labels-idx1-ubyte[.gz]`` (gray → C = 1).
* An image-folder tree: every image's class is its parent folder (``train/<class>/x.jpg``,
  ``test/<class>/x.jpg`` or ``<class>/x.jpg``); images lying directly in the root or in a bare
  ``train/``/``test/``/``val/`` folder have no class and are skipped.

Decoding tens of thousands of JPEGs takes a while, so whatever had to be decoded (image trees, Tiny
ImageNet, anything read from an archive) is cached as an .npz in ``cache_dir`` (``$JSCEC_CACHE`` or
``~/.cache/jscec``), keyed by the source's absolute path, size and modification time (for a directory:
those of every file in it). A cache file that cannot be read is ignored and rebuilt.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import re
import sys
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from jscec.errors import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
DATA_ENV, CACHE_ENV = "JSCEC_DATA", "JSCEC_CACHE"
CACHE_VERSION = 2

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}
CIFAR_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
CIFAR_FILES = set(CIFAR_BATCHES) | {"batches.meta"}
TINY_FILES = {"wnids.txt", "val_annotations.txt"}
SPLIT_DIRS = {"train", "test", "val", "valid", "validation"}
IDX_NAME = re.compile(r"idx[1-4]-ubyte(\.gz)?$")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

Member = tuple[str, Callable[[], bytes]]   # (relative posix name, read its bytes)


@dataclass
class ImageSet:
    """A whole dataset in memory."""

    images: np.ndarray   # uint8 (N, H, W, C)
    labels: np.ndarray   # int64 (N,)
    classes: list        # class names; labels index into it
    name: str            # label for results, e.g. "CIFAR-10 (JPEG q75 copy)"
    source: str          # absolute path it was read from

    def __len__(self) -> int:
        return len(self.images)


def default_data_path() -> Path:
    """``$JSCEC_DATA``, else the CIFAR-10 JPEG copy in ``../shared/datasets`` beside the repository."""
    return Path(os.environ.get(DATA_ENV) or DEFAULT_DATA).expanduser()


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "jscec").expanduser()


# --------------------------------------------------------------------------- member sources


def _parts(name: str) -> list[str]:
    return [p for p in name.split("/") if p not in ("", ".")]


def _is_image(base: str) -> bool:
    return os.path.splitext(base)[1].lower() in IMAGE_SUFFIXES


def _wanted(name: str) -> bool:
    """Is this member one any reader uses? (Hidden files and macOS ``__MACOSX`` forks never are.)"""
    parts = _parts(name)
    if not parts or any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return False
    base = parts[-1]
    return _is_image(base) or base in CIFAR_FILES or base in TINY_FILES or IDX_NAME.search(base) is not None


def _bar(progress: bool, **kw):
    from tqdm import tqdm

    return tqdm(disable=not progress, file=sys.stderr, leave=False, dynamic_ncols=True,
                mininterval=0.3 if sys.stderr.isatty() else 10.0, **kw)


def _dir_files(root: Path) -> list[tuple[str, Path]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            full = Path(dirpath) / f
            rel = full.relative_to(root).as_posix()
            if _wanted(rel):
                out.append((rel, full))
    return out


def _iter_dir(root: Path, progress: bool) -> Iterator[Member]:
    files = _dir_files(root)
    with _bar(progress, total=len(files), desc=f"reading {root.name}", unit="file") as bar:
        for rel, full in files:
            yield rel, full.read_bytes
            bar.update(1)


class _Counted:
    """File wrapper that advances a progress bar by the compressed bytes read."""

    def __init__(self, raw, bar):
        self.raw, self.bar = raw, bar

    def read(self, n=-1):
        data = self.raw.read(n)
        self.bar.update(len(data))
        return data


def _iter_tar(path: Path, progress: bool) -> Iterator[Member]:
    with open(path, "rb") as raw, _bar(progress, total=path.stat().st_size, desc=f"reading {path.name}",
                                       unit="B", unit_scale=True) as bar:
        with tarfile.open(fileobj=_Counted(raw, bar), mode="r|*") as tar:   # one sequential pass
            for m in tar:
                if m.isfile() and _wanted(m.name):
                    data = tar.extractfile(m).read()
                    yield m.name, lambda data=data: data


def _iter_zip(path: Path, progress: bool) -> Iterator[Member]:
    with zipfile.ZipFile(path) as zf:
        infos = sorted((i for i in zf.infolist() if not i.is_dir() and _wanted(i.filename)),
                       key=lambda i: i.filename)
        with _bar(progress, total=len(infos), desc=f"reading {path.name}", unit="file") as bar:
            for info in infos:
                yield info.filename, lambda info=info: zf.read(info)
                bar.update(1)


# --------------------------------------------------------------------------- decoding


def _decode_image(data: bytes, name: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.mode not in ("L", "RGB"):
                img = img.convert("L" if img.mode in ("1", "LA", "I", "I;16", "F") else "RGB")
            arr = np.asarray(img, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UserError(f"cannot decode image {name}: {type(exc).__name__}") from None
    return arr[..., None] if arr.ndim == 2 else arr


def _is_idx_header(head: bytes) -> bool:
    return len(head) >= 4 and head[0] == 0 and head[1] == 0 and head[2] in (8, 9, 11, 12, 13, 14) and 1 <= head[3] <= 4


def _parse_idx(raw: bytes, name: str) -> np.ndarray:
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            raise UserError(f"{name} is a damaged gzip file") from None
    if not _is_idx_header(raw):
        raise UserError(f"{name} is not an IDX file (bad magic number)")
    if raw[2] != 8:
        raise UserError(f"{name}: only unsigned-byte IDX data (type 0x08) is supported, not 0x{raw[2]:02x}")
    ndim = raw[3]
    dims = [int(d) for d in np.frombuffer(raw[4:4 + 4 * ndim], dtype=">u4")]
    body, count = raw[4 + 4 * ndim:], int(np.prod(dims))
    if len(body) != count:
        raise UserError(f"{name} is truncated or padded: {len(body)} data bytes, header {dims} says {count}")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches without running arbitrary code: only numpy's array rebuilders may load."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}   # bytes, pickled by Python 3

    def find_class(self, module, name):
        module = module.replace("numpy._core", "numpy.core")   # pickles written by numpy 2
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name}")


def _unpickle(data: bytes, name: str) -> dict:
    try:
        d = _BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 — anything a damaged pickle raises
        raise UserError(f"{name} is not a CIFAR-10 python batch ({type(exc).__name__})") from None
    if not isinstance(d, dict):
        raise UserError(f"{name} is not a CIFAR-10 python batch (not a dict)")
    return d


# --------------------------------------------------------------------------- builders


def _stack(items: list[tuple[str, np.ndarray]], where: str) -> np.ndarray:
    """Stack images of one size; gray images join colour ones as three equal channels."""
    channels = max(a.shape[2] for _, a in items)
    sizes = {a.shape[:2] for _, a in items}
    if len(sizes) != 1:
        first = {}
        for n, a in items:
            first.setdefault(a.shape[:2], n)
        (s1, n1), (s2, n2) = list(first.items())[:2]
        raise UserError(f"images in {where} differ in size ({n1} is {s1[1]}x{s1[0]}, {n2} is {s2[1]}x{s2[0]}); "
                        "resize them to one size first")
    out = np.empty((len(items), *sizes.pop(), channels), dtype=np.uint8)
    for i, (_, a) in enumerate(items):
        out[i] = a
    return out


def _label_set(named: list[tuple[str, str, np.ndarray]], classes: list[str], name: str, where: str) -> ImageSet:
    named.sort(key=lambda t: t[0])
    index = {c: i for i, c in enumerate(classes)}
    images = _stack([(n, a) for n, _, a in named], where)
    labels = np.fromiter((index[c] for _, c, _ in named), dtype=np.int64, count=len(named))
    return ImageSet(images, labels, list(classes), name, where)


def _build_cifar(files: dict[str, bytes], where: str) -> ImageSet:
    by_base: dict[str, str] = {}
    for n in files:
        base = _parts(n)[-1]
        if base in CIFAR_FILES:
            if base in by_base:
                raise UserError(f"{where} holds two copies of {base} ({by_base[base]}, {n}); pass one of them")
            by_base[base] = n
    images, labels = [], []
    for base in CIFAR_BATCHES:
        if base not in by_base:
            continue
        n = by_base[base]
        d = _unpickle(files[n], n)
        try:
            data = np.asarray(d[b"data"], dtype=np.uint8)
            lab = np.asarray(d[b"labels"], dtype=np.int64).reshape(-1)
            data = data.reshape(len(lab), 3, 32, 32).transpose(0, 2, 3, 1)
        except (KeyError, ValueError, TypeError):
            raise UserError(f"{n} is not a CIFAR-10 python batch (needs b'data' of N×3072 bytes and N b'labels')") \
                from None
        images.append(data)
        labels.append(lab)
    if not images:
        raise UserError(f"{where} has batches.meta but no data_batch_* or test_batch")
    classes = [str(i) for i in range(10)]
    if "batches.meta" in by_base:
        names = _unpickle(files[by_base["batches.meta"]], by_base["batches.meta"]).get(b"label_names")
        if names:
            classes = [c.decode() if isinstance(c, bytes) else str(c) for c in names]
    labels = np.concatenate(labels)
    if labels.min() < 0 or labels.max() >= len(classes):
        raise UserError(f"{where}: CIFAR labels outside 0..{len(classes) - 1}")
    return ImageSet(np.ascontiguousarray(np.concatenate(images)), labels, classes, "CIFAR-10", where)


def _build_tiny(images: dict[str, np.ndarray], files: dict[str, bytes], where: str) -> ImageSet:
    texts = {_parts(n)[-1]: files[n].decode("utf-8", "replace") for n in files if _parts(n)[-1] in TINY_FILES}
    wnids = sorted(set(texts["wnids.txt"].split()))
    val_labels = {}
    for line in texts.get("val_annotations.txt", "").splitlines():
        cols = line.split("\t")
        if len(cols) >= 2:
            val_labels[cols[0]] = cols[1]
    named = []
    for n, arr in images.items():
        p = _parts(n)
        if len(p) >= 4 and p[-2] == "images" and p[-4] == "train":
            wnid = p[-3]
        elif len(p) >= 3 and p[-2] == "images" and p[-3] == "val":
            if p[-1] not in val_labels:
                raise UserError(f"{where}: validation image {n} is not in val/val_annotations.txt")
            wnid = val_labels[p[-1]]
        else:
            continue   # test/images (unlabelled) and anything else
        if wnid not in wnids:
            raise UserError(f"{where}: class {wnid} of {n} is not listed in wnids.txt")
        named.append((n, wnid, arr))
    if not named:
        raise UserError(f"{where} has wnids.txt but no train/<wnid>/images/* or val/images/* images")
    return _label_set(named, wnids, "Tiny ImageNet", where)


def _build_idx(files: dict[str, bytes], where: str) -> ImageSet:
    image_files = sorted(n for n in files if "idx3" in _parts(n)[-1] or "images" in _parts(n)[-1])
    images, labels = [], []
    for n in image_files:
        arr = _parse_idx(files[n], n)
        if arr.ndim == 3:
            arr = arr[..., None]
        if arr.ndim != 4 or arr.shape[3] not in (1, 3):
            raise UserError(f"{n}: IDX images must be N×H×W or N×H×W×C (C = 1 or 3), got {list(arr.shape)}")
        stem = n[:-3] if n.endswith(".gz") else n
        partner = stem.replace("images", "labels").replace("idx3", "idx1")
        lab_name = next((c for c in (partner, partner + ".gz") if c in files and c != n), None)
        if lab_name is None:
            lab = np.zeros(len(arr), dtype=np.int64)   # no labels beside it: one class
        else:
            lab = _parse_idx(files[lab_name], lab_name).astype(np.int64).reshape(-1)
            if len(lab) != len(arr):
                raise UserError(f"{lab_name} has {len(lab)} labels for the {len(arr)} images of {n}")
        images.append(arr)
        labels.append(lab)
    if not images:
        raise UserError(f"{where} holds IDX label files but no *-images-idx3-ubyte file")
    if len({a.shape[1:] for a in images}) != 1:
        raise UserError(f"the IDX image files in {where} differ in image size")
    labels = np.concatenate(labels)
    low = where.lower()
    name = "Fashion-MNIST" if "fashion" in low else "MNIST" if "mnist" in low else f"IDX ({Path(where).name})"
    n_classes = int(labels.max()) + 1
    classes = FASHION_CLASSES if name == "Fashion-MNIST" and n_classes <= 10 else [str(i) for i in range(n_classes)]
    return ImageSet(np.concatenate(images), labels, list(classes), name, where)


def _build_tree(images: dict[str, np.ndarray], where: str, name: str) -> ImageSet:
    named = []
    for n, arr in images.items():
        p = _parts(n)
        if len(p) >= 2 and p[-2] not in SPLIT_DIRS:
            named.append((n, p[-2], arr))
    if not named:
        raise UserError(f"no labelled images in {where}: expected train/<class>/*.jpg, test/<class>/*.jpg "
                        "or <class>/*.jpg")
    return _label_set(named, sorted({c for _, c, _ in named}), name, where)


def _dataset_name(path: Path) -> str:
    if "cifar10-jpeg" in path.name.lower():
        return "CIFAR-10 (JPEG q75 copy)"
    return re.sub(r"(\.tar\.gz|\.tgz|\.tar\.bz2|\.tar\.xz|\.tar|\.zip)$", "", path.name)


def _read(members: Iterator[Member], path: Path, where: str) -> tuple[ImageSet, bool]:
    """Read all wanted members, then build the dataset; also says whether images were decoded."""
    images: dict[str, np.ndarray] = {}
    files: dict[str, bytes] = {}
    for name, read in members:
        if _is_image(name):
            images[name] = _decode_image(read(), name)
        else:
            files[name] = read()
    bases = {_parts(n)[-1] for n in files}
    if bases & set(CIFAR_BATCHES) or "batches.meta" in bases:
        return _build_cifar(files, where), False
    if "wnids.txt" in bases:
        return _build_tiny(images, files, where), True
    if any(IDX_NAME.search(b) for b in bases):
        return _build_idx(files, where), False
    if images:
        return _build_tree(images, where, _dataset_name(path)), True
    raise UserError(f"no images found in {where} (expected CIFAR-10 batches, an image tree, Tiny ImageNet or IDX)")


def _sniff(path: Path) -> str:
    """Kind of a single file: 'zip', 'tar', 'idx' or 'cifar' (one python batch)."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:4] == b"PK\x03\x04":
        return "zip"
    body = head
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path) as g:
                body = g.read(4)
        except (OSError, EOFError, zlib.error):
            raise UserError(f"{path} is a damaged gzip file") from None
    if _is_idx_header(body):
        return "idx"
    if path.name in CIFAR_FILES:
        return "cifar"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except (OSError, EOFError, zlib.error):
        pass
    raise UserError(f"unsupported dataset file {path}: expected a directory, a .tar/.tar.gz/.zip archive, "
                    "an IDX file or a CIFAR-10 python batch")


def _members_of(path: Path, progress: bool) -> tuple[Iterator[Member], bool]:
    """The members to read and whether the source is an archive."""
    if path.is_dir():
        return _iter_dir(path, progress), False
    kind = _sniff(path)
    if kind == "zip":
        return _iter_zip(path, progress), True
    if kind == "tar":
        return _iter_tar(path, progress), True
    members: list[Member] = [(path.name, path.read_bytes)]
    if kind == "idx":
        stem = path.name[:-3] if path.name.endswith(".gz") else path.name
        if "images" not in stem and "idx3" not in stem:
            raise UserError(f"{path} looks like an IDX label file: pass the images file or their directory")
        partner = stem.replace("images", "labels").replace("idx3", "idx1")
        for cand in (partner, partner + ".gz"):
            if cand != path.name and (path.parent / cand).is_file():
                members.append((cand, (path.parent / cand).read_bytes))
                break
    return iter(members), False


# --------------------------------------------------------------------------- cache


def _fingerprint(path: Path) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}|{path}".encode())
    if path.is_dir():
        for rel, full in _dir_files(path):
            st = full.stat()
            h.update(f"|{rel}|{st.st_size}|{st.st_mtime_ns}".encode())
    else:
        st = path.stat()
        h.update(f"|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()


def _cache_prefix(path: Path) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", path.name)[:60] or "dataset"
    return f"{safe}-{hashlib.sha256(str(path).encode()).hexdigest()[:8]}-"


def _load_cache(file: Path, where: str) -> ImageSet | None:
    try:
        with np.load(file, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
            classes, name = [str(c) for c in z["classes"]], str(z["name"])
    except Exception:  # noqa: BLE001 — a damaged cache is simply rebuilt
        return None
    if images.dtype != np.uint8 or images.ndim != 4 or labels.shape != (len(images),):
        return None
    return ImageSet(images, labels.astype(np.int64, copy=False), classes, name, where)


def _save_cache(file: Path, ds: ImageSet, prefix: str) -> None:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f"{file.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, images=ds.images, labels=ds.labels, classes=np.array(ds.classes, dtype=str),
                 name=np.array(ds.name))
        os.replace(tmp, file)
        for old in file.parent.glob(prefix + "*.npz"):   # earlier versions of the same source
            if old != file and ".tmp." not in old.name:
                old.unlink(missing_ok=True)
    except OSError as exc:
        print(f"warning: could not write the dataset cache {file}: {exc}", file=sys.stderr)


# --------------------------------------------------------------------------- public API


def load_dataset(path: str | os.PathLike | None = None, *, cache_dir: str | os.PathLike | None = None,
                 progress: bool = True, cache: bool = True) -> ImageSet:
    """Load the whole dataset at ``path`` (format detected); default ``$JSCEC_DATA`` or the CIFAR-10 JPEG copy.

    ``cache=False`` neither reads nor writes the decoded-array cache. Raises ``UserError`` (one line) for
    a missing path or unreadable, malformed or unsupported data.
    """
    origin = "" if path else f" (from ${DATA_ENV})" if os.environ.get(DATA_ENV) else " (the default)"
    path = Path(os.path.abspath(Path(path).expanduser() if path else default_data_path()))
    if not path.exists():
        raise UserError(f"dataset not found: {path}{origin}; pass --data PATH or set {DATA_ENV}")
    where = str(path)
    cache_file = prefix = None
    if cache:
        prefix = _cache_prefix(path)
        cache_file = Path(cache_dir or default_cache_dir()).expanduser() / f"{prefix}{_fingerprint(path)[:16]}.npz"
        if cache_file.is_file():
            ds = _load_cache(cache_file, where)
            if ds is not None:
                return ds
    try:
        members, archive = _members_of(path, progress)
        ds, decoded = _read(members, path, where)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise UserError(f"cannot read {path}: damaged or truncated archive ({type(exc).__name__})") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    if cache_file is not None and (decoded or archive):
        _save_cache(cache_file, ds, prefix)
    return ds


def split_indices(n: int, seed: int = 0, fractions=(0.8, 0.1, 0.1)) -> dict[str, np.ndarray]:
    """A reproducible seeded split of ``range(n)`` into disjoint "train", "val" and "test" index arrays.

    The sizes are round(f·n) for train and val; test takes the rest, so every index is used once.
    """
    f = np.asarray(fractions, dtype=float)
    if f.shape != (3,) or (f < 0).any() or abs(f.sum() - 1.0) > 1e-6:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(round(f[0] * n))
    n_val = min(int(round(f[1] * n)), n - n_train)
    return {"train": perm[:n_train], "val": perm[n_train:n_train + n_val], "test": perm[n_train + n_val:]}


def mean_image(images: np.ndarray) -> np.ndarray:
    """Per-pixel mean of uint8 images in [0, 1] as float32 (H, W, C): Eve's no-information baseline."""
    if len(images) == 0:
        raise ValueError("mean_image of no images")
    acc = np.zeros(images.shape[1:], dtype=np.float64)
    for i in range(0, len(images), 4096):
        acc += images[i:i + 4096].sum(0, dtype=np.float64)
    return (acc / (255.0 * len(images))).astype(np.float32)
