"""The TensorFlow kernel: objective, gradient steps and stopping tests, compiled.

Tensors in, tensors out; nothing here imports scikit-learn or knows about the
estimator, and nothing loops in Python: the driver (:mod:`skl_tfreg._training`)
calls these kernels. Every kernel has a shape-free input signature, so it is
traced once per dtype and reused by every later fit.

Mathematics
-----------
The objective, for the ``n_targets`` columns of ``Y`` (one term each), is::

    J(W, b) = sum_i s_i ||x_i W + b - y_i||^2 / sum_i s_i + alpha ||W||_F^2

Training runs in preconditioned coordinates. With ``mean`` the weighted column
means of the rows seen so far and ``d_j = sqrt(var_j + alpha)``, the rows are
``a_i = ((x_i - m) / d, 1)``, where ``m = mean`` with an intercept and ``m = 0``
without one, and the variables are ``V = (W * d, c)``: the last row ``c`` is
the intercept's offset from ``ybar - m.W`` (not penalised; 0 and frozen
without an intercept). On the data the moments came from, centring decouples
the intercept exactly: ``c`` stays 0, the intercept is the weighted mean of
``y`` at once (why the bias moves even on unscaled X), and the Hessian has
every diagonal entry equal to 2. On other rows (``partial_fit`` chunks) ``c``
trains like any coefficient. Without an intercept the Hessian carries the
rank-one term ``2 mu mu^T``, ``mu = mean / d``; the preconditioner
``M^-1 = I - mu mu^T / (1 + ||mu||^2)`` (Sherman-Morrison) removes it, so
column offsets cost nothing either. None of this changes the minimiser:
``coef`` and ``intercept`` come back in the caller's units. ``A`` is never
formed; products with it are computed from ``X`` itself (``X W - m W``), so no
copy of ``X`` is made, unless some column's offset is so far above its scale
(``_CENTRING_RATIO``) that the subtraction would cancel too many digits: then
``X - m`` is formed once. A constant column under an intercept gets
``1 / d = 0``: the intercept absorbs it and its coefficient is 0.

Steps
-----
Full batch: preconditioned conjugate-gradient directions with the exact
line-search step ``-g.p / p^T H p`` (Polak-Ribiere+), the step a quadratic
objective gives in closed form; or preconditioned steepest descent with the
step ``eta / (t + 1)^power_t`` (``power_t = 0`` for a constant step).
Mini-batches: ``V -= eta_t M^-1 g_B`` with an unbiased batch gradient and the
same step rule; :func:`smoothness` gives the data's curvature for an
automatic step.

Stopping
--------
Converged when ``sqrt(g^T M^-1 g) <= tol * sqrt(J)`` for every target: both
sides are in units of y, and the relative gap ``(J - J*) / J`` is at most about
``tol^2 / (2 lambda_min)``. A target whose ``J`` has fallen to ``(16 eps)^2``
times its value at ``coef = 0`` is fitted to rounding and has converged too (on
statistics, also within ``(16 eps)^2`` of the squared size of the residual's
centred terms).
A full-batch run also stops ("stalled") after ``patience`` epochs without
progress: the objective falling by more than ``rtol`` of itself, or, along
conjugate directions, the gradient norm falling by 1% (progress in flat
directions barely moves the objective).
"""

from __future__ import annotations

import collections
import functools
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from ._status import Status

__all__ = [
    # The types that cross the kernel boundary.
    "Problem", "Moments", "Units", "Descent", "StreamDescent", "Schedule", "Progress",
    "Start", "Epochs", "MinibatchEpoch", "MinibatchSums", "Curvature", "Gradient",
    "Preconditioned", "ChunkProducts", "StreamStep", "StreamAdvance",
    # Compiled entry points, each called through kernel(fn, dtype, sparse).
    "kernel", "trace_count", "prepare", "full_batch", "minibatch_epoch", "smoothness",
    "chunk_problem", "chunk_moments", "chunk_gradient", "chunk_products", "chunk_gram",
    "minibatch_pass", "minibatch_end", "stream_initial", "stream_start", "stream_gradient",
    "stream_step", "stream_advance", "stream_units", "gram_smoothness", "chunk_statistics",
    "gram_solve", "gram_refine", "chunk_check", "gram_fit", "Factor", "GramStart", "GramEpoch",
    "GramFit", "fold_path", "FoldPath",
    # Plain functions and constants shared with the data objects.
    "merge_moments", "keep_downhill", "gram_moments", "reshift", "moments_of", "reshifted",
    "ROUNDING_EPS", "EPS64",
    "FIT_PATIENCE",
]  # fmt: skip

RUNNING, CONVERGED, STALLED, DIVERGED, OVERFLOW = (
    s.code for s in (Status.RUNNING, Status.CONVERGED, Status.STALLED, Status.DIVERGED,
                     Status.OVERFLOW)
)  # fmt: skip
_BLOCK_ELEMENTS = 2**19  # temporaries of row-block folds: 2 or 4 MiB each
_SHIFT_ROWS = 1024  # rows whose mean shifts the data before its squares are summed
_POWER_ITERATIONS = 20
ROUNDING_EPS = 16  # relative changes below this many epsilons are rounding noise
_GRADIENT_PROGRESS = 0.99  # a new gradient-norm low must beat the old one by 1%

EPS64 = float(np.finfo(np.float64).eps)
# Centre X in a copy when a column's |mean| exceeds this many times its scale d:
# implicit centring would cancel about log10 of it in digits (of 16 and of 7).
_CENTRING_RATIO = {tf.float64: 1e3, tf.float32: 1e2}

_traces: collections.Counter[str] = collections.Counter()


def trace_count():
    """Return how many times the compiled kernels have been traced in this process."""
    return sum(_traces.values())


# ----------------------------------------------------------------------------
# What crosses the kernel boundary: every structure is a NamedTuple of tensors.


class Problem(NamedTuple):
    """The tensors every kernel reads: data, weights and the preconditioner."""

    X: tf.Tensor  # (n, p) the caller's data as given, or X - m when centred in a copy
    Yc: tf.Tensor  # (n, k) targets minus ybar
    s: tf.Tensor  # (n,) sample weights
    m: tf.Tensor  # (p,) centre of the rows: the weighted mean, or 0 without intercept
    shift: tf.Tensor  # (p,) what products subtract from X: m, or 0 once X is centred
    inv_d: tf.Tensor  # (p + 1,) 1 / d, then 1 for c (0 without intercept); 0 for a
    #   constant column under an intercept, which the intercept absorbs
    pen: tf.Tensor  # (p + 1,) penalty weights: inv_d^2, and 0 for c
    mu: tf.Tensor  # (p + 1,) mean / d without intercept (the rank-one term), else 0
    ybar: tf.Tensor  # (k,) weighted mean of y, or 0 without intercept
    J_null: tf.Tensor  # (k,) J at coef = 0: the scale of y that rounding is judged by
    S: tf.Tensor  # () sum of the weights of these rows
    alpha: tf.Tensor  # () the L2 penalty


class Moments(NamedTuple):
    """Weighted moments of every row trained on, float64 (merged across chunks)."""

    S: tf.Tensor  # () weight sum
    x_mean: tf.Tensor  # (p,)
    x_m2: tf.Tensor  # (p,) weighted sums of squared deviations
    y_mean: tf.Tensor  # (k,)
    y_m2: tf.Tensor  # (k,)


class Units(NamedTuple):
    """The iterate in the caller's units, and the size of its gradient."""

    coef: tf.Tensor  # (p, k)
    intercept: tf.Tensor  # (k,)
    grad_norm: tf.Tensor  # () largest per-target preconditioned gradient norm
    grad_ratio: tf.Tensor  # () largest norm / sqrt(J), what the gradient rule compares


class Descent(NamedTuple):
    """The state of a full-batch descent on data in memory, carried between calls."""

    V: tf.Tensor  # (p + 1, k) the variables in preconditioned coordinates
    R: tf.Tensor  # (n, k) the residual A V - Yc, updated with each step
    G: tf.Tensor  # (p + 1, k) the gradient of J at V
    P: tf.Tensor  # (p + 1, k) the search direction
    best: tf.Tensor  # (2,) lowest objective and lowest gradient norm so far
    n_bad: tf.Tensor  # () int32: epochs in a row without progress


class StreamDescent(NamedTuple):
    """:class:`Descent` of a stream: J at V stands where no pass can keep a residual."""

    V: tf.Tensor
    J: tf.Tensor  # (k,) J at V
    G: tf.Tensor
    P: tf.Tensor
    best: tf.Tensor
    n_bad: tf.Tensor


class Schedule(NamedTuple):
    """Step sizes: step ``i`` of a call takes ``eta / (t0 + i + 1)^power_t``."""

    eta: tf.Tensor  # ()
    power_t: tf.Tensor  # () 0 for a constant step
    t0: tf.Tensor  # () steps taken before this call


class Progress(NamedTuple):
    """The full-batch progress rule: what counts as progress, and how long to wait for it."""

    conjugate: tf.Tensor  # () bool: conjugate directions with exact steps
    rtol: tf.Tensor  # () a fall of the objective by more than rtol of itself is progress
    patience: tf.Tensor  # () int32: epochs without progress before a stall


class Start(NamedTuple):
    """What :func:`prepare` returns: the problem and the starting point of a descent."""

    problem: Problem
    moments: Moments  # of these rows merged with those trained on before
    state: Descent  # (a StreamDescent for a stream), with n_bad 0
    status: tf.Tensor  # () int32 Status.code: RUNNING, CONVERGED or OVERFLOW
    units: Units


class Epochs(NamedTuple):
    """What :func:`full_batch` returns after a run of epochs."""

    state: Descent  # (a StreamDescent for a stream)
    losses: tf.Tensor  # (epochs run,) J summed over targets after each epoch
    status: tf.Tensor  # () int32 Status.code
    units: Units


class MinibatchEpoch(NamedTuple):
    """What :func:`minibatch_epoch` returns."""

    V: tf.Tensor
    objective: tf.Tensor  # () the epoch's estimate of J, summed over targets
    converged: tf.Tensor  # () bool: the mean batch gradient meets tol
    units: Units
    n_steps: tf.Tensor  # () int32: steps (batches) taken


class MinibatchSums(NamedTuple):
    """What :func:`minibatch_pass` returns."""

    V: tf.Tensor  # after the steps
    fit_sums: tf.Tensor  # (k,) each batch's weighted squared error before its step, / S
    G_sum: tf.Tensor  # (p + 1, k) the sum of the batch gradients


class Average(NamedTuple):
    """Averaged SGD: the running mean of the mini-batch iterates, and when it starts.

    After each step whose rows bring ``seen`` to ``start`` or more, the new
    iterate joins the mean: ``A += (V - A) / count``. Before the first, ``A``
    is not read (the point reported is ``V``).
    """

    A: tf.Tensor  # (p + 1, k) the mean of the iterates averaged so far
    count: tf.Tensor  # () float64: iterates averaged
    seen: tf.Tensor  # () float64: rows stepped over so far
    start: tf.Tensor  # () float64: the row count from which iterates are averaged


class AveragedSums(NamedTuple):
    """What :func:`averaged_pass` returns."""

    sums: MinibatchSums
    average: Average


class AveragedEpoch(NamedTuple):
    """What :func:`averaged_epoch` returns: its ``epoch.units`` are the average's."""

    epoch: MinibatchEpoch
    average: Average


class Curvature(NamedTuple):
    """What :func:`smoothness` returns: the data's curvature, for the automatic step."""

    lam: tf.Tensor  # () largest eigenvalue of M^-1 H
    row: tf.Tensor  # () largest one-row curvature, scaled as a one-row batch gradient


class Gradient(NamedTuple):
    """The gradient of J and J itself, per target (or a chunk's shares of them)."""

    G: tf.Tensor  # (p + 1, k)
    J: tf.Tensor  # (k,)


class Preconditioned(NamedTuple):
    """A :class:`Problem`, and whether its preconditioner is finite."""

    problem: Problem
    finite: tf.Tensor  # () bool


class ChunkProducts(NamedTuple):
    """A chunk's shares of what a full-batch step of a stream needs, without the penalty."""

    G: tf.Tensor  # (p + 1, k) the gradient at V
    J: tf.Tensor  # (k,) J at V
    HP: tf.Tensor  # (p + 1, k) the Hessian times the direction
    curvature: tf.Tensor  # (k,) P^T H P


class StreamStep(NamedTuple):
    """What :func:`stream_step` returns."""

    G: tf.Tensor  # G and J at V, from the data
    J: tf.Tensor
    V_new: tf.Tensor  # V, G and J after the step
    G_new: tf.Tensor
    J_new: tf.Tensor
    restart: tf.Tensor  # (k,) bool: targets whose direction was not downhill
    converged: tf.Tensor  # () bool: the gradient rule holds after the step


class StreamAdvance(NamedTuple):
    """What :func:`stream_advance` returns."""

    P: tf.Tensor  # the next direction
    objective: tf.Tensor  # () J after the step, summed over targets
    best: tf.Tensor
    n_bad: tf.Tensor
    status: tf.Tensor  # () int32 Status.code
    units: Units


class _Specs:
    """The TensorSpecs that input signatures are written in, for one dtype.

    ``data`` is the spec of X: a ``tf.SparseTensorSpec`` in the sparse variant.
    """

    def __init__(self, dtype, sparse):
        self.mat = mat = tf.TensorSpec([None, None], dtype)
        self.data = tf.SparseTensorSpec([None, None], dtype) if sparse else mat
        self.vec = vec = tf.TensorSpec([None], dtype)
        self.num = num = tf.TensorSpec([], dtype)
        self.ints = tf.TensorSpec([None], tf.int64)
        self.count = count = tf.TensorSpec([], tf.int32)
        self.flag = flag = tf.TensorSpec([], tf.bool)
        self.flags = tf.TensorSpec([None], tf.bool)
        self.wide_mat = tf.TensorSpec([None, None], tf.float64)
        self.wide_num = wide_num = tf.TensorSpec([], tf.float64)
        self.wide_vec = wide = tf.TensorSpec([None], tf.float64)
        self.wide_mat3 = tf.TensorSpec([None, None, None], tf.float64)
        self.moments = Moments(wide_num, wide, wide, wide, wide)
        self.problem = Problem(self.data, mat, vec, vec, vec, vec, vec, vec, vec, vec, num, num)
        self.descent = Descent(mat, mat, mat, mat, vec, count)
        self.schedule = Schedule(num, num, num)
        self.progress = Progress(flag, num, count)
        self.average = Average(mat, wide_num, wide_num, wide_num)


def _compiled(signature):
    """Declare a compiled entry point; ``signature(specs)`` lists its input specs.

    The function is returned unchanged (while tracing, kernels call each other
    as plain Python); :func:`kernel` compiles it.
    """

    def declare(fn):
        fn.signature = signature
        return fn

    return declare


@functools.cache
def kernel(fn, dtype, sparse=False):
    """Return the concrete function of one entry point for one dtype, traced on first use.

    ``sparse`` selects the variant whose ``X`` is a ``tf.SparseTensor``. Input
    signatures are shape-free, so an entry point is traced once per dtype and
    reused by every later fit; :func:`trace_count` counts the traces.
    """

    @functools.wraps(fn)
    def counted(*args):
        _traces[fn.__name__] += 1
        return fn(*args)

    signature = fn.signature(_Specs(dtype, sparse))
    # A concrete function skips the per-call signature matching of tf.function.
    return tf.function(counted, autograph=False, input_signature=signature).get_concrete_function()


# ----------------------------------------------------------------------------
# Linear algebra with the implicit matrix A = [(X - 1 m^T) / d, 1].


def _is_sparse(X):
    """Whether ``X`` is a ``tf.SparseTensor`` (known while tracing: one trace each)."""
    return isinstance(X, tf.SparseTensor)


def _n_rows(X):
    """Return the number of rows of a dense or sparse ``X``, int64."""
    return X.dense_shape[0] if _is_sparse(X) else tf.shape(X, out_type=tf.int64)[0]


def _matmul(X, W, transpose=False):
    """``X @ W``, or ``X.T @ W``, for a dense or sparse ``X``; never densifies X.

    A dense ``X.T @ W`` is taken as ``(W.T @ X).T``: for the few columns of W
    Eigen runs that form about twice as fast.
    """
    if _is_sparse(X):
        return tf.sparse.sparse_dense_matmul(X, W, adjoint_a=transpose)
    if transpose:
        return tf.transpose(tf.matmul(W, X, transpose_a=True))
    return tf.matmul(X, W)


def _row_starts(X):
    """For a sparse X in row-major order, where each row's entries start (n + 1,)."""
    return tf.searchsorted(X.indices[:, 0], tf.range(_n_rows(X) + 1), "left", tf.int64)


def _take_rows(X, rows, starts):
    """Rows ``rows`` of X; for a sparse X, ``starts`` is :func:`_row_starts` of it."""
    if not _is_sparse(X):
        return tf.gather(X, rows)
    positions = tf.ragged.range(tf.gather(starts, rows), tf.gather(starts, rows + 1))
    flat = positions.flat_values
    indices = tf.stack([positions.value_rowids(), tf.gather(X.indices[:, 1], flat)], axis=1)
    shape = tf.stack([tf.size(rows, out_type=tf.int64), X.dense_shape[1]])
    return tf.SparseTensor(indices, tf.gather(X.values, flat), shape)


def _forward(pb, X, V):
    """Return ``A @ V`` for rows ``X`` of the problem, shape (n, k)."""
    W = V * pb.inv_d[:, None]
    return _matmul(X, W[:-1]) - tf.matmul(pb.shift[None, :], W[:-1]) + W[-1:]


def _backward(pb, X, U):
    """Return ``A.T @ U`` for rows ``X`` of the problem, shape (p + 1, k)."""
    total = tf.reduce_sum(U, axis=0)[None, :]
    XtU = _matmul(X, U, transpose=True) - pb.shift[:, None] * total
    return tf.concat([XtU, total], axis=0) * pb.inv_d[:, None]


def _penalty_gradient(pb, V):
    return 2.0 * pb.alpha * V * pb.pen[:, None]


def _penalty(pb, V):
    return pb.alpha * tf.reduce_sum(tf.square(V) * pb.pen[:, None], axis=0)


def _gradient(pb, V, R):
    """Gradient of J with respect to V, given the residual ``R = A V - Yc``."""
    return (2.0 / pb.S) * _backward(pb, pb.X, pb.s[:, None] * R) + _penalty_gradient(pb, V)


def _objective(pb, V, R):
    """J of each target, shape (k,), from V and its residual R."""
    return tf.reduce_sum(pb.s[:, None] * tf.square(R), axis=0) / pb.S + _penalty(pb, V)


def _split_along_mu(pb, G):
    """Split G into its part along mu and the rest: ``G = u (u.G) + G_perp``.

    Returns ``u`` (the unit vector of mu, or 0), ``u.G`` per target, ``G_perp``
    and ``1 / (1 + ||mu||^2)``. Writing ``M^-1`` with these parts avoids the
    cancellation of ``G - mu (mu.G) / (1 + ||mu||^2)`` when ``||mu||`` is large
    (column offsets far above their spread), which in float32 destroys the result.
    """
    size2 = tf.reduce_sum(tf.square(pb.mu))
    u = tf.math.divide_no_nan(pb.mu, tf.sqrt(size2))[:, None]
    along = tf.reduce_sum(u * G, axis=0)
    return u, along, G - u * along[None, :], 1.0 / (1.0 + size2)


def _precondition(pb, G):
    """Return ``M^-1 G`` with ``M = I + mu mu^T`` (Sherman-Morrison)."""
    u, along, perp, shrink = _split_along_mu(pb, G)
    return perp + shrink * u * along[None, :]


def _column_dot(A, B):
    return tf.reduce_sum(A * B, axis=0)


def _gradient_norm(pb, G):
    """Per-target preconditioned gradient norm ``sqrt(g^T M^-1 g)``, a sum of squares."""
    _, along, perp, shrink = _split_along_mu(pb, G)
    return tf.sqrt(tf.reduce_sum(tf.square(perp), axis=0) + shrink * tf.square(along))


def _converged(pb, V, G, J, tol, terms=False):
    """Whether every target meets the gradient rule, or fits y to rounding.

    Fitted to rounding: J at most ``(16 eps)^2`` times J at ``coef = 0``. With
    ``terms`` (the checking pass of the statistics, whose residuals are summed
    from the data in one product per block), J may instead be within
    ``(16 eps)^2`` of the squared size of the residual's centred terms,
    ``sum_j |V_j| + sqrt(J_null)``: an exact fit with large coefficients rounds
    at that size.
    """
    # A tensor of the data's dtype: numpy < 2 would promote a float32 scalar here.
    level = tf.constant((ROUNDING_EPS * np.finfo(pb.X.dtype.as_numpy_dtype).eps) ** 2, J.dtype)
    exact = J <= level * pb.J_null
    if terms:
        size = tf.reduce_sum(tf.abs(V[:-1]), axis=0) + tf.sqrt(pb.J_null)
        exact |= J <= level * tf.square(size)
    return tf.reduce_all((_gradient_norm(pb, G) <= tol * tf.sqrt(J)) | exact)


def _in_units(pb, V):
    """Return the coefficients and intercept of the point ``V`` in the caller's units."""
    scaled = V * pb.inv_d[:, None]
    W = scaled[:-1]
    return W, pb.ybar + scaled[-1] - tf.linalg.matvec(W, pb.m, transpose_a=True)


def _user_units(pb, V, G, J):
    """Return coefficients and intercept in the caller's units, and the gradient's size.

    The size is the largest per-target gradient norm and the largest ratio
    ``norm / sqrt(J)``, the quantity the stopping rule compares with ``tol``.
    """
    W, intercept = _in_units(pb, V)
    norms = _gradient_norm(pb, G)
    ratio = tf.reduce_max(tf.math.divide_no_nan(norms, tf.sqrt(J)))
    return Units(W, intercept, tf.reduce_max(norms), ratio)


def _step_size(eta, power_t, t0, i):
    """``eta / (t + 1)^power_t`` for step ``t = t0 + i``."""
    return eta / tf.pow(t0 + tf.cast(i, t0.dtype) + 1.0, power_t)


# ----------------------------------------------------------------------------
# Compiled kernels. Each Python body runs only while TensorFlow traces it.


def _fold_row_blocks(arrays, body, init, wide=True, elements=_BLOCK_ELEMENTS):
    """Fold ``acc = body(*blocks, acc)`` over row blocks of ``arrays``.

    With ``wide`` the blocks are cast to float64, for sums that float32 would
    round away. Blocks of ``elements`` values (at least 64 rows), taken one at
    a time, bound the temporaries to a few MiB whatever the size of X.
    """
    n = tf.shape(arrays[0])[0]
    width = tf.maximum(tf.shape(arrays[0])[1], 1)
    rows = tf.maximum(elements // width, 64)

    def step(start, acc):
        blocks = (a[start : start + rows] for a in arrays)
        if wide:
            blocks = (tf.cast(b, tf.float64) for b in blocks)
        return start + rows, body(*blocks, acc)

    return tf.while_loop(lambda start, _: start < n, step, (0, init), parallel_iterations=1)[1]


def _weighted_moments(X, Y, s):
    """Weighted moments (float64 :class:`Moments`) of the rows of X and Y.

    One pass over row blocks in the data's dtype, each block's sums added up in
    float64: the sums of the deviations from a shift, and of their squares, as
    matrix-vector products. The shift is the mean of the first rows (so that the
    squares do not cancel), or, for a column constant there, its first value: a
    constant column then has deviations of exactly 0, so its spread is exactly 0
    and its mean exactly its value. The moments only precondition the descent
    (the intercept's offset ``c`` absorbs any error in the means), so the
    dtype's precision per block suffices.
    """
    if _is_sparse(X):
        y_moments = _weighted_moments(tf.zeros([tf.shape(Y)[0], 0], Y.dtype), Y, s)
        x_mean, x_m2 = _sparse_column_moments(X, s)
        return y_moments._replace(x_mean=x_mean, x_m2=x_m2)
    dtype, wide = X.dtype, tf.float64
    p, k = tf.shape(X)[1], tf.shape(Y)[1]

    def shift(A):
        head = A[:_SHIFT_ROWS]
        constant = tf.equal(tf.reduce_min(head, axis=0), tf.reduce_max(head, axis=0))
        return tf.where(constant, A[0], tf.cast(tf.reduce_mean(tf.cast(head, wide), 0), dtype))

    x_shift, y_shift = shift(X), shift(Y)

    def f64(t):
        return tf.cast(t, wide)

    def weighted_sum(sb, D):
        return f64(tf.matmul(sb[None, :], D)[0])

    def deviations(Xb, Yb, sb, acc):
        Dx, Dy = Xb - x_shift, Yb - y_shift
        terms = (Dx, tf.square(Dx), Dy, tf.square(Dy))
        sums = tuple(a + weighted_sum(sb, D) for a, D in zip(acc[:4], terms, strict=True))
        return (*sums, acc[4] + f64(tf.reduce_sum(sb)))

    zeros_p, zeros_k = tf.zeros([p], wide), tf.zeros([k], wide)
    dx, dx2, dy, dy2, S = _fold_row_blocks(
        (X, Y, s), deviations, (zeros_p, zeros_p, zeros_k, zeros_k, tf.zeros([], wide)), False
    )

    return Moments(
        S=S,
        x_mean=f64(x_shift) + dx / S,
        x_m2=_spread(dx, dx2, S),
        y_mean=f64(y_shift) + dy / S,
        y_m2=_spread(dy, dy2, S),
    )


def _spread(d, d2, S):
    """Sum of squared deviations from the sums ``d`` and ``d2`` of deviations from a shift.

    Exactly 0 only for a constant column (``d2 = 0``); rounding cannot make a
    spread vanish otherwise.
    """
    return tf.where(tf.equal(d2, 0.0), d2, tf.maximum(d2 - tf.square(d) / S, EPS64 * d2))


def _sparse_column_moments(X, s):
    """Weighted means and sums of squared deviations of the columns of a sparse X.

    In float64, over the stored entries only (in canonical form: one per row and
    column), as deviations from a shift: each column's first stored value (0 for
    a column with none). A column's implicit zeros deviate by ``-shift``, with
    the weight of the rows that store nothing there, which is exactly 0 when
    every row stores a value. So a constant column, stored or not, has
    deviations of exactly 0: spread 0 and mean its value, as for dense X.
    """
    wide = tf.float64
    rows, cols = X.indices[:, 0], X.indices[:, 1]
    values, s = tf.cast(X.values, wide), tf.cast(s, wide)
    weights = tf.gather(s, rows)
    p = X.dense_shape[1]

    def per_column(t):
        return tf.math.unsorted_segment_sum(t, cols, p)

    first = tf.math.unsorted_segment_min(tf.range(tf.size(cols, out_type=tf.int64)), cols, p)
    present = first < tf.size(cols, out_type=tf.int64)  # columns with no entry get the max
    shift = tf.where(present, tf.gather(values, tf.where(present, first, 0)), 0.0)
    deviation = values - tf.gather(shift, cols)
    S = tf.reduce_sum(s)
    stored = per_column(tf.ones_like(values))
    implicit = tf.where(stored < tf.cast(X.dense_shape[0], wide), S - per_column(weights), 0.0)
    d = per_column(weights * deviation) - implicit * shift
    d2 = per_column(weights * tf.square(deviation)) + implicit * tf.square(shift)
    return shift + d / S, _spread(d, d2, S)


def merge_moments(a, b):
    """Moments of the union of two row sets (Chan et al.); ``a`` may be empty (S = 0)."""
    S = a.S + b.S
    share = b.S / S

    def mean_m2(mean_a, m2_a, mean_b, m2_b):
        delta = mean_b - mean_a
        return mean_a + delta * share, m2_a + m2_b + tf.square(delta) * a.S * share

    x_mean, x_m2 = mean_m2(a.x_mean, a.x_m2, b.x_mean, b.x_m2)
    y_mean, y_m2 = mean_m2(a.y_mean, a.y_m2, b.y_mean, b.y_m2)
    return Moments(S, x_mean, x_m2, y_mean, y_m2)


def _problem(X, Y, s, stats, fit_intercept, alpha, S):
    """Build the :class:`Problem` of rows ``X, Y, s`` under the moments ``stats``.

    ``S`` is the weight sum that the gradient is normalised by: these rows' own,
    or that of all the rows of a stream when ``X`` is one of its chunks.
    """
    dtype = X.dtype
    x_var, y_var = stats.x_m2 / stats.S, stats.y_m2 / stats.S
    mean, var, ybar, yvar = (tf.cast(t, dtype) for t in (stats.x_mean, x_var, stats.y_mean, y_var))
    # A constant column with alpha = 0 is scaled by its size (it then acts like an
    # intercept column when there is none), or by 1 if it is all zeros.
    d = tf.sqrt(var + alpha)
    d = tf.where(d > 0, d, tf.where(mean != 0, tf.abs(mean), tf.ones_like(mean)))
    zeros = tf.zeros_like(mean)
    one = tf.ones([1], dtype)
    c_scale = tf.where(fit_intercept, one, tf.zeros_like(one))
    # Centring is implicit (X W - m W) unless a column's offset is so far above its
    # spread that the subtraction would cancel more digits than allowed: then X is
    # centred once, in a copy. A sparse X is never centred: that would densify it.
    explicit = fit_intercept & tf.reduce_any(tf.abs(mean) > _CENTRING_RATIO[dtype] * d)
    if _is_sparse(X):
        explicit = tf.constant(False)
    else:
        X = tf.cond(explicit, lambda: X - mean, lambda: X)
    # J at coef = 0 (and the intercept at its optimum): the variance of y, or its mean
    # square without an intercept.
    J_null = tf.where(fit_intercept, yvar, yvar + tf.square(ybar))
    ybar = tf.where(fit_intercept, ybar, tf.zeros_like(ybar))
    inv_d = tf.concat([tf.where(fit_intercept & tf.equal(var, 0), zeros, 1.0 / d), c_scale], 0)
    problem = Problem(
        X=X,
        Yc=Y - ybar[None, :],
        s=s,
        m=tf.where(fit_intercept, mean, zeros),
        shift=tf.where(fit_intercept & ~explicit, mean, zeros),
        inv_d=inv_d,
        pen=tf.concat([tf.square(inv_d[:-1]), tf.zeros([1], dtype)], 0),
        mu=tf.concat([tf.where(fit_intercept, zeros, mean / d), tf.zeros([1], dtype)], 0),
        ybar=ybar,
        J_null=J_null,
        S=S,
        alpha=alpha,
    )
    return Preconditioned(problem, tf.reduce_all(tf.math.is_finite(tf.concat([mean, d], 0))))


def _initial(pb, coef_init, intercept_init):
    """Scaled variables ``V`` of a start in the caller's units (see :func:`prepare`)."""
    offset = intercept_init - pb.ybar + tf.linalg.matvec(coef_init, pb.m, transpose_a=True)
    offset = tf.where(tf.math.is_finite(intercept_init), offset, tf.zeros_like(offset))
    return tf.concat(
        [tf.math.divide_no_nan(coef_init, pb.inv_d[:-1, None]), pb.inv_d[-1] * offset[None]], 0
    )


def _start(pb, V, G, J, tol, finite):
    """Status, progress reference and first direction of a descent from ``V``."""
    finite = tf.stack([finite, *(tf.reduce_all(tf.math.is_finite(t)) for t in (pb.ybar, G, J))])
    status = tf.where(_converged(pb, V, G, J, tol), CONVERGED, RUNNING)
    status = tf.where(tf.reduce_all(finite), status, OVERFLOW)
    best = tf.stack([tf.reduce_sum(J), tf.reduce_max(_gradient_norm(pb, G))])
    return -_precondition(pb, G), best, status, _user_units(pb, V, G, J)


def keep_downhill(pb, G, P):
    """Return P where it points downhill from gradient G, steepest descent elsewhere.

    A carried direction (warm start, ``partial_fit``) was chosen on another
    gradient: it must still point downhill.
    """
    return tf.where((_column_dot(G, P) < 0)[None, :], P, -_precondition(pb, G))


# ----------------------------------------------------------------------------
# Compiled entry points on data in memory. Each Python body runs only while
# TensorFlow traces it.


@_compiled(lambda t: [t.data, t.mat, t.vec, t.flag, t.num, t.mat, t.vec, t.moments, t.num])
def prepare(X, Y, s, fit_intercept, alpha, coef_init, intercept_init, prior, tol):
    """Build the problem and the starting :class:`Start` of the descent.

    The preconditioner comes from the moments of these rows merged into
    ``prior`` (the rows trained on before; ``prior.S = 0`` for none). The start
    is ``coef_init`` with the intercept that is exact for the centre, or
    ``intercept_init`` where it is finite (a warm start). One blocked pass over X
    for the moments, one for the residual and one for the gradient (and one to
    centre X in a copy, when it must be).
    """
    chunk = _weighted_moments(X, Y, s)
    stats = merge_moments(prior, chunk)
    pb, finite = _problem(X, Y, s, stats, fit_intercept, alpha, tf.cast(chunk.S, X.dtype))
    V = _initial(pb, coef_init, intercept_init)
    R = _forward(pb, pb.X, V) - pb.Yc
    G = _gradient(pb, V, R)
    J = _objective(pb, V, R)
    P, best, status, units = _start(pb, V, G, J, tol, finite)
    return Start(pb, stats, Descent(V, R, G, P, best, tf.constant(0)), status, units)


def _line_step(G, P, curvature, conjugate, eta):
    """Step along P: the exact minimiser of a quadratic, or the rule's ``eta``."""
    exact = tf.math.divide_no_nan(-_column_dot(G, P), curvature)
    return tf.where(conjugate, exact, eta * tf.ones_like(exact))


def _next_direction(G, Z, G_new, Z_new, P, conjugate, restart=None):
    """Polak-Ribiere+ direction after a step (or steepest descent), always downhill.

    Where ``restart`` (a boolean per target, if given), the direction is
    steepest descent.
    """
    beta = tf.math.divide_no_nan(_column_dot(Z_new, G_new - G), _column_dot(Z, G))
    keep = conjugate if restart is None else conjugate & ~restart
    beta = tf.where(keep, tf.maximum(beta, 0.0), tf.zeros_like(beta))
    P = -Z_new + beta[None, :] * P
    # Restart from steepest descent wherever P stopped being a descent direction.
    return tf.where((_column_dot(G_new, P) < 0)[None, :], P, -Z_new)


def _judge(pb, V, G_new, J, best, n_bad, progress, tol, limit):
    """Progress and status after an epoch: (objective, best, n_bad, status, diverged)."""
    objective = tf.reduce_sum(J)
    # best = (lowest objective, lowest gradient norm). Along conjugate directions
    # the objective may stop changing in flat directions while the gradient still
    # falls, which is progress.
    grad = tf.reduce_max(_gradient_norm(pb, G_new))
    improved = (objective < best[0] - progress.rtol * tf.abs(best[0])) | (
        progress.conjugate & (grad < best[1] * _GRADIENT_PROGRESS)
    )
    n_bad = tf.where(improved, 0, n_bad + 1)
    best = tf.minimum(best, tf.stack([objective, grad]))
    status = tf.where(_converged(pb, V, G_new, J, tol), CONVERGED, RUNNING)
    status = tf.where(n_bad >= progress.patience, STALLED, status)
    # A diverging epoch is not taken: the caller keeps the state from before it, so
    # that it can retry the epoch with a smaller step.
    diverged = ~(tf.math.is_finite(objective) & (objective <= limit))
    return objective, best, n_bad, tf.where(diverged, DIVERGED, status), diverged


@_compiled(lambda t: [t.problem, t.descent, t.count, t.schedule, t.progress, t.num, t.num])
def full_batch(pb, state, n_epochs, schedule, progress, tol, limit):
    """Run up to ``n_epochs`` full-gradient steps in one graph, stopping by rule.

    ``state`` (a :class:`Descent`) is returned updated, so a fit can run in
    chunks. Conjugate directions with exact steps (``progress.conjugate``), or
    steepest descent with the steps of ``schedule``; the progress rule of the
    module docstring. An epoch whose objective exceeds ``limit`` (or is not
    finite) ends the run as DIVERGED without being taken: the state and the
    losses returned are those before it.
    """
    conjugate = progress.conjugate
    V, R, G, P, best, n_bad = state
    # Grown as epochs run: a size of n_epochs would reserve max_iter slots up front.
    objectives = tf.TensorArray(pb.X.dtype, size=0, dynamic_size=True)
    P = keep_downhill(pb, G, P)

    def refresh(V, P):
        # The updated residual drifts by rounding: recompute it before trusting it.
        R = _forward(pb, pb.X, V) - pb.Yc
        G, J = _gradient(pb, V, R), _objective(pb, V, R)
        Z_new = _precondition(pb, G)
        return R, G, Z_new, tf.where(_converged(pb, V, G, J, tol), P, -Z_new), J

    def step(i, V_old, R_old, G, P_old, best_old, n_bad_old, objectives, status):
        Z = _precondition(pb, G)
        Q = _forward(pb, pb.X, P_old)
        curvature = (2.0 / pb.S) * _column_dot(pb.s[:, None] * Q, Q) + 2.0 * _penalty(pb, P_old)
        eta = _line_step(G, P_old, curvature, conjugate, _step_size(*schedule, i))
        V = V_old + eta[None, :] * P_old
        R = R_old + eta[None, :] * Q
        G_new = _gradient(pb, V, R)
        Z_new = _precondition(pb, G_new)
        J = _objective(pb, V, R)
        R, G_new, Z_new, P, J = tf.cond(
            _converged(pb, V, G_new, J, tol),
            lambda: refresh(V, P_old),
            lambda: (R, G_new, Z_new, P_old, J),
        )
        P = _next_direction(G, Z, G_new, Z_new, P, conjugate)
        objective, best, n_bad, status, diverged = _judge(
            pb, V, G_new, J, best_old, n_bad_old, progress, tol, limit
        )
        objectives = objectives.write(i, objective)
        kept = [tf.where(diverged, old, new) for old, new in zip(
            (V_old, R_old, G, P_old, best_old, n_bad_old), (V, R, G_new, P, best, n_bad),
            strict=True,
        )]  # fmt: skip
        return (tf.where(diverged, i, i + 1), *kept, objectives, status)

    i, V, R, G, P, best, n_bad, objectives, status = tf.while_loop(
        lambda i, *state: (i < n_epochs) & tf.equal(state[-1], RUNNING),
        step,
        (0, V, R, G, P, best, n_bad, objectives, RUNNING),
    )
    units = _user_units(pb, V, G, _objective(pb, V, R))
    return Epochs(Descent(V, R, G, P, best, n_bad), objectives.stack()[:i], status, units)


def _minibatch_steps(pb, V, order, offsets, schedule, n_total, average=None):
    """Take the steps of :func:`minibatch_pass` (of :func:`averaged_pass` with an ``average``)."""
    dtype = pb.X.dtype
    n_batches = tf.shape(offsets)[0] - 1
    starts = _row_starts(pb.X) if _is_sparse(pb.X) else None

    def step(j, V, fit_sums, G_sum, *averaged):
        rows = order[offsets[j] : offsets[j + 1]]
        Xb = _take_rows(pb.X, rows, starts)
        Yb, sb = tf.gather(pb.Yc, rows), tf.gather(pb.s, rows)
        Rb = _forward(pb, Xb, V) - Yb
        # n / (n_b S) makes the batch gradient an unbiased estimate of the full one.
        scale = 2.0 * n_total / (tf.cast(tf.shape(rows)[0], dtype) * pb.S)
        Gb = scale * _backward(pb, Xb, sb[:, None] * Rb) + _penalty_gradient(pb, V)
        fit_sums += tf.reduce_sum(sb[:, None] * tf.square(Rb), axis=0) / pb.S
        V = V - _step_size(*schedule, j) * _precondition(pb, Gb)
        if averaged:
            A, count, seen = averaged
            seen += tf.cast(tf.shape(rows)[0], tf.float64)
            on = seen >= average.start
            count += tf.cast(on, tf.float64)
            weight = tf.cast(1.0 / tf.maximum(count, 1.0), dtype)
            averaged = (tf.where(on, A + weight * (V - A), A), count, seen)
        return (j + 1, V, fit_sums, G_sum + Gb, *averaged)

    state = (0, V, tf.zeros([tf.shape(V)[1]], dtype), tf.zeros_like(V))
    if average is not None:
        state += (average.A, average.count, average.seen)
    _, V, fit_sums, G_sum, *averaged = tf.while_loop(lambda j, *_: j < n_batches, step, state)
    sums = MinibatchSums(V, fit_sums, G_sum)
    if average is None:
        return sums
    return AveragedSums(sums, Average(*averaged, average.start))


@_compiled(lambda t: [t.problem, t.mat, t.ints, t.ints, t.schedule, t.num])
def minibatch_pass(pb, V, order, offsets, schedule, n_total):
    """Mini-batch steps over the rows of ``pb``; batch j is ``order[offsets[j]:offsets[j+1]]``.

    Step j takes ``schedule.eta / (schedule.t0 + j + 1)^schedule.power_t``.
    ``n_total`` is the number of rows of the whole data set (more than these when
    they are one chunk of a stream), which with ``pb.S`` scales a batch's gradient
    into an unbiased estimate of the full one. Returns V, each batch's weighted
    squared error before its step summed over batches and divided by ``pb.S``
    (per target), and the sum of the batch gradients.
    """
    return _minibatch_steps(pb, V, order, offsets, schedule, n_total)


@_compiled(lambda t: [t.problem, t.mat, t.ints, t.ints, t.schedule, t.num, t.average])
def averaged_pass(pb, V, order, offsets, schedule, n_total, average):
    """:func:`minibatch_pass`, also averaging the iterates into ``average`` (averaged SGD)."""
    return _minibatch_steps(pb, V, order, offsets, schedule, n_total, average)


def _averaged_point(V, average):
    """Return the point an averaged fit reports: the mean once it holds an iterate, else V."""
    return tf.where(average.count > 0, average.A, V)


@_compiled(lambda t: [t.problem, t.mat, t.vec, t.mat, t.count, t.num])
def minibatch_end(pb, V, fit_sums, G_sum, n_batches, tol):
    """Return an epoch's J estimate (summed over targets), gradient test and coefficients.

    J is the batches' squared errors plus the penalty at the end; the gradient
    is the mean of the ``n_batches`` batch gradients.
    """
    J = fit_sums + _penalty(pb, V)
    G = G_sum / tf.cast(n_batches, V.dtype)
    units = _user_units(pb, V, G, J)
    return MinibatchEpoch(V, tf.reduce_sum(J), _converged(pb, V, G, J, tol), units, n_batches)


@_compiled(lambda t: [t.problem, t.mat, t.vec, t.mat, t.count, t.num, t.average])
def averaged_end(pb, V, fit_sums, G_sum, n_batches, tol, average):
    """:func:`minibatch_end` of an averaged epoch: the coefficients are the average's.

    The objective estimate and the gradient test stay those of the iterates
    (as SGDRegressor's stopping rule reads its plain iterates' losses).
    """
    epoch = minibatch_end(pb, V, fit_sums, G_sum, n_batches, tol)
    W, intercept = _in_units(pb, _averaged_point(V, average))
    units = epoch.units._replace(coef=W, intercept=intercept)
    return AveragedEpoch(epoch._replace(units=units), average)


@_compiled(lambda t: [t.problem, t.mat, t.ints, t.ints, t.schedule, t.num])
def minibatch_epoch(pb, V, order, offsets, schedule, tol):
    """One epoch of mini-batch steps over the rows of ``pb`` (see :func:`minibatch_pass`).

    Returns a :class:`MinibatchEpoch`: V; the epoch's estimate of J (each
    batch's weighted squared error before its step, summed and divided by S,
    plus the penalty at the end), summed over targets; whether the mean batch
    gradient meets ``tol``; and the coefficients in the caller's units.
    """
    n_total = tf.cast(_n_rows(pb.X), pb.X.dtype)
    V, fit_sums, G_sum = minibatch_pass(pb, V, order, offsets, schedule, n_total)
    return minibatch_end(pb, V, fit_sums, G_sum, tf.shape(offsets)[0] - 1, tol)


@_compiled(lambda t: [t.problem, t.mat, t.ints, t.ints, t.schedule, t.num, t.average])
def averaged_epoch(pb, V, order, offsets, schedule, tol, average):
    """:func:`minibatch_epoch` with averaged SGD: an :class:`AveragedEpoch`."""
    n_total = tf.cast(_n_rows(pb.X), pb.X.dtype)
    sums, average = averaged_pass(pb, V, order, offsets, schedule, n_total, average)
    return averaged_end(pb, *sums, tf.shape(offsets)[0] - 1, tol, average)


def _power_iteration(pb, hessian):
    """Largest eigenvalue of ``M^-1 H``, with ``hessian(v)`` the data part of ``H v``."""
    dtype = pb.inv_d.dtype
    p1 = tf.shape(pb.inv_d)[0]

    def power(i, v, lam):
        w = _precondition(pb, hessian(v)) + _precondition(pb, _penalty_gradient(pb, v))
        lam = tf.norm(w)
        return i + 1, tf.math.divide_no_nan(w, lam), lam

    v0 = tf.ones([p1, 1], dtype) / tf.sqrt(tf.cast(p1, dtype))
    _, _, lam = tf.while_loop(
        lambda i, *_: i < _POWER_ITERATIONS, power, (0, v0, tf.zeros([], dtype))
    )
    return lam


def _row_norm_max(pb):
    """Largest ``s_i a_i^T M^-1 a_i`` over the rows of ``pb``, in float64.

    ``a^T M^-1 a = ||a||^2 - (a.mu)^2 / (1 + ||mu||^2)``, in float64 blocks: with
    large column offsets the difference cancels most digits.
    """
    wide = tf.float64
    shift, inv_d, mu = (tf.cast(t, wide) for t in (pb.shift, pb.inv_d, pb.mu))
    shrink = 1.0 + tf.reduce_sum(tf.square(mu))
    if _is_sparse(pb.X):
        X = tf.SparseTensor(pb.X.indices, tf.cast(pb.X.values, wide), pb.X.dense_shape)
        X2 = tf.SparseTensor(X.indices, tf.square(X.values), X.dense_shape)
        scale2 = tf.square(inv_d[:-1])

        def products(M, v):
            return tf.sparse.sparse_dense_matmul(M, v[:, None])[:, 0]

        norms = products(X2, scale2) - 2.0 * products(X, scale2 * shift)
        norms += tf.reduce_sum(scale2 * tf.square(shift)) + tf.square(inv_d[-1])
        along = products(X, inv_d[:-1] * mu[:-1]) - tf.reduce_sum(shift * inv_d[:-1] * mu[:-1])
        norms -= tf.square(along) / shrink
        return tf.reduce_max(tf.concat([tf.cast(pb.s, wide) * norms, [0.0]], 0))

    def row_max(Xb, sb, acc):
        A = (Xb - shift) * inv_d[:-1]
        norms = tf.reduce_sum(tf.square(A), axis=1) + tf.square(inv_d[-1])
        norms -= tf.square(tf.linalg.matvec(A, mu[:-1])) / shrink
        return tf.maximum(acc, tf.reduce_max(sb * norms))

    return _fold_row_blocks((pb.X, pb.s), row_max, tf.zeros([], wide))


def _smoothness_bound(pb, row, n_total, S_total):
    """Return the largest one-row curvature, scaled as a one-row batch gradient."""
    wide = tf.float64
    reg = tf.reduce_max(2.0 * pb.alpha * pb.pen)
    scale = 2.0 * tf.cast(n_total, wide) / tf.cast(S_total, wide)
    return tf.cast(scale * row, pb.inv_d.dtype) + reg


@_compiled(lambda t: [t.problem])
def smoothness(pb):
    """Largest eigenvalue of ``M^-1 H`` (power iteration) and the largest one-row one."""

    def hessian(v):
        return (2.0 / pb.S) * _backward(pb, pb.X, pb.s[:, None] * _forward(pb, pb.X, v))

    lam = _power_iteration(pb, hessian)
    return Curvature(lam, _smoothness_bound(pb, _row_norm_max(pb), _n_rows(pb.X), pb.S))


# ----------------------------------------------------------------------------
# Entry points of a stream: the data arrive in chunks, one pass per epoch. The
# data object sums the chunks' products; these kernels take the steps from the sums.


@_compiled(lambda t: [t.data, t.mat, t.vec, t.moments, t.flag, t.num, t.num])
def chunk_problem(X, Y, s, stats, fit_intercept, alpha, S):
    """Return the :class:`Preconditioned` problem of one chunk under the stream's moments."""
    return _problem(X, Y, s, stats, fit_intercept, alpha, S)


@_compiled(lambda t: [t.data, t.mat, t.vec])
def chunk_moments(X, Y, s):
    """Weighted :class:`Moments` of one chunk (see :func:`_weighted_moments`)."""
    return _weighted_moments(X, Y, s)


@_compiled(lambda t: [t.problem, t.mat])
def chunk_gradient(pb, V):
    """Return a chunk's :class:`Gradient`: its shares of G and J, without the penalty."""
    R = _forward(pb, pb.X, V) - pb.Yc
    G = (2.0 / pb.S) * _backward(pb, pb.X, pb.s[:, None] * R)
    return Gradient(G, tf.reduce_sum(pb.s[:, None] * tf.square(R), axis=0) / pb.S)


@_compiled(lambda t: [t.problem, t.mat, t.mat])
def chunk_products(pb, V, P):
    """Return a chunk's :class:`ChunkProducts`: G and J at V, ``H P`` and ``P^T H P``.

    One read of the chunk gives the gradient at the current point and the
    curvature along the direction: the step needs both.
    """
    k = tf.shape(V)[1]
    # One product with [V, P] and one with [sR, sQ]: two reads of X, as in memory.
    both = _forward(pb, pb.X, tf.concat([V, P], 1))
    R, Q = both[:, :k] - pb.Yc, both[:, k:]
    sR, sQ = pb.s[:, None] * R, pb.s[:, None] * Q
    GH = (2.0 / pb.S) * _backward(pb, pb.X, tf.concat([sR, sQ], 1))
    return ChunkProducts(
        GH[:, :k], _column_dot(sR, R) / pb.S, GH[:, k:], (2.0 / pb.S) * _column_dot(sQ, Q)
    )


@_compiled(lambda t: [t.problem])
def chunk_gram(pb):
    """Return a chunk's ``A^T diag(s) A`` in float64 and its largest one-row curvature."""
    wide = tf.float64
    A = (tf.cast(pb.X, wide) - tf.cast(pb.shift, wide)) * tf.cast(pb.inv_d[:-1], wide)
    A = tf.concat([A, tf.fill([tf.shape(A)[0], 1], tf.cast(pb.inv_d[-1], wide))], 1)
    gram = tf.matmul(A, tf.cast(pb.s, wide)[:, None] * A, transpose_a=True)
    return gram, _row_norm_max(pb)


@_compiled(lambda t: [t.problem, t.mat, t.vec])
def stream_initial(pb, coef_init, intercept_init):
    """Return the scaled variables of a start in the caller's units (:func:`_initial`)."""
    return _initial(pb, coef_init, intercept_init)


def _with_penalty(pb, V, G_data, J_data):
    """Return the :class:`Gradient` at V from the data's shares summed over the chunks."""
    return Gradient(G_data + _penalty_gradient(pb, V), J_data + _penalty(pb, V))


@_compiled(lambda t: [t.problem, t.moments, t.mat, t.mat, t.vec, t.num, t.flag])
def stream_start(pb, stats, V, G_data, J_data, tol, finite):
    """Return the :class:`Start` of a descent from V, its state a :class:`StreamDescent`.

    G and J come from the chunks' sums of :func:`chunk_gradient`.
    """
    G, J = _with_penalty(pb, V, G_data, J_data)
    P, best, status, units = _start(pb, V, G, J, tol, finite)
    return Start(pb, stats, StreamDescent(V, J, G, P, best, tf.constant(0)), status, units)


@_compiled(lambda t: [t.problem, t.mat, t.mat, t.vec])
def stream_gradient(pb, V, G_data, J_data):
    """Return the :class:`Gradient` at V from the chunks' sums of :func:`chunk_gradient`."""
    return _with_penalty(pb, V, G_data, J_data)


@_compiled(lambda t: [t.problem, t.mat, t.mat, ChunkProducts(t.mat, t.vec, t.mat, t.vec), t.flag,
                      t.num, t.num])  # fmt: skip
def stream_step(pb, V, P, products, conjugate, eta, tol):
    """One full-batch step from ``products``, the chunks' sums of :func:`chunk_products`.

    G and J at V come from the data; J is quadratic, so along P
    ``J(V + t P) = J + t g.P + t^2 P^T H P / 2`` and ``g(V + t P) = g + t H P``.
    A target for which P does not point downhill (the direction was chosen on
    the previous pass's estimate of this gradient) takes no step and restarts
    from steepest descent. Returns a :class:`StreamStep`; the data object
    recomputes G and J from the data before it trusts the gradient rule, as
    :func:`full_batch` recomputes the residual.
    """
    G, J = _with_penalty(pb, V, products.G, products.J)
    downhill = _column_dot(G, P) < 0
    curvature = products.curvature + 2.0 * _penalty(pb, P)
    step = _line_step(G, P, curvature, conjugate, eta)
    step = tf.where(downhill, step, tf.zeros_like(step))
    V_new = V + step[None, :] * P
    G_new = G + step[None, :] * (products.HP + _penalty_gradient(pb, P))
    J_new = J + step * _column_dot(G, P) + 0.5 * tf.square(step) * curvature
    converged = _converged(pb, V_new, G_new, J_new, tol)
    return StreamStep(G, J, V_new, G_new, J_new, ~downhill, converged)


@_compiled(lambda t: [t.problem, t.mat, t.mat, t.mat, t.mat, t.vec, t.flags, t.flag, t.vec,
                      t.count, t.progress, t.num, t.num])  # fmt: skip
def stream_advance(pb, V, G, P, G_new, J, restart, refreshed, best, n_bad, progress, tol, limit):
    """Return the next direction and the stopping tests after :func:`stream_step`.

    The direction restarts from steepest descent for the targets in ``restart``,
    and for all of them where ``refreshed`` (G and J were recomputed) and the
    gradient rule no longer holds. Returns a :class:`StreamAdvance`.
    """
    Z, Z_new = _precondition(pb, G), _precondition(pb, G_new)
    restart = restart | (refreshed & ~_converged(pb, V, G_new, J, tol))
    P = _next_direction(G, Z, G_new, Z_new, P, progress.conjugate, restart)
    objective, best, n_bad, status, _ = _judge(pb, V, G_new, J, best, n_bad, progress, tol,
                                               limit)  # fmt: skip
    return StreamAdvance(P, objective, best, n_bad, status, _user_units(pb, V, G_new, J))


@_compiled(lambda t: [t.problem, t.mat, t.mat, t.vec])
def stream_units(pb, V, G, J):
    """:class:`Units` of V, as :func:`_user_units`."""
    return _user_units(pb, V, G, J)


@_compiled(lambda t: [t.problem, t.wide_mat, t.wide_num, t.num])
def gram_smoothness(pb, gram, row, n_total):
    """:func:`smoothness` of a stream, from its Gram matrix and largest row."""
    wide = tf.float64

    def hessian(v):
        return tf.cast((2.0 / tf.cast(pb.S, wide)) * tf.matmul(gram, tf.cast(v, wide)), v.dtype)

    return Curvature(_power_iteration(pb, hessian), _smoothness_bound(pb, row, n_total, pb.S))


# ----------------------------------------------------------------------------
# Entry points on sufficient statistics. J is quadratic, so a full-batch fit
# needs only the weighted statistics of w = [x - shift_x, 1, y - shift_y]:
# the augmented Gram matrix Gamma = sum_i s_i w_i w_i^T, (p + 1 + k)-square,
# float64, which chunks, replicas and workers combine by addition. The shift
# (a mean of some rows) keeps large column offsets from cancelling in it.


class Factor(NamedTuple):
    """The Hessian of J from the statistics, in preconditioned coordinates, factored.

    ``J(V) = sum_targets (V^T K V - 2 V^T b) + const`` and ``H = 2 K``.
    """

    K: tf.Tensor  # (p + 1, p + 1) float64, the Hessian / 2
    vectors: tf.Tensor  # (p + 1, p + 1) float64 eigenvectors of K
    inverse: tf.Tensor  # (p + 1,) float64 1 / eigenvalue, 0 where rounding hides it (pinv)
    project: tf.Tensor  # (p, p) float64: onto the coefficients of least norm (alpha = 0)
    complete: tf.Tensor  # () bool: no eigenvalue dropped beyond the frozen coordinates


class GramStart(NamedTuple):
    """What :func:`gram_solve` returns: the :class:`Start` at the statistics' solution."""

    start: Start  # its state a StreamDescent; status RUNNING or OVERFLOW
    factor: Factor


class GramEpoch(NamedTuple):
    """What :func:`gram_refine` returns after a pass has measured G and J at V."""

    V: tf.Tensor  # V, or V plus the correction when the gradient rule fails
    J: tf.Tensor  # (k,) J there: measured, or predicted by the quadratic
    G: tf.Tensor  # (p + 1, k) the gradient there, likewise
    objective: tf.Tensor  # () J summed over targets
    best: tf.Tensor
    n_bad: tf.Tensor
    status: tf.Tensor  # () int32 Status.code
    units: Units


_RANK_EPS = 4.0  # eigenvalues of K below this many epsilons of its largest, times p + 1,
#   are rounding: the minimiser takes no step along them (a pseudo-inverse)
_REFINEMENT_PROGRESS = 0.5  # a refinement pass must halve the measured gradient norm


_STATISTICS_ELEMENTS = 2**18  # values of X per row block of the statistics' pass
_CHECK_ELEMENTS = 2**20  # ... and of the checking pass (products with a few columns)


def _fold_split(head, body, others, fn, init, elements=_STATISTICS_ELEMENTS):
    """Fold ``acc = fn(Xb, *other_blocks, acc)`` over fixed row blocks of ``[head; body]``.

    X arrives split at its first 64-byte aligned row, so that TensorFlow shares
    ``body`` with numpy instead of copying it (``head`` holds the rows before,
    fewer than 64). The blocks lie at fixed rows of the whole (multiples of a
    size that depends on the width alone), so the sums, rounding included, do
    not depend on where X lies in memory; a block is small enough to stay in
    cache while its products are taken.
    """
    first = tf.shape(head)[0]
    n = first + tf.shape(body)[0]
    rows = tf.maximum(elements // tf.maximum(tf.shape(body)[1], 1), 64)

    def step(start, acc):
        Xb = body[start - first : start + rows - first]
        return start + rows, fn(Xb, *(a[start : start + rows] for a in others), acc)

    # The first block takes the head's rows; the others are slices of body.
    Xb = tf.concat([head, body[: rows - first]], axis=0)
    acc = fn(Xb, *(a[:rows] for a in others), init)
    return tf.while_loop(lambda start, _: start < n, step, (rows, acc), parallel_iterations=4)[1]


@_compiled(lambda t: [t.mat, t.mat, t.mat, t.vec, t.wide_vec, t.wide_vec])
def chunk_statistics(head, body, Y, s, shift_x, shift_y):
    """Return the augmented Gram matrix of one dense chunk about ``(shift_x, shift_y)``.

    The chunk's X is ``[head; body]`` (:func:`_fold_split`). Each row block's
    product is taken in the data's dtype (float32 runs at twice float64's
    speed) and the blocks' products are added up in float64: what a block's
    rounding leaves, the checking pass and its refinement remove.
    """
    wide, dtype = tf.float64, body.dtype
    q = tf.shape(body)[1] + 1 + tf.shape(Y)[1]
    cx, cy = tf.cast(shift_x, dtype), tf.cast(shift_y, dtype)

    def add(Xb, Yb, sb, acc):
        root = tf.sqrt(sb)[:, None]
        W = tf.concat([Xb - cx, tf.ones_like(root), Yb - cy], axis=1) * root
        return acc + tf.cast(tf.matmul(W, W, transpose_a=True), wide)

    def add_direct(Xb, Yb, sb, acc):
        # X needs no shift and the weights are equal: the block's products as it is.
        Z = tf.concat([tf.ones_like(Yb[:, :1]), Yb - cy], axis=1)
        XZ = _matmul(Xb, Z, transpose=True)
        top = tf.concat([tf.matmul(Xb, Xb, transpose_a=True), XZ], axis=1)
        bottom = tf.concat([tf.transpose(XZ), tf.matmul(Z, Z, transpose_a=True)], axis=1)
        return acc + tf.cast(tf.concat([top, bottom], axis=0), wide) * tf.cast(sb[0], wide)

    # (On no rows the min and max are +inf and -inf: not direct.)
    direct = tf.reduce_all(tf.equal(cx, 0.0)) & tf.equal(tf.reduce_min(s), tf.reduce_max(s))
    zeros = tf.zeros([q, q], wide)
    return tf.cond(
        direct,
        lambda: _fold_split(head, body, (Y, s), add_direct, zeros),
        lambda: _fold_split(head, body, (Y, s), add, zeros),
    )


@_compiled(lambda t: [t.mat, t.mat, t.mat, t.vec, t.moments, t.flag, t.num, t.num, t.mat])
def chunk_check(head, body, Y, s, stats, fit_intercept, alpha, S, V):
    """Return a chunk's :class:`Gradient` at V under ``stats`` (shares, without the penalty).

    :func:`chunk_gradient` over the fixed row blocks of ``[head; body]``
    (:func:`_fold_split`), with the problem's preconditioner built in the same
    call. Where the moments call for centring X in a copy, each block is.
    """
    dtype, k = body.dtype, tf.shape(V)[1]
    empty = tf.zeros([0, tf.shape(body)[1]], dtype), tf.zeros([0, k], dtype), tf.zeros([0], dtype)
    pb, _ = _problem(*empty, stats, fit_intercept, alpha, S)
    centre = pb.m - pb.shift  # the mean where X is centred in a copy, else 0

    # A V - Yc = X W - (shift W - c - ybar) - Y: W once, per block one product each way;
    # A^T U = [(X^T U - shift 1^T U), 1^T U] / d, completed after the blocks.
    scaled = V * pb.inv_d[:, None]
    W, offset = scaled[:-1], tf.matmul(pb.shift[None, :], scaled[:-1]) - scaled[-1:] - pb.ybar

    def add(Xb, Yb, sb, acc):
        R = tf.matmul(Xb, W) - offset - Yb
        sR = sb[:, None] * R
        UtX, total, J = acc
        UtX += tf.matmul(sR, Xb, transpose_a=True)
        return UtX, total + tf.reduce_sum(sR, 0), J + _column_dot(sR, R)

    def add_centred(Xb, Yb, sb, acc):
        return add(Xb - centre, Yb, sb, acc)

    def fold(fn):
        zeros = (tf.transpose(tf.zeros_like(V[:-1])), tf.zeros([k], dtype), tf.zeros([k], dtype))
        return lambda: _fold_split(head, body, (Y, s), fn, zeros, elements=_CHECK_ELEMENTS)

    UtX, total, J = tf.cond(tf.reduce_all(tf.equal(centre, 0.0)), fold(add), fold(add_centred))
    XtU = tf.transpose(UtX) - pb.shift[:, None] * total[None, :]
    G = tf.concat([XtU, total[None, :]], axis=0) * pb.inv_d[:, None]
    return Gradient((2.0 / pb.S) * G, J / pb.S)


def _data_hessian(pb, gamma, shift_x, shift_y):
    """``K_data = A^T diag(s) A / S``, ``b = A^T diag(s) Yc / S`` and ``Yc^T diag(s) Yc / S``.

    ``a = T z`` for ``z = [x - shift_x, 1]``: ``T`` scales the columns and moves
    them from the shift to the centre ``m``.
    """
    wide = tf.float64
    p = tf.shape(shift_x)[0]
    inv_d, m, ybar = (tf.cast(t, wide) for t in (pb.inv_d, pb.m, pb.ybar))
    S = gamma[p, p]
    ix = inv_d[:-1]
    T = tf.linalg.diag(inv_d)
    T = tf.concat([T[:, :-1], tf.concat([-ix * (m - shift_x), inv_d[-1:]], 0)[:, None]], 1)
    Gz, sums_z = gamma[: p + 1, : p + 1], gamma[: p + 1, p]
    dy = ybar - shift_y
    Gzy = gamma[: p + 1, p + 1 :] - sums_z[:, None] * dy[None, :]
    K = tf.matmul(T, tf.matmul(Gz, T, transpose_b=True)) / S
    b = tf.matmul(T, Gzy) / S
    yy = (tf.linalg.diag_part(gamma[p + 1 :, p + 1 :]) - 2.0 * gamma[p, p + 1 :] * dy) / S
    return 0.5 * (K + tf.transpose(K)), b, yy + tf.square(dy)


def _least_norm(pb, factor, V):
    """V with the coefficients of least norm among those of the same J (alpha = 0).

    The directions K cannot see (dependent columns, more features than rows)
    leave J unchanged; in the caller's units ``W = V / d`` they are projected
    out, as ``LinearRegression`` and ``Ridge(alpha=0)`` do.
    """
    wide = tf.float64
    ix = tf.cast(pb.inv_d[:-1], wide)[:, None]
    W = tf.matmul(factor.project, ix * tf.cast(V[:-1], wide))
    rows = tf.where(ix > 0, tf.math.divide_no_nan(W, ix), tf.cast(V[:-1], wide))
    return tf.concat([tf.cast(rows, V.dtype), V[-1:]], 0)


def _solve(factor, rhs):
    """``K^+ rhs`` from the eigendecomposition, float64."""
    U = factor.vectors
    return tf.matmul(U, factor.inverse[:, None] * tf.matmul(U, rhs, transpose_a=True))


@_compiled(lambda t: [t.wide_mat, t.moments, t.wide_vec, t.wide_vec, t.flag, t.num, t.num])
def gram_solve(gamma, stats, shift_x, shift_y, fit_intercept, alpha, tol):
    """Return the :class:`GramStart` of a fit: the minimiser of J from the statistics.

    The problem and its preconditioner are those of the data-pass descent
    (:func:`_problem`, from ``stats``: the moments of the rows of ``gamma``), so
    ``V`` means the same.
    ``K`` is factored by a symmetric eigendecomposition: eigenvalues hidden by
    rounding are dropped (a pseudo-inverse), and with ``alpha = 0`` the
    coefficients are those of least norm. G and J come from the statistics
    (J with the cancellation of the normal equations), so the status is
    RUNNING: a pass over the data measures them before the rule is trusted.
    """
    wide = tf.float64
    dtype = tol.dtype
    p, k = tf.shape(shift_x)[0], tf.shape(shift_y)[0]
    empty = tf.zeros([0, p], dtype), tf.zeros([0, k], dtype), tf.zeros([0], dtype)
    pb, finite = _problem(*empty, stats, fit_intercept, alpha, tf.cast(stats.S, dtype))
    finite = finite & tf.reduce_all(tf.math.is_finite(gamma))
    K_data, b, yy = _data_hessian(pb, gamma, shift_x, shift_y)
    K = K_data + tf.linalg.diag(tf.cast(alpha * pb.pen, wide))
    K = tf.where(finite, K, tf.eye(p + 1, dtype=wide))  # eigh of NaN raises
    b = tf.where(finite, b, tf.zeros_like(b))
    values, vectors = tf.linalg.eigh(K)
    cutoff = _RANK_EPS * EPS64 * tf.cast(p + 1, wide) * tf.reduce_max(tf.abs(values))
    kept = values > cutoff
    inverse = tf.where(kept, 1.0 / tf.where(kept, values, 1.0), 0.0)
    # Without a penalty, the coefficients of least norm: the unseen directions of K,
    # in the caller's units, are projected out. Frozen coordinates (inv_d = 0) are
    # unseen too, but no direction of the coefficients: the eigenvectors that lie
    # on them (whose rounding would otherwise name a direction) are left out.
    free = tf.cast(pb.inv_d > 0, wide)[:, None]
    on_free = tf.reduce_sum(tf.square(vectors * free), axis=0) > 0.5
    unseen = tf.cast(pb.inv_d[:-1], wide)[:, None] * vectors[:-1]
    unseen *= tf.cast(~kept & on_free, wide)
    eye = tf.eye(p, dtype=wide)
    project = tf.cond(
        tf.equal(alpha, 0.0) & tf.reduce_any(~kept),
        lambda: eye - tf.matmul(unseen, tf.linalg.pinv(unseen)),
        lambda: eye,
    )
    # Coordinates with inv_d = 0 (c without an intercept, constant columns) are frozen:
    # K is 0 on them, and dropping them loses nothing.
    frozen = tf.reduce_sum(tf.cast(tf.equal(pb.inv_d, 0.0), tf.int32))
    complete = tf.reduce_sum(tf.cast(~kept, tf.int32)) <= frozen
    factor = Factor(K, vectors, inverse, project, complete)
    V = _least_norm(pb, factor, tf.cast(_solve(factor, b), dtype))
    G, J = _quadratic(factor, b, yy, V)
    P, _, status, units = _start(pb, V, G, J, tol, finite)
    status = tf.where(tf.equal(status, OVERFLOW), OVERFLOW, RUNNING)
    best = tf.fill([2], tf.constant(np.inf, dtype))  # the first measured gradient is progress
    state = StreamDescent(V, J, G, tf.zeros_like(P), best, tf.constant(0))
    return GramStart(Start(pb, stats, state, status, units), factor)


def _quadratic(factor, b, yy, V):
    """G and J at V from the statistics (J cancels to about eps times J at 0)."""
    Vw = tf.cast(V, tf.float64)
    KV = tf.matmul(factor.K, Vw)
    G = 2.0 * (KV - b)
    J = _column_dot(Vw, KV) - 2.0 * _column_dot(Vw, b) + yy
    return tf.cast(G, V.dtype), tf.cast(tf.maximum(J, 0.0), V.dtype)


@_compiled(lambda t: [t.problem, Factor(t.wide_mat, t.wide_mat, t.wide_vec, t.wide_mat, t.flag),
                      t.mat, t.mat, t.vec, t.vec, t.count, t.progress, t.num])  # fmt: skip
def gram_refine(pb, factor, V, G_data, J_data, best, n_bad, progress, tol):
    """One refinement epoch, after a pass has measured G and J at V (without the penalty).

    If the gradient rule holds, V is the answer (CONVERGED). Otherwise take the
    step the statistics give, ``-K^+ G / 2`` (iterative refinement: it removes
    the error of a solve from rounded statistics), and predict G and J after it;
    a step that would lower J by at most its rounding (``ROUNDING_EPS``
    epsilons of J, per target), at a gradient within ``ROUNDING_EPS sqrt(eps)``
    of ``sqrt(J)``, leaves V as close to the optimum as the dtype can hold it
    (CONVERGED too), unless the pseudo-inverse dropped directions (the step is
    then blind to them).
    The measured gradient norm must halve from one pass to the next; after
    ``progress.patience`` passes (at most 2) that do not, rounding is the floor
    (STALLED).
    """
    G, J = _with_penalty(pb, V, G_data, J_data)
    step = -0.5 * _solve(factor, tf.cast(G, tf.float64))
    V_new = _least_norm(pb, factor, V + tf.cast(step, V.dtype))
    step = tf.cast(V_new - V, tf.float64)
    KS = tf.matmul(factor.K, step)
    change = _column_dot(tf.cast(G, tf.float64), step) + _column_dot(step, KS)  # J_new - J
    # A step that would lower J by no more than its rounding cannot improve V in this
    # dtype: V is the optimum as the dtype holds it (if the factor sees every direction).
    eps = np.finfo(V.dtype.as_numpy_dtype).eps
    rounding = -change <= ROUNDING_EPS * eps * tf.cast(J, tf.float64)
    # ... and only where the gradient is that of rounding too (at most 16 sqrt(eps)
    # relative): a correction lost for another reason must not end the fit.
    small = _gradient_norm(pb, G) <= ROUNDING_EPS * np.sqrt(eps) * tf.sqrt(J)
    converged = _converged(pb, V, G, J, tol, terms=True)
    converged |= factor.complete & tf.reduce_all(rounding & small)
    G_new = G + tf.cast(2.0 * KS, G.dtype)
    J_new = J + tf.cast(change, J.dtype)
    V_new, G_new, J_new = (tf.where(converged, a, b) for a, b in ((V, V_new), (G, G_new),
                                                                 (J, J_new)))  # fmt: skip
    grad = tf.reduce_max(_gradient_norm(pb, G))
    improved = grad < best[1] * _REFINEMENT_PROGRESS
    n_bad = tf.where(improved, 0, n_bad + 1)
    best = tf.stack([tf.minimum(best[0], tf.reduce_sum(J)), tf.minimum(best[1], grad)])
    finite = tf.reduce_all(tf.math.is_finite(J_new)) & tf.reduce_all(tf.math.is_finite(G_new))
    status = tf.where(n_bad >= tf.minimum(progress.patience, 2), STALLED, RUNNING)
    status = tf.where(converged, CONVERGED, tf.where(finite, status, DIVERGED))
    objective = tf.reduce_sum(J_new)
    units = _user_units(pb, V_new, G_new, tf.maximum(J_new, 0.0))
    return GramEpoch(V_new, J_new, G_new, objective, best, n_bad, status, units)


# ----------------------------------------------------------------------------
# The statistics' moments, and a whole fit on statistics in one call.


def gram_moments(gamma, shift, p):
    """Return the :class:`Moments` of the rows whose augmented Gram matrix is ``gamma``.

    ``gamma`` sums ``w w^T`` for ``w = [x - shift_x, 1, y - shift_y]`` (float64,
    ``p`` features). The sums of squared deviations are exactly 0 for a column
    of deviations 0.
    """
    S = gamma[p, p]
    sums, squares = gamma[:, p], tf.linalg.diag_part(gamma)
    spread = tf.maximum(squares - tf.square(sums) / S, EPS64 * squares)
    spread = tf.where(tf.equal(squares, 0.0), tf.zeros_like(spread), spread)
    mean = shift + tf.concat([sums[:p], sums[p + 1 :]], 0) / S
    spread = tf.concat([spread[:p], spread[p + 1 :]], 0)
    return Moments(S, mean[:p], spread[:p], mean[p:], spread[p:])


def reshift(gamma, shift, centre, p):
    """``gamma`` of ``w = [x - shift_x, 1, y - shift_y]`` moved to the shift ``centre``.

    ``w' = w + delta`` with ``delta = shift - centre`` (0 in the place of the
    1), so ``Gamma' = Gamma + g delta^T + delta g^T + S delta delta^T`` with
    ``g = Gamma[:, p]``: exact algebra on float64 sums.
    """
    delta = shift - centre  # (..., p + k): a stack of matrices moves each by its own
    delta = tf.concat([delta[..., :p], tf.zeros_like(delta[..., :1]), delta[..., p:]], -1)
    g, S = gamma[..., :, p], gamma[..., p, p]
    outer = g[..., :, None] * delta[..., None, :]
    square = S[..., None, None] * (delta[..., :, None] * delta[..., None, :])
    return gamma + outer + tf.linalg.matrix_transpose(outer) + square


@_compiled(lambda t: [t.wide_mat, t.wide_vec, t.count])
def moments_of(gamma, shift, p):
    """:func:`gram_moments` compiled, as it is inside :func:`gram_fit`.

    TensorFlow's graph optimizer may order a sum of several terms otherwise than
    eager execution does; compiled alike, the two paths agree bit for bit.
    """
    return gram_moments(gamma, shift, p)


@_compiled(lambda t: [t.wide_mat, t.wide_vec, t.wide_vec, t.count])
def reshifted(gamma, shift, centre, p):
    """:func:`reshift` compiled, as it is inside :func:`gram_fit` (see :func:`moments_of`)."""
    return reshift(gamma, shift, centre, p)


class GramFit(NamedTuple):
    """What :func:`gram_fit` returns: the statistics, the solve and the first epoch."""

    gamma: tf.Tensor  # (p + 1 + k, p + 1 + k) float64, about centre
    centre: tf.Tensor  # (p + k,) float64: the rows' means (a constant column's exact value)
    solved: GramStart
    epoch: GramEpoch  # a pass that measures G and J at the solution, and its refinement


# gram_fit runs the first epoch as a patience of 2 or more would: gram_refine reads
# min(patience, 2), and a first epoch stalls under a patience of 1 only if the
# gradient did not halve (the data object then runs that epoch again).
FIT_PATIENCE = 2


@_compiled(lambda t: [t.mat, t.mat, t.mat, t.vec, t.wide_vec, t.wide_vec, t.flag, t.num, t.num])
def gram_fit(head, body, Y, s, shift_x, shift_y, fit_intercept, alpha, tol):
    """Sum the statistics of one chunk, solve, and check the solution, in one call.

    A fit on the statistics of arrays in memory, where
    :class:`skl_tfreg._statistics.Statistics` takes seven calls with numpy
    between them: :func:`chunk_statistics` about ``(shift_x, shift_y)``, the
    move to the rows' means (:func:`moments_of`, :func:`reshifted`, then
    :func:`moments_of` again), :func:`gram_solve`, and the first epoch
    (:func:`chunk_check`, :func:`gram_refine`). The same operations, compiled
    alike: the numbers are the same, bit for bit.
    """
    p = tf.shape(body)[1]
    gamma = chunk_statistics(head, body, Y, s, shift_x, shift_y)
    shift = tf.concat([shift_x, shift_y], 0)
    own = gram_moments(gamma, shift, p)
    # A column constant on every row keeps its exact value: its deviations stay 0.
    spread = tf.concat([own.x_m2, own.y_m2], 0)
    centre = tf.where(tf.equal(spread, 0.0), shift, tf.concat([own.x_mean, own.y_mean], 0))
    gamma = reshift(gamma, shift, centre, p)
    stats = gram_moments(gamma, centre, p)
    solved = gram_solve(gamma, stats, centre[:p], centre[p:], fit_intercept, alpha, tol)
    start = solved.start
    V, S = start.state.V, tf.cast(stats.S, body.dtype)
    G_data, J_data = chunk_check(head, body, Y, s, stats, fit_intercept, alpha, S, V)
    progress = Progress(tf.constant(True), tf.zeros([], body.dtype), tf.constant(FIT_PATIENCE))
    epoch = gram_refine(start.problem, solved.factor, V, G_data, J_data, start.state.best,
                        start.state.n_bad, progress, tol)  # fmt: skip
    return GramFit(gamma, centre, solved, epoch)


# ----------------------------------------------------------------------------
# Cross-validation over a grid of alphas, from the folds' statistics.


class FoldPath(NamedTuple):
    """What :func:`fold_path` returns, float64."""

    mse: tf.Tensor  # (n_alphas, n_folds, n_targets) weighted held-out mean squared error
    coef: tf.Tensor  # (n_alphas, n_folds, p, n_targets) each fold's coefficients
    intercept: tf.Tensor  # (n_alphas, n_folds, n_targets)


@_compiled(lambda t: [t.wide_mat3, t.wide_mat, t.wide_vec, t.count, t.wide_vec, t.flag])
def fold_path(grams, anchors, centre, p, alphas, fit_intercept):
    """Fit every (alpha, fold) pair from the folds' statistics, and score it on its fold.

    ``grams[k]`` is the augmented Gram matrix of fold ``k``'s held-out rows
    (:class:`skl_tfreg._statistics.Statistics` with groups) about their mean
    ``anchors[k]``, for ``p`` features; a last matrix may hold rows that no fold
    holds out (it trains every fold; its own scores mean nothing). Fold ``k`` trains on
    every row but its own: the total minus ``grams[k]``. Each pair minimises
    J on those rows, ``(C / S + alpha I) w = c / S`` with ``C``, ``c`` the
    (centred, with an intercept) scatter of the training rows, by an
    eigendecomposition of the system (scaled to a unit diagonal where alpha > 0;
    a pseudo-inverse, the coefficients of least norm, where it is singular).
    The held-out error is a quadratic form of fold ``k``'s own statistics.
    """
    wide = tf.float64
    k = tf.shape(centre)[0] - p
    held = grams
    moved = reshift(grams, anchors, centre[None], p)  # about the one centre
    train = tf.reduce_sum(moved, 0)[None] - moved  # (K, q, q)
    S = train[:, p, p]  # (K,)
    sums = train[:, :, p]  # (K, q)
    shift = tf.concat([centre[:p], tf.zeros([1], wide), centre[p:]], 0)
    # Without an intercept the model is fitted to the raw values: move the sums to 0.
    raw = train + shift[None, :, None] * sums[:, None, :] + sums[:, :, None] * shift[None, None, :]
    raw += S[:, None, None] * (shift[:, None] * shift[None, :])[None]
    centred = train - sums[:, :, None] * sums[:, None, :] / S[:, None, None]
    M = tf.where(fit_intercept, centred, raw) / S[:, None, None]
    xx, xy = M[:, :p, :p], M[:, :p, p + 1 :]  # (K, p, p), (K, p, k)
    # With alpha > 0 the system is scaled to a unit diagonal (its conditioning); with
    # alpha = 0 it is not, so that the pseudo-inverse gives the coefficients of least
    # norm in the caller's units, as LinearRegression and gram_solve do.
    scale = tf.linalg.diag_part(xx)[None] + alphas[:, None, None]  # (A, K, p)
    scaled = (alphas[:, None, None] > 0) & (scale > 0)
    d = tf.sqrt(tf.where(scaled, scale, tf.ones_like(scale)))
    system = xx[None] / (d[..., :, None] * d[..., None, :])
    system += tf.linalg.diag(alphas[:, None, None] / tf.square(d))
    rhs = xy[None] / d[..., :, None]  # (A, K, p, k)
    v = _solve_psd(system, rhs)
    coef = v / d[..., :, None]
    # Residuals about a fold's mean a: r = (x - a_x) w + (b + a_x w - a_y) - (y - a_y).
    mean = shift[None, :] + sums / S[:, None]  # (K, q): the training rows' means
    x_mean = tf.where(fit_intercept, mean[:, :p], tf.zeros_like(mean[:, :p]))
    y_mean = tf.where(fit_intercept, mean[:, p + 1 :], tf.zeros_like(mean[:, p + 1 :]))
    intercept = y_mean[None] - tf.einsum("kp,akpt->akt", x_mean, coef)
    # The held-out rows' sums are about their mean: the residual's constant there.
    offset = intercept + tf.einsum("kp,akpt->akt", anchors[:, :p], coef) - anchors[None, :, p:]
    A = tf.shape(alphas)[0]
    eye_y = tf.broadcast_to(-tf.eye(k, dtype=wide)[None, None], [A, tf.shape(held)[0], k, k])
    beta = tf.concat([coef, offset[:, :, None, :], eye_y], axis=2)  # (A, K, q, k)
    quad = tf.einsum("akqt,kqr,akrt->akt", beta, held, beta)
    mse = tf.maximum(quad, 0.0) / held[:, p, p][None, :, None]
    return FoldPath(mse, coef, intercept)


def _solve_psd(system, rhs):
    """Solve symmetric positive semi-definite systems by eigendecomposition.

    Eigenvalues hidden by rounding (below ``_RANK_EPS`` epsilons of the largest,
    times the size) are dropped: a pseudo-inverse, which never fails on a
    singular system (``alpha = 0`` on dependent or constant columns).
    """
    values, vectors = tf.linalg.eigh(system)
    top = tf.reduce_max(tf.abs(values), axis=-1, keepdims=True)
    n = tf.cast(tf.shape(system)[-1], system.dtype)
    kept = values > _RANK_EPS * EPS64 * n * top
    inverse = tf.where(kept, 1.0 / tf.where(kept, values, tf.ones_like(values)), 0.0)
    projected = tf.matmul(vectors, rhs, transpose_a=True) * inverse[..., None]
    return tf.matmul(vectors, projected)
