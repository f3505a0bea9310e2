"""Reports: self-contained pages that show everything listed, for AE and VAE runs, plus compare and sweep."""
from __future__ import annotations

import base64
import json
import re

import pytest

from vaekit.cli.app import main

QUICK = ["--dataset", "digits", "--hidden", "32", "--latent-dim", "2", "--epochs", "2", "--batch-size", "64", "--device", "cpu"]
REPORT_SECTIONS = ["Configuration", "Training curves", "Evaluation", "Reconstructions", "Samples from the prior",
                   "Interpolation", "Traversals", "Latent map"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    for model in ("vae", "ae"):
        assert main(["train", *QUICK, "--model", model, "--out", str(root / model)]) == 0
    return root


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def assert_self_contained(page: str) -> None:
    """No scripts, no external resources: every src is an embedded PNG."""
    assert "<script" not in page
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert all(image.startswith(b"\x89PNG\r\n\x1a\n") for image in _images(page))


@pytest.mark.parametrize("model", ["vae", "ae"])
def test_report_shows_everything_offline(runs, model, capsys):
    assert main(["report", str(runs / model), "--iw-samples", "20", "--device", "cpu"]) == 0
    page = (runs / model / "report.html").read_text()
    assert_self_contained(page)
    for title in REPORT_SECTIONS:
        assert f"<h2>{title}</h2>" in page, title
    evaluation = json.loads((runs / model / "eval.json").read_text())
    if model == "vae":
        assert "<h2>KL per latent dimension</h2>" in page
        assert f"{evaluation['nelbo']:.4f}" in page.replace(",", "")
    else:
        assert "Samples from a mixture fitted to the codes" in page
        assert "not a normalised likelihood" in page or "no posterior" in page
    assert len(_images(page)) >= 7


def test_compare_and_rate_distortion(runs, tmp_path):
    out = tmp_path / "compare.html"
    assert main(["compare", str(runs / "vae"), str(runs / "ae"), "--out", str(out), "--iw-samples", "20", "--device", "cpu"]) == 0
    page = out.read_text()
    assert_self_contained(page)
    assert "<h2>Rate and distortion</h2>" in page  # the VAE is a point on the plane
    assert page.count("<h3>") == 2 and ">vae<" in page and ">ae<" in page


def test_sweep_trains_one_run_per_beta_and_compares(tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep", "--beta", "0.5,4", *QUICK[:-2], "--epochs", "1", "--out", str(out), "--iw-samples", "10", "--device", "cpu"]
    assert main(args) == 0
    betas = {json.loads((out / f"beta-{b}/config.json").read_text())["beta"] for b in ("0.5", "4")}
    assert betas == {0.5, 4.0}
    kl = {b: json.loads((out / f"beta-{b}/eval.json").read_text())["kl"] for b in ("0.5", "4")}
    assert kl["4"] < kl["0.5"]  # a heavier KL weight buys a lower rate
    assert_self_contained((out / "compare.html").read_text())
    assert main(args) == 2  # the runs exist now: refused without --overwrite


def test_sweep_refuses_an_autoencoder(tmp_path, capsys):
    assert main(["sweep", "--beta", "1,2", "--model", "ae", "--dataset", "digits", "--out", str(tmp_path)]) == 2
    assert "needs a VAE" in capsys.readouterr().err
