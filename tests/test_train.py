"""Training, checkpoints and resume: the run folder is the source of truth."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import vaekit
from conftest import StopAfter, quick_config
from vaekit.training.checkpoint import load_checkpoint
from vaekit.errors import RunError, TrainingDiverged
from vaekit.training.trainer import learning_rate, kl_weight, resume, train


def _weights(path):
    return load_file(str(path))


def _assert_same_tensors(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_run_folder_layout(tmp_path, digits_dataset):
    result = train(quick_config(), digits_dataset, tmp_path / "run")
    run = tmp_path / "run"
    for name in ("run.json", "config.json", "metrics.jsonl", "checkpoints/best.safetensors", "checkpoints/last.safetensors"):
        assert (run / name).is_file(), name
    info = json.loads((run / "run.json").read_text())
    assert info["versions"]["torch"] == torch.__version__
    assert info["versions"]["vaekit"] == vaekit.__version__
    assert info["data"]["sample_shape"] == [1, 8, 8]
    config = json.loads((run / "config.json").read_text())
    assert config["beta"] == 1.0 and config["likelihood"] == "bernoulli"
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2]
    assert {"train_loss", "train_recon", "train_kl", "val_loss", "val_recon", "val_kl", "lr", "beta"} <= lines[0].keys()
    assert result.best_epoch in (1, 2)


def test_save_load_gives_identical_outputs(tmp_path, digits_dataset):
    result = train(quick_config(epochs=1), digits_dataset, tmp_path / "run")
    loaded = vaekit.load(tmp_path / "run")
    x = torch.as_tensor(digits_dataset.test.x[:16])
    result.model.eval()
    with torch.no_grad():
        a, b = result.model.encode(x), loaded.encode(x)
        assert torch.equal(a.mean, b.mean) and torch.equal(a.logvar, b.logvar)
        z = torch.randn(5, 3)
        assert torch.equal(result.model.decode(z), loaded.decode(z))
    assert loaded.class_names == [str(i) for i in range(10)]


@pytest.mark.parametrize("model", ["vae", "ae"])
def test_resumed_run_equals_uninterrupted(tmp_path, digits_dataset, model):
    config = quick_config(model=model, epochs=4, lr_schedule="cosine", kl_warmup=1.5 if model == "vae" else 0.0)
    train(config, digits_dataset, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        train(config, digits_dataset, tmp_path / "cut", callbacks=[StopAfter(2)])
    assert load_checkpoint(tmp_path / "cut/checkpoints/last.safetensors").state["epoch"] == 2
    resume(tmp_path / "cut", lambda cfg: digits_dataset)
    _assert_same_tensors(_weights(tmp_path / "full/checkpoints/last.safetensors"),
                         _weights(tmp_path / "cut/checkpoints/last.safetensors"))
    full = (tmp_path / "full/metrics.jsonl").read_text().splitlines()
    cut = (tmp_path / "cut/metrics.jsonl").read_text().splitlines()
    strip = lambda lines: [{k: v for k, v in json.loads(l).items() if k not in ("seconds", "images_per_s", "elapsed_s")} for l in lines]
    assert strip(full) == strip(cut)


def test_resume_with_more_epochs_extends_the_run(tmp_path, digits_dataset):
    train(quick_config(epochs=3), digits_dataset, tmp_path / "direct")
    train(quick_config(epochs=1), digits_dataset, tmp_path / "short")
    resume(tmp_path / "short", lambda cfg: digits_dataset, epochs=3)
    _assert_same_tensors(_weights(tmp_path / "direct/checkpoints/last.safetensors"),
                         _weights(tmp_path / "short/checkpoints/last.safetensors"))
    assert json.loads((tmp_path / "short/config.json").read_text())["epochs"] == 3
    with pytest.raises(RunError, match="already trained 3 epochs"):
        resume(tmp_path / "short", lambda cfg: digits_dataset)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, digits_dataset, monkeypatch):
    train(quick_config(epochs=1), digits_dataset, tmp_path / "run")
    last = tmp_path / "run/checkpoints/last.safetensors"
    before = last.read_bytes()
    from vaekit.models.vae import VAE

    original = VAE.forward
    calls = {"n": 0}

    def poisoned(self, x, **kwargs):
        out = original(self, x, **kwargs)
        calls["n"] += 1
        if calls["n"] == 5 and self.training:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(VAE, "forward", poisoned)
    poisoned_step = load_checkpoint(last).state["step"] + 5
    with pytest.raises(TrainingDiverged, match=rf"step {poisoned_step} \(epoch 2\).*lower --lr"):
        resume(tmp_path / "run", lambda cfg: digits_dataset, epochs=3)
    assert last.read_bytes() == before
    assert len((tmp_path / "run/metrics.jsonl").read_text().splitlines()) == 1


def test_a_diverging_model_says_what_to_try(tmp_path, digits_dataset, monkeypatch):
    """The NaN error ends with the model's own advice: an HVAE without a log-variance floor names --min-logvar."""
    from vaekit.models.hvae import HierarchicalVAE

    original = HierarchicalVAE.forward

    def poisoned(self, x, **kwargs):
        out = original(self, x, **kwargs)
        out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(HierarchicalVAE, "forward", poisoned)
    with pytest.raises(TrainingDiverged, match=r"step 1 \(epoch 1\): set --min-logvar -6, or try a lower --lr"):
        train(quick_config(model="hvae", latent_dim=4, epochs=1), digits_dataset, tmp_path / "open")
    with pytest.raises(TrainingDiverged, match=r"step 1 \(epoch 1\): try a lower --lr") as floored:
        train(quick_config(model="hvae", latent_dim=4, min_logvar=-6.0, epochs=1), digits_dataset, tmp_path / "floored")
    assert "--min-logvar" not in str(floored.value)


def test_early_stopping(tmp_path, digits_dataset, monkeypatch):
    import vaekit.training.trainer as trainer

    losses = iter([5.0, 4.0, 4.5, 4.2, 4.1, 3.0])
    monkeypatch.setattr(trainer, "validation_loss", lambda *a, **k: {"loss": next(losses), "recon": 1.0, "kl": 1.0})
    result = train(quick_config(epochs=6, patience=3), digits_dataset, tmp_path / "run")
    assert result.stopped_early and result.best_epoch == 2 and len(result.history) == 5


def test_schedules():
    config = quick_config(lr=1e-2, lr_schedule="cosine", kl_warmup=2.0, beta=4.0)
    assert learning_rate(config, 0, 100) == pytest.approx(1e-2)
    assert learning_rate(config, 50, 100) == pytest.approx(5e-3)
    assert learning_rate(config, 100, 100) == pytest.approx(0.0, abs=1e-12)
    assert kl_weight(config, 0, 10) == 0.0
    assert kl_weight(config, 10, 10) == pytest.approx(2.0)
    assert kl_weight(config, 25, 10) == 4.0
    assert kl_weight(quick_config(model="ae"), 3, 10) is None


def test_checkpoint_loading_refuses_pickles_and_garbage(tmp_path):
    pickled = tmp_path / "evil.safetensors"
    torch.save({"model.weight": torch.zeros(2)}, pickled)  # a pickle, not safetensors
    with pytest.raises(RunError, match="corrupt"):
        load_checkpoint(pickled)
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":")
    with pytest.raises(RunError, match="corrupt"):
        load_checkpoint(truncated)
    with pytest.raises(RunError, match="missing"):
        load_checkpoint(tmp_path / "absent.safetensors")
