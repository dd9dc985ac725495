"""`jscec compare`: DeepJSCEC against the digital baselines, PSNR and SSIM versus SNR_b (paper Fig. 3)."""
from __future__ import annotations

NAME = "compare"
HELP = "plot DeepJSCEC against the digital baselines (PSNR/SSIM vs SNR, paper Fig. 3) and the LDPC BER curves"
DESCRIPTION = (
    "Simulate every baseline configuration (codec x modulation x LDPC rate) over AWGN at rho = 1/6 as in "
    "`jscec baseline`, read DeepJSCEC results from `jscec eval --json` files (--deepjscec), and draw PSNR and SSIM "
    "versus SNR_b in one PNG in the style of the paper's Fig. 3. A second PNG (--ber-png) shows each code's "
    "decoded BER and frame-error rate on AWGN with the same modulation, and the JSON lists every number plotted, "
    "with each configuration's measured cliff threshold against the one predicted from its frame-error curve.")

DEFAULT_SNRS = [float(s) for s in range(-2, 26)]   # issue 6: 0 to 25 dB
# Where each modulation's codes fall off the cliff (dB), for the BER curves: a window around it.
BER_WINDOWS = {"bpsk": (-4.0, 5.0), "qpsk": (-1.0, 8.0), "16qam": (4.0, 14.0), "64qam": (9.0, 19.0)}


def add_arguments(p):
    from baseline.report import CODECS

    p.add_argument("--deepjscec", nargs="*", default=[], metavar="PATH", help="`jscec eval --json` result file(s)")
    p.add_argument("--codec", nargs="+", default=["heif"], help=f"baseline codec(s): {', '.join(CODECS)}")
    p.add_argument("--mod", nargs="+", default=["bpsk", "qpsk", "16qam", "64qam"], help="modulation(s)")
    p.add_argument("--rate", nargs="+", default=["1/2", "3/4"], help="LDPC code rate(s)")
    p.add_argument("--snr", type=float, nargs="+", default=DEFAULT_SNRS, help="SNR_b values in dB")
    p.add_argument("--images", type=int, default=100, help="test images per configuration")
    p.add_argument("--ber-codewords", type=int, default=200, help="random codewords per SNR for the BER curves")
    p.add_argument("--ber-step", type=float, default=0.5, help="SNR step (dB) of the BER curves")
    p.add_argument("--data", default=None, help="dataset (default: $JSCEC_DATA or the CIFAR-10 JPEG copy)")
    p.add_argument("--ldpc-iters", type=int, default=20, help="maximum LDPC decoder iterations")
    p.add_argument("--decoder", default="nms", choices=("nms", "bp"), help="LDPC decoder")
    p.add_argument("--key-file", default=None, help="AES-128 key file (default: a fresh random key, not stored)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data split and the channel noise")
    p.add_argument("--png", default="out/compare/compare.png", help="PSNR/SSIM figure")
    p.add_argument("--ber-png", default="out/compare/compare_ber.png", help="BER/FER figure")
    p.add_argument("--json", default="out/compare/compare.json", metavar="PATH", help="every number in the figures")


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


def _plots(deep, runs, curves, mean_img, png, ber_png, note):
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


def run(args) -> int:
    import sys

    import numpy as np

    from baseline.pipeline import (channel_uses, coded_error_curve, eval_images, link_budget, predicted_threshold,
                               simulate, waterfall_snr)
    from baseline.report import key_for_run, parse_choices, table
    from scripts.output import write_json

    deep = [read_deepjscec(p) for p in args.deepjscec]
    codecs, mods, rates = parse_choices(args.codec, args.mod, args.rate, args.ldpc_iters)
    progress = sys.stderr.isatty()
    images, mean_u8, name = eval_images(args.data, args.images, seed=args.seed, progress=progress)
    k = channel_uses(1 / 6, images.shape[1:])
    key = key_for_run(args.key_file)
    note = "" if deep else "no DeepJSCEC results given (--deepjscec): baselines only"
    if note:
        print(f"compare: {note}")
    runs = []
    for codec in codecs:
        for mod in mods:
            for rate in rates:
                res = simulate(images, mean_u8, codec, mod, rate, args.snr, key, k_symbols=k, seed=args.seed,
                               max_iter=args.ldpc_iters, method=args.decoder, progress=progress)
                runs.append(res)
                print(table(res))
    curves = []
    for mod in mods:
        lo, hi = BER_WINDOWS[mod]
        for rate in rates:
            budget = link_budget(mod, rate, k)
            curve = coded_error_curve(mod, rate, np.arange(lo, hi + 1e-9, args.ber_step), args.ber_codewords,
                                      seed=args.seed, max_iter=args.ldpc_iters, method=args.decoder,
                                      short_info=budget.short_info)
            measured = next((r["threshold_snr_db"] for r in runs if r["mod"] == mod and r["rate"] == rate
                             and r["fits"]), None)
            # The frame's full codewords and its shortened one, each with its own FER curve.
            pred = predicted_threshold(curve, budget.full_codewords, shortened=bool(budget.short_info))
            wf = waterfall_snr(curve)
            curves.append({"mod": mod, "rate": rate, "codewords_per_image": budget.codewords, "curve": curve,
                           "predicted_threshold_db": pred, "waterfall_ber1e-4_db": wf,
                           "measured_threshold_db": measured,
                           "within_1db": None if measured is None or pred is None else abs(measured - pred) <= 1.0})
    print("cliff thresholds: measured (half of the fitting images undecodable) vs predicted from the code's FER curve "
          "(1-(1-FER)^full·(1-FER_short) = 1/2) and the BER = 1e-4 waterfall")
    print(f"  {'mod':>6} {'rate':>5} {'measured':>9} {'predicted':>9} {'BER 1e-4':>9} {'|diff| <= 1 dB':>14}")
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    for c in curves:
        print(f"  {c['mod']:>6} {c['rate']:>5} {fmt(c['measured_threshold_db']):>9} "
              f"{fmt(c['predicted_threshold_db']):>9} {fmt(c['waterfall_ber1e-4_db']):>9} "
              f"{str(c['within_1db']):>14}")
    mean_img = runs[0]["mean_image"]
    _plots(deep, runs, curves, mean_img, args.png, args.ber_png, note)
    doc = {"command": "compare", "dataset": name, "rho": 1 / 6, "k_symbols": k, "images": len(images),
           "seed": args.seed, "note": note or None, "mean_image": mean_img, "deepjscec": deep, "baselines": runs,
           "ldpc_curves": curves, "png": str(args.png), "ber_png": str(args.ber_png)}
    print(f"wrote {args.png}, {args.ber_png}, {write_json(args.json, doc)}")
    return 0
