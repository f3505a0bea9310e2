"""The fast importance-weighted evaluation computes what the plain formulation computes.

Covers the C kernels (native/decoder.c) against float64 torch, their optional build and self-check,
the fused Linear + Bernoulli scorer (fused.py) with and without them, and the threaded driver (iw.py).
"""
from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from conftest import quick_config
from vaekit.evaluation import fused
from vaekit.evaluation import iw
from vaekit.evaluation import native
from vaekit.training.config import TrainConfig
from vaekit.models import build_model


@pytest.fixture
def kernels():
    native.reset()
    found = native.decoder_kernels()
    if found is None:
        pytest.skip("no C compiler here: the torch path is what runs (tested below)")
    return found


@pytest.fixture
def no_kernels(monkeypatch):
    monkeypatch.setattr(native, "decoder_kernels", lambda: None)


def _bernoulli_reference(logits, x, per_image):
    """float64: sum_j x_j l_j - softplus(l_j) per row, image b's rows at b * per_image .. + per_image."""
    images = x.double().repeat_interleave(per_image, 0)
    return (images * logits.double() - F.softplus(logits.double())).sum(1)


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("scale", [0.1, 3.0, 30.0, 120.0, 5000.0])
@pytest.mark.parametrize("d", [784, 37])   # a multiple of the vector width and an odd tail
def test_bernoulli_kernel_matches_float64(kernels, scale, d, with_bias):
    torch.manual_seed(1)
    images, per_image, stride = 6, 5, 8     # sums written image-major, 8 apart: the gaps stay untouched
    logits = torch.randn(images * per_image, d) * scale
    logits[0, :4] = torch.tensor([0.0, -60.0, 60.0, 45.0])[: min(4, d)]   # exactly 0 and the 40-90 band
    bias = torch.randn(d) * scale if with_bias else None
    x = torch.bernoulli(torch.full((images, d), 0.4))
    x[1] = torch.rand(d)                                                 # grey levels work the same
    out = torch.full((images, stride), 123.0)
    kernels.bernoulli_rows(logits.data_ptr(), None if bias is None else bias.data_ptr(), x.data_ptr(), images, per_image,
                           d, out.data_ptr(), stride)
    shifted = logits.double() if bias is None else logits.double() + bias.double()
    expected = _bernoulli_reference(shifted, x, per_image)
    # float32 accumulation of d terms of size up to |l|: allow a few float32 ulps of the row's mass
    mass = (shifted.abs() + 1).sum(1)
    error = (out[:, :per_image].reshape(-1).double() - expected).abs()
    assert torch.all(error <= 4e-7 * mass + 1e-5), error.max()
    assert torch.all(out[:, per_image:] == 123.0)


def test_bernoulli_kernel_per_value_error_is_below_5e_7(kernels):
    values = torch.linspace(-100, 100, 200_001)
    x = torch.zeros(1, len(values))
    out = torch.empty(len(values))
    # one value per row: every row is image 0's, d = 1
    kernels.bernoulli_rows(values.data_ptr(), None, x.data_ptr(), 1, len(values), 1, out.data_ptr(), len(values))
    error = (out.double() + F.softplus(values.double())).abs()
    assert error.max() < 5e-7, values[error.argmax()]


def test_linear_relu_kernel_reads_sample_major_and_writes_image_major(kernels):
    torch.manual_seed(2)
    n, batch, latent, hidden = 3, 4, 16, 200   # 200 = one 128-block and a tail
    z = torch.randn(n, batch, latent)
    weight, bias = torch.randn(hidden, latent), torch.randn(hidden)
    h = torch.empty(batch * n, hidden)
    wt = weight.t().contiguous()
    kernels.linear_relu(z.data_ptr(), wt.data_ptr(), bias.data_ptr(), batch, n, latent, hidden, h.data_ptr())
    expected = torch.relu(z.transpose(0, 1).reshape(batch * n, latent).double() @ weight.double().t() + bias.double())
    torch.testing.assert_close(h.double(), expected, rtol=0, atol=1e-5)


def test_kernels_are_built_once_into_the_cache(kernels, tmp_path, monkeypatch):
    monkeypatch.setenv("VAEKIT_CACHE_DIR", str(tmp_path))
    native.reset()
    assert native.decoder_kernels() is not None
    built = list((tmp_path / "native").glob("decoder-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    native.reset()
    assert native.decoder_kernels() is not None
    assert [p.stat().st_mtime_ns for p in (tmp_path / "native").glob("decoder-*.so")] == [stamp]
    assert not list((tmp_path / "native").glob(".*tmp*"))   # no temporary left behind
    native.reset()


@pytest.mark.parametrize("setting", ["off", "no compiler", "failing compiler"])
def test_without_kernels_vaekit_falls_back_quietly(setting, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("VAEKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("VAEKIT_NATIVE", raising=False)   # a suite run with VAEKIT_NATIVE=0 must still try the compiler
    if setting == "off":
        monkeypatch.setenv("VAEKIT_NATIVE", "0")
    elif setting == "no compiler":
        monkeypatch.setattr(native, "compiler", lambda: None)
    else:
        fake = tmp_path / "cc"
        fake.write_text("#!/bin/sh\necho 'cc: error: no such flag' >&2\nexit 1\n")
        fake.chmod(0o755)
        monkeypatch.setenv("CC", str(fake))
    native.reset()
    try:
        with caplog.at_level(logging.INFO, logger="vaekit.evaluation.native"):
            assert native.decoder_kernels() is None
        if setting == "failing compiler":
            assert "no such flag" in caplog.text
        assert not list(tmp_path.glob("native/*.so"))
    finally:
        native.reset()


def test_a_kernel_that_fails_its_check_is_not_used(kernels, monkeypatch, caplog):
    monkeypatch.setattr(native, "_self_check", lambda k: "bernoulli_rows gave 1.0 where 2.0 was expected")
    native.reset()
    try:
        with caplog.at_level(logging.WARNING, logger="vaekit.evaluation.native"):
            assert native.decoder_kernels() is None
        assert "failed their check" in caplog.text
    finally:
        monkeypatch.undo()
        native.reset()


def _mlp_model(hidden=(48,), latent=5, arch="mlp", scale=1.0):
    torch.manual_seed(3)
    config = TrainConfig(dataset="digits", model="vae", arch=arch, hidden=list(hidden), latent_dim=latent,
                         likelihood="bernoulli", binarize="static", seed=0, device="cpu").resolved()
    model = build_model(config, (1, 8, 8)).eval()
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.mul_(scale)
    return model


@pytest.mark.parametrize("use_kernels", [True, False])
@pytest.mark.parametrize("arch,hidden", [("mlp", (48,)), ("mlp", (40, 24)), ("linear", (8,)), ("gated", (40, 24))])
@pytest.mark.parametrize("scale", [1.0, 25.0])   # 25: logits far past exp's range (torch path recomputes)
def test_fused_scorer_equals_log_likelihood(use_kernels, arch, hidden, scale, monkeypatch):
    if not use_kernels:
        monkeypatch.setattr(native, "decoder_kernels", lambda: None)
    elif native.decoder_kernels() is None:
        pytest.skip("no C compiler here")
    model = _mlp_model(hidden, arch=arch, scale=scale)
    batch, n = 7, 4
    x = torch.bernoulli(torch.full((batch, 1, 8, 8), 0.3))
    x[0] = torch.rand(1, 8, 8)
    z = torch.randn(n, batch, model.latent_dim) * 2
    with torch.inference_mode():
        scorer = fused.linear_bernoulli(model, x)
        assert scorer is not None and (scorer.kernels is not None) == use_kernels
        ours = scorer(z)
        reference = model.log_likelihood(x.repeat(n, 1, 1, 1), z.reshape(n * batch, -1)).view(n, batch)
    assert ours.shape == (n, batch)
    assert torch.isfinite(ours).all()
    tolerance = 1e-5 * reference.abs().max().item() + 1e-4
    torch.testing.assert_close(ours.double(), reference.double(), rtol=0, atol=tolerance)


@pytest.mark.parametrize("use_kernels", [True, False])
@pytest.mark.parametrize("scale", [1.0, 25.0])
def test_iw_bound_of_a_gated_model_is_the_same_with_and_without_the_fast_path(use_kernels, scale, monkeypatch):
    if not use_kernels:
        monkeypatch.setattr(native, "decoder_kernels", lambda: None)
    model = _mlp_model((40, 24), arch="gated", scale=scale)
    x = torch.bernoulli(torch.full((9, 1, 8, 8), 0.35))
    assert fused.linear_bernoulli(model, x) is not None     # the gated decoder takes the fast path
    fast = iw.importance_weighted_bound(model, x, 50, generator=torch.Generator().manual_seed(4), with_elbo=True)
    monkeypatch.setattr(iw, "linear_bernoulli", lambda *a, **k: None)
    plain = iw.importance_weighted_bound(model, x, 50, generator=torch.Generator().manual_seed(4), with_elbo=True)
    for a, b in zip(fast, plain):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=0, atol=2e-4 * max(1.0, b.abs().max().item() / 100))


def test_models_that_score_their_own_way_are_not_fused():
    conditional = build_model(quick_config(model="cvae"), (1, 8, 8), class_names=[str(i) for i in range(10)])
    conv = build_model(TrainConfig(dataset="digits", model="vae", arch="conv", latent_dim=3, likelihood="bernoulli",
                                   device="cpu").resolved(), (1, 8, 8))
    gaussian = build_model(quick_config(likelihood="gaussian"), (1, 8, 8))
    x = torch.rand(2, 1, 8, 8)
    for model in (conditional, conv, gaussian):
        assert fused.linear_bernoulli(model, x) is None


@pytest.mark.parametrize("use_kernels", [True, False])
def test_iw_bound_fused_and_generic_agree(use_kernels, monkeypatch):
    if not use_kernels:
        monkeypatch.setattr(native, "decoder_kernels", lambda: None)
    model = _mlp_model()
    x = torch.bernoulli(torch.full((9, 1, 8, 8), 0.35))
    fast = iw.importance_weighted_bound(model, x, 50, generator=torch.Generator().manual_seed(4), with_elbo=True)
    monkeypatch.setattr(iw, "linear_bernoulli", lambda *a, **k: None)
    plain = iw.importance_weighted_bound(model, x, 50, generator=torch.Generator().manual_seed(4), with_elbo=True)
    for a, b in zip(fast, plain):
        torch.testing.assert_close(a, b, rtol=0, atol=2e-4)


def test_iw_estimates_do_not_depend_on_workers_and_match_batch_by_batch():
    model = _mlp_model()
    x = torch.bernoulli(torch.full((23, 1, 8, 8), 0.35))
    threads = torch.get_num_threads()
    runs = []
    for workers in (1, 3):
        seen = []
        runs.append(iw.iw_estimates(model, x, 30, generator=torch.Generator().manual_seed(5), batch_size=4,
                                    workers=workers, with_elbo=True, progress=lambda done, total: seen.append((done, total))))
        assert seen == [(min(d, 23), 23) for d in range(4, 28, 4)]   # every batch, in order
        assert torch.get_num_threads() == threads                    # restored
    generator = torch.Generator().manual_seed(5)
    by_batch = [iw.importance_weighted_bound(model, x[s:s + 4], 30, generator=generator, with_elbo=True)
                for s in range(0, 23, 4)]
    expected = [torch.cat(parts) for parts in zip(*by_batch)]
    for run in runs:
        assert all(part.shape == (23,) for part in run)
        for a, b in zip(run, expected):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_a_failing_batch_stops_the_workers_and_restores_threads(monkeypatch):
    model = _mlp_model()
    x = torch.rand(40, 1, 8, 8)
    real = iw.importance_weighted_bound
    calls = []

    def failing(m, xb, k, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("batch 2 broke")
        return real(m, xb, k, **kw)

    monkeypatch.setattr(iw, "importance_weighted_bound", failing)
    threads = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="batch 2 broke"):
        iw.iw_estimates(model, x, 5, batch_size=2, workers=2)
    assert torch.get_num_threads() == threads
    assert len(calls) < 20   # the queued batches were cancelled, not all run


@pytest.mark.parametrize("k,scale", [(7, 1.0), (64, 1.0), (7, 25.0)])   # K not a multiple of the chunk; huge logits
def test_whole_loop_equals_log_likelihood(kernels, k, scale, monkeypatch):
    monkeypatch.setattr(fused, "WHOLE_ROWS", 4 * 9)     # 4 samples per chunk: several chunks and a short last one
    model = _mlp_model((48,), scale=scale)
    batch = 9
    x = torch.bernoulli(torch.full((batch, 1, 8, 8), 0.3))
    x[0] = torch.rand(1, 8, 8)
    z = torch.randn(k, batch, model.latent_dim) * 2
    with torch.inference_mode():
        whole = fused.linear_bernoulli(model, x).all_codes(z)
        reference = model.log_likelihood(x.repeat(k, 1, 1, 1), z.reshape(k * batch, -1)).view(k, batch)
    assert whole.shape == (k, batch) and torch.isfinite(whole).all()
    torch.testing.assert_close(whole.double(), reference.double(), rtol=0, atol=1e-5 * reference.abs().max().item() + 1e-4)


def test_whole_loop_does_not_depend_on_the_chunk_and_needs_no_bias(kernels, monkeypatch):
    torch.manual_seed(6)
    latent, hidden, d, batch, k = 5, 40, 37, 3, 11
    body = torch.nn.Sequential(torch.nn.Linear(latent, hidden), torch.nn.ReLU())
    last = torch.nn.Linear(hidden, d, bias=False)
    x = torch.bernoulli(torch.full((batch, d), 0.4))
    z = torch.randn(k, batch, latent)
    logits = torch.relu(z.double() @ body[0].weight.double().t() + body[0].bias.double()) @ last.weight.double().t()
    expected = (x.double() * logits - F.softplus(logits)).sum(-1)            # (k, batch), float64
    runs = []
    for rows in (1, 7, 3 * k, 10**6):    # one sample per chunk (below the batch), uneven, all at once, past K
        monkeypatch.setattr(fused, "WHOLE_ROWS", rows)
        runs.append(fused.LinearBernoulli(body, last, x).all_codes(z))
    for run in runs:
        torch.testing.assert_close(run.double(), expected, rtol=0, atol=1e-4)
        torch.testing.assert_close(run, runs[0], rtol=0, atol=1e-5)


def test_whole_loop_is_skipped_where_it_does_not_apply(kernels, monkeypatch):
    two_hidden = _mlp_model((40, 24))            # the first layer is not the last hidden one
    x = torch.rand(3, 1, 8, 8)
    assert fused.linear_bernoulli(two_hidden, x).all_codes(torch.randn(5, 3, 5)) is None
    monkeypatch.setattr(native, "decoder_kernels", lambda: None)   # no compiler, or VAEKIT_NATIVE=0
    assert fused.linear_bernoulli(_mlp_model(), x).all_codes(torch.randn(5, 3, 5)) is None


def test_the_fast_path_reaches_into_no_private_abi():
    """No symbol looked up inside torch's libraries, no private torch operator: a torch or BLAS
    release could change those and crash the process before any check."""
    import re
    from pathlib import Path

    import vaekit

    pattern = re.compile(r"cblas_|torch\.ops\.mkl|dlsym|CDLL\(.*torch")
    root = Path(vaekit.__file__).parent
    hits = [f"{path.relative_to(root)}:{n}" for path in sorted(root.rglob("*")) if path.suffix in (".py", ".c", ".h")
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert not hits


def test_batches_run_one_at_a_time_off_the_cpu():
    assert iw.default_workers(torch.device("cuda")) == 1
    assert iw.default_workers(torch.device("cpu")) == torch.get_num_threads()
