"""Your own images: `--input` files and folders send every image given (not a dataset's test split)."""
import json

import numpy as np
import pytest
from PIL import Image

from jscec.errors import UserError
from link.apps.images import load_images, read_image_files
from tests.conftest import jscec


def _folder(root, n=5):
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        h, w = 32 + 8 * (i % 3), 32 + 16 * (i % 2)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / f"img{i:02d}.png")
    Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8)).save(root / "grey.jpg")   # converted to RGB
    (root / "notes.txt").write_text("not an image")                                               # skipped
    return root


def test_every_image_of_folders_and_files_in_name_order(tmp_path):
    folder = _folder(tmp_path / "photos")
    extra = tmp_path / "one.png"
    Image.fromarray(np.full((40, 40, 3), 7, np.uint8)).save(extra)
    images, names = read_image_files([folder, extra])
    assert names == ["grey.jpg", "img00.png", "img01.png", "img02.png", "img03.png", "img04.png", "one.png"]
    assert all(im.dtype == np.uint8 and im.ndim == 3 and im.shape[2] == 3 for im in images)
    assert images[1].shape == (32, 32, 3) and images[2].shape == (40, 48, 3)
    assert len(load_images(None, None, inputs=[folder])[0]) == 6 and len(load_images(None, 2, inputs=[folder])[0]) == 2


def test_bad_inputs_are_refused_in_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "fake.png").write_text("hello")
    for paths, words in (([tmp_path / "missing"], "no such file or folder"), ([tmp_path / "empty"], "no image files"),
                         ([tmp_path / "fake.png"], "not an image")):
        with pytest.raises(UserError, match=words):
            read_image_files(paths)
    with pytest.raises(UserError, match="not both"):
        load_images("default", None, inputs=[tmp_path])


def test_loopback_sends_every_input_image(tiny_model, tmp_path):
    folder = _folder(tmp_path / "photos")
    out = tmp_path / "out"
    jscec("loopback", "--model", tiny_model, "--input", folder, "--snr-b", 30, "--out", out)
    report = json.loads((out / "result.json").read_text())
    assert report["bob"]["frames_ok"] == report["bob"]["frames_sent"] >= 6
    assert len(report["image_sizes"]) == 6 and [40, 48, 3] in report["image_sizes"]
    assert report["images"].startswith("files: grey.jpg")
