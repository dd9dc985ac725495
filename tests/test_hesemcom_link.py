"""HE SemCom over the links (issue 19 item 5): analog features and Model 4's ciphertext bits over awgn."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tenseal")

from hesemcom import table3  # noqa: E402
from hesemcom.train import load_model  # noqa: E402
from link.apps import hesemcom as app  # noqa: E402


def test_symbols_round_trip_and_unit_power():
    f = np.random.default_rng(0).standard_normal((5, 196))
    s = app.to_symbols(f)
    assert s.shape == (5, 98) and abs(np.mean(np.abs(s) ** 2) - 1) < 0.1
    assert np.allclose(app.from_symbols(s), f, atol=1e-6)


def test_analog_features_over_awgn(fashion):
    net, _ = load_model("fashion", 3)
    x, y = fashion.x_test[:16], fashion.y_test[:16]
    r = app.run_analog(net, x, y, app.make_link("awgn", 30.0), images_per_frame=4, log=lambda *a: None)
    assert r["frames_sent"] == 4 and r["images_received"] == 16
    assert abs(r["mer_db"] - 30) < 2
    clean = table3.jscc_predict(net, x, np.zeros((16, 196)))
    assert r["accuracy"] >= np.mean(clean == y) - 0.13


def test_model4_ciphertext_bits_over_awgn(fashion):
    net, _ = load_model("fashion", 3)
    x, y = fashion.x_test[:4], fashion.y_test[:4]
    r = app.run_ciphertext(net.he_params(), x, y, app.make_link("awgn", 30.0), log=lambda *a: None)
    assert r["ciphertexts_received"] == 1
    clean = table3.jscc_predict(net, x, np.zeros((4, 196)))
    assert r["accuracy"] == float(np.mean(clean == y))          # bits arrive exactly: no channel noise on features
    assert r["ciphertext_bytes_per_image"] > 1000 * r["analog_symbols_per_image"] / 8
    assert r["air_time_s_per_image"] > 100 * r["analog_air_time_s_per_image"]


def test_features_recorded_over_sim_replay_to_the_live_score(tmp_path, fashion):
    net, _ = load_model("fashion", 3)
    x, y = fashion.x_test[:8], fashion.y_test[:8]
    live = app.record_analog(net, "fashion", 3, x, y, tmp_path / "feat", app.make_link("sim", 15.0),
                             log=lambda *a: None)
    assert live["images_received"] == 8 and (tmp_path / "feat.reference.npz").is_file()
    again = app.replay_analog(tmp_path / "feat", log=lambda *a: None)
    assert again["accuracy"] == live["accuracy"] and again["mer_db"] == pytest.approx(live["mer_db"])


def test_replay_refuses_another_payload(tmp_path):
    from jscec.errors import UserError

    with pytest.raises((UserError, OSError)):
        app.replay_analog(tmp_path / "missing", log=lambda *a: None)


def test_model4_recorded_over_sim_replays_bit_identical(tmp_path, fashion):
    import os

    from hesemcom import ckks
    from jscec.errors import UserError

    net, _ = load_model("fashion", 3)
    x, y = fashion.x_test[:4], fashion.y_test[:4]
    base = tmp_path / "m4"
    live = app.record_ciphertext(net.he_params(), "fashion", x, y, base, app.make_link("sim", 25.0),
                                 log=lambda *a: None)
    assert live["ciphertexts_received"] == 1 and min(live["predictions"]) >= 0
    aes, ck = (tmp_path / "keys" / "m4.aes.key"), (tmp_path / "keys" / "m4.ckks.key")
    assert oct(os.stat(ck).st_mode & 0o777) == "0o600" and oct(os.stat(aes).st_mode & 0o777) == "0o600"
    meta = (tmp_path / "m4.sigmf-meta").read_text()
    assert "hesemcom-ckks" in meta and ck.read_bytes()[:64].hex() not in meta
    again = app.replay(base, log=lambda *a: None)
    assert again["model"] == 4 and again["predictions"] == live["predictions"]
    assert np.array_equal(again["scores"], live["scores"])                    # bit for bit
    assert again["ciphertexts_identical_to_sent"] == 1
    other = tmp_path / "other"
    other.mkdir()
    (other / "m4.aes.key").write_bytes(aes.read_bytes())
    os.chmod(other / "m4.aes.key", 0o600)
    fd = os.open(other / "m4.ckks.key", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, ckks.Keys(ckks.CkksParams()).to_bytes())
    os.close(fd)
    with pytest.raises(UserError, match="not the ones"):
        app.replay(base, keys_dir=other, log=lambda *a: None)
