"""Data on a Dask cluster: statistics summed where the partitions are, never gathered.

Imported only when a fit or ``predict`` is given a dask array or a Dask
DataFrame (recognised by :func:`skl_tfreg._dask_input.is_dask`, which imports
nothing). A fit reads the partitions twice, as a fit on statistics in memory
does (:mod:`skl_tfreg._statistics`):

1. every partition's task validates its rows and sums their weighted Gram
   matrix of ``[X, 1, y]`` with the package's TensorFlow kernel, on the worker
   that holds it; the sums are added up in a tree of tasks on the workers, and
   the client receives one ``(p + 2)``-square matrix per group of rows;
2. the client solves, and every partition's task measures the gradient and J
   at the solution from its rows (the checking pass), added up the same way.

Only the small sums travel: the rows stay on the workers. ``predict`` returns a
lazy dask array computed block by block.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import dask
import numpy as np
import tensorflow as tf

from . import _core
from ._dask_input import is_dask
from ._statistics import Statistics, _pieces, add_grams, group_grams
from ._streaming import LOCAL

__all__ = ["Partitions", "DaskStatistics", "predict", "score"]

_FAN_IN = 8  # sums added per task of the reduction tree
#: Dask input trains on statistics up to this many features with ``precompute="auto"``
#: (each partition's task holds a (p + 2)-square float64 matrix: 128 MiB here).
MAX_FEATURES = 4094


def _is_frame(obj):
    """Whether ``obj`` is a Dask DataFrame (not a Series, not an array)."""
    return hasattr(obj, "columns") and hasattr(obj, "to_dask_array")


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
    Y = Y.reshape(len(Y), -1)
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


class _Sums(NamedTuple):
    """A partition's (or a subtree's) statistics: group Gram matrices, rows, weight."""

    grams: list  # one (p + 1 + k)-square float64 matrix per group, or None
    shifts: list  # what each group's matrix is summed about
    rows: int
    weight: float
    empty: tuple  # indices of the partitions without weight


def _statistics_task(index, X, y, s, layout, n_groups, split):
    """Run the first pass on one partition: its rows' group Gram matrices, and their shifts."""
    X, Y, s = _partition(index, X, y, s, layout)
    weight = float(s.sum())
    if not weight > 0:
        return _Sums([None] * n_groups, [None] * n_groups, X.shape[0], weight, (index,))
    grams, shifts = group_grams(X, Y, s, split, 0, n_groups)
    return _Sums(grams, shifts, X.shape[0], weight, ())


def _add_statistics(p, *parts):
    """Add the statistics of several partitions (a node of the reduction tree)."""
    first, *others = parts
    total = (list(first.grams), list(first.shifts))
    for part in others:
        add_grams(total, (part.grams, part.shifts), p)
    return _Sums(*total, sum(part.rows for part in parts), sum(part.weight for part in parts),
                 sum((part.empty for part in parts), ()))  # fmt: skip


def _check_task(index, X, y, s, layout, args):
    """Run the checking pass on one partition: :func:`skl_tfreg._core.chunk_check` of its rows."""
    X, Y, s = _partition(index, X, y, s, layout)
    dtype = tf.as_dtype(layout.dtype)
    stats, fit_intercept, alpha, S, V = args
    tensors = (_core.Moments(*map(tf.constant, stats)), tf.constant(fit_intercept),
               tf.constant(alpha, dtype), tf.constant(S, dtype), tf.constant(V, dtype))  # fmt: skip
    compute = _core.kernel(_core.chunk_check, dtype)
    total = None
    for piece in _pieces(X, Y, s):
        out = tuple(t.numpy() for t in compute(*piece, *tensors))
        total = out if total is None else tuple(a + b for a, b in zip(total, out, strict=True))
    if total is None:  # no rows
        k = Y.shape[1]
        total = (np.zeros((X.shape[1] + 1, k), layout.dtype), np.zeros(k, layout.dtype))
    return total


def _add_arrays(*parts):
    return tuple(sum(values) for values in zip(*parts, strict=True))


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
            self.feature_names = np.asarray([str(c) for c in X.columns], dtype=object)
            if not all(isinstance(c, str) for c in X.columns):
                self.feature_names = None  # scikit-learn keeps only string names
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
        dtype = np.dtype(np.float32) if dtypes == {np.dtype(np.float32)} else np.dtype(np.float64)
        self.n_partitions = len(parts_X)
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


class DaskStatistics(Statistics):
    """:class:`skl_tfreg._statistics.Statistics` of rows that stay on a Dask cluster.

    Constructing it runs the first pass on the workers. The checking passes run
    there too; there are no data passes to fall back to (``chunks`` is None).

    Parameters
    ----------
    partitions : Partitions
        The data.
    groups : tuple of (int, list) or None
        ``(n_groups, splits)``: ``splits[i]`` is the ``split`` of partition
        ``i``'s rows into groups (the folds of a cross-validation), as for
        :class:`Statistics` with an offset of 0. None: one group.
    """

    def __init__(self, partitions, *, groups=None):
        from ._statistics import _whole

        self.partitions, self.replicas, self.chunks = partitions, LOCAL, None
        self.batch_size, self.shuffle = None, False
        layout = partitions.layout
        self.dtype = tf.as_dtype(layout.dtype)
        self.n_features, self.n_targets = layout.n_features, partitions.n_targets
        n_groups, splits = (1, None) if groups is None else groups
        extra = [_whole] * partitions.n_partitions if splits is None else splits
        p = self.n_features
        combine = functools.partial(_add_statistics, p)
        sums = partitions.reduce(_statistics_task, combine, n_groups, extra=extra)
        if not sums.weight > 0:
            raise ValueError(
                f"sample_weight sums to zero in every partition (0 to "
                f"{partitions.n_partitions - 1}); at least one row needs weight."
            )
        self._seen = (sums.rows, sums.weight)
        self.empty_partitions = sums.empty
        self._combine([sums.grams], [sums.shifts], [sums.rows])

    def select_targets(self, columns):
        """Return these statistics for the targets ``columns`` alone (a shallow copy)."""
        chunks = self.chunks
        self.chunks = ()  # Statistics.select_targets wraps it
        try:
            other = super().select_targets(columns)
        finally:
            self.chunks = chunks
        other.chunks = None
        other.partitions = self.partitions.select_targets(columns)
        return other

    def _epoch(self, pb, V, best, n_bad, progress, tol):
        """One checking pass on the workers, and its refinement on the client."""
        fit_intercept, alpha, S = self._setting
        args = (tuple(np.asarray(m) for m in self._stats), bool(fit_intercept),
                float(alpha), float(S), V.numpy())  # fmt: skip
        G_data, J_data = self.partitions.reduce(_check_task, _add_arrays, args)
        refine = _core.kernel(_core.gram_refine, self.dtype)
        dtype = self.dtype
        return refine(pb, self._factor, V, tf.constant(G_data, dtype), tf.constant(J_data, dtype),
                      best, n_bad, progress, tol)  # fmt: skip


def _predict_block(block, coef, intercept, names):
    """``block @ coef.T + intercept`` of one block of rows, checked, in numpy."""
    if names is not None and list(block.columns) != list(names):
        raise ValueError("A partition's columns differ from the feature names seen in fit.")
    X = np.asarray(block.to_numpy() if hasattr(block, "to_numpy") else block)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
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
        columns = [str(c) for c in X.columns]
        if names is not None and columns != list(names):
            raise ValueError(
                f"The feature names should match those that were passed during fit: got "
                f"{columns[:10]}, fitted with {list(names)[:10]}."
            )
        if len(columns) != p:
            raise ValueError(f"X has {len(columns)} features, but the model expects {p}.")
        blocks = X.to_delayed()  # the partitions, each a pandas DataFrame
        out_dtype = np.result_type(coef.dtype, *X.dtypes)
        if out_dtype not in (np.float32, np.float64):
            out_dtype = np.dtype(np.float64)
        shape = () if coef.ndim == 1 else (coef.shape[0],)
        pieces = [
            da.from_delayed(
                dask.delayed(_predict_block, pure=True)(b, coef, intercept, names),
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
        return X.map_blocks(_predict_block, coef, intercept, None, drop_axis=1, dtype=out_dtype)
    return X.map_blocks(_predict_block, coef, intercept, None, dtype=out_dtype,
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
    if parts.layout.n_features != estimator.n_features_in_:
        raise ValueError(
            f"X has {parts.layout.n_features} features, but the model expects "
            f"{estimator.n_features_in_}."
        )
    coef, intercept = estimator.coef_, np.atleast_1d(estimator.intercept_)
    sums = parts.reduce(_score_task, _add_scores, coef, intercept)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - sums.residual / sums.m2
    r2 = np.where(sums.m2 > 0, r2, np.where(sums.residual > 0, 0.0, 1.0))
    return float(np.mean(r2))
