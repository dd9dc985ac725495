"""`jscec compare` (baseline.compare): the baselines against a DeepJSCEC eval file, figures and JSON."""
import json

from tests.test_baseline import _images, synthetic_dataset


def test_compare_reads_deepjscec_runs_baselines_and_predicts_each_cliff(tmp_path, monkeypatch, capsys):
    from scripts.cli import main

    synthetic_dataset(monkeypatch, _images(20))
    deep = tmp_path / "eval.json"
    deep.write_text(json.dumps({"checkpoint": "cifar10-lwe.pt", "results": [
        {"snr_db": 0.0, "bob": {"psnr": 15.5, "ssim": 0.44}}, {"snr_db": 10.0, "bob": {"psnr": 23.8, "ssim": 0.80}}]}))
    out = tmp_path / "c"
    assert main(["compare", "--deepjscec", str(deep), "--images", "3", "--mod", "qpsk", "--rate", "1/2",
                 "--snr", "-6", "12", "--ber-codewords", "20", "--ber-step", "2", "--png", str(out / "c.png"),
                 "--ber-png", str(out / "b.png"), "--json", str(out / "c.json")]) == 0
    doc = json.loads((out / "c.json").read_text())
    assert doc["deepjscec"][0]["label"] == "DeepJSCEC (cifar10-lwe)" and len(doc["deepjscec"][0]["results"]) == 2
    (run,) = doc["baselines"]
    assert [r["snr_db"] for r in run["results"]] == [-6.0, 12.0]
    no_fit = run["images"] - run["fits"]
    assert run["results"][0]["undecodable"] == run["images"] > run["results"][1]["undecodable"] == no_fit  # the cliff
    (curve,) = doc["ldpc_curves"]
    assert curve["mod"] == "qpsk" and curve["curve"] and curve["predicted_threshold_db"] is not None
    assert (out / "c.png").stat().st_size > 0 and (out / "b.png").stat().st_size > 0
    assert "cliff thresholds" in capsys.readouterr().out
    assert main(["compare", "--deepjscec", str(tmp_path / "none.json")]) == 2
    assert "not found" in capsys.readouterr().err
