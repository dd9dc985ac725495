"""Source codecs (baseline.source_codec): payload round trip, container rebuild, padding, errors."""
import numpy as np
import pytest

from jscec.errors import UserError
from baseline.source_codec import HeifCodec, Jpeg2000Codec, bpg_available, get_codec, strip_padding
from models.metrics import psnr_u8


def _image(seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32]
    img = np.stack([yy * 7, xx * 7, (yy + xx) * 3], axis=-1) + rng.integers(0, 40, (32, 32, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _psnr(a, b):
    return float(psnr_u8(a[None], b[None])[0])


@pytest.mark.parametrize("name", ["heif", "jpeg2000"])
def test_payload_round_trip_and_rebuild(name):
    codec = get_codec(name)
    img = _image()
    lo, hi = codec.encode(img, codec.q_min + 5), codec.encode(img, codec.q_max // 2)
    assert len(lo) < len(hi)
    assert lo[-1] != 0 and hi[-1] != 0          # zero padding can be stripped
    for p in (lo, hi):
        out = codec.decode(strip_padding(p + bytes(13)), (32, 32))
        assert out is not None and out.shape == (32, 32, 3)
    assert _psnr(codec.decode(hi, (32, 32)), img) > _psnr(codec.decode(lo, (32, 32)), img) > 15


def test_heif_payload_excludes_container():
    codec = HeifCodec()
    img = _image(1)
    full = codec._file(img, 30)
    payload = codec.encode(img, 30)
    assert len(full) - len(payload) > 300            # the boxes outweigh the image
    assert codec._rebuild(payload, (32, 32)) == full  # byte-exact rebuild from fixed parameters


def test_jpeg2000_rebuild_exact():
    codec = Jpeg2000Codec()
    img = _image(2)
    payload = codec.encode(img, 60)
    assert codec._rebuild(payload, (32, 32)) == codec._stream(img, 60)


@pytest.mark.parametrize("name", ["heif", "jpeg2000"])
def test_best_fit_respects_capacity(name):
    codec = get_codec(name)
    img = _image(3)
    for cap in (48, 112, 176):
        q, p = codec.best_fit(img, cap)
        assert len(p) <= cap
        if q < codec.q_max:
            assert len(codec.encode(img, q + 1)) > cap or len(codec.encode(img, q + 2)) > cap
    assert codec.best_fit(img, 2) is None


def test_corrupted_payload_does_not_raise():
    codec = get_codec("heif")
    p = bytearray(codec.encode(_image(), 40))
    p[len(p) // 2] ^= 0xFF
    out = codec.decode(bytes(p), (32, 32))
    assert out is None or out.shape == (32, 32, 3)
    assert codec.decode(b"\x01", (32, 32)) is None      # a one-byte slice is no picture


@pytest.mark.parametrize("name", ["heif", "jpeg2000"])
def test_payloads_too_short_to_be_an_image_are_undecodable(name):
    codec = get_codec(name)
    for payload in (b"", b"\x01", b"\xff\xd9", bytes(range(1, 9))):
        assert codec.decode(payload, (32, 32)) is None, payload


def test_errors_are_user_errors():
    with pytest.raises(UserError):
        get_codec("webp")
    if not bpg_available():
        with pytest.raises(UserError, match="bpgenc"):
            get_codec("bpg")
