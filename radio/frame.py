"""The link's frame: preamble, coded header, payload with interleaved pilots, lwe-pk d block, postamble.

Layout (symbols, all unit power except the guard)::

    | preamble 127 | data region: header 432 · payload L · d block · tag block, a pilot every 16th | postamble 32 | guard 32 |

* **Preamble**: 127 QPSK symbols cut from the PRBS15 sequence (x¹⁵ + x¹⁴ + 1) at a fixed offset.
  The receiver detects it CFO-blind through its differential sequence p_k·conj(p_{k−1})
  (``radio.sync``). Not an m-sequence of period 127 on purpose: the shift-and-add property of a short
  m-sequence makes the half-symbol products of its own matched-filter output correlate with its
  differential sequence, and the detector then fires several symbols early.
* **Header** (:class:`FrameHeader`): 184 bits + CRC-32 = 216 bits, 18 extended-Golay(24,12) words
  (minimum distance 8, soft-decision ML decoded by correlation with all 4096 codewords), whitened and
  sent in BPSK: 432 symbols that decode reliably near 0 dB, far below what the payload needs.
* **Payload**: any complex symbols the caller mapped (4096-QAM ciphertext, Gray QAM for the digital
  baseline); the header names the constellation.
* **d block** (``lwe-pk`` only): d ∈ Z_p^{n2} as 12-bit words + CRC-32, Golay(24,12), whitened, QPSK.
* **Tag block** (header version 2, :data:`VERSION_AUTH`: authenticated frames of ``lwe`` and ``mask``,
  :mod:`crypto.frame_auth`): the 64-bit MAC tag + CRC-16/CCITT-FALSE of the tag + 4 zero bits = 84 bits,
  7 Golay(24,12) words, whitened, BPSK like the header (168 symbols: as robust as the header, so a frame
  whose header decodes almost always has its tag). Version-1 frames have none (the format before
  authentication; recordings made with it still replay).
* **Pilots**: one known QPSK symbol before every 15 data symbols of the data region (header included,
  so the header can be phase-tracked before it is decoded).
* **Postamble**: 32 known QPSK symbols; with the preamble it pins the timing drift (sample-rate
  offset) and the phase at both ends of the frame.
* **Guard**: zeros that flush the pulse-shaping filters when the transmitter falls idle.
"""
from __future__ import annotations

import binascii
import zlib
from dataclasses import dataclass, field, fields
from functools import cached_property, lru_cache

import numpy as np

from crypto.zp import P

#: Header format version carried in the header: 1, no tag block (every frame before authentication, and
#: frames of modes without a shared secret); 2 (:data:`VERSION_AUTH`), a tag block follows the d block.
VERSION = 1
VERSION_AUTH = 2
VERSIONS = (VERSION, VERSION_AUTH)
#: The tag block: a truncated MAC tag (crypto.frame_auth.TAG_BYTES), CRC-16, padding to whole Golay words.
TAG_BYTES = 8
TAG_CRC_BITS = 16
TAG_INFO_BITS = 84
assert TAG_INFO_BITS % 12 == 0 and TAG_INFO_BITS >= 8 * TAG_BYTES + TAG_CRC_BITS
MODES = ("lwe", "lwe-pk", "mask", "none")
#: Payload constellations the header can name ("raw": anything else the endpoints agree on).
CONSTELLATIONS = ("zp4096", "bpsk", "qpsk", "qam16", "qam64", "qam256", "qam1024", "qam4096",
                  "raw")
_CONST_CODE = {name: i for i, name in enumerate(CONSTELLATIONS[:-1])}
_CONST_CODE["raw"] = 15

# (name, bits) in transmission order; 184 bits in all, then CRC-32.
_HEADER_FIELDS = (("version", 4), ("counter", 32), ("mode", 2), ("key_id", 32), ("model_id", 16),
                  ("constellation", 4), ("payload_len", 12), ("image_index", 16),
                  ("chunk_index", 12), ("chunk_count", 12), ("height", 12), ("width", 12),
                  ("d_len", 10), ("reserved", 8))
HEADER_INFO_BITS = sum(b for _, b in _HEADER_FIELDS)
HEADER_BITS = HEADER_INFO_BITS + 32
assert HEADER_INFO_BITS % 8 == 0, "FrameHeader.from_bits reads the fields and the CRC as whole bytes"
MAX_PAYLOAD = (1 << 12) - 1
MAX_D_LEN = (1 << 10) - 1
D_BITS_PER_VALUE = 12


class HeaderError(ValueError):
    """A received header failed its CRC or carries values this receiver cannot use."""


# ---------------------------------------------------------------------------------------------------
# Sequences
# ---------------------------------------------------------------------------------------------------

def lfsr_bits(degree: int, feedback: tuple[int, ...], n: int, state: int | None = None) -> np.ndarray:
    """``n`` output bits (uint8) of the Fibonacci LFSR with polynomial x^degree + Σ x^f + 1.

    ``feedback`` lists the exponents f (besides ``degree``); the state starts all ones by default.
    """
    reg = [1] * degree if state is None else [(state >> i) & 1 for i in range(degree)]
    out = np.empty(n, dtype=np.uint8)
    taps = [degree - 1] + [f - 1 for f in feedback]
    for i in range(n):
        bit = 0
        for t in taps:
            bit ^= reg[t]
        out[i] = reg[-1]
        reg = [bit] + reg[:-1]
    return out


def bits_to_qpsk(bits: np.ndarray) -> np.ndarray:
    """Pairs of bits → unit-power QPSK (bit 0 → +, first bit on I), complex64."""
    b = np.asarray(bits, dtype=np.float32).reshape(-1, 2)
    return ((1 - 2 * b[:, 0]) + 1j * (1 - 2 * b[:, 1])).astype(np.complex64) / np.float32(np.sqrt(2))


def qpsk_llr(y: np.ndarray, noise_var: float) -> np.ndarray:
    """Bit LLRs (log P(0)/P(1)) of :func:`bits_to_qpsk` symbols, interleaved (I, Q) per symbol."""
    y = np.asarray(y)
    out = np.empty((y.size, 2), dtype=np.float64)
    scale = 2 * np.sqrt(2) / noise_var
    out[:, 0] = y.real * scale
    out[:, 1] = y.imag * scale
    return out.reshape(-1)


# ---------------------------------------------------------------------------------------------------
# Extended Golay (24, 12)
# ---------------------------------------------------------------------------------------------------

class Golay24:
    """The extended binary Golay code, systematic ([info | parity]), soft-decision ML decoding."""

    _GEN = 0b110001110101  # x^11 + x^10 + x^6 + x^5 + x^4 + x^2 + 1 of the cyclic (23, 12) code

    def __init__(self):
        msgs = np.arange(4096, dtype=np.int64)
        parity = np.zeros(4096, dtype=np.int64)
        for i, m in enumerate(msgs):
            r = int(m) << 11
            for b in range(22, 10, -1):
                if (r >> b) & 1:
                    r ^= self._GEN << (b - 11)
            parity[i] = r
        words = (msgs << 12) | (parity << 1)
        bits = (words[:, None] >> np.arange(23, -1, -1)[None, :]) & 1
        bits[:, 23] = bits[:, :23].sum(axis=1) & 1  # overall (even) parity
        self.codewords = bits.astype(np.uint8)  # (4096, 24), row m = codeword of message m
        self._bipolar = (1.0 - 2.0 * self.codewords).astype(np.float32).T.copy()  # (24, 4096)
        self._weights = 1 << np.arange(11, -1, -1)

    def encode(self, bits: np.ndarray) -> np.ndarray:
        """Info bits (size a multiple of 12) → coded bits (uint8, 2× as many)."""
        b = np.asarray(bits, dtype=np.int64).reshape(-1, 12)
        return self.codewords[b @ self._weights].reshape(-1)

    def decode(self, llr: np.ndarray, margins: bool = False):
        """Coded-bit LLRs (log P(0)/P(1), size a multiple of 24) → info bits (uint8).

        ML: the codeword maximising Σ llr·(1 − 2c). With ``margins`` also returns, per word, the best
        minus the second-best correlation (≥ 0), a reliability measure.
        """
        lw = np.asarray(llr, dtype=np.float32).reshape(-1, 24)
        if not margins:
            # The hard decision maximises Σ llr·(1 − 2b) over all words b: where it is a codeword it is
            # the ML codeword, and only the other words need the correlation with all 4096.
            hard = (lw < 0).astype(np.uint8)
            best = hard[:, :12].astype(np.int64) @ self._weights
            bad = np.flatnonzero((self.codewords[best] != hard).any(axis=1))
            if bad.size:
                best[bad] = np.argmax(lw[bad] @ self._bipolar, axis=1)
            return self.codewords[best, :12].reshape(-1)
        corr = lw @ self._bipolar
        best = np.argmax(corr, axis=1)
        info = self.codewords[best, :12].reshape(-1)
        rows = np.arange(len(best))
        top = corr[rows, best]
        corr[rows, best] = -np.inf
        return info, top - corr.max(axis=1)


@lru_cache(maxsize=1)
def golay() -> Golay24:
    """The shared :class:`Golay24` instance (its codebook takes a few ms to build)."""
    return Golay24()


def _crc32_bits(bits: np.ndarray) -> np.ndarray:
    crc = zlib.crc32(np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()) & 0xFFFFFFFF
    return ((crc >> np.arange(31, -1, -1)) & 1).astype(np.uint8)


def _int_bits(value: int, n: int) -> np.ndarray:
    """The ``n`` low bits of ``value``, MSB first (uint8), for any size of integer."""
    raw = np.unpackbits(np.frombuffer(int(value).to_bytes((n + 7) // 8, "big"), dtype=np.uint8))
    return raw[raw.size - n:]


# ---------------------------------------------------------------------------------------------------
# Header
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FrameHeader:
    """Everything a receiver needs to place a frame: cipher nonce, keys, model, image and chunk.

    ``counter`` is the frame counter, which is also the cipher nonce (32 bits). ``key_id`` is the
    cipher's 8-hex-digit key id (``CipherKeys.key_id``), given as that string or as an int.
    ``payload_len`` and ``d_len`` (d values in the lwe-pk block) are filled in by :func:`build_frame`.
    """

    counter: int
    mode: str = "lwe"
    key_id: int | str = 0
    model_id: int = 0
    constellation: str = "zp4096"
    payload_len: int = 0
    image_index: int = 0
    chunk_index: int = 0
    chunk_count: int = 1
    height: int = 0
    width: int = 0
    d_len: int = 0
    version: int = VERSION
    reserved: int = field(default=0, repr=False)

    def __post_init__(self):
        if self.version not in VERSIONS:
            raise ValueError(f"header version must be one of {VERSIONS}, got {self.version!r}")
        kid = self.key_id
        if isinstance(kid, str):
            try:
                kid = int(kid, 16)
            except ValueError:
                raise ValueError(f"key_id must be 8 hex digits, got {self.key_id!r}") from None
        object.__setattr__(self, "key_id", int(kid))
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.constellation not in CONSTELLATIONS:
            raise ValueError(f"constellation must be one of {CONSTELLATIONS}, got {self.constellation!r}")
        for name, nbits in _HEADER_FIELDS:
            if name in ("mode", "constellation"):
                continue
            v = getattr(self, name)
            if int(v) != v or not 0 <= int(v) < (1 << nbits):
                raise ValueError(f"header field {name} must be an integer in [0, 2^{nbits}), got {v!r}")
            object.__setattr__(self, name, int(v))

    @property
    def key_id_hex(self) -> str:
        return f"{self.key_id:08x}"

    @property
    def tagged(self) -> bool:
        """Whether the frame carries a tag block (header version 2)."""
        return self.version == VERSION_AUTH

    def info_bytes(self) -> bytes:
        """The 184 field bits packed into 23 bytes (MSB first): what the CRC-32 and the MAC tag cover."""
        return np.packbits(self.to_bits()[:HEADER_INFO_BITS]).tobytes()

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "reserved"}
        d["key_id"] = self.key_id_hex
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FrameHeader":
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in fields(cls)}})

    def to_bits(self) -> np.ndarray:
        """The 216 header bits: fields MSB first, then CRC-32 (zlib) of the packed fields."""
        word = 0   # all fields as one integer, first field in the high bits
        for name, nbits in _HEADER_FIELDS:
            v = getattr(self, name)
            if name == "mode":
                v = MODES.index(v)
            elif name == "constellation":
                v = _CONST_CODE[v]
            word = (word << nbits) | int(v)
        info = _int_bits(word, HEADER_INFO_BITS)
        return np.concatenate([info, _crc32_bits(info)])

    @classmethod
    def from_bits(cls, bits: np.ndarray) -> "FrameHeader":
        """Inverse of :meth:`to_bits`; raises :class:`HeaderError` on a CRC failure or bad field."""
        bits = np.asarray(bits, dtype=np.uint8).reshape(-1)
        if bits.size != HEADER_BITS:
            raise HeaderError(f"a header has {HEADER_BITS} bits, got {bits.size}")
        packed = np.packbits(bits).tobytes()     # HEADER_INFO_BITS and the CRC are whole bytes
        info = packed[:HEADER_INFO_BITS // 8]
        if zlib.crc32(info) & 0xFFFFFFFF != int.from_bytes(packed[HEADER_INFO_BITS // 8:], "big"):
            raise HeaderError("header CRC mismatch")
        vals, word, shift = {}, int.from_bytes(info, "big"), HEADER_INFO_BITS
        for name, nbits in _HEADER_FIELDS:
            shift -= nbits
            vals[name] = (word >> shift) & ((1 << nbits) - 1)
        if vals["version"] not in VERSIONS:
            raise HeaderError(f"unsupported header version {vals['version']}")
        if vals["mode"] >= len(MODES):
            raise HeaderError("bad cipher mode")
        vals["mode"] = MODES[vals["mode"]]
        names = {v: k for k, v in _CONST_CODE.items()}
        if vals["constellation"] not in names:
            raise HeaderError("unknown payload constellation")
        vals["constellation"] = names[vals["constellation"]]
        try:
            return cls(**vals)
        except ValueError as e:
            raise HeaderError(str(e)) from None


# ---------------------------------------------------------------------------------------------------
# Frame format and layout
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FrameLayout:
    """Symbol indices of each part of one frame (relative to the first preamble symbol)."""

    total: int            # symbols including the guard
    preamble: slice
    header: np.ndarray    # positions of the 432 header symbols
    payload: np.ndarray
    d_block: np.ndarray
    tag_block: np.ndarray  # positions of the 168 tag-block symbols (empty in a version-1 frame)
    pilots: np.ndarray
    postamble: slice
    guard: slice

    @property
    def data_end(self) -> int:
        return self.postamble.start


@dataclass(frozen=True)
class FrameFormat:
    """The fixed parts of the frame that transmitter and receiver must agree on."""

    pilot_spacing: int = 16
    postamble_len: int = 32
    guard: int = 32

    def __post_init__(self):
        if not 4 <= self.pilot_spacing <= 256:
            raise ValueError(f"pilot_spacing must lie in [4, 256], got {self.pilot_spacing}")
        if not 8 <= self.postamble_len <= 1024:
            raise ValueError(f"postamble_len must lie in [8, 1024], got {self.postamble_len}")
        if not 0 <= self.guard <= 4096:
            raise ValueError(f"guard must lie in [0, 4096], got {self.guard}")

    # -- known sequences -------------------------------------------------------------------------
    @cached_property
    def preamble(self) -> np.ndarray:
        """127 QPSK symbols (complex64): PRBS15 bits 7500..7753 (an offset chosen for low sidelobes
        of the detection metric; pilots and postamble use other parts of the sequence)."""
        p = bits_to_qpsk(self._pn15[7500:7754])
        p.setflags(write=False)
        return p

    @cached_property
    def _pn15(self) -> np.ndarray:
        return lfsr_bits(15, (14,), 1 << 15)

    def pilot_symbols(self, n: int) -> np.ndarray:
        """The first ``n`` pilot symbols (QPSK)."""
        bits = self._pn15
        need = 2 * n
        reps = -(-need // bits.size)
        return bits_to_qpsk(np.tile(bits, reps)[:need])

    @cached_property
    def postamble(self) -> np.ndarray:
        p = bits_to_qpsk(self._pn15[-2 * self.postamble_len:])
        p.setflags(write=False)
        return p

    @cached_property
    def _whitening(self) -> np.ndarray:
        return lfsr_bits(9, (5,), 511)

    def whiten(self, bits: np.ndarray) -> np.ndarray:
        """XOR with the PRBS9 sequence (self-inverse)."""
        w = self._whitening
        n = bits.size
        return bits ^ np.tile(w, -(-n // w.size))[:n]

    def whiten_llr(self, llr: np.ndarray) -> np.ndarray:
        return llr * self._whitening_signs(llr.size)

    @lru_cache(maxsize=8)
    def _whitening_signs(self, n: int) -> np.ndarray:
        """±1.0 (float64) for the first ``n`` whitening bits (0 → +1)."""
        w = self._whitening
        signs = 1.0 - 2.0 * np.tile(w, -(-n // w.size))[:n]
        signs.setflags(write=False)
        return signs

    # -- sizes -----------------------------------------------------------------------------------
    @property
    def preamble_len(self) -> int:
        return 127

    @property
    def header_symbols(self) -> int:
        return 2 * HEADER_BITS

    @staticmethod
    def d_info_bits(d_len: int) -> int:
        n = d_len * D_BITS_PER_VALUE + 32
        return -(-n // 12) * 12

    def d_symbols(self, d_len: int) -> int:
        """QPSK symbols of a d block carrying ``d_len`` values (0 when there is none)."""
        return 0 if d_len == 0 else self.d_info_bits(d_len)  # 2 coded bits per info bit, 2 per symbol

    @property
    def tag_symbols(self) -> int:
        """BPSK symbols of a tag block (2 coded bits per info bit, one per symbol)."""
        return 2 * TAG_INFO_BITS

    def data_len(self, payload_len: int, d_len: int, tagged: bool = False) -> int:
        """Symbols in the data region (data and pilots)."""
        n = self.header_symbols + payload_len + self.d_symbols(d_len) + (self.tag_symbols if tagged else 0)
        return n + -(-n // (self.pilot_spacing - 1))

    def header_region_len(self) -> int:
        """Data-region symbols up to and including the last header symbol."""
        n = self.header_symbols
        full, rem = divmod(n, self.pilot_spacing - 1)
        return full * self.pilot_spacing + (rem + 1 if rem else 0)

    def frame_len(self, payload_len: int, d_len: int = 0, tagged: bool = False) -> int:
        return self.preamble_len + self.data_len(payload_len, d_len, tagged) + self.postamble_len + self.guard

    def layout(self, payload_len: int, d_len: int = 0, tagged: bool = False) -> FrameLayout:
        return _layout(self, int(payload_len), int(d_len), bool(tagged))

    def layout_of(self, header: FrameHeader) -> FrameLayout:
        """The layout of the frame ``header`` heads (its payload and d lengths, a tag block if version 2)."""
        return _layout(self, header.payload_len, header.d_len, header.tagged)

    # -- header and d block coding ---------------------------------------------------------------
    def header_to_symbols(self, header: FrameHeader) -> np.ndarray:
        coded = self.whiten(golay().encode(header.to_bits()))
        return (1.0 - 2.0 * coded.astype(np.float32)).astype(np.complex64)

    def decode_header(self, llr: np.ndarray) -> FrameHeader:
        """Header-symbol LLRs (432, log P(0)/P(1)) → header; raises :class:`HeaderError`."""
        return FrameHeader.from_bits(golay().decode(self.whiten_llr(np.asarray(llr, dtype=np.float64))))

    def d_to_symbols(self, d) -> np.ndarray:
        d = np.asarray(d)
        if d.ndim != 1 or d.size == 0 or d.size > MAX_D_LEN:
            raise ValueError(f"d must be a 1-D array of 1..{MAX_D_LEN} values")
        if d.dtype.kind not in "iu" or d.min() < 0 or d.max() >= 1 << D_BITS_PER_VALUE:
            raise ValueError(f"d values must be integers in [0, {1 << D_BITS_PER_VALUE})")
        bits = ((d.astype(np.int64)[:, None] >> np.arange(D_BITS_PER_VALUE - 1, -1, -1)) & 1)
        bits = bits.astype(np.uint8).reshape(-1)
        bits = np.concatenate([bits, _crc32_bits(bits)])
        bits = np.concatenate([bits, np.zeros(self.d_info_bits(d.size) - bits.size, np.uint8)])
        coded = self.whiten(golay().encode(bits))
        return bits_to_qpsk(coded)

    def tag_to_symbols(self, tag: bytes) -> np.ndarray:
        """The tag block: ``tag`` (:data:`TAG_BYTES`) ‖ CRC-16/CCITT-FALSE of it ‖ zero padding, Golay(24,12),
        whitened, BPSK (complex64, real ±1)."""
        if not isinstance(tag, (bytes, bytearray)) or len(tag) != TAG_BYTES:
            raise ValueError(f"a tag has {TAG_BYTES} bytes")
        bits = np.unpackbits(np.frombuffer(bytes(tag) + _crc16(tag).to_bytes(2, "big"), dtype=np.uint8))
        bits = np.concatenate([bits, np.zeros(TAG_INFO_BITS - bits.size, np.uint8)])
        coded = self.whiten(golay().encode(bits))
        return (1.0 - 2.0 * coded.astype(np.float32)).astype(np.complex64)

    def decode_tag(self, llr: np.ndarray) -> tuple[bytes, bool]:
        """BPSK LLRs of a tag block (168, log P(0)/P(1), e.g. the equalised symbols' real parts) →
        (tag bytes, CRC-16 ok)."""
        bits = golay().decode(self.whiten_llr(np.asarray(llr, dtype=np.float64)))
        raw = np.packbits(bits[:8 * TAG_BYTES + TAG_CRC_BITS]).tobytes()
        tag, crc = raw[:TAG_BYTES], int.from_bytes(raw[TAG_BYTES:], "big")
        return tag, crc == _crc16(tag) and not bits[8 * TAG_BYTES + TAG_CRC_BITS:].any()

    def decode_d(self, llr: np.ndarray, d_len: int) -> tuple[np.ndarray, bool]:
        """Coded-bit LLRs of a d block → (d values int64, CRC ok)."""
        bits = golay().decode(self.whiten_llr(np.asarray(llr, dtype=np.float64)))
        nb = d_len * D_BITS_PER_VALUE
        data, crc = bits[:nb], bits[nb:nb + 32]
        ok = bool(np.array_equal(_crc32_bits(data), crc))
        vals = data.reshape(d_len, D_BITS_PER_VALUE).astype(np.int64) @ (1 << np.arange(D_BITS_PER_VALUE - 1, -1, -1))
        return vals, ok


def _crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR)."""
    return binascii.crc_hqx(bytes(data), 0xFFFF)


@lru_cache(maxsize=64)
def _layout(fmt: FrameFormat, payload_len: int, d_len: int, tagged: bool = False) -> FrameLayout:
    if not 0 <= payload_len <= MAX_PAYLOAD:
        raise ValueError(f"payload length must lie in [0, {MAX_PAYLOAD}], got {payload_len}")
    if not 0 <= d_len <= MAX_D_LEN:
        raise ValueError(f"d length must lie in [0, {MAX_D_LEN}], got {d_len}")
    np_ = fmt.preamble_len
    n_data = fmt.data_len(payload_len, d_len, tagged)
    rel = np.arange(n_data)
    is_pilot = rel % fmt.pilot_spacing == 0
    pilots = np_ + rel[is_pilot]
    data = np_ + rel[~is_pilot]
    nh, nd = fmt.header_symbols, fmt.d_symbols(d_len)
    post = np_ + n_data
    end_d = nh + payload_len + nd
    arrays = dict(header=data[:nh], payload=data[nh:nh + payload_len], d_block=data[nh + payload_len:end_d],
                  tag_block=data[end_d:], pilots=pilots)
    assert arrays["d_block"].size == nd and arrays["tag_block"].size == (fmt.tag_symbols if tagged else 0)
    for a in arrays.values():
        a.setflags(write=False)
    return FrameLayout(total=post + fmt.postamble_len + fmt.guard, preamble=slice(0, np_),
                       postamble=slice(post, post + fmt.postamble_len),
                       guard=slice(post + fmt.postamble_len, post + fmt.postamble_len + fmt.guard),
                       **arrays)


DEFAULT_FORMAT = FrameFormat()


def random_frames(n: int, payload_len: int, rng, counter0: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Test signal: ``n`` frames (counters ``counter0``…) of random 4096-QAM payloads; returns (frames, payloads)."""
    from radio.zp_qam import modulate

    payloads = [modulate(rng.integers(0, P, payload_len)) for _ in range(n)]
    return [build_frame(FrameHeader(counter=counter0 + i), p) for i, p in enumerate(payloads)], payloads


def build_frame(header: FrameHeader, payload, d=None, fmt: FrameFormat = DEFAULT_FORMAT, auth=None) -> np.ndarray:
    """One frame's symbols (complex64, guard zeros included) ready for the transmitter.

    ``payload``: complex symbols already mapped by the caller (unit mean power expected);
    ``d``: the lwe-pk values d ∈ Z_p^{n2} or None. The header's ``payload_len`` and ``d_len`` are set
    from them. ``auth`` (a :class:`crypto.frame_auth.FrameAuth`): the frame becomes version 2 and carries
    ``auth.tag(header.info_bytes(), d)`` in its tag block (the caller has put the keyed check symbols into
    the payload: :meth:`crypto.frame_auth.FrameAuth.checks`); without it, version 1 and no tag block.
    """
    payload = np.asarray(payload)
    if payload.ndim != 1 or payload.size > MAX_PAYLOAD:
        raise ValueError(f"payload must be a 1-D array of at most {MAX_PAYLOAD} symbols")
    if payload.size and not np.all(np.isfinite(payload)):
        raise ValueError("payload symbols must be finite")
    d_len = 0 if d is None else int(np.asarray(d).size)
    if d is not None and (np.asarray(d).size == 0 or np.asarray(d).max() >= P):
        raise ValueError(f"d values must lie in [0, {P})")
    header = FrameHeader.from_dict({**header.to_dict(), "payload_len": payload.size, "d_len": d_len,
                                    "version": VERSION if auth is None else VERSION_AUTH})
    lay = fmt.layout_of(header)
    out = np.zeros(lay.total, dtype=np.complex64)
    out[lay.preamble] = fmt.preamble
    out[lay.header] = fmt.header_to_symbols(header)
    out[lay.payload] = payload
    if d_len:
        out[lay.d_block] = fmt.d_to_symbols(np.asarray(d))
    if auth is not None:
        out[lay.tag_block] = fmt.tag_to_symbols(auth.tag(header.info_bytes(), None if d is None else np.asarray(d)))
    out[lay.pilots] = fmt.pilot_symbols(lay.pilots.size)
    out[lay.postamble] = fmt.postamble
    return out


def known_symbols(header: FrameHeader, fmt: FrameFormat = DEFAULT_FORMAT) -> tuple[np.ndarray, np.ndarray]:
    """(positions, symbols) of every symbol a receiver knows once it has decoded ``header``.

    Preamble, header, pilots and postamble, in position order (the guard is left out).
    """
    lay = fmt.layout_of(header)
    pos = np.concatenate([np.arange(lay.preamble.start, lay.preamble.stop), lay.header, lay.pilots,
                          np.arange(lay.postamble.start, lay.postamble.stop)])
    sym = np.concatenate([fmt.preamble, fmt.header_to_symbols(header), fmt.pilot_symbols(lay.pilots.size),
                          fmt.postamble])
    order = np.argsort(pos, kind="stable")
    return pos[order], sym[order]
