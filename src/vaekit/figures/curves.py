"""Figures of numbers (not of images): training curves, KL per dimension, the rate-distortion plane.

Each function takes plain data and returns a matplotlib Figure; the caller saves or embeds it.
"""
from __future__ import annotations

from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg", force=False)
from matplotlib.figure import Figure  # noqa: E402

ACTIVE_UNIT_KL = 0.01  # nats; a dimension below this carries (almost) no information


def training_curves(history: Sequence[dict[str, Any]], *, nats: bool = True) -> Figure:
    """Loss per epoch (train and validation), and for VAEs the two ELBO terms on the validation set.
    ``nats``: False when the likelihood is not a normalised probability (an MSE autoencoder's), whose
    loss is then labelled a loss, not nats."""
    epochs = [row["epoch"] for row in history]
    variational = any("val_kl" in row for row in history)
    fig = Figure(figsize=(10, 3.6) if variational else (5.5, 3.6), dpi=110, layout="constrained")
    axes = fig.subplots(1, 2 if variational else 1, squeeze=False)[0]
    ax = axes[0]
    ax.plot(epochs, [row["train_loss"] for row in history], marker="o", ms=3, label="train")
    ax.plot(epochs, [row["val_loss"] for row in history], marker="o", ms=3, label="validation")
    best = [row["epoch"] for row in history if row.get("best")]
    if best:
        ax.axvline(best[-1], color="0.6", ls=":", lw=1, label=f"best (epoch {best[-1]})")
    ax.set(xlabel="epoch", ylabel="loss (nats per image)" if nats else "loss per image (not nats)", title="Training loss")
    ax.legend(frameon=False)
    if variational:
        ax = axes[1]
        ax.plot(epochs, [row["val_recon"] for row in history], marker="o", ms=3, color="C2", label="reconstruction")
        ax.set(xlabel="epoch", ylabel="−E[log p(x|z)] (nats)" if nats else "−E[log p(x|z)] (a loss)", title="Validation ELBO terms")
        twin = ax.twinx()
        twin.plot(epochs, [row["val_kl"] for row in history], marker="s", ms=3, color="C3", label="KL")
        twin.set_ylabel("KL (nats)", color="C3")
        lines = ax.get_lines() + twin.get_lines()
        ax.legend(lines, [line.get_label() for line in lines], frameon=False, loc="center right")
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig


def kl_per_dimension(kl_per_dim: Sequence[float]) -> Figure:
    """Average KL of each latent dimension, sorted; dimensions below 0.01 nats are inactive."""
    order = sorted(range(len(kl_per_dim)), key=lambda i: -kl_per_dim[i])
    values = [kl_per_dim[i] for i in order]
    fig = Figure(figsize=(max(4.0, 0.35 * len(values) + 1.5), 3.2), dpi=110, layout="constrained")
    ax = fig.subplots()
    colours = ["C0" if v >= ACTIVE_UNIT_KL else "0.7" for v in values]
    ax.bar(range(len(values)), values, color=colours)
    ax.set_xticks(range(len(values)), [f"z{i}" for i in order], rotation=90 if len(values) > 16 else 0)
    ax.set(xlabel="latent dimension (sorted)", ylabel="KL (nats)", title="KL per latent dimension (grey: inactive)")
    ax.grid(axis="y", alpha=0.3)
    return fig


def rate_distortion(points: Sequence[dict[str, Any]]) -> Figure:
    """Each run as a point: rate (KL) against distortion (reconstruction term), labelled by name."""
    fig = Figure(figsize=(6, 4.2), dpi=110, layout="constrained")
    ax = fig.subplots()
    for i, point in enumerate(points):
        ax.scatter(point["kl"], point["recon"], s=40, color=f"C{i % 10}", zorder=3)
        ax.annotate(point["name"], (point["kl"], point["recon"]), textcoords="offset points", xytext=(6, 4), fontsize=9)
    ax.set(xlabel="rate: KL(q(z|x) ‖ p(z)) (nats)", ylabel="distortion: −E[log p(x|z)] (nats)",
           title="Rate–distortion plane (lower left is better; diagonals are equal −ELBO)")
    ax.grid(alpha=0.3)
    if points:
        nelbo = [p["kl"] + p["recon"] for p in points]
        xs = ax.get_xlim()
        for level in (min(nelbo), max(nelbo)):
            ax.plot(xs, [level - x for x in xs], color="0.75", lw=0.8, ls="--", zorder=1)
        ax.set_xlim(xs)
    return fig
