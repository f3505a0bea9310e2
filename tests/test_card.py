"""The model card: RUN/README.md, written with the run, rewritten by evaluate, loadable as it says."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml

import vaekit
from vaekit.cli.app import main
from vaekit.training.card import write_card

OLD_RUNS = Path(__file__).parent / "data" / "runs-v0"

QUICK = ["--dataset", "digits", "--hidden", "32", "--latent-dim", "2", "--epochs", "2", "--batch-size", "64", "--device", "cpu"]


def read_card(run) -> tuple[dict, str]:
    """(front matter, body) of RUN/README.md; the front matter must be YAML between two --- lines."""
    text = (run / "README.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n(.*)", text, re.S)
    assert match, text[:200]
    return yaml.safe_load(match.group(1)), match.group(2)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("card") / "digits-vae"
    assert main(["train", *QUICK, "--out", str(run)]) == 0
    return run


def test_card_is_written_with_the_run(vae_run):
    front, body = read_card(vae_run)
    info = json.loads((vae_run / "run.json").read_text())
    assert front["library_name"] == "vaekit" and front["datasets"] == ["digits"]
    assert "variational-autoencoder" in front["tags"] and "vae" in front["tags"]
    assert "model-index" not in front                          # nothing measured yet
    data = info["data"]
    assert f"{data['n_train']:,} train / {data['n_val']:,} validation / {data['n_test']:,} test" in body
    assert data["source"] in body
    assert "2 of 2 trained" in body                             # written again when training ended
    assert f"{info['model']['parameters']:,}" in body
    assert f"| torch | {info['versions']['torch']} |" in body
    hardware = info["hardware"]                                 # where the training time was measured
    assert hardware["device"] == "cpu" and hardware["precision"] == "fp32" and hardware["threads"] >= 1
    row = next(line for line in body.splitlines() if line.startswith("| hardware |"))
    assert hardware["name"] in row and row.rstrip(" |").endswith("trained in fp32")
    assert "Not evaluated yet" in body
    for heading in ("## Model", "## Data", "## Training", "## Evaluation", "## Intended use and limitations",
                    "## How to load", "## Versions"):
        assert heading in body, heading


def test_evaluate_fills_the_card_and_its_loading_example_runs(vae_run, monkeypatch):
    assert main(["evaluate", str(vae_run), "--iw-samples", "10", "--no-regularity", "--device", "cpu"]) == 0
    result = json.loads((vae_run / "eval.json").read_text())
    front, body = read_card(vae_run)
    [entry] = front["model-index"]
    [results] = entry["results"]
    assert results["dataset"] == {"name": "digits", "type": "digits", "split": "test"}
    metrics = {m["type"]: m for m in results["metrics"]}
    assert set(front["metrics"]) == set(metrics) == {"nll", "nelbo", "bits_per_dim", "mse"}
    for key in metrics:
        assert metrics[key]["value"] == pytest.approx(result[key], abs=1e-4)
    assert "K = 10" in metrics["nll"]["name"]
    assert "Not evaluated yet" not in body and "NLL (K = 10) (nats)" in body
    assert f"{result['nelbo']:.4f}".rstrip("0") in body.replace(",", "")
    # The card's example, run as written from the folder's parent: vaekit.load reads the folder as it is.
    code = re.search(r"```python\n(.*?)```", body, re.S).group(1)
    monkeypatch.chdir(vae_run.parent)
    scope: dict = {}
    exec(code, scope)
    assert scope["images"].shape == (8, 1, 8, 8)
    z = torch.linspace(-1, 1, 6).reshape(3, 2)
    with torch.no_grad():
        assert torch.equal(scope["model"].decode(z), vaekit.load(vae_run).decode(z))


def old_run(name: str, parent: Path) -> Path:
    """A copy of a run folder written by an older vaekit (tests/data/runs-v0), which has no card yet."""
    target = parent / name
    shutil.copytree(OLD_RUNS / name, target)
    return target


def test_an_mse_autoencoder_card_says_loss_not_nats(tmp_path):
    run = old_run("ae", tmp_path)
    assert main(["evaluate", str(run), "--iw-samples", "5", "--no-regularity", "--device", "cpu"]) == 0
    front, body = read_card(run)
    assert front["metrics"] == ["mse"] and "autoencoder" in front["tags"]
    evaluation = body[body.index("## Evaluation"):body.index("## Intended use")]
    assert "| reconstruction −E[log p(x\\|z)] (loss) |" in evaluation and "(nats)" not in evaluation
    assert "no posterior density" in body and "deterministic codes" in body


def test_a_readme_of_someone_else_is_left_alone(tmp_path):
    run = old_run("vae", tmp_path)
    (run / "README.md").write_text("# my notes\n")
    assert write_card(run) is None
    assert (run / "README.md").read_text() == "# my notes\n"
    (run / "README.md").unlink()
    assert write_card(run) == run / "README.md"            # an old run gets its card on the next write
    assert read_card(run)[0]["library_name"] == "vaekit"
    assert vaekit.load(run).latent_dim == 4
