"""What the driver trains through: the data protocol, and data held in memory.

The driver (:mod:`skl_tfreg._training`) never asks what kind of data it holds:
arrays in memory (:class:`InMemory`), a stream read in chunks
(:class:`skl_tfreg._streaming.Stream`) and a stream spread over the replicas of
a ``tf.distribute`` strategy all implement :class:`TrainingData`, and return
the NamedTuples of :mod:`skl_tfreg._core`. A stream computes its sums on a
:class:`ReplicaSet`: one replica here, or a strategy's
(:class:`skl_tfreg._distributed.Replicas`).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import tensorflow as tf

from . import _core
from ._batching import iter_epochs
from ._tensors import is_sparse, training_tensors

__all__ = ["TrainingData", "ReplicaSet", "InMemory"]


@runtime_checkable
class TrainingData(Protocol):
    """The interface every kind of training data gives the driver."""

    dtype: tf.DType
    n_samples: int
    n_features: int
    n_targets: int
    batch_size: int | None  # rows per mini-batch step; None: full-batch epochs
    shuffle: bool  # whether mini-batch epochs visit the rows in a new order

    def prepare(self, fit_intercept, alpha, coef_init, intercept_init, prior, tol):
        """Return the :class:`~skl_tfreg._core.Start` of a descent from ``coef_init``.

        ``prior`` are the float64 moments (numpy) of the rows trained on before.
        """

    def full_batch(self, pb, state, n_epochs, schedule, progress, tol, limit):
        """Run up to ``n_epochs`` full-batch epochs: :func:`skl_tfreg._core.full_batch`."""

    def epochs(self, random_state):
        """Return an iterator of epochs, each an iterable of what ``minibatch_epoch`` takes."""

    def minibatch_epoch(self, pb, V, batches, schedule, tol, average=None):
        """Run one epoch of mini-batch steps: a :class:`~skl_tfreg._core.MinibatchEpoch`.

        With an ``average`` (:class:`~skl_tfreg._core.Average`) the steps also
        average their iterates: an :class:`~skl_tfreg._core.AveragedEpoch`.
        """

    def smoothness(self, pb):
        """Return the data's :class:`~skl_tfreg._core.Curvature`, as floats."""


@runtime_checkable
class ReplicaSet(Protocol):
    """Where a stream's chunks are summed, and how the sums are added up across replicas."""

    n: int  # local replicas: chunk i goes to replica i % n

    def device(self, replica):
        """Return the device scope of local replica ``replica``."""

    def all_reduce(self, parts, failed=False):
        """Sum one tuple of tensors per local replica over every replica.

        A replica set whose worker ``failed`` still joins, so that the others
        stop too; it returns None to that worker.
        """

    def combine(self, moments, counts, layout, failed=False):
        """Merge each local replica's moments and row count over every replica.

        Returns the moments of all rows and their number.
        """


class InMemory:
    """Training data held in memory: dense (shared with TensorFlow) or scipy.sparse.

    Parameters
    ----------
    X : ndarray or scipy.sparse matrix of shape (n_samples, n_features)
        float32 or float64; never modified, never densified.
    Y : ndarray of shape (n_samples, n_targets)
        Targets, of X's dtype.
    sample_weight : ndarray of shape (n_samples,)
        Weights, of X's dtype.
    batch_size : int or None, default=None
        Rows per mini-batch step; None for full-batch epochs.
    shuffle : bool, default=False
        Whether each mini-batch epoch visits the rows in a new random order.
    """

    def __init__(self, X, Y, sample_weight, *, batch_size=None, shuffle=False):
        self.sparse = is_sparse(X)
        self.X, self.Y, self.s = training_tensors(X, Y, sample_weight)
        self.dtype = self.X.dtype
        self.n_samples, self.n_features = (int(n) for n in X.shape)
        self.n_targets = int(self.Y.shape[1])
        self.batch_size, self.shuffle = batch_size, shuffle

    def _kernel(self, fn):
        return _core.kernel(fn, self.dtype, self.sparse)

    def prepare(self, fit_intercept, alpha, coef_init, intercept_init, prior, tol):
        """Return :func:`skl_tfreg._core.prepare` of the data."""
        dtype = self.dtype
        return self._kernel(_core.prepare)(
            self.X, self.Y, self.s, tf.constant(bool(fit_intercept)), tf.constant(alpha, dtype),
            tf.convert_to_tensor(coef_init, dtype), tf.convert_to_tensor(intercept_init, dtype),
            _core.Moments(*map(tf.constant, prior)), tf.constant(tol, dtype),
        )  # fmt: skip

    def full_batch(self, pb, state, n_epochs, schedule, progress, tol, limit):
        """Return :func:`skl_tfreg._core.full_batch` of the data."""
        return self._kernel(_core.full_batch)(pb, state, n_epochs, schedule, progress, tol, limit)

    def epochs(self, random_state):
        """Return :func:`skl_tfreg.iter_epochs` of the rows: row indices per batch."""
        return iter_epochs(
            self.n_samples, self.batch_size, shuffle=self.shuffle, random_state=random_state
        )

    def minibatch_epoch(self, pb, V, batches, schedule, tol, average=None):
        """Return :func:`skl_tfreg._core.minibatch_epoch` over ``batches``.

        With an ``average``, :func:`skl_tfreg._core.averaged_epoch`.
        """
        offsets = np.cumsum([0] + [len(b) for b in batches])
        args = (pb, V, tf.constant(np.concatenate(batches), tf.int64),
                tf.constant(offsets, tf.int64), schedule, tol)  # fmt: skip
        if average is None:
            return self._kernel(_core.minibatch_epoch)(*args)
        return self._kernel(_core.averaged_epoch)(*args, average)

    def smoothness(self, pb):
        """Return :func:`skl_tfreg._core.smoothness` of the data, as floats."""
        return _core.Curvature(*(float(t) for t in self._kernel(_core.smoothness)(pb)))
