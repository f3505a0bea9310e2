"""Reports: self-contained pages that show everything listed, for AE and VAE runs, plus compare and sweep."""
from __future__ import annotations

import base64
import json
import re

import pytest

from vaekit.cli.app import main

QUICK = ["--dataset", "digits", "--hidden", "32", "--latent-dim", "2", "--epochs", "2", "--batch-size", "64", "--device", "cpu"]
REPORT_SECTIONS = ["Headline numbers", "Configuration", "Training curves", "Evaluation", "Reconstructions",
                   "Samples from the prior", "Interpolation", "Traversals", "Latent map"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    for model in ("vae", "ae"):
        assert main(["train", *QUICK, "--model", model, "--out", str(root / model)]) == 0
    return root


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def assert_self_contained(page: str) -> None:
    """No scripts, no external resources: every src is an embedded PNG (or an animated GIF)."""
    assert "<script" not in page
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith(("data:image/png;base64,", "data:image/gif;base64,")) for s in sources)
    assert all(image.startswith(b"\x89PNG\r\n\x1a\n") for image in _images(page))
    assert all(base64.b64decode(data).startswith(b"GIF89a") for data in re.findall(r'src="data:image/gif;base64,([^"]+)"', page))


def section_order(page: str, titles) -> list[int]:
    return [page.index(f"<h2>{title}</h2>") for title in titles]


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
    # What matters first: the headline numbers before any picture, pictures before the training curves,
    # the configuration last, and only the options of this model in view.
    assert page.index("<h2>Headline numbers</h2>") < page.index("<img")
    assert section_order(page, ["Headline numbers", "Reconstructions", "Latent map", "Training curves", "Evaluation",
                                "Configuration"]) == sorted(section_order(page, ["Headline numbers", "Reconstructions",
                                "Latent map", "Training curves", "Evaluation", "Configuration"]))
    assert page.rindex("<h2>") == page.index("<h2>Configuration</h2>")
    headline = page[page.index("<h2>Headline numbers</h2>"):page.index("</section>", page.index("<h2>Headline numbers</h2>"))]
    assert "MSE against PCA" in headline and "the linear baseline" in headline
    shown, folded = page[page.index("<h2>Configuration</h2>"):].split("<details>")
    assert "<td>hidden</td>" in shown and "<td>channels</td>" in folded          # an MLP run: conv options folded
    assert "<td>sigma</td>" in folded and "<td>pseudo-inputs</td>" in folded
    assert "data:image/gif" not in page                                          # no animation: not a disentangling model
    if model == "vae":
        assert "−ELBO" in headline and "NLL (K = 20)" in headline and "an upper bound on −log p(x)" in headline
        assert "<td>binarize</td>" in shown
    else:
        # an MSE autoencoder's reconstruction is a loss, never labelled nats
        assert "−E[log p(x|z)] (nats)" not in page and "−E[log p(x|z)] (loss)" in page
        assert "−ELBO" not in headline and "<td>kl-warmup</td>" in folded and "<td>binarize</td>" in folded


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


def _row(page: str, name: str) -> str:
    """The HTML of one named row of the comparison table."""
    start = page.index(f'<th scope="row">{name}</th>')
    return page[start:page.index("</tr>", start)]


def test_compare_puts_runs_in_columns_marks_the_best_shows_k_and_separates_data(runs, tmp_path, tiny_npz, capsys):
    import shutil

    first, second = tmp_path / "vae-k5", tmp_path / "vae-k10"
    for copy, k in ((first, 5), (second, 10)):
        shutil.copytree(runs / "vae", copy, ignore=shutil.ignore_patterns("eval.json", "report.html"))
        assert main(["evaluate", str(copy), "--iw-samples", str(k), "--no-regularity", "--device", "cpu"]) == 0
    other = tmp_path / "npz-vae"
    assert main(["train", "--dataset", str(tiny_npz), "--hidden", "16", "--latent-dim", "2", "--epochs", "1",
                 "--device", "cpu", "--out", str(other)]) == 0
    assert main(["evaluate", str(other), "--iw-samples", "5", "--no-regularity", "--device", "cpu"]) == 0
    capsys.readouterr()
    out = tmp_path / "compare.html"
    assert main(["compare", str(first), str(second), str(other), "--out", str(out), "--device", "cpu"]) == 0
    page = out.read_text()
    assert_self_contained(page)
    assert '<th scope="col">vae-k5</th><th scope="col">vae-k10</th><th scope="col">npz-vae</th>' in page
    assert re.search(r"<td[^>]*>5</td><td[^>]*>10</td><td[^>]*>5</td>", _row(page, "K (importance samples)"))
    assert "different data" in page and "different K" in page
    assert "best" not in _row(page, "NLL (nats)")          # K = 5 and K = 10 are not ranked against each other
    assert _row(page, "−ELBO (nats)").count("best") == 2    # one mark (class and title) among the two digits runs
    assert page.count("<h2>Rate and distortion on ") == 2   # one plane per dataset
    printed = capsys.readouterr()
    assert "K (importance samples)" in printed.out and "vae-k5" in printed.out and "npz-vae" in printed.out
    assert "−ELBO (nats)" in printed.out and "*" in printed.out and "compare.html" in printed.out
    assert "vaekit: warning: these runs were trained on different data" in printed.err


def test_traverse_gif_sweeps_every_dimension(runs, tmp_path, capsys):
    from PIL import Image, ImageChops

    out = tmp_path / "traverse.gif"
    assert main(["traverse", str(runs / "vae"), "--gif", "--steps", "5", "--out", str(out), "--device", "cpu"]) == 0
    assert str(out) in capsys.readouterr().out
    with Image.open(out) as gif:
        assert gif.format == "GIF" and gif.is_animated and gif.n_frames == 8   # -2 sd .. +2 sd and back
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(gif.convert("L"))
    assert ImageChops.difference(frames[0], frames[2]).getbbox() is not None   # the tiles move
    assert ImageChops.difference(frames[1], frames[7]).getbbox() is None       # there and back: same offset, same frame


def old_run(name: str, parent):
    """A copy of a small digits run of tests/data/runs-v0 (trained 2 epochs, latent 4)."""
    import shutil
    from pathlib import Path

    target = parent / name
    shutil.copytree(Path(__file__).parent / "data" / "runs-v0" / name, target, ignore=shutil.ignore_patterns("eval.json"))
    return target


@pytest.mark.slow
def test_report_of_a_disentangling_model_embeds_the_animated_traversal(tmp_path):
    run = old_run("beta-vae", tmp_path)
    assert main(["evaluate", str(run), "--iw-samples", "5", "--no-regularity", "--device", "cpu"]) == 0
    assert main(["report", str(run), "--device", "cpu"]) == 0
    page = (run / "report.html").read_text()
    assert_self_contained(page)
    assert "<h2>Traversal, animated</h2>" in page and "data:image/gif;base64," in page


def test_class_conditional_samples_say_their_class(tmp_path, capsys):
    run = old_run("cvae", tmp_path)
    assert main(["sample", str(run), "--class", "3", "-n", "8", "--out", str(tmp_path / "s.png"), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "8 samples conditioned on class 3 (3)" in printed and "samples from the prior" not in printed


def test_the_decoded_grid_of_small_images_has_gaps_and_axes_numbered_from_zero(runs):
    from vaekit.figures import images as figures
    from vaekit.latent import load_model_and_data

    model, dataset = load_model_and_data(runs / "vae")
    figure = figures.latent_map(model, dataset, grid_size=5).figure
    grid_axes = figure.axes[1]
    assert grid_axes.images[0].get_array().shape[:2] == (5 * 9 - 1, 5 * 9 - 1)   # 8x8 tiles, 1-pixel gaps
    assert (grid_axes.get_xlabel(), grid_axes.get_ylabel()) == ("z0", "z1")
    assert figure.axes[0].get_xlabel() == "z0"
