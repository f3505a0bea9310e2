"""One run opened for exploring: its model, the encoded test and training images, and the map plane.

Everything the explorer computes goes through :mod:`vaekit.latent` and the model's own methods
(``encode``, ``decode``, ``sample_prior``), so a new model type works here as soon as it works there.

A table run answers with the same pictures (a bar glyph of each row, :func:`feature_glyph`, where an
image run has images) and, beside them, the rows' values in the data's original units
(``model.to_data_units``) under ``info()["feature_names"]``.

Thread safety: uvicorn serves requests from a pool of threads. A model is only read during
inference, but nothing promises that every model (or every future one, with a learned prior or a
cache) is safe to call from several threads at once, and on a laptop CPU parallel forward passes
only compete for the same cores. So each run has one lock, held for every call into the model and
for nothing else: PNG encoding and JSON work happen outside it.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaekit import latent
from vaekit.errors import ConfigError, VaekitError
from vaekit.training.run import open_run
from vaekit.serve.images import BadInput, feature_glyph, png_data_url, read_upload

log = logging.getLogger(__name__)

MAP_POINTS = 5000                 # test images on the map (a seeded subset, as `vaekit latent-map`)
GMM_FIT_POINTS = 10000            # encoded training images the mixture sampler is fitted to
SLIDER_PERCENTILES = (0.5, 99.5)  # slider ranges cover the codes between these percentiles...
PRIOR_SPAN = 3.0                  # ...and, for models with a prior, at least +-3 prior standard deviations


@dataclass(frozen=True, eq=False)
class MapPlane:
    """The 2-D map of a latent space and its inverse.

    For more than two dimensions the plane is spanned by the first two principal axes of the test
    codes (as ``vaekit latent-map --method pca``): ``project(z) = (z - mean) @ axes.T``. The map must
    also go the other way -- the cursor at map point p means some code -- so ``lift(z, p)`` moves the
    code ``z`` within the plane through ``z`` parallel to the map until it projects onto ``p``; the
    other directions keep their values. With the map's axes orthonormal that is
    ``z + (p - project(z)) @ axes``. For 1-D and 2-D latents the map is the code itself.
    """

    mean: np.ndarray       # (L,)
    axes: np.ndarray       # (2, L), orthonormal rows (the second is zero for a 1-D latent)
    labels: tuple[str, str]
    method: str

    @classmethod
    def fit(cls, codes: np.ndarray) -> "MapPlane":
        # The toolkit's projection (identity up to 2-D, else PCA), kept as the linear map it is.
        projection = latent.project_2d(codes, method="pca")
        return cls(projection.mean, projection.axes, projection.axis_labels, projection.method)

    def project(self, codes: np.ndarray) -> np.ndarray:
        return (np.asarray(codes, np.float64) - self.mean) @ self.axes.T

    def lift(self, code: np.ndarray, point: np.ndarray) -> np.ndarray:
        code = np.asarray(code, np.float64)
        return code + (np.asarray(point, np.float64) - self.project(code)) @ self.axes


class Explorer:
    """A run's model and data, ready to answer the explorer's requests."""

    def __init__(self, run_id: str, path: Path, *, data_dir: str | None = None, device: str = "cpu",
                 map_points: int = MAP_POINTS):
        started = time.perf_counter()
        self.run_id = run_id
        self.path = Path(path)
        self.lock = threading.Lock()
        model, dataset = latent.load_model_and_data(self.path, data_dir=data_dir, device=device)
        self.model = model
        self.dataset_name = dataset.name
        self.sample_shape = tuple(model.sample_shape)
        self.latent_dim = int(model.latent_dim)
        self.variational = model.variational
        self.class_names = list(model.class_names or dataset.class_names or []) or None
        self.feature_names = list(dataset.feature_names) if getattr(dataset, "is_table", False) else None
        self._probe()

        self.test_x, self.test_y = dataset.test.x, dataset.test.y
        rng = np.random.default_rng(0)
        n_map = min(map_points, len(self.test_x))
        self.map_indices = np.sort(rng.permutation(len(self.test_x))[:n_map])
        with self.lock:
            self.map_codes = latent.encode_means(model, self.test_x[self.map_indices]).astype(np.float64)
            self.train_codes = latent.encode_means(model, dataset.train.x).astype(np.float64)
            self.kl_per_dim = self._kl_per_dim(self.test_x[self.map_indices])
        self.train_y = dataset.train.y
        self.plane = MapPlane.fit(self.map_codes)
        self.map_xy = self.plane.project(self.map_codes)
        self.slider_ranges = self._slider_ranges()
        self.training, self.evaluation = _run_record(self.path)
        self._mixture = None
        self._mixture_lock = threading.Lock()
        log.info("opened %s for exploring in %.1f s (%d map points, %d training codes)", self.path,
                 time.perf_counter() - started, n_map, len(self.train_codes))

    # -- set-up ---------------------------------------------------------------------------------
    def _probe(self) -> None:
        """Decode one code now, so a model the explorer cannot drive is refused with a reason."""
        try:
            images = latent.decode_images(self.model, np.zeros((1, self.latent_dim)))
        except Exception as exc:  # noqa: BLE001 - any failure means: this model cannot be explored
            raise VaekitError(f"{self.path}: the explorer cannot decode this model's codes on their own "
                              f"({type(exc).__name__}: {exc})") from None
        if images.shape[1:] != self.sample_shape:
            raise VaekitError(f"{self.path}: decoded images are shaped {images.shape[1:]}, not {self.sample_shape}")

    def _kl_per_dim(self, x: np.ndarray) -> np.ndarray | None:
        if not self.variational:
            return None
        try:
            return latent.mean_kl_per_dim(self.model, x)
        except Exception as exc:  # noqa: BLE001 - a posterior without a closed-form KL: sliders stay unsorted
            log.info("no KL per dimension for %s (%s)", self.path, exc)
            return None

    def _slider_ranges(self) -> np.ndarray:
        low, high = np.percentile(self.map_codes, SLIDER_PERCENTILES, axis=0)
        if self.variational:
            low, high = np.minimum(low, -PRIOR_SPAN), np.maximum(high, PRIOR_SPAN)
        pad = 0.1 * np.maximum(high - low, 1e-3)
        return np.stack([low - pad, high + pad], axis=1)

    # -- what the page needs once per run ---------------------------------------------------------
    def info(self) -> dict:
        config = self.model.config
        order = (latent.dimension_order(self.kl_per_dim) if self.kl_per_dim is not None
                 else np.arange(self.latent_dim))
        return {
            "run": self.run_id,
            "model": config.model,
            "variational": self.variational,
            "arch": config.arch,
            "likelihood": config.likelihood,
            "dataset": self.dataset_name,
            "latent_dim": self.latent_dim,
            "sample_shape": list(self.sample_shape),
            "class_names": self.class_names,
            "parameters": int(sum(p.numel() for p in self.model.parameters())),
            "test_images": int(len(self.test_x)),
            "can_upload": len(self.sample_shape) == 3,
            "has_prior": True,
            **self._feature_info(),
            "training": self.training,
            "evaluation": self.evaluation,
            "start": self.map_codes.mean(0).tolist(),
            "dimensions": [{"index": int(d), "low": float(self.slider_ranges[d, 0]),
                            "high": float(self.slider_ranges[d, 1]),
                            "kl": None if self.kl_per_dim is None else float(self.kl_per_dim[d])}
                           for d in order],
        }

    def map(self) -> dict:
        return {
            "run": self.run_id,
            "method": self.plane.method,
            "axis_labels": list(self.plane.labels),
            "mean": self.plane.mean.tolist(),
            "axes": self.plane.axes.tolist(),
            "points": np.round(self.map_xy, 4).tolist(),
            "indices": self.map_indices.tolist(),
            "labels": None if self.test_y is None else self.test_y[self.map_indices].tolist(),
        }

    def _feature_info(self) -> dict:
        """A table's column names and its standardisation (original units), which the page uses to
        place each value against the training data; all None for image runs."""
        if self.feature_names is None:
            return {"feature_names": None, "feature_mean": None, "feature_scale": None}
        scaling = self.model.scaling
        shape = (len(self.feature_names),)
        return {"feature_names": self.feature_names,
                "feature_mean": np.broadcast_to(np.asarray(scaling.mean, np.float64), shape).tolist(),
                "feature_scale": np.broadcast_to(np.asarray(scaling.scale, np.float64), shape).tolist()}

    # -- requests ---------------------------------------------------------------------------------
    def check_codes(self, codes) -> np.ndarray:
        """Codes from a request as an (N, latent_dim) float array, or :class:`BadInput`."""
        for row, code in enumerate(codes):
            if len(code) != self.latent_dim:
                raise BadInput(f"z[{row}] has {len(code)} numbers: this run's codes have {self.latent_dim} "
                               f"(latent_dim of run {self.run_id!r})")
        return np.asarray(codes, np.float64).reshape(len(codes), self.latent_dim)

    def decode(self, codes: np.ndarray) -> dict:
        """``images``: PNG data URLs of the decoded samples (bar glyphs for a table); ``values``: a
        table's decoded rows in its original units (None for images)."""
        with self.lock:
            samples = latent.decode_images(self.model, codes)
        return {"images": self._pictures(samples), "values": self._values(samples)}

    def _pictures(self, samples: np.ndarray) -> list[str]:
        if self.feature_names is None:
            return [png_data_url(sample) for sample in samples]
        return [png_data_url(feature_glyph(sample)) for sample in samples]

    def _values(self, samples: np.ndarray) -> list[list[float]] | None:
        """Rows in the data's original units, for a table; None for images (the picture is the value)."""
        if self.feature_names is None:
            return None
        return np.asarray(self.model.to_data_units(samples), np.float64).tolist()

    def test_image(self, index: int) -> dict:
        if not 0 <= index < len(self.test_x):
            raise BadInput(f"test image {index} does not exist: the test split has {len(self.test_x)} images "
                           f"(0 to {len(self.test_x) - 1})", 404)
        x = self.test_x[index:index + 1]
        found = self._encode(x)
        label = None if self.test_y is None else int(self.test_y[index])
        return {"index": index, "label": label, "class_name": self._class_name(label),
                "image": self._pictures(x)[0], "image_values": (self._values(x) or [None])[0], **found}

    def encode_upload(self, data: bytes, *, invert: bool = False) -> dict:
        sample = read_upload(data, self.sample_shape, invert=invert)
        return {"input": png_data_url(sample), **self._encode(sample[None])}

    def _encode(self, x: np.ndarray) -> dict:
        import torch

        with self.lock, torch.inference_mode():
            posterior = self.model.encode(torch.as_tensor(x, device=self._device()))
            mean = posterior.mean.double().cpu().numpy()
            logvar = None if posterior.logvar is None else posterior.logvar.double().cpu().numpy()
            recon = latent.decode_images(self.model, mean)
        return {"mean": mean[0].tolist(), "logvar": None if logvar is None else logvar[0].tolist(),
                "point": self.plane.project(mean)[0].tolist(), "reconstruction": self._pictures(recon)[0],
                "reconstruction_values": (self._values(recon) or [None])[0]}

    def interpolate(self, start, end, steps: int, method: str) -> dict:
        codes = latent.interpolate(np.asarray(start), np.asarray(end), steps, method)
        return {"z": codes.tolist(), **self.decode(codes), "points": self.plane.project(codes).tolist()}

    def sample(self, n: int, *, sampler: str, temperature: float, seed: int) -> dict:
        warning = None
        if sampler == "gmm":
            codes = latent.mixture_samples(self._fit_mixture(), n, temperature=temperature, seed=seed)
        else:
            codes = self._prior_samples(n, temperature, seed)
            if not self.variational:
                from vaekit.latent.sampling import ae_prior_warning

                warning = ae_prior_warning().replace("--sampler gmm (in Python sampler='gmm')", "the gmm sampler")
        return {"z": codes.tolist(), **self.decode(codes), "points": self.plane.project(codes).tolist(),
                "warning": warning}

    def _prior_samples(self, n: int, temperature: float, seed: int) -> np.ndarray:
        # Every model draws from its own prior (N(0, I), a VampPrior, a hierarchy, a code prior).
        with self.lock:
            return latent.model_prior_samples(self.model, n, temperature=temperature, seed=seed).astype(np.float64)

    def _fit_mixture(self):
        with self._mixture_lock:
            if self._mixture is None:
                rng = np.random.default_rng(0)
                codes = self.train_codes[rng.permutation(len(self.train_codes))[:GMM_FIT_POINTS]]
                self._mixture = latent.fit_aggregate_posterior(codes)
            return self._mixture

    def attribute(self, plus: str, minus: str) -> dict:
        if self.train_y is None:
            raise BadInput("this run's data have no labels, so there are no classes to build an attribute vector from", 409)
        plus_index = latent.resolve_class(plus, self.class_names, self.train_y)
        minus_index = latent.resolve_class(minus, self.class_names, self.train_y)
        if plus_index == minus_index:
            raise ConfigError(f"the attribute vector needs two different classes, not {self._class_name(plus_index)!r} twice")
        vector = latent.class_vector(self.train_codes, self.train_y, plus_index, minus_index)
        return {"plus": self._class_name(plus_index), "minus": self._class_name(minus_index),
                "vector": vector.tolist(), "n_plus": int(np.sum(self.train_y == plus_index)),
                "n_minus": int(np.sum(self.train_y == minus_index)), "norm": float(np.linalg.norm(vector))}

    # -- helpers ----------------------------------------------------------------------------------
    def _class_name(self, label: int | None) -> str | None:
        if label is None:
            return None
        return self.class_names[label] if self.class_names and label < len(self.class_names) else str(label)

    def _device(self):
        return next(self.model.parameters()).device


EVAL_KEYS = ("nll", "nelbo", "recon", "kl", "bits_per_dim", "mse", "pca_mse", "active_units", "iw_samples",
             "proper_likelihood")   # the last two label the others: the NLL's K, nats or a loss


def _run_record(path: Path) -> tuple[dict, dict | None]:
    """How long the run trained and its best validation loss, and its ``eval.json`` numbers if evaluated.

    These only describe the run: a damaged metrics.jsonl (a line cut short by a crash) or eval.json
    (not an object) leaves them out, with a warning, rather than stopping the run from being explored.
    """
    run = open_run(path)
    try:
        history = [row for row in run.history() if isinstance(row, dict)]
    except (VaekitError, ValueError, OSError) as exc:
        log.warning("%s: metrics.jsonl cannot be read (%s); the explorer shows no training record", path, exc)
        history = []
    losses = [row["val_loss"] for row in history
              if isinstance(row.get("val_loss"), (int, float)) and math.isfinite(row["val_loss"])]
    training = {"epochs": len(history), "best_val_loss": min(losses) if losses else None}
    try:
        found = run.evaluation()
    except (VaekitError, ValueError, OSError) as exc:
        log.warning("%s: eval.json cannot be read (%s); the explorer shows no evaluation", path, exc)
        found = None
    if not isinstance(found, dict):
        if found:
            log.warning("%s: eval.json holds a %s, not an object; the explorer shows no evaluation", path,
                        type(found).__name__)
        return training, None
    evaluation = {key: found[key] for key in EVAL_KEYS
                  if isinstance(found.get(key), (int, float)) and math.isfinite(found[key])}
    evaluation["split"] = str(found.get("split", "test"))
    return training, evaluation
