"""Model options: how a model declares the settings of its own, and the checks they share.

Each model module declares a small dataclass of its options next to the model::

    @dataclass
    class IWAEOptions(ModelOptions):
        iw_k: int = option(5, "importance samples K of the training bound", check=at_least(1))

and its registry line names it (``options=".iwae:IWAEOptions"`` in :mod:`vaekit.models`). Everything
else is derived from these declarations: the ``vaekit train`` flags and their help (``--iw-k``), the
config-file keys (``iw_k`` or ``iw-k``), ``vaekit models NAME``, the flat keys of run.json's config,
and the checks (an option the chosen model does not declare is refused). The model reads them from
``self.options`` (``self.options.iw_k``). A model whose options have a ``beta`` gets ``--kl-warmup``:
the trainer ramps that KL weight up from 0.

This module imports no torch; the model modules that declare options do.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

from vaekit.errors import ConfigError


@dataclass(frozen=True)
class Check:
    """A range a numeric option must lie in: ``test(value)``, and its words for the error message."""

    test: Callable[[Any], bool]
    words: str


FINITE = Check(lambda v: math.isfinite(v), "a finite number")
NON_NEGATIVE = Check(lambda v: v >= 0 and math.isfinite(v), "a non-negative number")
POSITIVE = Check(lambda v: v > 0 and math.isfinite(v), "a positive number")
FRACTION = Check(lambda v: 0 <= v < 1, "in [0, 1)")


def at_least(low: int) -> Check:
    return Check(lambda v: v >= low, f"at least {low}")


def option(default: Any, help: str, *, check: Check | None = None, choices: tuple[str, ...] | None = None,
           computed: str | None = None):
    """A model option: a dataclass field that carries its help text and its checks.

    ``computed`` says in words what a default that depends on other values is ("all epochs"); the
    field's default is then None and the options class's :meth:`ModelOptions.resolve` fills it in.
    A plain default of None shows as "off".
    """
    return field(default=default, metadata={"help": help, "check": check, "choices": choices, "computed": computed})


@dataclass
class ModelOptions:
    """The options of a model that has none of its own; every model's options class extends it."""

    def resolve(self, config) -> "ModelOptions":
        """A copy with the defaults that depend on other values filled in (``config``: the TrainConfig)."""
        return dataclasses.replace(self)

    def validate(self, config) -> None:
        """Refuse a value out of range with one line naming its flag. Override (calling this first)
        for checks across values."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            choices, check = f.metadata.get("choices"), f.metadata.get("check")
            if choices and value not in choices:
                raise ConfigError(f"unknown {flag(f.name)} {value!r}: choose one of {', '.join(choices)}")
            if check and not check.test(value):
                raise ConfigError(f"{flag(f.name)} must be {check.words}, not {value}")


@dataclass(frozen=True)
class OptionInfo:
    """One declared option, as the CLI and ``vaekit models`` show it."""

    name: str
    kind: type          # int, float or str: what a command line or a config file is parsed into
    default: Any
    help: str
    computed: str | None = None

    @property
    def flag(self) -> str:
        return flag(self.name)

    @property
    def default_text(self) -> str:
        if self.computed:
            return self.computed
        if self.default is None:
            return "off"
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)


def describe(options_class: type[ModelOptions]) -> list[OptionInfo]:
    """The options a class declares, in declaration order (a base class's first)."""
    hints = typing.get_type_hints(options_class)
    return [OptionInfo(f.name, _value_type(hints[f.name]), f.default, f.metadata.get("help", ""),
                       f.metadata.get("computed"))
            for f in dataclasses.fields(options_class)]


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _value_type(hint: Any) -> type:
    """``float | None`` -> float."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint
