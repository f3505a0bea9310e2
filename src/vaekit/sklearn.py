"""scikit-learn estimators: :class:`VariationalAutoencoder` and :class:`Autoencoder`.

They make vaekit's models feel like :class:`sklearn.decomposition.PCA`: ``fit(X)`` trains,
``transform(X)`` gives codes (posterior means), ``inverse_transform(Z)`` decodes codes back to rows
in X's own units, ``score(X)`` says how well the model explains X, and the VAE ``sample``\\ s new rows.
They are scikit-learn transformers, so they work in ``Pipeline``, ``GridSearchCV``, ``clone`` and
``set_output(transform="pandas")``, and they pass every check of
``sklearn.utils.estimator_checks.check_estimator`` (tests/test_sklearn.py runs them all, with no
expected failures). One check, ``check_array_api_input``, is skipped by scikit-learn itself unless
the environment variable ``SCIPY_ARRAY_API=1`` is set before Python starts; with it set, it passes.

Under the hood ``fit`` is ``vaekit.training.trainer.train`` in memory (no run folder) on a
:class:`vaekit.data.Dataset` made of X's rows, so the model, the loss and the learned Gaussian sigma
(started at the PCA residual) are exactly those of ``vaekit train`` on the same table. Choices an
estimator has to make that a run folder does not:

* **Standardisation** (``standardize``): "on" (the default) fits a mean and a scale per column on
  the training rows, as ``vaekit train`` does for tables, and every output (``inverse_transform``,
  ``sample``, ``score``) is in X's own units; "off" models X as given; "auto" is vaekit's rule
  (standardise unless every value lies in [0, 1]). The default differs from vaekit's "auto" so
  that an estimator's results do not change when a table happens to lie in [0, 1].
* **Constant columns** are kept, so ``n_features_in_`` and ``inverse_transform``'s shape are X's:
  a column with one value in the training rows gets scale 1 (as ``StandardScaler`` does), so it
  is 0 after standardisation. ``vaekit train`` leaves such columns out instead; an estimator cannot,
  since its outputs must keep X's columns. The VAE's learned sigma then has a constant value to
  reproduce: its floor (``Gaussian.LOG_SIGMA_MIN``) keeps ``score`` finite.
* **Validation rows** (``validation_fraction``): None (the default) trains on every row, as
  scikit-learn estimators do (model selection is ``GridSearchCV``'s job); the trainer's per-epoch
  validation figures in ``history_`` (``val_*``) are then measured on the training rows. A fraction
  holds that share of the rows out (at least one, chosen with ``random_state``); the scaling is
  fitted on the rest, and ``history_``'s ``val_*`` are held-out figures. This works on any number
  of rows down to 1 (2 with a fraction), which is why vaekit's own train/val/test splitting, which
  needs 3, is not used.
* **Randomness**: ``random_state`` (None, an int or a ``RandomState``) gives vaekit's training
  seed; an int is used as the seed itself (``vaekit train --seed``), so an int makes ``fit``
  deterministic on the CPU. ``device`` is "cpu" by default for that reason; "auto", "cuda" or
  "mps" train on an accelerator (``model_`` stays there, and so does ``score``).
* **Precision**: ``transform``, ``inverse_transform`` and ``sample`` run a float64 copy of the
  trained model on the CPU. In float32 a row's code depends on how many rows share its batch (by up
  to 2e-7 here: the matrix products take other paths), more than scikit-learn allows; in float64 the
  difference is ~1e-16. ``score`` runs ``model_`` itself, in float32, exactly as vaekit's evaluation does.

``score``:

* VariationalAutoencoder: the mean ELBO per row, in nats, in X's own units: minus the ``nelbo`` that
  :func:`vaekit.evaluation.evaluate.evaluate_model` reports for the same rows (same estimator: the
  reconstruction term averaged over ``iw_samples`` posterior samples drawn with seed 0, the closed-form
  KL, and the log-Jacobian of the standardisation; tested equal). Higher is better.
* Autoencoder: minus the mean squared reconstruction error per value, in X's own units
  (``-mean_squared_error(X, inverse_transform(transform(X)))``); it has no likelihood.
"""
from __future__ import annotations

import copy
import math
import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from vaekit.data.dataset import Dataset, Split
from vaekit.data.scaling import STANDARDIZE_CHOICES, Scaling, needs_scaling
from vaekit.errors import ConfigError
from vaekit.evaluation.iw import iw_estimates
from vaekit.training.config import DEVICES, SIGMA_CHOICES, TrainConfig
from vaekit.training.trainer import train

ARCHS = ("linear", "mlp", "gated")      # the flat-vector networks of vaekit.nn.networks ("conv" is for images)
SCORE_SEED = 0                          # evaluate_model's default seed: score() draws the same samples
BATCH_ROWS = 100                        # rows per batch in transform, inverse_transform and score (evaluate_model's)


class ParameterError(ConfigError, ValueError):
    """A hyperparameter is invalid: a vaekit ConfigError that is also the ValueError scikit-learn expects."""


class _VaekitEstimator(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """What both estimators share: fitting through vaekit's trainer, encoding and decoding."""

    _model_name = ""       # the vaekit registry name
    _likelihood = ""

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Train on the rows of ``X`` (n_samples, n_features); ``y`` is ignored. Returns self."""
        self._check_params()
        X = validate_data(self, X, dtype=np.float64)
        seed = _seed(self.random_state)
        train_rows, val_rows = _split_rows(len(X), self.validation_fraction, seed)
        scaling = _fit_scaling(X[train_rows], self.standardize)
        names = (tuple(str(n) for n in self.feature_names_in_) if hasattr(self, "feature_names_in_")
                 else tuple(f"x{i}" for i in range(X.shape[1])))
        units = scaling.transform(X) if scaling is not None else X.astype(np.float32)
        train_split = Split(units[train_rows], None)
        val_split = Split(units[val_rows], None) if val_rows is not None else train_split
        dataset = Dataset(name=type(self).__name__, train=train_split, val=val_split,
                          test=Split(units[:0], None), sample_shape=(X.shape[1],), class_names=None,
                          source="scikit-learn estimator", quantized_8bit=False, scaling=scaling,
                          feature_names=names)
        result = train(self._config(seed), dataset, None)
        self.model_ = result.model.eval()
        # transform and inverse_transform answer in float64 (see "Precision" in the module's docstring).
        self._model64 = copy.deepcopy(self.model_).to("cpu", torch.float64)
        self.scaling_ = scaling
        self.history_ = result.history
        self._n_features_out = self.latent_dim
        return self

    def _config(self, seed: int) -> TrainConfig:
        return TrainConfig(dataset=type(self).__name__, model=self._model_name, arch=self.arch,
                           hidden=_hidden(self.hidden), latent_dim=int(self.latent_dim), likelihood=self._likelihood,
                           epochs=int(self.epochs), batch_size=int(self.batch_size), lr=float(self.lr), seed=seed,
                           device=self.device, **self._model_settings()).resolved()

    def _model_settings(self) -> dict:
        """TrainConfig fields of this kind of model (the VAE's sigma and beta)."""
        return {}

    def _check_params(self) -> None:
        _integer("latent_dim", self.latent_dim)
        _integer("epochs", self.epochs)
        _integer("batch_size", self.batch_size)
        _hidden(self.hidden)
        _choice("arch", self.arch, ARCHS)
        if not _real(self.lr, above=0):
            raise ParameterError(f"lr={self.lr!r}: the learning rate must be a positive number")
        _choice("standardize", self.standardize, STANDARDIZE_CHOICES)
        fraction = self.validation_fraction
        if fraction is not None and (isinstance(fraction, bool) or not isinstance(fraction, numbers.Real)
                                     or not 0 < fraction < 1):
            raise ParameterError(f"validation_fraction={fraction!r}: give None (train on every row) or a "
                                 "number between 0 and 1")
        _choice("device", self.device, DEVICES)

    # -- using the model -------------------------------------------------------------------------
    def transform(self, X):
        """The codes of the rows of ``X``: posterior means (the AE's codes), (n_samples, latent_dim)."""
        units = self._standardised(X)
        with torch.inference_mode():
            codes = [self._model64.encode(batch).mode() for batch in self._batches(units)]
        return torch.cat(codes).numpy()

    def inverse_transform(self, X):
        """Decode codes ``X`` (n_samples, latent_dim): the expected rows, in the fitted data's units."""
        check_is_fitted(self)
        codes = check_array(X, dtype=np.float64)
        if codes.shape[1] != self.model_.latent_dim:
            raise ValueError(f"X has {codes.shape[1]} features, but {type(self).__name__}.inverse_transform is "
                             f"expecting {self.model_.latent_dim} (latent_dim) features as input")
        with torch.inference_mode():
            decoded = torch.cat([self._model64.decode(batch) for batch in self._batches(codes)]).numpy()
        return decoded if self.scaling_ is None else self.scaling_.inverse(decoded)

    def _standardised(self, X) -> np.ndarray:
        """Checked rows, standardised as in fit (float64)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return (X - self.scaling_.mean) / self.scaling_.scale if self.scaling_ is not None else X.copy()

    @staticmethod
    def _batches(values: np.ndarray):
        for start in range(0, len(values), BATCH_ROWS):
            yield torch.as_tensor(values[start:start + BATCH_ROWS])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Training on an accelerator may use non-deterministic kernels; on the CPU an int seed fixes everything.
        tags.non_deterministic = self.device != "cpu"
        return tags


class VariationalAutoencoder(_VaekitEstimator):
    """A variational autoencoder (vaekit's ``vae``, a beta-VAE for beta != 1) with a Gaussian likelihood.

    Parameters
    ----------
    latent_dim : int, default=2
        Size of the code; ``transform`` returns that many columns.
    hidden : tuple of int, default=(64,)
        Widths of the hidden layers of the encoder (the decoder mirrors them).
    arch : {"mlp", "linear", "gated"}, default="mlp"
        vaekit's networks: "linear" makes the VAE a probabilistic PCA (Tipping & Bishop 1999).
    epochs : int, default=100
        Passes over the training rows.
    batch_size : int, default=64
    lr : float, default=1e-3
        Adam's learning rate.
    beta : float, default=1.0
        Weight of the KL term (1: the ELBO; other values: a beta-VAE).
    sigma : "learned", "learned-per-feature" or float, default="learned"
        The Gaussian's standard deviation in standardised units: one learned value, one per column
        (factor analysis's noise model), or fixed. A learned sigma starts at the PCA residual.
    standardize : {"on", "off", "auto"}, default="on"
        Standardise each column on the training rows (see the module's docstring).
    validation_fraction : float or None, default=None
        Share of rows held out to monitor training (``history_``'s ``val_*``); None: train on all.
    iw_samples : int, default=100
        Posterior samples per row that ``score`` averages the reconstruction term over.
    random_state : None, int or numpy.random.RandomState, default=None
        Seeds training (an int is the vaekit seed itself); an int makes ``fit`` deterministic.
    device : {"cpu", "auto", "cuda", "mps"}, default="cpu"

    Attributes
    ----------
    model_ : vaekit.models.vae.VAE
        The trained vaekit model (eval mode); ``model_.scaling`` is ``scaling_``.
    scaling_ : vaekit.data.scaling.Scaling or None
        The per-column standardisation fitted on the training rows (None with standardize off).
    history_ : list of dict
        The trainer's record of each epoch (``train_loss``, ``val_loss``, ... in standardised units).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Set when X has string column names (a pandas DataFrame).

    Notes
    -----
    ``score`` is the mean ELBO per row in X's own units (see the module's docstring). Every check of
    ``sklearn.utils.estimator_checks.check_estimator`` passes (scikit-learn skips its array-API
    check unless ``SCIPY_ARRAY_API=1``; it passes with it).
    """

    _model_name = "vae"
    _likelihood = "gaussian"

    def __init__(self, latent_dim=2, *, hidden=(64,), arch="mlp", epochs=100, batch_size=64, lr=1e-3, beta=1.0,
                 sigma="learned", standardize="on", validation_fraction=None, iw_samples=100, random_state=None,
                 device="cpu"):
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.arch = arch
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.beta = beta
        self.sigma = sigma
        self.standardize = standardize
        self.validation_fraction = validation_fraction
        self.iw_samples = iw_samples
        self.random_state = random_state
        self.device = device

    def _model_settings(self) -> dict:
        return {"sigma": str(self.sigma), "options": {"beta": float(self.beta)}}

    def _check_params(self) -> None:
        super()._check_params()
        if not (_real(self.beta, above=-math.inf) and self.beta >= 0):
            raise ParameterError(f"beta={self.beta!r}: the KL weight must be a number >= 0")
        if not (isinstance(self.sigma, str) and self.sigma in SIGMA_CHOICES) and not _real(self.sigma, above=0):
            raise ParameterError(f"sigma={self.sigma!r}: give 'learned', 'learned-per-feature' or a positive number")
        _integer("iw_samples", self.iw_samples)

    def score(self, X, y=None):
        """The mean ELBO per row of ``X``, in nats, in X's own units (higher is better); ``y`` is ignored.

        Equal to minus ``vaekit.evaluation.evaluate.evaluate_model(...).nelbo`` on the same rows, with
        ``iw_samples`` samples and seed 0.
        """
        # The float32 model on its device, as evaluate_model runs it: the same noise, the same numbers.
        standardised = self._standardised(X)
        model = self.model_
        units = torch.as_tensor(standardised, dtype=torch.float32, device=next(model.parameters()).device)
        generator = torch.Generator(device=units.device).manual_seed(SCORE_SEED)
        with torch.inference_mode():
            # The same draws, in the same order, as evaluate_model: noise batch by batch of BATCH_ROWS rows.
            _, log_px_z = iw_estimates(model, units, int(self.iw_samples), generator=generator, batch_size=BATCH_ROWS)
            kl = sum(float(model.prior.kl_per_dim(model.encode(batch)).double().sum())
                     for batch in units.split(BATCH_ROWS))
        log_jacobian = self.scaling_.log_jacobian if self.scaling_ is not None else 0.0
        return float(log_px_z.double().sum()) / len(units) - kl / len(units) - log_jacobian

    def sample(self, n_samples=1, random_state=None):
        """``n_samples`` new rows drawn from the model, in X's units: z ~ N(0, I), then x ~ p(x|z)
        (the Gaussian's noise included). ``random_state``: None, an int or a RandomState.

        The decoded means alone, without the noise, are ``inverse_transform(codes)`` of codes drawn
        from N(0, I).
        """
        check_is_fitted(self)
        if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ParameterError(f"n_samples={n_samples!r}: ask for at least 1 sample")
        rng = check_random_state(random_state)
        codes = rng.standard_normal((n_samples, self.model_.latent_dim))
        noise = rng.standard_normal((n_samples, self.n_features_in_))
        means = self.inverse_transform(codes)
        sigma = self._sigma()
        scale = self.scaling_.scale if self.scaling_ is not None else 1.0
        return means + noise * sigma * scale

    def _sigma(self) -> np.ndarray:
        """The Gaussian's standard deviation per column, in standardised units, as the likelihood uses it."""
        likelihood = self._model64.likelihood
        log_sigma = likelihood.log_sigma.detach()
        if likelihood.learned:
            log_sigma = log_sigma.clamp(min=likelihood.LOG_SIGMA_MIN)
        return np.broadcast_to(log_sigma.exp().numpy(), (self.n_features_in_,)).copy()


class Autoencoder(_VaekitEstimator):
    """A deterministic autoencoder (vaekit's ``ae``) trained on the squared reconstruction error.

    Parameters are those of :class:`VariationalAutoencoder` less ``beta``, ``sigma`` and
    ``iw_samples``. ``score`` is minus the mean squared reconstruction error per value in X's own
    units, ``-mean((X - inverse_transform(transform(X))) ** 2)``: an autoencoder has no likelihood.
    It has no ``sample``: its codes have no prior to draw from. Every check of ``check_estimator``
    passes, as for the VAE.
    """

    _model_name = "ae"
    _likelihood = "mse"

    def __init__(self, latent_dim=2, *, hidden=(64,), arch="mlp", epochs=100, batch_size=64, lr=1e-3,
                 standardize="on", validation_fraction=None, random_state=None, device="cpu"):
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.arch = arch
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.standardize = standardize
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device

    def score(self, X, y=None):
        """Minus the mean squared reconstruction error per value, in X's own units; ``y`` is ignored."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        reconstructed = self.inverse_transform(self.transform(X))
        return -float(np.mean((X - reconstructed) ** 2))


# -- helpers ---------------------------------------------------------------------------------------
def _seed(random_state) -> int:
    """vaekit's integer seed: an int random_state is the seed itself; otherwise one drawn from it."""
    rng = check_random_state(random_state)          # also refuses anything else, with sklearn's message
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    return int(rng.randint(np.iinfo(np.int32).max))


def _split_rows(n: int, fraction: float | None, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(training rows, held-out rows or None), sorted; the held-out ones chosen with ``seed``."""
    if fraction is None:
        return np.arange(n), None
    held_out = max(1, int(round(n * fraction)))
    if held_out >= n:
        raise ParameterError(f"validation_fraction={fraction} holds out {held_out} of the {n} sample(s), leaving none "
                         "to train on: pass more samples or validation_fraction=None")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[held_out:]), np.sort(order[:held_out])


def _fit_scaling(train_x: np.ndarray, standardize: str) -> Scaling | None:
    """Per-column mean and scale of the training rows; a constant column gets its value and scale 1."""
    if not needs_scaling(train_x, standardize):
        return None
    constant = np.ptp(train_x, axis=0) == 0
    mean = np.where(constant, train_x[0], train_x.mean(0))
    scale = np.where(constant, 1.0, train_x.std(0))
    return Scaling(mean=mean, scale=scale, sample_shape=(train_x.shape[1],))


def _real(value, *, above: float) -> bool:
    """Whether ``value`` is a finite real number (not a bool) greater than ``above``."""
    return (not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
            and value > above)


def _integer(name: str, value, least: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ParameterError(f"{name}={value!r}: give a whole number >= {least}")


def _hidden(value) -> list[int]:
    """The hidden widths as vaekit's list: one int or a sequence of them, each >= 1."""
    widths = [value] if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
    try:
        widths = list(widths)
    except TypeError:
        widths = None
    if not widths or not all(isinstance(w, numbers.Integral) and not isinstance(w, bool) and w >= 1 for w in widths):
        raise ParameterError(f"hidden={value!r}: give the hidden layers' widths, e.g. (64,) or (128, 64)")
    return [int(w) for w in widths]


def _choice(name: str, value, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ParameterError(f"{name}={value!r}: choose one of {', '.join(map(repr, choices))}")
