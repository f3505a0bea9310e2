"""vaekit bench: FLOP counts against independent counts, the plain baseline against vaekit on the same
weights and noise, and a tiny end-to-end run of the library function and the command."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from conftest import unlabelled_dataset
from vaekit.bench import copy_weights, format_table, memory_probe, plain, run_bench, vaekit_config
from vaekit.bench.measure import vae_flops
from vaekit.cli.app import main
from vaekit.evaluation.evaluate import importance_weighted_bound
from vaekit.models import build_model


def _model(arch):
    torch.manual_seed(0)
    return build_model(vaekit_config(arch, 128, "cpu"), (1, 28, 28))


def test_mlp_flops_match_torchs_flop_counter():
    model = _model("mlp")
    flops = vae_flops(model.encoder, model.decoder, (1, 28, 28), 16)
    assert flops["encoder"] == 2 * (784 * 512 + 512 * 32)
    assert flops["decoder"] == flops["iw_sample"] == 2 * (16 * 512 + 512 * 784)
    assert flops["train_step"] == 3 * (flops["encoder"] + flops["decoder"]) - 2 * 784 * 512
    with FlopCounterMode(display=False) as counter:
        model.decoder(torch.randn(10, 16))
    assert counter.get_total_flops() == 10 * flops["decoder"]


def test_conv_flops_follow_the_layer_formulas():
    flops = vae_flops(*(lambda m: (m.encoder, m.decoder))(_model("conv")), (1, 28, 28), 16)
    conv1, conv2 = 2 * 32 * 14 * 14 * 1 * 16, 2 * 64 * 7 * 7 * 32 * 16
    deconv1, deconv2 = 2 * 64 * 7 * 7 * 32 * 16, 2 * 32 * 14 * 14 * 1 * 16   # every input pixel meets the 4x4 kernel
    assert flops["encoder"] == conv1 + conv2 + 2 * 3136 * 32
    assert flops["decoder"] == 2 * 16 * 3136 + deconv1 + deconv2
    assert flops["train_step"] == 3 * (flops["encoder"] + flops["decoder"]) - conv1


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_plain_baseline_with_copied_weights_is_the_same_function(arch):
    model = _model(arch).eval()
    baseline = plain.PLAIN_MODELS[arch]().eval()
    copy_weights(model, baseline)
    x = torch.rand(5, 1, 28, 28)
    z = torch.randn(5, 16)
    with torch.no_grad():
        posterior = model.encode(x)
        mu, logvar = baseline.encode(x)
        torch.testing.assert_close(mu, posterior.mean, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(logvar, posterior.logvar, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(baseline.decode(z), model.decode(z).reshape(5, 784), rtol=1e-5, atol=1e-5)


def test_plain_iw_bound_equals_vaekits_on_the_same_noise():
    model = _model("mlp").eval()
    baseline = plain.PlainMLPVAE()
    copy_weights(model, baseline)
    x = torch.bernoulli(torch.rand(6, 1, 28, 28))
    torch.manual_seed(3)
    ours = -importance_weighted_bound(model, x, 200)[0]
    torch.manual_seed(3)
    theirs = plain.iw_nll(baseline, x, 200, images_per_batch=6)   # one batch: the same noise tensor
    torch.testing.assert_close(ours.float(), theirs, rtol=1e-4, atol=1e-2)


@pytest.fixture(scope="module")
def images28():
    rng = np.random.default_rng(0)
    make = lambda n: rng.random((n, 1, 28, 28), dtype=np.float32)
    return unlabelled_dataset(make(48), make(8), make(12), name="random28")


def test_run_bench_measures_both_sides(images28):
    messages = []
    result = run_bench(archs=["mlp", "conv"], parts=["train", "eval", "nll"], steps=1, repeats=2, batch_size=16,
                       eval_images=2, k=10, nll_images=5, dataset=images28, progress=messages.append, matmul_size=256)
    assert "nll" not in result["models"]["conv"]   # the full-test-set NLL is timed for the MLP only
    nll = result["models"]["mlp"]["nll"]
    assert nll["images"] == 5 and nll["seconds"] > 0
    assert nll["ratio_to_bound"] == pytest.approx(nll["seconds"] / nll["bound_seconds"])
    # the bound beside the work is never stricter than the one at the run's fastest rate
    assert nll["parts"] == 1 and len(nll["matmul_gflops_beside"]) == 2
    assert nll["bound_seconds"] >= nll["bound_seconds_run_best"] - 1e-12
    assert nll["ratio_to_bound_run_best"] == pytest.approx(nll["seconds"] / nll["bound_seconds_run_best"])
    for arch in ("mlp", "conv"):
        entry = result["models"][arch]
        train, evaluation = entry["train"], entry["eval"]
        assert len(train["vaekit_runs"]) == len(train["plain_runs"]) == 2
        assert train["vaekit"] > 0 and train["plain"] > 0
        assert train["ratio"] == pytest.approx(train["vaekit"] / train["plain"])
        assert train["vaekit_gflops"] == pytest.approx(train["vaekit"] * entry["flops_per_image"]["train_step"] / 1e9)
        assert evaluation["images"] == 2 and evaluation["k"] == 10 and evaluation["vaekit"] > 0
    assert any("training" in m for m in messages)
    table = format_table(result)
    assert "training images/s" in table and "FLOP lower bound" in table and "conv VAE" in table


def test_memory_probe_reports_a_peak_above_the_ready_state():
    for side in ("vaekit", "plain"):
        probe = memory_probe(side, "mlp", "train", steps=2, batch_size=16, eval_images=2, k=5)
        assert probe["peak_mib"] >= probe["ready_mib"] > 0
        assert probe["working_mib"] == pytest.approx(probe["peak_mib"] - probe["ready_mib"])


def test_bench_command_prints_and_writes_json(tmp_path, capsys):
    rng = np.random.default_rng(1)
    data = tmp_path / "images.npz"
    np.savez(data, x=rng.integers(0, 256, size=(80, 28, 28), dtype=np.uint8))
    out = tmp_path / "bench.json"
    code = main(["bench", "--dataset", str(data), "--only", "mlp", "--parts", "train,eval", "--steps", "2",
                 "--repeats", "1", "--batch-size", "16", "--eval-images", "2", "--iw-samples", "10", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "MLP VAE 784-512-16-512-784" in printed and "vaekit/plain" in printed
    saved = json.loads(out.read_text())
    assert set(saved["models"]) == {"mlp"} and saved["settings"]["batch_size"] == 16


@pytest.mark.parametrize("argv,message", [(["--steps", "0"], "--steps must be at least 1"),
                                          (["--parts", "train,speed"], "unknown bench part or model 'speed'")])
def test_bench_command_rejects_bad_options(argv, message, capsys):
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vaekit: error:") and message in err and "Traceback" not in err


def test_nll_timed_in_parts_gives_the_numbers_of_one_call():
    from vaekit.bench import _nll_against_bound
    from vaekit.bench.measure import vae_flops
    from vaekit.evaluation.iw import iw_estimates

    model = _model("mlp").eval()
    x = torch.bernoulli(torch.rand(250, 1, 28, 28, generator=torch.Generator().manual_seed(1)))
    flops = vae_flops(model.encoder, model.decoder, (1, 28, 28), model.latent_dim)
    parted = _nll_against_bound(model, x, 5, flops, torch.device("cpu"), 128, [])
    whole = -iw_estimates(model, x, 5, generator=torch.Generator().manual_seed(0))[0]
    assert parted["parts"] == 3 and len(parted["matmul_gflops_beside"]) == 4   # 100 + 100 + 50 images
    assert parted["mean_nll"] == pytest.approx(float(whole.mean()), abs=1e-5)
    per_image = 5 * flops["iw_sample"] + flops["encoder"]
    slowest = min(parted["matmul_gflops_beside"])
    assert parted["bound_seconds"] <= 250 * per_image / (slowest * 1e9) + 1e-12


def test_step_timer_builds_the_recipe_with_overrides_and_trains():
    from vaekit.bench.precision import step_timer

    config, timed = step_timer("fashion-mnist-hvae-vamp", pseudo_inputs=7, batch_size=4)
    assert (config.model, config.prior, config.pseudo_inputs, config.batch_size) == ("hvae", "vamp", 7, 4)
    assert tuple(config.hidden) == (300, 300)             # the rest is the recipe's
    assert timed("fp32", 2) > 0
    with pytest.raises(TypeError):
        step_timer("fashion-mnist-vae", no_such_setting=1)
    config, timed = step_timer("fashion-mnist-hvae-vamp", pseudo_inputs=7, batch_size=4, model_options={"iw_k": 3})
    assert (config.options.iw_k, config.options.inference, config.pseudo_inputs) == (3, "conditional", 7)
    assert timed("bf16", 1) > 0


def test_recipe_curves_show_the_elbo_also_for_a_run_trained_on_the_iw_bound(tmp_path):
    from vaekit.bench.recipe_results import reference_curve

    run = tmp_path / "run"
    run.mkdir()
    lines = [{"epoch": 1, "seconds": 60.0},                                                   # no validation
             {"epoch": 2, "seconds": 60.0, "elapsed_s": 130.0, "val_loss": 229.0, "val_recon": 210.0, "val_kl": 20.0,
              "val_iw_bound": -229.0},
             {"epoch": 3, "seconds": 60.0, "elapsed_s": 195.0, "val_loss": 228.0, "val_recon": 209.0, "val_kl": 20.5,
              "val_iw_bound": -228.0}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (run / "eval.json").write_text(json.dumps({"nll": 226.5, "iw_samples": 5000}))
    curve = reference_curve("iw", run)["curve"]
    assert [(p["epoch"], p["minutes"], p["val_loss"]) for p in curve] == [(2, 130.0 / 60, 230.0), (3, 3.25, 229.5)]
    elbo_run = tmp_path / "elbo"
    elbo_run.mkdir()
    (elbo_run / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "seconds": 6.0, "val_loss": 231.0, "val_recon": 211.0,
                                                        "val_kl": 19.0}) + "\n")
    (elbo_run / "eval.json").write_text(json.dumps({"nll": 227.0, "iw_samples": 5000}))
    assert [p["val_loss"] for p in reference_curve("elbo", elbo_run)["curve"]] == [231.0]


def test_a_rerun_recipe_replaces_its_row_and_the_others_keep_theirs(tmp_path):
    from vaekit.bench.recipe_results import merged

    table = tmp_path / "recipes.json"
    assert merged([{"recipe": "a", "vaekit": 1.0}], table) == [{"recipe": "a", "vaekit": 1.0}]   # no table yet
    table.write_text(json.dumps([{"recipe": "a", "vaekit": 1.0, "machine": "old"},
                                 {"recipe": "b", "vaekit": 2.0, "machine": "old"}]))
    rows = merged([{"recipe": "c", "vaekit": 4.0, "machine": "new"}, {"recipe": "a", "vaekit": 3.0, "machine": "new"}],
                  table)
    assert [(r["recipe"], r["vaekit"], r["machine"]) for r in rows] == [("a", 3.0, "new"), ("b", 2.0, "old"),
                                                                        ("c", 4.0, "new")]


@pytest.mark.parametrize("content, fragment", [("{not json", "is not a results table to add to ("),
                                               ('{"recipe": "a"}', "should be a list of recipe rows")])
def test_adding_to_a_table_that_is_not_one_is_a_one_line_error(content, fragment, tmp_path, monkeypatch, capsys):
    from vaekit.bench import recipe_results
    from vaekit.errors import ConfigError

    table = tmp_path / "recipes.json"
    table.write_text(content)
    with pytest.raises(ConfigError, match="not a results table"):
        recipe_results.merged([{"recipe": "a"}], table)
    run = tmp_path / "fashion-mnist-vae"
    monkeypatch.setattr(recipe_results, "row", lambda run, machine: {"recipe": run.name, "score": "nll"})
    monkeypatch.setattr("vaekit.bench.measure.machine", lambda: {})
    monkeypatch.setattr("sys.argv", ["recipe_results", str(run), "--add", "--json", str(table)])
    assert recipe_results.main() == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert table.read_text() == content                      # nothing written over


def test_a_run_folder_not_named_after_a_recipe_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    from vaekit.bench import recipe_results

    monkeypatch.setattr("sys.argv", ["recipe_results", str(tmp_path / "my-run"), "--json", str(tmp_path / "t.json")])
    assert recipe_results.main() == 2
    err = capsys.readouterr().err
    assert "is not named after a recipe" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "t.json").exists()
