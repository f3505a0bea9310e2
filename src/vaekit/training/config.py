"""The training configuration: one plain dataclass that round-trips through JSON.

Sources, weakest first: the defaults below, a TOML or YAML file (``--config``), then command-line
options. Keys may be written with dashes or underscores; an unknown key is an error.

The chosen model's own options (iwae's ``iw_k``, dip-vae's ``lambda_od``, ...) are declared by the
model (:mod:`vaekit.models.options`) and held in ``TrainConfig.options``; in files, on the command
line and in run.json they sit among the other keys, flat, by name.
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
from vaekit.models import MODELS, ModelOptions, model_class, model_options, option_users, options_class
from vaekit.models.options import flag

SCHEDULES = ("constant", "cosine")
TRACKERS = ("tensorboard", "mlflow")    # --log: vaekit.training.tracking
DEFAULT_PSEUDO_INPUTS = 500     # Tomczak & Welling 2018
PRIORS = ("standard", "vamp", "markov-codes")   # vaekit.nn.priors; which model takes which: its class's ``priors``
DEFAULT_VAL_FRACTION = 0.1
VALIDATION_KEYS = {"val_fraction", "val_size"}
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "auto")
COMPILE_MODES = ("off", "default", "reduce-overhead")
SIGMA_CHOICES = ("learned", "learned-per-feature")
DEFAULT_BATCH_SIZE = 128
TABLE_BATCH_SIZE = 32           # tables: 4x the steps per epoch (BENCHMARKS.md, "Tables")
SEED_RANGE = (-2**63, 2**63)   # what torch.manual_seed takes (seed + small offsets stay below its 2^64)


@dataclass
class TrainConfig:
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    image_size: int | None = None
    val_fraction: float | None = None   # share of the training data held out for validation (None: 0.1, unless val_size)
    val_size: int | None = None         # or that many samples exactly (Tomczak & Welling 2018: 10,000 of 60,000)
    model: str = "vae"
    arch: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: [512])
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    latent_dim: int = 16
    likelihood: str | None = None      # None: bernoulli, or mse for the deterministic models (the registry says which)
    prior: str | None = None            # None: the model's own (its class's default_prior); --prior standard | vamp
    pseudo_inputs: int | None = None    # the VampPrior's learned inputs (None: 500 when the prior is vamp)
    binarize: str = "dynamic"
    sigma: str = "learned"              # gaussian: "learned" (one scalar), "learned-per-feature", or a positive float as text
    epochs: int = 10
    batch_size: int | None = None       # None: 128, or 32 for tables (a table's epoch is a few hundred rows)
    lr: float = 1e-3
    lr_schedule: str = "constant"
    kl_warmup: float = 0.0              # epochs over which the KL weight rises linearly from 0 to beta
    grad_clip: float | None = None      # max global gradient norm
    patience: int | None = None         # early stopping: epochs without a better validation loss
    seed: int = 0
    device: str = "auto"
    # Speed settings for accelerators (vaekit.training.acceleration); off by default, see BENCHMARKS.md "Speed".
    precision: str = "fp32"             # fp32 | bf16 | auto: bfloat16 autocast of the training forward pass (auto: where it pays)
    compile: str = "off"                # off | default | reduce-overhead (torch.compile; CUDA graphs on a GPU)
    # Experiment tracking (vaekit.training.tracking): "none", or tensorboard and/or mlflow, comma-separated.
    log: str = "none"
    mlflow_uri: str | None = None       # the MLflow tracking store (None: a file store in RUN/mlruns)
    # Image folders larger than memory (vaekit.data.stream, vaekit.data.memmap).
    stream: str = "auto"                # auto: stream when the decoded folder exceeds max_memory; on; off
    cache: str = "none"                 # memmap: decode once into a memory-mapped uint8 .npy cache
    max_memory: float | None = None     # GiB the decoded data may take in memory (None: half the RAM)
    workers: int | None = None          # DataLoader processes reading streamed batches (None: 1 to 4)
    # Real-valued data and tables (vaekit.data.tables, vaekit.data.scaling).
    standardize: str = "auto"           # auto: standardise arrays with values outside [0, 1] (tables always); on; off
    columns: list[str] | None = None    # a table's feature columns (None: every numeric column but the label)
    label_column: str | None = None     # a table's label column (labels may be strings)
    missing: str = "error"              # a table's missing values: error, or drop the row
    # The model's own options: an instance of the dataclass its registry entry names (vaekit.models).
    # A dict of values given by name becomes one (an option the model lacks is refused); None: its defaults.
    options: ModelOptions | dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.options = _model_options(self.model, self.options)

    @property
    def beta(self) -> float | None:
        """The KL weight that --kl-warmup ramps up: the model's ``beta`` option, None if it has none."""
        return getattr(self.options, "beta", None)

    def resolved(self) -> "TrainConfig":
        """Fill the model-dependent defaults and check every value."""
        cfg = dataclasses.replace(self)
        if cfg.likelihood is None:
            cfg.likelihood = "mse" if MODELS[cfg.model].deterministic else ("gaussian" if names_table(cfg.dataset) else "bernoulli")
        if cfg.batch_size is None:
            cfg.batch_size = TABLE_BATCH_SIZE if names_table(cfg.dataset) else DEFAULT_BATCH_SIZE
        _choice("model", cfg.model, tuple(MODELS))
        if cfg.val_fraction is None and cfg.val_size is None:
            cfg.val_fraction = DEFAULT_VAL_FRACTION
        cfg.prior = cfg.prior or model_class(cfg.model).default_prior
        if cfg.prior == "vamp" and cfg.pseudo_inputs is None:
            cfg.pseudo_inputs = DEFAULT_PSEUDO_INPUTS
        cfg.options = cfg.options.resolve(cfg)
        cfg.sigma = str(cfg.sigma)
        cfg.log = ",".join(log_backends(cfg.log)) or "none"
        cfg.validate()
        return cfg

    def validate(self) -> None:
        from vaekit.nn.likelihoods import LIKELIHOODS
        from vaekit.nn.networks import ARCHS

        _choice("model", self.model, tuple(MODELS))
        _choice("arch", self.arch, ARCHS)
        _choice("likelihood", self.likelihood, tuple(LIKELIHOODS))
        _choice("binarize", self.binarize, ("none", "static", "dynamic"))
        _choice("lr-schedule", self.lr_schedule, SCHEDULES)
        _choice("device", self.device, DEVICES)
        _choice("stream", self.stream, ("auto", "on", "off"))
        _choice("cache", self.cache, ("none", "memmap"))
        _choice("standardize", self.standardize, ("auto", "on", "off"))
        _choice("missing", self.missing, ("error", "drop"))
        if self.columns is not None and not self.columns:
            raise ConfigError("--columns is empty: name at least one feature column, or leave it out for every numeric one")
        _choice("precision", self.precision, PRECISIONS)
        _choice("compile", self.compile, COMPILE_MODES)
        if self.max_memory is not None and not (self.max_memory > 0 and math.isfinite(self.max_memory)):
            raise ConfigError(f"--max-memory must be a positive number of GiB, not {self.max_memory}")
        if self.workers is not None and self.workers < 0:
            raise ConfigError(f"--workers must be 0 or more, not {self.workers}")
        if self.mlflow_uri is not None and "mlflow" not in log_backends(self.log):
            raise ConfigError("--mlflow-uri says where --log mlflow writes: add --log mlflow, or leave it out")
        self.options.validate(self)
        priors = model_class(self.model).priors
        if self.prior is not None:
            _choice("prior", self.prior, PRIORS)
        if self.prior is not None and self.prior not in priors:
            raise ConfigError(f"--prior {self.prior} does not apply to --model {self.model}: it takes "
                              f"{' or '.join(priors)}")
        if self.pseudo_inputs is not None:
            if self.prior != "vamp":
                raise ConfigError("--pseudo-inputs is an option of the VampPrior: add --prior vamp")
            if self.pseudo_inputs < 1:
                raise ConfigError(f"--pseudo-inputs must be at least 1, not {self.pseudo_inputs}")
        if self.kl_warmup > 0 and self.beta is None and not MODELS[self.model].deterministic:
            raise ConfigError(f"--kl-warmup ramps the KL weight beta, which --model {self.model} does not have")
        if not MODELS[self.model].deterministic and self.likelihood == "mse":
            raise ConfigError("a VAE needs a likelihood, not mse: use bernoulli, continuous-bernoulli, gaussian or discretized-logistic")
        if not SEED_RANGE[0] <= self.seed < SEED_RANGE[1]:
            raise ConfigError(f"--seed must be a whole number from -2^63 to 2^63 - 1, not {self.seed}")
        if self.latent_dim < 1:
            raise ConfigError(f"--latent-dim must be at least 1, not {self.latent_dim}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"--lr must be a positive number, not {self.lr}")
        if not (self.kl_warmup >= 0 and math.isfinite(self.kl_warmup)):   # NaN fails both comparisons
            raise ConfigError(f"--kl-warmup must be a finite number of epochs >= 0, not {self.kl_warmup}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"--grad-clip must be positive, not {self.grad_clip}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"--patience must be at least 1, not {self.patience}")
        if self.val_fraction is not None and self.val_size is not None:
            raise ConfigError("give --val-fraction or --val-size, not both")
        if self.val_fraction is not None and not 0 < self.val_fraction < 1:
            raise ConfigError(f"--val-fraction must be between 0 and 1, not {self.val_fraction}")
        if self.val_size is not None and self.val_size < 1:
            raise ConfigError(f"--val-size must be at least 1 sample, not {self.val_size}")
        if self.sigma not in SIGMA_CHOICES:
            try:
                ok = math.isfinite(float(self.sigma)) and float(self.sigma) > 0
            except ValueError:
                ok = False
            if not ok:
                raise ConfigError(f"--sigma must be a positive number, 'learned' or 'learned-per-feature', not {self.sigma!r}")

    def to_dict(self) -> dict[str, Any]:
        """Flat: the model's options sit among the other keys (``{"model": "iwae", ..., "iw_k": 5}``)."""
        values = dataclasses.asdict(self)
        options = values.pop("options")
        return {**values, **options}

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "config") -> "TrainConfig":
        """From flat keys (a config file, run.json), dashed or underscored. A null option means "not
        given", so the run.json of older versions, which held every model's options (null where
        unused), loads."""
        return _from_keys(normalise_keys(values, source=source))


# The keys every model shares; the models' own options join them by name.
FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig) if f.name != "options"}


def normalise_keys(values: dict[str, Any], *, source: str) -> dict[str, Any]:
    """Map dashed keys to field and option names (those of every registered model), refusing unknown
    ones (with a suggestion)."""
    option_types = {info.name: info.kind for model in MODELS for info in model_options(model)}
    known = [*FIELDS, *(name for name in option_types if name not in FIELDS)]
    out = {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0].replace('_', '-')!r}?)" if close else ""
            raise ConfigError(f"unknown key {key!r} in {source}{hint}; valid keys: {', '.join(k.replace('_', '-') for k in known)}")
        out[name] = _coerce(name, value, source, option_types.get(name))
    return out


def _from_keys(values: dict[str, Any]) -> TrainConfig:
    """A TrainConfig from normalised flat keys: the model's options are the keys that are not fields."""
    options = {k: v for k, v in values.items() if k not in FIELDS and v is not None}
    # A null for a key whose default is not null (``latent_dim:`` left empty in YAML) means "not given".
    shared = {k: v for k, v in values.items() if k in FIELDS and (v is not None or _nullable(k))}
    return TrainConfig(**shared, options=options)


def _nullable(name: str) -> bool:
    field_ = FIELDS[name]
    return field_.default is None and field_.default_factory is dataclasses.MISSING


def _model_options(model: str, given: Any) -> ModelOptions:
    """``model``'s options object from ``given``: None (the defaults), a dict by name, or the object itself."""
    _choice("model", model, tuple(MODELS))
    cls = options_class(model)
    if isinstance(given, cls):
        return given
    if isinstance(given, ModelOptions):
        raise ConfigError(f"--model {model} takes {cls.__name__}, not {type(given).__name__}")
    given = dict(given or {})
    own = {f.name for f in dataclasses.fields(cls)}
    for name in given:
        if name not in own:
            where = option_users().get(name)
            also = f" (it is an option of {', '.join(where)})" if where else ""
            raise ConfigError(f"{flag(name)} does not apply to --model {model}{also}")
    return cls(**given)


def _coerce(name: str, value: Any, source: str, option_type: type | None) -> Any:
    """Accept the types a TOML/YAML file or a command line naturally gives (``option_type``: that
    of a model's option, None for the shared keys)."""
    if value is None:
        return None
    if option_type is not None:
        return _convert(name, value, source, option_type)
    if name == "log" and isinstance(value, (list, tuple)):   # log = ["tensorboard", "mlflow"] in a file
        return ",".join(str(v) for v in value)
    if name == "mlflow_uri":
        return str(value)
    if name in ("hidden", "channels"):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if isinstance(value, int):
            value = [value]
        try:
            return [int(v) for v in value]
        except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
            raise ConfigError(f"{name} in {source} must be a list of integers, not {value!r}") from None
    if name == "sigma":
        return str(value)
    if name == "columns":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, int)) for v in value):
            raise ConfigError(f"columns in {source} must be a list of column names, not {value!r}")
        return [str(v) for v in value]
    default = FIELDS[name].default
    kind = type(default) if default is not None else {"image_size": int, "patience": int, "grad_clip": float,
                                                       "data_dir": str, "likelihood": str, "max_memory": float,
                                                       "workers": int, "prior": str, "pseudo_inputs": int,
                                                       "val_fraction": float, "val_size": int,
                                                       "label_column": str, "batch_size": int}[name]
    return _convert(name, value, source, kind)


def _convert(name: str, value: Any, source: str, kind: type) -> Any:
    if kind is int and isinstance(value, bool):
        raise ConfigError(f"{name} in {source} must be an integer, not {value!r}")
    try:
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf), float(10**400)
        raise ConfigError(f"{name} in {source} must be {kind.__name__}, not {value!r}") from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML (.toml) or YAML (.yaml/.yml) file into a dict of raw values."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not text (UTF-8): give a TOML, YAML or JSON file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
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


# A config file may describe itself in a table of this name (the recipes in vaekit/recipes/ do:
# paper, published number, changes from the protocol); it is not a training option.
DESCRIPTION_TABLE = "recipe"


def training_keys(raw: dict[str, Any]) -> dict[str, Any]:
    """A config file's values without its description table (``[recipe]``), if it has one."""
    if isinstance(raw.get(DESCRIPTION_TABLE), dict):
        return {k: v for k, v in raw.items() if k != DESCRIPTION_TABLE}
    return raw


def build_config(file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults, then the file, then the overrides (None values in overrides are 'not given')."""
    values: dict[str, Any] = {}
    if file is not None:
        values.update(normalise_keys(training_keys(read_config_file(file)), source=str(file)))
    if overrides:
        given = normalise_keys({k: v for k, v in overrides.items() if v is not None}, source="the command line")
        if VALIDATION_KEYS & set(given):   # the two ways to size the validation split: the command line's wins
            values = {k: v for k, v in values.items() if k not in VALIDATION_KEYS}
        values.update(given)
    return _from_keys(values).resolved()


def names_table(dataset: str) -> bool:
    """Whether a dataset name or path is a table (real-valued rows), whose default likelihood is gaussian."""
    from vaekit.data.tables import TABLE_SUFFIXES, TABLES

    text = str(dataset).lower()
    return text in TABLES or text.endswith(TABLE_SUFFIXES)


def _choice(option: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown --{option} {value!r}: choose one of {', '.join(choices)}")


def log_backends(value: str | None) -> tuple[str, ...]:
    """The trackers ``--log`` names, in order and once each: ``"mlflow,tensorboard"`` ->
    ("mlflow", "tensorboard"); ``"none"`` or empty -> (). An unknown name is a ConfigError."""
    names: list[str] = []
    for name in str(value or "none").lower().split(","):
        name = name.strip()
        if name in ("", "none"):
            continue
        _choice("log", name, ("none", *TRACKERS))
        if name not in names:
            names.append(name)
    return tuple(names)
