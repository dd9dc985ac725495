"""link.npzindex: a large npz's images read one at a time from an index of a few bytes per image (the runner's
view of a chain's <role>-images.npz; numpy.load holds a ZipInfo of ~600 bytes per member)."""
import tracemalloc

import numpy as np
import pytest

from link.npzindex import NpzIndex


def _rows(n):
    return ({"index": i, "image": np.full((4, 5, 3), i % 251, np.uint8)} for i in range(n) if i != 3)


def test_a_chains_images_read_as_numpy_reads_them(tmp_path):
    from link.receiver.chains import write_results

    write_results(tmp_path, "bob", {"role": "bob"}, _rows(40), [np.arange(6, dtype=np.complex64)])
    path = tmp_path / "bob-images.npz"
    got = NpzIndex(path)
    with np.load(path) as z:
        want = {int(n.split("_")[1]): z[n] for n in z.files if n.startswith("image_")}
        assert np.array_equal(got.array("constellation"), z["constellation"])
    assert sorted(got) == sorted(want) and len(got) == 39 and 3 not in got and got.get(3) is None
    assert all(np.array_equal(got[i], want[i]) for i in want)
    with pytest.raises(KeyError):
        got.array("nothing")
    got.close()


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_a_reference_npz_of_either_kind(tmp_path, save):
    imgs = {f"image_{i}": np.random.default_rng(i).integers(0, 255, (3, 2, 3), dtype=np.uint8) for i in (0, 7, 12)}
    save(tmp_path / "r.npz", labels=np.arange(3), **imgs)
    got = NpzIndex(tmp_path / "r.npz")
    assert sorted(got) == [0, 7, 12] and np.array_equal(got.array("labels"), np.arange(3))
    assert all(np.array_equal(got[int(k[6:])], v) for k, v in imgs.items())


def test_the_index_holds_bytes_per_image_not_objects(tmp_path):
    from link.receiver.chains import write_results

    n = 5000
    write_results(tmp_path, "eve", {"role": "eve"}, _rows(n), [])
    tracemalloc.start()
    try:
        got = NpzIndex(tmp_path / "eve-images.npz")
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(got) == n - 1 and np.array_equal(got[n - 1], np.full((4, 5, 3), (n - 1) % 251, np.uint8))
    assert held < 40 * n          # numpy.load: ~600 bytes per member


def test_not_an_npz_is_refused_in_one_line(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="x.npz is not a zip file"):
        NpzIndex(tmp_path / "x.npz")
