"""The paper's Table III on this machine: classification accuracy against SNR of Models 1–4 on MNIST (here the
5,000-image ``mnist5k`` subset, or a full copy with ``--data``) and Fashion-MNIST, the compression ratio and
per-image computation time; Markdown, JSON and a PNG of accuracy against SNR, the paper's numbers beside ours.

Common random numbers: at each SNR every model sees the same channel-noise draw per test image (seeded by
``seed`` and the SNR's index), so Models 3 and 4 differ only by the CKKS computation. Models 2 and 3 run on
every test image, Model 4 on the first ``model4_images`` (Model 3 is reported on that subset too), Model 1 on
the first ``model1_images``.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from hesemcom import ckks, model1
from hesemcom.data import load
from hesemcom.nets import FEATURES, noise_std
from hesemcom.train import load_model, to_tensor

SNRS = (0, 5, 10, 15, 20, 25)

#: Table III of the paper (accuracy %, per SNR 0…25 dB; computation time s).
PAPER = {
    "mnist": {"model1": [10.09, 10.14, 69.94, 70.08, 82.46, 91.29], "model2": [88.73, 90.32, 91.13, 91.80, 92.11, 92.35],
              "model3": [81.35, 87.61, 89.88, 90.98, 91.80, 92.31], "model4": [81.37, 87.60, 89.60, 90.96, 91.82, 92.33],
              "time_s": {"model1": 0.4197, "model2": 0.000173, "model3": 0.000172, "model4": 73.84}},
    "fashion": {"model1": [10.00, 10.03, 64.52, 64.54, 70.08, 83.08], "model2": [80.50, 81.92, 82.53, 83.14, 83.23, 83.53],
                "model3": [74.39, 79.49, 80.18, 81.70, 82.08, 82.42], "model4": [74.39, 79.47, 80.18, 81.70, 82.08, 82.41],
                "time_s": {"model1": 0.4236, "model2": 0.003, "model3": 0.000266, "model4": 59.23}},
}
MODELS = ("model1", "model2", "model3", "model4")


@dataclass
class Table3Config:
    datasets: tuple = ("mnist5k", "fashion")
    data: dict = field(default_factory=dict)     # data set name → IDX folder (full MNIST etc.)
    snrs: tuple = SNRS
    model4_images: int = 256
    model1_images: int = 500
    max_test: int | None = None                  # cap every model's test images (quick runs, tests)
    key_every: int | None = None
    batch: int = 64                              # Model 4's batch for the throughput figure
    seed: int = 0
    checkpoints: str | None = None               # folder of {data}-model{1,2,3}.pt (default: bundled)


def channel_noise(n: int, snrs, seed: int) -> list[np.ndarray]:
    """Per SNR, (n, 196) real Gaussian noise of variance 10^(−SNR/10) (unit average feature power)."""
    return [noise_std(s) * np.random.default_rng([seed, i]).standard_normal((n, FEATURES)) for i, s in enumerate(snrs)]


@torch.no_grad()
def jscc_predict(net, x_u8: np.ndarray, noise: np.ndarray) -> np.ndarray:
    z = net.features(to_tensor(x_u8)) + torch.from_numpy(noise).float()
    return net.classify(z).argmax(1).numpy()


@torch.no_grad()
def classify(net, x_u8: np.ndarray) -> np.ndarray:
    return np.concatenate([net(to_tensor(x_u8[i:i + 1000])).argmax(1).numpy() for i in range(0, len(x_u8), 1000)])


def _paper_key(name: str) -> str:
    return "fashion" if name.startswith("fashion") else "mnist"


def evaluate_dataset(name: str, cfg: Table3Config, log=print) -> dict:
    split = load(name, cfg.data.get(name))
    ck = Path(cfg.checkpoints) if cfg.checkpoints else None
    nets = {m: load_model(split.name, m, ck / f"{split.name}-model{m}.pt" if ck else None)[0] for m in (1, 2, 3)}
    x, y = split.x_test, split.y_test
    if cfg.max_test:
        x, y = x[:cfg.max_test], y[:cfg.max_test]
    snrs = list(cfg.snrs)
    noises = channel_noise(len(x), snrs, cfg.seed)
    out = {"data": split.name, "test_images": len(x), "snrs_db": snrs, "accuracy": {m: [] for m in MODELS},
           "time_s_per_image": {}, "compression_ratio": FEATURES / (28 * 28),
           "channel_uses_per_image": FEATURES // 2}
    torch.set_num_threads(1)
    out["cpu_s_per_image"] = {}
    for m in (2, 3):
        t0, c0 = time.perf_counter(), time.process_time()
        for nz in noises:
            out["accuracy"][f"model{m}"].append(float(np.mean(jscc_predict(nets[m], x, nz) == y)))
        out["time_s_per_image"][f"model{m}"] = (time.perf_counter() - t0) / (len(x) * len(snrs))
        out["cpu_s_per_image"][f"model{m}"] = (time.process_time() - c0) / (len(x) * len(snrs))
        log(f"{split.name} model {m}: " + " ".join(f"{a:.4f}" for a in out["accuracy"][f"model{m}"]))
    # Model 4 and Model 3 on the same subset
    n4 = min(cfg.model4_images, len(x))
    he = nets[3].he_params()
    params = ckks.CkksParams()
    log(f"{split.name} model 4 on {n4} images: {params.describe()}")
    x4 = x[:n4].astype(np.float64) / 255.0
    r4 = ckks.run_model4(he, x4, [nz[:n4] for nz in noises], params, key_every=cfg.key_every, measure_size=True)
    acc4 = [float(np.mean(l.argmax(1) == y[:n4])) for l in r4.logits]
    acc3_sub = [float(np.mean(jscc_predict(nets[3], x[:n4], nz[:n4]) == y[:n4])) for nz in noises]
    agree = [float(np.mean(l.argmax(1) == jscc_predict(nets[3], x[:n4], nz[:n4]))) for l, nz in zip(r4.logits, noises)]
    out["accuracy"]["model4"] = acc4
    out["model4"] = {"images": n4, "model3_on_same_images": acc3_sub, "prediction_agreement_with_model3": agree,
                     "max_gap_points": float(max(abs(a - b) for a, b in zip(acc4, acc3_sub)) * 100),
                     "ckks": params.security(), **r4.summary()}
    # throughput over a batch of `batch` images (one key set) and the latency of a single image
    nb = min(cfg.batch, len(x))
    rb = ckks.run_model4(he, x[:nb].astype(np.float64) / 255.0, [noises[-1][:nb]], params)
    r1 = ckks.run_model4(he, x[:1].astype(np.float64) / 255.0, [noises[-1][:1]], params)
    out["model4"]["batch"] = {"images": nb, **rb.summary()}
    out["model4"]["single_image"] = r1.summary()
    out["time_s_per_image"]["model4"] = rb.summary()["seconds_per_image"]
    out["cpu_s_per_image"]["model4"] = rb.summary()["cpu_s_per_image"]
    log(f"{split.name} model 4: " + " ".join(f"{a:.4f}" for a in acc4) + f" (model 3 on the same images: "
        + " ".join(f"{a:.4f}" for a in acc3_sub) + f"); {out['time_s_per_image']['model4']:.3f} s/image over "
        f"{nb}, single image {r1.summary()['seconds_per_image']:.3f} s, max |Δ| {out['model4']['max_abs_error']:.2e}")
    # Model 1
    n1 = min(cfg.model1_images, len(x))
    key = np.random.default_rng(cfg.seed).bytes(16)
    c0 = time.process_time()
    prep = model1.prepare(x[:n1], key)
    c1 = time.process_time()
    rx_s = []
    t_cls = 0.0
    for i, s in enumerate(snrs):
        imgs, t = model1.receive(prep, s, np.random.default_rng([cfg.seed, 1000 + i]))
        rx_s.append(t)
        t0 = time.perf_counter()
        out["accuracy"]["model1"].append(float(np.mean(classify(nets[1], imgs) == y[:n1])))
        t_cls += time.perf_counter() - t0
    c2 = time.process_time()
    out["model1"] = {"images": n1, "modulation": model1.MOD, "code_rate": model1.RATE, "symbols": model1.SYMBOLS,
                     "payload_bytes_mean": float(prep["payload_bytes"][prep["fits"]].mean()) if prep["fits"].any() else None,
                     "fits": float(prep["fits"].mean()),
                     "clean_accuracy_of_decoded_images": float(np.mean(classify(nets[1], prep["recon"]) == y[:n1]))}
    out["time_s_per_image"]["model1"] = prep["encode_s_per_image"] + float(np.mean(rx_s)) + t_cls / (n1 * len(snrs))
    out["cpu_s_per_image"]["model1"] = (c1 - c0) / n1 + (c2 - c1) / (n1 * len(snrs))
    log(f"{split.name} model 1 on {n1} images: " + " ".join(f"{a:.4f}" for a in out["accuracy"]["model1"]))
    out["paper"] = PAPER[_paper_key(split.name)]
    return out


def run(cfg: Table3Config, out_dir=None, log=print) -> dict:
    t0 = time.perf_counter()
    res = {"config": {**asdict(cfg), "datasets": list(cfg.datasets)}, "datasets": {}}
    for name in cfg.datasets:
        res["datasets"][name] = evaluate_dataset(name, cfg, log)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    res["load_average"] = list(__import__("os").getloadavg())
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "table3.json").write_text(json.dumps(res, indent=1) + "\n")
        (out / "table3.md").write_text(markdown(res))
        plot(res, out / "table3.png")
        res["files"] = [str(out / f) for f in ("table3.md", "table3.json", "table3.png")]
    return res


def markdown(res: dict) -> str:
    lines = []
    for name, d in res["datasets"].items():
        p = d["paper"]
        lines.append(f"### {d['data']} ({d['test_images']} test images; Model 4 on {d['model4']['images']}, "
                     f"Model 1 on {d['model1']['images']})\n")
        lines.append("| SNR dB | " + " | ".join(f"Model {m[-1]} ours / paper" for m in MODELS) + " |")
        lines.append("|---" * (len(MODELS) + 1) + "|")
        for i, s in enumerate(d["snrs_db"]):
            cells = []
            for m in MODELS:
                ours = d["accuracy"][m][i] * 100
                pap = p[m][SNRS.index(s)] if s in SNRS else None
                cells.append(f"{ours:.2f} / {pap:.2f}" if pap is not None else f"{ours:.2f} / –")
            lines.append(f"| {s:g} | " + " | ".join(cells) + " |")
        t = d["time_s_per_image"]
        lines.append(f"| time s/image | " + " | ".join(f"{t[m]:.3g} / {p['time_s'][m]:.4g}" for m in MODELS) + " |")
        c = d.get("cpu_s_per_image", {})
        lines.append(f"| CPU s/image | " + " | ".join(f"{c[m]:.3g}" if m in c else "–" for m in MODELS) + " |")
        lines.append(f"| compression | " + " | ".join(f"{d['compression_ratio'] * 100:.0f}% / 25%" for _ in MODELS)
                     + " |\n")
        m4 = d["model4"]
        lines.append(f"Model 3 on Model 4's images: " + ", ".join(f"{a * 100:.2f}" for a in m4["model3_on_same_images"])
                     + f" %; largest gap {m4['max_gap_points']:.2f} points; max |plaintext − decrypted| score "
                     f"{m4['max_abs_error']:.2e}; Model 4 {m4['batch']['seconds_per_image']:.3f} s/image over a "
                     f"batch of {m4['batch']['images']} (single image {m4['single_image']['seconds_per_image']:.3f} s; "
                     f"key generation {m4['keygen_s_per_update']:.2f} s per update, {m4['key_updates']} update(s)).\n")
    return "\n".join(lines) + "\n"


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(res["datasets"].values())
    fig, axes = plt.subplots(1, len(sets), figsize=(6 * len(sets), 4.2), squeeze=False)
    for ax, d in zip(axes[0], sets):
        for m, c in zip(MODELS, ("C0", "C1", "C2", "C3")):
            ax.plot(d["snrs_db"], np.array(d["accuracy"][m]) * 100, "o-", color=c, label=f"Model {m[-1]} (ours)")
            ax.plot(SNRS, d["paper"][m], "x--", color=c, alpha=0.6, label=f"Model {m[-1]} (paper)")
        sub = d.get("model4", {}).get("model3_on_same_images")
        if sub:
            ax.plot(d["snrs_db"], np.array(sub) * 100, ":", color="C2", lw=1,
                    label=f"Model 3 on Model 4's {d['model4']['images']} images")
        ax.set_title(d["data"])
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
