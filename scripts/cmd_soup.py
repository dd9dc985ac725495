"""`jscec soup`: average the weights of several runs of one model (a greedy model soup) into one Bob model."""
from __future__ import annotations

NAME = "soup"
HELP = "average the weights of several runs of one model, keeping what improves validation (greedy soup)"
DESCRIPTION = ("Ingredients are Bob checkpoints or training checkpoints (<out>.last.pt: their moving average when "
               "they keep one) of one configuration, e.g. warm restarts from the same weights with other "
               "regularisation. Best validation score first, each is kept only if the average with it scores "
               "higher on the validation split at SNR_train (Wortsman et al. 2022). Writes a Bob checkpoint and "
               "its card, which lists every ingredient's score and the ones kept.")


def add_arguments(p):
    p.add_argument("ingredients", nargs="+", metavar="CHECKPOINT", help="two or more checkpoints of one model")
    p.add_argument("--out", required=True, help="the soup's checkpoint (its card is written beside it)")
    p.add_argument("--data", default=None, help="dataset path; default $JSCEC_DATA or the CIFAR-10 JPEG copy")
    p.add_argument("--val-size", type=int, default=1000, help="validation images scored (0 = all)")
    p.add_argument("--split-seed", type=int, default=None,
                   help="seed of the 0.8/0.1/0.1 split (default: the one in the first ingredient's card, else 0)")
    p.add_argument("--seed", type=int, default=0, help="the training run's --seed (it fixes the validation link)")
    p.add_argument("--links", type=int, default=1,
                   help="score each candidate as the mean over this many validation links (seeds --seed, "
                        "--seed + 1, …: their own keys and channel noise), steadier than one link's score")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")


def run(args) -> int:
    import torch

    from models.datasets import load_dataset, split_indices
    from models.soup import greedy_soup, load_ingredients
    from models.train import pick_device
    from jscec.errors import UserError

    if args.threads:
        torch.set_num_threads(args.threads)
    ingredients = load_ingredients(args.ingredients)
    cfg, _, card = next(iter(ingredients.values()))
    data = load_dataset(args.data)
    split_seed = args.split_seed if args.split_seed is not None else card.get("split_seed", 0)
    val = split_indices(len(data.images), seed=split_seed)["val"]
    val = val[: args.val_size] if args.val_size else val
    labels = None
    if cfg.task == "classify":
        if len(data.classes) < 2:
            raise UserError(f"{data.name} has no class labels; a classifier's soup is validated on labelled images")
        labels = data.labels[val]
    greedy_soup(ingredients, data.images[val], labels, args.out, seed=args.seed, links=args.links,
                device=pick_device(args.device), log=lambda m: print(m, flush=True))
    return 0
