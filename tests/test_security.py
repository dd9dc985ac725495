"""The lattice estimator (crypto.security) against published figures, the presets' levels, and the
`jscec security estimate` command."""
import json
import math
from types import SimpleNamespace

import pytest

from crypto import security as S
from crypto.cipher import PRESETS
from tests.conftest import jscec


def test_kyber512_round3_core_svp_matches_the_specification():
    # Avanzi et al., CRYSTALS-Kyber spec v3.02 (2021), Table 4: primal core-SVP 118 classical, 107 quantum.
    ref = S.kyber512_reference()
    assert ref["primal"]["core_svp_classical"] == pytest.approx(S.KYBER512_PUBLISHED["classical"], abs=3)
    assert ref["primal"]["core_svp_quantum"] == pytest.approx(S.KYBER512_PUBLISHED["quantum"], abs=3)
    # The dual attack lands within a couple of bits of the primal one (the spec's script says the same).
    assert abs(ref["dual"]["core_svp_classical"] - ref["primal"]["core_svp_classical"]) < 3


@pytest.mark.parametrize("name", ["lp-192", "lp-256"])
def test_paper_presets_land_in_the_published_operation_ranges(name):
    e = S.estimate(PRESETS[name])
    lo, hi = S.PUBLISHED_OPS_RANGE[name]
    assert lo <= e["ops_classical"] <= hi
    assert not e["meets_128"] and e["core_svp_classical"] < 80


def test_the_128_bit_preset_keeps_the_qam_modulus_and_meets_128_bits():
    p = PRESETS["lp-512"]
    assert p.p == 4093 and p.n1 == p.n2 == 512
    e = S.estimate(p)
    assert e["meets_128"] and e["core_svp_classical"] >= 128
    # Every attack on every instance reaches it, not only the cheapest's summary.
    assert min(a["core_svp_classical"] for a in e["attacks"]) >= 128
    assert "meets the 128-bit level" in p.security_estimate
    # Less decryption noise than lp-192 at the higher level: σ shrank faster than √n grew.
    assert p.decryption_noise_std() < PRESETS["lp-192"].decryption_noise_std()


def test_estimates_move_the_right_way():
    base = dict(name="x", n1=384, n2=384, p=4093)
    bits = [S.estimate(SimpleNamespace(**base, s=s))["bits"] for s in (3.0, 5.0, 8.0)]
    assert bits == sorted(bits) and bits[0] < bits[-1]                  # wider errors: harder
    wider = S.estimate(SimpleNamespace(**dict(base, n1=448, n2=448), s=5.0))["bits"]
    assert wider > bits[1]                                              # larger n: harder
    assert S.delta_bkz(100) > S.delta_bkz(400) > 1                      # stronger reduction, smaller δ
    # Bounding the message-recovery samples can only make the attack harder.
    assert S.estimate(PRESETS["lp-192"], k=16)["bits"] >= S.estimate(PRESETS["lp-192"])["bits"]


def test_an_unsolvable_instance_reports_infinite_cost():
    inst = S.LweInstance("wide", 64, 64, 4093, 900.0, 900.0)
    r = S.primal_usvp(inst)
    assert math.isinf(r.core_svp_classical) and r.as_dict()["core_svp_classical"] is None


def test_smallest_s_brackets_the_target():
    s = S.smallest_s(512, 4093)
    assert S.estimate(SimpleNamespace(name="x", n1=512, n2=512, p=4093, s=s))["bits"] >= 128
    assert S.estimate(SimpleNamespace(name="x", n1=512, n2=512, p=4093, s=s - 0.05))["bits"] < 128
    assert PRESETS["lp-512"].s >= s                                    # the preset keeps a margin


def test_cli_estimate_prints_every_preset_and_writes_json(tmp_path):
    out = tmp_path / "est.json"
    p = jscec("security", "estimate", "--json", out)
    for name in PRESETS:
        assert name in p.stdout
    assert "Kyber-512" in p.stdout and "BELOW 128-bit" in p.stdout and "meets 128-bit" in p.stdout
    doc = json.loads(out.read_text())
    assert [e["params"] for e in doc["presets"]] == list(PRESETS)
    assert doc["check"]["kyber512"]["published"]["classical"] == 118
    assert jscec("security").stdout.count("core-SVP") >= 3               # no action: the estimate


def test_model_cards_carry_the_estimate(tmp_path):
    from models.checkpoint import load_checkpoint, save_checkpoint

    for mode, params, want in [("lwe", "lp-512", "meets the 128-bit level"), ("lwe", "lp-192", "well below"),
                               ("mask", "lp-192", "AES-128-CTR")]:
        path = tmp_path / f"{mode}-{params}.pt"
        save_checkpoint(path, {"config": {}, "state_dict": {}}, {"cipher_mode": mode, "cipher_params": params})
        card = json.loads(path.with_suffix(".json").read_text())
        assert want in card["security"] and card == load_checkpoint(path)["card"]
