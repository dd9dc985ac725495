"""Remote classification (paper Sec. V-B): Table IV networks, training through the cipher, the attack,
accuracy evaluation, and training under torchrun (DDP) equal to one process."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from models.checkpoint import load_checkpoint
from models.classifier import CLASSIFIER_WIDTHS, ClassificationDecoder, classification_encoder
from models.codec import CodecConfig, DeepJscec, EveDecoder
from tests.conftest import ROOT, jscec


def test_table_iv_shapes_at_rho_one_sixth():
    cfg = CodecConfig(task="classify", width=8, decoder_width=4)
    model = DeepJscec(cfg)
    x = torch.rand(3, 3, 32, 32)
    _, plaintext, shape = model.encode(x)
    assert plaintext.shape == (3, 512) and shape == (8, 8, 8)       # k = ρ·32·32·3 = 512, C_out = 8
    logits = model.decode(plaintext.double(), shape)
    assert logits.shape == (3, 10)
    assert EveDecoder(cfg)(plaintext.double(), shape).shape == (3, 10)
    # The feature compression network keeps w channels at the encoder's output (Table IV, right).
    assert classification_encoder(3, 16, 16)(x).shape == (3, 16, 8, 8)
    # Table IV's decoder widths at the paper preset: the last attention block has 8d = 2048 channels.
    w, d = CLASSIFIER_WIDTHS["paper"]
    dec = ClassificationDecoder(16, d)
    assert dec.head[0].in_features == 2048 and dec.head[-1].out_features == 10 and w == 256


def test_image_config_is_unchanged_by_the_task_field():
    assert CodecConfig.from_dict({"width": 8}).task == "image"
    with pytest.raises(ValueError):
        DeepJscec(CodecConfig(task="classify", width=8, decoder_width=0))


def test_classifier_trains_through_the_cipher_and_eval_reports_accuracy(classifier, classed, tmp_path):
    card = load_checkpoint(classifier)["card"]
    assert card["task"] == "classify" and card["loss"] == "cross-entropy"
    assert card["config"]["decoder_width"] == CLASSIFIER_WIDTHS["tiny"][1]
    assert 0.0 <= card["validation"]["accuracy"] <= 1.0
    eve_card = load_checkpoint(classifier.with_name("c.eve.pt"))["card"]
    assert eve_card["task"] == "classify" and "accuracy" in eve_card["validation"]

    report_path = tmp_path / "eval.json"
    p = jscec("eval", "--model", classifier, "--data", classed, "--snr", 0, 30, "--json", report_path,
              "--png", tmp_path / "acc.png")
    report = json.loads(report_path.read_text())
    assert report["task"] == "classify" and report["images"] == 12
    assert [r["snr_db"] for r in report["results"]] == [0.0, 30.0]
    assert set(report["results"][0]) == {"snr_db", "bob", "eve"}
    # Dark against bright through the mask cipher at 30 dB: Bob tells them apart.
    assert report["results"][1]["bob"]["accuracy"] >= 0.9, p.stdout
    assert report["random_guess"]["chance"] == 0.5
    assert (tmp_path / "acc.png").stat().st_size > 0
    assert "Bob acc %" in p.stdout


def test_a_dataset_without_labels_is_refused_for_classification(tmp_path):
    from PIL import Image

    d = tmp_path / "only"
    d.mkdir()
    for i in range(4):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(d / f"{i}.png")
    p = jscec("train", "--task", "classify", "--width", "tiny", "--data", d, "--out", tmp_path / "m.pt",
              check=False)
    assert p.returncode != 0 and "Traceback" not in p.stderr


def _train_args(data, out, procs):
    return ["train", "--task", "classify", "--width", "tiny", "--epoch-size", 32, "--batch-size", 8,
            "--epochs", 1, "--val-size", 8, "--noise-ramp", 0, "--threads", 1, "--data", str(data), "--out", str(out)]


def test_two_ddp_processes_equal_one_process_with_the_same_global_batch(classed, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    jscec(*_train_args(classed, one, 1))
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "scripts.cli", *map(str, _train_args(classed, two, 2))],
                       cwd=ROOT, env=env, text=True, capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    a = load_checkpoint(one.with_suffix(".last.pt"), kind="bob-training")
    b = load_checkpoint(two.with_suffix(".last.pt"), kind="bob-training")
    assert json.loads(a["state_json"])["step"] == json.loads(b["state_json"])["step"] == 4
    assert load_checkpoint(two)["card"]["processes"] == 2
    worst = max(float((a["state_dict"][k] - b["state_dict"][k]).abs().max()) for k in a["state_dict"])
    moved = max(float((a["state_dict"][k] - load_checkpoint(one)["state_dict"][k]).abs().max())
                for k in a["state_dict"])
    assert worst < 1e-5, worst
    # Not trivially equal: the weights differ from a fresh model's after 4 Adam steps at lr 1e-3.
    fresh = DeepJscec(CodecConfig.from_dict(a["config"])).state_dict()
    assert max(float((a["state_dict"][k] - fresh[k]).abs().max()) for k in fresh) > 1e-3
    assert moved == 0.0     # one epoch: the best checkpoint is the last one


def test_classify_report_writes_table_v_fig9_and_checks(classifier, classed, tmp_path):
    ev = tmp_path / "eval.json"
    jscec("eval", "--model", classifier, "--data", classed, "--snr", 0, 10, 20, "--json", ev)
    real = json.loads(ev.read_text())
    bob = {r["snr_db"]: r["bob"]["accuracy"] for r in real["results"]}
    baseline = {"pairs": [{"mod": "qpsk", "rate": "1/2", "lambda": 0.01, "results": [
        {"snr_db": 0.0, "accuracy": 0.0}, {"snr_db": 10.0, "accuracy": 0.0}, {"snr_db": 20.0, "accuracy": 0.4}]}]}
    bl = tmp_path / "baseline.json"
    bl.write_text(json.dumps(baseline))
    # A second model that drops with SNR and falls below the baseline at 20 dB.
    worse = dict(real, model="worse", results=[{"snr_db": s, "bob": {"accuracy": a}}
                                                for s, a in ((0.0, 0.3), (10.0, 0.6), (20.0, 0.35))])
    (tmp_path / "worse.json").write_text(json.dumps(worse))
    out = tmp_path / "rep"
    p = jscec("classify-report", "--eval", ev, tmp_path / "worse.json", "--baseline", bl, "--table-snr", 10,
              "--out", out)
    report = json.loads((out / "report.json").read_text())
    first, second = report["table_v"]
    assert first["bob"] == bob[10.0] and first["snr_db"] == 10.0 and second["bob"] == 0.6
    assert first["random"] == real["random_guess"]["accuracy"]
    checks = list(report["checks"].values())
    assert [c["against_best_baseline"][-1]["baseline"] for c in checks] == [0.4, 0.4]
    assert checks[0]["at_least_baseline_everywhere"] is (bob[20.0] >= 0.4)
    assert checks[1]["at_least_baseline_everywhere"] is False and checks[1]["monotonic"] is False
    assert abs(checks[1]["largest_drop"] - 0.25) < 1e-9
    assert "below the best baseline (worst -5.00 points at 20 dB)" in p.stdout
    assert "| Bob |" in (out / "table_v.md").read_text() and (out / "fig9.png").stat().st_size > 0
    bad = jscec("classify-report", "--eval", bl, "--out", out, check=False)
    assert bad.returncode == 2 and "not the evaluation of a classification model" in bad.stderr
