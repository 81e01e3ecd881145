"""A user's table, read and checked: roles of the columns, encoding, an audit of what was kept.

:func:`load_table` reads a CSV or Parquet file (or a packaged dataset, ``"dataset:<name>"``);
:func:`prepare_data` checks the columns' roles, encodes the features, drops what cannot be
used — every dropped row and column counted with its reason — and fixes the folds of both
cross-validations. Every problem is a :class:`ReportDataError` with a one-line message that
names the column or the argument, raised before anything is fitted.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["DATASET_PREFIX", "ReportData", "ReportDataError", "load_table", "prepare_data"]

#: ``data_path`` of the form ``"dataset:<name>"`` names one of :mod:`perslib.data`'s real datasets.
DATASET_PREFIX = "dataset:"
CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
TASKS = ("auto", "classification", "regression")


class ReportDataError(ValueError):
    """Input that the report cannot use; the message is one line naming the column or argument."""


def _fail(message: str):
    raise ReportDataError(" ".join(str(message).split()))


def _listing(values, limit: int = 12) -> str:
    values = [str(v) for v in values]
    shown = ", ".join(values[:limit])
    return shown + (f", ... ({len(values) - limit} more)" if len(values) > limit else "")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for s in CSV_SUFFIXES + PARQUET_SUFFIXES:
        if name.endswith(s):
            return s
    return path.suffix.lower()


def _delimiter(path: Path) -> str:
    """The separator of a CSV file: comma, semicolon, tab or bar, sniffed from its start."""
    import csv
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
        head = fh.read(64 * 1024)
    try:
        return csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
    except csv.Error:  # one column, or nothing to tell: the default
        return ","


def load_table(path: str | Path) -> pd.DataFrame:
    """Read the data of a report.

    Parameters
    ----------
    path : str or Path
        A CSV file (``.csv``, ``.tsv``, ``.txt``, optionally ``.gz``; the separator is
        detected), a Parquet file (``.parquet``, ``.pq``), or ``"dataset:<name>"`` for one
        of the real datasets :func:`perslib.data.load_dataset` knows.

    Returns
    -------
    pandas.DataFrame of shape (n_rows, n_columns)

    Raises
    ------
    ReportDataError
        A file that does not exist, is a folder, has an unknown format, cannot be read or
        holds no rows; an unknown dataset name.
    """
    text = str(path)
    if text.startswith(DATASET_PREFIX):
        from perslib.data import DATASET_LOADERS

        name = text[len(DATASET_PREFIX) :]
        if name not in DATASET_LOADERS:
            _fail(
                f"data_path {text!r}: no dataset named {name!r}; the datasets are: {_listing(sorted(DATASET_LOADERS))}"
            )
        return DATASET_LOADERS[name]().frame.copy()
    p = Path(path)
    if not p.exists():
        _fail(f"data file {p} does not exist")
    if p.is_dir():
        _fail(f"data file {p} is a folder, not a file")
    suffix = _suffix(p)
    if suffix not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        _fail(f"data file {p}: unknown format {suffix or '(no extension)'!r}; expected .csv, .tsv or .parquet")
    try:
        if suffix in PARQUET_SUFFIXES:
            frame = pd.read_parquet(p)
        else:
            sep = "\t" if suffix.startswith(".tsv") else _delimiter(p)
            frame = pd.read_csv(p, sep=sep)
    except ImportError as exc:
        _fail(f"data file {p}: reading Parquet needs pyarrow ({exc})")
    except Exception as exc:  # pandas, csv and pyarrow raise many kinds; all mean "unreadable"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        kind = "Parquet" if suffix in PARQUET_SUFFIXES else "CSV"
        _fail(f"data file {p} could not be read as {kind}: {first}")
    if frame.shape[1] < 2:
        _fail(f"data file {p} has {frame.shape[1]} column(s); a report needs at least a target and a groups column")
    if len(frame) == 0:
        _fail(f"data file {p} has a header but no rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame


@dataclass
class ReportData:
    """A table checked and encoded for the report.

    Attributes
    ----------
    X : pandas.DataFrame of shape (n, p_encoded)
        Features as floats: numeric columns as they are (the models standardize inside),
        booleans as 0/1, text and categorical columns one-hot encoded (``column=level``, the
        first level in sorted order is the reference and gets no column).
    y : numpy.ndarray of shape (n,)
        Target: floats (regression) or the original class labels (classification).
    groups : numpy.ndarray of shape (n,), dtype object
        Cluster labels.
    U : pandas.DataFrame of shape (n, n_covariates) or None
        Covariates for personalized regression, as given (categorical ones stay text;
        missing values are kept: personalized regression ignores them in a pair's distance).
    task : {"classification", "regression"}
    classes : list
        The two classes (classification; ``classes[1]`` is the positive one), else empty.
    target, group : str
        Names of the target and groups columns.
    features : list of str
        The feature columns used, before encoding.
    encoding : dict of str to list of str
        Each feature's encoded columns in ``X``.
    covariates : list of str
    n_rows_read : int
        Rows in the table as read.
    dropped_rows : pandas.DataFrame
        One row per reason: ``reason``, ``rows``; rows are counted once, under their first reason.
    dropped_columns : pandas.DataFrame
        ``column``, ``reason`` for each feature or covariate column left out.
    missing : pandas.Series
        Missing values per used column in the table as read.
    n_folds : int
    seen_splits, unseen_splits : list of (ndarray, ndarray)
        Train and test row positions of the seen-cluster folds (stratified on the cluster,
        or on cluster x class) and of the leave-clusters-out folds (``GroupKFold``).
    seen_unseen_rows : int
        Test rows of the seen-cluster folds whose cluster has no training row in that fold
        (0 for regression; possible for tiny clusters in classification).
    frame : pandas.DataFrame
        The rows used, with their original columns (index: row numbers of the table as read).
    source : str
    """

    X: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray
    U: pd.DataFrame | None
    task: str
    classes: list
    target: str
    group: str
    features: list
    encoding: dict
    covariates: list
    n_rows_read: int
    dropped_rows: pd.DataFrame
    dropped_columns: pd.DataFrame
    missing: pd.Series
    n_folds: int
    seen_splits: list
    unseen_splits: list
    seen_unseen_rows: int
    frame: pd.DataFrame
    source: str = ""
    notes: list = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        """Rows used."""
        return len(self.y)

    @property
    def n_clusters(self) -> int:
        """Clusters used."""
        return int(pd.Series(self.groups, dtype=object).nunique())

    @property
    def cluster_sizes(self) -> pd.Series:
        """Rows per cluster, largest first (index: cluster label)."""
        return pd.Series(self.groups, dtype=object).value_counts().rename("rows").rename_axis(self.group)

    @property
    def y_numeric(self) -> np.ndarray:
        """The target as floats: the values, or 1 for the positive class ``classes[1]``."""
        if self.task == "regression":
            return np.asarray(self.y, dtype=np.float64)
        return (np.asarray(self.y) == self.classes[1]).astype(np.float64)

    def cluster_table(self) -> pd.DataFrame:
        """Per cluster: rows, and the target's mean and s.d. (or the positive class's share).

        Returns
        -------
        pandas.DataFrame indexed by cluster (sorted), columns ``rows``, ``mean``, ``sd``
        (regression) or ``rows``, ``share <positive class>`` (classification).
        """
        s = pd.Series(self.y_numeric, name="y").groupby(pd.Series(self.groups, dtype=object, name=self.group))
        if self.task == "regression":
            return pd.DataFrame({"rows": s.size(), "mean": s.mean(), "sd": s.std(ddof=1)})
        return pd.DataFrame({"rows": s.size(), f"share {self.classes[1]}": s.mean()})

    def audit(self) -> list[str]:
        """The audit as lines of text: rows, clusters, sizes, target, missing values, what was dropped."""
        sizes = self.cluster_sizes
        lines = [
            f"source: {self.source}",
            f"rows read: {self.n_rows_read}; rows used: {self.n_rows}; rows dropped: {self.n_rows_read - self.n_rows}",
            f"clusters ({self.group}): {self.n_clusters}; rows per cluster: min {sizes.min()}, "
            f"median {int(sizes.median())}, max {sizes.max()}",
            f"task: {self.task}; target: {self.target}",
        ]
        if self.task == "classification":
            counts = pd.Series(self.y).value_counts().reindex(self.classes)
            lines.append("classes: " + ", ".join(f"{c} {n} rows" for c, n in counts.items()))
        else:
            y = self.y_numeric
            lines.append(f"target: mean {y.mean():.4g}, sd {y.std(ddof=1):.4g}, range {y.min():.4g} to {y.max():.4g}")
        enc = [f"{f} -> {len(c)} column(s)" for f, c in self.encoding.items() if c != [f]]
        lines.append(
            f"features: {len(self.features)} columns, {self.X.shape[1]} after encoding"
            + (f" (one-hot: {', '.join(enc)})" if enc else "")
        )
        lines.append(f"covariates: {', '.join(self.covariates) if self.covariates else 'none'}")
        miss = self.missing[self.missing > 0]
        lines.append("missing values: " + (", ".join(f"{c} {n}" for c, n in miss.items()) if len(miss) else "none"))
        if len(self.dropped_rows):
            lines += [f"dropped {r.rows} row(s): {r.reason}" for r in self.dropped_rows.itertuples()]
        else:
            lines.append("dropped rows: none")
        lines += [f"left out column {r.column}: {r.reason}" for r in self.dropped_columns.itertuples()]
        lines += self.notes
        return lines


def _as_list(value, name: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        _fail(f"{name} must be a list of column names, got {value!r}")
    return list(value)


def _scalar(value):
    """A NumPy scalar as the plain Python value (for messages: 1.0, not np.float64(1.0))."""
    return value.item() if isinstance(value, np.generic) else value


def _column(frame: pd.DataFrame, name, role: str) -> str:
    if not isinstance(name, str) or not name:
        _fail(f"{role} must be a column name, got {name!r}")
    if name not in frame.columns:
        _fail(f"{role} column {name!r} does not exist; the columns are: {_listing(frame.columns, 40)}")
    return name


def _rows(index) -> str:
    """Rows as the table's data-row numbers, counted from 1 (the row after a CSV header is 1)."""
    return "data rows " + _listing([str(i + 1 if isinstance(i, (int, np.integer)) else i) for i in index], 5)


def _is_text(series: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(series) or isinstance(series.dtype, pd.CategoricalDtype)


def _task(y: pd.Series, task: str, target: str) -> tuple[str, list]:
    if task not in TASKS:
        _fail(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    levels = pd.unique(y)
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    if task == "auto":
        task = "classification" if (len(levels) == 2 or not numeric) else "regression"
    if task == "regression":
        if not numeric:
            _fail(
                f"target column {target!r} is not numeric (e.g. {levels[0]!r}); use --task classification for classes"
            )
        return task, []
    if len(levels) != 2:
        _fail(
            f"target column {target!r} has {len(levels)} classes ({_listing(sorted(map(str, levels)), 6)}); "
            "the report's classifiers are binary: recode to two classes, or use --task regression for a number"
        )
    return task, sorted(levels.tolist(), key=lambda v: (str(type(v)), v))


def prepare_data(
    frame: pd.DataFrame,
    *,
    target: str,
    groups: str,
    features: list[str] | None = None,
    covariates: list[str] | None = None,
    task: str = "auto",
    n_folds: int = 3,
    max_rows: int | None = None,
    drop_small_clusters: bool = False,
    missing: str = "drop",
    max_levels: int = 50,
    random_state: int = 0,
    source: str = "",
) -> ReportData:
    """Check a table's columns against their roles, encode the features and fix the folds.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table (:func:`load_table`), one row per sample.
    target, groups : str
        The outcome column and the cluster-label column.
    features : list of str, optional
        Feature columns; default: every column except ``target``, ``groups`` and ``covariates``.
    covariates : list of str, optional
        Columns for personalized regression's covariates (may be empty).
    task : {"auto", "classification", "regression"}, default="auto"
        ``"auto"``: classification for a target with two values or text, else regression.
    n_folds : int, default=3
        Folds of both cross-validations; every cluster needs at least this many rows.
    max_rows : int, optional
        Use a random subsample of about this many rows, the same share of every cluster
        (for a quick run); the rows left out are listed as dropped.
    drop_small_clusters : bool, default=False
        Drop clusters with fewer than ``n_folds`` rows (listed) instead of stopping.
    missing : {"drop", "error"}, default="drop"
        A missing feature value drops its row (counted by column) or stops the report.
    max_levels : int, default=50
        Most distinct values of a text feature or covariate (more is taken for an identifier).
    random_state : int, default=0
        Seeds the subsample and the seen-cluster folds.
    source : str, optional
        Where the table came from, for the audit.

    Returns
    -------
    ReportData

    Raises
    ------
    ReportDataError
        A column that does not exist (the columns are listed), a target with missing or
        infinite values or a single value, a target with more than two classes for
        classification or text for regression, groups with missing values or a single
        cluster, clusters with fewer rows than ``n_folds``, too few clusters for the
        leave-clusters-out folds, a text column with more than ``max_levels`` values, no
        usable feature, no rows left.
    """
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        _fail("the data must be a non-empty table (pandas DataFrame)")
    if not isinstance(n_folds, (int, np.integer)) or isinstance(n_folds, bool) or n_folds < 2:
        _fail(f"n_folds must be an integer >= 2, got {n_folds!r}")
    if missing not in ("drop", "error"):
        _fail(f"missing must be 'drop' or 'error', got {missing!r}")
    if max_rows is not None and (not isinstance(max_rows, (int, np.integer)) or max_rows < 2):
        _fail(f"max_rows must be an integer >= 2 or None, got {max_rows!r}")
    target = _column(frame, target, "target")
    group = _column(frame, groups, "groups")
    if group == target:
        _fail(f"groups and target are the same column {target!r}")
    covs = _as_list(covariates, "covariates") or []
    for c in covs:
        _column(frame, c, "covariates")
        if c in (target, group):
            _fail(f"covariates column {c!r} is the {'target' if c == target else 'groups'} column")
    feats = _as_list(features, "features")
    if feats is None:
        feats = [c for c in frame.columns if c not in {target, group, *covs}]
    for c in feats:
        _column(frame, c, "features")
        if c in (target, group):
            _fail(f"features column {c!r} is the {'target' if c == target else 'groups'} column")
    if len(set(feats)) != len(feats):
        _fail(f"features lists a column twice: {_listing([c for c in feats if feats.count(c) > 1])}")
    n_read = len(frame)

    y = frame[target]
    if y.isna().any():
        _fail(
            f"target column {target!r} has {int(y.isna().sum())} missing value(s) ({_rows(frame.index[y.isna()])}); "
            "remove or impute them first"
        )
    if (
        pd.api.types.is_numeric_dtype(y)
        and not pd.api.types.is_bool_dtype(y)
        and not np.isfinite(y.to_numpy(float)).all()
    ):
        _fail(f"target column {target!r} has infinite values ({_rows(frame.index[~np.isfinite(y.to_numpy(float))])})")
    if y.nunique() < 2:
        _fail(f"target column {target!r} has a single value ({_scalar(y.iloc[0])!r}); there is nothing to model")
    task, classes = _task(y, task, target)
    g = frame[group]
    if g.isna().any():
        _fail(
            f"groups column {group!r} has {int(g.isna().sum())} missing value(s) ({_rows(frame.index[g.isna()])}); "
            "every row needs a cluster"
        )
    if g.nunique() < 2:
        _fail(
            f"groups column {group!r} has a single cluster ({_scalar(g.iloc[0])!r}); the report compares clusters, "
            "it needs at least 2"
        )

    used_columns = [target, group, *feats, *[c for c in covs if c not in feats]]
    missing_counts = frame[used_columns].isna().sum().astype(int)
    dropped_columns = []
    reasons = pd.Series("", index=frame.index, dtype=object)

    def drop(mask, reason):
        new = mask & (reasons == "")
        reasons[new] = reason

    # ---- features: encode, and find the rows they cannot use
    blocks, encoding = [], {}
    for c in feats:
        col = frame[c]
        if col.isna().all():
            dropped_columns.append((c, "feature with no values"))
            continue
        if _is_text(col) or pd.api.types.is_bool_dtype(col):
            if pd.api.types.is_datetime64_any_dtype(col):
                _fail(
                    f"features column {c!r} holds dates; convert them to numbers first, or leave it out with --features"
                )
            levels = col.dropna().astype(str).unique()
            if len(levels) > max_levels:
                _fail(
                    f"features column {c!r} is text with {len(levels)} distinct values (more than {max_levels}): "
                    "an identifier? leave it out with --features"
                )
            if len(levels) < 2:
                dropped_columns.append((c, f"constant ({_scalar(levels[0])!r})"))
                continue
            text = col.astype(str).where(col.notna())
            dummies = pd.get_dummies(text, prefix=c, prefix_sep="=", drop_first=True, dtype=np.float64)
            dummies = dummies.reindex(sorted(dummies.columns), axis=1)
            encoding[c] = list(dummies.columns)
            blocks.append(dummies)
        else:
            values = col.astype(np.float64)
            if np.isinf(values).any():
                _fail(f"features column {c!r} has infinite values ({_rows(frame.index[np.isinf(values)])})")
            if values.nunique() < 2:
                dropped_columns.append((c, f"constant ({values.dropna().iloc[0]:g})"))
                continue
            encoding[c] = [c]
            blocks.append(values.rename(c).to_frame())
        if col.isna().any():
            if missing == "error":
                _fail(
                    f"features column {c!r} has {int(col.isna().sum())} missing value(s) ({_rows(frame.index[col.isna()])}); "
                    "impute them, leave the column out, or use --missing drop"
                )
            drop(col.isna(), f"missing value in feature {c!r}")
    if not blocks:
        _fail(
            "no usable feature column: "
            + (_listing([f"{c} ({r})" for c, r in dropped_columns]) if dropped_columns else "none given")
        )
    X_all = pd.concat(blocks, axis=1)
    if len(set(X_all.columns)) != X_all.shape[1]:
        _fail(
            f"encoded feature names collide: {_listing(X_all.columns[X_all.columns.duplicated()])}; rename the columns"
        )

    # ---- covariates: checked, kept as they are (personalized regression encodes them)
    for c in covs:
        col = frame[c]
        if col.isna().all():
            _fail(f"covariates column {c!r} has no values")
        if _is_text(col) and col.dropna().astype(str).nunique() > max_levels:
            _fail(f"covariates column {c!r} is text with more than {max_levels} distinct values: an identifier?")
        if not _is_text(col) and np.isinf(col.astype(float)).any():
            _fail(f"covariates column {c!r} has infinite values")

    # ---- subsample for a quick run
    keep = reasons == ""
    if max_rows is not None and keep.sum() > max_rows:
        rng = np.random.default_rng(random_state)
        share = max_rows / keep.sum()
        chosen = []
        for _, idx in frame.index[keep].to_series().groupby(g[keep].astype(str).to_numpy(), sort=True):
            k = max(1, int(round(share * len(idx))))
            chosen.append(rng.choice(idx.to_numpy(), size=min(k, len(idx)), replace=False))
        sampled = pd.Series(False, index=frame.index)
        sampled[np.concatenate(chosen)] = True
        drop(keep & ~sampled, f"left out of the subsample (max_rows={max_rows})")
        keep = reasons == ""
    if not keep.any():
        _fail("no rows left: every row misses a feature value; see --features or impute the missing values")

    # ---- cluster sizes
    sizes = g[keep].value_counts()
    small = sizes[sizes < n_folds]
    if len(small):
        if not drop_small_clusters:
            detail = _listing(
                [f"{_scalar(k)!r} ({n} row{'s' if n > 1 else ''})" for k, n in small.sort_values().items()], 6
            )
            _fail(
                f"groups column {group!r}: {len(small)} cluster(s) have fewer rows than the {n_folds} folds "
                f"(every cluster must be in every seen-cluster fold): {detail}; lower --folds or pass --drop-small-clusters"
            )
        drop(
            keep & g.isin(small.index),
            f"cluster with fewer than {n_folds} rows ({len(small)} cluster{'s' if len(small) > 1 else ''})",
        )
        keep = reasons == ""
    if g[keep].nunique() < 2:
        _fail(f"groups column {group!r} has fewer than 2 clusters left after dropping rows")

    # ---- the rows used, and the folds
    X = X_all.loc[keep].reset_index(drop=True)
    for c in list(X.columns):  # a level (or value) that only occurred in dropped rows
        if X[c].nunique() < 2:
            dropped_columns.append((c, "constant in the rows used"))
            X = X.drop(columns=c)
    encoding = {f: [c for c in cols if c in X.columns] for f, cols in encoding.items()}
    encoding = {f: cols for f, cols in encoding.items() if cols}
    if X.shape[1] == 0:
        _fail("no usable feature column in the rows used")
    y_used = frame.loc[keep, target].to_numpy()
    if pd.unique(y_used).size < 2:
        _fail(f"target column {target!r} has a single value in the rows used")
    y_used = y_used.astype(np.float64) if task == "regression" else y_used
    g_used = g[keep].to_numpy().astype(object)
    U = frame.loc[keep, covs].reset_index(drop=True) if covs else None
    seen, unseen, seen_unseen = _folds(y_used, g_used, task, int(n_folds), random_state, group)

    counts = reasons[reasons != ""].value_counts(sort=False)
    dropped_rows = pd.DataFrame({"reason": counts.index, "rows": counts.to_numpy(dtype=int)})
    notes = []
    if seen_unseen:
        notes.append(
            f"note: {seen_unseen} test row(s) of the seen-cluster folds belong to clusters with no training row in "
            "that fold (tiny clusters); they are scored as new clusters"
        )
    return ReportData(
        X=X,
        y=y_used,
        groups=g_used,
        U=U,
        task=task,
        classes=classes,
        target=target,
        group=group,
        features=[f for f in feats if f in encoding],
        encoding=encoding,
        covariates=covs,
        n_rows_read=n_read,
        dropped_rows=dropped_rows,
        dropped_columns=pd.DataFrame(dropped_columns, columns=["column", "reason"]),
        missing=missing_counts,
        n_folds=int(n_folds),
        seen_splits=seen,
        unseen_splits=unseen,
        seen_unseen_rows=seen_unseen,
        frame=frame.loc[keep],
        source=source,
        notes=notes,
    )


def _folds(y, g, task: str, n_folds: int, seed: int, group: str):
    """Seen-cluster folds (stratified on cluster, or cluster x class) and leave-clusters-out folds."""
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    from perslib.evaluation import label_cluster_strata

    strata = label_cluster_strata(y, g) if task == "classification" else np.asarray([str(v) for v in g], dtype=object)
    with warnings.catch_warnings():  # strata smaller than n_folds: sklearn warns, and spreads them anyway
        warnings.simplefilter("ignore", UserWarning)
        seen = list(StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), strata))
    codes = pd.factorize(pd.Series(g, dtype=object))[0]
    seen_unseen = sum(int((~np.isin(codes[te], codes[tr])).sum()) for tr, te in seen)
    n_clusters = codes.max() + 1
    if n_clusters < n_folds:
        _fail(
            f"groups column {group!r} has {n_clusters} clusters: too few for leave-clusters-out cross-validation "
            f"with {n_folds} folds; lower --folds"
        )
    unseen = list(GroupKFold(n_folds).split(np.zeros(len(y)), y, codes))
    for tr, _ in unseen:
        if np.unique(codes[tr]).size < 2:
            _fail(
                f"groups column {group!r} has {n_clusters} clusters: a leave-clusters-out training fold would hold a "
                f"single cluster with {n_folds} folds; lower --folds or add clusters"
            )
    return seen, unseen, seen_unseen
