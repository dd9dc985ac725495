"""Remote classification over the radio (issue 18 item 5): a classifier's features over the numpy awgn link and
the GNU Radio sim link, Bob's and Eve's labels, capture and replay with the same labels, the label grid."""
import json
import shutil
import time

import numpy as np
import pytest

pytest.importorskip("gnuradio.gr")

from tests.conftest import jscec  # noqa: E402


def _truth(classed):
    """The test split's labels as the app sends them: the dataset's seeded split (seed 0), in order."""
    from models.datasets import load_dataset, split_indices

    ds = load_dataset(classed)
    test = split_indices(len(ds.images), seed=0)["test"]
    return [ds.classes[i] for i in ds.labels[test]]


def _check_labels(report, truth, n):
    """Labels per image agree with the true labels sent, the chains' rows and the accuracy per role."""
    assert report["task"] == "classify" and report["classes"] == ["bright", "dark"]
    assert report["random_guess"]["chance"] == 0.5 and 0 <= report["random_guess"]["accuracy"] <= 1
    assert [row["index"] for row in report["labels"]] == list(range(n))
    assert [row["true"] for row in report["labels"]] == truth[:n]
    for role in ("bob", "eve"):
        got = [row[role] for row in report["labels"]]
        rows = report["per_image"][role]
        assert [report["classes"][r["label"]] for r in rows] == got
        assert report[role]["accuracy"] == pytest.approx(np.mean([g == t for g, t in zip(got, truth)]))
        assert report[role]["images_labelled"] == n
    return [row["bob"] for row in report["labels"]]


def test_classification_over_the_numpy_awgn_link(classifier, classed, tmp_path):
    from link.apps.classify import ClassifyApp
    from link.apps.deepjscec import ImageOptions
    from link.links.awgn import AwgnLink, AwgnOptions
    from link.runner import RunOptions, run

    app = ClassifyApp(ImageOptions(model=str(classifier), mode="mask", data=str(classed), images=8))
    out = tmp_path / "awgn"
    report = run(app, AwgnLink(AwgnOptions(snr_b_db=30.0, snr_e_db=5.0)), RunOptions(out_dir=str(out)),
                 log=lambda *a: None)
    _check_labels(report, _truth(classed), 8)
    assert report["bob"]["accuracy"] >= 7 / 8        # dark against bright at 30 dB through the mask cipher
    assert report["snr"]["bob"]["requested_db"] == 30.0 and abs(report["snr"]["bob"]["measured_db"] - 30) < 1.5
    assert report["snr"]["eve"]["requested_db"] == 5.0 and abs(report["snr"]["eve"]["measured_db"] - 5) < 1.5
    assert report["bob"]["authentication"]["frames_authenticated"] == 8     # the frames carried their tags
    assert json.loads((out / "result.json").read_text())["labels"] == report["labels"]
    assert (out / "panel.png").stat().st_size > 0
    assert set(np.load(out / "reference.npz").files) >= {"labels", "classes", "image_0"}
    bob = json.loads((out / "bob.json").read_text())
    assert bob["task"] == "classify" and "psnr" not in bob and 0.5 <= bob["images"][0]["confidence"] <= 1


def test_loopback_capture_and_replay_give_the_same_labels(classifier, classed, tmp_path):
    truth = _truth(classed)
    cap = tmp_path / "cap"
    p = jscec("capture", "--model", classifier, "--mode", "mask", "--data", classed, "--images", 6, "--snr-b", 25,
              "--snr-e", 5, "--out", cap)
    live = json.loads((cap / "result.json").read_text())
    bob_live = _check_labels(live, truth, 6)
    assert live["bob"]["accuracy"] >= 5 / 6 and "impairments" in live      # the sim link
    assert "Bob" in p.stdout and "accuracy" in p.stdout and f"{truth[0]}" in p.stdout      # the labels printed
    assert (cap / "panel.png").stat().st_size > 0
    meta = json.loads((cap / "capture.sigmf-meta").read_text())["global"]
    assert meta["jscec:task"] == "classify" and meta["jscec:classes"] == ["bright", "dark"]
    assert "labels" in np.load(cap / "capture.reference.npz").files

    rep = tmp_path / "rep"
    p = jscec("replay", cap / "capture", "--key", cap / "keys" / "bob.key", "--task", "classify", "--out", rep)
    replayed = json.loads((rep / "result.json").read_text())
    assert _check_labels(replayed, truth, 6) == bob_live
    assert replayed["per_image"]["bob"] == live["per_image"]["bob"]     # confidences too: bit for bit

    # Without the reference file: the labels are still given (named from the recording), nothing scored.
    bare = tmp_path / "bare"
    bare.mkdir()
    for f in cap.glob("capture.sigmf-*"):
        shutil.copy(f, bare / f.name)
    p = jscec("replay", bare / "capture", "--key", cap / "keys" / "bob.key", "--out", tmp_path / "rep2")
    unscored = json.loads((tmp_path / "rep2" / "result.json").read_text())
    assert [row["bob"] for row in unscored["labels"]] == bob_live
    assert [row["eve"] for row in unscored["labels"]] == [row["eve"] for row in replayed["labels"]]
    assert all(row["true"] is None for row in unscored["labels"])
    assert unscored["bob"]["accuracy"] is None and unscored["references"] is None
    assert "labels are given, not scored" in p.stdout and "images are decoded" not in p.stdout
    assert bob_live[0] in p.stdout

    # The task is checked against the recording.
    p = jscec("replay", cap / "capture", "--key", cap / "keys" / "bob.key", "--task", "image", "--out",
              tmp_path / "rep3", check=False)
    assert p.returncode != 0 and "Traceback" not in p.stderr and "classifier" in p.stderr
    assert not (tmp_path / "rep3").exists()


def test_loopback_of_a_classifier_over_the_gnu_radio_sim_link_bob_alone(classifier, classed, tmp_path):
    import threading

    import zmq

    # A stand-in for the live view's hub: Bob's chain (its own process) sends each label it gives.
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    address = f"ipc://{tmp_path}/live.sock"
    pull.bind(address)
    heard, done = [], threading.Event()

    def listen():
        while not done.is_set():
            if pull.poll(100):
                heard.append(json.loads(pull.recv_multipart()[0]))

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    out = tmp_path / "lb"
    try:
        p = jscec("loopback", "--model", classifier, "--mode", "mask", "--data", classed, "--images", 4,
                  "--snr-b", 25, "--chains", "bob", "--out", out, "--json", tmp_path / "r.json",
                  env={"JSCEC_LIVE": address})
        deadline = time.time() + 5
        while time.time() < deadline and sum(len(m["rows"]) for m in heard if m["kind"] == "scores") < 4:
            time.sleep(0.1)
    finally:
        done.set()
        listener.join()
        pull.close()
        ctx.term()
    report = json.loads((tmp_path / "r.json").read_text())
    truth = _truth(classed)[:4]
    assert [row["true"] for row in report["labels"]] == truth and all("eve" not in row for row in report["labels"])
    assert report["bob"]["accuracy"] == np.mean([row["bob"] == t for row, t in zip(report["labels"], truth)])
    assert report["bob"]["accuracy"] >= 3 / 4 and set(report["snr"]) == {"bob"}
    assert report["bob"]["frames_ok"] == 4 and "chance 50.0 %" in p.stdout
    assert not (out / "eve.json").exists() and (out / "panel.png").stat().st_size > 0
    shown = {r["index"]: r for m in heard if m["kind"] == "scores" and m["role"] == "bob" for r in m["rows"]}
    assert sorted(shown) == [0, 1, 2, 3]
    assert [report["classes"][shown[i]["label"]] for i in range(4)] == [row["bob"] for row in report["labels"]]
    assert [shown[i]["correct"] for i in range(4)] == [row["bob"] == t for row, t in zip(report["labels"], truth)]
    assert all(0.5 <= shown[i]["confidence"] <= 1 for i in range(4))


@pytest.mark.parametrize("args, words", [
    (["--task", "classify", "--model", "cifar10-lwe"], "not a classifier"),
    (["--task", "image", "--model", "CLASSIFIER", "--mode", "mask"], "not an image model"),
    (["--model", "CLASSIFIER", "--mode", "mask", "--input", "IMAGE"], "carry no labels"),
    (["--model", "CLASSIFIER", "--mode", "mask", "--data", "UNLABELLED"], "no labelled images"),
])
def test_bad_classification_runs_are_refused_in_one_line(args, words, classifier, tmp_path):
    from PIL import Image

    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(flat / "x.png")
    subst = {"CLASSIFIER": str(classifier), "IMAGE": str(flat / "x.png"), "UNLABELLED": str(flat)}
    p = jscec("loopback", *[subst.get(a, a) for a in args], "--out", tmp_path / "out", check=False)
    assert p.returncode != 0 and "Traceback" not in p.stderr
    errors = [line for line in p.stderr.splitlines() if "error:" in line]    # (a dataset's progress bar aside)
    assert len(errors) == 1 and words in errors[0], p.stderr
    assert not (tmp_path / "out").exists()
