"""Tables and other real-valued data: CSV and Parquet files, scikit-learn's bundled tables, and
real-valued arrays, all standardised on the training split (:mod:`vaekit.data.scaling`).

A table's samples are its rows: ``(D,)`` vectors of the feature columns, with names. Which columns:
``columns`` if given, else every numeric column except the label (other columns are left out with a
warning). ``label_column`` names the labels, which may be strings: they become the class names.
Bad tables are refused with one line that names the column and the row: a missing value (or
``missing="drop"`` drops the row), a non-numeric feature, an infinite value. A constant feature is
dropped with a warning, or refused when ``columns`` named it.

CSV and Parquet need pandas (and pyarrow for Parquet): ``pip install 'vaekit[tables]'``.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaekit.errors import DataError
from vaekit.data.dataset import Dataset, DatasetInfo, Split
from vaekit.data.labels import encode_labels
from vaekit.data.scaling import Scaling
from vaekit.data.splits import seeded_splits

logger = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
MISSING_CHOICES = ("error", "drop")


@dataclass(frozen=True)
class TableOptions:
    """How to read a table: the feature columns (None: every numeric one but the label), the label
    column (None: no labels), and what to do with missing values (``error`` or ``drop``)."""

    columns: tuple[str, ...] | None = None
    label_column: str | None = None
    missing: str = "error"

    def __post_init__(self) -> None:
        if self.missing not in MISSING_CHOICES:
            raise DataError(f"unknown --missing {self.missing!r}: use error or drop")


def real_valued_dataset(values: np.ndarray, labels: np.ndarray | None, class_names: list[str] | None, *,
                        name: str, source: str, seed: int, val_fraction: float, test_fraction: float,
                        val_size: int | None, feature_names: list[str] | None) -> Dataset:
    """Split real samples with the seeded splits, fit the scaling on train, standardise every split.

    ``feature_names`` (tables and ``(N, D)`` arrays) gives one mean and scale per feature; None
    (image-shaped arrays) one mean and scale for all values, so pictures keep their contrast.
    """
    values = np.asarray(values, dtype=np.float64)
    train, val, test = seeded_splits(values, labels, seed=seed, val_fraction=val_fraction,
                                     test_fraction=test_fraction, val_size=val_size)
    scaling = Scaling.fit(train.x, per_feature=feature_names is not None, names=feature_names)

    def standardised(split: Split) -> Split:
        return Split(x=scaling.transform(split.x), y=split.y)

    return Dataset(name=name, train=standardised(train), val=standardised(val), test=standardised(test),
                   sample_shape=tuple(values.shape[1:]), class_names=class_names, source=source,
                   quantized_8bit=False, scaling=scaling,
                   feature_names=None if feature_names is None else tuple(feature_names))


def drop_constant_features(values: np.ndarray, names: list[str], *, explicit: bool,
                           where: str) -> tuple[np.ndarray, list[str]]:
    """Leave out features with one value throughout (with a warning); refuse them if ``explicit``."""
    constant = [i for i in range(values.shape[1]) if values[:, i].max() == values[:, i].min()]
    if not constant:
        return values, names
    first = constant[0]
    if explicit:
        raise DataError(f"{where}: column {names[first]!r} is constant ({values[0, first]:g} in every row), so it "
                        "carries no information and cannot be standardised: leave it out of --columns")
    if len(constant) == values.shape[1]:
        raise DataError(f"{where}: every feature column is constant, so there is nothing to learn: check the data")
    dropped = ", ".join(repr(names[i]) for i in constant)
    logger.warning("%s: left out constant column%s %s", where, "s" if len(constant) > 1 else "", dropped)
    keep = [i for i in range(values.shape[1]) if i not in set(constant)]
    return values[:, keep], [names[i] for i in keep]


def load_table_file(path: Path, options: TableOptions, *, name: str, seed: int, val_fraction: float,
                    test_fraction: float, val_size: int | None = None) -> Dataset:
    """Read a CSV/TSV or Parquet file and make a standardised :class:`Dataset` of its rows."""
    frame = _read_frame(path)
    values, labels, names = table_features(frame, options, where=path.name,
                                           line_offset=2 if path.suffix.lower() in (".csv", ".tsv") else None)
    y, class_names = encode_labels(labels, len(values), f"{path.name} column {options.label_column!r}")
    return real_valued_dataset(values, y, class_names, name=name, source=str(path), seed=seed,
                               val_fraction=val_fraction, test_fraction=test_fraction, val_size=val_size,
                               feature_names=names)


def table_features(frame, options: TableOptions, *, where: str,
                   line_offset: int | None = None) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """``(values (N, D) float64, labels or None, feature names)`` of a pandas DataFrame, checked."""
    import pandas as pd

    if len(frame) == 0:
        raise DataError(f"{where} has no rows: pass a table with data")
    frame = frame.copy()
    frame.columns = [str(column) for column in frame.columns]
    available = list(frame.columns)
    label = options.label_column
    if label is not None and label not in available:
        raise DataError(f"{where} has no column {label!r} for --label-column (columns: {_listing(available)})")
    if options.columns is not None:
        missing_names = [column for column in options.columns if column not in available]
        if missing_names:
            raise DataError(f"{where} has no column {missing_names[0]!r} (columns: {_listing(available)}): "
                            "check --columns")
        if label is not None and label in options.columns:
            raise DataError(f"column {label!r} is both the label and a feature: leave it out of --columns")
        features = list(options.columns)
        for column in features:
            if not _numeric(frame[column]):
                example = _first_non_numeric(frame[column])
                raise DataError(f"{where}: column {column!r} is not numeric ({example}): leave it out of --columns, "
                                "or encode it as numbers")
    else:
        features = [column for column in available if column != label and _numeric(frame[column])]
        skipped = [column for column in available if column != label and column not in features]
        if skipped:
            logger.warning("%s: left out non-numeric column%s %s (pass --columns to choose the features)", where,
                           "s" if len(skipped) > 1 else "", _listing(skipped))
        if not features:
            raise DataError(f"{where} has no numeric column to use as a feature (columns: {_listing(available)}): "
                            "check the file, or pass --columns")
    used = features + ([label] if label is not None else [])
    frame = frame[used]
    absent = frame.isna().to_numpy()
    if absent.any():
        rows = np.flatnonzero(absent.any(1))
        if options.missing == "drop":
            logger.warning("%s: dropped %d row%s with missing values (--missing drop)", where, len(rows),
                           "s" if len(rows) > 1 else "")
            frame = frame.drop(index=frame.index[rows])
            if len(frame) == 0:
                raise DataError(f"{where}: every row has a missing value, so --missing drop leaves nothing")
        else:
            row, column = int(rows[0]), used[int(np.flatnonzero(absent[rows[0]])[0])]
            raise DataError(f"{where}: column {column!r} has a missing value in {_row(row, line_offset)} "
                            f"({len(rows)} row{'s' if len(rows) > 1 else ''} in all): fill it in, or pass --missing drop "
                            "to drop such rows")
    values = frame[features].apply(pd.to_numeric).to_numpy(dtype=np.float64)
    infinite = ~np.isfinite(values)
    if infinite.any():
        row, col = (int(i) for i in np.argwhere(infinite)[0])
        raise DataError(f"{where}: column {features[col]!r} has an infinite value in {_row(row, line_offset)}: "
                        "replace it with a finite number or drop the row")
    values, features = drop_constant_features(values, features, explicit=options.columns is not None, where=where)
    labels = None
    if label is not None:
        column = frame[label]
        if _numeric(column) and _whole(column):
            labels = column.to_numpy(dtype=np.int64)
        else:
            labels = np.asarray([str(v) for v in column], dtype=str)
    return values, labels, features


def _read_frame(path: Path):
    try:
        import pandas as pd
    except ImportError:
        raise DataError(f"reading {path.name} needs pandas: pip install 'vaekit[tables]'") from None
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise DataError(f"reading {path.name} needs pyarrow: pip install 'vaekit[tables]'") from None
            return pd.read_parquet(path)
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except DataError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read {path} as a {'Parquet' if suffix in ('.parquet', '.pq') else 'CSV'} table "
                        f"({first}): check the file") from None
    except Exception as exc:  # pyarrow raises its own ArrowInvalid & co. on damaged files
        if type(exc).__module__.startswith("pyarrow"):
            raise DataError(f"cannot read {path} as a Parquet table ({exc}): check the file") from None
        raise


def _numeric(column) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(column))  # bool columns count: 0 and 1


def _whole(column) -> bool:
    values = column.to_numpy(dtype=np.float64)
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


def _first_non_numeric(column) -> str:
    import pandas as pd

    converted = pd.to_numeric(column, errors="coerce")
    bad = column[converted.isna() & column.notna()]
    return f"value {bad.iloc[0]!r}" if len(bad) else f"type {column.dtype}"


def _row(index: int, line_offset: int | None) -> str:
    return f"row {index + 1}" + (f" (line {index + line_offset} of the file)" if line_offset else "")


def _listing(names: list[str], most: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


@dataclass(frozen=True)
class SklearnTable:
    """One of scikit-learn's bundled tables (no download): rows of named numeric features and a class.

    There is no official split: train/val/test are seeded random fractions, as for ``digits``.
    """

    name: str
    loader: str
    description: str
    where: str = "scikit-learn (bundled)"

    def info(self, data_dir: str | os.PathLike | None = None) -> DatasetInfo:
        return DatasetInfo(self.name, self.description, True, self.where)

    def load(self, *, data_dir: str | os.PathLike | None = None, seed: int = 0, val_fraction: float = 0.1,
             test_fraction: float = 0.1, download: bool = True, progress=None,
             val_size: int | None = None) -> Dataset:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, self.loader)()
        class_names = [str(n) for n in bunch.target_names]
        return real_valued_dataset(np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64),
                                   class_names, name=self.name, source=self.where, seed=seed,
                                   val_fraction=val_fraction, test_fraction=test_fraction, val_size=val_size,
                                   feature_names=[str(n) for n in bunch.feature_names])


BREAST_CANCER = SklearnTable(
    name="breast-cancer", loader="load_breast_cancer",
    description="Wisconsin diagnostic breast cancer (UCI), bundled with scikit-learn: 569 rows x 30 features, 2 classes")
WINE = SklearnTable(
    name="wine", loader="load_wine",
    description="UCI wine recognition, bundled with scikit-learn: 178 rows x 13 features, 3 cultivars")

TABLES = {table.name: table for table in (BREAST_CANCER, WINE)}
