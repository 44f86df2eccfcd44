"""Data on a Dask cluster: its partitions, and predictions and scores computed there.

Imported only when ``fit``, ``predict`` or ``score`` is given a dask array or a
Dask DataFrame (recognised by :func:`skl_tfreg._dask_input.is_dask`, which
imports nothing). :class:`Partitions` pairs the row partitions of ``X``, ``y``
and ``sample_weight`` and runs one task per partition on the worker that holds
it, adding the tasks' small results up in a tree of tasks on the workers: only
those results reach the client. ``predict`` returns a lazy dask array, computed
block by block; ``score`` sums R^2's terms per partition. Both are numpy only:
this module does not import TensorFlow, so neither starts it, here or on the
workers. Fits run on statistics (:mod:`skl_tfreg._dask_statistics`).
"""

from __future__ import annotations

from typing import NamedTuple

import dask
import numpy as np

from ._dask_input import is_dask

__all__ = ["Partitions", "predict", "score"]

_FAN_IN = 8  # results added per task of the reduction tree


def _is_frame(obj):
    """Whether ``obj`` is a Dask DataFrame (not a Series, not an array)."""
    return hasattr(obj, "columns") and hasattr(obj, "to_dask_array")


def _feature_names(frame):
    """Return a DataFrame's column names as scikit-learn keeps them: all str, or None."""
    columns = list(frame.columns)
    strings = [isinstance(c, str) for c in columns]
    if all(strings):
        return np.asarray(columns, dtype=object)
    if any(strings):
        raise TypeError(
            "Feature names are only supported if all input features have string names, but "
            f"X has feature names of types {sorted({type(c).__name__ for c in columns})}; "
            "convert them all to str."
        )
    return None


def _numeric(dtype):
    """Whether ``dtype`` (numpy's, or a pandas extension dtype) holds numbers numpy reads."""
    try:
        return np.dtype(dtype).kind in "biuf"
    except TypeError:  # a pandas extension dtype: strings, categories, ...
        return False


class _Layout(NamedTuple):
    """What every partition's rows must look like."""

    dtype: np.dtype  # float32 or float64: the dtype training runs in
    n_features: int
    n_targets: int
    targets: tuple | None  # columns of y kept (SGDL2RegressorCV's per-target fits), or all


def _as_float(values, dtype, what, index):
    """Return ``values`` as a float numpy array of ``dtype``, or raise naming the partition."""
    try:
        array = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values)
        return array.astype(dtype, copy=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"Partition {index} of {what} is not numeric: {err}") from None


def _partition(index, X, y, s, layout):
    """Validate one partition's rows on its worker: numpy ``(X, Y, s)`` of the layout.

    Raises ValueError naming the partition for NaN or infinity, mismatched
    lengths, a wrong number of columns, or negative weights.
    """
    X = _as_float(X, layout.dtype, "X", index)
    Y = _as_float(y, layout.dtype, "y", index)
    if X.ndim != 2 or X.shape[1] != layout.n_features:
        raise ValueError(
            f"Partition {index} of X has shape {X.shape}; every partition needs "
            f"{layout.n_features} columns."
        )
    n = X.shape[0]
    Y = Y[:, None] if Y.ndim == 1 else Y
    if Y.shape[0] != n:
        raise ValueError(
            f"Partition {index} has {n} rows of X but {Y.shape[0]} of y: X, y and "
            "sample_weight need the same partitions, row for row."
        )
    if Y.shape[1] != layout.n_targets:
        raise ValueError(
            f"Partition {index} of y has {Y.shape[1]} columns; every partition needs "
            f"{layout.n_targets}."
        )
    if layout.targets is not None:
        Y = Y[:, list(layout.targets)]
    s = np.ones(n, layout.dtype) if s is None else _as_float(s, layout.dtype, "sample_weight",
                                                             index).ravel()  # fmt: skip
    if s.shape != (n,):
        raise ValueError(
            f"Partition {index} has {n} rows of X but {s.shape[0]} sample weights: X, y and "
            "sample_weight need the same partitions, row for row."
        )
    for name, values in (("X", X), ("y", Y), ("sample_weight", s)):
        if not np.all(np.isfinite(values)):
            raise ValueError(f"Partition {index} of {name} holds NaN or infinity.")
    if np.any(s < 0):
        raise ValueError(f"Partition {index} of sample_weight holds negative weights.")
    return X, Y, s


def _tree(leaves, combine):
    """Reduce delayed ``leaves`` with ``combine(*parts)`` in a tree of ``_FAN_IN``-ary tasks."""
    while len(leaves) > 1:
        leaves = [dask.delayed(combine, pure=True)(*leaves[i : i + _FAN_IN])
                  for i in range(0, len(leaves), _FAN_IN)]  # fmt: skip
    return leaves[0]


class Partitions:
    """The aligned row partitions of dask ``X``, ``y`` and ``sample_weight``.

    Parameters
    ----------
    X : dask array of shape (n_samples, n_features), or Dask DataFrame
        Numeric; a dask array's column chunks are joined (lazily), so each
        partition holds whole rows.
    y : dask array, Dask Series or DataFrame, or ndarray
        Targets, partitioned like ``X`` (a numpy array, or a dask array of other
        row chunks, is cut to ``X``'s row chunks).
    sample_weight : like ``y``, or None

    Attributes
    ----------
    feature_names : ndarray of str or None
        A DataFrame's column names.
    single : bool
        Whether ``y`` is 1-D.
    layout : _Layout
    """

    def __init__(self, X, y, sample_weight=None):
        import dask.array as da

        frame = _is_frame(X)
        if frame:
            self.feature_names = _feature_names(X)
            dtypes = set(X.dtypes)
            n_features = len(X.columns)
            parts_X = X.to_delayed()
            lengths = None
        else:
            if X.ndim != 2:
                raise ValueError(f"X must be 2-D; got a dask array of shape {X.shape}.")
            self.feature_names = None
            dtypes = {X.dtype}
            n_features = X.shape[1]
            X = X.rechunk({1: -1})
            parts_X = list(X.to_delayed()[:, 0])
            lengths = X.chunks[0]
            if any(np.isnan(n) for n in lengths):  # unknown sizes: aligned by block
                lengths = None
        others = sorted({str(t) for t in dtypes if not _numeric(t)})
        if others:
            raise ValueError(f"X must be numeric; it has columns of dtype {', '.join(others)}.")
        if n_features == 0:
            raise ValueError("X has 0 features; at least 1 is required.")
        # As validate_data: float32 where the columns' common type is float32, else float64.
        common = np.result_type(*dtypes)
        dtype = np.dtype(np.float32) if common == np.float32 else np.dtype(np.float64)
        self.n_partitions = len(parts_X)
        y = y if is_dask(y) else np.asarray(y)
        if sample_weight is not None and not is_dask(sample_weight) and np.ndim(sample_weight) == 0:
            if not 0 < float(sample_weight) < np.inf:
                raise ValueError(f"sample_weight={sample_weight!r} must be positive and finite.")
            sample_weight = None  # one weight for every row: only the ratios matter
        self.single = getattr(y, "ndim", np.ndim(y)) == 1
        n_targets = 1 if self.single else (len(y.columns) if _is_frame(y) else int(y.shape[1]))
        parts = [parts_X]
        for name, values in (("y", y), ("sample_weight", sample_weight)):
            if values is None:
                parts.append([None] * self.n_partitions)
            else:
                parts.append(self._cut(name, values, lengths, da))
        self.parts = list(zip(*parts, strict=True))
        self._lengths = lengths
        self._X = X
        self.layout = _Layout(dtype, n_features, n_targets, None)

    def _cut(self, name, values, lengths, da):
        """Return the delayed partitions of ``values``, aligned with X's.

        ``lengths`` are X's partitions' rows, or None where they are unknown (a
        DataFrame, or a dask array of unknown chunk sizes): ``values`` must then
        come in as many partitions, and each task compares the rows.
        """
        if not is_dask(values):
            values = np.asarray(values)
            if lengths is None:
                raise ValueError(
                    f"X has partitions of unknown sizes and {name} is a numpy array: give "
                    f"{name} as a Dask collection partitioned like X."
                )
            if values.shape[0] != sum(lengths):
                raise ValueError(
                    f"{name} has {values.shape[0]} rows but X has {sum(lengths)}; they must "
                    "have the same rows."
                )
            values = da.from_array(values, chunks=(lengths,) + values.shape[1:])
        frame_like = hasattr(values, "to_dask_array")  # a Dask Series or DataFrame
        if frame_like and lengths is not None:  # beside a dask array of known chunks
            values = values.to_dask_array(lengths=True)
        if lengths is None:
            count = values.npartitions if frame_like else values.numblocks[0]
            if count != self.n_partitions:
                raise ValueError(
                    f"X has {self.n_partitions} partitions but {name} has {count}; they "
                    "need the same partitions, row for row."
                )
            if frame_like:
                return values.to_delayed()
            values = values.rechunk({1: -1}) if values.ndim == 2 else values
            return list(values.to_delayed().reshape(self.n_partitions, -1)[:, 0])
        if any(np.isnan(n) for n in values.chunks[0]):  # count its rows (a light pass)
            values = values.compute_chunk_sizes()
        if values.shape[0] != sum(lengths):
            raise ValueError(
                f"{name} has {values.shape[0]} rows but X has {sum(lengths)}; they must have "
                "the same rows."
            )
        values = values.rechunk((lengths,) + tuple((n,) for n in values.shape[1:]))
        blocks = values.to_delayed()
        return list(blocks.reshape(len(lengths), -1)[:, 0])

    def lengths(self):
        """Return the rows of each partition (computed where unknown: one light pass)."""
        if self._lengths is None:
            X = self._X
            counts = X.map_partitions(len) if _is_frame(X) else X.map_blocks(
                lambda block: np.array([len(block)]), drop_axis=1, chunks=((1,) * X.numblocks[0],)
            )  # fmt: skip
            self._lengths = tuple(int(n) for n in counts.compute())
        return self._lengths

    def select_targets(self, columns):
        """Return these partitions with only the targets ``columns`` of y."""
        other = object.__new__(Partitions)
        other.__dict__.update(self.__dict__)
        other.layout = self.layout._replace(targets=tuple(int(c) for c in columns))
        return other

    def reduce(self, task, combine, *args, extra=None):
        """Run ``task(index, X, y, s, layout, *args)`` on every partition, reduce on workers.

        ``extra[i]``, if given, is appended to partition ``i``'s arguments.
        Returns the reduced result, computed.
        """
        leaves = []
        for i, (X, y, s) in enumerate(self.parts):
            more = () if extra is None else (extra[i],)
            leaves.append(dask.delayed(task, pure=True)(i, X, y, s, self.layout, *args, *more))
        (result,) = dask.compute(_tree(leaves, combine))
        return result

    @property
    def n_targets(self):
        layout = self.layout
        return layout.n_targets if layout.targets is None else len(layout.targets)


def _predict_block(block, coef, intercept, names, dtype):
    """``block @ coef.T + intercept`` of one block of rows (as ``dtype``), checked, in numpy."""
    if names is not None and list(block.columns) != list(names):
        raise ValueError("A partition's columns differ from the feature names seen in fit.")
    X = np.asarray(block.to_numpy() if hasattr(block, "to_numpy") else block)
    X = X.astype(dtype, copy=False)
    if not np.all(np.isfinite(X)):
        raise ValueError("A partition of X holds NaN or infinity.")
    with np.errstate(under="ignore"):
        return np.asarray(X @ coef.T) + intercept


def predict(estimator, X):
    """Return the lazy predictions of a fitted ``estimator`` on dask ``X``, block by block."""
    import dask.array as da

    coef, intercept = estimator.coef_, estimator.intercept_
    names = getattr(estimator, "feature_names_in_", None)
    p = estimator.n_features_in_
    if _is_frame(X):
        columns = _feature_names(X)
        if names is not None and (columns is None or list(columns) != list(names)):
            got = list(X.columns)[:10]
            raise ValueError(
                f"The feature names should match those that were passed during fit: got "
                f"{got}, fitted with {list(names)[:10]}."
            )
        if len(X.columns) != p:
            raise ValueError(f"X has {len(X.columns)} features, but the model expects {p}.")
        others = sorted({str(t) for t in X.dtypes if not _numeric(t)})
        if others:
            raise ValueError(f"X must be numeric; it has columns of dtype {', '.join(others)}.")
        blocks = X.to_delayed()  # the partitions, each a pandas DataFrame
        common = np.result_type(*X.dtypes)
        in_dtype = np.dtype(np.float32) if common == np.float32 else np.dtype(np.float64)
        out_dtype = np.result_type(in_dtype, coef.dtype)
        shape = () if coef.ndim == 1 else (coef.shape[0],)
        pieces = [
            da.from_delayed(
                dask.delayed(_predict_block, pure=True)(b, coef, intercept, names, in_dtype),
                shape=(np.nan, *shape),
                dtype=out_dtype,
            )  # fmt: skip
            for b in blocks
        ]
        return da.concatenate(pieces, axis=0)
    if X.ndim != 2 or X.shape[1] != p:
        raise ValueError(f"X has shape {X.shape}, but the model expects {p} features.")
    X = X.rechunk({1: -1})
    in_dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    out_dtype = np.result_type(in_dtype, coef.dtype)
    if coef.ndim == 1:
        return X.map_blocks(_predict_block, coef, intercept, None, in_dtype, drop_axis=1,
                            dtype=out_dtype)  # fmt: skip
    return X.map_blocks(_predict_block, coef, intercept, None, in_dtype, dtype=out_dtype,
                        chunks=(X.chunks[0], (coef.shape[0],)))  # fmt: skip


class _Scores(NamedTuple):
    """A partition's (or a subtree's) weighted sums for R^2, per target."""

    S: float  # weight
    mean: np.ndarray  # weighted mean of y
    m2: np.ndarray  # weighted sum of squared deviations of y from ``mean``
    residual: np.ndarray  # weighted sum of squared residuals


def _score_task(index, X, y, s, layout, coef, intercept):
    """Sum one partition's weighted squared residuals and the moments of its y."""
    X, Y, s = _partition(index, X, y, s, layout)
    with np.errstate(under="ignore"):
        R = Y - (X @ np.atleast_2d(coef).T + intercept)
    S = float(s.sum())
    mean = s @ Y / S if S > 0 else np.zeros(Y.shape[1])
    return _Scores(S, mean, s @ (Y - mean) ** 2, s @ R**2)


def _add_scores(*parts):
    """Merge the sums of several partitions (Chan et al.'s pairwise update of the moments)."""
    total = parts[0]
    for part in parts[1:]:
        S = total.S + part.S
        if not part.S > 0:
            continue
        delta = part.mean - total.mean
        mean = total.mean + delta * (part.S / S)
        m2 = total.m2 + part.m2 + delta**2 * (total.S * part.S / S)
        total = _Scores(S, mean, m2, total.residual + part.residual)
    return total


def score(estimator, X, y, sample_weight=None):
    """Return R^2 of a fitted ``estimator`` on Dask input, summed on the workers.

    scikit-learn's ``r2_score`` (its uniform average over targets, and 1 or 0
    where ``y`` is constant), from per-partition sums: the rows stay where they are.
    """
    parts = Partitions(X, y, sample_weight)
    layout, names = parts.layout, getattr(estimator, "feature_names_in_", None)
    if layout.n_features != estimator.n_features_in_:
        raise ValueError(
            f"X has {layout.n_features} features, but the model expects {estimator.n_features_in_}."
        )
    if names is not None and parts.feature_names is not None:
        if list(parts.feature_names) != list(names):
            raise ValueError("The feature names should match those that were passed during fit.")
    coef, intercept = estimator.coef_, np.atleast_1d(estimator.intercept_)
    if layout.n_targets != intercept.size:
        raise ValueError(
            f"y has {layout.n_targets} target(s), but the model predicts {intercept.size}."
        )
    sums = parts.reduce(_score_task, _add_scores, coef, intercept)
    if not sums.S > 0:
        raise ValueError("sample_weight sums to zero in every partition; R^2 needs weight.")
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - sums.residual / sums.m2
    r2 = np.where(sums.m2 > 0, r2, np.where(sums.residual > 0, 0.0, 1.0))
    return float(np.mean(r2))
