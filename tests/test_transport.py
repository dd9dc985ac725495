"""Frame PDUs: the fast c32vector path and the PDU round trip."""
import numpy as np
import pmt
import pytest

from radio.frame import FrameHeader
from radio.sync import DroppedFrame, SyncedFrame
from flowgraphs.pdu import c32_elements, c32vector, frame_to_pdu, pdu_to_frame


@pytest.mark.parametrize("n", [0, 1, 512, 4099])
def test_c32vector_is_what_init_c32vector_makes(n):
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    x[: min(n, 3)] = [np.inf, -0.0, np.nan][: min(n, 3)]
    want = pmt.init_c32vector(n, x.tolist())
    got = c32vector(x)
    assert pmt.is_c32vector(got) and pmt.length(got) == n
    assert pmt.serialize_str(got) == pmt.serialize_str(want)
    np.testing.assert_array_equal(np.asarray(pmt.c32vector_elements(got), np.complex64), x)
    back = c32_elements(want)
    assert back.dtype == np.complex64
    np.testing.assert_array_equal(back, x)


def _frame(d_values=None):
    header = FrameHeader(counter=7, mode="lwe-pk" if d_values is not None else "lwe", key_id="0badcafe",
                         model_id=3, constellation="zp4096", payload_len=4, image_index=2, chunk_index=1,
                         chunk_count=3, height=32, width=32, d_len=0 if d_values is None else d_values.size)
    return SyncedFrame(header=header, payload=np.array([1 + 2j, -3j, 0.5, 4 - 1j], np.complex64), noise_var=0.01,
                       mer_db=25.5, snr_db=24.0, cfo=1e-3, sro_ppm=-20.0, timing=0.25, gain=0.9, start=1234.5,
                       metric=0.8, d_values=d_values, d_ok=None if d_values is None else True)


@pytest.mark.parametrize("d", [None, np.array([5, 4095, 0], np.int64)])
def test_frame_pdu_round_trip(d):
    item = _frame(d)
    back = pdu_to_frame(pmt.deserialize_str(pmt.serialize_str(frame_to_pdu(item))))
    assert back.header == item.header
    np.testing.assert_array_equal(back.payload, item.payload)
    for name in ("noise_var", "mer_db", "snr_db", "cfo", "sro_ppm", "timing", "gain", "start", "metric"):
        assert getattr(back, name) == getattr(item, name)
    if d is None:
        assert back.d_values is None
    else:
        np.testing.assert_array_equal(back.d_values, d)
        assert back.d_ok is True


def test_dropped_frame_pdu_round_trip_and_foreign_pdus_are_refused():
    drop = DroppedFrame(start=99.0, reason="header: CRC mismatch", metric=0.7, snr_db=3.0)
    back = pdu_to_frame(frame_to_pdu(drop))
    assert isinstance(back, DroppedFrame) and back.reason == drop.reason and back.start == 99.0
    with pytest.raises(ValueError):
        pdu_to_frame(pmt.cons(pmt.make_dict(), pmt.init_c32vector(0, [])))
    with pytest.raises(ValueError):
        pdu_to_frame(pmt.intern("nonsense"))
    with pytest.raises(ValueError):   # a payload of another type
        pdu_to_frame(pmt.cons(pmt.car(frame_to_pdu(_frame())), pmt.init_f32vector(2, [1.0, 2.0])))
    with pytest.raises(ValueError):   # a field of the wrong type
        meta = pmt.dict_add(pmt.car(frame_to_pdu(_frame())), pmt.intern("mer_db"), pmt.intern("high"))
        pdu_to_frame(pmt.cons(meta, pmt.init_c32vector(0, [])))
    with pytest.raises(ValueError):
        pdu_to_frame(pmt.cons(pmt.dict_add(pmt.make_dict(), pmt.intern("header"), pmt.intern("{}")),
                              pmt.init_c32vector(0, [])))
