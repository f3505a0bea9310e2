"""The fast paths compute what the plain formulation computes, and the GPU-only options run on the CPU."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from conftest import quick_config
from vaekit.training import acceleration
from vaekit.training.trainer import Callback
from vaekit.cli.app import main
from vaekit.training.config import TrainConfig
from vaekit.errors import ConfigError
from vaekit.nn.likelihoods import Bernoulli
from vaekit.models import build_model
from vaekit.training.trainer import Trainer, make_optimizer, resume, train
from vaekit.nn.upsampling import SubPixelConvTranspose2d


@pytest.mark.parametrize("c_in,c_out,side,output_padding", [(6, 1, 7, 0), (4, 3, 14, 0), (5, 2, 7, 1), (3, 4, 4, 1), (2, 1, 1, 0)])
def test_subpixel_layer_equals_conv_transpose(c_in, c_out, side, output_padding):
    torch.manual_seed(0)
    layer = SubPixelConvTranspose2d(c_in, c_out, output_padding=output_padding).double()
    x = torch.randn(3, c_in, side, side, dtype=torch.float64, requires_grad=True)
    ours = layer(x)
    reference = F.conv_transpose2d(x, layer.weight, layer.bias, stride=2, padding=1, output_padding=output_padding)
    assert ours.shape == reference.shape == (3, c_out, 2 * side + output_padding, 2 * side + output_padding)
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)
    probe = torch.randn_like(reference)
    grads = torch.autograd.grad((ours * probe).sum(), (x, layer.weight, layer.bias))
    expected = torch.autograd.grad((reference * probe).sum(), (x, layer.weight, layer.bias))
    for a, b in zip(grads, expected):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_subpixel_layer_loads_a_plain_conv_transpose_state():
    plain = torch.nn.ConvTranspose2d(8, 2, 4, stride=2, padding=1)
    layer = SubPixelConvTranspose2d(8, 2)
    layer.load_state_dict(plain.state_dict())
    x = torch.randn(5, 8, 7, 7)
    torch.testing.assert_close(layer(x), plain(x), rtol=1e-5, atol=1e-5)


def test_conv_networks_hold_channels_last_weights_and_give_nchw_images():
    model = build_model(quick_config(arch="conv", channels=[8, 16]), (1, 16, 16))
    convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    with torch.no_grad():
        out = model.decode(torch.randn(4, model.latent_dim))
    assert out.shape == (4, 1, 16, 16)


def test_conv_vae_resume_is_bitwise_exact(tmp_path, digits_dataset):
    """Channels-last parameters and the fused optimizer survive a checkpoint round trip exactly."""
    config = quick_config(arch="conv", channels=[4], epochs=3, batch_size=128)
    train(config, digits_dataset, tmp_path / "full")

    class Stop(Callback):
        def on_epoch_end(self, record):
            if record["epoch"] == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, digits_dataset, tmp_path / "cut", callbacks=[Stop()])
    resume(tmp_path / "cut", lambda cfg: digits_dataset)
    full = load_file(str(tmp_path / "full/checkpoints/last.safetensors"))
    cut = load_file(str(tmp_path / "cut/checkpoints/last.safetensors"))
    assert full.keys() == cut.keys()
    for key in full:
        assert torch.equal(full[key], cut[key]), key


def test_optimizer_is_fused_adam_with_the_reference_update(digits_dataset):
    config = quick_config()
    torch.manual_seed(0)
    model = build_model(config, digits_dataset.sample_shape)
    reference = build_model(config, digits_dataset.sample_shape)
    reference.load_state_dict(model.state_dict())
    fused = make_optimizer(model, config)
    assert isinstance(fused, torch.optim.Adam) and fused.defaults["fused"]
    plain = torch.optim.Adam(reference.parameters(), lr=config.lr, foreach=False)
    x = torch.as_tensor(digits_dataset.train.x[:64])
    for step in range(5):
        for net, opt in ((model, fused), (reference, plain)):
            opt.zero_grad()
            net(x, generator=torch.Generator().manual_seed(step)).loss.backward()
            opt.step()
    for a, b in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("grey", [False, True])
def test_bernoulli_without_autograd_equals_cross_entropy(grey):
    torch.manual_seed(0)
    logits = torch.randn(6, 1, 1, 7, 5) * 8   # includes |logit| > 20, softplus's linear regime
    x = torch.rand(6, 1, 7, 5) if grey else torch.bernoulli(torch.rand(6, 1, 7, 5))
    expected = -(F.softplus(logits[:, 0].double()) - x.double() * logits[:, 0].double()).flatten(1).sum(1)
    likelihood = Bernoulli("none" if grey else "dynamic")
    with torch.inference_mode():
        fast = likelihood.log_prob(logits, x)
    tracked = likelihood.log_prob(logits.clone().requires_grad_(), x)
    assert tracked.requires_grad
    torch.testing.assert_close(fast.double(), expected, rtol=1e-6, atol=1e-4)
    torch.testing.assert_close(tracked.detach().double(), expected, rtol=1e-6, atol=1e-4)


def test_iw_bound_does_not_depend_on_the_chunk_size(monkeypatch, digits_dataset):
    import vaekit.evaluation.fused as fused
    import vaekit.evaluation.iw as evaluation

    model = build_model(quick_config(), digits_dataset.sample_shape).eval()
    x = torch.bernoulli(torch.as_tensor(digits_dataset.test.x[:20]))
    runs = []
    for chunk_bytes in (4 * 64 * 7, 4 * 64 * 1000, 2**30):   # 7 rows, 1000 rows, everything at once
        monkeypatch.setattr(evaluation, "IW_CHUNK_BYTES", chunk_bytes)
        monkeypatch.setattr(evaluation, "FUSED_CHUNK_BYTES", chunk_bytes)   # the chunked fused path
        monkeypatch.setattr(fused, "WHOLE_ROWS", chunk_bytes // (4 * 64))   # the whole loop, where the C kernels load
        runs.append(evaluation.importance_weighted_bound(model, x, 300, generator=torch.Generator().manual_seed(1)))
    for bound, recon in runs[1:]:
        torch.testing.assert_close(bound, runs[0][0], rtol=0, atol=1e-9)
        torch.testing.assert_close(recon, runs[0][1], rtol=0, atol=1e-9)


def test_bf16_autocast_trains_on_the_cpu(digits_dataset):
    trainer = Trainer(quick_config(precision="bf16", epochs=1), digits_dataset, None)
    seen = []
    trainer.model.decoder.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    record = trainer.train_epoch(trainer.steps_per_epoch)
    assert seen and all(dtype == torch.bfloat16 for dtype in seen)
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert math.isfinite(record["train_loss"]) and record["train_loss"] > 0



@pytest.mark.parametrize("options", [{}, {"model": "hvae", "prior": "vamp", "pseudo_inputs": 7, "arch": "gated",
                                      "inference": "conditional", "decoder_reads": "both", "latent_dim": 6,
                                      "top_latent_dim": 3}])
def test_bf16_autocast_keeps_the_latent_maths_in_float32(digits_dataset, options):
    """The layers run in bfloat16; the posterior, its samples, the KL and the loss do not (a bf16 KL of
    ~20 nats would move in steps of 0.125). The bf16 loss stays within 1% of the float32 one."""
    model = build_model(quick_config(**options), digits_dataset.sample_shape)
    x = (torch.as_tensor(digits_dataset.train.x[:64]) > 0.5).float()
    with torch.no_grad():
        reference = model(x, beta=1.0, generator=torch.Generator().manual_seed(3))
        with acceleration.autocast("bf16", torch.device("cpu")):
            posterior = model.encode(x)
            out = model(x, beta=1.0, generator=torch.Generator().manual_seed(3))
    assert posterior.mean.dtype == posterior.logvar.dtype == torch.float32
    assert out.loss.dtype == out.kl.dtype == out.recon.dtype == torch.float32
    torch.testing.assert_close(out.loss, reference.loss, rtol=1e-2, atol=0)
    torch.testing.assert_close(out.kl, reference.kl, rtol=3e-2, atol=1e-3)


def test_bf16_autocast_covers_a_models_auxiliary_step(digits_dataset):
    """FactorVAE's discriminator step takes codes from the bf16 forward pass."""
    trainer = Trainer(quick_config(model="factor-vae", precision="bf16", epochs=1), digits_dataset, None)
    before = [p.detach().clone() for p in trainer.model.discriminator.parameters()]
    record = trainer.train_epoch(trainer.steps_per_epoch)
    assert math.isfinite(record["train_loss"]) and math.isfinite(record["train_tc"])
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.discriminator.parameters()))
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())

def test_fp32_is_the_default_and_leaves_the_forward_in_float32(digits_dataset):
    trainer = Trainer(quick_config(epochs=1), digits_dataset, None)
    seen = []
    trainer.model.decoder.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    trainer.train_epoch(trainer.steps_per_epoch)
    assert set(seen) == {torch.float32}


def test_compile_in_place_keeps_parameter_names_and_outputs(digits_dataset):
    config = quick_config()
    model = build_model(config, digits_dataset.sample_shape).eval()
    names = list(model.state_dict())
    x = torch.as_tensor(digits_dataset.test.x[:8])
    with torch.no_grad():
        before = model.encode(x).mean.clone()
    acceleration.compile_networks(model, "default", backend="eager")   # tracing only, no code generation
    assert list(model.state_dict()) == names
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x).mean, before)
    acceleration.compile_networks(model, "off")


@pytest.mark.parametrize("option,value", [("precision", "fp16"), ("compile", "fast")])
def test_speed_options_are_validated(option, value, capsys):
    with pytest.raises(ConfigError, match=f"--{option}"):
        TrainConfig(**{option: value}).resolved()
    assert main(["train", "--dataset", "digits", f"--{option}", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vaekit: error:") and f"--{option}" in err and "Traceback" not in err
