"""Data-parallel training under a ``tf.distribute`` strategy: one fit across replicas.

Called inside ``strategy.scope()``, ``fit``, ``partial_fit`` and ``fit_stream``
train through a :class:`skl_tfreg._streaming.Stream` whose chunks are spread
over the strategy's local replicas (each on its own device), and whose sums are
all-reduced by the strategy across every replica of every worker:

- the moments of the preconditioner: one all-reduce of the weights, the
  weighted sums of the columns and the row counts, then one of the sums of
  squared deviations from the global means (Chan et al.'s merge, exact in
  float64);
- on sufficient statistics (:class:`skl_tfreg._statistics.Statistics`): one
  all-reduce of the Gram matrices, moved to the global means, and one per
  checking pass of the gradient and J;
- by data passes, every epoch: one all-reduce of the gradient, J, ``H P`` and ``P^T H P``
  (and one of the gradient when the gradient rule is to be trusted).

Every replica then holds the same sums, takes the same step and reaches the
same decisions, so every worker ends with the coefficients of one fit on all
rows together: the full-batch fit of :class:`SGDL2Regressor` on their union, up
to the order in which the sums are added.
"""

from __future__ import annotations

import contextlib
import hashlib

import numpy as np
import tensorflow as tf

from . import _core
from ._streaming import Stream
from ._tensors import aligned, is_sparse

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
    replicas = Replicas(strategy)
    present = {
        (spec.device_type, spec.device_index)
        for spec in map(
            tf.DeviceSpec.from_string, (d.name for d in tf.config.list_logical_devices())
        )
    }
    for device in replicas.devices:
        spec = tf.DeviceSpec.from_string(device)
        if (spec.device_type, spec.device_index or 0) not in present:
            raise ValueError(
                f"The {replicas.name} in scope places a replica on {device}, which this "
                "process does not have (TensorFlow would run it elsewhere without a word); "
                "create the strategy with the devices of tf.config.list_logical_devices()."
            )
    return replicas


def check_parameters(replicas, params):
    """Refuse the parameters that cannot train under a strategy.

    Parameters
    ----------
    replicas : Replicas or None
        The strategy's replicas; None (no strategy) allows everything.
    params : dict
        The estimator's ``get_params(deep=False)``.

    Raises
    ------
    ValueError
        For mini-batches and for early stopping under a strategy.
    """
    if replicas is not None and params["batch_size"] != "auto":
        raise ValueError(
            f"Mini-batches cannot train under {replicas.name}: every step would need an "
            "all-reduce across the replicas. Use batch_size='auto' (full-batch epochs: "
            "the fit of all the replicas' rows together, one all-reduce per epoch)."
        )
    if replicas is not None and params["early_stopping"]:
        raise ValueError(
            f"early_stopping=True holds rows out on each worker, which is not supported "
            f"under {replicas.name}; set early_stopping=False."
        )


def fingerprint(params, dtype, start):
    """Return a digest of what every worker of a strategy must share.

    The parameters that shape training (not ``random_state`` or ``verbose``,
    which a full-batch fit does not use to compute), the dtype, and the
    starting point and state of a warm start or ``partial_fit``.

    Parameters
    ----------
    params : dict
        The estimator's ``get_params(deep=False)``.
    dtype : numpy dtype or None
        The training data's dtype, where known before training.
    start : NamedTuple
        ``(coef_init, intercept_init, state)``: the starting point (arrays or
        None) and the TrainState carried from an earlier call (or None).

    Returns
    -------
    digest : bytes
    """
    digest = hashlib.sha256()
    for name, value in sorted(params.items()):
        if name not in ("random_state", "verbose"):
            digest.update(f"{name}={value!r};".encode())
    digest.update(repr(None if dtype is None else np.dtype(dtype).name).encode())
    arrays, state = [start.coef_init, start.intercept_init], start.state
    if state is not None:
        arrays += [*state.moments, *(state.direction or ()), state.best]
        digest.update(repr((sorted(dict(state.steps).items()), state.n_bad, state.t)).encode())
    for array in arrays:
        if array is not None:
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.digest()


class Replicas:
    """The local replicas of a strategy, and the all-reduce across all of them.

    A :class:`skl_tfreg._data.ReplicaSet`.

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

    def _sum(self, vectors, failed=False):
        """All-reduce one float64 vector per local replica: the sum over all replicas.

        Each vector carries a flag: a worker that ``failed`` (it will raise its own
        error) still joins the collective, so that the others stop with it at once
        rather than at the timeout. Returns None to a worker that failed.
        """
        flag = tf.constant([1.0 if failed else 0.0], tf.float64)
        vectors = [tf.concat([v, flag], 0) for v in vectors]
        values = self.strategy.experimental_distribute_values_from_function(
            lambda context: vectors[context.replica_id_in_sync_group % self.n]
        )
        try:
            total = self.strategy.extended.reduce_to(
                tf.distribute.ReduceOp.SUM, values, destinations=values, options=self._options
            )
            total = self.strategy.experimental_local_results(total)[0]
        except tf.errors.OpError as err:
            lost = isinstance(err, tf.errors.DeadlineExceededError | tf.errors.UnavailableError)
            cause = (
                f"a worker stopped, failed or did not answer within {self.timeout:g} s"
                if lost
                else "the workers' collectives do not match (other dtypes or shapes?)"
            )
            raise RuntimeError(
                f"The all-reduce across the {self.strategy.num_replicas_in_sync} replicas of "
                f"{self.name} failed: {cause} ({type(err).__name__}: "
                f"{err.message.strip()[:300]})."
            ) from None
        if failed:
            return None
        if float(total[-1]) > 0:
            raise RuntimeError(
                f"Another worker of {self.name} failed before this step (its own error says "
                "why); this one stops with it."
            )
        return total[:-1]

    def agree(self, fingerprint):
        """Check that every worker trains with the same settings and starting state.

        Parameters
        ----------
        fingerprint : bytes or None
            A digest of this worker's settings and starting state; None if this
            worker failed before training (it then raises its own error).

        Raises
        ------
        ValueError
            On every worker, if the fingerprints differ.
        """
        chunks = np.frombuffer((fingerprint or bytes(16))[:16], np.uint16).astype(np.float64)
        vector = tf.constant(np.concatenate([chunks, np.square(chunks)]))
        total = self._sum([vector] * self.n, failed=fingerprint is None)
        if total is None:
            return
        sums, squares = total.numpy()[:8], total.numpy()[8:]
        if not np.array_equal(np.square(sums), self.strategy.num_replicas_in_sync * squares):
            raise ValueError(
                f"The workers of {self.name} were given different settings or starting "
                "states (parameters, dtype, a warm start or partial_fit state that only some "
                "of them have): every worker must train the same model, each on its own rows."
            )

    def all_reduce(self, parts, failed=False):
        """Sum the tuples of tensors ``parts`` (one per local replica) over all replicas."""
        like = parts[0]
        flat = [tf.concat([tf.reshape(tf.cast(t, tf.float64), [-1]) for t in p], 0) for p in parts]
        total = self._sum(flat, failed)
        if total is None:
            return None
        sizes = [int(np.prod(t.shape)) for t in like]
        pieces = tf.split(total, sizes) if len(sizes) > 1 else [total]
        pairs = zip(pieces, like, strict=True)
        return tuple(tf.cast(tf.reshape(piece, t.shape), t.dtype) for piece, t in pairs)

    def combine(self, moments, counts, layout, failed=False):
        """Merge the local replicas' moments and row counts over all replicas.

        Parameters
        ----------
        moments : list of Moments or None
            Each local replica's moments (None where it has no weight).
        counts : list of int
            Each local replica's number of rows.
        layout : tuple of (int, int, int)
            ``(n_features, n_targets, dtype size in bytes)`` of this worker's data.
        failed : bool
            Whether this worker failed on its first pass (it then raises its own error).

        Returns
        -------
        stats : Moments
            The moments of every row of every replica.
        n_samples : int
            The number of rows of every replica.
        """
        replicas = self.strategy.num_replicas_in_sync
        # The layout must agree before vectors sized by it are reduced: the sums of the
        # values and of their squares are R v and R v^2 only if every replica has v.
        header = np.array(layout if not failed else (0, 0, 0), np.float64)
        total = self._sum([tf.constant(np.r_[header, header**2])] * self.n, failed)
        if total is None:
            return None, 0
        sums, squares = total.numpy()[:3], total.numpy()[3:]
        if not np.array_equal(np.square(sums), replicas * squares):
            raise ValueError(
                f"The workers of {self.name} disagree on the data: this one has "
                f"{layout[0]} features, {layout[1]} targets and {8 * layout[2]}-bit floats, "
                f"but over all {replicas} replicas they average {sums[0] / replicas:g} "
                f"features, {sums[1] / replicas:g} targets and {8 * sums[2] / replicas:g} bits."
            )
        p, k = layout[0], layout[1]
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
            raise ValueError(
                f"sample_weight must have a positive sum; the weights of every worker of "
                f"{self.name} are all zero."
            )
        x_mean, y_mean = first[1 : 1 + p] / S, first[1 + p : 1 + p + k] / S
        m2 = [tf.concat([m.x_m2, m.y_m2], 0) for m in moments]
        mean = [tf.concat([m.x_mean, m.y_mean], 0) for m in moments]
        centre = tf.concat([x_mean, y_mean], 0)
        second = self._sum([
            tf.concat([v + m.S * tf.square(u - centre), v, m.S * tf.square(u)], 0)
            for m, v, u in zip(moments, m2, mean, strict=True)
        ])  # fmt: skip
        spread, own, size = second[: p + k], second[p + k : 2 * (p + k)], second[2 * (p + k) :]
        # A column constant on every replica has spreads of exactly 0 there; the global
        # mean's rounding must not give it one (it would be scaled by 1 / rounding).
        constant = tf.equal(own, 0.0) & (spread <= (_core.ROUNDING_EPS * _core.EPS64) ** 2 * size)
        spread = tf.where(constant, tf.zeros_like(spread), spread)
        return _core.Moments(S, x_mean, spread[:p], y_mean, spread[p:]), n_samples


@contextlib.contextmanager
def together(replicas):
    """Prepare a fit on this worker, then agree with the others before any training.

    The body stores ``fingerprint`` (a digest of the settings and starting state)
    in the dict it is given. Under a strategy, every worker then checks that all
    the fingerprints are equal; a worker whose preparation raised (bad data, say)
    tells the others, which raise too, at once, instead of waiting for it at the
    timeout. Outside any strategy (``replicas`` None) this does nothing.

    Parameters
    ----------
    replicas : Replicas or None
        The strategy's replicas, or None.

    Yields
    ------
    agreement : dict
        Where the body puts its ``fingerprint`` (bytes).
    """
    agreement = {}
    try:
        yield agreement
    except Exception:
        if replicas is not None:
            replicas.agree(None)
        raise
    if replicas is not None:
        replicas.agree(agreement["fingerprint"])


def replicated(X, Y, sample_weight, replicas):
    """Return this worker's rows as a :class:`~skl_tfreg._streaming.Stream` over ``replicas``.

    The rows are split into one contiguous shard per local replica; the stream
    all-reduces its sums across every replica of every worker.

    Parameters
    ----------
    X : ndarray or scipy.sparse matrix of shape (n_samples, n_features)
        This worker's rows.
    Y : ndarray of shape (n_samples, n_targets)
        Their targets.
    sample_weight : ndarray of shape (n_samples,)
        Their weights.
    replicas : Replicas
        The strategy's replicas.

    Returns
    -------
    stream : Stream
        Full-batch training data.
    """
    return Stream(_shards(X, Y, sample_weight, replicas.n), replicas=replicas)


def _shards(X, Y, sample_weight, n):
    """Return a chunk source that splits the rows into ``n`` contiguous shards.

    Shard ``r`` goes to local replica ``r``; ``chunks()`` yields
    ``(X, Y, sample_weight)`` of each shard, in order.
    """
    X = X.tocsr() if is_sparse(X) else X  # COO has no rows to slice
    bounds = np.linspace(0, X.shape[0], n + 1).astype(int)
    # Every epoch reads the shards again: make each one shareable with TensorFlow once
    # (at most one copy of X, as in a plain fit), not at every pass.
    parts = [
        (X[a:b] if is_sparse(X) else aligned(X[a:b]), Y[a:b], sample_weight[a:b])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]

    def chunks():
        yield from parts

    return chunks
