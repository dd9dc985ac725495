"""Frames built from ``docs/interface.md`` alone, pushed into the project's RX side and decoded by Bob.

Everything about the air interface below — sequences, preamble, header fields, CRC-32, Golay(24,12),
whitening, pilots, the d block, the tag block, MAC tag and check symbols of §2.8, the Z_p → 4096-QAM
mapping, the idle lead and tail, the PDU wire format and the control message — is implemented here from
that page, with numpy, zlib, hmac/hashlib, binascii, pycryptodome's AES and pyzmq. None of the project's
framing, modem or authentication code is imported (no ``radio.frame``, ``radio.zp_qam``, ``radio.sync``,
``radio.transport``, ``flowgraphs.pdu``, ``link.apps.alice``, ``crypto.frame_auth``). The project supplies
only what the page says a sender needs from it: the cipher (``crypto.cipher``), the model (``models``), and
the receiving side under test — the simulated loopback flowgraph and Bob's receive-chain process.
"""
from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import socket
import struct
import zlib

import numpy as np
import pytest
import zmq

P = 4093
SPS = 4

# ---------------------------------------------------------------------------------------------------
# §2.2 sequences and QPSK
# ---------------------------------------------------------------------------------------------------


def lfsr(d: int, f: int, n: int) -> np.ndarray:
    """a_i = 1 for i < d, a_i = a_{i−d} XOR a_{i−f} for i ≥ d."""
    a = np.ones(n, dtype=np.uint8)
    for i in range(d, n):
        a[i] = a[i - d] ^ a[i - f]
    return a


PRBS15 = lfsr(15, 14, 32768)
PRBS9 = lfsr(9, 5, 511)


def qpsk(bits) -> np.ndarray:
    b = np.asarray(bits, dtype=np.float64).reshape(-1, 2)
    return (((1 - 2 * b[:, 0]) + 1j * (1 - 2 * b[:, 1])) / np.sqrt(2)).astype(np.complex64)


PREAMBLE = qpsk(PRBS15[7500:7754])
POSTAMBLE = qpsk(PRBS15[32704:32768])


def pilots(n: int) -> np.ndarray:
    return qpsk(PRBS15[:2 * n])


def whiten(bits: np.ndarray) -> np.ndarray:
    return bits ^ np.resize(PRBS9, bits.size)


# ---------------------------------------------------------------------------------------------------
# §2.4 header: fields, CRC-32, Golay(24,12)
# ---------------------------------------------------------------------------------------------------

FIELDS = (("version", 4), ("counter", 32), ("mode", 2), ("key_id", 32), ("model_id", 16), ("constellation", 4),
          ("payload_len", 12), ("image_index", 16), ("chunk_index", 12), ("chunk_count", 12), ("height", 12),
          ("width", 12), ("d_len", 10), ("reserved", 8))
MODES = {"lwe": 0, "lwe-pk": 1, "mask": 2, "none": 3}
CONSTELLATIONS = {"zp4096": 0, "bpsk": 1, "qpsk": 2, "qam16": 3, "qam64": 4, "qam256": 5, "qam1024": 6,
                  "qam4096": 7, "raw": 15}
GOLAY_G = 0xC75   # x^11 + x^10 + x^6 + x^5 + x^4 + x^2 + 1


def uint_bits(value: int, n: int) -> list[int]:
    return [(value >> (n - 1 - i)) & 1 for i in range(n)]


def crc32_bits(bits: np.ndarray) -> np.ndarray:
    """CRC-32 (zlib) of the bits packed MSB first (a partial last byte padded with zeros), 32 bits MSB first."""
    return np.array(uint_bits(zlib.crc32(np.packbits(bits).tobytes()) & 0xFFFFFFFF, 32), dtype=np.uint8)


def golay_codeword(m: int) -> list[int]:
    """[m (12 bits) | remainder of m·x^11 mod g (11 bits) | even overall parity]."""
    r = m << 11
    for b in range(22, 10, -1):
        if (r >> b) & 1:
            r ^= GOLAY_G << (b - 11)
    word = uint_bits(m, 12) + uint_bits(r, 11)
    return word + [sum(word) & 1]


def golay_encode(bits: np.ndarray) -> np.ndarray:
    words = np.asarray(bits, dtype=np.int64).reshape(-1, 12) @ (1 << np.arange(11, -1, -1))
    return np.array([b for m in words for b in golay_codeword(int(m))], dtype=np.uint8)


def header_info_bits(h: dict) -> np.ndarray:
    vals = dict(h, version=h.get("version", 1), reserved=0, mode=MODES[h["mode"]], constellation=CONSTELLATIONS[h["constellation"]],
                key_id=int(h["key_id"], 16))
    return np.array([b for name, n in FIELDS for b in uint_bits(int(vals[name]), n)], dtype=np.uint8)


def header_symbols(h: dict, corrupt_crc: bool = False) -> np.ndarray:
    info = header_info_bits(h)
    crc = crc32_bits(info)
    if corrupt_crc:
        crc[7] ^= 1
    coded = whiten(golay_encode(np.concatenate([info, crc])))
    return (1.0 - 2.0 * coded).astype(np.complex64)


# ---------------------------------------------------------------------------------------------------
# §2.7 d block, §3.1 Z_p → 4096-QAM, §2.1 frame
# ---------------------------------------------------------------------------------------------------

def d_block_symbols(d: np.ndarray) -> np.ndarray:
    bits = np.array([b for v in d for b in uint_bits(int(v), 12)], dtype=np.uint8)
    bits = np.concatenate([bits, crc32_bits(bits)])
    n_info = 12 * -(-(12 * d.size + 32) // 12)
    bits = np.concatenate([bits, np.zeros(n_info - bits.size, np.uint8)])
    return qpsk(whiten(golay_encode(bits)))


# ---------------------------------------------------------------------------------------------------
# §2.8 frame authentication
# ---------------------------------------------------------------------------------------------------

def derive(secret: bytes, label: str, nonce: int | None = None) -> bytes:
    msg = label.encode() + b"\x00" + (b"" if nonce is None else nonce.to_bytes(16, "big"))
    return hmac.new(secret, msg, hashlib.sha256).digest()


def keystream(secret: bytes, label: str, nonce: int, nbytes: int) -> bytes:
    from Crypto.Cipher import AES

    return AES.new(derive(secret, label, nonce), AES.MODE_CTR, nonce=b"", initial_value=0).encrypt(bytes(nbytes))


def auth_keys(shared: bytes) -> tuple[bytes, bytes]:
    k_auth = derive(shared, "jscec/v1/frame-auth")
    return derive(k_auth, "jscec/v1/frame-auth/tag"), derive(k_auth, "jscec/v1/frame-auth/check")


def frame_tag(k_tag: bytes, h: dict) -> bytes:
    info = np.packbits(header_info_bits(h)).tobytes()
    return hmac.new(k_tag, b"jscec/v1/frame-tag\x00" + info, hashlib.sha256).digest()[:8]


def tag_block_symbols(tag: bytes) -> np.ndarray:
    raw = tag + binascii.crc_hqx(tag, 0xFFFF).to_bytes(2, "big")
    bits = np.concatenate([np.unpackbits(np.frombuffer(raw, np.uint8)), np.zeros(4, np.uint8)])
    return (1.0 - 2.0 * whiten(golay_encode(bits))).astype(np.complex64)


def check_symbols(k_check: bytes, counter: int, length: int) -> tuple[list[int], list[int]]:
    n = min(16, length // 64)
    if n < 8:
        return [], []
    words = iter(np.frombuffer(keystream(k_check, "jscec/v1/frame-auth/check-positions", counter, 4096), "<u4"))
    positions = []
    for i in range(n):
        lo, hi = i * length // n, (i + 1) * length // n
        width = hi - lo
        u = int(next(words))
        while u >= (2 ** 32 // width) * width:
            u = int(next(words))
        positions.append(lo + u % width)
    w = np.frombuffer(keystream(k_check, "jscec/v1/frame-auth/check-values", counter, 4096), "<u2")
    return positions, [int(v) % P for v in w[w < 65488][:n]]


_IDX = np.arange(P)
QAM_SCALE = 1.0 / np.sqrt(np.mean((2 * (_IDX % 64) - 63.0) ** 2 + (2 * (_IDX // 64) - 63.0) ** 2))


def zp_qam(c) -> np.ndarray:
    c = np.asarray(c, dtype=np.int64)
    return (((2 * (c % 64) - 63) + 1j * (2 * (c // 64) - 63)) * QAM_SCALE).astype(np.complex64)


def zp_qam_hard(y) -> np.ndarray:
    col = np.clip(np.rint((np.real(y) / QAM_SCALE + 63) / 2), 0, 63).astype(np.int64)
    row = np.clip(np.rint((np.imag(y) / QAM_SCALE + 63) / 2), 0, 63).astype(np.int64)
    return row * 64 + col


def build_frame(h: dict, payload: np.ndarray, d: np.ndarray | None = None, corrupt_crc: bool = False,
                tag: bytes | None = None) -> np.ndarray:
    """One frame (guard included); ``h`` gets its payload_len and d_len set here; with ``tag``, version 2."""
    h.update(payload_len=payload.size, d_len=0 if d is None else d.size)
    data = [header_symbols(h, corrupt_crc), payload]
    if d is not None:
        data.append(d_block_symbols(d))
    if tag is not None:
        data.append(tag_block_symbols(tag))
    data = np.concatenate(data)
    n = data.size
    region = np.zeros(n + -(-n // 15), dtype=np.complex64)
    is_pilot = np.arange(region.size) % 16 == 0
    region[is_pilot] = pilots(int(is_pilot.sum()))
    region[~is_pilot] = data
    return np.concatenate([PREAMBLE, region, POSTAMBLE, np.zeros(32, np.complex64)])


# ---------------------------------------------------------------------------------------------------
# §1.3.3 PDU wire format
# ---------------------------------------------------------------------------------------------------

def pmt_parse(b: bytes, i: int = 0):
    tag = b[i]
    i += 1
    if tag in (0x00, 0x01):
        return tag == 0x00, i
    if tag == 0x02:
        (n,) = struct.unpack_from(">H", b, i)
        return b[i + 2:i + 2 + n].decode(), i + 2 + n
    if tag == 0x04:
        return struct.unpack_from(">d", b, i)[0], i + 8
    if tag == 0x06:
        return None, i
    if tag == 0x07:
        car, i = pmt_parse(b, i)
        cdr, i = pmt_parse(b, i)
        return (car, cdr), i
    if tag == 0x09:
        (key, value), i = pmt_parse(b, i)
        rest, i = pmt_parse(b, i)
        return {key: value, **(rest or {})}, i
    if tag == 0x0A:
        kind, n, npad = b[i], struct.unpack_from(">I", b, i + 1)[0], b[i + 5]
        i += 6 + npad
        if kind == 0x05:
            return np.frombuffer(b, ">i4", n, i).astype(np.int64), i + 4 * n
        if kind == 0x0A:
            return np.frombuffer(b, ">f4", 2 * n, i).astype(np.float32).view(np.complex64), i + 8 * n
    raise ValueError(f"pmt tag {tag:#x} at byte {i - 1} is not one the page describes")


def parse_pdu(msg: bytes) -> tuple[dict, np.ndarray]:
    (meta, payload), end = pmt_parse(msg)
    assert end == len(msg)
    return meta, payload


# ---------------------------------------------------------------------------------------------------
# The page's own examples
# ---------------------------------------------------------------------------------------------------

def test_the_pages_examples_hold_for_this_implementation():
    assert "".join(map(str, PRBS15[:16])) == "1111111111111110"
    assert "".join(map(str, PRBS9[:16])) == "1111111110000011"
    assert np.allclose(PREAMBLE[:8] * np.sqrt(2), [-1 + 1j, -1 - 1j, 1 + 1j, -1 + 1j, 1 + 1j, 1 - 1j, 1 - 1j, -1 - 1j])
    assert np.allclose(POSTAMBLE[:4] * np.sqrt(2), [-1 + 1j, 1 + 1j, -1 - 1j, 1 - 1j])
    assert np.allclose(pilots(8) * np.sqrt(2), [-1 - 1j] * 7 + [-1 + 1j])
    assert "".join(map(str, golay_codeword(1))) == "000000000001" "10001110101" "1"
    assert "".join(map(str, golay_codeword(0x800))) == "100000000000" "11000111010" "1"
    assert zlib.crc32(b"123456789") == 0xCBF43926
    assert QAM_SCALE == pytest.approx(0.019151738121460990, rel=1e-12)
    assert np.allclose(zp_qam([0, 63, 64, 4092]) / QAM_SCALE, [-63 - 63j, 63 - 63j, -63 - 61j, 57 + 63j], atol=1e-3)
    h = dict(counter=0x12345678, mode="mask", key_id="89abcdef", model_id=63941, constellation="zp4096",
             payload_len=512, image_index=3, chunk_index=0, chunk_count=1, height=32, width=32, d_len=0)
    info = header_info_bits(h)
    assert info.size == 184 and np.packbits(info).tobytes().hex() == "112345678a26af37bfe7140800000c0000040800800000"
    assert np.packbits(crc32_bits(info)).tobytes().hex() == "662f58c8"
    coded = golay_encode(np.concatenate([info, crc32_bits(info)]))
    assert "".join(map(str, coded[:48])) == "000100010010110111101101001101000101011100111001"
    assert "".join("+" if v.real > 0 else "-" for v in header_symbols(h)[:24]) == "---+---+-+-+---+++--++-+"
    assert [build_frame(dict(h), np.zeros(L, np.complex64), d).size for L, d in
            ((512, None), (2048, None), (512, np.zeros(192, np.int64)))] == [1198, 2837, 3694]
    assert [build_frame(dict(h, version=2), np.zeros(L, np.complex64), tag=bytes(8)).size for L in (512, 2048)] == \
        [1378, 3016]
    # §2.8's test vector
    assert binascii.crc_hqx(b"123456789", 0xFFFF) == 0x29B1
    shared = bytes(range(32))
    k_tag, k_check = auth_keys(shared)
    assert derive(shared, "jscec/v1/frame-auth").hex() == "a8a464bbcf8e4988c746a5f57d99e4cd427bfaec6563a11f3f20b96eb834dc75"
    assert (k_tag.hex(), k_check.hex()) == ("a51d6079eec8275b982ea03e96da152fa3dec8a0480d26b27fed105bc5cd9c17",
                                            "1eb30bc99857be94c31372da860d48ab0c836cc398ff0ebdb972c420c14b8ba3")
    h2 = dict(h, version=2)
    assert np.packbits(header_info_bits(h2)).tobytes().hex() == "212345678a26af37bfe7140800000c0000040800800000"
    tag = frame_tag(k_tag, h2)
    assert tag.hex() == "46d778dc578b7477" and binascii.crc_hqx(tag, 0xFFFF) == 0xCE48
    assert "".join("+" if v.real > 0 else "-" for v in tag_block_symbols(tag)[:24]) == "-+---++-+-+-+++-++++-+-+"
    assert check_symbols(k_check, 0x12345678, 512) == ([13, 124, 169, 216, 304, 322, 397, 499],
                                                       [292, 242, 736, 1890, 3122, 3248, 82, 1141])
    assert zlib.crc32(b"cifar10-mask") & 0xFFFF == 63941 and zlib.crc32(b"cifar10-lwe") & 0xFFFF == 42153
    example = bytes.fromhex("07 09 07 02 00 05 73 74 61 72 74 04 3f f8 00 00 00 00 00 00 06 0a 0a 00 00 00 00 01 00")
    meta, payload = parse_pdu(example)
    assert meta == {"start": 1.5} and payload.size == 0


# ---------------------------------------------------------------------------------------------------
# End to end: frames from this page → SimLoopback → Bob's chain process (and a PDU reader on Eve's branch)
# ---------------------------------------------------------------------------------------------------

def _free_tcp_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def _small(name: str, side: int) -> np.ndarray:
    import skimage.data
    import skimage.transform

    img = getattr(skimage.data, name)()
    return (skimage.transform.resize(img, (side, side), anti_aliasing=True) * 255 + 0.5).astype(np.uint8)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.fixture(scope="module")
def link_run(tmp_path_factory):
    import torch

    from crypto.cipher import CipherKeys, Encryptor
    from flowgraphs.loopback import SimLoopback
    from link.links.flowgraph import run_flowgraph
    from link.receiver.process import ReceiverProcess
    from models.checkpoint import resolve_model
    from models.evaluate import load_bob

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("interface")
    model_path = resolve_model("cifar10-mask")
    model = load_bob(model_path)
    keys = CipherKeys.generate(params="lp-192", mode="mask", k=512, seed=b"docs/interface.md test key")
    keys.save(tmp / "bob.key")
    encryptor = Encryptor(keys)
    rng = np.random.default_rng(7)

    images = {0: _small("chelsea", 32), 1: _small("astronaut", 32), 2: _small("coffee", 64)}
    np.savez(tmp / "reference.npz", **{f"image_{i}": im for i, im in images.items()})
    common = dict(key_id=keys.key_id, model_id=zlib.crc32(model_path.stem.encode()) & 0xFFFF, constellation="zp4096",
                  chunk_index=0, chunk_count=1)

    k_tag, k_check = auth_keys(keys.mask_key)      # §2.8: mask mode's shared secret is the mask key

    def image_frame(index: int, counter: int):
        """§4: encode, cut into cipher frames of k = 512, encrypt under counter, counter + 1, …, map;
        §2.8: the check symbols put in, the header version 2 (its tag is made in build_frame's caller)."""
        img = images[index]
        x = torch.from_numpy(img[None]).permute(0, 3, 1, 2).float() / 255
        with torch.no_grad():
            _, plaintext, shape = model.encode(x)
            z = plaintext[0].numpy().astype(np.int64)
        n = -(-z.size // keys.k)
        padded = np.zeros(n * keys.k, np.int64)
        padded[:z.size] = z
        ct = encryptor.encrypt_batch(padded.reshape(n, keys.k), np.arange(counter, counter + n))
        h = dict(common, counter=counter, mode="mask", image_index=index, height=img.shape[0], width=img.shape[1],
                 version=2)
        c = ct.c.reshape(-1).copy()
        positions, values = check_symbols(k_check, counter, c.size)
        c[positions] = values
        # §4: Bob erases the latent values the check symbols replaced; decoded here the same way.
        erased = np.zeros(z.size, bool)
        erased[[q for q in positions if q < z.size]] = True
        with torch.no_grad():
            local = model.decode(torch.from_numpy(np.where(erased, 0, z)[None]).double(), shape,
                                 out_size=img.shape[:2], erased=torch.from_numpy(erased[None]))
        local_u8 = (local.clamp(0, 1).permute(0, 2, 3, 1).numpy()[0] * 255 + 0.5).astype(np.uint8)
        return h, c, local_u8, n, erased.mean()

    sent = []   # (header dict, payload values, d or None, corrupted)
    h0, c0, local0, n0, erased0 = image_frame(0, 1000)
    sent.append((h0, c0, None, False))
    # Image 1's frame: a valid frame whose header CRC is corrupted before Golay coding.
    h1 = dict(common, counter=1000 + n0, mode="mask", image_index=1, height=32, width=32)
    sent.append((h1, rng.integers(0, P, 512), None, True))
    # An lwe-pk frame with a d block (random ciphertext and d): Bob refuses its mode; Eve's PDUs show the d block.
    d = rng.integers(0, P, 192)
    h3 = dict(common, counter=1000 + n0 + 1, mode="lwe-pk", image_index=3, height=32, width=32)
    sent.append((h3, rng.integers(0, P, 512), d, False))
    h2, c2, local2, n2, erased2 = image_frame(2, 1000 + n0 + 2)
    assert n0 == 1 and n2 == 4       # 32×32 → one cipher frame; 64×64 → four in one radio frame
    sent.append((h2, c2, None, False))

    frames = []
    for h, c, dd, bad in sent:
        tag = None
        if h.get("version") == 2:
            tag = frame_tag(k_tag, dict(h, payload_len=c.size, d_len=0))
        frames.append(build_frame(h, zp_qam(c), dd, bad, tag=tag))
    # §1.2: 256 idle symbols before the first frame, 2048 after the last.
    stream = np.concatenate([np.zeros(256, np.complex64), *frames, np.zeros(2048, np.complex64)])
    starts = 256 + np.concatenate([[0], np.cumsum([f.size for f in frames])[:-1]])

    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)                     # §1.2: the sender binds, the flowgraph connects
    push.setsockopt(zmq.LINGER, 2000)
    tx_address = f"tcp://127.0.0.1:{push.bind_to_random_port('tcp://127.0.0.1')}"
    bob_address, eve_address = _free_tcp_address(), _free_tcp_address()
    bob = ReceiverProcess("bob", bob_address, tmp / "out", str(model_path), key=tmp / "bob.key",
                          reference=tmp / "reference.npz", k=512)
    pull = ctx.socket(zmq.PULL)                     # §1.3: the flowgraph binds, receivers connect
    pull.setsockopt(zmq.LINGER, 0)
    pull.connect(eve_address)
    try:
        bob.wait_ready()
        tb = SimLoopback(tx_address, bob_address, eve_address, snr_b_db=45.0, snr_e_db=45.0)
        expected = (stream.size - 1024) * SPS
        drained = run_flowgraph(tb, tb.samples_consumed, lambda now: bool(now) and min(now.values()) >= expected,
                                timeout_s=60.0, on_start=lambda: push.send(stream.tobytes()))
        stats = tb.sync_stats()
        pdus = []
        want = stats["eve"]["frames_published"] + stats["eve"]["dropped_published"]
        while len(pdus) < want and pull.poll(5000):
            pdus.append(parse_pdu(pull.recv()))
        # §1.4: tell Bob's chain the stream ended and how many PDUs it was published.
        ctl = ctx.socket(zmq.PUSH)
        ctl.setsockopt(zmq.LINGER, 1000)
        ctl.connect(bob.control_address)
        ctl.send(json.dumps({"end": True, "frames_sent": len(frames),
                             "frames_published": stats["bob"]["frames_published"]
                             + stats["bob"]["dropped_published"]}).encode())
        ctl.close()
        result = bob.result(timeout_s=120.0)
    finally:
        bob.kill()
        push.close()
        pull.close()
    return dict(sent=sent, starts=starts, stats=stats, drained=drained, pdus=pdus, result=result, images=images,
                local={0: local0, 2: local2}, erased={0: erased0, 2: erased2})


def test_every_frame_arrives_and_its_pdu_matches_what_was_sent(link_run):
    r = link_run
    assert r["drained"]
    for role in ("bob", "eve"):
        st = r["stats"][role]
        assert (st["frames_published"], st["dropped_published"], st["header_failures"]) == (3, 1, 1), st
    assert len(r["pdus"]) == 4
    starts = []
    for (h, c, d, bad), (meta, payload) in zip(r["sent"], r["pdus"]):
        starts.append(meta["start"])
        if bad:
            assert meta["dropped"] == "header: header CRC mismatch" and payload.size == 0
            assert set(meta) == {"dropped", "start", "metric", "snr_db"}
            continue
        keys = {"header", "noise_var", "mer_db", "snr_db", "cfo", "sro_ppm", "timing", "gain", "start", "metric"}
        tagged = h.get("version") == 2
        assert set(meta) == keys | ({"d_values", "d_ok"} if d is not None else set()) | \
            ({"tag", "tag_ok"} if tagged else set())
        assert json.loads(meta["header"]) == {**h, "version": 2 if tagged else 1}
        if tagged:
            assert meta["tag_ok"] is True and len(meta["tag"]) == 16
        assert payload.dtype == np.complex64 and payload.size == h["payload_len"]
        assert meta["mer_db"] > 30 and abs(meta["cfo"]) < 1e-3 and meta["metric"] > 0.5
        assert meta["timing"] == pytest.approx(meta["start"] % 1.0)
        assert np.mean(zp_qam_hard(payload) == c) > 0.99
        if d is not None:
            assert meta["d_ok"] is True and np.array_equal(meta["d_values"], d)
    # ``start``: the first preamble symbol's sample; frames sit sps samples per symbol apart.
    assert np.allclose(np.subtract(starts, starts[0]), (r["starts"] - r["starts"][0]) * SPS, atol=0.05)


def test_bob_decodes_the_frames_as_the_projects_own_decoder_does(link_run):
    r = link_run
    summary = r["result"]["summary"]
    assert summary["frames_sent"] == 4 and summary["frames_received"] == 4 and summary["frames_ok"] == 2
    assert summary["frames_dropped"] == {"header CRC": 1, "other cipher mode": 1}
    rows = {row["index"]: row for row in summary["images"]}
    for index in (0, 2):
        row, img, local = rows[index], r["images"][index], r["local"][index]
        assert row["frames_ok"] == row["frames_expected"] == 1
        assert row["erased_fraction"] == pytest.approx(r["erased"][index]) and 0 < r["erased"][index] < 0.02
        decoded = r["result"]["images"][index]
        assert decoded.shape == img.shape
        # Through the radio at 45 dB Bob's image is the model's noiseless decode, to within rounding.
        assert _psnr(decoded, local) > 35
        assert row["psnr"] == pytest.approx(_psnr(local, img), abs=0.5) and row["psnr"] > 20
    # The negative: the frame whose header CRC was corrupted was dropped and counted, never decoded.
    assert rows[1]["frames_ok"] == 0 and rows[1]["frames_expected"] is None and 1 not in r["result"]["images"]
    assert "psnr" not in rows[1]
    assert [rec["ok"] for rec in summary["per_frame"]] == [True, False, False, True]
    assert summary["per_frame"][1]["reason"] == "header: header CRC mismatch"
