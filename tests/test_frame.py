"""Frame format: header bits and CRC, Golay protection, layout, d block."""
import numpy as np
import pytest

from radio.frame import (DEFAULT_FORMAT, FrameHeader, HeaderError, build_frame, golay, known_symbols, qpsk_llr)
from radio.zp_qam import modulate


def _header(**kw):
    base = dict(counter=123456, mode="lwe-pk", key_id="deadbeef", model_id=4242, image_index=7, chunk_index=3,
                chunk_count=9, height=300, width=451)
    base.update(kw)
    return FrameHeader(**base)


def test_header_bits_round_trip():
    h = _header(payload_len=2048, d_len=768)
    assert FrameHeader.from_bits(h.to_bits()) == h
    assert h.key_id_hex == "deadbeef"


def test_header_with_a_flipped_bit_fails_its_crc():
    bits = _header().to_bits()
    for i in (0, 40, len(bits) - 1):
        bad = bits.copy()
        bad[i] ^= 1
        with pytest.raises(HeaderError):
            FrameHeader.from_bits(bad)


def test_header_field_ranges_are_checked():
    with pytest.raises(ValueError):
        FrameHeader(counter=1 << 32)
    with pytest.raises(ValueError):
        FrameHeader(counter=1, mode="aes")


def test_golay_corrects_three_errors_per_word():
    g = golay()
    rng = np.random.default_rng(0)
    info = rng.integers(0, 2, 12 * 50).astype(np.uint8)
    coded = g.encode(info).reshape(-1, 24)
    for row in coded:
        row[rng.choice(24, 3, replace=False)] ^= 1
    llr = (1.0 - 2.0 * coded.reshape(-1))
    assert np.array_equal(g.decode(llr), info)


def test_header_decodes_from_noisy_bpsk_at_3_db():
    rng = np.random.default_rng(1)
    h = _header()
    sym = DEFAULT_FORMAT.header_to_symbols(h)
    var = 10 ** (-3 / 10)  # complex noise variance at symbol SNR 3 dB; the 4096-QAM payload needs ~40 dB
    ok = 0
    for _ in range(100):
        y = sym + np.sqrt(var / 2) * (rng.standard_normal(sym.size) + 1j * rng.standard_normal(sym.size))
        try:
            ok += DEFAULT_FORMAT.decode_header(4 * y.real / var) == h
        except HeaderError:
            pass
    assert ok >= 99


def test_frame_layout_places_every_part():
    rng = np.random.default_rng(2)
    payload = modulate(rng.integers(0, 4093, 1000))
    d = rng.integers(0, 4093, 192)
    f = build_frame(_header(), payload, d=d)
    lay = DEFAULT_FORMAT.layout(1000, 192)
    assert f.size == lay.total == DEFAULT_FORMAT.frame_len(1000, 192)
    assert np.allclose(f[lay.payload], payload)
    assert np.allclose(f[lay.preamble], DEFAULT_FORMAT.preamble)
    pos, sym = known_symbols(FrameHeader.from_dict({**_header().to_dict(), "payload_len": 1000, "d_len": 192}))
    assert np.allclose(f[pos], sym)
    # The d block decodes back with a good CRC, and a corrupted one is caught.
    llr = qpsk_llr(f[lay.d_block], 0.01)
    vals, ok = DEFAULT_FORMAT.decode_d(llr, 192)
    assert ok and np.array_equal(vals, d)
    llr[:200] *= -1
    assert not DEFAULT_FORMAT.decode_d(llr, 192)[1]


def test_build_frame_refuses_bad_payloads():
    with pytest.raises(ValueError):
        build_frame(_header(), np.full(10, np.nan, dtype=np.complex64))
    with pytest.raises(ValueError):
        build_frame(_header(), np.zeros(5000, dtype=np.complex64))
