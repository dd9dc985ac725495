"""Bob's key for an experiment: loaded from a key file, or fresh random keys saved with mode 0600."""
from __future__ import annotations

from pathlib import Path

from link.apps.alice import compatible_modes
from crypto.cipher import CipherKeys
from crypto.frame_auth import replay_state_path
from crypto.nonce_state import state_path
from models.secure_channel import FRAME_SYMBOLS
from jscec.errors import UserError


def prepare_keys(config, key_path: str | None, out_dir: Path, mode: str | None = None) -> tuple[CipherKeys, Path]:
    """(keys, path of the secret key file) for cipher ``mode`` (default: the model's).

    A loaded key must fit the model's preset and a mode the model serves. Fresh keys go to
    ``<out_dir>/keys/bob.key``, replacing (with its counter and replay states) an earlier run's.
    """
    mode = mode or config.cipher_mode
    if not compatible_modes(config.cipher_mode, mode):
        raise UserError(f"a model trained in {config.cipher_mode} mode cannot serve {mode} mode")
    if key_path:
        keys = CipherKeys.load(key_path)
        if not compatible_modes(config.cipher_mode, keys.mode) or keys.params.name != config.cipher_params:
            raise UserError(f"key {key_path} is for {keys.mode}/{keys.params.name}, the model needs "
                            f"{config.cipher_mode}/{config.cipher_params}")
        return keys, Path(key_path)
    keys = CipherKeys.generate(params=config.cipher_params, mode=mode, k=FRAME_SYMBOLS)
    path = Path(out_dir) / "keys" / "bob.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    # A new key replaces an earlier run's in this folder: the old key's counter and replay states go with it
    # (they belong to a key that no longer exists, and Bob would refuse another key's replay state).
    for stale in (state_path(path), replay_state_path(path)):
        for p in (stale, stale.with_name(stale.name + ".lock")):
            p.unlink(missing_ok=True)
    keys.save(path)
    return keys, path
