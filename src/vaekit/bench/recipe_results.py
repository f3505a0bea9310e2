"""The recipes' results table and learning curves, from their trained and evaluated run folders.

    python -m vaekit.bench.recipe_results RUN [RUN ...] [--add] [--json FILE] [--figure FILE] [--mig-figure FILE]

Each RUN is a folder trained by a recipe (``vaekit reproduce NAME --out RUN``, or ``vaekit train
--config recipes/NAME.toml`` then ``vaekit evaluate``); the recipe is the one whose name the folder
carries. For each it reads run.json, metrics.jsonl and eval.json (nothing is recomputed) and writes
one row: the paper and its number, vaekit's number, the training wall time (``elapsed_s`` of the
last epoch: training and validation, not evaluation), the epochs, the machine (where the table was
made, and the hardware the run trained on where its run.json records it) and the commands. It
prints the rows as a Markdown table and draws the Fashion-MNIST runs' validation -ELBO against
training time, with each run's test NLL and the published number beside it. ``--mig-figure`` draws
the MIG curves that ``python -m vaekit.bench.disentanglement_curve`` wrote.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vaekit.bench.results import RESULTS
from vaekit.errors import ConfigError

HOUR_MINUTES = 60


def _records(run: Path) -> list[dict]:
    rows = []
    for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if "val_loss" in record:
            rows.append(record)
    return rows


def _curve(records: list[dict]) -> list[dict]:
    """Validation -ELBO against training minutes: ``elapsed_s`` (training and validation), or for runs
    from before vaekit recorded it, the summed training seconds of the epochs (validation left out).
    A run trained on the importance-weighted bound (``--iw-k``) logs that bound as its loss: its -ELBO
    is the logged reconstruction plus KL, so that every curve is the same quantity."""
    total, points = 0.0, []
    for r in records:
        total += r["seconds"]
        elbo = r["val_recon"] + r["val_kl"] if "val_iw_bound" in r else r["val_loss"]
        points.append({"minutes": r.get("elapsed_s", total) / 60, "epoch": r["epoch"], "val_loss": elbo})
    return points


def reference_curve(label: str, run: Path) -> dict:
    """A run trained outside the recipes (another schedule, say), drawn beside them for comparison."""
    evaluation = json.loads((run / "eval.json").read_text(encoding="utf-8"))
    return {"label": label, "curve": _curve(_records(run)), "nll": evaluation["nll"], "iw_samples": evaluation["iw_samples"]}


def recipe_of(run: Path):
    from vaekit.training.recipes import list_recipes

    named = [recipe for recipe in list_recipes() if recipe.name == run.name]
    if not named:
        raise ConfigError(f"{run} is not named after a recipe: name the folder like the recipe (runs/fashion-mnist-vae)")
    return named[0]


def row(run: Path, machine: dict) -> dict:
    """One results row for the recipe run in folder ``run``."""
    recipe = recipe_of(run)
    records = _records(run)
    evaluation = json.loads((run / "eval.json").read_text(encoding="utf-8"))
    if recipe.score == "mig":
        value = (evaluation.get("disentanglement") or {}).get("mig")
        evaluated = f"vaekit evaluate {run.name} --disentanglement --disentanglement-points {recipe.disentanglement_points}"
    else:
        value = evaluation["nll"]
        evaluated = f"vaekit evaluate {run.name} --iw-samples {evaluation['iw_samples']}"
    best = min(records, key=lambda r: r["val_loss"])
    curve = _curve(records)
    trained_on = json.loads((run / "run.json").read_text(encoding="utf-8")).get("hardware")
    return {
        "recipe": recipe.name, "title": recipe.title, "paper": recipe.paper, "protocol": recipe.protocol,
        "score": recipe.score, "published": recipe.published, "vaekit": value,
        "gap": None if value is None or recipe.published is None else value - recipe.published,
        "test_nelbo": evaluation.get("nelbo"), "iw_samples": evaluation.get("iw_samples"),
        "active_units": evaluation.get("active_units"),
        "disentanglement": evaluation.get("disentanglement"),
        "train_minutes": curve[-1]["minutes"], "epochs": records[-1]["epoch"],
        "best_epoch": best["epoch"], "best_val_loss": best["val_loss"],
        "eval_minutes": evaluation.get("seconds", float("nan")) / 60,
        "machine": machine, "hardware": trained_on, "commands": [f"vaekit train --config recipes/{recipe.name}.toml --out {run.name}", evaluated],
        "curve": curve,
    }


def table(rows: list[dict]) -> str:
    def number(value, digits):
        return "—" if value is None else f"{value:.{digits}f}"

    lines = ["| recipe | paper | published | vaekit | gap | training | epochs | command |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        digits = 3 if r["score"] == "mig" else 2
        gap = "" if r["gap"] is None else f"{r['gap']:+.{digits}f}"
        lines.append(f"| {r['recipe']} | {r['paper']} | {number(r['published'], digits)} | {number(r['vaekit'], digits)} "
                     f"| {gap} | {r['train_minutes']:.1f} min | {r['epochs']} | `{r['commands'][0]}` |")
    return "\n".join(lines)


def merged(rows: list[dict], path: Path) -> list[dict]:
    """The rows of the table in ``path`` with ``rows`` in place of those of the same recipes (new
    recipes after them): one rerun recipe updates the table, and the other rows keep the machine and
    the date they were measured on."""
    if not path.is_file():
        return rows
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ConfigError(f"{path} is not a results table to add to ({error})") from None
    if not isinstance(table, list) or not all(isinstance(r, dict) and "recipe" in r for r in table):
        raise ConfigError(f"{path} is not a results table to add to: it should be a list of recipe rows")
    new = {r["recipe"]: r for r in rows}
    kept = [new.pop(r["recipe"], r) for r in table]
    return kept + list(new.values())


def curves_figure(rows: list[dict], path: Path, references: list[dict] = ()) -> Path:
    """Validation -ELBO against training minutes for the NLL recipes (and dashed, grey ``references``);
    each run's test NLL as a dot where it ends; the published numbers as dashed lines."""
    from vaekit.figures.plots import new_figure, save_figure

    rows = [r for r in rows if r["score"] == "nll"]
    figure = new_figure(9.0, 5.0)
    ax = figure.add_subplot(1, 1, 1)
    colours = [f"C{i % 10}" for i in range(len(rows))]
    low = min(min(r["published"], r["vaekit"]) for r in rows)
    labelled: list[float] = []      # published numbers already labelled: a close one goes to the right
    for r, colour in zip(rows, colours):
        minutes = [p["minutes"] for p in r["curve"]]
        ax.plot(minutes, [p["val_loss"] for p in r["curve"]], color=colour, lw=1.2,
                label=f"{r['recipe']}: validation −ELBO")
        ax.plot([minutes[-1]], [r["vaekit"]], "o", color=colour, ms=6,
                label=f"  test NLL {r['vaekit']:.2f} (S = {r['iw_samples']}) after {minutes[-1]:.0f} min")
        ax.axhline(r["published"], color=colour, ls="--", lw=0.8)
        column = sum(abs(r["published"] - other) < 0.4 for other in labelled)
        labelled.append(r["published"])
        ax.text(0.01 + 0.33 * column, r["published"] + 0.1, f"{r['recipe']}: published {r['published']:.2f}",
                transform=ax.get_yaxis_transform(), color=colour, fontsize=8)
    for ref, dashes in zip(references, ["--", "-.", ":", (0, (4, 1, 1, 1, 1, 1))] * len(references)):
        minutes = [p["minutes"] for p in ref["curve"]]
        ax.plot(minutes, [p["val_loss"] for p in ref["curve"]], color="grey", lw=1.0, ls=dashes,
                label=f"{ref['label']}: validation −ELBO")
        ax.plot([minutes[-1]], [ref["nll"]], "o", color="grey", ms=5,
                label=f"  test NLL {ref['nll']:.2f} (S = {ref['iw_samples']}) after {minutes[-1]:.0f} min")
    ax.axvline(HOUR_MINUTES, color="grey", lw=0.8, ls=":")
    ax.set_ylim(low - 1.5, low + 12)
    ax.set_xlabel("training wall time on the 2-core CPU (minutes)")
    ax.set_ylabel("nats per image")
    ax.set_title("Fashion-MNIST recipes: validation −ELBO while training, test NLL at the end")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
    return save_figure(figure, path)


def mig_figure(curve_files: list[Path], path: Path, *, published: dict[str, float] | None = None) -> Path:
    """MIG against the training images seen (steps times batch size), from the disentanglement_curve JSON
    files: comparable across batch sizes, and across runs that shared the CPU or had it alone."""
    from vaekit.figures.plots import new_figure, save_figure

    figure = new_figure(8.0, 4.5)
    ax = figure.add_subplot(1, 1, 1)
    for file in curve_files:
        data = json.loads(file.read_text(encoding="utf-8"))
        stages = data["stages"]
        images = [s["step"] * data["batch_size"] / 1e6 for s in stages]
        ax.plot(images, [s["mig"] for s in stages], marker="o", ms=3, label=f"{data['recipe']} (batch {data['batch_size']})")
    for name, value in (published or {}).items():
        ax.axhline(value, ls="--", lw=0.8, color="grey")
        ax.text(0.01, value + 0.005, f"{name}: published ≈ {value:.2f}", transform=ax.get_yaxis_transform(), fontsize=8)
    ax.axhline(0.2, ls=":", lw=0.8, color="black")
    ax.text(0.01, 0.205, "MIG 0.2, the issue's bar", transform=ax.get_yaxis_transform(), fontsize=8)
    ax.set_xlabel("training images seen (millions)")
    ax.set_ylabel("MIG (10,000 factor samples)")
    ax.set_ylim(0, max(0.5, ax.get_ylim()[1]))
    ax.set_title("dSprites: MIG of the encoder mean while training")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(figure, path)


def main() -> int:
    """Run the command; a run folder or table it cannot read ends in one line on stderr and exit code 2."""
    try:
        _main()
    except (ConfigError, OSError) as error:
        print(f"recipe_results: error: {error}", file=sys.stderr)
        return 2
    return 0


def _main() -> None:
    from vaekit.bench.measure import machine

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--json", type=Path, default=RESULTS / "recipes.json")
    parser.add_argument("--figure", type=Path, default=Path("docs/images/recipe-curves.png"))
    parser.add_argument("--mig-figure", type=Path, default=Path("docs/images/dsprites-mig-curve.png"))
    parser.add_argument("--reference", action="append", default=[], metavar="LABEL=RUN",
                        help="also draw this evaluated run (not a recipe) on the learning-curve figure")
    parser.add_argument("--add", action="store_true",
                        help="keep the other recipes' rows of the --json table: these runs' rows replace those "
                             "of their recipes, and the table and figure show them all")
    args = parser.parse_args()
    about = machine()
    rows = [row(run, about) for run in args.runs]
    if rows and args.add:
        rows = merged(rows, args.json)
    if rows:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
        print(table(rows))
        if any(r["score"] == "nll" for r in rows):
            references = [reference_curve(label, Path(run)) for label, run in (item.split("=", 1) for item in args.reference)]
            curves_figure(rows, args.figure, references)
    curve_files = sorted(RESULTS.glob("dsprites-curve-*.json"))
    if curve_files:
        from vaekit.training.recipes import list_recipes

        published = {r.name: r.published for r in list_recipes() if r.score == "mig" and r.published is not None}
        mig_figure(curve_files, args.mig_figure, published=published)


if __name__ == "__main__":
    sys.exit(main())
