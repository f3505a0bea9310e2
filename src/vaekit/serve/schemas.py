"""Request and response bodies of the explorer's JSON API (these also make its OpenAPI page).

Structure is checked here, before any handler runs: numbers must be finite (JSON has no NaN, but
Python's parser accepts ``NaN`` and ``Infinity``, so they are refused explicitly) and within
:data:`MAX_ABS_CODE`, and no request may carry more than :data:`MAX_CODES` codes. Whether each
code has the served run's ``latent_dim`` numbers is checked by the handler, which knows the run.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_CODES = 256
MAX_ABS_CODE = 1e4          # far outside any trained code; keeps float32 arithmetic finite
MAX_LATENT_DIM = 4096
MAX_STEPS = 64
MAX_SAMPLES = 64

Number = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_ABS_CODE, le=MAX_ABS_CODE)]
Code = Annotated[list[Number], Field(min_length=1, max_length=MAX_LATENT_DIM)]
RunId = Annotated[str | None, Field(default=None, max_length=300,
                                    description="run id from GET /api/runs (default: the first run)")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DecodeRequest(Strict):
    run: RunId = None
    z: Annotated[list[Code], Field(min_length=1, max_length=MAX_CODES,
                                   description=f"1 to {MAX_CODES} codes, each latent_dim finite numbers")]


VALUES = "table runs: the decoded rows in the data's original units, in the order of info's feature_names; null for images"
Rows = list[list[float]] | None


class Images(BaseModel):
    images: list[str] = Field(description="PNG data URLs, one per code, in order (table runs: a bar glyph of each row)")
    values: Rows = Field(None, description=VALUES)


class InterpolateRequest(Strict):
    run: RunId = None
    start: Code
    end: Code
    steps: Annotated[int, Field(ge=2, le=MAX_STEPS)] = 11
    method: Literal["linear", "slerp"] = "linear"


class Path(BaseModel):
    z: list[list[float]]
    images: list[str]
    values: Rows = Field(None, description=VALUES)
    points: list[list[float]] = Field(description="the codes' positions on the map")


class SampleRequest(Strict):
    run: RunId = None
    n: Annotated[int, Field(ge=1, le=MAX_SAMPLES)] = 8
    sampler: Literal["prior", "gmm"] = Field(
        "prior", description="prior: the model's prior; gmm: a Gaussian mixture fitted to the encoded training images")
    temperature: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)] = 1.0
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0


class Samples(Path):
    warning: str | None = None


class AttributeRequest(Strict):
    run: RunId = None
    plus: Annotated[str, Field(min_length=1, max_length=200, description="class name or index (A)")]
    minus: Annotated[str, Field(min_length=1, max_length=200, description="class name or index (B)")]


class Attribute(BaseModel):
    plus: str
    minus: str
    vector: list[float] = Field(description="mean code of class A minus mean code of class B (training split)")
    n_plus: int
    n_minus: int
    norm: float


class Encoded(BaseModel):
    mean: list[float] = Field(description="posterior mean E[z|x] (the code, for a plain autoencoder)")
    logvar: list[float] | None = Field(description="posterior log-variance; null for a plain autoencoder")
    point: list[float] = Field(description="the mean's position on the map")
    reconstruction: str = Field(description="PNG data URL of decode(mean)")
    reconstruction_values: list[float] | None = Field(
        None, description="table runs: decode(mean) in the data's original units; null for images")


class Upload(Encoded):
    input: str = Field(description="PNG data URL of the upload as the model sees it (resized, grey levels)")


class TestImage(Encoded):
    index: int
    label: int | None
    class_name: str | None
    image: str
    image_values: list[float] | None = Field(None, description="table runs: the test row in its original units; null for images")


class Dimension(BaseModel):
    index: int
    low: float
    high: float
    kl: float | None = Field(description="mean KL of this dimension on the test images, nats (VAE only)")


class Info(BaseModel):
    run: str
    model: str
    variational: bool
    arch: str
    likelihood: str
    dataset: str
    latent_dim: int
    sample_shape: list[int]
    class_names: list[str] | None
    parameters: int
    test_images: int
    can_upload: bool
    has_prior: bool
    feature_names: list[str] | None = Field(None, description="table runs: the columns; null for images")
    feature_mean: list[float] | None = Field(None, description="table runs: each column's training mean (original units)")
    feature_scale: list[float] | None = Field(None, description="table runs: each column's training sd (original units)")
    training: dict[str, float | int | None] = Field(description="epochs trained and the best validation loss")
    evaluation: dict[str, float | int | str] | None = Field(description="numbers from eval.json (null before vaekit evaluate)")
    start: list[float] = Field(description="the mean of the mapped test codes: where the sliders start")
    dimensions: list[Dimension] = Field(description="slider ranges, most informative dimension (largest KL) first")


class MapData(BaseModel):
    run: str
    method: str = Field(description="identity (latent_dim <= 2) or pca")
    axis_labels: list[str]
    mean: list[float]
    axes: list[list[float]] = Field(description="map point = (z - mean) @ axes.T; axes has orthonormal rows")
    points: list[list[float]]
    indices: list[int] = Field(description="test-split index of each point")
    labels: list[int] | None


class RunSummary(BaseModel):
    id: str
    model: str | None
    dataset: str | None
    latent_dim: int | None
    arch: str | None
    opened: bool
    error: str | None


class Runs(BaseModel):
    runs: list[RunSummary]
    default: str
