"""ONNX export: a model's encoder and decoder as two graphs that run without vaekit or torch.

* ``encoder.onnx``: ``image`` (B, *sample_shape) float32 in [0, 1] -> ``mean`` and ``logvar``
  (B, latent_dim), the diagonal Gaussian posterior q(z|x), or ``code`` (B, latent_dim) for a model
  with a deterministic encoder (ae, wae-mmd; vq-vae's is the quantised code).
* ``decoder.onnx``: ``code`` (B, latent_dim) -> ``image`` (B, *sample_shape), the mean of p(x|z)
  (``model.decode``); images are clipped to [0, 1] as vaekit's figures clip them (only a Gaussian or
  squared-error decoder can leave [0, 1]), flat vectors are left as decoded.

A conditional model (cvae) takes a second input in both graphs, ``label`` (B,) int64: a class
index, or the number of classes for "unknown". B is dynamic in every graph.

Graphs come from torch's TorchScript exporter while torch has it, else from its ``torch.export``-based
one (:func:`exporters` says why), with the weights inside the file; nothing is fetched.
When onnxruntime is installed the export is checked: both graphs run on seeded random inputs and
their outputs are compared with vaekit's.
"""
from __future__ import annotations

import json
import logging
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vaekit.errors import ConfigError, RunError
from vaekit.files import atomic_write_text, replacing
from vaekit.nn.distributions import DiagonalGaussian, PointMass

log = logging.getLogger(__name__)

INSTALL = "pip install 'vaekit[export]'"
TOLERANCE = 1e-4          # the largest difference from vaekit's outputs the check accepts
CHECK_BATCH = 5           # inputs per check: not the batch the graphs were traced with (2)
MANIFEST = "export.json"
TORCHSCRIPT_OPSET = 17    # the TorchScript exporter's newest well-supported opset; onnxruntime runs 7 to 23


@dataclass
class OnnxExport:
    """What :func:`export_onnx` wrote: the two graphs, their inputs and outputs (name -> shape, with
    "B" for the batch), and the largest absolute difference of each output from vaekit's own (None
    when onnxruntime is not installed)."""

    encoder: Path
    decoder: Path
    encoder_inputs: dict[str, list]
    encoder_outputs: dict[str, list]
    decoder_inputs: dict[str, list]
    decoder_outputs: dict[str, list]
    max_difference: dict[str, float] | None = None
    notes: list[str] = field(default_factory=list)
    exporter: str = ""

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["encoder"], values["decoder"] = self.encoder.name, self.decoder.name
        return values


def _data_scaling(graph: nn.Module, model) -> bool:
    """Give ``graph`` the standardisation of real-valued data (tables) as float32 buffers, so the
    exported graphs take and give values in the data's original units; False for other data."""
    scaling = model.scaling
    if scaling is None:
        return False
    graph.register_buffer("data_mean", torch.as_tensor(scaling.mean, dtype=torch.float32))
    graph.register_buffer("data_scale", torch.as_tensor(scaling.scale, dtype=torch.float32))
    return True


class EncoderGraph(nn.Module):
    """image [, label] -> (mean, logvar) or code: the tensors of ``model.encode``. A table's rows go in
    in their original units (standardised inside the graph, as vaekit trained on them)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.scaled = _data_scaling(self, model)

    def forward(self, image: torch.Tensor, label: torch.Tensor | None = None):
        if self.scaled:
            image = (image - self.data_mean) / self.data_scale
        posterior = self.model.encode(image) if label is None else self.model.encode(image, y=label)
        if isinstance(posterior, DiagonalGaussian):
            return posterior.mean, posterior.logvar
        if isinstance(posterior, PointMass):
            return posterior.mode()
        raise RunError(f"--model {self.model.config.model} encodes to a {type(posterior).__name__}, which the "
                       "ONNX export does not cover (it covers diagonal Gaussians and point masses)")


class DecoderGraph(nn.Module):
    """code [, label] -> image: ``model.decode``; images (C, H, W) clipped to [0, 1], as vaekit's
    figures show them; a table's rows in the data's original units (other data as decoded)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.scaled = _data_scaling(self, model)

    def forward(self, code: torch.Tensor, label: torch.Tensor | None = None):
        image = self.model.decode(code) if label is None else self.model.decode(code, y=label)
        if self.scaled:
            return image * self.data_scale + self.data_mean
        return image.clamp(0.0, 1.0) if len(self.model.sample_shape) == 3 else image


def _require(exporter: str | None = None) -> str:
    """The exporter to use (``exporter``, or the default of :func:`exporters`), after checking that what
    it needs is installed."""
    from importlib.util import find_spec

    available = exporters()
    if exporter is None:
        exporter = available[0]
    elif exporter not in available:
        raise ConfigError(f"this torch ({torch.__version__}) has no {exporter} ONNX exporter: use {' or '.join(available)}")
    needs = ("onnx",) if exporter == "torchscript" else ("onnx", "onnxscript")
    missing = [name for name in needs if find_spec(name) is None]
    if missing:
        raise ConfigError(f"ONNX export needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                          f"not installed: {INSTALL}")
    return exporter


def example_inputs(model, batch: int, *, seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Seeded (encoder inputs, decoder inputs) for ``batch`` items: uniform images in [0, 1], standard
    normal codes, and labels cycling through the classes and "unknown" for a conditional model."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, *model.sample_shape, generator=generator)
    code = torch.randn(batch, model.latent_dim, generator=generator)
    encoder, decoder = {"image": image}, {"code": code}
    if model.conditional:
        label = torch.arange(batch) % (len(model.class_names) + 1)
        encoder["label"] = decoder["label"] = label
    return encoder, decoder


def export_onnx(model, out: str | Path, *, check: bool = True, opset: int | None = None,
                exporter: str | None = None) -> OnnxExport:
    """Write ``out``/encoder.onnx, ``out``/decoder.onnx and ``out``/export.json for ``model``.

    ``check``: run both graphs with onnxruntime (if installed) and record the largest difference
    from vaekit's outputs; one above 1e-4 is logged as a warning. ``exporter``: "torchscript" or
    "dynamo" (default: the first of :func:`exporters`)."""
    exporter = _require(exporter)
    model = model.cpu().eval()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    encoder_in, decoder_in = example_inputs(model, 2)
    encoder_graph, decoder_graph = EncoderGraph(model).eval(), DecoderGraph(model).eval()
    with torch.no_grad():
        encoded = encoder_graph(**encoder_in)           # fails here, with its message, for an uncovered model
    encoder_out = ["mean", "logvar"] if isinstance(encoded, tuple) else ["code"]
    shapes = {"image": ["B", *model.sample_shape], "label": ["B"], "code": ["B", model.latent_dim],
              "mean": ["B", model.latent_dim], "logvar": ["B", model.latent_dim]}
    result = OnnxExport(
        encoder=out / "encoder.onnx", decoder=out / "decoder.onnx",
        encoder_inputs={name: shapes[name] for name in encoder_in}, encoder_outputs={name: shapes[name] for name in encoder_out},
        decoder_inputs={name: shapes[name] for name in decoder_in}, decoder_outputs={"image": shapes["image"]})
    if model.conditional:
        result.notes.append(f"label: a class index 0-{len(model.class_names) - 1} ({', '.join(model.class_names)}), "
                            f"or {len(model.class_names)} for unknown")
    _export(encoder_graph, encoder_in, encoder_out, result.encoder, opset, model, exporter)
    _export(decoder_graph, decoder_in, ["image"], result.decoder, opset, model, exporter)
    result.exporter = exporter
    if check:
        result.max_difference = check_export(model, result)
        worst = max(result.max_difference.values(), default=0.0) if result.max_difference else 0.0
        if worst > TOLERANCE:
            log.warning("the ONNX graphs differ from vaekit's outputs by up to %.2g (more than %g)", worst, TOLERANCE)
    atomic_write_text(out / MANIFEST, json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def exporters() -> tuple[str, ...]:
    """The exporters this torch has, the default first: torch's TorchScript exporter while torch still
    ships it (``torch.onnx.export(..., dynamo=False)``, deprecated since torch 2.9 but present in 2.13),
    then its ``torch.export``-based one (``dynamo=True``, built on onnxscript). Both give graphs that
    match vaekit to 3e-7 or better; the TorchScript one exports a model in a median 0.24 s here, the
    other in 2.3 s, most of it rebuilding its operator registry each time (vaekit.bench.ecosystem)."""
    try:
        from torch.onnx import utils as torchscript_exporter
    except ImportError:      # a torch without it
        return ("dynamo",)
    return ("torchscript", "dynamo") if callable(getattr(torchscript_exporter, "export", None)) else ("dynamo",)


def _export(graph: nn.Module, inputs: dict[str, torch.Tensor], output_names: list[str], path: Path,
            opset: int | None, model, exporter: str) -> None:
    """One graph to ``path`` (atomically), with the batch dimension of every input and output dynamic."""
    try:
        with warnings.catch_warnings(), torch.no_grad(), _quiet_torch_logs(), replacing(path) as tmp:
            warnings.simplefilter("ignore")       # the exporters' deprecation notices and advice to their developers
            if exporter == "dynamo":
                batch = torch.export.Dim("batch")
                program = torch.onnx.export(graph, (), kwargs=inputs, input_names=list(inputs), output_names=output_names,
                                            dynamic_shapes={name: {0: batch} for name in inputs}, opset_version=opset,
                                            dynamo=True, external_data=False, verbose=False)
                program.save(tmp, external_data=False)
            else:
                torch.onnx.export(graph, tuple(inputs.values()), tmp, input_names=list(inputs), output_names=output_names,
                                  dynamic_axes={name: {0: "batch"} for name in [*inputs, *output_names]},
                                  opset_version=opset or TORCHSCRIPT_OPSET, dynamo=False)
    except (RunError, ConfigError):
        raise
    except Exception as exc:  # the exporters raise many types; each means "this graph cannot be exported"
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise RunError(f"--model {model.config.model} (--arch {model.config.arch}) could not be exported to ONNX "
                       f"({exporter} exporter): {first[:300]}") from None


@contextmanager
def _quiet_torch_logs():
    """The exporters log to torch's loggers (e.g. that torchvision's operators are skipped): the
    library stays silent, so those are raised to errors for the duration."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def check_export(model, exported: OnnxExport, *, seed: int = 1) -> dict[str, float] | None:
    """Largest absolute difference of each output of the two graphs from vaekit's, on seeded random
    inputs (:func:`example_inputs`); None when onnxruntime is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    encoder_in, decoder_in = example_inputs(model, CHECK_BATCH, seed=seed)
    with torch.no_grad():
        ours = EncoderGraph(model)(**encoder_in)
        ours = dict(zip(exported.encoder_outputs, ours if isinstance(ours, tuple) else (ours,)))
        ours["image"] = DecoderGraph(model)(**decoder_in)
    differences = {}
    for path, inputs, names in ((exported.encoder, encoder_in, list(exported.encoder_outputs)),
                                (exported.decoder, decoder_in, ["image"])):
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outputs = session.run(names, {name: value.numpy() for name, value in inputs.items()})
        for name, value in zip(names, outputs):
            differences[name] = float((torch.as_tensor(value) - ours[name]).abs().max())
    return differences


def export_run(run: str | Path, out: str | Path | None = None, *, which: str = "best", check: bool = True,
               exporter: str | None = None) -> OnnxExport:
    """Export a run folder's model (its ``which`` checkpoint) to ``out`` (default RUN/onnx)."""
    from vaekit.training.run import open_run

    exporter = _require(exporter)           # before loading anything
    opened = open_run(run)
    model = opened.load_model(which, device="cpu")
    return export_onnx(model, Path(out) if out is not None else opened.path / "onnx", check=check, exporter=exporter)
