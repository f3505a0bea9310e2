"""``vaekit models``: the registered models, each with what it is, its paper and its options.

The options come from each model's declaration (:mod:`vaekit.models.options`), which lives beside
the model, so this imports the models (and torch).
"""
from __future__ import annotations


def register(commands) -> None:
    p = commands.add_parser("models", help="list the models vaekit can train",
                            description="List the registered models: name, what it is, paper, model-specific options.")
    p.add_argument("name", nargs="?", help="show one model with its options' defaults and help")
    p.set_defaults(handler=_models)


def _models(args) -> int:
    from vaekit.errors import ConfigError
    from vaekit.models import MODELS, model_class, model_options

    if args.name is not None:
        if args.name not in MODELS:
            raise ConfigError(f"unknown model {args.name!r}: choose one of {', '.join(MODELS)}")
        entry = MODELS[args.name]
        print(f"{entry.name}: {entry.description}")
        print(f"paper: {entry.paper}")
        cls = model_class(entry.name)
        others = [prior for prior in cls.priors if prior != cls.default_prior]
        print(f"prior: {cls.default_prior}" + (f" (--prior {' or '.join(others)} also works)" if others else ""))
        for info in model_options(entry.name):
            print(f"  {info.flag:<18} default {info.default_text}: {info.help}")
        return 0
    width = max(len(name) for name in MODELS)
    for entry in MODELS.values():
        print(f"{entry.name:<{width}}  {entry.description}")
        options = " ".join(info.flag for info in model_options(entry.name))
        print(f"{'':<{width}}  {entry.paper}" + (f"; options: {options}" if options else ""))
    print("\nTrain one with `vaekit train --model NAME`; `vaekit models NAME` shows its options and defaults.")
    return 0
