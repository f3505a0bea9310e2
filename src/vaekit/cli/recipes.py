"""``vaekit recipes`` (the shipped reproduction recipes, their scores and published numbers) and
``vaekit reproduce NAME`` (train one, evaluate it as the paper did, print both numbers and the time)."""
from __future__ import annotations


def register(commands) -> None:
    p = commands.add_parser("recipes", help="list the recipes that reproduce published results",
                            description="List the recipes: name, model, score, published number and paper. Each "
                                        "is a config file: `vaekit train --config recipes/NAME.toml` trains it.")
    p.add_argument("name", nargs="?", help="show one recipe in full: protocol, changes from it, file")
    p.set_defaults(handler=_recipes)

    p = commands.add_parser("reproduce", help="train a recipe and compare its number with the paper's",
                            description="Train recipe NAME (see `vaekit recipes`), evaluate it by the recipe's "
                                        "score (test NLL with the recipe's importance samples, or MIG with its "
                                        "disentanglement points), and print the published number beside "
                                        "vaekit's with the time taken.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--out", help="run folder to create (default runs/NAME)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--iw-samples", type=int, metavar="K",
                   help="recipes scored by NLL: importance samples (default: the recipe's, 5000)")
    p.add_argument("--disentanglement-points", type=int, metavar="N",
                   help="recipes scored by MIG: training points of each disentanglement score (default: the recipe's)")
    quick = p.add_argument_group("quick checks (the result then does not compare with the paper's)")
    quick.add_argument("--epochs", type=int, metavar="N", help="train N epochs instead of the recipe's")
    quick.add_argument("--dataset", metavar="NAME|PATH", help="train and evaluate on this data instead")
    quick.add_argument("--val-size", type=int, metavar="N", help="validation samples (with a smaller --dataset)")
    quick.add_argument("--device", help="auto | cpu | cuda | mps (default: the recipe's, auto)")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="a recipe that trains in bf16: auto (default) trains its [recipe.without-bf16] settings "
                        "(fp32, the epochs that fit the same hour) where the device has no bfloat16 dot products, "
                        "where bf16 is several times slower; fp32 trains them anywhere; bf16 keeps the file's")
    p.set_defaults(handler=_reproduce)


def _recipes(args) -> int:
    from vaekit.training.recipes import list_recipes, load_recipe

    if args.name is not None:
        recipe = load_recipe(args.name)
        score = recipe.scoring
        budget = (f"S = {recipe.iw_samples}" if recipe.score == "nll"
                  else f"{recipe.disentanglement_points} disentanglement points")
        print(f"{recipe.name}: {recipe.title}")
        print(f"paper:     {recipe.paper}")
        print(f"protocol:  {recipe.protocol}")
        print(f"score:     {score.name}, {'lower' if score.lower_is_better else 'higher'} is better: "
              f"{recipe.metric}, {budget}")
        print(f"published: {_published(recipe)}" + (" (a baseline: no published number of its own)"
                                                     if recipe.published is None else ""))
        print(f"model:     {recipe.model} on {recipe.dataset}")
        print("changes from the protocol:")
        for change in recipe.changes:
            print(f"  - {change}")
        if recipe.without_bf16 is not None:
            from vaekit.evaluation.reproduce import fallback_settings

            print(f"without bf16: {fallback_settings(recipe)}  (where the device has no bfloat16 dot products; "
                  "`vaekit reproduce` takes them by itself there)")
        print(f"file:      {recipe.path}")
        return 0
    recipes = list_recipes()
    rows = [("name", "model", "score", "published", "paper")]
    rows += [(r.name, r.model, r.scoring.name, _published(r), r.paper) for r in recipes]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    scores = {r.scoring.name: r.scoring for r in recipes}
    meanings = "; ".join(f"{name} is the {score.meaning}, {'lower' if score.lower_is_better else 'higher'} is better"
                         for name, score in scores.items())
    baseline = " — marks a baseline with no published number." if any(r.published is None for r in recipes) else ""
    print(f"\n{meanings}.{baseline} `vaekit recipes NAME` shows a recipe's protocol and what it changes; "
          "`vaekit reproduce NAME` trains and evaluates it.")
    return 0


def _published(recipe) -> str:
    return "—" if recipe.published is None else f"{recipe.published:.2f}"


def _reproduce(args) -> int:
    from vaekit.cli import render
    from vaekit.evaluation.reproduce import fallback_settings, reproduce, training_plan
    from vaekit.training.recipes import load_recipe

    recipe = load_recipe(args.name)          # an unknown name fails here, before anything is loaded
    published = "no published number (a baseline)" if recipe.published is None else \
        f"published {recipe.scoring.name} {recipe.published:.2f}"
    print(f"reproducing {recipe.name}: {recipe.title}\npaper: {recipe.paper}, {published}")
    overrides = {"epochs": args.epochs, "dataset": args.dataset, "val_size": args.val_size,
                 "device": args.device}
    _, fallback = training_plan(recipe, overrides, args.precision)
    if fallback:
        why = ("asked for with --precision fp32" if args.precision == "fp32" else
               "this device has no bfloat16 dot products, where bf16 is several times slower than fp32")
        print(f"training the recipe's settings without bf16 ({fallback_settings(recipe)}): {why}")
    with render.TrainBar() as bar, render.CountBar("evaluating", unit="img") as evaluating:
        result = reproduce(args.name, args.out, iw_samples=args.iw_samples,
                           disentanglement_points=args.disentanglement_points, overrides=overrides,
                           precision=args.precision, overwrite=args.overwrite, callbacks=[bar], progress=evaluating,
                           load_progress=render.DownloadBar())
    print(render.reproduction(result))
    return 0
