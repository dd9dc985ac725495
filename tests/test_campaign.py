"""Campaigns (link.campaign): plans refused with the line and key named, a tiny campaign stored and reported,
the same numbers as `jscec eval` / `jscec baseline`, a changed plan refused, and a campaign killed mid-cell
that finishes with the store an uninterrupted run makes."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jscec.errors import UserError
from link.campaign.plan import load_plan
from tests.conftest import ROOT, jscec

PLAN = """\
[campaign]
name = "tiny"
images = {images}
repeats = 2
data = "{data}"

[link]
kind = "symbols"

[grid]
snr_db = [0, 10]

[[deepjscec]]
model = "{model}"

[[baseline]]
codec = "heif"
pairs = [["qpsk", "1/2"]]
snr_db = [-2, 4]
"""


def _plan(tmp_path, model, data, images=4, text=PLAN, name="plan.toml"):
    p = tmp_path / name
    p.write_text(text.format(model=model, data=data, images=images))
    return p


# -- plan validation ------------------------------------------------------------------------------------
BAD = [
    ("[campaign]\nname = 'x'\n[grid]\nsnr_ddb = [1]\n[[deepjscec]]\nmodel = 'cifar10-lwe'\n",
     "line 4: [grid] snr_ddb: unknown key"),
    ("[campaign]\nname = 'x'\n[link]\nkind = 'symbols'\n[grid]\nsnr_db = [1]\nsnr_e_db = [3]\n"
     "[[deepjscec]]\nmodel = 'cifar10-lwe'\n", "line 7: [grid] snr_e_db: not an axis of link 'symbols'"),
    ("[campaign]\nname = 'x'\n[link]\nkind = 'ota'\ntx = 'fake-pluto'\nbob = 'fake-pluto'\n[grid]\nsnr_db = [1]\n"
     "[[deepjscec]]\nmodel = 'cifar10-lwe'\n", "line 8: [grid] snr_db: not an axis of link 'ota'"),
    ("[campaign]\nname = 'x'\nrecord = true\n[[deepjscec]]\nmodel = 'cifar10-lwe'\n",
     "line 3: [campaign] record: SigMF recordings are made over"),
    ("[campaign]\nname = 'x'\nimages = 'ten'\n[[deepjscec]]\nmodel = 'cifar10-lwe'\n",
     "line 3: [campaign] images: must be an integer"),
    ("[campaign]\nname = 'x'\nrepeats = 3\nseeds = [1, 2]\n[[deepjscec]]\nmodel = 'cifar10-lwe'\n",
     "line 3: [campaign] repeats: repeats = 3 but 2 seeds"),
    ("[campaign]\nname = 'x'\n[[baseline]]\ncodec = 'heif'\n\nmod = ['qpsk', '8psk']\n",
     "line 6: [[baseline]] #1 mod: unknown modulation '8psk'"),
    ("[campaign]\nname = 'x'\n[[deepjscec]]\nmodel = 'cifar10-lwe'\n[[deepjscec]]\nmodel = 'cifar10-lwe'\n"
     "mode = 'mask'\n", "line 7: [[deepjscec]] #2 mode: the symbol-level simulation runs the model's own mode"),
    ("[campaign]\nname = 'x'\n[[deepjscec]]\nmodel = 'no-such-model'\n",
     "line 4: [[deepjscec]] #1 model: unknown model 'no-such-model'"),
    ("[campaign]\nname = 'x'\n[radio]\ntx = 'pluto'\n", "line 3: [radio]: unknown table"),
    ("[campaign]\nname = 'x'\n[link]\nkind = 'awgn'\ncfo = 0.1\n[[deepjscec]]\nmodel = 'cifar10-lwe'\n",
     "line 5: [link] cfo: an impairment of the simulated channel"),
    ("[campaign]\nname = 'x'\n[link]\nkind = 'awgn'\n[[baseline]]\ncodec = 'heif'\n",
     "line 5: [[baseline]] #1: the baseline's AWGN simulation is kind = \"symbols\""),
    ("[campaign]\nname = 'x'\n[grid]\nsnr_db = {start = 5, stop = 0, step = 1}\n[[deepjscec]]\nmodel = 'cifar10-lwe'\n",
     "line 4: [grid] snr_db: a range needs step > 0"),
    ("[campaign]\nname = 'x'\nimages = 3\n", "[campaign]: nothing to run"),
    ("[campaign\nname = 'x'\n", "not valid TOML"),
]


@pytest.mark.parametrize("text, message", BAD, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(BAD)])
def test_a_bad_plan_is_refused_with_its_line_and_key(tmp_path, text, message):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(UserError) as exc:
        load_plan(p)
    assert message in str(exc.value)


def test_the_example_plans_validate_and_expand():
    plans = {p.stem: load_plan(p) for p in sorted((ROOT / "plans").glob("*.toml"))}
    assert {"fig3-sim", "fig3-ota", "bob-eve-grid"} <= set(plans)
    fig3 = plans["fig3-sim"]
    # lwe and mask at 6 SNRs x 3 repeats, HEIF with 4 (mod, rate) pairs (every SNR in one cell) x 3 repeats
    assert len(fig3.cells) == 2 * 6 * 3 + 4 * 3 and fig3.doc["campaign"]["images"] == 200
    assert all(c.radio for c in plans["fig3-ota"].cells)
    grid = plans["bob-eve-grid"].cells
    assert len({(c.settings["point"]["snr_db"], c.settings["point"]["snr_e_db"]) for c in grid}) == 16


# -- a tiny campaign ------------------------------------------------------------------------------------
def test_a_tiny_campaign_is_stored_reported_and_resumed(tiny_model, tiny_data, tmp_path, capsys):
    from link.campaign.execute import CampaignOptions, run_campaign
    from link.campaign.report import make_report
    from link.campaign.store import SCHEMA_VERSION

    plan = _plan(tmp_path, tiny_model, tiny_data)
    store = tmp_path / "s.sqlite"
    res = run_campaign(plan, CampaignOptions(store=str(store)), log=lambda *a: None)
    assert (res["ran"], res["failed"]) == (6, 0)       # 2 seeds x (2 DeepJSCEC SNRs + 1 baseline cell)
    db = sqlite3.connect(store)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    meta = dict(db.execute("SELECT key, value FROM meta"))
    assert int(meta["schema_version"]) == SCHEMA_VERSION and meta["plan_text"] == plan.read_text()
    assert db.execute("SELECT COUNT(*) FROM images WHERE role = 'bob'").fetchone()[0] == 2 * (2 * 4 + 2 * 4)
    assert db.execute("SELECT COUNT(*) FROM images WHERE role = 'eve'").fetchone()[0] == 2 * 2 * 4
    sw = json.loads(db.execute("SELECT software FROM sessions").fetchone()[0])
    assert sw["python"] and "torch" in sw and "git_commit" in sw
    assert not list(tmp_path.glob("**/*.key")) or all(p.stat().st_mode & 0o077 == 0 for p in tmp_path.glob("**/*.key"))
    key_text = (tmp_path / "s.keys" / "campaign.key").read_text().strip()
    assert key_text not in store.read_bytes().decode("latin-1")       # secrets stay out of the store
    # Running it again runs nothing.
    assert run_campaign(plan, CampaignOptions(store=str(store)), log=lambda *a: None)["ran"] == 0
    # A changed plan is refused; --force adopts it and keeps the cells the plans share.
    changed = _plan(tmp_path, tiny_model, tiny_data, text=PLAN.replace("snr_db = [0, 10]", "snr_db = [0, 20]"),
                    name="changed.toml")
    with pytest.raises(UserError, match="another plan"):
        run_campaign(changed, CampaignOptions(store=str(store)), log=lambda *a: None)
    res = run_campaign(changed, CampaignOptions(store=str(store), force=True), log=lambda *a: None)
    assert (res["ran"], res["skipped"]) == (2, 4)
    assert db.execute("SELECT COUNT(*) FROM cells WHERE in_plan = 0").fetchone()[0] == 2
    # The report: figures, tables, CSV; its numbers are the store's.
    out = make_report(store, tmp_path / "rep", export=["points"], log=lambda *a: None)
    names = {Path(f).name for f in out["files"]}
    assert {"report.md", "psnr_ssim.png", "psnr_ssim.csv", "bob_eve.png", "store_points.csv"} <= names
    assert any(n.startswith("vs_heif") and n.endswith(".png") for n in names)
    row = next(r for r in out["rows"] if r.system == "deepjscec" and r.role == "bob" and r.group == 20.0)
    stored = [v for (v,) in db.execute(
        "SELECT i.psnr FROM images i JOIN cells c USING (cell_id) WHERE c.system = 'deepjscec' AND i.role = 'bob' "
        "AND i.snr_db = 20 AND c.in_plan = 1")]
    assert row.n == 8 and row.psnr == pytest.approx(sum(stored) / len(stored), abs=1e-9)
    assert row.psnr_lo < row.psnr < row.psnr_hi
    assert "| DeepJSCEC" in (tmp_path / "rep" / "report.md").read_text()
    # `jscec compare --store`: the same report, and the LDPC curves of the store's pairs beside its cliffs.
    from scripts.cli import main

    cmp = tmp_path / "cmp"
    assert main(["compare", "--store", str(store), "--ber-codewords", "10", "--ber-step", "3", "--png",
                 str(cmp / "c.png"), "--ber-png", str(cmp / "b.png"), "--json", str(cmp / "c.json")]) == 0
    doc = json.loads((cmp / "c.json").read_text())
    assert [(c["mod"], c["rate"]) for c in doc["ldpc_curves"]] == [("qpsk", "1/2")]
    assert (cmp / "b.png").stat().st_size and (cmp / "psnr_ssim.png").stat().st_size


def test_a_framed_awgn_campaign_stores_frames_mer_and_eve_at_her_own_snr(tiny_model, tiny_data, tmp_path):
    pytest.importorskip("gnuradio.gr")
    from link.campaign.execute import CampaignOptions, run_campaign
    from link.campaign.report import make_report

    plan = tmp_path / "awgn.toml"
    plan.write_text(f"""[campaign]\nname = "grid"\nimages = 2\ndata = "{tiny_data}"\n[link]\nkind = "awgn"\n"""
                    f"""[grid]\nsnr_db = [30]\nsnr_e_db = [5]\n[[deepjscec]]\nmodel = "{tiny_model}"\n""")
    store = tmp_path / "g.sqlite"
    assert run_campaign(plan, CampaignOptions(store=str(store)), log=lambda *a: None)["ran"] == 1
    db = sqlite3.connect(store)
    pts = {r[0]: r[1:] for r in db.execute("SELECT role, snr_db, mer_db, frames_sent, frames_ok FROM points")}
    assert pts["bob"][0] == 30 and pts["eve"][0] == 5 and pts["bob"][1] > 27 > pts["eve"][1]
    assert pts["bob"][2:] == (2, 2)
    frames = db.execute("SELECT role, counter, ok, mer_db, cfo FROM frames ORDER BY role, seq").fetchall()
    assert len(frames) == 4 and all(ok == 1 and mer is not None for _, _, ok, mer, _ in frames)
    assert db.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 4
    (out_dir,), = db.execute("SELECT out_dir FROM cells")
    assert (Path(out_dir) / "result.json").is_file()
    files = {Path(f).name for f in make_report(store, tmp_path / "rep", log=lambda *a: None)["files"]}
    assert {"mer.png", "bob_eve.png"} <= files


def test_the_report_gives_the_numbers_of_jscec_eval_and_jscec_baseline(tiny_model, tiny_data, tmp_path):
    """Same seeds, same numbers: a repeat's cells are `jscec eval --seed S` and `jscec baseline --seed S` with
    the cell's AES key (derived from the campaign key) and a fresh counter state."""
    from crypto.aes_ctr import save_key
    from link.campaign.cells import cell_aes_key
    from link.campaign.execute import CampaignOptions, run_campaign
    from link.campaign.report import make_report
    from scripts.cli import main

    plan = _plan(tmp_path, tiny_model, tiny_data)
    store = tmp_path / "s.sqlite"
    run_campaign(plan, CampaignOptions(store=str(store), repeats=None), log=lambda *a: None)
    rows = make_report(store, tmp_path / "rep", log=lambda *a: None)["rows"]
    db = sqlite3.connect(store)
    for seed in (0, 1):
        assert main(["eval", "--model", str(tiny_model), "--data", str(tiny_data), "--images", "4", "--snr", "0",
                     "10", "--seed", str(seed), "--json", str(tmp_path / f"e{seed}.json")]) == 0
        ev = json.loads((tmp_path / f"e{seed}.json").read_text())
        for r in ev["results"]:
            for role in ("bob", "eve"):
                (psnr, ssim), = db.execute(
                    "SELECT p.psnr, p.ssim FROM points p JOIN cells c USING (cell_id) WHERE c.system = 'deepjscec' "
                    "AND c.seed = ? AND p.role = ? AND p.snr_db = ?", (seed, role, r["snr_db"]))
                assert (psnr, ssim) == pytest.approx((r[role]["psnr"], r[role]["ssim"]), abs=1e-9)
        (cell_id,), = db.execute("SELECT cell_id FROM cells WHERE system = 'baseline' AND seed = ?", (seed,))
        (tmp_path / f"k{seed}").mkdir(mode=0o700)
        key = save_key(tmp_path / f"k{seed}" / "aes.key", cell_aes_key(store, cell_id))
        assert main(["baseline", "--key-file", str(key), "--data", str(tiny_data), "--images", "4", "--seed",
                     str(seed), "--mod", "qpsk", "--rate", "1/2", "--snr", "-2", "4",
                     "--json", str(tmp_path / f"b{seed}.json")]) == 0
        (run,) = json.loads((tmp_path / f"b{seed}.json").read_text())["runs"]
        got = db.execute("SELECT p.snr_db, p.psnr, p.ssim, p.undecodable FROM points p JOIN cells c USING (cell_id) "
                         "WHERE c.cell_id = ? ORDER BY p.snr_db", (cell_id,)).fetchall()
        assert got == [(r["snr_db"], pytest.approx(r["psnr"], abs=1e-9), pytest.approx(r["ssim"], abs=1e-9),
                        r["undecodable"]) for r in run["results"]]
    # The report's means over both repeats are the mean of the two commands' per-seed means (equal image counts).
    row = next(r for r in rows if r.system == "deepjscec" and r.role == "bob" and r.group == 10.0)
    evs = [json.loads((tmp_path / f"e{s}.json").read_text()) for s in (0, 1)]
    want = sum(next(r["bob"]["psnr"] for r in e["results"] if r["snr_db"] == 10.0) for e in evs) / 2
    assert row.psnr == pytest.approx(want, abs=1e-4)


# -- interrupted campaigns ------------------------------------------------------------------------------
RESUME_PLAN = PLAN.replace("snr_db = [0, 10]", "snr_db = [0, 5, 10, 15, 20]").replace("repeats = 2", "repeats = 3")


def _contents(path) -> dict:
    """Everything a store holds but timings, sessions and machine-local paths."""
    db = sqlite3.connect(path)
    out = {}
    cols = ("cell_id", "ordinal", "system", "label", "link", "repeat", "seed", "settings", "in_plan", "summary")
    out["cells"] = sorted(db.execute(f"SELECT {', '.join(cols)} FROM cells"))
    for t in ("points", "images", "frames", "drops", "devices"):
        out[t] = sorted(db.execute(f"SELECT * FROM {t}"), key=repr)
    out["meta"] = sorted(r for r in db.execute("SELECT key, value FROM meta") if r[0] not in ("created", "plan_path"))
    return out


def test_a_campaign_killed_mid_cell_finishes_with_the_store_of_an_uninterrupted_run(tiny_model, tiny_data,
                                                                                     tmp_path):
    plan = _plan(tmp_path, tiny_model, tiny_data, text=RESUME_PLAN)
    killed, whole = tmp_path / "killed" / "s.sqlite", tmp_path / "whole" / "s.sqlite"
    for store in (killed, whole):          # one campaign key for both (the baseline cells' AES keys derive from it)
        (store.parent / "s.keys").mkdir(parents=True)
        (store.parent / "s.keys" / "campaign.key").write_text("00112233445566778899aabbccddeeff\n")
        (store.parent / "s.keys" / "campaign.key").chmod(0o600)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "scripts.cli", "campaign", str(plan), "--store", str(killed)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        stored = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if killed.exists():
                try:
                    stored = sqlite3.connect(killed, timeout=1).execute("SELECT COUNT(*) FROM cells").fetchone()[0]
                except sqlite3.OperationalError:
                    stored = 0
                if stored:
                    break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    total = len(load_plan(plan).cells)
    assert 0 < stored < total, "the campaign was killed after its first cell and before its last"
    # Both finish in the same conditions (torch's thread count changes the last bits of a convolution).
    again = jscec("campaign", plan, "--store", killed)
    assert f"{total - stored} cells run, {stored} already stored, 0 failed" in again.stdout
    jscec("campaign", plan, "--store", whole)
    a, b = _contents(killed), _contents(whole)
    assert len(a["cells"]) == total and a == b
    statuses = [s for (s,) in sqlite3.connect(killed).execute("SELECT status FROM sessions ORDER BY session_id")]
    assert statuses == ["running", "finished"]      # the killed session never closed; nothing else marks it


def test_sigterm_stops_a_campaign_between_transactions(tiny_model, tiny_data, tmp_path):
    plan = _plan(tmp_path, tiny_model, tiny_data, text=RESUME_PLAN)
    store = tmp_path / "t.sqlite"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "scripts.cli", "campaign", str(plan), "--store", str(store),
                             "--jobs", "2"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if store.exists():
            try:
                if sqlite3.connect(store, timeout=1).execute("SELECT COUNT(*) FROM cells").fetchone()[0]:
                    break
            except sqlite3.OperationalError:
                pass
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    db = sqlite3.connect(store)
    assert [s for (s,) in db.execute("SELECT status FROM sessions")] == ["interrupted"]
    n = db.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    assert 0 < n < len(load_plan(plan).cells)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
