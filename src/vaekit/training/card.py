"""The run folder's model card: ``RUN/README.md``, for people who receive the folder.

It reads like a Hugging Face model card (YAML front matter with ``library_name``, ``datasets``,
``metrics`` and a ``model-index`` of the evaluation; then prose and tables), so the folder can be
shared as it is. It is written with the run (run.json) and again when training ends and when
``vaekit evaluate`` writes eval.json: the card is always made from the files beside it, never from
memory, and nothing reads it back (``vaekit.load`` needs only run.json and the checkpoints).

A README.md that vaekit did not write (no ``library_name: vaekit`` in its front matter) is left alone.

``METRICS`` holds the one-line meaning of each eval.json number; the HTML report uses the same words.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml

from vaekit.files import atomic_write_text
from vaekit.models import MODELS

log = logging.getLogger(__name__)

CARD = "README.md"
MARK = "library_name: vaekit"

# eval.json key -> (label, what the number means). Units are added by ``metric_unit``.
METRICS: dict[str, tuple[str, str]] = {
    "recon": ("reconstruction −E[log p(x|z)]", "what the decoder still needs to describe an image given its code; lower is better"),
    "kl": ("KL(q(z|x) ‖ p(z))", "the rate: information the code carries about the image"),
    "nelbo": ("−ELBO", "reconstruction + KL: an upper bound on −log p(x); lower is better"),
    "nll": ("NLL", "−log p(x) estimated with K importance samples (Burda et al. 2016): tighter than the −ELBO, the number papers report"),
    "bits_per_dim": ("bits/dim", "the NLL per data value in bits: comparable across image sizes"),
    "mse": ("MSE per value", "squared error of decode(E[z|x]) against the image, per pixel value"),
    "pca_mse": ("PCA MSE per value", "the same error for PCA with as many components as latent dimensions: the linear baseline to beat"),
    "active_units": ("active units", "latent dimensions whose posterior mean varies across images (Cov > 0.01, Burda et al. 2016)"),
    "continuity": ("continuity p95", "95th percentile of the RMS pixel change per step of one standard deviation in the latent space; lower is smoother"),
    "coverage": ("coverage", "the headline regularity: share of real images whose classifier-feature neighbourhood holds a decoded prior sample (Naeem et al. 2020); higher is better, near 0 for a collapsed model"),
    "completeness": ("completeness", "share of decoded prior samples whose classifier features lie on the real-data manifold (precision: a collapsed model can score 1); higher is better"),
    "fd": ("Fréchet distance", "between classifier features of real test images and of prior samples (FID's formula); lower is better"),
}


def metric_unit(key: str, result: dict[str, Any]) -> str:
    """``nats``, ``bits`` or "" for an eval.json number; ``loss`` for a term of a likelihood that is
    not a normalised probability (an MSE autoencoder's reconstruction is not in nats)."""
    if key in ("recon", "kl", "nelbo", "nll"):
        return "nats" if result.get("proper_likelihood", True) or key == "kl" else "loss"
    return "bits" if key == "bits_per_dim" else ""


def metric_value(key: str, result: dict[str, Any]) -> Any:
    """An eval.json number by its METRICS key (continuity's is the p95 of random steps)."""
    if key == "continuity":
        return (result.get("continuity") or {}).get("random_p95")
    return result.get(key)


def write_card(run_dir: str | Path) -> Path | None:
    """Write (or rewrite) RUN/README.md from run.json, metrics.jsonl and eval.json; returns its path,
    or None when the folder holds a README.md of someone else's or the card cannot be written."""
    run_dir = Path(run_dir)
    path = run_dir / CARD
    try:
        if path.exists() and MARK not in path.read_text(encoding="utf-8", errors="replace")[:2000]:
            log.warning("%s was not written by vaekit: left as it is (no model card)", path)
            return None
        info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        atomic_write_text(path, card_text(run_dir.name, info, _history(run_dir), _evaluation(run_dir)))
    except OSError as exc:   # a card is a courtesy: never fail training or evaluation over it
        log.warning("could not write the model card %s: %s", path, exc)
        return None
    return path


def _history(run_dir: Path) -> list[dict[str, Any]]:
    file = run_dir / "metrics.jsonl"
    if not file.exists():
        return []
    records = []
    for line in file.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return [r for r in records if isinstance(r, dict)]


def _evaluation(run_dir: Path) -> dict[str, Any] | None:
    file = run_dir / "eval.json"
    try:
        return json.loads(file.read_text(encoding="utf-8")) if file.exists() else None
    except ValueError:
        return None


# -- the text ------------------------------------------------------------------------------------
def card_text(name: str, info: dict[str, Any], history: list[dict[str, Any]], result: dict[str, Any] | None) -> str:
    """The whole card: front matter, then one section per subject."""
    config, data = info["config"], info["data"]
    entry = MODELS.get(config["model"])
    kind = "autoencoder" if entry is not None and entry.deterministic else "variational autoencoder"
    shape = "×".join(str(s) for s in data["sample_shape"])
    title = f"# {name}: {config['model']} on {data['name']}"
    intro = (f"{'An' if kind[0] in 'aeiou' else 'A'} {kind} ({config['model']}, {config['arch']} networks, {config['latent_dim']}-dimensional latent space) "
             f"trained with vaekit on {data['name']} ({shape} samples). "
             "This card is written by vaekit with the run and updated by `vaekit evaluate`.")
    sections = [title, intro, _model(config, info, entry), _data(data), _training(config, history, info),
                _evaluation_section(result), _use(config, data, entry, result), _loading(name, data),
                _versions(info)]
    return "---\n" + yaml.safe_dump(front_matter(name, info, result), sort_keys=False, allow_unicode=True) + "---\n\n" \
        + "\n\n".join(sections) + "\n"


def front_matter(name: str, info: dict[str, Any], result: dict[str, Any] | None) -> dict[str, Any]:
    """Hugging Face's model-card metadata: library, tags, dataset, metrics and a model-index."""
    config, data = info["config"], info["data"]
    entry = MODELS.get(config["model"])
    tags = ["vaekit", "autoencoder" if entry is not None and entry.deterministic else "variational-autoencoder",
            config["model"], f"{config['arch']}-networks"]
    meta: dict[str, Any] = {"library_name": "vaekit", "tags": list(dict.fromkeys(tags)),
                            "datasets": [data["name"]]}
    metrics = [key for key in ("nll", "nelbo", "bits_per_dim", "mse") if result and result.get(key) is not None]
    if metrics:
        meta["metrics"] = metrics
        entries = []
        for key in metrics:
            label, _ = METRICS[key]
            unit = metric_unit(key, result)
            detail = f" (K = {result['iw_samples']})" if key == "nll" and result.get("iw_samples") else ""
            entries.append({"type": key, "value": round(float(result[key]), 4),
                            "name": f"{label}{detail}" + (f", {unit} per sample" if unit in ("nats", "loss") else "")})
        meta["model-index"] = [{"name": name, "results": [{
            "task": {"type": "density-estimation" if result.get("nll") is not None else "image-reconstruction",
                     "name": "Density estimation" if result.get("nll") is not None else "Reconstruction"},
            "dataset": {"name": data["name"], "type": data["name"], "split": result.get("split", "test")},
            "metrics": entries}]}]
    return meta


def _table(rows: list[tuple[str, str]], header: tuple[str, str] = ("", "")) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {_cell(a)} | {_cell(b)} |" for a, b in rows]
    return "\n".join(lines)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-2 and value != 0 else f"{value:,.{digits}f}".rstrip("0").rstrip(".")
    return f"{value:,}" if isinstance(value, int) else str(value)


def _model(config: dict[str, Any], info: dict[str, Any], entry) -> str:
    networks = {"conv": f"conv, channels {config.get('channels')}"}.get(config["arch"], f"{config['arch']}, hidden {config.get('hidden')}")
    paper = f" ({entry.paper})" if entry is not None and entry.paper.strip("-") else ""
    deterministic = entry is not None and entry.deterministic
    rows = [("model", f"`{config['model']}`" + (f": {entry.description}{paper}" if entry is not None else "")),
            ("networks", networks),
            ("latent", f"{config['latent_dim']} dimensions, "
                       + ("deterministic codes" if deterministic else f"prior {config.get('prior') or 'standard'}")),
            ("likelihood p(x|z)", info.get("model", {}).get("likelihood", config.get("likelihood"))),
            ("parameters", _number(info.get("model", {}).get("parameters")))]
    own = [f"{key} = {_number(config[key])}" for key in _model_option_names(config["model"]) if key in config]
    if own:
        rows.append(("model options", ", ".join(own)))
    return "## Model\n\n" + _table(rows)


def _model_option_names(model: str) -> list[str]:
    from vaekit.models import model_options

    try:
        return [info.name for info in model_options(model)]
    except Exception:   # a model registered by other code in another process: no options to list
        return []


def _data(data: dict[str, Any]) -> str:
    rows = [("name", data["name"]), ("source", data.get("source", "?")),
            ("sample shape", " × ".join(str(s) for s in data["sample_shape"])),
            ("split sizes", f"{_number(data.get('n_train'))} train / {_number(data.get('n_val'))} validation / "
                            f"{_number(data.get('n_test'))} test")]
    names = data.get("class_names")
    if names:
        rows.append(("classes", ", ".join(str(n) for n in names[:20]) + (" ..." if len(names) > 20 else "")))
    return "## Data\n\n" + _table(rows) + ("\n\nThe validation split is held out of the training split; "
                                          "evaluation uses the test split unless the evaluation says otherwise.")


def _training(config: dict[str, Any], history: list[dict[str, Any]], info: dict[str, Any]) -> str:
    done = history[-1]["epoch"] if history else 0
    rows = [("epochs", f"{done} of {config['epochs']} trained"),
            ("batch size", _number(config["batch_size"])),
            ("optimiser", f"Adam, lr {config['lr']:g} ({config.get('lr_schedule', 'constant')})"),
            ("seed", config.get("seed"))]
    if history:
        best = [r for r in history if r.get("best")]
        if best:
            rows.append(("best validation loss", f"{_number(float(best[-1]['val_loss']))} at epoch {best[-1]['epoch']}"))
        elapsed = history[-1].get("elapsed_s")
        if elapsed is not None:
            rows.append(("training time", _duration(float(elapsed))))
        speeds = [r["images_per_s"] for r in history if isinstance(r.get("images_per_s"), (int, float))]
        if speeds:
            rows.append(("throughput", f"{sum(speeds) / len(speeds):,.0f} images/s (mean over epochs)"))
        rows.append(("steps", _number(history[-1].get("step"))))
    hardware = info.get("hardware")          # runs trained before vaekit recorded it have none
    if hardware:
        bf16 = {True: "with", False: "without"}.get(hardware.get("bf16_dot_products"))
        rows.append(("hardware", f"{hardware.get('name', '?')} ({hardware.get('device', '?')}, "
                                 f"{hardware.get('threads', '?')} threads"
                                 + (f", {bf16} bfloat16 dot products" if bf16 else "")
                                 + f"), trained in {hardware.get('precision', '?')}"))
    launch = info.get("distributed")
    if launch:
        rows.append(("distributed", f"{launch.get('world_size', '?')} processes (torchrun)"))
    return "## Training\n\n" + _table(rows) + "\n\nPer-epoch numbers are in `metrics.jsonl`, the full configuration in `config.json`."


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {rest:02d} s" if minutes else f"{seconds:.1f} s"


def _evaluation_section(result: dict[str, Any] | None) -> str:
    if result is None:
        return "## Evaluation\n\nNot evaluated yet: `vaekit evaluate RUN` measures the numbers and fills this section."
    rows = []
    for key, (label, meaning) in METRICS.items():
        value = metric_value(key, result)
        if value is None:
            continue
        unit = metric_unit(key, result)
        if key == "nll" and result.get("iw_samples"):
            label = f"{label} (K = {result['iw_samples']})"
        shown = f"{_number(value)} of {result.get('latent_dim')}" if key == "active_units" else _number(value)
        rows.append((label + (f" ({unit})" if unit and unit not in label else ""), f"{shown} — {meaning}"))
    scores = result.get("disentanglement") or {}
    for key, label in (("beta_vae", "BetaVAE score"), ("factor_vae", "FactorVAE score"), ("mig", "MIG"),
                       ("dci_disentanglement", "DCI disentanglement"), ("sap", "SAP")):
        if scores.get(key) is not None:
            rows.append((label, f"{_number(scores[key])} — in [0, 1], higher is better"))
    split = f"{result.get('split', 'test')} split, {_number(result.get('n'))} samples, likelihood {result.get('likelihood')}"
    units = ("nats per sample" if result.get("proper_likelihood", True)
             else "the reconstruction is a loss per sample, not nats of a probability")
    notes = "".join(f"\n- {note}" for note in result.get("notes", []))
    return (f"## Evaluation\n\n{split}; {units}; MSE per value. All numbers are in `eval.json`.\n\n"
            + _table(rows, ("quantity", "value — meaning")) + (f"\n\nNotes:{notes}" if notes else ""))


def _use(config: dict[str, Any], data: dict[str, Any], entry, result: dict[str, Any] | None) -> str:
    lines = ["## Intended use and limitations", "",
             f"- Intended for research and teaching: studying what this {config['model']} model learns on {data['name']}, "
             "its latent space (`vaekit serve`, `vaekit traverse`), and as a baseline for other models.",
             f"- It models only data like its training data ({data['name']}, samples of shape "
             f"{' × '.join(str(s) for s in data['sample_shape'])}); encodings, reconstructions and likelihoods of "
             "anything else are not meaningful, and a likelihood is not a reliable detector of unfamiliar inputs.",
             "- Samples can be blurry or mix classes; nothing about it has been checked for fairness, privacy or "
             "safety, and it should not make decisions about people."]
    if entry is not None and entry.deterministic:
        lines.append("- A deterministic autoencoder has no posterior density: no KL, ELBO or likelihood, and its "
                     "prior samples are not meaningful (sample from a mixture fitted to the codes: `vaekit sample --sampler gmm`).")
    if result is not None and not result.get("proper_likelihood", True):
        lines.append(f"- Its likelihood ({result.get('likelihood')}) is not a normalised probability: the reconstruction "
                     "term and bounds are losses, not comparable with published nats.")
    return "\n".join(lines)


def _loading(name: str, data: dict[str, Any]) -> str:
    shape = ", ".join(str(s) for s in data["sample_shape"])
    return ("## How to load\n\n"
            "```python\n"
            "import torch\n"
            "import vaekit\n\n"
            + "".join(f"{line:<42}# {comment}\n" for line, comment in (
                (f'model = vaekit.load("{name}")', "this folder: best weights, in eval mode"),
                (f"x = torch.rand(8, {shape})", "a batch of samples, values in [0, 1]"),
                ("posterior = model.encode(x)", "q(z|x): .mean, .mode(), .sample()"),
                ("images = model.decode(posterior.mode())", "back to the data space")))
            + "```\n\n"
            f"From the command line: `vaekit evaluate {name}`, `vaekit report {name}`, `vaekit serve {name}`.")


def _versions(info: dict[str, Any]) -> str:
    versions = info.get("versions", {})
    rows = [(package, version) for package, version in versions.items()]
    rows += [("created", info.get("created", "?")), ("run format", info.get("format", "?"))]
    return "## Versions\n\n" + _table(rows, ("software", "version"))
