"""ONNX export (vaekit export RUN --format onnx): the graphs, run by onnxruntime, give vaekit's outputs."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from conftest import quick_config
from vaekit.errors import RunError
from vaekit.models import MODELS, build_model

pytest.importorskip("onnxscript", reason="the export extra: pip install 'vaekit[export]'")
onnxruntime = pytest.importorskip("onnxruntime", reason="the export extra: pip install 'vaekit[export]'")

from vaekit.export.onnx import TOLERANCE, export_onnx  # noqa: E402


def _model(digits_dataset, **overrides):
    torch.manual_seed(0)
    config = quick_config(**overrides)
    return build_model(config, digits_dataset.sample_shape, class_names=digits_dataset.class_names).eval()


def _run(path, feeds):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {name: np.asarray(value) for name, value in feeds.items()})


@pytest.mark.parametrize("arch", ["linear", "mlp", "conv", "gated"])
def test_each_architecture_matches_vaekit_on_real_images_at_any_batch_size(tmp_path, digits_dataset, arch):
    model = _model(digits_dataset, arch=arch, channels=[8, 16], hidden=[32, 16])
    exported = export_onnx(model, tmp_path)
    assert max(exported.max_difference.values()) <= TOLERANCE
    for batch in (1, 7):                                 # neither is the batch the graphs were traced with
        x = torch.as_tensor(np.asarray(digits_dataset.test.x[:batch]))
        mean, logvar = _run(tmp_path / "encoder.onnx", {"image": x.numpy()})
        with torch.no_grad():
            posterior = model.encode(x)
            assert mean.shape == (batch, 3) and logvar.shape == (batch, 3)
            assert np.abs(mean - posterior.mean.numpy()).max() <= TOLERANCE
            assert np.abs(logvar - posterior.logvar.numpy()).max() <= TOLERANCE
            (image,) = _run(tmp_path / "decoder.onnx", {"code": mean})
            expected = model.decode(torch.as_tensor(mean)).numpy()
        assert image.shape == (batch, 1, 8, 8) and 0 <= image.min() and image.max() <= 1
        assert np.abs(image - expected).max() <= TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("model_name", list(MODELS))
def test_every_registered_model_exports(tmp_path, digits_dataset, model_name):
    extra = {"code_dim": 1} if model_name == "vq-vae" else {}
    if model_name in ("vamp",):
        extra["pseudo_inputs"] = 10
    model = _model(digits_dataset, model=model_name, **extra)
    exported = export_onnx(model, tmp_path)
    assert max(exported.max_difference.values()) <= TOLERANCE, exported.max_difference
    expected_outputs = ["mean", "logvar"] if model.variational else ["code"]
    assert list(exported.encoder_outputs) == expected_outputs
    assert ("label" in exported.encoder_inputs) == model.conditional


@pytest.mark.slow
@pytest.mark.parametrize("likelihood", ["continuous-bernoulli", "gaussian", "discretized-logistic"])
def test_every_likelihood_mean_exports(tmp_path, digits_dataset, likelihood):
    exported = export_onnx(_model(digits_dataset, likelihood=likelihood), tmp_path)
    assert max(exported.max_difference.values()) <= TOLERANCE, exported.max_difference


def test_conditional_model_takes_labels(tmp_path, digits_dataset):
    model = _model(digits_dataset, model="cvae")
    export_onnx(model, tmp_path)
    x = torch.as_tensor(np.asarray(digits_dataset.test.x[:4]))
    labels = np.array([3, 0, 10, 9])                     # 10: "unknown"
    mean, _ = _run(tmp_path / "encoder.onnx", {"image": x.numpy(), "label": labels})
    (image,) = _run(tmp_path / "decoder.onnx", {"code": mean, "label": labels})
    with torch.no_grad():
        y = torch.as_tensor(labels)
        assert np.abs(mean - model.encode(x, y=y).mean.numpy()).max() <= TOLERANCE
        assert np.abs(image - model.decode(torch.as_tensor(mean), y=y).numpy()).max() <= TOLERANCE
    manifest = json.loads((tmp_path / "export.json").read_text())
    assert manifest["encoder_inputs"] == {"image": ["B", 1, 8, 8], "label": ["B"]}
    assert "or 10 for unknown" in manifest["notes"][0]


def test_a_posterior_the_export_does_not_cover_is_a_clear_error(tmp_path, digits_dataset):
    from vaekit.models.vae import VAE

    class Mixture:
        def mode(self):
            return torch.zeros(1)

    class MixtureVAE(VAE):
        def encode(self, x):
            return Mixture()

    model = MixtureVAE(quick_config(), digits_dataset.sample_shape)
    with pytest.raises(RunError, match="encodes to a Mixture, which the ONNX export does not cover"):
        export_onnx(model, tmp_path)


def test_command_line_export(tmp_path, digits_dataset, capsys, monkeypatch):
    from vaekit.cli.app import main
    from vaekit.training.trainer import train

    run = tmp_path / "run"
    train(quick_config(model="ae", epochs=1), digits_dataset, run)
    assert main(["export", str(run), "--format", "onnx"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {run / 'onnx' / 'encoder.onnx'}: image (B, 1, 8, 8) -> code (B, 3)" in out
    assert "onnxruntime matches vaekit" in out
    assert sorted(p.name for p in (run / "onnx").iterdir()) == ["decoder.onnx", "encoder.onnx", "export.json"]
    import vaekit

    model = vaekit.load(run)
    x = np.asarray(digits_dataset.test.x[:3])
    (code,) = _run(run / "onnx" / "encoder.onnx", {"image": x})
    with torch.no_grad():
        assert np.abs(code - model.encode(torch.as_tensor(x)).mode().numpy()).max() <= TOLERANCE

    monkeypatch.setitem(sys.modules, "onnxscript", None)   # as if the extra were not installed
    assert main(["export", str(run), "--out", str(tmp_path / "elsewhere")]) == 2
    assert capsys.readouterr().err.strip() == ("vaekit: error: ONNX export needs onnxscript, which is not installed: "
                                               "pip install 'vaekit[export]'")
