"""The networks ``--arch`` chooses: the gated MLP of Tomczak & Welling 2018 (VampPrior).

The gate is checked against a hand computation with separate W, b, V, c (the paper's code holds them
as two Linear layers); a gated model trains, and the fast importance-weighted evaluation (fused.py)
gives the same numbers as the plain one for it.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from conftest import quick_config
from vaekit.nn.networks import GatedDense, Unflatten, build_networks


def test_gated_dense_is_value_times_sigmoid_gate_by_hand():
    torch.manual_seed(0)
    layer = GatedDense(3, 2)
    W, V = torch.tensor([[1.0, -2.0, 0.5], [0.0, 1.0, 1.0]]), torch.tensor([[0.5, 0.0, -1.0], [2.0, 1.0, 0.0]])
    b, c = torch.tensor([0.1, -0.3]), torch.tensor([0.0, 0.2])
    with torch.no_grad():
        layer.linear.weight.copy_(torch.cat([W, V]))
        layer.linear.bias.copy_(torch.cat([b, c]))
    x = [2.0, -1.0, 4.0]
    expected = []
    for i in range(2):   # the formula written out, scalar by scalar
        value = sum(W[i, j].item() * x[j] for j in range(3)) + b[i].item()
        gate = sum(V[i, j].item() * x[j] for j in range(3)) + c[i].item()
        expected.append(value / (1 + math.exp(-gate)))
    # 1*2 + -2*-1 + 0.5*4 + 0.1 = 6.1, gate 0.5*2 - 4 = -3;  0 - 1 + 4 - 0.3 = 2.7, gate 4 - 1 + 0.2 = 3.2
    assert expected == pytest.approx([6.1 / (1 + math.exp(3.0)), 2.7 / (1 + math.exp(-3.2))])
    out = layer(torch.tensor([x]))
    assert out.shape == (1, 2)
    assert out[0].tolist() == pytest.approx(expected, rel=1e-6)


def test_gated_networks_have_gated_hidden_layers_and_end_in_a_plain_linear():
    encoder, decoder = build_networks("gated", (1, 8, 8), 5, 10, 1, [30, 20], [])
    assert [type(m) for m in encoder] == [nn.Flatten, GatedDense, GatedDense, nn.Linear]
    assert [(m.linear.in_features, m.fan_out) for m in encoder[1:3]] == [(64, 30), (30, 20)]
    assert encoder[-1].out_features == 10
    assert [type(m) for m in decoder] == [GatedDense, GatedDense, nn.Linear, Unflatten]
    assert [(m.linear.in_features, m.fan_out) for m in decoder[:2]] == [(5, 20), (20, 30)]
    assert encoder(torch.rand(4, 1, 8, 8)).shape == (4, 10)
    assert decoder(torch.randn(4, 5)).shape == (4, 1, 1, 8, 8)


def test_gated_arch_trains_and_needs_widths(digits_dataset, tmp_path):
    from vaekit.errors import ConfigError
    from vaekit.training.trainer import train

    with pytest.raises(ConfigError, match="--hidden"):
        build_networks("gated", (1, 8, 8), 5, 10, 1, [], [])
    config = quick_config(arch="gated", hidden=[24, 16], epochs=1)
    result = train(config, digits_dataset, tmp_path / "run")
    assert math.isfinite(result.history[-1]["val_loss"])
