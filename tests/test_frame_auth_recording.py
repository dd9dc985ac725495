"""Recordings made before frames carried tags still replay (issue 20, item 4): version-1 frames and no
``jscec:frame_auth`` in the metadata — Bob decodes them as unauthenticated (``--auth legacy``); the same frames
in a recording that says its frames are authenticated are dropped as ``no tag``."""
import json

import numpy as np
import pytest

pytest.importorskip("gnuradio.gr")

from tests.conftest import jscec  # noqa: E402


def _old_recording(tmp_path, tiny_model, with_auth_field: bool):
    """What ``jscec capture`` wrote before frame authentication: v1 frames, the metadata of that time."""
    import torch

    from crypto.cipher import CipherKeys
    from link.apps.alice import Alice
    from link.output import save_reference
    from link.sender import frame_stream
    from models.evaluate import load_bob
    from radio.channel import awgn
    from radio.frame import DEFAULT_FORMAT as F
    from radio.pulse import PulseShape, shape
    from radio.recording import RecordingWriter

    torch.set_num_threads(1)
    model = load_bob(tiny_model)
    keys = CipherKeys.generate(model.config.cipher_params, "lwe", 512, seed=b"an old recording's key, 32 bytes")
    key = tmp_path / "bob.key"
    keys.save(key)
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    alice = Alice(model, keys, tiny_model.stem, first_counter=40, authenticate=False)
    frames = [f for i, im in enumerate(imgs) for f in alice.frames_for_image(im, i)[0]]
    assert not any(F.decode_header(f[F.layout(0, 0).header].real).tagged for f in frames)
    pulse = PulseShape()
    samples = awgn(shape(frame_stream(frames), pulse).astype(np.complex64), 30.0, rng,
                   signal_power=float(np.sum(pulse.taps ** 2)))
    fields = {"model": tiny_model.stem, "model_path": str(tiny_model), "mode": "lwe",
              "params": model.config.cipher_params, "key_id": keys.key_id, "k": 512, "frames_sent": len(frames),
              "images": len(imgs), "image_source": "random", "link": "sim",
              "pulse": {"sps": pulse.sps, "rolloff": pulse.rolloff, "span": pulse.span}}
    if with_auth_field:
        from link.apps.deepjscec import AUTH_FIELD

        fields["frame_auth"] = AUTH_FIELD
    base = tmp_path / ("new" if with_auth_field else "old")
    with RecordingWriter(base, 1e6, 2.4e9, {"device": "test"}, fields) as w:
        w.write(samples)
    save_reference(tmp_path / f"{base.name}.reference.npz", imgs)
    return base.with_name(base.name + ".sigmf-meta"), key, len(frames)


@pytest.mark.parametrize("with_auth_field", [False, True])
def test_a_recording_of_untagged_frames_replays_only_as_an_old_one(with_auth_field, tiny_model, tmp_path):
    meta, key, n = _old_recording(tmp_path, tiny_model, with_auth_field)
    out = tmp_path / "out"
    jscec("replay", meta, "--key", key, "--out", out)
    report = json.loads((out / "result.json").read_text())
    bob = report["bob"]
    assert bob["frames_sent"] == n == 3
    if with_auth_field:      # the recording says its frames carry tags: these do not
        assert bob["frames_ok"] == 0 and bob["frames_dropped"] == {"no tag": n}
        assert bob["authentication"]["policy"] == "required"
    else:
        assert bob["frames_ok"] == n and bob["frames_dropped"] == {}
        assert bob["authentication"] == {**bob["authentication"], "policy": "legacy", "frames_unauthenticated": n,
                                         "frames_authenticated": 0}
        assert all(r["frames_ok"] == 1 and r["erased_fraction"] == 0 for r in report["per_image"]["bob"])
    assert report["eve"]["frames_ok"] == n
    assert not (key.parent / "bob.key.replay").exists()      # a replay leaves no replay state beside the key
