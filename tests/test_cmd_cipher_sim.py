"""`jscec cipher-sim` end to end through the CLI entry point: what it prints and writes.

The simulation's numbers are tested on the library function, ``tests/test_secure_channel.py``.
"""
from __future__ import annotations

import json
import re

import pytest

from scripts.cli import main

FIELDS = {"mode", "params", "snr_db", "plaintext_noise_std", "plaintext_error_rate", "decryption_noise_std",
          "symbols"}


def sim(tmp_path, *argv):
    path = tmp_path / "out" / "sim.json"
    assert main(["cipher-sim", *argv, "--json", str(path)]) == 0
    text = path.read_text()
    return json.loads(text), text


def test_lwe_at_60_db_prints_and_writes_one_row(tmp_path, capsys):
    doc, _ = sim(tmp_path, "--mode", "lwe", "--params", "lp-192", "--snr", "60", "--symbols", "8192")
    out = capsys.readouterr().out
    assert "lwe" in out and "lp-192" in out and "seed 0" in out
    assert doc["seed"] == 0 and "seed" in doc["note"]
    (r,) = doc["results"]
    assert FIELDS <= set(r)
    assert (r["mode"], r["params"], r["snr_db"], r["symbols"]) == ("lwe", "lp-192", 60.0, 8192)


def test_several_snrs_modes_and_lwe_pk_note(tmp_path, capsys):
    doc, text = sim(tmp_path, "--mode", "lwe-pk", "mask", "--snr", "0", "20", "inf", "--symbols", "1000",
                    "--frame-symbols", "256", "--seed", "3")
    out = capsys.readouterr().out
    assert doc["seed"] == 3
    rows = doc["results"]
    assert [(r["mode"], r["snr_db"]) for r in rows] == [("lwe-pk", 0.0), ("lwe-pk", 20.0), ("lwe-pk", None),
                                                       ("mask", 0.0), ("mask", 20.0), ("mask", None)]
    assert "error-free" in doc["note"] and "error-free" in out
    # No secret material: no long hex strings, only the 8-hex-digit key id.
    assert not re.search(r"[0-9a-f]{16}", text)


def test_same_seed_same_file(tmp_path):
    a, _ = sim(tmp_path, "--snr", "10", "--symbols", "600", "--seed", "7")
    b, _ = sim(tmp_path, "--snr", "10", "--symbols", "600", "--seed", "7")
    assert a == b


def test_bad_arguments_are_one_line_errors(capsys):
    assert main(["cipher-sim", "--symbols", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--symbols" in err
    with pytest.raises(SystemExit):
        main(["cipher-sim", "--mode", "rot13"])
