"""Latent arithmetic: attribute vectors from labelled codes, added to other images' codes.

The attribute vector is the difference of two group means of posterior means,

    v = mean{ E[z|x] : x has A } - mean{ E[z|x] : x has B (or lacks A) },

and an image is edited by decoding E[z|x] + alpha * v (the "smile vector" of White 2016 and the
attribute vectors of Larsen et al. 2016). alpha = 0 is the plain reconstruction.
"""
from __future__ import annotations

import re

import numpy as np

from vaekit.errors import ConfigError

DEFAULT_ALPHAS = (-2.0, -1.0, 0.0, 1.0, 2.0)
INDEX = re.compile(r"-?[0-9]+")     # a class index as text: "3", "-1" (out of range, said so)
MAX_INDEX_DIGITS = 18               # longer numbers are out of range anyway (and int() refuses > 4300 digits)


def resolve_class(label: str | int, class_names: list[str] | None, y: np.ndarray | None) -> int:
    """The class index meant by ``label``: a class name (case-insensitive) or an index.

    Raises :class:`ConfigError` for data without labels, an unknown name, or a class with no examples.
    """
    if y is None:
        raise ConfigError("this data set has no labels: use --attributes FILE.csv to give attributes per image")
    n_classes = len(class_names) if class_names else int(y.max()) + 1
    names = list(class_names) if class_names else [str(i) for i in range(n_classes)]
    text = str(label).strip()
    shown = text if len(text) <= 60 else text[:60] + "..."
    lowered = [name.lower() for name in names]
    if text.lower() in lowered:
        index = lowered.index(text.lower())
    elif INDEX.fullmatch(text):
        # ASCII digits only: str.isdigit() also accepts "²" and other digits int() refuses.
        index = int(text) if len(text) <= MAX_INDEX_DIGITS else n_classes
        if not 0 <= index < n_classes:
            raise ConfigError(f"class index {shown} is out of range: use 0 to {n_classes - 1} or a name ({_listing(names)})")
    else:
        raise ConfigError(f"unknown class {shown!r}: use one of {_listing(names)} (or an index 0 to {n_classes - 1})")
    if not np.any(y == index):
        raise ConfigError(f"class {names[index]!r} (index {index}) has no examples in the training split: choose another")
    return index


def _listing(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names)


def attribute_vector(codes: np.ndarray, has_plus: np.ndarray, has_minus: np.ndarray | None = None) -> np.ndarray:
    """mean(codes[has_plus]) - mean(codes[has_minus]); ``has_minus`` defaults to ``~has_plus``."""
    codes = np.asarray(codes, np.float64)
    has_plus = np.asarray(has_plus, bool)
    has_minus = ~has_plus if has_minus is None else np.asarray(has_minus, bool)
    if not has_plus.any() or not has_minus.any():
        side = "with the attribute" if not has_plus.any() else "in the group subtracted"
        raise ConfigError(f"no images {side}: an attribute vector needs examples on both sides")
    return codes[has_plus].mean(0) - codes[has_minus].mean(0)


def class_vector(codes: np.ndarray, labels: np.ndarray, plus: int, minus: int) -> np.ndarray:
    """The class-``plus`` mean code minus the class-``minus`` mean code."""
    labels = np.asarray(labels)
    return attribute_vector(codes, labels == plus, labels == minus)


def images_not_of(labels: np.ndarray, label: int, count: int, *, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``count`` images (a seeded choice) whose label is not ``label``."""
    others = np.flatnonzero(np.asarray(labels) != label)
    if len(others) == 0:
        raise ConfigError("every image in the split has the class being added: there is nothing to edit")
    return np.sort(np.random.default_rng(seed).permutation(others)[:count])


def shift_codes(codes: np.ndarray, vector: np.ndarray, alphas) -> np.ndarray:
    """``codes[i] + alphas[j] * vector`` for every image and alpha, shape (N, len(alphas), L)."""
    codes = np.asarray(codes, np.float64)
    alphas = np.asarray(alphas, np.float64)
    return codes[:, None, :] + alphas[None, :, None] * np.asarray(vector, np.float64)[None, None, :]


def parse_alphas(text: str) -> list[float]:
    """"-2,-1,0,1,2" -> [-2.0, -1.0, 0.0, 1.0, 2.0], or :class:`ConfigError`."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--alpha takes comma-separated numbers such as -2,-1,0,1,2, not {text!r}") from None
    if not values or not all(np.isfinite(values)):
        raise ConfigError(f"--alpha takes comma-separated finite numbers such as -2,-1,0,1,2, not {text!r}")
    return values
