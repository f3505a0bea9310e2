"""The judge of decoded samples: a small classifier trained once per dataset, and what its features measure.

Whether a decoded prior sample is "meaningful" cannot be read off the autoencoder itself, so vaekit
asks an independent network trained on the real labelled training split. Its penultimate layer is
the feature space in which samples are compared with real images: the Fréchet distance between the
two feature clouds (``frechet_distance``), the share of samples that fall on the real images'
k-nearest-neighbour manifold (``manifold_precision``) and its counterpart, the share of real images on
the samples' manifold (``manifold_recall``), and the density and coverage of the samples over the real
images' neighbourhoods (``density_and_coverage``). ``vaekit.evaluation.regularity`` turns these into
completeness, coverage and fd.

The network is deliberately small (an MLP on the flattened image: any shape, seconds on a laptop
CPU) and cached in ``$VAEKIT_CACHE_DIR/classifiers`` or ``$XDG_CACHE_HOME/vaekit/classifiers``
(default ``~/.cache/vaekit/classifiers``), one safetensors file per dataset fingerprint, with its
architecture, test accuracy and fingerprint as JSON metadata. Loading never unpickles; a file that
cannot be read is logged and replaced by a freshly trained classifier.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vaekit.cache import cache_root
from vaekit.files import replacing
from vaekit.errors import DataError

log = logging.getLogger(__name__)

RECIPE = "vaekit-classifier/1"   # bump when the architecture or training recipe changes: old files are ignored
HIDDEN = (256, 128)              # the last width is the feature dimension of the Fréchet distance
MIN_EPOCHS = 3                   # Fashion-MNIST: 86.4% test accuracy after 3 epochs (~6 s on 2 cores)
MIN_STEPS = 600                  # small datasets get more passes (digits: 50 epochs, ~98% accuracy)
BATCH_SIZE = 128
LR = 1e-3
K_NEIGHBOURS = 3                 # k of the k-NN estimate of the real-data manifold (precision and recall)
COVERAGE_NEIGHBOURS = 5          # k of density and coverage, as Naeem et al. 2020 recommend


class Classifier(nn.Module):
    """An MLP ``x -> features (HIDDEN[-1] ReLU units) -> logits``; ``meta`` holds what it was trained on."""

    def __init__(self, sample_shape: tuple[int, ...], num_classes: int, hidden: tuple[int, ...] = HIDDEN):
        super().__init__()
        widths = [math.prod(sample_shape), *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], num_classes)
        self.sample_shape = tuple(sample_shape)
        self.num_classes = num_classes
        self.meta: dict[str, Any] = {}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer activations, shape (B, HIDDEN[-1])."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    @torch.inference_mode()
    def outputs(self, x: torch.Tensor | np.ndarray, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(features float64 (N, F), confidence = max softmax probability (N,), predicted class (N,))."""
        self.eval()
        x = torch.as_tensor(x, dtype=torch.float32)
        features, confidence, predicted = [], [], []
        for start in range(0, len(x), batch_size):
            h = self.body(x[start:start + batch_size])
            p = torch.softmax(self.head(h), dim=1)
            features.append(h.double().numpy())
            conf, cls = p.max(1)
            confidence.append(conf.double().numpy())
            predicted.append(cls.numpy())
        if not features:
            return np.zeros((0, self.head.in_features)), np.zeros(0), np.zeros(0, dtype=np.int64)
        return np.concatenate(features), np.concatenate(confidence), np.concatenate(predicted)


def cache_dir() -> Path:
    """Where classifiers are cached: ``$VAEKIT_CACHE_DIR/classifiers``, else the XDG user cache."""
    return cache_root() / "classifiers"


def dataset_fingerprint(dataset) -> str:
    """A hex digest of what the classifier learns from: recipe, name, shape, training images and labels.

    The whole training split is hashed (blake2b, ~0.2 s for Fashion-MNIST's 188 MB), so any change to
    the data, the split or the preprocessing gives a new fingerprint and a new classifier.
    """
    train = dataset.train
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps([RECIPE, dataset.name, list(train.x.shape), str(train.x.dtype)]).encode())
    digest.update(np.ascontiguousarray(train.x).data)
    digest.update(np.ascontiguousarray(train.y, dtype=np.int64).data)
    return digest.hexdigest()


def _num_classes(dataset) -> int:
    labels = [s.y for s in (dataset.train, dataset.val, dataset.test) if s.y is not None and len(s.y)]
    top = max(int(y.max()) for y in labels) + 1
    return max(top, len(dataset.class_names or ()))


def _accuracy(classifier: Classifier, split) -> float | None:
    if split.y is None or not len(split):
        return None
    _, _, predicted = classifier.outputs(split.x)
    return float((predicted == split.y).mean())


def train_classifier(dataset, *, seed: int = 0) -> Classifier:
    """Train the classifier on ``dataset.train`` with Adam; its test accuracy goes into ``meta``.

    Deterministic for a given seed; the global random state is left as it was.
    """
    if dataset.train.y is None:
        raise DataError(f"dataset {dataset.name!r} has no labels, so no classifier can be trained on it")
    started = time.perf_counter()
    x = torch.as_tensor(np.asarray(dataset.train.x), dtype=torch.float32)  # a streamed split: loaded within --max-memory, else a DataError
    y = torch.as_tensor(dataset.train.y, dtype=torch.int64)
    steps_per_epoch = math.ceil(len(x) / BATCH_SIZE)
    epochs = max(MIN_EPOCHS, math.ceil(MIN_STEPS / steps_per_epoch))
    # Callers such as evaluate_model run under inference_mode: training needs autograd back.
    with torch.inference_mode(False), torch.enable_grad():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            classifier = Classifier(tuple(dataset.sample_shape), _num_classes(dataset))
        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.Adam(classifier.parameters(), lr=LR)
        classifier.train()
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), BATCH_SIZE):
                index = order[start:start + BATCH_SIZE]
                loss = nn.functional.cross_entropy(classifier(x[index]), y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    classifier.eval()
    test_accuracy = _accuracy(classifier, dataset.test)
    classifier.meta = {
        "recipe": RECIPE,
        "architecture": {"kind": "mlp", "input_shape": list(dataset.sample_shape), "hidden": list(HIDDEN),
                         "num_classes": classifier.num_classes, "activation": "relu"},
        "training": {"epochs": epochs, "batch_size": BATCH_SIZE, "lr": LR, "optimizer": "adam", "seed": seed,
                     "images": len(x), "seconds": round(time.perf_counter() - started, 2)},
        "dataset": dataset.name,
        "fingerprint": dataset_fingerprint(dataset),
        "test_accuracy": test_accuracy,
        "val_accuracy": _accuracy(classifier, dataset.val),
    }
    log.info("trained the %s classifier in %.1f s: test accuracy %s", dataset.name,
             classifier.meta["training"]["seconds"], test_accuracy)
    return classifier


def classifier_path(dataset) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset.name).strip("-.")[:40] or "data"
    return cache_dir() / f"{slug}-{dataset_fingerprint(dataset)[:20]}.safetensors"


def save_classifier(classifier: Classifier, path: Path) -> None:
    """Write weights and metadata atomically (temporary file, then rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in classifier.state_dict().items()}
    with replacing(path) as tmp:
        save_file(tensors, tmp, metadata={"vaekit": json.dumps(classifier.meta)})


def read_classifier(path: Path, fingerprint: str | None = None) -> Classifier:
    """Load a cached classifier; raises ``ValueError`` when the file is unreadable or does not match."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("vaekit", "{}"))
        arch = meta["architecture"]
        if meta.get("recipe") != RECIPE or arch["kind"] != "mlp":
            raise ValueError(f"recipe {meta.get('recipe')!r}")
        if fingerprint is not None and meta.get("fingerprint") != fingerprint:
            raise ValueError("fingerprint differs from the dataset's")
        classifier = Classifier(tuple(arch["input_shape"]), int(arch["num_classes"]), tuple(arch["hidden"]))
        classifier.load_state_dict(tensors)   # raises on missing/unexpected keys or wrong shapes
    except (SafetensorError, OSError, KeyError, TypeError, RuntimeError, json.JSONDecodeError) as exc:
        raise ValueError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    classifier.meta = meta
    classifier.eval()
    return classifier


def load_or_train_classifier(dataset, *, cache: bool = True, seed: int = 0) -> Classifier:
    """The dataset's classifier: from the cache when a valid file is there, else trained (and cached).

    A corrupt or mismatched cache file is logged and replaced; an unwritable cache folder is logged
    and the classifier is used without being saved.
    """
    if dataset.train.y is None:
        raise DataError(f"dataset {dataset.name!r} has no labels, so no classifier can be trained on it")
    path = classifier_path(dataset) if cache else None
    if path is not None and path.is_file():
        try:
            classifier = read_classifier(path, dataset_fingerprint(dataset))
            log.info("loaded the %s classifier from %s", dataset.name, path)
            classifier.meta["cached"] = True
            return classifier
        except ValueError as exc:
            log.warning("the cached classifier %s is unusable (%s): training a new one", path, exc)
    classifier = train_classifier(dataset, seed=seed)
    if path is not None:
        try:
            save_classifier(classifier, path)
        except OSError as exc:
            log.warning("could not cache the classifier in %s (%s): it will be retrained next time", path.parent, exc)
    classifier.meta["cached"] = False
    return classifier


# -- judging samples by their features ------------------------------------------------------------
def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative round-off clipped)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance_from_moments(mu1, cov1, mu2, cov2) -> float:
    """``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` in float64 (Dowson & Landau 1982).

    Tr((S1 S2)^(1/2)) is computed as the sum of square roots of the eigenvalues of the symmetric
    PSD matrix S1^(1/2) S2 S1^(1/2), which has the same spectrum as S1 S2: real by construction,
    so no imaginary round-off to discard (unlike ``scipy.linalg.sqrtm`` of the non-symmetric product).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    root1 = _psd_sqrt(cov1)
    cross = np.linalg.eigvalsh(root1 @ cov2 @ root1)
    trace_sqrt = float(np.sqrt(np.clip(cross, 0, None)).sum())
    value = float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt)
    return max(value, 0.0)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets, rows are samples."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return frechet_distance_from_moments(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def knn_radii(features: np.ndarray, k: int = K_NEIGHBOURS) -> np.ndarray:
    """Distance from each row to its k-th nearest other row (float64)."""
    f = torch.as_tensor(features, dtype=torch.float64)
    k = min(k, len(f) - 1)
    return np.concatenate([torch.cdist(f[i:i + 1000], f).kthvalue(k + 1, dim=1).values.numpy()
                           for i in range(0, len(f), 1000)])


def manifold_precision(real_features: np.ndarray, radii: np.ndarray, features: np.ndarray) -> float:
    """Share of ``features`` inside the estimated real manifold: the union of balls around each real
    feature with its k-NN radius (improved precision, Kynkäänniemi et al. 2019)."""
    real = torch.as_tensor(real_features, dtype=torch.float64)
    radius = torch.as_tensor(radii, dtype=torch.float64)
    f = torch.as_tensor(features, dtype=torch.float64)
    inside = [(torch.cdist(f[i:i + 1000], real) <= radius).any(1) for i in range(0, len(f), 1000)]
    return float(torch.cat(inside).double().mean())


def manifold_recall(real_features: np.ndarray, features: np.ndarray, k: int = K_NEIGHBOURS) -> float:
    """Share of ``real_features`` inside the samples' estimated manifold: the union of balls around each
    sample with its k-NN radius among the samples (improved recall, Kynkäänniemi et al. 2019). Samples
    that all coincide have radius 0 and cover no real image."""
    return manifold_precision(features, knn_radii(features, k), real_features)


def density_and_coverage(real_features: np.ndarray, radii: np.ndarray, features: np.ndarray,
                         k: int = COVERAGE_NEIGHBOURS) -> tuple[float, float]:
    """Density and coverage of ``features`` (Naeem et al. 2020, eq. 2 and 3), with B_i the ball around
    real feature X_i of its k-NN radius ``radii[i]`` among the real features (``k``: the k the radii
    were computed with), N real and M samples:

        density  = 1 / (k M) sum_j sum_i 1[Y_j in B_i]      (about 1 when samples follow the data)
        coverage = 1 / N sum_i 1[some Y_j in B_i]            (share of real neighbourhoods reached)

    Samples piled on one point reach only the few balls around it: coverage near 0, whatever their
    precision. As many samples drawn like the real data reach about 1 - 1/2^k of the balls (0.97 for
    k = 5)."""
    real = torch.as_tensor(real_features, dtype=torch.float64)
    radius = torch.as_tensor(radii, dtype=torch.float64)
    f = torch.as_tensor(features, dtype=torch.float64)
    hits = torch.zeros(len(real), dtype=torch.float64)            # samples inside each real ball
    for i in range(0, len(f), 1000):
        hits += (torch.cdist(f[i:i + 1000], real) <= radius).double().sum(0)
    density = float(hits.sum()) / (k * max(len(f), 1))
    return density, float((hits > 0).double().mean())


class FeatureReference:
    """Classifier features of real images: all of the split for fd, a sample of it as the manifold."""

    def __init__(self, classifier, images: np.ndarray, manifold_size: int, rng: np.random.Generator):
        self.classifier = classifier
        self.features, confidence, self.predicted = classifier.outputs(images)
        self.confidence = float(confidence.mean())
        pick = np.sort(rng.choice(len(images), min(manifold_size, len(images)), replace=False))
        self.manifold = self.features[pick]
        self.radii = knn_radii(self.manifold)
        self.coverage_radii = knn_radii(self.manifold, COVERAGE_NEIGHBOURS)

    def judge(self, images) -> dict[str, float]:
        """For a batch of images: completeness (precision), recall, density, coverage, confidence (mean
        max softmax) and fd."""
        features, confidence, _ = self.classifier.outputs(images)
        density, coverage = density_and_coverage(self.manifold, self.coverage_radii, features)
        return {"completeness": manifold_precision(self.manifold, self.radii, features),
                "coverage": coverage, "recall": manifold_recall(self.manifold, features), "density": density,
                "confidence": float(confidence.mean()), "fd": frechet_distance(self.features, features)}
