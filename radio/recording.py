"""SigMF recordings: write IQ captures as they stream in, read them back cheaply for replay.

Files follow SigMF 1.2 (the ``sigmf`` package validates them): ``<base>.sigmf-data`` holds the
samples, ``<base>.sigmf-meta`` the JSON metadata. What we write:

* global: ``core:datatype`` = ``cf32_le`` (little-endian complex64, what GNU Radio's complex
  ``file_sink`` writes on x86), ``core:sample_rate``, ``core:version``, ``core:hw`` and
  ``core:recorder``, our extension declared in ``core:extensions`` as ``jscec`` with
  ``jscec:version`` (software version), ``jscec:rx_gain_db``/``jscec:tx_gain_db``/
  ``jscec:gain_mode`` and ``jscec:device`` (the device's ``describe()``), plus caller fields
  (``description``/``author``/``license`` become ``core:`` fields, other plain keys go to the
  ``jscec:`` namespace). Never put keys or seeds here.
* captures: one segment at sample 0 and one more per ``retune()``, each with ``core:frequency``,
  ``core:datetime`` and the gains then in force.
* annotations: ``annotate(start, length, label=..., **fields)``; ``label``/``comment`` become
  ``core:label``/``core:comment``, other fields ``jscec:<name>`` (e.g. frame counter, MER).

Writing is atomic: samples go to a hidden temporary file beside the target, and ``close()``
validates the metadata and renames both into place; ``abort()`` (or an exception inside a
``with`` block) removes the temporaries, so no partial recording is ever left behind.

Reading (:func:`open_recording`) accepts ``cf32_le`` and ``ci16_le`` (scaled by 1/32768 to
float) single-channel recordings and refuses, with a one-line ``UserError``, metadata that is not
JSON or does not validate, other datatypes, a missing data file, a data file whose size is not a
whole number of samples, and captures or annotations beyond the end of the data. Samples are
memory-mapped: ``cf32_le`` chunks are read-only views, not copies.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np

from jscec.errors import UserError

META_EXT = ".sigmf-meta"
DATA_EXT = ".sigmf-data"
NAMESPACE = "jscec"
SUPPORTED_DATATYPES = {"cf32_le": ("<c8", 8), "ci16_le": ("<i2", 4)}
CI16_SCALE = 1.0 / 32768.0
_CORE_GLOBAL_FIELDS = {"description", "author", "license"}
_CORE_ANNOTATION_FIELDS = {"label", "comment", "freq_lower_edge", "freq_upper_edge", "generator", "uuid"}


def software_version() -> str:
    try:
        from importlib.metadata import version  # noqa: PLC0415
        return version("deepjscec-hil")
    except Exception:
        return "unknown"


def _split_base(path) -> Path:
    p = Path(path)
    if p.name.endswith(META_EXT) or p.name.endswith(DATA_EXT):
        return p.with_name(p.name.rsplit(".", 1)[0])
    return p


def _ns(key: str) -> str:
    return key if ":" in key else f"{NAMESPACE}:{key}"


def _json_value(key: str, value):
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"SigMF field {key} must be finite, got {value}")
    try:
        json.dumps(value)
    except TypeError:
        raise ValueError(f"SigMF field {key} is not JSON-serialisable: {type(value).__name__}") from None
    return value


def _now() -> str:
    from sigmf.utils import get_sigmf_iso8601_datetime_now  # noqa: PLC0415
    return get_sigmf_iso8601_datetime_now()


def _validate(meta: dict) -> None:
    """Validate against the SigMF schema; raise UserError with the first problem."""
    import jsonschema  # noqa: PLC0415  (a dependency of sigmf)
    from sigmf import validate as sigmf_validate  # noqa: PLC0415
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            sigmf_validate.validate(meta)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "top level"
            raise UserError(f"{where}: {exc.message.splitlines()[0][:200]}") from None


class RecordingWriter:
    """Stream ``cf32_le`` samples into ``<base>.sigmf-data`` and write ``<base>.sigmf-meta`` at close.

    ``device_description`` is a device's ``describe()``; ``extra_global`` adds global fields
    (``core:`` keys are kept, plain keys go to the ``jscec:`` namespace). Use as a context
    manager: leaving the block normally closes, leaving it by an exception aborts.
    """

    def __init__(self, path_base, sample_rate: float, center_freq: float,
                 device_description: dict | None = None, extra_global: dict | None = None,
                 *, overwrite: bool = False):
        if not sample_rate > 0:
            raise ValueError(f"sample rate must be positive, got {sample_rate}")
        base = _split_base(path_base)
        self.meta_path = base.with_name(base.name + META_EXT)
        self.data_path = base.with_name(base.name + DATA_EXT)
        if not overwrite:
            for p in (self.meta_path, self.data_path):
                if p.exists():
                    raise UserError(f"{p} already exists (choose another name or allow overwriting)")
        if not base.parent.is_dir():
            raise UserError(f"cannot record into {base.parent}: no such directory")
        tag = f".{os.getpid()}.{id(self):x}.tmp"
        self._tmp_data = base.with_name(f".{base.name}{DATA_EXT}{tag}")
        self._tmp_meta = base.with_name(f".{base.name}{META_EXT}{tag}")
        self.sample_rate = float(sample_rate)
        desc = dict(device_description or {})
        self._global = self._global_fields(desc, extra_global or {})
        self._gains = {k: desc[k] for k in ("rx_gain_db", "tx_gain_db", "gain_mode") if k in desc}
        self._captures: list[dict] = []
        self._annotations: list[dict] = []
        self.count = 0
        self._file = open(self._tmp_data, "wb")
        self._done = False
        try:
            self.retune(center_freq)
        except BaseException:   # (interrupted too) the caller never gets the writer to abort: do it here
            self.abort()
            raise

    def _global_fields(self, desc: dict, extra: dict) -> dict:
        from sigmf import __specification__  # noqa: PLC0415
        g = {
            "core:datatype": "cf32_le",
            "core:sample_rate": self.sample_rate,
            "core:version": __specification__,
            "core:num_channels": 1,
            "core:recorder": "jscec",
            "core:hw": str(desc.get("hw") or desc.get("device") or "unknown"),
            "core:extensions": [{"name": NAMESPACE, "version": software_version(), "optional": True}],
            f"{NAMESPACE}:version": software_version(),
        }
        for key in ("rx_gain_db", "tx_gain_db", "gain_mode"):
            if key in desc:
                g[f"{NAMESPACE}:{key}"] = _json_value(key, desc[key])
        if desc:
            g[f"{NAMESPACE}:device"] = _json_value("device", desc)
        for key, value in extra.items():
            if key.startswith("core:") or key.startswith(f"{NAMESPACE}:"):
                g[key] = _json_value(key, value)
            elif ":" in key:
                raise ValueError(f"global field {key}: only core: and {NAMESPACE}: keys are allowed")
            elif key in _CORE_GLOBAL_FIELDS:
                g[f"core:{key}"] = _json_value(key, value)
            else:
                g[_ns(key)] = _json_value(key, value)
        return g

    # -- streaming -------------------------------------------------------------------------------
    def write(self, samples) -> None:
        """Append samples (any complex array; stored as little-endian complex64)."""
        self._check_open()
        x = np.asarray(samples)
        if x.ndim != 1:
            raise ValueError(f"write() takes a 1-D array, got shape {x.shape}")
        x = np.ascontiguousarray(x, dtype="<c8")
        self._file.write(x.data)
        self.count += x.size

    def retune(self, center_freq: float, *, rx_gain_db: float | None = None,
               tx_gain_db: float | None = None, **fields) -> None:
        """Start a new capture segment at the current sample index."""
        self._check_open()
        if rx_gain_db is not None:
            self._gains["rx_gain_db"] = float(rx_gain_db)
        if tx_gain_db is not None:
            self._gains["tx_gain_db"] = float(tx_gain_db)
        cap = {"core:sample_start": self.count, "core:frequency": float(center_freq), "core:datetime": _now()}
        for key, value in self._gains.items():
            cap[f"{NAMESPACE}:{key}"] = _json_value(key, value)
        for key, value in fields.items():
            cap[_ns(key)] = _json_value(key, value)
        if self._captures and self._captures[-1]["core:sample_start"] == self.count:
            self._captures[-1] = cap  # nothing recorded under the previous tuning
        else:
            self._captures.append(cap)

    def annotate(self, start: int, length: int, label: str | None = None, **fields) -> None:
        """Annotate samples [start, start + length); must lie within the data at ``close()``."""
        self._check_open()
        if int(start) != start or start < 0 or int(length) != length or length < 0:
            raise ValueError(f"annotation needs non-negative integer start/length, got {start}, {length}")
        ann = {"core:sample_start": int(start), "core:sample_count": int(length)}
        if label is not None:
            ann["core:label"] = str(label)
        for key, value in fields.items():
            full = f"core:{key}" if key in _CORE_ANNOTATION_FIELDS else _ns(key)
            ann[full] = _json_value(key, value)
        self._annotations.append(ann)

    # -- finishing -------------------------------------------------------------------------------
    def metadata(self) -> dict:
        return {
            "global": dict(self._global),
            "captures": list(self._captures),
            "annotations": sorted(self._annotations, key=lambda a: a["core:sample_start"]),
        }

    def close(self) -> Path:
        """Validate, write the metadata and move both files into place; return the .sigmf-meta path."""
        self._check_open()
        try:
            meta = self.metadata()
            for a in meta["annotations"]:
                if a["core:sample_start"] + a["core:sample_count"] > self.count:
                    raise UserError(f"annotation at sample {a['core:sample_start']} runs past the "
                                    f"{self.count} samples recorded")
            try:
                _validate(meta)
            except UserError as exc:
                raise UserError(f"recording metadata does not validate: {exc}") from None
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            with open(self._tmp_meta, "w", encoding="utf-8") as f:
                json.dump(meta, f, indent=2)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(self._tmp_data, self.data_path)
            os.replace(self._tmp_meta, self.meta_path)
        except BaseException:
            self.abort()
            raise
        self._done = True
        return self.meta_path

    def abort(self) -> None:
        """Discard everything written; leaves no file behind. Safe to call more than once."""
        self._done = True
        try:
            self._file.close()
        except Exception:
            pass
        for p in (self._tmp_data, self._tmp_meta):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def _check_open(self):
        if getattr(self, "_done", False):
            raise ValueError("recording already closed or aborted")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._done:
            return False
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


class Recording:
    """A validated SigMF recording opened for reading (use :func:`open_recording`)."""

    def __init__(self, meta_path: Path, data_path: Path, meta: dict, datatype: str, num_samples: int):
        self.meta_path, self.data_path = meta_path, data_path
        self.global_info: dict = meta["global"]
        self.captures: list[dict] = list(meta.get("captures") or [{"core:sample_start": 0}])
        self.annotations: list[dict] = list(meta.get("annotations") or [])
        self.datatype = datatype
        self.num_samples = num_samples
        self.sample_rate = float(self.global_info.get("core:sample_rate") or 0.0)
        freq = self.captures[0].get("core:frequency") if self.captures else None
        self.center_freq = None if freq is None else float(freq)
        np_dtype = SUPPORTED_DATATYPES[datatype][0]
        if num_samples == 0:
            self._mm = np.zeros((0,) if datatype == "cf32_le" else (0, 2), np_dtype)
        elif datatype == "cf32_le":
            self._mm = np.memmap(data_path, dtype=np_dtype, mode="r", shape=(num_samples,))
        else:
            self._mm = np.memmap(data_path, dtype=np_dtype, mode="r", shape=(num_samples, 2))

    def __len__(self) -> int:
        return self.num_samples

    def samples(self, start: int = 0, count: int | None = None) -> np.ndarray:
        """Samples [start, start + count) as complex64 (clipped at the end; cf32: a read-only view)."""
        if start < 0 or (count is not None and count < 0):
            raise ValueError(f"bad sample range start={start} count={count}")
        stop = self.num_samples if count is None else min(self.num_samples, start + count)
        start = min(start, stop)
        raw = self._mm[start:stop]
        if self.datatype == "cf32_le":
            return raw
        out = np.empty(stop - start, np.complex64)
        out.real = raw[:, 0] * np.float32(CI16_SCALE)
        out.imag = raw[:, 1] * np.float32(CI16_SCALE)
        return out

    def chunks(self, size: int, start: int = 0, stop: int | None = None):
        """Yield ``(sample_index, samples)`` for consecutive chunks of at most ``size`` samples."""
        if size <= 0:
            raise ValueError("chunk size must be positive")
        stop = self.num_samples if stop is None else min(stop, self.num_samples)
        for k in range(start, stop, size):
            yield k, self.samples(k, min(size, stop - k))

    def __iter__(self):
        return (chunk for _, chunk in self.chunks(65536))

    def capture_at(self, index: int) -> dict:
        """The capture segment in force at sample ``index``."""
        seg = self.captures[0]
        for cap in self.captures:
            if cap.get("core:sample_start", 0) <= index:
                seg = cap
        return seg

    def close(self) -> None:
        mm, self._mm = self._mm, None
        if isinstance(mm, np.memmap) and mm._mmap is not None:
            mm._mmap.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def open_recording(path) -> Recording:
    """Open ``x.sigmf-meta`` (or ``x.sigmf-data`` or the base ``x``); refuse malformed input."""
    base = _split_base(path)
    meta_path = base.with_name(base.name + META_EXT)
    data_path = base.with_name(base.name + DATA_EXT)
    name = meta_path.name
    if not meta_path.is_file():
        raise UserError(f"no SigMF metadata file {meta_path}")
    try:
        with open(meta_path, "rb") as f:
            meta = json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{name} is not valid JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("global"), dict):
        raise UserError(f"{name} is not SigMF metadata (no 'global' object)")
    try:
        _validate(meta)
    except UserError as exc:
        raise UserError(f"{name} does not validate against SigMF: {exc}") from None
    g = meta["global"]
    datatype = g.get("core:datatype")
    if datatype not in SUPPORTED_DATATYPES:
        raise UserError(f"{name}: datatype {datatype} is not supported (use {' or '.join(SUPPORTED_DATATYPES)})")
    if int(g.get("core:num_channels", 1)) != 1:
        raise UserError(f"{name}: only single-channel recordings are supported")
    if g.get("core:metadata_only"):
        raise UserError(f"{name} is a metadata-only recording: there are no samples to replay")
    if g.get("core:dataset"):
        raise UserError(f"{name}: non-conforming datasets (core:dataset) are not supported")
    if g.get("core:trailing_bytes") or any(c.get("core:header_bytes") for c in meta.get("captures", [])):
        raise UserError(f"{name}: header/trailing bytes in the data file are not supported")
    if not g.get("core:sample_rate"):
        raise UserError(f"{name}: core:sample_rate is missing")
    if not data_path.is_file():
        raise UserError(f"{name}: data file {data_path.name} is missing")
    size = data_path.stat().st_size
    sample_size = SUPPORTED_DATATYPES[datatype][1]
    if size % sample_size:
        raise UserError(f"{data_path.name}: {size} bytes is not a whole number of {datatype} samples "
                        f"({sample_size} bytes each); the file is truncated or not {datatype}")
    n = size // sample_size
    for cap in meta.get("captures", []):
        start = cap["core:sample_start"]
        if start > n or (start == n and n > 0):
            raise UserError(f"{name}: capture at sample {start} lies beyond the {n} samples in {data_path.name}")
    for ann in meta.get("annotations", []):
        end = ann["core:sample_start"] + ann.get("core:sample_count", 0)
        if end > n:
            raise UserError(f"{name}: annotation ending at sample {end} lies beyond the {n} samples "
                            f"in {data_path.name}")
    return Recording(meta_path, data_path, meta, datatype, n)
