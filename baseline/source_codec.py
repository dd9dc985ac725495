"""Source codecs of the digital baseline: image ↔ *payload* bytes, the container rebuilt from fixed parameters.

A 32×32 image compresses to a few dozen bytes, while its file format's headers weigh far more (a HEIF
file ≈ 410 bytes of boxes, a JPEG 2000 codestream 143 bytes of markers). Only the coded payload goes
over the link; everything else is a function of parameters both ends fix beforehand (image size,
chroma format, bit depth, codec settings) and of the payload's length, so the receiver rebuilds the
container around the payload it received. How, per codec:

* ``heif`` — HEVC intra (x265 via pillow-heif: BPG's codec in a HEIF container). The payload is the
  one coded slice NAL unit without its 2-byte NAL header (``28 01``: IDR_N_LP, layer 0, tid 1). The
  parameter sets (VPS/SPS/PPS in the ``hvcC`` box) and every other box depend only on the image size
  (they are identical at every quality: x265 signals the QP in the slice header), so the receiver
  encodes a blank image of that size once to get a template, and rebuilds the file as template boxes
  + ``mdat`` holding [4-byte NAL length][NAL header][payload], patching the ``mdat`` size and the
  ``iloc`` extent length. The sender checks that its own file equals the rebuilt one byte for byte.
* ``bpg`` — BPG (``bpgenc``/``bpgdec`` on PATH). The payload is ``hevc_header_and_data`` (everything
  after the picture_data_length field; BPG already strips the parameter sets down to a few bytes).
  The receiver writes the fixed header — magic, 4:2:0 / 8-bit / YCbCr (BT.601) / no alpha, extension
  or animation flags, width, height (ue7) — and picture_data_length = len(payload).
* ``jpeg2000`` — JPEG 2000 codestream through Pillow's OpenJPEG (9/7 irreversible, 4 resolution
  levels, one quality layer, rate-controlled by a target size). The main header (SOC … QCD, before
  the first SOT) is identical for every rate; the payload is the single tile-part's data plus the
  EOC marker ``FF D9`` (kept so that the payload ends in a non-zero byte, see below). The receiver
  rebuilds main header + SOT (Psot = 14 + payload − 2) + SOD + payload.

Every payload ends in a non-zero byte (an HEVC slice ends with its RBSP stop bit; the J2K payload ends
with EOC), so a payload padded with zero bytes (the AES block padding) is recovered by stripping
trailing zeros: no length field is sent. ``quality`` is an integer on each codec's own ladder,
higher = more bytes: the pillow-heif quality 0–100 (``heif``), 51 − QP for QP 51…0 (``bpg``), and the
target payload size in bytes, 1–3072 (``jpeg2000``).

No torch here (``radio/`` layering rule).
"""
from __future__ import annotations

import functools
import io
import os
import shutil
import struct
import subprocess
import tempfile

import numpy as np
from PIL import Image

from jscec.errors import UserError

CODECS = ("heif", "bpg", "jpeg2000")


class SourceCodec:
    """image (uint8 H×W×3) ↔ payload bytes at an integer quality (higher = larger payload)."""

    name = "?"
    q_min, q_max = 0, 100

    def encode(self, image: np.ndarray, quality: int) -> bytes:
        raise NotImplementedError

    def decode(self, payload: bytes, shape: tuple[int, int]) -> np.ndarray | None:
        """The image (uint8 H×W×3) the payload decodes to, or None if it does not decode."""
        raise NotImplementedError

    def best_fit(self, image: np.ndarray, capacity_bytes: int) -> tuple[int, bytes] | None:
        """(quality, payload) of the highest quality whose payload fits ``capacity_bytes``; None if none does.

        Binary search on the quality ladder (payload size grows with quality almost always), then a
        step down while the found payload still does not fit.
        """
        lo, hi, best = self.q_min, self.q_max, None
        while lo <= hi:
            mid = (lo + hi) // 2
            p = self.encode(image, mid)
            if len(p) <= capacity_bytes:
                best, lo = (mid, p), mid + 1
            else:
                hi = mid - 1
        return best


# --------------------------------------------------------------------------- ISO BMFF (HEIF) helpers

def _boxes(data: bytes, start: int, end: int):
    """(type, offset, size, header size) of the boxes in data[start:end]."""
    off = start
    while off + 8 <= end:
        size, typ = struct.unpack(">I4s", data[off:off + 8])
        hdr = 8
        if size == 1:
            size, hdr = struct.unpack(">Q", data[off + 8:off + 16])[0], 16
        elif size == 0:
            size = end - off
        if size < hdr or off + size > end:
            raise ValueError("malformed box")
        yield typ.decode("latin-1"), off, size, hdr
        off += size


def _find(data: bytes, path: list[str]) -> tuple[int, int, int]:
    """(offset, size, header) of the box at ``path`` (``meta`` is a full box: 4 more header bytes)."""
    start, end = 0, len(data)
    for depth, name in enumerate(path):
        for typ, off, size, hdr in _boxes(data, start, end):
            if typ == name:
                break
        else:
            raise ValueError(f"no {name} box")
        if depth < len(path) - 1:
            start, end = off + hdr + (4 if name == "meta" else 0), off + size
    return off, size, hdr


NAL_HEADER = b"\x28\x01"   # nal_unit_type 20 (IDR_N_LP), nuh_layer_id 0, nuh_temporal_id_plus1 1


def _open_rebuilt(data: bytes, shape) -> np.ndarray | None:
    """Decode a rebuilt container with Pillow; None when it cannot be read or has another size."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            out = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Exception:  # noqa: BLE001 — any decoder failure means "undecodable"
        return None
    return out if out.shape[:2] == tuple(shape) else None


class HeifCodec(SourceCodec):
    """HEVC intra through pillow-heif, payload = the slice NAL unit's body (see the module docstring)."""

    name = "heif"
    q_min, q_max = 0, 100

    def __init__(self):
        try:
            import pillow_heif
        except ImportError:
            raise UserError("the heif codec needs pillow-heif (pip install pillow-heif)") from None
        pillow_heif.register_heif_opener()

    @staticmethod
    def _file(image: np.ndarray, quality: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="HEIF", quality=int(quality))
        return buf.getvalue()

    @functools.lru_cache(maxsize=8)
    def _template(self, h: int, w: int) -> tuple[bytes, int, int]:
        """(file prefix up to the mdat box, offset of the iloc extent length in it, mdat offset)."""
        f = self._file(np.zeros((h, w, 3), np.uint8), 50)
        moff, msize, mhdr = _find(f, ["mdat"])
        if moff + msize != len(f) or mhdr != 8:
            raise RuntimeError("unexpected HEIF layout from pillow-heif: mdat is not the last box")
        ioff, isize, ihdr = _find(f, ["meta", "iloc"])
        ext = ioff + isize - 4          # one item, one extent: its length is the iloc's last field
        if struct.unpack(">I", f[ext:ext + 4])[0] != msize - 8:
            raise RuntimeError("unexpected HEIF layout from pillow-heif: iloc does not cover mdat")
        return f[:moff], ext, moff

    def _rebuild(self, payload: bytes, shape) -> bytes:
        prefix, ext, moff = self._template(*shape)
        nal = NAL_HEADER + payload
        body = struct.pack(">I", len(nal)) + nal
        head = bytearray(prefix)
        head[ext:ext + 4] = struct.pack(">I", len(body))
        return bytes(head) + struct.pack(">I4s", 8 + len(body), b"mdat") + body

    def encode(self, image, quality):
        f = self._file(image, quality)
        moff, msize, mhdr = _find(f, ["mdat"])
        body = f[moff + mhdr:moff + msize]
        n = struct.unpack(">I", body[:4])[0]
        if n + 4 != len(body) or body[4:6] != NAL_HEADER:
            raise RuntimeError("pillow-heif produced more than one NAL unit or an unexpected NAL type")
        payload = body[6:]
        if self._rebuild(payload, image.shape[:2]) != f:
            raise RuntimeError("the HEIF container depends on more than the fixed parameters; cannot rebuild it")
        return payload

    def decode(self, payload, shape):
        return _open_rebuilt(self._rebuild(payload, shape), shape)


# --------------------------------------------------------------------------- BPG

def _ue7(v: int) -> bytes:
    out = [v & 0x7F]
    v >>= 7
    while v:
        out.append(0x80 | (v & 0x7F))
        v >>= 7
    return bytes(reversed(out))


def _read_ue7(data: bytes, off: int) -> tuple[int, int]:
    v = 0
    for i in range(5):
        b = data[off + i]
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            return v, off + i + 1
    raise ValueError("bad ue7")


BPG_MAGIC = b"BPG\xfb"
# pixel_format 1 (4:2:0) << 5 | alpha1 0 | bit_depth_minus_8 0; color_space 0 (YCbCr BT.601) << 4 | no flags
BPG_FIXED = bytes([1 << 5, 0])


def bpg_available() -> bool:
    return shutil.which("bpgenc") is not None and shutil.which("bpgdec") is not None


class BpgCodec(SourceCodec):
    """BPG via the bpgenc/bpgdec command-line tools; quality = 51 − QP."""

    name = "bpg"
    q_min, q_max = 0, 51

    def __init__(self):
        if not bpg_available():
            raise UserError("codec bpg needs bpgenc and bpgdec on PATH (https://bellard.org/bpg/); "
                            "use --codec heif (the same HEVC intra codec via pillow-heif)")

    @staticmethod
    def _header(shape) -> bytes:
        return BPG_MAGIC + BPG_FIXED + _ue7(shape[1]) + _ue7(shape[0])

    def encode(self, image, quality):
        with tempfile.TemporaryDirectory(prefix="jscec-bpg-") as d:
            src, dst = os.path.join(d, "in.png"), os.path.join(d, "out.bpg")
            Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(src)
            subprocess.run(["bpgenc", "-q", str(51 - int(quality)), "-f", "420", "-b", "8", "-o", dst, src],
                           check=True, capture_output=True)
            f = open(dst, "rb").read()
        head = self._header(image.shape[:2])
        if not f.startswith(head):
            raise RuntimeError("bpgenc wrote a header other than the fixed one (4:2:0, 8 bit, no extensions)")
        length, off = _read_ue7(f, len(head))
        payload = f[off:]
        if length not in (0, len(payload)):
            raise RuntimeError("unexpected BPG picture_data_length")
        return payload

    def decode(self, payload, shape):
        data = self._header(shape) + _ue7(len(payload)) + payload
        try:
            with tempfile.TemporaryDirectory(prefix="jscec-bpg-") as d:
                src, dst = os.path.join(d, "in.bpg"), os.path.join(d, "out.png")
                open(src, "wb").write(data)
                subprocess.run(["bpgdec", "-o", dst, src], check=True, capture_output=True, timeout=30)
                with Image.open(dst) as im:
                    out = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except Exception:  # noqa: BLE001
            return None
        return out if out.shape[:2] == tuple(shape) else None


# --------------------------------------------------------------------------- JPEG 2000

SOT, SOD, EOC = b"\xff\x90", b"\xff\x93", b"\xff\xd9"


class Jpeg2000Codec(SourceCodec):
    """JPEG 2000 codestream via Pillow/OpenJPEG; quality = target payload size in bytes."""

    name = "jpeg2000"
    q_min, q_max = 1, 3072
    RESOLUTIONS = 4

    @classmethod
    def _stream(cls, image: np.ndarray, target_bytes: int) -> bytes:
        h, w = image.shape[:2]
        raw = h * w * image.shape[2]
        total = target_bytes + cls._overhead(h, w)
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(
            buf, format="JPEG2000", no_jp2=True, irreversible=True, quality_mode="rates",
            quality_layers=[max(1.0, raw / total)], num_resolutions=cls.RESOLUTIONS)
        return buf.getvalue()

    @classmethod
    @functools.lru_cache(maxsize=8)
    def _main_header(cls, h: int, w: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(
            buf, format="JPEG2000", no_jp2=True, irreversible=True, quality_mode="rates", quality_layers=[10.0],
            num_resolutions=cls.RESOLUTIONS)
        f = buf.getvalue()
        return f[:f.index(SOT)]

    @classmethod
    def _overhead(cls, h, w) -> int:
        return len(cls._main_header(h, w)) + 12 + 2   # + SOT segment + SOD; EOC is in the payload

    def _rebuild(self, payload: bytes, shape) -> bytes:
        head = self._main_header(*shape)
        sot = SOT + struct.pack(">HHIBB", 10, 0, 12 + 2 + len(payload) - 2, 0, 1)
        return head + sot + SOD + payload

    def encode(self, image, quality):
        f = self._stream(image, int(quality))
        head = self._main_header(*image.shape[:2])
        if not f.startswith(head + SOT) or not f.endswith(EOC):
            raise RuntimeError("OpenJPEG wrote a main header other than the fixed one; cannot rebuild it")
        sod = f.index(SOD, len(head))
        payload = f[sod + 2:]
        if self._rebuild(payload, image.shape[:2]) != f:
            raise RuntimeError("OpenJPEG wrote more than one tile-part; cannot rebuild the codestream")
        return payload

    def decode(self, payload, shape):
        return _open_rebuilt(self._rebuild(payload, shape), shape)


def get_codec(name: str) -> SourceCodec:
    """The codec called ``name`` (``heif``, ``bpg`` or ``jpeg2000``); UserError if unknown or unavailable."""
    if name == "heif":
        return HeifCodec()
    if name == "bpg":
        return BpgCodec()
    if name == "jpeg2000":
        return Jpeg2000Codec()
    raise UserError(f"unknown codec {name!r}: choose one of {', '.join(CODECS)}")


def strip_padding(data: bytes) -> bytes:
    """Undo zero-byte padding (payloads end in a non-zero byte)."""
    return bytes(data).rstrip(b"\x00")
