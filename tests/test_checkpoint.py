from pathlib import Path

import pytest
import torch

from models.checkpoint import load_checkpoint, load_state, resolve_model, save_checkpoint
from models.codec import CodecConfig, DeepJscec
from jscec.errors import UserError


def _save(tmp_path, width=8):
    cfg = CodecConfig(width=width)
    model = DeepJscec(cfg)
    path = tmp_path / "m.pt"
    save_checkpoint(path, {"kind": "bob", "config": cfg.to_dict(), "state_dict": model.state_dict()}, {"kind": "bob"})
    return path, model


def test_round_trip_is_exact(tmp_path):
    path, model = _save(tmp_path)
    ck = load_checkpoint(path, kind="bob")
    other = DeepJscec(CodecConfig.from_dict(ck["config"]))
    load_state(other, ck["state_dict"], path)
    for (k, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert torch.equal(a, b), k
    assert path.with_suffix(".json").exists()


def test_truncated_file_is_refused_with_one_line(tmp_path):
    path, _ = _save(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError) as e:
        load_checkpoint(path)
    assert "truncated" in str(e.value) and "\n" not in str(e.value)


def test_foreign_and_mismatched_files_are_refused(tmp_path):
    foreign = tmp_path / "f.pt"
    torch.save({"hello": 1}, foreign)
    with pytest.raises(UserError):
        load_checkpoint(foreign)
    garbage = tmp_path / "g.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError):
        load_checkpoint(garbage)
    path, _ = _save(tmp_path)
    ck = load_checkpoint(path)
    with pytest.raises(UserError, match="does not match"):
        load_state(DeepJscec(CodecConfig(width=16)), ck["state_dict"], path)
    with pytest.raises(UserError, match="holds a bob model"):
        load_checkpoint(path, kind="eve")


def test_unknown_model_name(tmp_path):
    with pytest.raises(UserError, match="unknown model"):
        resolve_model("no-such-model")


def test_resolving_a_model_and_the_replay_runner_do_not_load_torch():
    """`jscec replay`'s flowgraph process never runs a network: importing torch there cost ~1 s."""
    import subprocess
    import sys

    code = ("import sys; import models.checkpoint, link.links.replay; "
            "models.checkpoint.resolve_model('cifar10-lwe'); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
