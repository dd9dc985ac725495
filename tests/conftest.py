"""Shared fixtures: a tiny image-folder dataset and a tiny Bob model with an Eve decoder beside it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def jscec(*args, check=True, timeout=300, env=None):
    """Run ``jscec ARGS`` as a subprocess; returns the CompletedProcess (text output)."""
    e = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    e.update(env or {})
    p = subprocess.run([sys.executable, "-m", "scripts.cli", *map(str, args)], cwd=ROOT, env=e, text=True,
                       capture_output=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"jscec {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p


def write_image_folder(root: Path, train_per_class: int = 40, test_per_class: int = 10, seed: int = 0) -> Path:
    """A small ``train/<class>/*.png``, ``test/<class>/*.png`` tree of 32×32 RGB images."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        for c in ("a", "b"):
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                ramp = np.linspace(0, 255, 32)[None, :, None] * np.ones((32, 1, 3))
                im = ramp * rng.uniform(0.3, 1, 3) + rng.normal(0, 20, (32, 32, 3))
                Image.fromarray(im.clip(0, 255).astype(np.uint8)).save(d / f"{i}.png")
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """Path of a tiny CIFAR-size image-folder dataset (100 images)."""
    return write_image_folder(tmp_path_factory.mktemp("data") / "tiny")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_data) -> Path:
    """Checkpoint path of a tiny lwe Bob model (10 steps) with an Eve decoder (1 epoch) beside it."""
    out = tmp_path_factory.mktemp("model") / "tiny-lwe.pt"
    jscec("train", "--width", 8, "--max-steps", 10, "--epoch-size", 64, "--val-size", 16, "--out", out,
          "--threads", 1, "--data", tiny_data)
    jscec("attack", "--model", out, "--epochs", 1, "--epoch-size", 64, "--val-size", 16, "--threads", 1,
          "--data", tiny_data)
    assert out.is_file()
    return out


@pytest.fixture(scope="module")
def fashion():
    """Fashion-MNIST (the Debian package ``dataset-fashion-mnist``), for the HE SemCom tests."""
    from hesemcom import data

    if not data.FASHION_DIR.is_dir():
        pytest.skip("dataset-fashion-mnist not installed")
    return data.load("fashion")


def write_classed_folder(root: Path, per_class=(48, 12), seed: int = 0) -> Path:
    """Two classes a person tells apart at a glance: dark and bright 32×32 images with noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in zip(("train", "test"), per_class):
        for name, level in (("dark", 70), ("bright", 185)):
            d = root / split / name
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                im = level + rng.normal(0, 25, (32, 32, 3))
                Image.fromarray(im.clip(0, 255).astype(np.uint8)).save(d / f"{i}.png")
    return root


@pytest.fixture(scope="session")
def classed(tmp_path_factory) -> Path:
    """Dark and bright 32×32 images in two classes (48 + 12 per class)."""
    return write_classed_folder(tmp_path_factory.mktemp("classed") / "data")


@pytest.fixture(scope="session")
def classifier(tmp_path_factory, classed) -> Path:
    """A tiny mask-mode classifier that tells dark from bright, with Eve's attack classifier beside it."""
    out = tmp_path_factory.mktemp("cls") / "c.pt"
    jscec("train", "--task", "classify", "--width", "tiny", "--mode", "mask", "--epoch-size", 96, "--batch-size", 16,
          "--epochs", 8, "--val-size", 24, "--noise-ramp", 0, "--snr-train", 20, "--threads", 1,
          "--out", out, "--data", classed)
    jscec("attack", "--model", out, "--epochs", 1, "--epoch-size", 64, "--batch-size", 16, "--val-size", 24,
          "--threads", 1, "--data", classed)
    return out
