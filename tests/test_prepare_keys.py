"""link.apps.keys.prepare_keys: fresh keys for a run, or a key file checked against the model."""
import stat

import pytest

from crypto.cipher import CipherKeys
from crypto.frame_auth import ReplayWindow, replay_state_path
from crypto.nonce_state import CounterState, state_path
from jscec.errors import UserError
from link.apps.keys import prepare_keys
from models.codec import CodecConfig


def test_a_second_run_into_one_folder_gets_a_new_key_and_drops_the_old_keys_states(tmp_path):
    cfg = CodecConfig(cipher_mode="mask")
    keys, path = prepare_keys(cfg, None, tmp_path)
    assert path == tmp_path / "keys" / "bob.key" and stat.S_IMODE(path.stat().st_mode) == 0o600
    CounterState(path, keys.key_id).reserve(10)
    window = ReplayWindow(state=replay_state_path(path), key_id=keys.key_id)
    window.accept(keys.key_id, 0, 10)
    window.close()
    assert state_path(path).exists() and replay_state_path(path).exists()

    again, path2 = prepare_keys(cfg, None, tmp_path)
    assert path2 == path and again.key_id != keys.key_id
    assert not state_path(path).exists() and not replay_state_path(path).exists()
    # Bob's receiver opens the new key's replay state without complaint, from counter 0.
    assert ReplayWindow(state=replay_state_path(path), key_id=again.key_id).floor(again.key_id) == 0
    assert CipherKeys.load(path).key_id == again.key_id


def test_a_key_file_must_fit_the_model(tmp_path):
    keys = CipherKeys.generate(params="lp-192", mode="mask", k=64)
    path = keys.save(tmp_path / "k.key")
    assert prepare_keys(CodecConfig(cipher_mode="mask"), str(path), tmp_path)[0].key_id == keys.key_id
    with pytest.raises(UserError, match="cannot serve"):
        prepare_keys(CodecConfig(cipher_mode="mask"), str(path), tmp_path, mode="lwe")
