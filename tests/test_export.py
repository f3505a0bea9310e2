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

pytest.importorskip("onnx", reason="the export extra: pip install 'vaekit[export]'")
onnxruntime = pytest.importorskip("onnxruntime", reason="the export extra: pip install 'vaekit[export]'")

from vaekit.export.onnx import TOLERANCE, export_onnx


def _model(digits_dataset, **overrides):
    torch.manual_seed(0)
    config = quick_config(**overrides)
    return build_model(config, digits_dataset.sample_shape, class_names=digits_dataset.class_names).eval()


def _run(path, feeds):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {name: np.asarray(value) for name, value in feeds.items()})


def _matches_vaekit(model, folder, x, labels=None):
    """Run both graphs with onnxruntime on ``x`` (and ``labels``) and compare with the model's own outputs."""
    feeds = {"image": x.numpy()} if labels is None else {"image": x.numpy(), "label": labels.numpy()}
    encoded = _run(folder / "encoder.onnx", feeds)
    condition = {} if labels is None else {"y": labels}
    with torch.no_grad():
        posterior = model.encode(x, **condition)
        expected = [posterior.mean, posterior.logvar] if model.variational else [posterior.mode()]
        assert [e.shape for e in encoded] == [(len(x), model.latent_dim)] * len(expected)
        for ours, theirs in zip(expected, encoded):
            assert np.abs(theirs - ours.numpy()).max() <= TOLERANCE
        code = encoded[0]
        (image,) = _run(folder / "decoder.onnx", {"code": code} if labels is None else {"code": code, "label": labels.numpy()})
        reference = model.decode(torch.as_tensor(code), **condition)
        reference = (reference.clamp(0, 1) if len(model.sample_shape) == 3 else reference).numpy()
    assert image.shape == (len(x), *model.sample_shape)
    assert len(model.sample_shape) != 3 or (0 <= image.min() and image.max() <= 1)
    assert np.abs(image - reference).max() <= TOLERANCE


@pytest.mark.parametrize("arch", ["linear", "mlp", "conv", "gated"])
def test_each_architecture_matches_vaekit_on_real_images_at_any_batch_size(tmp_path, digits_dataset, arch):
    model = _model(digits_dataset, arch=arch, channels=[8, 16], hidden=[32, 16])
    exported = export_onnx(model, tmp_path)
    assert max(exported.max_difference.values()) <= TOLERANCE
    for batch in (1, 7):                                 # neither is the batch the graphs were traced with
        _matches_vaekit(model, tmp_path, torch.as_tensor(np.asarray(digits_dataset.test.x[:batch])))


# Each model, and each likelihood's mean, with their own encode and decode: all exported and checked.
CASES = [{"model": name} for name in MODELS] + [{"likelihood": name} for name in
                                                ("continuous-bernoulli", "gaussian", "discretized-logistic")]


@pytest.mark.parametrize("case", CASES, ids=[next(iter(c.values())) for c in CASES])
def test_every_registered_model_and_likelihood_exports(tmp_path, digits_dataset, case):
    extra = {"vq-vae": {"code_dim": 1}, "vamp": {"pseudo_inputs": 10}}.get(case.get("model"), {})
    model = _model(digits_dataset, **case, **extra)
    exported = export_onnx(model, tmp_path)
    assert list(exported.encoder_outputs) == (["mean", "logvar"] if model.variational else ["code"])
    assert ("label" in exported.encoder_inputs) == model.conditional == ("label" in exported.decoder_inputs)
    x = torch.as_tensor(np.asarray(digits_dataset.test.x[:6]))
    labels = torch.tensor([3, 0, 10, 9, 1, 10]) if model.conditional else None    # 10: "unknown"
    _matches_vaekit(model, tmp_path, x, labels)


@pytest.mark.slow
def test_the_dynamo_exporter_gives_the_same_graphs(tmp_path, digits_dataset):
    """torch's torch.export-based exporter, the one left when torch drops the TorchScript one."""
    pytest.importorskip("onnxscript", reason="the export extra: pip install 'vaekit[export]'")
    model = _model(digits_dataset, arch="conv", channels=[8, 16])
    exported = export_onnx(model, tmp_path, exporter="dynamo")
    assert exported.exporter == "dynamo" and max(exported.max_difference.values()) <= TOLERANCE
    for batch in (1, 7):
        _matches_vaekit(model, tmp_path, torch.as_tensor(np.asarray(digits_dataset.test.x[:batch])))


def test_conditional_model_manifest_says_what_labels_mean(tmp_path, digits_dataset):
    export_onnx(_model(digits_dataset, model="cvae"), tmp_path)
    manifest = json.loads((tmp_path / "export.json").read_text())
    assert manifest["encoder_inputs"] == {"image": ["B", 1, 8, 8], "label": ["B"]}
    assert manifest["decoder_outputs"] == {"image": ["B", 1, 8, 8]}
    assert manifest["notes"] == ["label: a class index 0-9 (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), or 10 for unknown"]


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


@pytest.mark.slow
def test_command_line_export(tmp_path, digits_dataset, capsys):
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


def test_missing_library_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    from vaekit.cli.app import main

    monkeypatch.setitem(sys.modules, "onnx", None)          # as if the extra were not installed
    assert main(["export", str(tmp_path / "no-run")]) == 2  # checked before the run is opened
    assert capsys.readouterr().err.strip() == ("vaekit: error: ONNX export needs onnx, which is not installed: "
                                               "pip install 'vaekit[export]'")


def test_flat_vectors_export_with_their_own_shape(tmp_path):
    from conftest import unlabelled_dataset

    rng = np.random.default_rng(0)
    data = unlabelled_dataset(*(rng.random((n, 12), dtype=np.float32) for n in (40, 10, 10)))
    torch.manual_seed(0)
    model = build_model(quick_config(likelihood="gaussian"), data.sample_shape).eval()
    exported = export_onnx(model, tmp_path)
    assert exported.encoder_inputs == {"image": ["B", 12]} and exported.decoder_outputs == {"image": ["B", 12]}
    _matches_vaekit(model, tmp_path, torch.as_tensor(data.test.x[:5]))


def test_a_table_run_exports_in_the_tables_own_units(tmp_path):
    """The graphs fold in the standardisation: rows go in and come out in the table's units."""
    import onnxruntime

    from vaekit.data import load_dataset
    from vaekit.export.onnx import export_onnx
    from vaekit.training.config import TrainConfig
    from vaekit.training.trainer import train

    data = load_dataset("wine")
    config = TrainConfig(dataset="wine", hidden=[16], latent_dim=2, epochs=2, device="cpu").resolved()
    model = train(config, data, None).model.eval()
    exported = export_onnx(model, tmp_path / "onnx")
    rows = data.scaling.inverse(data.test.x).astype(np.float32)          # original units: proline is ~700
    encoder = onnxruntime.InferenceSession(str(exported.encoder), providers=["CPUExecutionProvider"])
    decoder = onnxruntime.InferenceSession(str(exported.decoder), providers=["CPUExecutionProvider"])
    mean = encoder.run(["mean"], {"image": rows})[0]
    with torch.no_grad():
        expected = model.encode(torch.as_tensor(data.test.x)).mean.numpy()
        decoded = model.to_data_units(model.decode(torch.as_tensor(mean))).numpy()
    assert np.abs(mean - expected).max() < 1e-4
    out = decoder.run(["image"], {"code": mean})[0]
    assert np.abs(out - decoded).max() < 1e-2 * np.abs(decoded).max()
    assert out[:, -1].mean() > 100                                       # proline, in its own units
