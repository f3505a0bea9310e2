"""``vaekit models``: the registered models, each with what it is, its paper and its options.

Reads the registry in :mod:`vaekit.models`, which imports no torch, so this answers at once.
"""
from __future__ import annotations


BETA_HELP = {"beta-tcvae": "weight of the total correlation (the KL's other two parts: --alpha, --gamma)"}


def register(commands) -> None:
    p = commands.add_parser("models", help="list the models vaekit can train",
                            description="List the registered models: name, what it is, paper, model-specific options.")
    p.add_argument("name", nargs="?", help="show one model with its options' defaults and help")
    p.set_defaults(handler=_models)


def _models(args) -> int:
    from vaekit.errors import ConfigError
    from vaekit.models import MODELS
    from vaekit.models.options import OPTIONS, flag

    if args.name is not None:
        if args.name not in MODELS:
            raise ConfigError(f"unknown model {args.name!r}: choose one of {', '.join(MODELS)}")
        entry = MODELS[args.name]
        print(f"{entry.name}: {entry.description}")
        print(f"paper: {entry.paper}")
        for name, default in entry.options.items():
            shown = "computed (see help)" if callable(default) else "off" if default is None else default
            text = OPTIONS[name][1] if name in OPTIONS else BETA_HELP.get(entry.name, "weight of the KL term")
            print(f"  {flag(name):<18} default {shown}: {text}")
        return 0
    width = max(len(name) for name in MODELS)
    for entry in MODELS.values():
        print(f"{entry.name:<{width}}  {entry.description}")
        options = " ".join(flag(name) for name in entry.options)
        print(f"{'':<{width}}  {entry.paper}" + (f"; options: {options}" if options else ""))
    print("\nTrain one with `vaekit train --model NAME`; `vaekit models NAME` shows its options and defaults.")
    return 0
