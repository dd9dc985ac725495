"""Dataset readers: each format is generated small in tmp_path and read back; split, cache and errors."""
import gzip
import os
import pickle
import struct
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models import datasets
from models.datasets import ImageSet, load_dataset, mean_image, split_indices
from jscec.errors import UserError

REAL_CIFAR = datasets.DEFAULT_DATA
FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """No test reads or writes the user's cache or depends on their JSCEC_DATA."""
    monkeypatch.setenv("JSCEC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("JSCEC_DATA", raising=False)


def _rng_images(n, h=8, w=8, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, c), dtype=np.uint8)


def _save_png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.squeeze(-1) if arr.shape[-1] == 1 else arr).save(path)


def _make_tree(root, classes=("cat", "dog"), per=3, splits=("train", "test")):
    """PNG tree (lossless, so pixels can be compared); returns {relative name: image}."""
    made, k = {}, 0
    for split in splits:
        for cls in classes:
            for i in range(per):
                arr = _rng_images(1, seed=k)[0]
                k += 1
                rel = f"{split}/{cls}/{i:04d}.png" if split else f"{cls}/{i:04d}.png"
                _save_png(root / rel, arr)
                made[rel] = (cls, arr)
    return made


def _check_tree(ds, made):
    names = sorted(made)
    assert ds.images.shape == (len(made), 8, 8, 3) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64 and ds.classes == sorted({c for c, _ in made.values()})
    for i, rel in enumerate(names):     # order: sorted member names
        cls, arr = made[rel]
        np.testing.assert_array_equal(ds.images[i], arr)
        assert ds.classes[ds.labels[i]] == cls


# --------------------------------------------------------------------------- CIFAR-10 python batches


def _write_cifar(root, per_batch=4):
    root.mkdir(parents=True, exist_ok=True)
    all_imgs, all_labels = [], []
    for k, name in enumerate(datasets.CIFAR_BATCHES):
        imgs = _rng_images(per_batch, 32, 32, 3, seed=100 + k)
        labels = [(k + i) % 10 for i in range(per_batch)]
        data = imgs.transpose(0, 3, 1, 2).reshape(per_batch, 3072)   # official layout: R plane, G, B
        with open(root / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"data": data, b"labels": labels,
                         b"filenames": [b"x.png"] * per_batch}, f, protocol=2)
        all_imgs.append(imgs)
        all_labels += labels
    names = [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer",
                                  "dog", "frog", "horse", "ship", "truck")]
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_vis": 3072}, f)
    return np.concatenate(all_imgs), np.array(all_labels)


def test_cifar_batches_directory(tmp_path):
    imgs, labels = _write_cifar(tmp_path / "cifar-10-batches-py")
    ds = load_dataset(tmp_path / "cifar-10-batches-py", progress=False)
    assert isinstance(ds, ImageSet) and ds.name == "CIFAR-10"
    np.testing.assert_array_equal(ds.images, imgs)
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.classes[:3] == ["airplane", "automobile", "bird"]
    assert ds.source == str(tmp_path / "cifar-10-batches-py")


def test_cifar_batches_tar_gz(tmp_path):
    imgs, labels = _write_cifar(tmp_path / "src" / "cifar-10-batches-py")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    ds = load_dataset(archive, progress=False)
    np.testing.assert_array_equal(ds.images, imgs)
    np.testing.assert_array_equal(ds.labels, labels)


def test_cifar_pickle_may_not_run_code(tmp_path):
    root = tmp_path / "evil"
    root.mkdir()
    with open(root / "data_batch_1", "wb") as f:
        pickle.dump({b"data": os.system}, f)            # a global outside numpy's array rebuilders
    with pytest.raises(UserError, match="not a CIFAR-10 python batch"):
        load_dataset(root, progress=False)


# --------------------------------------------------------------------------- image-folder trees


def test_folder_tree(tmp_path):
    made = _make_tree(tmp_path / "data")
    _check_tree(load_dataset(tmp_path / "data", progress=False), made)


def test_flat_class_tree_and_unlabelled_images_skipped(tmp_path):
    made = _make_tree(tmp_path / "flat", classes=("a", "b", "c"), splits=("",))
    _save_png(tmp_path / "flat" / "stray.png", _rng_images(1)[0])         # no class: skipped
    (tmp_path / "flat" / "notes.txt").write_text("ignored")
    ds = load_dataset(tmp_path / "flat", progress=False)
    _check_tree(ds, made)
    assert ds.name == "flat"


@pytest.mark.parametrize("suffix,mode", [(".tar.gz", "w:gz"), (".tgz", "w:gz"), (".tar", "w")])
def test_folder_tree_archive(tmp_path, suffix, mode):
    made = _make_tree(tmp_path / "src")
    archive = tmp_path / f"pics{suffix}"
    with tarfile.open(archive, mode) as tar:
        for rel in sorted(made, reverse=True):          # archive order must not matter
            tar.add(tmp_path / "src" / rel, arcname=f"./{rel}")
    ds = load_dataset(archive, progress=False)
    _check_tree(ds, {f"./{k}": v for k, v in made.items()})
    assert ds.name == "pics"


def test_folder_tree_zip_with_macos_litter(tmp_path):
    made = _make_tree(tmp_path / "src")
    archive = tmp_path / "pics.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for rel in made:
            zf.write(tmp_path / "src" / rel, f"pics/{rel}")
        zf.writestr("__MACOSX/pics/train/cat/._0000.png", b"junk")
    _check_tree(load_dataset(archive, progress=False), made)


def test_jpeg_tree_mixed_gray_and_named_like_the_cifar_copy(tmp_path):
    root = tmp_path / "cifar10-jpeg"
    yy, xx = np.mgrid[0:32, 0:32]
    rgb = np.stack([yy * 8, xx * 8, (yy + xx) * 4], -1).astype(np.uint8)   # smooth: JPEG keeps it close
    _save_png(root / "train" / "cat" / "0.png", rgb)
    Image.fromarray(rgb).save(root / "train" / "cat" / "1.jpg", quality=75)
    (root / "test" / "dog").mkdir(parents=True)
    Image.fromarray(rgb[..., 0]).save(root / "test" / "dog" / "0.jpg")   # a grayscale JPEG among RGB ones
    ds = load_dataset(root, progress=False)
    assert ds.images.shape == (3, 32, 32, 3) and ds.name == "CIFAR-10 (JPEG q75 copy)"
    gray = ds.images[0]                                   # test/dog/0.jpg sorts first
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    np.testing.assert_array_equal(ds.images[1], rgb)
    assert np.abs(ds.images[2].astype(int) - rgb).mean() < 4
    assert ds.classes == ["cat", "dog"] and ds.labels.tolist() == [1, 0, 0]


def test_images_of_different_sizes_are_refused(tmp_path):
    _save_png(tmp_path / "d" / "a" / "0.png", _rng_images(1, 8, 8)[0])
    _save_png(tmp_path / "d" / "a" / "1.png", _rng_images(1, 9, 8)[0])
    with pytest.raises(UserError, match="differ in size"):
        load_dataset(tmp_path / "d", progress=False)


def test_undecodable_image_is_refused(tmp_path):
    (tmp_path / "d" / "a").mkdir(parents=True)
    (tmp_path / "d" / "a" / "0.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(UserError, match="cannot decode image a/0.jpg"):
        load_dataset(tmp_path / "d", progress=False)


# --------------------------------------------------------------------------- Tiny ImageNet


def test_tiny_imagenet_layout(tmp_path):
    root = tmp_path / "tiny-imagenet-200"
    wnids = ["n02", "n01"]
    (root).mkdir()
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (root / "words.txt").write_text("n01\tgoldfish\nn02\tsalamander\n")
    expect = {}
    for k, w in enumerate(wnids):
        for i in range(2):
            arr = _rng_images(1, 16, 16, seed=10 * k + i)[0]
            _save_png(root / "train" / w / "images" / f"{w}_{i}.png", arr)
            expect[f"train/{w}/images/{w}_{i}.png"] = (w, arr)
        (root / "train" / w / f"{w}_boxes.txt").write_text("")
    ann = []
    for i, w in enumerate(["n01", "n02", "n01"]):
        arr = _rng_images(1, 16, 16, seed=50 + i)[0]
        _save_png(root / "val" / "images" / f"val_{i}.png", arr)
        ann.append(f"val_{i}.png\t{w}\t0\t0\t15\t15")
        expect[f"val/images/val_{i}.png"] = (w, arr)
    (root / "val" / "val_annotations.txt").write_text("\n".join(ann) + "\n")
    _save_png(root / "test" / "images" / "test_0.png", _rng_images(1, 16, 16)[0])   # unlabelled: left out
    ds = load_dataset(root, progress=False)
    assert ds.name == "Tiny ImageNet" and ds.classes == ["n01", "n02"]
    assert ds.images.shape == (7, 16, 16, 3)
    for i, rel in enumerate(sorted(expect)):
        np.testing.assert_array_equal(ds.images[i], expect[rel][1])
        assert ds.classes[ds.labels[i]] == expect[rel][0]


# --------------------------------------------------------------------------- IDX


def _idx_bytes(arr):
    return struct.pack(">BBBB", 0, 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def _write_idx(root, gz, prefix, n, seed):
    imgs = _rng_images(n, 28, 28, 1, seed=seed)[..., 0]
    labels = np.arange(n, dtype=np.uint8) % 10
    ext = ".gz" if gz else ""
    opener = gzip.open if gz else open
    root.mkdir(parents=True, exist_ok=True)
    with opener(root / f"{prefix}-images-idx3-ubyte{ext}", "wb") as f:
        f.write(_idx_bytes(imgs))
    with opener(root / f"{prefix}-labels-idx1-ubyte{ext}", "wb") as f:
        f.write(_idx_bytes(labels))
    return imgs, labels


@pytest.mark.parametrize("gz", [True, False])
def test_idx_directory(tmp_path, gz):
    root = tmp_path / "fashion-mnist"
    test_imgs, test_labels = _write_idx(root, gz, "t10k", 3, seed=1)
    train_imgs, train_labels = _write_idx(root, gz, "train", 5, seed=2)
    ds = load_dataset(root, progress=False)
    assert ds.images.shape == (8, 28, 28, 1) and ds.name == "Fashion-MNIST" and ds.classes[0] == "T-shirt/top"
    np.testing.assert_array_equal(ds.images[..., 0], np.concatenate([test_imgs, train_imgs]))   # t10k sorts first
    np.testing.assert_array_equal(ds.labels, np.concatenate([test_labels, train_labels]))


def test_idx_single_images_file(tmp_path):
    imgs, labels = _write_idx(tmp_path / "mnist", True, "train", 4, seed=3)
    ds = load_dataset(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", progress=False)
    assert ds.name == "MNIST"
    np.testing.assert_array_equal(ds.images[..., 0], imgs)
    np.testing.assert_array_equal(ds.labels, labels)


def test_truncated_idx_is_refused(tmp_path):
    f = tmp_path / "train-images-idx3-ubyte"
    f.write_bytes(_idx_bytes(_rng_images(3, 28, 28, 1)[..., 0])[:-10])
    with pytest.raises(UserError, match="truncated"):
        load_dataset(f, progress=False)


@pytest.mark.skipif(not (FASHION / "t10k-images-idx3-ubyte.gz").exists(), reason="Fashion-MNIST not installed")
def test_real_fashion_mnist():
    ds = load_dataset(FASHION, progress=False)
    assert ds.images.shape == (70000, 28, 28, 1) and ds.name == "Fashion-MNIST"
    assert np.bincount(ds.labels).tolist() == [7000] * 10


# --------------------------------------------------------------------------- split, mean image


def test_split_is_reproducible_disjoint_and_complete():
    n = 1003
    a, b = split_indices(n, seed=7), split_indices(n, seed=7)
    for k in ("train", "val", "test"):
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(split_indices(n, seed=8)["test"], a["test"])
    allidx = np.concatenate([a["train"], a["val"], a["test"]])
    assert sorted(allidx.tolist()) == list(range(n))          # disjoint and covering
    assert (len(a["train"]), len(a["val"]), len(a["test"])) == (802, 100, 101)
    s = split_indices(60000)
    assert [len(s[k]) for k in ("train", "val", "test")] == [48000, 6000, 6000]
    assert [len(v) for v in split_indices(10, fractions=(0.5, 0.5, 0.0)).values()] == [5, 5, 0]
    with pytest.raises(ValueError):
        split_indices(10, fractions=(0.8, 0.3, 0.1))


def test_mean_image():
    imgs = np.zeros((4, 2, 3, 1), dtype=np.uint8)
    imgs[:2] = 255
    m = mean_image(imgs)
    assert m.dtype == np.float32 and m.shape == (2, 3, 1) and np.allclose(m, 0.5)


# --------------------------------------------------------------------------- cache


def _tar_tree(tmp_path):
    made = _make_tree(tmp_path / "src")
    archive = tmp_path / "pics.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src", arcname=".")
    return archive, made


def test_cache_round_trip_and_rebuild(tmp_path, monkeypatch):
    archive, made = _tar_tree(tmp_path)
    cache = tmp_path / "mycache"
    first = load_dataset(archive, cache_dir=cache, progress=False)
    files = list(cache.glob("*.npz"))
    assert len(files) == 1

    calls = []
    monkeypatch.setattr(datasets, "_decode_image", lambda *a: calls.append(a))   # must not be needed now
    again = load_dataset(archive, cache_dir=cache, progress=False)
    assert not calls
    np.testing.assert_array_equal(again.images, first.images)
    np.testing.assert_array_equal(again.labels, first.labels)
    assert (again.classes, again.name, again.source) == (first.classes, first.name, first.source)
    monkeypatch.undo()

    files[0].write_bytes(b"garbage, not an npz")                          # corrupt: ignored, rebuilt
    rebuilt = load_dataset(archive, cache_dir=cache, progress=False)
    np.testing.assert_array_equal(rebuilt.images, first.images)
    assert np.load(files[0])["images"].shape == first.images.shape

    st = archive.stat()                                                    # source changed: new key,
    os.utime(archive, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))         # the stale file is removed
    load_dataset(archive, cache_dir=cache, progress=False)
    assert len(list(cache.glob("*.npz"))) == 1 and not files[0].exists()


def test_cache_dir_from_env_and_cache_off(tmp_path):
    archive, _ = _tar_tree(tmp_path)
    load_dataset(archive, cache=False, progress=False)
    assert not (tmp_path / "cache").exists()
    load_dataset(archive, progress=False)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1


def test_unwritable_cache_only_warns(tmp_path, capsys):
    archive, made = _tar_tree(tmp_path)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache dir should be")
    ds = load_dataset(archive, cache_dir=blocker / "sub", progress=False)
    assert len(ds) == len(made) and "could not write the dataset cache" in capsys.readouterr().err


# --------------------------------------------------------------------------- errors


def test_missing_path_names_path_and_env(tmp_path, monkeypatch):
    with pytest.raises(UserError, match=r"nowhere.*JSCEC_DATA"):
        load_dataset(tmp_path / "nowhere", progress=False)
    monkeypatch.setenv("JSCEC_DATA", str(tmp_path / "from-env"))
    with pytest.raises(UserError, match=r"from-env \(from \$JSCEC_DATA\)"):
        load_dataset(progress=False)


@pytest.mark.parametrize("name,data", [
    ("garbage.bin", os.urandom(3000)),
    ("garbage.tar.gz", b"\x1f\x8b\x08\x00" + os.urandom(3000)),
    ("empty.npz", b""),
])
def test_garbage_file_is_a_one_line_user_error(tmp_path, name, data):
    f = tmp_path / name
    f.write_bytes(data)
    with pytest.raises(UserError) as exc:
        load_dataset(f, progress=False)
    assert "\n" not in str(exc.value) and name in str(exc.value)


def test_truncated_archive_and_empty_tree(tmp_path):
    archive, _ = _tar_tree(tmp_path)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(UserError, match="cut.tar.gz"):
        load_dataset(cut, progress=False, cache=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images found"):
        load_dataset(tmp_path / "empty", progress=False)


# --------------------------------------------------------------------------- the real JPEG copy


@pytest.mark.skipif(not REAL_CIFAR.exists(), reason=f"{REAL_CIFAR} not present")
def test_real_cifar10_jpeg_copy(monkeypatch):
    """Decodes all 60,000 JPEGs once (~10-20 s), then reads the shared cache (< 1 s)."""
    monkeypatch.delenv("JSCEC_CACHE")                     # use the real cache so later runs are fast
    t = time.perf_counter()
    ds = load_dataset(progress=False)
    assert ds.images.shape == (60000, 32, 32, 3) and ds.images.dtype == np.uint8
    assert ds.name == "CIFAR-10 (JPEG q75 copy)" and len(ds.classes) == 10
    assert np.bincount(ds.labels).tolist() == [6000] * 10
    assert time.perf_counter() - t < 120
