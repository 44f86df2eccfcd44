"""Fits on Dask input: the sufficient statistics summed where the partitions are.

A fit reads the partitions as a fit on statistics in memory does
(:mod:`skl_tfreg._statistics`):

1. every partition's task validates its rows and sums their weighted Gram
   matrices of ``[X, 1, y]`` (one per fold for ``SGDL2RegressorCV``) with the
   package's TensorFlow kernel, on the worker that holds it; a tree of tasks on
   the workers adds them up, and the client receives one ``(p + 1 + k)``-square
   matrix per group of rows;
2. the client solves, and every partition's task measures the gradient and J
   at the solution from its rows (the checking pass, one per epoch of
   refinement, usually one), added up the same way.

``SGDL2RegressorCV`` with ``alpha_per_target`` runs one checking pass per
distinct alpha; with partitions of unknown sizes it counts their rows first.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from . import _core
from ._dask import _partition
from ._statistics import Statistics, _pieces, _whole, add_grams, group_grams
from ._streaming import LOCAL

__all__ = ["DaskStatistics", "MAX_FEATURES"]

#: Dask input trains on statistics up to this many features with ``precompute="auto"``
#: (each partition's task holds a (p + 1 + k)-square float64 matrix per group of rows:
#: 128 MiB for one target and one group here).
MAX_FEATURES = 4094


class _Sums(NamedTuple):
    """A partition's (or a subtree's) statistics: group Gram matrices, rows, weight."""

    grams: list  # one (p + 1 + k)-square float64 matrix per group, or None
    shifts: list  # what each group's matrix is summed about
    rows: int
    weight: float


def _statistics_task(index, X, y, s, layout, n_groups, split):
    """Run the first pass on one partition: its rows' group Gram matrices, and their shifts."""
    X, Y, s = _partition(index, X, y, s, layout)
    weight = float(s.sum())
    if not weight > 0:  # no weight (or no rows): nothing to add
        return _Sums([None] * n_groups, [None] * n_groups, X.shape[0], weight)
    grams, shifts = group_grams(X, Y, s, split, 0, n_groups)
    return _Sums(grams, shifts, X.shape[0], weight)


def _add_statistics(p, *parts):
    """Add the statistics of several partitions (a node of the reduction tree)."""
    first, *others = parts
    total = (list(first.grams), list(first.shifts))
    for part in others:
        add_grams(total, (part.grams, part.shifts), p)
    return _Sums(*total, sum(part.rows for part in parts), sum(part.weight for part in parts))


def _check_task(index, X, y, s, layout, args):
    """Run the checking pass on one partition: :func:`skl_tfreg._core.chunk_check` of its rows."""
    X, Y, s = _partition(index, X, y, s, layout)
    if X.shape[0] == 0:
        return np.zeros((X.shape[1] + 1, Y.shape[1]), layout.dtype), np.zeros(
            Y.shape[1], layout.dtype
        )
    dtype = tf.as_dtype(layout.dtype)
    stats, fit_intercept, alpha, S, V = args
    tensors = (_core.Moments(*map(tf.constant, stats)), tf.constant(fit_intercept),
               tf.constant(alpha, dtype), tf.constant(S, dtype), tf.constant(V, dtype))  # fmt: skip
    compute = _core.kernel(_core.chunk_check, dtype)
    parts = [tuple(t.numpy() for t in compute(*piece, *tensors)) for piece in _pieces(X, Y, s)]
    return _add_arrays(*parts)


def _add_arrays(*parts):
    return tuple(sum(values) for values in zip(*parts, strict=True))


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
