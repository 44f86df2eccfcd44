"""Data-parallel training under a ``tf.distribute`` strategy: one fit across replicas.

Called inside ``strategy.scope()``, ``fit``, ``partial_fit`` and ``fit_stream``
train through a :class:`skl_tfreg._streaming.Stream` whose chunks are spread
over the strategy's local replicas (each on its own device), and whose sums are
all-reduced by the strategy across every replica of every worker:

- the moments of the preconditioner: one all-reduce of the weights, the
  weighted sums of the columns and the row counts, then one of the sums of
  squared deviations from the global means (Chan et al.'s merge, exact in
  float64);
- every epoch: one all-reduce of the gradient, J, ``H P`` and ``P^T H P``
  (and one of the gradient when the gradient rule is to be trusted).

Every replica then holds the same sums, takes the same step and reaches the
same decisions, so every worker ends with the coefficients of one fit on all
rows together: the full-batch fit of :class:`SGDL2Regressor` on their union, up
to the order in which the sums are added.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import _core

#: Seconds a collective waits for the other workers when the strategy sets no
#: timeout of its own: a worker that died surfaces as an error, not a hang.
DEFAULT_TIMEOUT = 300.0

_SUPPORTED = (
    tf.distribute.MirroredStrategy,
    tf.distribute.MultiWorkerMirroredStrategy,
    tf.distribute.OneDeviceStrategy,
)


def current_replicas():
    """Return the :class:`Replicas` of the strategy in scope, or None outside any scope.

    Returns
    -------
    replicas : Replicas or None
        None when no strategy's scope is entered (the default strategy).

    Raises
    ------
    ValueError
        If the strategy in scope is one that cannot train this model.
    """
    if not tf.distribute.has_strategy():
        return None
    strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, _SUPPORTED):
        raise ValueError(
            f"SGDL2Regressor cannot train under {type(strategy).__name__}: it trains "
            "data-parallel by all-reducing its sums under MirroredStrategy, "
            "MultiWorkerMirroredStrategy or OneDeviceStrategy. Fit outside this "
            "strategy's scope, or use one of those."
        )
    return Replicas(strategy)


class Replicas:
    """The local replicas of a strategy, and the all-reduce across all of them.

    Parameters
    ----------
    strategy : tf.distribute.Strategy
        MirroredStrategy, MultiWorkerMirroredStrategy or OneDeviceStrategy.
    """

    def __init__(self, strategy):
        self.strategy = strategy
        self.devices = tuple(strategy.extended.worker_devices)
        self.n = len(self.devices)
        multi = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        self.name = "MultiWorkerMirroredStrategy" if multi else type(strategy).__name__
        own = getattr(strategy.extended, "_communication_options", None)
        timeout = getattr(own, "timeout_seconds", None) or DEFAULT_TIMEOUT
        self.timeout = timeout
        self._options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout)

    def device(self, replica):
        """Return the device scope of local replica ``replica``."""
        return tf.device(self.devices[replica])

    def _sum(self, vectors):
        """All-reduce one float64 vector per local replica: the sum over all replicas."""
        values = self.strategy.experimental_distribute_values_from_function(
            lambda context: vectors[context.replica_id_in_sync_group % self.n]
        )
        try:
            total = self.strategy.extended.reduce_to(
                tf.distribute.ReduceOp.SUM, values, destinations=values, options=self._options
            )
            return self.strategy.experimental_local_results(total)[0]
        except tf.errors.OpError as err:
            raise RuntimeError(
                f"The all-reduce across the {self.strategy.num_replicas_in_sync} replicas of "
                f"{self.name} failed: a worker stopped, failed or did not answer within "
                f"{self.timeout:g} s ({type(err).__name__}: {err.message.strip()[:300]})."
            ) from None

    def all_reduce(self, parts):
        """Sum the tuples of tensors ``parts`` (one per local replica) over all replicas."""
        like = parts[0]
        flat = [tf.concat([tf.reshape(tf.cast(t, tf.float64), [-1]) for t in p], 0) for p in parts]
        total = self._sum(flat)
        sizes = [int(np.prod(t.shape)) for t in like]
        pieces = tf.split(total, sizes) if len(sizes) > 1 else [total]
        return tuple(
            tf.cast(tf.reshape(piece, t.shape), t.dtype)
            for piece, t in zip(pieces, like, strict=True)
        )

    def combine(self, moments, counts):
        """Merge the local replicas' moments and row counts over all replicas.

        Parameters
        ----------
        moments : list of Moments or None
            Each local replica's moments (None where it has no weight).
        counts : list of int
            Each local replica's number of rows.

        Returns
        -------
        stats : Moments
            The moments of every row of every replica.
        n_samples : int
            The number of rows of every replica.
        """
        known = next((m for m in moments if m is not None), None)
        if known is None:
            raise ValueError(
                f"sample_weight must have a positive sum on every worker of {self.name}; all "
                "the weights of this worker's rows are zero."
            )
        p, k = int(known.x_mean.shape[0]), int(known.y_mean.shape[0])
        replicas = self.strategy.num_replicas_in_sync
        # The layout must agree before vectors sized by it are reduced.
        header = [tf.constant([1.0, p, k], tf.float64)] * self.n
        agreed = self._sum(header).numpy()
        if not np.array_equal(agreed, [replicas, replicas * p, replicas * k]):
            raise ValueError(
                f"The workers of {self.name} disagree on the shape of the data: this one has "
                f"{p} features and {k} targets, but over all {replicas} replicas the totals "
                f"are {agreed[1]:g} features and {agreed[2]:g} targets."
            )
        empty = _core.Moments(
            tf.zeros([], tf.float64), *(tf.zeros([m], tf.float64) for m in (p, p, k, k))
        )
        moments = [empty if m is None else m for m in moments]
        first = self._sum([
            tf.concat([[m.S], m.S * m.x_mean, m.S * m.y_mean, [float(c)]], 0)
            for m, c in zip(moments, counts, strict=True)
        ])  # fmt: skip
        S, n_samples = first[0], int(first[-1])
        if not float(S) > 0:
            raise ValueError("sample_weight must have a positive sum; all weights are zero.")
        x_mean, y_mean = first[1 : 1 + p] / S, first[1 + p : 1 + p + k] / S
        second = self._sum([
            tf.concat([m.x_m2 + m.S * tf.square(m.x_mean - x_mean),
                       m.y_m2 + m.S * tf.square(m.y_mean - y_mean)], 0)
            for m in moments
        ])  # fmt: skip
        return _core.Moments(S, x_mean, second[:p], y_mean, second[p:]), n_samples


def shards(X, Y, sample_weight, n):
    """Return a chunk source that splits the rows into ``n`` contiguous shards.

    Parameters
    ----------
    X : ndarray or scipy.sparse matrix of shape (n_samples, n_features)
        This worker's rows.
    Y : ndarray of shape (n_samples, n_targets)
        Their targets.
    sample_weight : ndarray of shape (n_samples,)
        Their weights.
    n : int
        Number of local replicas: shard ``r`` goes to replica ``r``.

    Returns
    -------
    chunks : callable
        ``chunks()`` yields ``(X, Y, sample_weight)`` of each shard, in order.
    """
    X = X.tocsr() if hasattr(X, "tocsr") else X  # COO has no rows to slice
    bounds = np.linspace(0, X.shape[0], n + 1).astype(int)

    def chunks():
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            yield X[start:stop], Y[start:stop], sample_weight[start:stop]

    return chunks
