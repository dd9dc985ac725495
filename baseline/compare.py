"""DeepJSCEC against the digital baselines (paper Fig. 3): every baseline configuration over AWGN, each code's
BER/FER curve with its predicted cliff, and the figures (``jscec compare``)."""
from __future__ import annotations

import numpy as np

#: Where each modulation's codes fall off the cliff (dB), for the BER curves: a window around it.
BER_WINDOWS = {"bpsk": (-4.0, 5.0), "qpsk": (-1.0, 8.0), "16qam": (4.0, 14.0), "64qam": (9.0, 19.0)}


def read_deepjscec(path) -> dict:
    """One `jscec eval --json` file: {"checkpoint", "dataset", "rho", "results": [{snr_db, bob: {psnr, ssim}}]}."""
    import json
    from pathlib import Path

    from jscec.errors import UserError

    try:
        doc = json.loads(Path(path).read_text())
        rows = sorted(({"snr_db": float(r["snr_db"]), "psnr": float(r["bob"]["psnr"]),
                        "ssim": float(r["bob"]["ssim"])} for r in doc["results"]), key=lambda r: r["snr_db"])
    except FileNotFoundError:
        raise UserError(f"DeepJSCEC result file not found: {path}") from None
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path} is not a `jscec eval --json` result (needs results[].snr_db and .bob.psnr/ssim)") \
            from None
    label = Path(str(doc.get("checkpoint") or path)).stem
    return {"file": str(path), "label": f"DeepJSCEC ({label})", "checkpoint": doc.get("checkpoint"),
            "rho": doc.get("rho"), "dataset": doc.get("dataset"), "results": rows,
            "mean_image": doc.get("mean_image")}


def compare_baselines(images, mean_u8, codecs, mods, rates, snrs_db, key: bytes, *, k_symbols: int, seed: int,
                      ldpc_iters: int, decoder: str, ber_codewords: int, ber_step: float, progress: bool = False,
                      on_result=lambda res: None) -> tuple[list, list]:
    """(runs, curves): :func:`baseline.pipeline.simulate` of every (codec, mod, rate), then per (mod, rate) the
    code's decoded BER/FER curve around its cliff with the threshold it predicts beside the measured one."""
    from baseline.pipeline import simulate

    runs = []
    for codec in codecs:
        for mod in mods:
            for rate in rates:
                res = simulate(images, mean_u8, codec, mod, rate, snrs_db, key, k_symbols=k_symbols, seed=seed,
                               max_iter=ldpc_iters, method=decoder, progress=progress)
                runs.append(res)
                on_result(res)
    measured = {(mod, rate): next((r["threshold_snr_db"] for r in runs if r["mod"] == mod and r["rate"] == rate
                                   and r["fits"]), None) for mod in mods for rate in rates}
    curves = ldpc_curves([(m, r) for m in mods for r in rates], measured, k_symbols=k_symbols, seed=seed,
                         ldpc_iters=ldpc_iters, decoder=decoder, ber_codewords=ber_codewords, ber_step=ber_step)
    return runs, curves


def ldpc_curves(pairs, measured: dict, *, k_symbols: int, seed: int, ldpc_iters: int, decoder: str,
                ber_codewords: int, ber_step: float) -> list:
    """Per (mod, rate) the code's decoded BER/FER curve around its cliff, the image-cliff threshold it predicts
    and the measured one (``measured[(mod, rate)]``: dB or None)."""
    from baseline.pipeline import coded_error_curve, link_budget, predicted_threshold, waterfall_snr

    curves = []
    for mod, rate in pairs:
        lo, hi = BER_WINDOWS[mod]
        budget = link_budget(mod, rate, k_symbols)
        curve = coded_error_curve(mod, rate, np.arange(lo, hi + 1e-9, ber_step), ber_codewords, seed=seed,
                                  max_iter=ldpc_iters, method=decoder, short_info=budget.short_info)
        meas = measured.get((mod, rate))
        # The frame's full codewords and its shortened one, each with its own FER curve.
        pred = predicted_threshold(curve, budget.full_codewords, shortened=bool(budget.short_info))
        wf = waterfall_snr(curve)
        curves.append({"mod": mod, "rate": rate, "codewords_per_image": budget.codewords, "curve": curve,
                       "predicted_threshold_db": pred, "waterfall_ber1e-4_db": wf,
                       "measured_threshold_db": meas,
                       "within_1db": None if meas is None or pred is None else abs(meas - pred) <= 1.0})
    return curves


def plot_compare(deep, runs, curves, mean_img, png, ber_png, note):
    """Fig. 3's PSNR/SSIM panels (``png``) and the codes' BER/FER curves with the measured cliffs (``ber_png``)."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    styles = {"bpsk": "v", "qpsk": "s", "16qam": "o", "64qam": "^"}
    for metric, ax in zip(("psnr", "ssim"), axes):
        for d in deep:
            ax.plot([r["snr_db"] for r in d["results"]], [r[metric] for r in d["results"]], "-", lw=2,
                    label=d["label"])
        for r in runs:
            ls = "--" if r["rate"] == "1/2" else ":"
            ax.plot([x["snr_db"] for x in r["results"]], [x[metric] for x in r["results"]], ls,
                    marker=styles.get(r["mod"], "."), ms=4,
                    label=f"{r['codec'].upper()}+AES+LDPC {r['rate']} {r['mod'].upper()}")
        ax.axhline(mean_img[metric], color="gray", lw=1, label="mean image")
        ax.set_xlabel("SNR$_b$ (dB)")
        ax.set_ylabel("PSNR (dB)" if metric == "psnr" else "SSIM")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle("CIFAR-10, $\\rho$ = 1/6" + (f" — {note}" if note else ""), fontsize=10)
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)
    plot_ber(curves, ber_png)


def plot_ber(curves, ber_png):
    """Each code's decoded BER (solid) and FER (dashed) on AWGN, with the measured image cliffs."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for c in curves:
        snr = [x["snr_db"] for x in c["curve"]]
        line, = ax.semilogy(snr, [max(x["ber"], 1e-7) for x in c["curve"]], "-",
                            label=f"LDPC {c['rate']} {c['mod'].upper()} BER")
        ax.semilogy(snr, [max(x["fer"], 1e-7) for x in c["curve"]], "--", color=line.get_color(), lw=1)
        if c.get("measured_threshold_db") is not None:
            ax.axvline(c["measured_threshold_db"], color=line.get_color(), lw=0.8, alpha=0.6)
    ax.set_ylim(1e-5, 1)
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("decoded BER (solid), FER (dashed)")
    ax.set_title("802.11ad LDPC n=672 on AWGN with Gray QAM; vertical lines: measured image cliff", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    Path(ber_png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(ber_png, dpi=120)
    plt.close(fig)
