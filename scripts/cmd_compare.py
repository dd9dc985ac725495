"""`jscec compare`: DeepJSCEC against the digital baselines, PSNR and SSIM versus SNR_b (paper Fig. 3)."""
from __future__ import annotations

NAME = "compare"
HELP = "plot DeepJSCEC against the digital baselines (PSNR/SSIM vs SNR, paper Fig. 3) and the LDPC BER curves"
DESCRIPTION = (
    "Simulate every baseline configuration (codec x modulation x LDPC rate) over AWGN at rho = 1/6 as in "
    "`jscec baseline`, read DeepJSCEC results from `jscec eval --json` files (--deepjscec), and draw PSNR and SSIM "
    "versus SNR_b in one PNG in the style of the paper's Fig. 3. A second PNG (--ber-png) shows each code's "
    "decoded BER and frame-error rate on AWGN with the same modulation, and the JSON lists every number plotted, "
    "with each configuration's measured cliff threshold against the one predicted from its frame-error curve. "
    "With --store (a `jscec campaign` store, e.g. of plans/fig3-sim.toml) nothing is simulated again: the figure "
    "and tables are the store's report (`jscec report`, 95% intervals, the paper's numbers) and only the LDPC "
    "curves of the store's (modulation, rate) pairs are computed, beside the cliffs the store measured.")

DEFAULT_SNRS = [float(s) for s in range(-2, 26)]   # issue 6: 0 to 25 dB


def add_arguments(p):
    from baseline.report import CODECS

    p.add_argument("--store", default=None, metavar="STORE", help="a `jscec campaign` store: report it instead of "
                   "simulating (--deepjscec/--codec/--mod/--rate/--snr/--images then come from the store)")
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


def run(args) -> int:
    import sys

    from baseline.compare import compare_baselines, plot_compare, read_deepjscec
    from baseline.pipeline import channel_uses, eval_images
    from baseline.report import key_for_run, parse_choices, table
    from scripts.output import write_json

    if args.store:
        return _from_store(args)
    print("compare: a second way to make Fig. 3; the campaign way keeps every number: jscec campaign "
          "plans/fig3-sim.toml --jobs 2 && jscec compare --store out/campaigns/fig3-sim.sqlite")
    deep = [read_deepjscec(p) for p in args.deepjscec]
    codecs, mods, rates = parse_choices(args.codec, args.mod, args.rate, args.ldpc_iters)
    progress = sys.stderr.isatty()
    images, mean_u8, name = eval_images(args.data, args.images, seed=args.seed, progress=progress)
    k = channel_uses(1 / 6, images.shape[1:])
    note = "" if deep else "no DeepJSCEC results given (--deepjscec): baselines only"
    if note:
        print(f"compare: {note}")
    runs, curves = compare_baselines(images, mean_u8, codecs, mods, rates, args.snr, key_for_run(args.key_file),
                                     k_symbols=k, seed=args.seed, ldpc_iters=args.ldpc_iters, decoder=args.decoder,
                                     ber_codewords=args.ber_codewords, ber_step=args.ber_step, progress=progress,
                                     on_result=lambda res: print(table(res)))
    print("cliff thresholds: measured (half of the fitting images undecodable) vs predicted from the code's FER curve "
          "(1-(1-FER)^full·(1-FER_short) = 1/2) and the BER = 1e-4 waterfall")
    print(f"  {'mod':>6} {'rate':>5} {'measured':>9} {'predicted':>9} {'BER 1e-4':>9} {'|diff| <= 1 dB':>14}")
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    for c in curves:
        print(f"  {c['mod']:>6} {c['rate']:>5} {fmt(c['measured_threshold_db']):>9} "
              f"{fmt(c['predicted_threshold_db']):>9} {fmt(c['waterfall_ber1e-4_db']):>9} "
              f"{str(c['within_1db']):>14}")
    mean_img = runs[0]["mean_image"]
    plot_compare(deep, runs, curves, mean_img, args.png, args.ber_png, note)
    doc = {"command": "compare", "dataset": name, "rho": 1 / 6, "k_symbols": k, "images": len(images),
           "seed": args.seed, "note": note or None, "mean_image": mean_img, "deepjscec": deep, "baselines": runs,
           "ldpc_curves": curves, "png": str(args.png), "ber_png": str(args.ber_png)}
    print(f"wrote {args.png}, {args.ber_png}, {write_json(args.json, doc)}")
    return 0


def _from_store(args) -> int:
    """The store's report (Fig. 3 from stored cells) and the LDPC curves of its baseline pairs."""
    from pathlib import Path

    from baseline.compare import ldpc_curves, plot_ber
    from link.campaign.report import baseline_thresholds, make_report
    from scripts.output import write_json

    out = Path(args.png).parent
    rep = make_report(args.store, out)
    measured, k = baseline_thresholds(args.store)
    curves = ldpc_curves(list(measured), measured, k_symbols=k, seed=args.seed, ldpc_iters=args.ldpc_iters,
                         decoder=args.decoder, ber_codewords=args.ber_codewords, ber_step=args.ber_step) \
        if measured else []
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    for c in curves:
        print(f"  {c['mod']:>6} {c['rate']:>5} cliff measured {fmt(c['measured_threshold_db'])} dB (mean over "
              f"repeats), predicted {fmt(c['predicted_threshold_db'])} dB")
    if curves:
        plot_ber(curves, args.ber_png)
    doc = {"command": "compare", "store": str(args.store), "report": rep["out_dir"], "files": rep["files"],
           "ldpc_curves": curves, "ber_png": str(args.ber_png) if curves else None}
    print(f"wrote {rep['out_dir']}/report.md" + (f", {args.ber_png}" if curves else "")
          + f", {write_json(args.json, doc)}")
    return 0
