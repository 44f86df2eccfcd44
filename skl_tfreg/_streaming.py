"""Training on data read in chunks, one pass per epoch: the sources of ``fit_stream``.

A stream is read once for the weighted moments of all its rows (they define the
preconditioner, as in memory), once for the gradient at the start, and then
once per epoch:

- full batch (``batch_size="auto"``): each pass sums the chunks' gradients and
  squared errors at the current point and their products with the search
  direction, ``H P`` and ``P^T H P``; the step follows exactly, since J is
  quadratic (:func:`skl_tfreg._core.stream_step`), and the next direction is
  chosen on the gradient after it, which the next pass computes from the data
  again. When the gradient rule holds, one more pass recomputes the gradient
  before it is trusted. The chunks' sizes and order change only the rounding:
  the fit is the in-memory full-batch fit of all the rows.
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

import contextlib

import numpy as np
import tensorflow as tf

from . import _core
from ._batching import iter_batches
from ._status import Status
from ._tensors import is_sparse, training_tensors

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


class _Local:
    """The :class:`~skl_tfreg._data.ReplicaSet` of a plain fit: one replica, in this process.

    Its sums need no reduction.
    """

    n = 1

    @staticmethod
    def device(replica):
        return contextlib.nullcontext()

    @staticmethod
    def all_reduce(parts, failed=False):
        return parts[0]

    @staticmethod
    def combine(moments, counts, layout, failed=False):
        if failed:
            return None, 0
        if moments[0] is None:
            raise ValueError("sample_weight must have a positive sum; all weights are zero.")
        return moments[0], counts[0]


LOCAL = _Local()


class Stream:
    """Training data read in chunks: a :class:`skl_tfreg._data.TrainingData`.

    Constructing it reads the stream once, for its weighted moments and size.
    Every later pass must yield the same rows: each pass checks their number and
    weight against the first.

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
    auto_step : bool
        Whether mini-batches take the automatic step, which needs the Gram
        matrix of the rows (at most ``_MAX_GRAM_FEATURES`` features, dense).
    replicas : ReplicaSet
        Where the chunks' sums are computed and how they are added up: one
        replica here (the default), or a strategy's replicas across devices and
        workers (:class:`skl_tfreg._distributed.Replicas`); chunk ``i`` goes to
        local replica ``i % replicas.n``.
    """

    def __init__(self, chunks, *, batch_size=None, shuffle=False, auto_step=False,
                 replicas=LOCAL):  # fmt: skip
        self.chunks, self.batch_size, self.shuffle = chunks, batch_size, shuffle
        self.replicas = replicas
        self.dtype = None
        moments = [None] * replicas.n
        counts = [0] * replicas.n
        self._seen = (0, 0.0)  # local rows and weight, which every pass must repeat
        try:
            for index, (X, Y, s) in enumerate(chunks()):
                self._first_pass_chunk(index % replicas.n, X, Y, s, moments, counts, auto_step)
            if self.dtype is None:
                raise ValueError("The stream yielded no batches: it has no rows to fit.")
        except Exception:
            replicas.combine(moments, counts, None, failed=True)  # the others stop too
            raise
        layout = (self.n_features, self.n_targets, self.dtype.size)
        self.stats, self.n_samples = replicas.combine(moments, counts, layout)

    def _first_pass_chunk(self, r, X, Y, s, moments, counts, auto_step):
        """Add one chunk to replica ``r``'s moments and row count."""
        if self.dtype is None:
            self.dtype = tf.as_dtype(X.dtype)
            self.n_features, self.n_targets = X.shape[1], Y.shape[1]
            if auto_step and (X.shape[1] > _MAX_GRAM_FEATURES or is_sparse(X)):
                raise ValueError(
                    "learning_rate='auto' with mini-batches in fit_stream measures the "
                    "data's curvature from the Gram matrix of its rows, dense and limited "
                    f"to {_MAX_GRAM_FEATURES} features; these batches are "
                    f"{'sparse' if is_sparse(X) else 'dense'} with {X.shape[1]} "
                    "features. Use batch_size='auto' (exact full-batch epochs) or an "
                    "explicit learning_rate with eta0."
                )
        self._seen = (self._seen[0] + X.shape[0], self._seen[1] + float(s.sum()))
        counts[r] += X.shape[0]
        if not s.sum() > 0:  # no weight: nothing to add (and its mean is 0 / 0)
            return
        with self.replicas.device(r):
            chunk = self._kernel(_core.chunk_moments, X)(*training_tensors(X, Y, s))
            merged = moments[r]
            moments[r] = chunk if merged is None else _core.merge_moments(merged, chunk)

    def _kernel(self, fn, X=None):
        return _core.kernel(fn, self.dtype, X is not None and is_sparse(X))

    def _tensors(self, pieces=None):
        """Yield each chunk's replica, tensors ``(X, Y, s)`` and X, in order.

        ``pieces(X, Y, s)``, if given, cuts a chunk into pieces and returns each
        piece's tensors, and every piece is yielded. Raises ValueError at the
        end of a pass whose rows or weight differ from the first pass's.
        """
        rows, weight = 0, 0.0
        for index, (X, Y, s) in enumerate(self.chunks()):
            rows, weight = rows + X.shape[0], weight + float(s.sum())
            r = index % self.replicas.n
            with self.replicas.device(r):
                if pieces is None:
                    yield r, training_tensors(X, Y, s), X
                else:
                    for tensors in pieces(X, Y, s):
                        yield r, tensors, None
        if rows != self._seen[0] or not np.isclose(weight, self._seen[1], rtol=1e-12, atol=0):
            raise ValueError(
                f"The source yielded {rows} rows of total weight {weight:.17g} on this pass, "
                f"but {self._seen[0]} rows of weight {self._seen[1]:.17g} on the first: "
                "fit_stream reads the data once per epoch and needs the same batches at "
                "every call of the source."
            )

    def _problems(self):
        """Yield each chunk's replica, :class:`~skl_tfreg._core.Problem` and X, in order."""
        for r, tensors, X in self._tensors():
            with self.replicas.device(r):
                pb, _ = self._kernel(_core.chunk_problem, X)(*tensors, self._stats, *self._setting)
                yield r, pb, X

    def _sum(self, fn, like, *args, chunks=None):
        """Sum ``fn(pb, *args)`` over the chunks and replicas (a tuple like ``like``).

        ``chunks`` yields ``(replica, first arguments, X)``: each chunk's
        problem (the default, :meth:`_problems`), or its tensors.
        """
        parts = [None] * self.replicas.n
        try:
            for r, head, X in self._problems() if chunks is None else chunks:
                with self.replicas.device(r):
                    out = self._kernel(fn, X)(*(head if chunks is not None else (head,)), *args)
                    if parts[r] is not None:
                        out = tuple(a + b for a, b in zip(parts[r], out, strict=True))
                    parts[r] = out
        except Exception:
            zeros = [tuple(map(tf.zeros_like, like))] * self.replicas.n
            self.replicas.all_reduce(zeros, failed=True)  # the others stop too
            raise
        parts = [tuple(map(tf.zeros_like, like)) if p is None else p for p in parts]
        return self.replicas.all_reduce(parts)

    def prepare(self, fit_intercept, alpha, coef_init, intercept_init, prior, tol):
        """Return the :class:`~skl_tfreg._core.Start` of a descent, from one pass.

        Its state is a :class:`~skl_tfreg._core.StreamDescent`.
        """
        dtype = self.dtype
        S = tf.cast(self.stats.S, dtype)  # these rows' weight, as in memory
        prior = _core.Moments(*map(tf.constant, prior))
        self._stats = self.stats  # the preconditioner's: these rows and those before
        if float(prior.S) > 0:
            self._stats = _core.merge_moments(prior, self.stats)
        self._setting = (tf.constant(bool(fit_intercept)), tf.constant(alpha, dtype), S)
        np_dtype = dtype.as_numpy_dtype
        empty = (np.zeros((0, self.n_features), np_dtype), np.zeros((0, self.n_targets), np_dtype))
        pb, finite = self._kernel(_core.chunk_problem)(
            *training_tensors(*empty, np.zeros(0, np_dtype)), self._stats, *self._setting
        )
        start = (tf.convert_to_tensor(a, dtype) for a in (coef_init, intercept_init))
        V = self._kernel(_core.stream_initial)(pb, *start)
        data = self._sum(_core.chunk_gradient, (V, V[0]), V)
        return self._kernel(_core.stream_start)(
            pb, self._stats, V, *data, tf.constant(tol, dtype), finite
        )

    def full_batch(self, pb, state, n_epochs, schedule, progress, tol, limit):
        """Run up to ``n_epochs`` full-batch epochs, one pass each, as :func:`_core.full_batch`.

        Each pass computes the gradient and J at V from the data, with ``H P``
        and ``P^T H P`` for the step along P.
        """
        V, J, G, P, best, n_bad = state
        eta0, power_t, t0 = (float(x) for x in schedule)
        step, advance = self._kernel(_core.stream_step), self._kernel(_core.stream_advance)
        refresh = self._kernel(_core.stream_gradient)
        P = _core.keep_downhill(pb, G, P)
        losses, status = [], Status.RUNNING.code
        for i in range(int(n_epochs)):
            sums = _core.ChunkProducts(*self._sum(_core.chunk_products, (V, J, V, J), V, P))
            eta = tf.constant(eta0 / (t0 + i + 1.0) ** power_t, self.dtype)
            out = step(pb, V, P, sums, progress.conjugate, eta, tol)
            G, J = out.G, out.J  # at V, from the data: also what a diverged epoch keeps
            G_new, J_new = out.G_new, out.J_new
            if bool(out.converged):  # trust the gradient rule only on a recomputed gradient
                G_new, J_new = refresh(pb, out.V_new, *self._sum(_core.chunk_gradient, (V, J),
                                                                 out.V_new))  # fmt: skip
            after = advance(
                pb, out.V_new, G, P, G_new, J_new, out.restart, out.converged, best, n_bad,
                progress, tol, limit,
            )  # fmt: skip
            status = int(after.status)
            if status == Status.DIVERGED.code:  # not taken: the caller may retry, smaller
                break
            V, J, G, P, best, n_bad = out.V_new, J_new, G_new, after.P, after.best, after.n_bad
            losses.append(float(after.objective))
            if status != Status.RUNNING.code:
                break
        units = self._kernel(_core.stream_units)(pb, V, G, J)
        state = _core.StreamDescent(V, J, G, P, best, n_bad)
        return _core.Epochs(state, tf.constant(losses, tf.float64), status, units)

    def epochs(self, random_state):
        """Yield, per epoch, the seed of its shuffles (reused when an epoch is retried).

        ``random_state`` is an int, None, a ``numpy.random.RandomState`` or a
        ``numpy.random.Generator``: the seeds are drawn from it.
        """
        if not isinstance(random_state, np.random.RandomState | np.random.Generator):
            random_state = np.random.RandomState(random_state)
        draw = getattr(random_state, "randint", None) or random_state.integers
        while True:
            yield [int(draw(np.iinfo(np.int32).max))]

    def minibatch_epoch(self, pb, V, batches, schedule, tol, average=None):
        """One epoch of mini-batch steps over the chunks, as :func:`_core.minibatch_epoch`.

        ``batches`` is ``[seed]`` from :meth:`epochs`. With an ``average`` the
        steps also average their iterates, as :func:`_core.averaged_epoch`.
        """
        rng = np.random.default_rng(batches[0])
        n_total = tf.constant(self.n_samples, self.dtype)
        fit_sums = tf.zeros([self.n_targets], self.dtype)
        G_sum, n_steps = tf.zeros_like(V), 0
        for _, chunk_pb, X in self._problems():
            order = list(iter_batches(X.shape[0], self.batch_size, shuffle=self.shuffle,
                                      random_state=rng))  # fmt: skip
            offsets = tf.constant(np.cumsum([0] + [len(b) for b in order]), tf.int64)
            chunk_schedule = schedule._replace(t0=schedule.t0 + tf.constant(n_steps, self.dtype))
            args = (chunk_pb, V, tf.constant(np.concatenate(order), tf.int64), offsets,
                    chunk_schedule, n_total)  # fmt: skip
            if average is None:
                sums = self._kernel(_core.minibatch_pass, X)(*args)
            else:
                sums, average = self._kernel(_core.averaged_pass, X)(*args, average)
            V, fit_sums, G_sum = sums.V, fit_sums + sums.fit_sums, G_sum + sums.G_sum
            n_steps += len(order)
        end = (pb, V, fit_sums, G_sum, tf.constant(max(n_steps, 1)), tol)
        if average is None:
            return self._kernel(_core.minibatch_end)(*end)
        return self._kernel(_core.averaged_end)(*end, average)

    def smoothness(self, pb):
        """Return :func:`_core.smoothness` of all the rows, from one pass of Gram matrices."""
        total = tf.zeros([self.n_features + 1] * 2, tf.float64)
        row = tf.zeros([], tf.float64)
        for _, chunk_pb, X in self._problems():
            gram, chunk_row = self._kernel(_core.chunk_gram, X)(chunk_pb)
            total, row = total + gram, tf.maximum(row, chunk_row)
        n_total = tf.constant(self.n_samples, self.dtype)
        curvature = self._kernel(_core.gram_smoothness)(pb, total, row, n_total)
        return _core.Curvature(*(float(t) for t in curvature))
