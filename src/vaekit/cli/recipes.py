"""``vaekit recipes`` (the shipped reproduction recipes and their published numbers) and
``vaekit reproduce NAME`` (train one, evaluate it as the paper did, print both numbers and the time)."""
from __future__ import annotations


def register(commands) -> None:
    p = commands.add_parser("recipes", help="list the recipes that reproduce published results",
                            description="List the recipes: name, model, paper and published number. Each is a "
                                        "config file: `vaekit train --config recipes/NAME.toml` trains it.")
    p.add_argument("name", nargs="?", help="show one recipe in full: protocol, changes from it, file")
    p.set_defaults(handler=_recipes)

    p = commands.add_parser("reproduce", help="train a recipe and compare its number with the paper's",
                            description="Train recipe NAME (see `vaekit recipes`), evaluate its test NLL with the "
                                        "recipe's importance samples, and print the published number beside "
                                        "vaekit's with the time taken.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--out", help="run folder to create (default runs/NAME)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--iw-samples", type=int, metavar="K", help="importance samples for the NLL (default: the recipe's, 5000)")
    quick = p.add_argument_group("quick checks (the result then does not compare with the paper's)")
    quick.add_argument("--epochs", type=int, metavar="N", help="train N epochs instead of the recipe's")
    quick.add_argument("--dataset", metavar="NAME|PATH", help="train and evaluate on this data instead")
    quick.add_argument("--val-size", type=int, metavar="N", help="validation samples (with a smaller --dataset)")
    quick.add_argument("--device", help="auto | cpu | cuda | mps (default: the recipe's, auto)")
    p.set_defaults(handler=_reproduce)


def _recipes(args) -> int:
    from vaekit.training.recipes import list_recipes, load_recipe

    if args.name is not None:
        recipe = load_recipe(args.name)
        print(f"{recipe.name}: {recipe.title}")
        print(f"paper:     {recipe.paper}")
        print(f"protocol:  {recipe.protocol}")
        print(f"published: {recipe.published:.2f}: {recipe.metric}, S = {recipe.iw_samples}")
        print(f"model:     {recipe.model} on {recipe.dataset}")
        print("changes from the protocol:")
        for change in recipe.changes:
            print(f"  - {change}")
        print(f"file:      {recipe.path}")
        return 0
    recipes = list_recipes()
    rows = [("name", "model", "published", "paper")]
    rows += [(r.name, r.model, f"{r.published:.2f}", r.paper) for r in recipes]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    print("\nPublished numbers are test NLL in nats (lower is better). `vaekit recipes NAME` shows a recipe's protocol "
          "and what it changes; `vaekit reproduce NAME` trains and evaluates it.")
    return 0


def _reproduce(args) -> int:
    from vaekit.cli import render
    from vaekit.evaluation.reproduce import reproduce
    from vaekit.training.recipes import load_recipe

    recipe = load_recipe(args.name)          # an unknown name fails here, before anything is loaded
    print(f"reproducing {recipe.name}: {recipe.title}\npaper: {recipe.paper}, published {recipe.published:.2f}")
    overrides = {"epochs": args.epochs, "dataset": args.dataset, "val_size": args.val_size,
                 "device": args.device}
    with render.TrainBar() as bar, render.CountBar("evaluating", unit="img") as evaluating:
        result = reproduce(args.name, args.out, iw_samples=args.iw_samples, overrides=overrides,
                           overwrite=args.overwrite, callbacks=[bar], progress=evaluating,
                           load_progress=render.DownloadBar())
    print(render.reproduction(result))
    return 0
