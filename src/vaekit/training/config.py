"""The training configuration: one plain dataclass that round-trips through JSON.

Sources, weakest first: the defaults below, a TOML or YAML file (``--config``), then command-line
options. Keys may be written with dashes or underscores; an unknown key is an error.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaekit.errors import ConfigError
from vaekit.models import MODELS as MODEL_REGISTRY
from vaekit.models import options as model_options

MODELS = tuple(MODEL_REGISTRY)          # the registry in vaekit.models is the one list
SCHEDULES = ("constant", "cosine")
PRIORS = ("standard", "vamp", "markov-codes")   # which model takes which: its class's ``priors``
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16")
COMPILE_MODES = ("off", "default", "reduce-overhead")


@dataclass
class TrainConfig:
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    image_size: int | None = None
    val_fraction: float = 0.1
    model: str = "vae"
    arch: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: [512])
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    latent_dim: int = 16
    likelihood: str | None = None      # None: bernoulli for VAEs, mse for the AE
    prior: str | None = None            # None: the model's own (N(0, I) for most; vamp for --model vamp)
    binarize: str = "dynamic"
    sigma: str = "learned"              # a positive float written as text, or "learned"
    beta: float | None = None           # None: 1 for vae, 4 for beta-vae
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    lr_schedule: str = "constant"
    kl_warmup: float = 0.0              # epochs over which the KL weight rises linearly from 0 to beta
    grad_clip: float | None = None      # max global gradient norm
    patience: int | None = None         # early stopping: epochs without a better validation loss
    seed: int = 0
    device: str = "auto"
    # Speed settings for accelerators (vaekit.training.acceleration); off by default, see BENCHMARKS.md "Speed".
    precision: str = "fp32"             # fp32 | bf16: bfloat16 autocast of the training forward pass
    compile: str = "off"                # off | default | reduce-overhead (torch.compile; CUDA graphs on a GPU)
    # Image folders larger than memory (vaekit.data.stream, vaekit.data.memmap).
    stream: str = "auto"                # auto: stream when the decoded folder exceeds max_memory; on; off
    cache: str = "none"                 # memmap: decode once into a memory-mapped uint8 .npy cache
    max_memory: float | None = None     # GiB the decoded data may take in memory (None: half the RAM)
    workers: int | None = None          # DataLoader processes reading streamed batches (None: 1 to 4)
    # Model-specific options (vaekit.models.options): None unless the model uses them.
    iw_k: int | None = None
    alpha: float | None = None
    gamma: float | None = None
    disc_lr: float | None = None
    dip_type: str | None = None
    lambda_od: float | None = None
    lambda_d: float | None = None
    capacity_max: float | None = None
    capacity_epochs: float | None = None
    mmd_weight: float | None = None
    mmd_kernel: str | None = None
    pseudo_inputs: int | None = None
    label_dropout: float | None = None
    codebook_size: int | None = None
    code_dim: int | None = None
    commitment: float | None = None
    ema_decay: float | None = None
    top_latent_dim: int | None = None
    free_bits: float | None = None

    def resolved(self) -> "TrainConfig":
        """Fill the model-dependent defaults and check every value."""
        cfg = dataclasses.replace(self)
        entry = MODEL_REGISTRY.get(cfg.model)
        if cfg.likelihood is None:
            cfg.likelihood = "mse" if entry is not None and entry.deterministic else "bernoulli"
        model_options.fill_defaults(cfg)
        if cfg.model == "ae":
            cfg.beta = None
        cfg.sigma = str(cfg.sigma)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        from vaekit.nn.likelihoods import LIKELIHOODS
        from vaekit.nn.networks import ARCHS

        _choice("model", self.model, MODELS)
        _choice("arch", self.arch, ARCHS)
        _choice("likelihood", self.likelihood, tuple(LIKELIHOODS))
        if self.prior is not None:
            _choice("prior", self.prior, PRIORS)
        _choice("binarize", self.binarize, ("none", "static", "dynamic"))
        _choice("lr-schedule", self.lr_schedule, SCHEDULES)
        _choice("device", self.device, DEVICES)
        _choice("stream", self.stream, ("auto", "on", "off"))
        _choice("cache", self.cache, ("none", "memmap"))
        _choice("precision", self.precision, PRECISIONS)
        _choice("compile", self.compile, COMPILE_MODES)
        if self.max_memory is not None and not (self.max_memory > 0 and math.isfinite(self.max_memory)):
            raise ConfigError(f"--max-memory must be a positive number of GiB, not {self.max_memory}")
        if self.workers is not None and self.workers < 0:
            raise ConfigError(f"--workers must be 0 or more, not {self.workers}")
        model_options.check(self)
        if not MODEL_REGISTRY[self.model].deterministic and self.likelihood == "mse":
            raise ConfigError("a VAE needs a likelihood, not mse: use bernoulli, continuous-bernoulli, gaussian or discretized-logistic")
        if self.latent_dim < 1:
            raise ConfigError(f"--latent-dim must be at least 1, not {self.latent_dim}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"--lr must be a positive number, not {self.lr}")
        if self.beta is not None and not (self.beta >= 0 and math.isfinite(self.beta)):
            raise ConfigError(f"--beta must be a non-negative number, not {self.beta}")
        if self.kl_warmup < 0:
            raise ConfigError(f"--kl-warmup must be >= 0 epochs, not {self.kl_warmup}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"--grad-clip must be positive, not {self.grad_clip}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"--patience must be at least 1, not {self.patience}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"--val-fraction must be between 0 and 1, not {self.val_fraction}")
        if self.sigma != "learned":
            try:
                ok = float(self.sigma) > 0
            except ValueError:
                ok = False
            if not ok:
                raise ConfigError(f"--sigma must be a positive number or 'learned', not {self.sigma!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "config") -> "TrainConfig":
        return cls(**normalise_keys(values, source=source))


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def normalise_keys(values: dict[str, Any], *, source: str) -> dict[str, Any]:
    """Map dashed keys to field names, refusing unknown ones (with a suggestion)."""
    out = {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in FIELDS:
            close = difflib.get_close_matches(name, FIELDS, n=1)
            hint = f" (did you mean {close[0].replace('_', '-')!r}?)" if close else ""
            raise ConfigError(f"unknown key {key!r} in {source}{hint}; valid keys: {', '.join(k.replace('_', '-') for k in FIELDS)}")
        out[name] = _coerce(name, value, source)
    return out


def _coerce(name: str, value: Any, source: str) -> Any:
    """Accept the types a TOML/YAML file or a command line naturally gives."""
    if value is None:
        return None
    default = FIELDS[name].default
    if name in ("hidden", "channels"):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if isinstance(value, int):
            value = [value]
        try:
            return [int(v) for v in value]
        except (TypeError, ValueError):
            raise ConfigError(f"{name} in {source} must be a list of integers, not {value!r}") from None
    if name == "sigma":
        return str(value)
    kind = type(default) if default is not None else {"image_size": int, "patience": int, "beta": float,
                                                       "grad_clip": float, "data_dir": str, "likelihood": str, "prior": str,
                                                       "max_memory": float, "workers": int,
                                                       **{k: t for k, (t, _) in model_options.OPTIONS.items()}}[name]
    if kind is int and isinstance(value, bool):
        raise ConfigError(f"{name} in {source} must be an integer, not {value!r}")
    try:
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} in {source} must be {kind.__name__}, not {value!r}") from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML (.toml) or YAML (.yaml/.yml) file into a dict of raw values."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"config file {path} must end in .toml, .yaml, .yml or .json")
    except ConfigError:
        raise
    except Exception as exc:  # the parsers raise their own types; all mean "malformed file"
        raise ConfigError(f"cannot parse {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of option names to values")
    return data


def build_config(file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults, then the file, then the overrides (None values in overrides are 'not given')."""
    values: dict[str, Any] = {}
    if file is not None:
        values.update(normalise_keys(read_config_file(file), source=str(file)))
    if overrides:
        values.update(normalise_keys({k: v for k, v in overrides.items() if v is not None}, source="the command line"))
    return TrainConfig(**values).resolved()


def _choice(option: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown --{option} {value!r}: choose one of {', '.join(choices)}")
