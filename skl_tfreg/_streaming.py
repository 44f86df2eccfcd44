"""Training on data read in chunks, one pass per epoch: the sources of ``fit_stream``.

A stream is read once for the weighted moments of all its rows (they define the
preconditioner, as in memory), once for the gradient at the start, and then
once per epoch:

- full batch (``batch_size="auto"``): each pass sums the chunks' products with
  the search direction, ``H P`` and ``P^T H P``, and the step follows exactly,
  since J is quadratic (:func:`skl_tfreg._core._stream_step`); when the
  gradient rule holds, one more pass recomputes the gradient before it is
  trusted. The chunks' sizes and order change only the rounding: the fit is
  the in-memory full-batch fit of all the rows.
- mini-batches (an integer ``batch_size``): each chunk is cut into batches of
  ``batch_size`` rows, in order (shuffled within the chunk with ``shuffle``),
  and every batch is one step, scaled as in memory. Chunks of ``batch_size``
  rows read in the same order as in memory give the in-memory fit with
  ``shuffle=False``. The automatic step needs the data's curvature: one more
  pass sums the chunks' Gram matrices (``n_features`` up to 4,095).

Nothing here holds more than one chunk (and the ``(n_features + 1)``-sized
state) in memory.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import _core
from ._batching import iter_batches
from ._core import DIVERGED, RUNNING
from ._training import _sparse_tensor, as_tensor

_MAX_GRAM_FEATURES = 4095  # the Gram matrix of the automatic mini-batch step: 128 MiB


def epoch_reader(source):
    """Return a callable giving a fresh iterable of the batches of ``source`` per epoch.

    Parameters
    ----------
    source : callable or tf.data.Dataset
        A callable returning an iterable of batches, or a dataset of batches.

    Returns
    -------
    read : callable
        ``read()`` returns an iterator over one epoch's batches.
    """
    if isinstance(source, tf.data.Dataset):
        return source.as_numpy_iterator
    if callable(source):
        return lambda: iter(source())
    hint = ""
    if hasattr(source, "__next__") or hasattr(source, "__iter__"):
        hint = (
            " An iterator or a list is read once, but every epoch reads the data again: "
            "pass a function that returns a new iterable, e.g. `lambda: make_batches()`."
        )
    raise TypeError(
        "source must be a callable returning an iterable of (X, y) or (X, y, sample_weight) "
        f"batches, or a tf.data.Dataset of such batches; got {type(source).__name__}.{hint}"
    )


def unpack(batch, index):
    """Return ``(X, y, sample_weight)`` of one batch of a stream (weights may be None).

    Parameters
    ----------
    batch : tuple
        ``(X, y)`` or ``(X, y, sample_weight)``.
    index : int
        Position of the batch in its epoch, for the error message.

    Returns
    -------
    X, y, sample_weight : array-like
        The batch's parts.
    """
    if isinstance(batch, tuple | list) and len(batch) in (2, 3):
        return (*batch, None) if len(batch) == 2 else tuple(batch)
    kind = f"a {len(batch)}-tuple" if isinstance(batch, tuple | list) else type(batch).__name__
    raise ValueError(
        f"Batch {index} of the stream is {kind}; each batch must be (X, y) or "
        "(X, y, sample_weight)."
    )


def _tensors(X, Y, s):
    X = _sparse_tensor(X) if hasattr(X, "tocsr") else as_tensor(X)
    return X, tf.convert_to_tensor(Y, X.dtype), tf.convert_to_tensor(s, X.dtype)


class Stream:
    """Training data read in chunks: the data object of :func:`skl_tfreg._training.train`.

    Constructing it reads the stream once, for its weighted moments and size.

    Parameters
    ----------
    chunks : callable
        ``chunks()`` returns an iterator of validated chunks ``(X, Y, s)``: X
        an ndarray (or scipy.sparse matrix) of shape (n, n_features), float32 or
        float64, Y of shape (n, n_targets) and s of shape (n,), of X's dtype.
    batch_size : int or None
        Rows per mini-batch step within a chunk; None for full-batch epochs.
    shuffle : bool
        Whether mini-batches are drawn in a shuffled order within each chunk.
    """

    def __init__(self, chunks, *, batch_size=None, shuffle=False):
        self.chunks, self.batch_size, self.shuffle = chunks, batch_size, shuffle
        self.dtype = self.stats = None
        self.n_samples = 0
        for X, Y, s in chunks():
            if self.dtype is None:
                self.dtype = tf.as_dtype(X.dtype)
                self.n_features, self.n_targets = X.shape[1], Y.shape[1]
            self.n_samples += X.shape[0]
            if not s.sum() > 0:  # no weight: nothing to add (and its mean is 0 / 0)
                continue
            chunk = self._kernel(_core._chunk_moments, X)(*_tensors(X, Y, s))
            self.stats = chunk if self.stats is None else _core._merge_moments(self.stats, chunk)
        if self.dtype is None:
            raise ValueError("The stream yielded no batches: it has no rows to fit.")
        if self.stats is None:
            raise ValueError("sample_weight must have a positive sum; all weights are zero.")

    def _kernel(self, fn, X=None):
        return _core.kernel(fn, self.dtype, X is not None and hasattr(X, "tocsr"))

    def _problems(self):
        """Yield the :class:`~skl_tfreg._core.Problem` of each chunk with weight, in order."""
        fit_intercept, alpha, S = self._setting
        for X, Y, s in self.chunks():
            if s.sum() > 0:
                make = self._kernel(_core._chunk_problem, X)
                yield make(*_tensors(X, Y, s), self.stats, fit_intercept, alpha, S)[0], X

    def _sum(self, fn, *args):
        """Sum ``fn(pb, *args)`` over the chunks (a tuple of sums)."""
        total = None
        for pb, X in self._problems():
            out = self._kernel(fn, X)(pb, *args)
            total = out if total is None else tuple(a + b for a, b in zip(total, out, strict=True))
        return total

    def prepare(self, fit_intercept, alpha, coef_init, intercept_init, prior, tol):
        """Return what :func:`skl_tfreg._core._prepare` does, J in place of the residual."""
        dtype = self.dtype
        S = tf.cast(self.stats.S, dtype)  # these rows' weight, as in memory
        prior = _core.Moments(*map(tf.constant, prior))
        if float(prior.S) > 0:
            self.stats = _core._merge_moments(prior, self.stats)
        self._setting = (tf.constant(bool(fit_intercept)), tf.constant(alpha, dtype), S)
        np_dtype = dtype.as_numpy_dtype
        empty = (np.zeros((0, self.n_features), np_dtype), np.zeros((0, self.n_targets), np_dtype))
        self.pb, finite = self._kernel(_core._chunk_problem)(
            *_tensors(*empty, np.zeros(0, np_dtype)), self.stats, *self._setting
        )
        start = (tf.convert_to_tensor(a, dtype) for a in (coef_init, intercept_init))
        V = self._kernel(_core._stream_initial)(self.pb, *start)
        G_data, J_data = self._sum(_core._chunk_gradient, V)
        G, J, P, best, status, units = self._kernel(_core._stream_start)(
            self.pb, V, G_data, J_data, tf.constant(tol, dtype), finite
        )
        return self.pb, self.stats, V, J, G, P, best, status, units

    def full_batch(self, pb, state, n_epochs, rule, tol, limit):
        """Run up to ``n_epochs`` full-batch epochs, one pass each, as :func:`_core._full_batch`.

        ``state`` is ``(V, J, G, P, best, n_bad)``: J stands where the residual
        stands in memory.
        """
        V, J, G, P, best, n_bad = state
        conjugate, eta0, power_t, t0, rtol, patience = (float(r) for r in rule)
        advance_rule = (tf.constant(bool(conjugate)), tf.constant(rtol, self.dtype),
                        tf.constant(int(patience)))  # fmt: skip
        step, advance = self._kernel(_core._stream_step), self._kernel(_core._stream_advance)
        losses, status = [], RUNNING
        for i in range(int(n_epochs)):
            HP, curvature = self._sum(_core._chunk_curvature, P)
            eta = tf.constant(eta0 / (t0 + i + 1.0) ** power_t, self.dtype)
            V_new, G_new, J_new, converged = step(
                pb, V, G, P, J, HP, curvature, advance_rule[0], eta, tol
            )
            if bool(converged):  # trust the gradient rule only on a recomputed gradient
                G_data, J_data = self._sum(_core._chunk_gradient, V_new)
                G_new, J_new = self._kernel(_core._stream_start)(
                    pb, V_new, G_data, J_data, tol, tf.constant(True)
                )[:2]
            P_new, objective, best_new, n_bad_new, status, _ = advance(
                pb, V_new, G, P, G_new, J_new, tf.constant(bool(converged)), best, n_bad,
                advance_rule, tol, limit,
            )  # fmt: skip
            status = int(status)
            if status == DIVERGED:  # not taken: the caller may retry with a smaller step
                break
            V, J, G, P, best, n_bad = V_new, J_new, G_new, P_new, best_new, n_bad_new
            losses.append(float(objective))
            if status != RUNNING:
                break
        units = self._kernel(_core._stream_units)(pb, V, G, J)
        return (V, J, G, P, best, n_bad), tf.constant(losses, tf.float64), status, units

    def epochs(self, rng):
        """Yield, per epoch, the seed of its shuffles (reused when an epoch is retried)."""
        while True:
            yield [int(rng.randint(np.iinfo(np.int32).max))]

    def minibatch_epoch(self, pb, V, batches, rule, tol):
        """One epoch of mini-batch steps over the chunks, as :func:`_core._minibatch_epoch`.

        ``batches`` is ``[seed]`` from :meth:`epochs`. Returns V, the epoch's J
        estimate, whether the mean batch gradient meets ``tol``, the coefficients
        and the number of steps taken.
        """
        eta, power_t, t0 = rule
        rng = np.random.default_rng(batches[0])
        n_total = tf.constant(self.n_samples, self.dtype)
        fit_sums = tf.zeros([self.n_targets], self.dtype)
        G_sum, n_steps = tf.zeros_like(V), 0
        for chunk_pb, X in self._problems():
            order = list(iter_batches(X.shape[0], self.batch_size, shuffle=self.shuffle,
                                      random_state=rng))  # fmt: skip
            offsets = tf.constant(np.cumsum([0] + [len(b) for b in order]), tf.int64)
            step_rule = (eta, power_t, t0 + tf.constant(n_steps, self.dtype))
            V, sums, G_part = self._kernel(_core._minibatch_pass, X)(
                chunk_pb, V, tf.constant(np.concatenate(order), tf.int64), offsets, step_rule,
                n_total,
            )  # fmt: skip
            fit_sums, G_sum, n_steps = fit_sums + sums, G_sum + G_part, n_steps + len(order)
        objective, converged, units = self._kernel(_core._minibatch_end)(
            pb, V, fit_sums, G_sum, tf.constant(max(n_steps, 1)), tol
        )
        return V, objective, converged, units, n_steps

    def smoothness(self, pb):
        """Return :func:`_core._smoothness` of all the rows, from one pass of Gram matrices."""
        if self.n_features > _MAX_GRAM_FEATURES:
            raise ValueError(
                f"learning_rate='auto' with mini-batches in fit_stream measures the data's "
                f"curvature from its Gram matrix, which is limited to {_MAX_GRAM_FEATURES} "
                f"features; this stream has {self.n_features}. Use batch_size='auto' (exact "
                "full-batch epochs) or an explicit learning_rate with eta0."
            )
        total = tf.zeros([self.n_features + 1] * 2, tf.float64)
        row = tf.zeros([], tf.float64)
        for chunk_pb, X in self._problems():
            gram, chunk_row = self._kernel(_core._chunk_gram, X)(chunk_pb)
            total, row = total + gram, tf.maximum(row, chunk_row)
        n_total = tf.constant(self.n_samples, self.dtype)
        lam, bound = self._kernel(_core._gram_smoothness)(pb, total, row, n_total)
        return float(lam), float(bound)
