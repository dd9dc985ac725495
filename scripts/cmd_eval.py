"""`jscec eval`: Bob's and Eve's PSNR/SSIM on the test split over a list of SNRs."""
from __future__ import annotations

NAME = "eval"
HELP = "evaluate Bob and Eve (PSNR, SSIM; accuracy for classifiers) against SNR, with the mean-image baseline"
DESCRIPTION = ("Evaluate a checkpoint (and Eve's decoder beside it, if present) on the test split of the dataset's "
               "seeded 0.8/0.1/0.1 split over a list of SNRs. Prints a table; --json writes the numbers, --png a plot. "
               "A classification model (jscec train --task classify) reports accuracy beside a uniform random guess.")


def add_arguments(p):
    p.add_argument("--model", default="cifar10-lwe", help="bundled model name or checkpoint path")
    p.add_argument("--data", default=None, help="dataset path; default $JSCEC_DATA or the CIFAR-10 JPEG copy")
    p.add_argument("--snr", type=float, nargs="+", default=[0, 5, 10, 15, 20, 25], help="SNRs in dB")
    p.add_argument("--images", type=int, default=0, help="evaluate the first N test images (0 = all)")
    p.add_argument("--split-seed", type=int, default=None, help="split seed (default: the one in the model's card)")
    p.add_argument("--seed", type=int, default=0, help="seed of keys and channel noise")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    p.add_argument("--json", default=None, help="write the results as JSON here")
    p.add_argument("--png", default=None, help="write a PSNR/SSIM-versus-SNR plot here")


def run(args) -> int:
    import sys

    from tqdm import tqdm

    from models.checkpoint import resolve_model
    from models.datasets import load_dataset, mean_image, split_indices
    from models.evaluate import evaluate, load_bob, load_eve, plot_psnr
    from models.train import pick_device
    from scripts.output import write_json

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    path = resolve_model(args.model)
    model = load_bob(path, device)
    eve = load_eve(path, device)
    data = load_dataset(args.data)
    split = split_indices(len(data.images), seed=args.split_seed if args.split_seed is not None
                          else model.card.get("split_seed", 0))
    test = split["test"][: args.images or None]
    if model.config.task == "classify":
        return _run_classifier(args, path, model, eve, data, test, device)
    mean_img = mean_image(data.images[split["train"]])
    with tqdm(total=len(test) * len(args.snr), desc="eval", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
        report = evaluate(model, eve, data.images[test], args.snr, mean_img, seed=args.seed, device=device,
                          progress=bar.update)
    report = {"checkpoint": str(path), "model": path.stem, "dataset": data.name, "rho": model.config.rho,
              "cipher_mode": model.config.cipher_mode, "cipher_params": model.config.cipher_params,
              "images": int(len(test)), "seed": args.seed, **report}
    print(f"{path.stem} on {data.name}, {len(test)} test images; mean image: PSNR "
          f"{report['mean_image']['psnr']:.2f} dB SSIM {report['mean_image']['ssim']:.3f}")
    print(f"{'SNR dB':>7} {'Bob PSNR':>9} {'Bob SSIM':>9} {'Eve PSNR':>9} {'Eve SSIM':>9}")
    for r in report["results"]:
        e = r.get("eve", {})
        print(f"{r['snr_db']:7.1f} {r['bob']['psnr']:9.2f} {r['bob']['ssim']:9.3f} "
              f"{e.get('psnr', float('nan')):9.2f} {e.get('ssim', float('nan')):9.3f}")
    if eve is None:
        print("(no Eve decoder beside this checkpoint: run `jscec attack` first)")
    if args.json:
        write_json(args.json, report)
    if args.png:
        plot_psnr(report, args.png)
    return 0


def _run_classifier(args, path, model, eve, data, test, device) -> int:
    import sys

    from tqdm import tqdm

    from models.evaluate import evaluate_classifier, plot_accuracy
    from scripts.output import write_json

    with tqdm(total=len(test) * len(args.snr), desc="eval", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
        report = evaluate_classifier(model, eve, data.images[test], data.labels[test], args.snr, seed=args.seed,
                                     device=device, progress=bar.update)
    report = {"checkpoint": str(path), "model": path.stem, "task": "classify", "dataset": data.name,
              "rho": model.config.rho, "snr_train_db": model.config.snr_train_db,
              "cipher_mode": model.config.cipher_mode, "cipher_params": model.config.cipher_params,
              "images": int(len(test)), "seed": args.seed, **report}
    guess = report["random_guess"]
    print(f"{path.stem} on {data.name}, {len(test)} test images; random guess {100 * guess['accuracy']:.2f} % "
          f"(chance {100 * guess['chance']:.1f} %)")
    print(f"{'SNR dB':>7} {'Bob acc %':>10} {'Eve acc %':>10}")
    for r in report["results"]:
        eve_acc = 100 * r["eve"]["accuracy"] if "eve" in r else float("nan")
        print(f"{r['snr_db']:7.1f} {100 * r['bob']['accuracy']:10.2f} {eve_acc:10.2f}")
    if eve is None:
        print("(no Eve classifier beside this checkpoint: run `jscec attack` first)")
    if args.json:
        write_json(args.json, report)
    if args.png:
        plot_accuracy(report, args.png)
    return 0
