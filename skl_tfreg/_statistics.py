"""Full-batch training on sufficient statistics: one pass to summarise, one to check.

J is quadratic, so a full-batch fit needs only the weighted statistics of
``w = [x - shift_x, 1, y - shift_y]``: the augmented Gram matrix
``Gamma = sum_i s_i w_i w_i^T``, of size ``n_features + 1 + n_targets``. One pass
over the rows sums it, in float64, chunk by chunk (each chunk in row blocks, so
nothing of the size of X is ever copied); replicas and workers add theirs up in
one all-reduce. :func:`skl_tfreg._core.gram_solve` then finds the minimiser
from ``Gamma`` alone, in one compiled call: an eigendecomposition of the
(preconditioned) Hessian, a pseudo-inverse where rounding hides its smallest
eigenvalues, and, with ``alpha = 0``, the coefficients of least norm.

The statistics are rounded, and the normal equations square the condition
number, so the solution is checked against the data: each epoch is one more
pass that measures the gradient and J at the solution from the rows
themselves (:func:`skl_tfreg._core.chunk_gradient`, as a stream does), and, if
the gradient rule fails, takes the correction the statistics give for that
gradient (iterative refinement, :func:`skl_tfreg._core.gram_refine`). A fit
reads its rows twice: ``n_iter_`` is 1, and ``loss_curve_`` holds J measured on
the data.

Each replica sums its chunks about its own shift (its first chunk's means);
the replicas then agree on the global means (:meth:`ReplicaSet.combine`), move
their sums to them exactly, and add them up.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from . import _core
from ._status import Status
from ._streaming import LOCAL, Stream
from ._tensors import split_rows

__all__ = ["Statistics", "OneCall", "TooWide", "row_blocks", "cheaper", "one_call",
           "group_grams", "add_grams"]  # fmt: skip

#: ``precompute="auto"`` trains on statistics up to this many dense features, and on
#: sparse X of at most ``MAX_SPARSE_FEATURES`` features of which at least
#: ``MIN_SPARSE_DENSITY`` are stored: there the statistics cost less than the data
#: passes (``benchmarks/crossover.py``; docs/performance.md has the figures). Their
#: cost grows as ``n p^2``, the passes' as ``n p`` (or ``nnz``) per epoch.
MAX_FEATURES = 256
MAX_SPARSE_FEATURES = 64
MIN_SPARSE_DENSITY = 0.05
_DENSE_ELEMENTS = 2**20  # values per densified block of a sparse chunk (8 MiB)
_SHIFT_ROWS = 1024  # rows whose means shift a replica's sums


class TooWide(Exception):
    """The statistics would cost more than the data passes (raised before any sum)."""


def cheaper(X, width_only=False):
    """Whether the statistics cost less than the data passes on rows like ``X``.

    ``precompute="auto"``'s rule, from the first rows (or chunk) of the data.
    With ``width_only`` a sparse X is judged by its width alone: the workers of
    a ``tf.distribute`` strategy must decide alike, and each sees only its own
    rows' density.
    """
    n, p = X.shape
    if not sp.issparse(X):
        return p <= MAX_FEATURES
    dense_enough = width_only or X.nnz >= MIN_SPARSE_DENSITY * n * p
    return p <= MAX_SPARSE_FEATURES and dense_enough


def row_blocks(X, Y, sample_weight, n_shards=1):
    """Return the chunk source of arrays held in memory: one chunk per shard of rows.

    ``n_shards`` contiguous shards (views), one per local replica. A dense
    shard is shared with TensorFlow from its first aligned row
    (:func:`skl_tfreg._tensors.split_rows`), with no copy; a sparse one is
    densified in row blocks as it is read (:func:`_pieces`).
    """
    X = X.tocsr() if sp.issparse(X) else X
    bounds = np.linspace(0, X.shape[0], n_shards + 1).astype(int)
    pairs = zip(bounds[:-1], bounds[1:], strict=True)
    shards = [(X[a:b], Y[a:b], sample_weight[a:b]) for a, b in pairs]
    return lambda: iter(shards)


def _pieces(X, Y, s):
    """Yield the tensors of a chunk's dense pieces: itself, or row blocks of a sparse X.

    Each piece is ``(head, body, Y, s)``: X split at its first aligned row.
    """
    if sp.issparse(X):
        X = X.tocsr()
        rows = max(_DENSE_ELEMENTS // max(X.shape[1], 1), 256)
        parts = ((X[a : a + rows].toarray(), Y[a : a + rows], s[a : a + rows])
                 for a in range(0, X.shape[0], rows))  # fmt: skip
    else:
        parts = [(X, Y, s)]
    for X_part, Y_part, s_part in parts:
        head, body = split_rows(X_part)
        dtype = body.dtype
        yield head, body, tf.convert_to_tensor(Y_part, dtype), tf.convert_to_tensor(s_part, dtype)


def _shift(X, Y, s):
    """Return the shift of a chunk's columns: the mean of its first weighted rows, float64.

    Rows of weight 0 count for nothing, however large their values: a column
    constant on the weighted rows is shifted by exactly its value, so its sums
    of deviations are exactly 0. A column whose mean is within its spread of 0
    is not shifted (its squares cancel at most one bit), so that well-centred
    data is summed as it is.
    """
    rows = np.flatnonzero(s > 0)[:_SHIFT_ROWS]
    rows = rows if rows.size else np.arange(min(len(s), _SHIFT_ROWS))
    head = np.hstack([_dense(X[rows]), Y[rows]]).astype(np.float64)
    with np.errstate(all="ignore"):
        constant = np.all(head == head[0], axis=0)
        mean = head.mean(axis=0)
        mean = np.where(np.abs(mean) <= head.std(axis=0), 0.0, mean)
        return np.where(constant, head[0], mean)


def group_grams(X, Y, s, split, offset, n_groups):
    """Return one chunk's Gram matrix of each group of rows, and the shift it is about.

    ``split(X, Y, s, offset)`` yields each group's rows of the chunk (see
    :class:`Statistics`). Each group's rows are summed about their own shift
    (in the data's dtype: the kernel subtracts it there), in float64 numpy;
    both are None for a group without weight in the chunk.
    """
    grams, shifts = [None] * n_groups, [None] * n_groups
    dtype = tf.as_dtype(X.dtype)
    compute = _core.kernel(_core.chunk_statistics, dtype)
    for g, X_g, Y_g, s_g in split(X, Y, s, offset):
        if not s_g.sum() > 0:
            continue
        shift = _shift(X_g, Y_g, s_g).astype(X.dtype).astype(np.float64)
        p = X_g.shape[1]
        shift_x, shift_y = tf.constant(shift[:p]), tf.constant(shift[p:])
        pieces = _pieces(X_g, Y_g, s_g)
        grams[g] = sum(compute(*piece, shift_x, shift_y).numpy() for piece in pieces)
        shifts[g] = shift
    return grams, shifts


def add_grams(total, part, p):
    """Add ``part``'s group Gram matrices into ``total``'s, in place: both ``(grams, shifts)``.

    A group's sums are moved to the shift ``total`` holds for it (exactly, by
    :func:`skl_tfreg._core.reshift`), or ``total`` takes ``part``'s as they are.
    Returns ``total``.
    """
    grams, shifts = total
    for g, (gamma, shift) in enumerate(zip(*part, strict=True)):
        if gamma is None:
            continue
        if grams[g] is None:
            grams[g], shifts[g] = gamma, shift
        else:
            grams[g] = grams[g] + _reshift(gamma, shift, shifts[g], p)
    return total


def _whole(X, Y, s, offset):
    """Yield the chunk itself: the ``split`` of :class:`Statistics` with one group."""
    yield 0, X, Y, s


def _total(groups, shifts, base, p):
    """Return a replica's group Gram matrices summed about ``base``, or None if none."""
    present = [(g, shift) for g, shift in zip(groups, shifts, strict=True) if g is not None]
    if len(present) == 1 and present[0][1] is base:
        return present[0][0]
    moved = [g if shift is base else _reshift(g, shift, base, p) for g, shift in present]
    return sum(moved) if moved else None


def _dense(X):
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def _reshift(gamma, shift, centre, p):
    """:func:`skl_tfreg._core.reshift` on numpy arrays, as the kernels compile it."""
    args = (tf.constant(a, tf.float64) for a in (gamma, shift, centre))
    return _core.kernel(_core.reshifted, tf.float64)(*args, tf.constant(p)).numpy()


def _moments(gamma, shift, p):
    """:func:`skl_tfreg._core.gram_moments` on numpy arrays: Moments of numpy values."""
    compute = _core.kernel(_core.moments_of, tf.float64)
    moments = compute(tf.constant(gamma, tf.float64), tf.constant(shift), tf.constant(p))
    return _core.Moments(*(m.numpy() for m in moments))


class Statistics(Stream):
    """Full-batch training data summarised by its sufficient statistics.

    A :class:`skl_tfreg._streaming.Stream` (whose passes it uses to check the
    solution) whose first pass sums the augmented Gram matrix instead of the
    moments. Constructing it reads the rows once.

    Parameters
    ----------
    chunks : callable
        ``chunks()`` returns an iterator of validated chunks ``(X, Y, s)``, as
        for a Stream (:func:`row_blocks` for arrays in memory).
    replicas : ReplicaSet
        Where chunks are summed, and how the sums are added up.
    too_wide : callable or None
        ``too_wide(X)`` of the first chunk's X: if true, raise :class:`TooWide`
        before any sum or collective (``not cheaper(X)`` for ``precompute="auto"``).
    groups : tuple of (int, callable) or None
        ``(n_groups, split)`` to keep the Gram matrices of groups of rows apart
        (the folds of a cross-validation): ``split(X, Y, s, offset)`` yields
        ``(group, X_g, Y_g, s_g)`` for the rows of a chunk in each group, where
        ``offset`` counts the rows of the chunks before it. ``grams`` then holds
        one Gram matrix per group, each about its rows' mean (``anchors``), and
        ``gamma`` their sum about ``centre``. None: one group.
    """

    def __init__(self, chunks, *, replicas=LOCAL, too_wide=None, groups=None):
        self.chunks, self.replicas = chunks, replicas
        self.batch_size, self.shuffle, self.dtype = None, False, None
        n_groups, split = (1, _whole) if groups is None else groups
        n = replicas.n
        grams = [[None] * n_groups for _ in range(n)]
        shifts, counts = [[None] * n_groups for _ in range(n)], [0] * n
        self._seen = (0, 0.0)
        try:
            for index, (X, Y, s) in enumerate(chunks()):
                if self.dtype is None:
                    if too_wide is not None and too_wide(X):
                        raise TooWide(X.shape[1])
                    self.dtype = tf.as_dtype(X.dtype)
                    self.n_features, self.n_targets = X.shape[1], Y.shape[1]
                r = index % n
                X = X.tocsr() if sp.issparse(X) else X  # rows to take (COO has none)
                offset = self._seen[0]
                self._seen = (self._seen[0] + X.shape[0], self._seen[1] + float(s.sum()))
                counts[r] += X.shape[0]
                if not s.sum() > 0:  # no weight: nothing to add
                    continue
                with replicas.device(r):
                    part = group_grams(X, Y, s, split, offset, n_groups)
                add_grams((grams[r], shifts[r]), part, self.n_features)
            if self.dtype is None:
                raise ValueError("The stream yielded no batches: it has no rows to fit.")
        except TooWide:
            raise  # the first chunk, before any collective: every worker sees the same
        except Exception:
            replicas.combine([None] * n, counts, None, failed=True)  # the others stop too
            raise
        self._combine(grams, shifts, counts)

    def _combine(self, grams, shifts, counts):
        """Agree on the global means, move every replica's sums to them, add them up.

        ``grams[r][g]`` is replica ``r``'s Gram matrix of group ``g`` about
        ``shifts[r][g]`` (both None where it has no rows of weight). With one
        group, ``grams`` holds its matrix about ``centre``; with several, each
        group's about its own mean (``anchors[g]``), which keeps the digits of
        sums over rows far from the global mean (a fold's held-out error).
        """
        p, k = self.n_features, self.n_targets
        bases = [next((b for b in group if b is not None), None) for group in shifts]
        totals = [_total(groups, group, base, p) for groups, group, base
                  in zip(grams, shifts, bases, strict=True)]  # fmt: skip
        moments = [
            None if g is None else _moments(g, base, p)
            for g, base in zip(totals, bases, strict=True)
        ]
        layout = (p, k, self.dtype.size)
        stats, self.n_samples = self.replicas.combine(moments, counts, layout)
        centre = np.concatenate([np.asarray(stats.x_mean), np.asarray(stats.y_mean)])
        # A column constant on every row keeps its value exactly (every replica's shift
        # is that value), not the rounded global mean: its deviations stay exactly 0.
        spread = np.concatenate([np.asarray(stats.x_m2), np.asarray(stats.y_m2)])
        own = next((base for base in bases if base is not None), None)
        if own is not None:
            centre = np.where(spread == 0, own, centre)
        n_groups = len(grams[0])
        anchors = centre[None] if n_groups == 1 else self._anchors(grams, shifts, centre, spread)
        zeros = np.zeros((p + 1 + k, p + 1 + k))

        def moved(groups, group):
            pairs = zip(groups, group, anchors, strict=True)
            return np.stack([zeros if g is None else _reshift(g, b, a, p) for g, b, a in pairs])

        parts = [(tf.constant(moved(*pair)),) for pair in zip(grams, shifts, strict=True)]
        (self.grams,) = self.replicas.all_reduce(parts)  # one collective for every group
        self.anchors = anchors
        if n_groups == 1:
            self.gamma = self.grams[0]
        else:
            moved = _core.reshift(self.grams, tf.constant(anchors), tf.constant(centre), p)
            self.gamma = tf.reduce_sum(moved, 0)
        self.centre = centre
        self.stats = stats  # for a Stream's passes; prepare puts the statistics' own

    def _anchors(self, grams, shifts, centre, spread):
        """Return each group's mean over every replica (one all-reduce), float64.

        A group without weight, and a column constant everywhere, keep ``centre``.
        """
        p = self.n_features
        rows = []
        for groups, group in zip(grams, shifts, strict=True):
            sums = np.zeros((len(groups), centre.size + 1))
            for g, (gamma, shift) in enumerate(zip(groups, group, strict=True)):
                if gamma is not None:
                    S = gamma[p, p]
                    sums[g] = np.r_[S, np.delete(gamma[:, p], p) + S * shift]
            rows.append((tf.constant(sums),))
        (total,) = self.replicas.all_reduce(rows)
        total = total.numpy()
        S = total[:, :1]
        with np.errstate(divide="ignore", invalid="ignore"):
            means = total[:, 1:] / S
        return np.where((S > 0) & (spread != 0), means, centre)

    def select_targets(self, columns):
        """Return these statistics for the targets ``columns`` alone (a shallow copy).

        Its passes read the same chunks and keep those columns of Y.
        """
        other = copy.copy(self)
        p = self.n_features
        keep = np.r_[np.arange(p + 1), p + 1 + np.asarray(columns)]
        other.gamma = tf.gather(tf.gather(self.gamma, keep, axis=0), keep, axis=1)
        other.grams = tf.gather(tf.gather(self.grams, keep, axis=1), keep, axis=2)
        other.centre = np.r_[self.centre[:p], self.centre[p:][columns]]
        other.anchors = np.c_[self.anchors[:, :p], self.anchors[:, p:][:, columns]]
        other.n_targets = len(columns)
        chunks = self.chunks
        other.chunks = lambda: ((X, Y[:, columns], s) for X, Y, s in chunks())
        return other

    def overflowing(self):
        """Return the names of what overflows the statistics: columns, y, sample_weight.

        Empty when every statistic is finite.
        """
        p = self.n_features
        diag = np.diag(self.gamma.numpy())
        if not np.isfinite(diag[p]):
            return ["sample_weight"]
        bad = [f"column {j}" for j in np.flatnonzero(~np.isfinite(diag[:p]))]
        return bad + (["y"] if not np.all(np.isfinite(diag[p + 1 :])) else [])

    def prepare(self, fit_intercept, alpha, coef_init, intercept_init, prior, tol):
        """Return the :class:`~skl_tfreg._core.Start` at the statistics' minimiser.

        The start does not depend on ``coef_init`` and ``intercept_init``: the
        minimiser is found directly. ``prior`` must be empty: statistics do not
        accumulate over training calls here.
        """
        if float(prior[0]) > 0:
            raise ValueError("Statistics train each call on its own rows (no prior moments).")
        dtype = self.dtype
        p = self.n_features
        moments = _core.Moments(*map(tf.constant, _moments(self.gamma.numpy(), self.centre, p)))
        out = _core.kernel(_core.gram_solve, dtype)(
            self.gamma, moments, tf.constant(self.centre[:p]), tf.constant(self.centre[p:]),
            tf.constant(bool(fit_intercept)), tf.constant(alpha, dtype), tf.constant(tol, dtype),
        )  # fmt: skip
        self._factor = out.factor
        self._stats = out.start.moments
        S = tf.cast(out.start.moments.S, dtype)
        self._setting = (tf.constant(bool(fit_intercept)), tf.constant(alpha, dtype), S)
        return out.start

    def full_batch(self, pb, state, n_epochs, schedule, progress, tol, limit):
        """Run up to ``n_epochs`` checking passes, each refining V if the rule fails.

        Returns :class:`~skl_tfreg._core.Epochs` whose losses are J after each
        epoch: measured on the data when the rule holds, predicted after a
        correction otherwise.
        """
        V, J, G, P, best, n_bad = state
        losses, status, units = [], Status.RUNNING.code, None
        for _ in range(int(n_epochs)):
            out = self._epoch(pb, V, best, n_bad, progress, tol)
            V, J, G, best, n_bad, units = out.V, out.J, out.G, out.best, out.n_bad, out.units
            losses.append(float(out.objective))
            status = int(out.status)
            if status != Status.RUNNING.code:
                break
        if units is None:
            units = self._kernel(_core.stream_units)(pb, V, G, J)
        state = _core.StreamDescent(V, J, G, P, best, n_bad)
        return _core.Epochs(state, tf.constant(losses, tf.float64), status, units)

    def _epoch(self, pb, V, best, n_bad, progress, tol):
        """One checking pass at V and its refinement: a :class:`~skl_tfreg._core.GramEpoch`."""
        G_data, J_data = self._sum(_core.chunk_check, (V, V[0]), self._stats, *self._setting,
                                   V, chunks=self._tensors(_pieces))  # fmt: skip
        refine = _core.kernel(_core.gram_refine, self.dtype)
        return refine(pb, self._factor, V, G_data, J_data, best, n_bad, progress, tol)


class OneCall(Statistics):
    """Statistics of arrays in memory, summed, solved and checked in one compiled call.

    :class:`Statistics` of dense arrays of moderate size (:func:`one_call`):
    :meth:`prepare` runs :func:`skl_tfreg._core.gram_fit`, which also runs the
    first epoch, and :meth:`full_batch` hands that epoch out, where
    :class:`Statistics` takes seven calls. The numbers are the same, bit for
    bit. Constructing it reads nothing.

    Parameters
    ----------
    X, Y, s : ndarray
        Validated arrays: X dense, of at most ``ONE_CALL_ELEMENTS`` values,
        whose statistics cannot overflow (:func:`one_call` checks both).
    """

    def __init__(self, X, Y, s):
        self.chunks, self.replicas = row_blocks(X, Y, s), LOCAL
        self.batch_size, self.shuffle, self.dtype = None, False, tf.as_dtype(X.dtype)
        (self.n_samples, self.n_features), self.n_targets = X.shape, Y.shape[1]
        self._seen = (X.shape[0], float(s.sum()))
        self._arrays, self._ahead = (X, Y, s), None

    def overflowing(self):
        """Return ``[]``: :func:`one_call` takes only arrays whose statistics are finite."""
        return []

    def prepare(self, fit_intercept, alpha, coef_init, intercept_init, prior, tol):
        """Return the :class:`~skl_tfreg._core.Start` at the statistics' minimiser.

        As :meth:`Statistics.prepare`; the same call also runs the first epoch.
        """
        if float(prior[0]) > 0:
            raise ValueError("Statistics train each call on its own rows (no prior moments).")
        X, Y, s = self._arrays
        dtype, p = self.dtype, self.n_features
        shift = _shift(X, Y, s).astype(X.dtype).astype(np.float64)
        (head, body, Y, s), *_ = _pieces(X, Y, s)
        fit = _core.kernel(_core.gram_fit, dtype)(
            head, body, Y, s, tf.constant(shift[:p]), tf.constant(shift[p:]),
            tf.constant(bool(fit_intercept)), tf.constant(alpha, dtype), tf.constant(tol, dtype),
        )  # fmt: skip
        start = fit.solved.start
        self.gamma, self.centre = fit.gamma, fit.centre.numpy()
        self._factor, self.stats, self._stats = fit.solved.factor, start.moments, start.moments
        self._setting = (tf.constant(bool(fit_intercept)), tf.constant(alpha, dtype),
                         tf.cast(start.moments.S, dtype))  # fmt: skip
        self._ahead = (start.state.V, fit.epoch)
        return start

    def _epoch(self, pb, V, best, n_bad, progress, tol):
        """Return the epoch :meth:`prepare` ran, if asked for at its start; else run one."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and V is ahead[0] and int(n_bad) == 0:
            # gram_fit judged the first epoch's stall as a patience of FIT_PATIENCE does.
            same = int(progress.patience) >= _core.FIT_PATIENCE or int(ahead[1].n_bad) == 0
            if same:
                return ahead[1]
        return super()._epoch(pb, V, best, n_bad, progress, tol)


ONE_CALL_ELEMENTS = 2**20  # values of X up to which a fit on statistics is one call


def one_call(X, Y, s):
    """Return :class:`OneCall` statistics of validated arrays, or None where they do not fit.

    Dense X of at most ``ONE_CALL_ELEMENTS`` values (a few fold blocks), on
    which the statistics cannot overflow: with ``M`` the largest ``|x|``,
    ``|y|`` or 1, every term of the Gram matrix is at most ``(2 M)^2`` times the
    largest weight (a shift lies within the values), and ``n`` of them sum
    below the dtype's largest value. Larger or sparse arrays, and arrays near
    that limit, take :class:`Statistics`, which names what overflows.
    """
    if sp.issparse(X) or X.size > ONE_CALL_ELEMENTS:
        return None
    M = float(np.max([1.0, *(max(a.max(), -a.min()) for a in (X, Y) if a.size)]))  # or NaN
    terms = X.shape[0] * float(s.max(initial=0.0))
    limit = float(np.finfo(X.dtype).max) / 4
    if not 2.0 * M <= math.sqrt(limit / max(terms, 1.0)):  # also NaN and infinity
        return None
    return OneCall(X, Y, s)
