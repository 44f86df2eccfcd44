"""The TensorFlow kernel: objective, compiled training loops and stopping rules.

Arrays and scalars in, numpy arrays out; nothing here imports scikit-learn or
knows about the estimator. Every compiled function has a shape-free input
signature, so it is traced once per dtype and reused by every later fit.

Mathematics
-----------
The objective, for the ``n_targets`` columns of ``Y`` (one term each), is::

    J(W, b) = sum_i s_i ||x_i W + b - y_i||^2 / sum_i s_i + alpha ||W||_F^2

Training runs in preconditioned coordinates. With ``mean`` the weighted column
means and ``d_j = sqrt(var_j + alpha)``, the scaled variables are ``V = W * d``
and the rows are ``a_i = (x_i - m) / d``, where ``m = mean`` with an intercept
and ``m = 0`` without one. With an intercept, centring decouples it exactly: its
optimum is the weighted mean of ``y``, which is why the bias moves at once even
on unscaled X, and the Hessian has every diagonal entry equal to 2. Without an
intercept the Hessian is that matrix plus the rank-one term ``2 mu mu^T``,
``mu = mean / d``; the preconditioner ``M^-1 = I - mu mu^T / (1 + ||mu||^2)``
(Sherman-Morrison) removes it, so column offsets cost nothing either. None of
this changes the minimiser: ``coef`` and ``intercept`` come back in the caller's
units. ``A`` is never formed; products with it are computed from ``X`` itself
(``X W - m W``), so no copy of ``X`` is made, unless some column's offset is so
far above its scale (``_CENTRING_RATIO``) that the subtraction would cancel too
many digits: then ``X - m`` is formed once. A constant column under an intercept
gets ``1 / d = 0``: the intercept absorbs it and its coefficient is 0.

Steps
-----
Full batch, ``learning_rate="auto"``: preconditioned conjugate-gradient
directions with the exact line-search step ``-g.p / p^T H p`` (Polak-Ribiere+),
the step a quadratic objective gives in closed form. Full batch,
``"constant"``: preconditioned steepest descent with step ``eta0``. Mini-batches:
``V -= eta * M^-1 g_B`` with an unbiased batch gradient; ``"auto"`` starts at
``eta = 1 / (2 L(b))``, ``L(b)`` the expected smoothness of ``b``-row batches
(Gower et al., 2019), and divides it by 5 when the epoch objective stalls
(SGDRegressor's "adaptive" rule), at most 5 times.

Stopping
--------
Converged when ``sqrt(g^T M^-1 g) <= tol * sqrt(J)`` for every target: both
sides are in units of y, and the relative gap ``(J - J*) / J`` is at most about
``tol^2 / (2 lambda_min)``. Below ten machine epsilons a computed gradient is
rounding noise, so ``tol`` is raised to that. A target whose ``J`` has fallen
to ``(16 eps)^2`` times its value at ``coef = 0`` is fitted to rounding and has
converged too. A full-batch fit also stops when neither the objective nor the
gradient has improved beyond rounding for 5 epochs (the floor of float32).
"""

from __future__ import annotations

import collections
import functools
import time
from typing import NamedTuple

import numpy as np
import tensorflow as tf

RUNNING, CONVERGED, STALLED, DIVERGED, OVERFLOW, FLOOR = 0, 1, 2, 3, 4, 5
_STATUS = {
    CONVERGED: "converged",  # the gradient rule was met
    STALLED: "stalled",  # no progress (mini-batches: SGDRegressor's rule; full batch: rounding)
    FLOOR: "floor",  # full batch stuck at rounding far from tol: possibly inaccurate
    DIVERGED: "diverged",
    OVERFLOW: "overflow",
}
_STATS_CHUNK_ROWS = 65536
_POWER_ITERATIONS = 20
_MAX_STEP_REDUCTIONS = 5
_FLOOR_EPOCHS = 5  # full batch: epochs without progress beyond rounding before stopping
_GRADIENT_FLOOR_EPS = 10  # tol is at least this many epsilons of the dtype
_ROUNDING_EPS = 16  # relative objective changes below this many epsilons are noise
_GRADIENT_PROGRESS = 0.99  # a new gradient-norm low must beat the old one by 1%
_DIVERGENCE_FACTOR = 10.0  # an objective this many times its start is not descending

_EPS64 = float(np.finfo(np.float64).eps)
# Centre X in a copy when a column's |mean| exceeds this many times its scale d:
# implicit centring would cancel about log10 of it in digits (of 16 and of 7).
_CENTRING_RATIO = {tf.float64: 1e3, tf.float32: 1e2}

_traces = collections.Counter()


def trace_count():
    """Return how many times the compiled kernels have been traced in this process."""
    return sum(_traces.values())


class Problem(NamedTuple):
    """The tensors every kernel reads: data, weights and the preconditioner."""

    X: tf.Tensor  # (n, p) the caller's data as given, or X - m when centred in a copy
    Yc: tf.Tensor  # (n, k) targets minus ybar
    s: tf.Tensor  # (n,) sample weights
    m: tf.Tensor  # (p,) centre of the rows: the weighted mean, or 0 without intercept
    shift: tf.Tensor  # (p,) what products subtract from X: m, or 0 once X is centred
    inv_d: tf.Tensor  # (p,) 1 / d, d = sqrt(var + alpha); 0 for a constant column
    #   under an intercept, which the intercept absorbs (its coefficient is 0)
    mu: tf.Tensor  # (p,) mean / d without intercept (the rank-one term), else 0
    ybar: tf.Tensor  # (k,) weighted mean of y, or 0 without intercept
    J_null: tf.Tensor  # (k,) J at coef = 0: the scale of y that rounding is judged by
    S: tf.Tensor  # () sum of the weights
    alpha: tf.Tensor  # () the L2 penalty


# ----------------------------------------------------------------------------
# Linear algebra with the implicit matrix A = (X - 1 m^T) / d.


def _forward(pb, X, V):
    """Return ``A @ V`` for rows ``X`` of the problem, shape (n, k)."""
    W = V * pb.inv_d[:, None]
    return tf.matmul(X, W) - tf.matmul(pb.shift[None, :], W)


def _backward(pb, X, U):
    """Return ``A.T @ U`` for rows ``X`` of the problem, shape (p, k)."""
    XtU = tf.matmul(X, U, transpose_a=True)
    return (XtU - pb.shift[:, None] * tf.reduce_sum(U, axis=0)[None, :]) * pb.inv_d[:, None]


def _penalty_gradient(pb, V):
    return 2.0 * pb.alpha * V * tf.square(pb.inv_d)[:, None]


def _gradient(pb, V, R):
    """Gradient of J with respect to V, given the residual ``R = A V - Yc``."""
    return (2.0 / pb.S) * _backward(pb, pb.X, pb.s[:, None] * R) + _penalty_gradient(pb, V)


def _objective(pb, V, R):
    """J of each target, shape (k,), from V and its residual R."""
    fit = tf.reduce_sum(pb.s[:, None] * tf.square(R), axis=0) / pb.S
    return fit + pb.alpha * tf.reduce_sum(tf.square(V * pb.inv_d[:, None]), axis=0)


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


def _converged(pb, G, J, tol):
    """Whether every target meets the gradient rule, or fits y to rounding."""
    # A tensor of the data's dtype: numpy < 2 would promote a float32 scalar here.
    level = tf.constant((_ROUNDING_EPS * np.finfo(pb.X.dtype.as_numpy_dtype).eps) ** 2, J.dtype)
    exact = J <= level * pb.J_null
    return tf.reduce_all((_gradient_norm(pb, G) <= tol * tf.sqrt(J)) | exact)


def _user_units(pb, V, G, J):
    """Return coefficients and intercept in the caller's units, and the gradient's size.

    The size is the largest per-target gradient norm and the largest ratio
    ``norm / sqrt(J)``, the quantity the stopping rule compares with ``tol``.
    """
    W = V * pb.inv_d[:, None]
    intercept = pb.ybar - tf.linalg.matvec(W, pb.m, transpose_a=True)
    norms = _gradient_norm(pb, G)
    ratio = tf.reduce_max(tf.math.divide_no_nan(norms, tf.sqrt(J)))
    return W, intercept, tf.reduce_max(norms), ratio


# ----------------------------------------------------------------------------
# Compiled kernels. Each Python body runs only while TensorFlow traces it.


def _fold_row_blocks(arrays, body, init):
    """Fold ``acc = body(*blocks, acc)`` over float64 row blocks of ``arrays``.

    float64 whatever the data's dtype, for sums that float32 would round away;
    blocks of ``_STATS_CHUNK_ROWS`` rows bound the float64 temporaries.
    """
    n = tf.shape(arrays[0])[0]

    def step(start, acc):
        rows = slice(start, start + _STATS_CHUNK_ROWS)
        blocks = (tf.cast(a[rows], tf.float64) for a in arrays)
        return start + _STATS_CHUNK_ROWS, body(*blocks, acc)

    return tf.while_loop(lambda start, _: start < n, step, (0, init))[1]


def _weighted_moments(X, Y, s):
    """Weighted means and variances of the columns of X and Y, and the weight sum.

    Two passes over row blocks, accumulated in float64 whatever the data's dtype
    (a float32 running sum over many rows loses the digits the intercept is made
    of): the first sums, the second centres exactly and corrects the means by the
    mean of the deviations. Blocking bounds the float64 temporaries.
    """
    dtype, wide = X.dtype, tf.float64
    p, k = tf.shape(X)[1], tf.shape(Y)[1]

    def sums(Xb, Yb, sb, acc):
        return (
            acc[0] + tf.linalg.matvec(Xb, sb, transpose_a=True),
            acc[1] + tf.linalg.matvec(Yb, sb, transpose_a=True),
            acc[2] + tf.reduce_sum(sb),
        )

    Sx, Sy, S = _fold_row_blocks(
        (X, Y, s), sums, (tf.zeros([p], wide), tf.zeros([k], wide), tf.zeros([], wide))
    )
    x_mean, y_mean = Sx / S, Sy / S

    def deviations(Xb, Yb, sb, acc):
        Dx, Dy = Xb - x_mean, Yb - y_mean
        return tuple(
            a + tf.linalg.matvec(D, sb, transpose_a=True)
            for a, D in zip(acc, (Dx, tf.square(Dx), Dy, tf.square(Dy)), strict=True)
        )

    dx, dx2, dy, dy2 = _fold_row_blocks(
        (X, Y, s),
        deviations,
        (tf.zeros([p], wide), tf.zeros([p], wide), tf.zeros([k], wide), tf.zeros([k], wide)),
    )
    x_mean, y_mean = x_mean + dx / S, y_mean + dy / S
    x_var = tf.maximum(dx2 / S - tf.square(dx / S), 0.0)
    y_var = tf.maximum(dy2 / S - tf.square(dy / S), 0.0)
    # A constant column's computed variance is rounding noise, not spread: zero it.
    noise = x_var <= tf.square(_ROUNDING_EPS * _EPS64 * x_mean)
    x_var = tf.where(noise, tf.zeros_like(x_var), x_var)
    return tuple(tf.cast(t, dtype) for t in (x_mean, x_var, y_mean, y_var, S))


def _prepare(X, Y, s, fit_intercept, alpha, coef_init, tol):
    """Build the problem and the starting state of the descent at ``coef_init``.

    Two blocked passes over X for the moments, one for the residual and one
    for the gradient (and one to centre X in a copy, when it must be).
    """
    _traces["prepare"] += 1
    mean, var, ybar, yvar, S = _weighted_moments(X, Y, s)
    # A constant column with alpha = 0 is scaled by its size (it then acts like an
    # intercept column when there is none), or by 1 if it is all zeros.
    d = tf.sqrt(var + alpha)
    d = tf.where(d > 0, d, tf.where(mean != 0, tf.abs(mean), tf.ones_like(mean)))
    zeros = tf.zeros_like(mean)
    # Centring is implicit (X W - m W) unless a column's offset is so far above its
    # spread that the subtraction would cancel more digits than allowed: then X is
    # centred once, in a copy.
    explicit = fit_intercept & tf.reduce_any(tf.abs(mean) > _CENTRING_RATIO[X.dtype] * d)
    ybar = tf.where(fit_intercept, ybar, tf.zeros_like(ybar))
    pb = Problem(
        X=tf.cond(explicit, lambda: X - mean, lambda: X),
        Yc=Y - ybar[None, :],
        s=s,
        m=tf.where(fit_intercept, mean, zeros),
        shift=tf.where(fit_intercept & ~explicit, mean, zeros),
        inv_d=tf.where(fit_intercept & tf.equal(var, 0), zeros, 1.0 / d),
        mu=tf.where(fit_intercept, zeros, mean / d),
        ybar=ybar,
        J_null=tf.where(fit_intercept, yvar, yvar + tf.square(ybar)),
        S=S,
        alpha=alpha,
    )

    V = tf.math.divide_no_nan(coef_init, pb.inv_d[:, None])
    R = _forward(pb, pb.X, V) - pb.Yc
    G = _gradient(pb, V, R)
    Z = _precondition(pb, G)
    J = _objective(pb, V, R)
    finite = [tf.reduce_all(tf.math.is_finite(t)) for t in (mean, d, ybar, G, J)]
    status = tf.where(_converged(pb, G, J, tol), CONVERGED, RUNNING)
    status = tf.where(tf.reduce_all(tf.stack(finite)), status, OVERFLOW)
    objective = tf.reduce_sum(J)
    best = tf.stack([objective, tf.reduce_max(_gradient_norm(pb, G))])
    limit = _DIVERGENCE_FACTOR * objective
    return pb, V, R, G, -Z, best, limit, status, _user_units(pb, V, G, J)


def _full_batch(pb, state, n_epochs, conjugate, eta0, tol, limit, floor_rtol):
    """Run up to ``n_epochs`` full-gradient steps in one graph, stopping by rule.

    ``state`` is ``(V, R, G, P, best, n_bad)``: scaled coefficients, residual,
    gradient, search direction, (lowest objective, lowest gradient norm) and
    epochs without progress; it is returned updated, so a fit can run in chunks.
    """
    _traces["full_batch"] += 1
    V, R, G, P, best, n_bad = state
    objectives = tf.TensorArray(pb.X.dtype, size=n_epochs)

    def refresh(V, P):
        # The updated residual drifts by rounding: recompute it before trusting it.
        R = _forward(pb, pb.X, V) - pb.Yc
        G, J = _gradient(pb, V, R), _objective(pb, V, R)
        Z_new = _precondition(pb, G)
        return R, G, Z_new, tf.where(_converged(pb, G, J, tol), P, -Z_new), J

    def step(i, V, R, G, P, best, n_bad, objectives, status):
        Z = _precondition(pb, G)
        Q = _forward(pb, pb.X, P)
        curvature = (2.0 / pb.S) * _column_dot(pb.s[:, None] * Q, Q) + 2.0 * pb.alpha * (
            tf.reduce_sum(tf.square(P * pb.inv_d[:, None]), axis=0)
        )
        exact = tf.math.divide_no_nan(-_column_dot(G, P), curvature)
        eta = tf.where(conjugate, exact, eta0 * tf.ones_like(exact))
        V = V + eta[None, :] * P
        R = R + eta[None, :] * Q
        G_new = _gradient(pb, V, R)
        Z_new = _precondition(pb, G_new)
        J = _objective(pb, V, R)
        R, G_new, Z_new, P, J = tf.cond(
            _converged(pb, G_new, J, tol),
            lambda: refresh(V, P),
            lambda: (R, G_new, Z_new, P, J),
        )
        beta = tf.math.divide_no_nan(_column_dot(Z_new, G_new - G), _column_dot(Z, G))
        beta = tf.where(conjugate, tf.maximum(beta, 0.0), tf.zeros_like(beta))
        P = -Z_new + beta[None, :] * P
        # Restart from steepest descent wherever P stopped being a descent direction.
        P = tf.where((_column_dot(G_new, P) < 0)[None, :], P, -Z_new)

        objective = tf.reduce_sum(J)
        objectives = objectives.write(i, objective)
        # best = (lowest objective, lowest gradient norm). At the rounding floor
        # neither improves; in flat directions the objective may stop changing
        # while the gradient still falls, which is progress, not a floor.
        grad = tf.reduce_max(_gradient_norm(pb, G_new))
        improved = (objective < best[0] - floor_rtol * tf.abs(best[0])) | (
            grad < best[1] * _GRADIENT_PROGRESS
        )
        n_bad = tf.where(improved, 0, n_bad + 1)
        best = tf.minimum(best, tf.stack([objective, grad]))
        status = tf.where(_converged(pb, G_new, J, tol), CONVERGED, RUNNING)
        status = tf.where(n_bad >= _FLOOR_EPOCHS, STALLED, status)
        status = tf.where(tf.math.is_finite(objective) & (objective <= limit), status, DIVERGED)
        return i + 1, V, R, G_new, P, best, n_bad, objectives, status

    i, V, R, G, P, best, n_bad, objectives, status = tf.while_loop(
        lambda i, *state: (i < n_epochs) & tf.equal(state[-1], RUNNING),
        step,
        (0, V, R, G, P, best, n_bad, objectives, RUNNING),
    )
    units = _user_units(pb, V, G, _objective(pb, V, R))
    return (V, R, G, P, best, n_bad), objectives.stack()[:i], status, units


def _minibatch_epoch(pb, V, order, offsets, eta, tol):
    """One epoch of mini-batch steps; batch j is ``order[offsets[j]:offsets[j+1]]``.

    Returns V; the epoch's estimate of J (each batch's weighted squared error
    before its step, summed and divided by S, plus the penalty at the end),
    summed over targets; whether the mean batch gradient meets ``tol``; and
    the coefficients in the caller's units.
    """
    _traces["minibatch_epoch"] += 1
    dtype = pb.X.dtype
    n = tf.cast(tf.shape(pb.X)[0], dtype)
    n_batches = tf.shape(offsets)[0] - 1

    def step(j, V, fit_sums, G_sum):
        rows = order[offsets[j] : offsets[j + 1]]
        Xb, Yb, sb = tf.gather(pb.X, rows), tf.gather(pb.Yc, rows), tf.gather(pb.s, rows)
        Rb = _forward(pb, Xb, V) - Yb
        # n / (n_b S) makes the batch gradient an unbiased estimate of the full one.
        scale = 2.0 * n / (tf.cast(tf.shape(rows)[0], dtype) * pb.S)
        Gb = scale * _backward(pb, Xb, sb[:, None] * Rb) + _penalty_gradient(pb, V)
        fit_sums += tf.reduce_sum(sb[:, None] * tf.square(Rb), axis=0) / pb.S
        return j + 1, V - eta * _precondition(pb, Gb), fit_sums, G_sum + Gb

    _, V, fit_sums, G_sum = tf.while_loop(
        lambda j, *_: j < n_batches,
        step,
        (0, V, tf.zeros([tf.shape(V)[1]], dtype), tf.zeros_like(V)),
    )
    J = fit_sums + pb.alpha * tf.reduce_sum(tf.square(V * pb.inv_d[:, None]), axis=0)
    G = G_sum / tf.cast(n_batches, dtype)
    converged = _converged(pb, G, J, tol)
    return V, tf.reduce_sum(J), converged, _user_units(pb, V, G, J)


def _smoothness(pb):
    """Largest eigenvalue of ``M^-1 H`` (power iteration) and the largest one-row one."""
    _traces["smoothness"] += 1
    dtype = pb.X.dtype
    n, p = tf.shape(pb.X)[0], tf.shape(pb.X)[1]

    def power(i, v, lam):
        Av = _forward(pb, pb.X, v)
        w = _precondition(pb, (2.0 / pb.S) * _backward(pb, pb.X, pb.s[:, None] * Av))
        w += _precondition(pb, _penalty_gradient(pb, v))
        lam = tf.norm(w)
        return i + 1, tf.math.divide_no_nan(w, lam), lam

    v0 = tf.ones([p, 1], dtype) / tf.sqrt(tf.cast(p, dtype))
    _, _, lam = tf.while_loop(
        lambda i, *_: i < _POWER_ITERATIONS, power, (0, v0, tf.zeros([], dtype))
    )

    # a^T M^-1 a = ||a||^2 - (a.mu)^2 / (1 + ||mu||^2) for each row, in float64
    # blocks: with large column offsets the difference cancels most digits.
    wide = tf.float64
    shift, inv_d, mu = (tf.cast(t, wide) for t in (pb.shift, pb.inv_d, pb.mu))
    shrink = 1.0 + tf.reduce_sum(tf.square(mu))

    def row_max(Xb, sb, acc):
        A = (Xb - shift) * inv_d
        norms = tf.reduce_sum(tf.square(A), axis=1) - tf.square(tf.linalg.matvec(A, mu)) / shrink
        return tf.maximum(acc, tf.reduce_max(sb * norms))

    row = _fold_row_blocks((pb.X, pb.s), row_max, tf.zeros([], wide))
    reg = tf.reduce_max(2.0 * pb.alpha * tf.square(pb.inv_d))
    return lam, tf.cast(2.0 * tf.cast(n, wide) / tf.cast(pb.S, wide) * row, dtype) + reg


@functools.cache
def _kernel(fn, dtype):
    """Return the concrete function of one kernel for one dtype, traced on first use."""
    mat = tf.TensorSpec([None, None], dtype)
    vec = tf.TensorSpec([None], dtype)
    num = tf.TensorSpec([], dtype)
    ints = tf.TensorSpec([None], tf.int64)
    count = tf.TensorSpec([], tf.int32)
    flag = tf.TensorSpec([], tf.bool)
    pb = Problem(
        X=mat,
        Yc=mat,
        s=vec,
        m=vec,
        shift=vec,
        inv_d=vec,
        mu=vec,
        ybar=vec,
        J_null=vec,
        S=num,
        alpha=num,
    )
    state = (mat, mat, mat, mat, vec, count)  # V, R, G, P, best, n_bad
    signature = {
        _prepare: [mat, mat, vec, flag, num, mat, num],
        # pb, state, n_epochs, conjugate, eta0, tol, limit, floor_rtol
        _full_batch: [pb, state, count, flag, num, num, num, num],
        _minibatch_epoch: [pb, mat, ints, ints, num, num],
        _smoothness: [pb],
    }[fn]
    # A concrete function skips the per-call signature matching of tf.function.
    return tf.function(fn, autograph=False, input_signature=signature).get_concrete_function()


# ----------------------------------------------------------------------------
# The driver: one compiled call per epoch at most, stopping rules, reports.


class TrainResult(NamedTuple):
    """What :func:`train` returns; every array is numpy."""

    coef: np.ndarray  # (n_features, n_targets), in the caller's units
    intercept: np.ndarray  # (n_targets,)
    n_epochs: int
    n_steps: int
    loss_curve: np.ndarray  # J (summed over targets) after each epoch
    grad_norm: float  # largest per-target preconditioned gradient norm at the end
    grad_ratio: float  # largest norm / sqrt(J), what the stopping rule compares with tol
    status: str  # a value of _STATUS, or "max_iter"


def _batch_learning_rate(pb, batch_size):
    """``1 / (2 L(b))``: a step with which b-row SGD converges, from the data alone."""
    n_samples = int(pb.X.shape[0])
    lam, row = (float(t) for t in _kernel(_smoothness, pb.X.dtype)(pb))
    b = min(batch_size, n_samples)
    if n_samples == 1:
        smooth = row
    else:
        smooth = (n_samples * (b - 1) * lam + (n_samples - b) * row) / (b * (n_samples - 1))
    return 1.0 / (2.0 * smooth) if smooth > 0 else 1.0


def train(
    X,
    Y,
    sample_weight,
    *,
    alpha,
    fit_intercept,
    max_iter,
    tol,
    learning_rate="auto",
    eta0=0.01,
    epochs=None,
    batch_size=None,
    coef_init=None,
    n_iter_no_change=5,
    report=None,
    report_every=0,
):
    """Minimise J by gradient steps and return the coefficients in the caller's units.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
        Training data; never modified, never copied by centring.
    Y : ndarray of shape (n_samples, n_targets), same dtype as X
        Targets.
    sample_weight : ndarray of shape (n_samples,), same dtype as X
        Non-negative weights with a positive sum.
    alpha : float
        L2 penalty on the coefficients (not on the intercept).
    fit_intercept : bool
        Whether to fit an intercept; if False it is zero.
    max_iter : int
        Most epochs (passes over the data) to run.
    tol : float or None
        Gradient tolerance of the stopping rule (module docstring). With
        mini-batches, whose epoch gradient is a mean of batch gradients, also
        stop when the epoch objective improves by less than ``tol`` (relative)
        for ``n_iter_no_change`` epochs. None runs ``max_iter`` epochs, except
        that a full-batch fit still stops at the rounding floor.
    learning_rate : {"auto", "constant"}
        Step rule; see the module docstring.
    eta0 : float
        Step size for ``"constant"``, in the preconditioned coordinates.
    epochs : iterable of iterables of int arrays, or None
        Mini-batch orders, one iterable of batches per epoch (for example
        :func:`skl_tfreg.iter_epochs`); at most ``max_iter`` are consumed. None
        trains on the full batch, where the order of rows cannot change the
        gradient.
    batch_size : int or None
        Nominal mini-batch size, used for the ``"auto"`` step; ignored when
        ``epochs`` is None.
    coef_init : ndarray of shape (n_features, n_targets) or None
        Starting coefficients (warm start); zeros when None.
    n_iter_no_change : int
        Mini-batch epochs without improvement that count as a stall.
    report : callable or None
        ``report(epoch, objective, grad_norm, coef, intercept, elapsed)``,
        called every ``report_every`` epochs and at the last epoch.
    report_every : int
        Report period in epochs; 0 disables reports and lets a full-batch fit
        run in one compiled call.

    Returns
    -------
    result : TrainResult
    """
    X = tf.convert_to_tensor(X)
    dtype = X.dtype
    Y = tf.convert_to_tensor(Y, dtype=dtype)
    n_features, n_targets = int(X.shape[1]), int(Y.shape[1])
    if coef_init is None:
        coef_init = np.zeros((n_features, n_targets), dtype.as_numpy_dtype)
    eps = float(np.finfo(dtype.as_numpy_dtype).eps)
    tol_eff = 0.0 if tol is None else max(tol, _GRADIENT_FLOOR_EPS * eps)
    # units = (coef, intercept, gradient norm, gradient ratio): the answer so far.
    pb, V, R, G, P, best, limit, status, units = _kernel(_prepare, dtype)(
        X, Y, tf.convert_to_tensor(sample_weight, dtype), tf.constant(bool(fit_intercept)),
        tf.constant(alpha, dtype), tf.convert_to_tensor(coef_init, dtype),
        tf.constant(tol_eff, dtype),
    )  # fmt: skip
    status = int(status)
    losses = []
    started = time.perf_counter()

    def maybe_report(status, units):
        n_done = len(losses)
        if report is not None and (
            status != RUNNING or n_done % report_every == 0 or n_done == max_iter
        ):
            W, intercept, grad, _ = (u.numpy() for u in units)
            report(n_done, losses[-1], float(grad), W, intercept, time.perf_counter() - started)

    if epochs is None:
        # Full batch: chunks of report_every epochs (all of max_iter when silent).
        chunk = report_every if report is not None and report_every else max_iter
        run = _kernel(_full_batch, dtype)
        state = (V, R, G, P, best, tf.constant(0))
        while status == RUNNING and len(losses) < max_iter:
            state, chunk_losses, status, units = run(
                pb, state, tf.constant(min(chunk, max_iter - len(losses))),
                tf.constant(learning_rate == "auto"), tf.constant(eta0, dtype),
                tf.constant(tol_eff, dtype), limit, tf.constant(_ROUNDING_EPS * eps, dtype),
            )  # fmt: skip
            losses.extend(chunk_losses.numpy().tolist())
            status = int(status)
            maybe_report(status, units)
        n_steps = len(losses)
    else:
        eta = eta0 if learning_rate == "constant" else _batch_learning_rate(pb, batch_size)
        run = _kernel(_minibatch_epoch, dtype)
        n_steps, n_bad, n_reductions, best = 0, 0, 0, float(best[0])
        epochs = iter(epochs)
        while status == RUNNING and len(losses) < max_iter:
            batches = list(next(epochs))
            offsets = np.cumsum([0] + [len(b) for b in batches])
            V, objective, converged, units = run(
                pb, V, tf.constant(np.concatenate(batches), tf.int64),
                tf.constant(offsets, tf.int64), tf.constant(eta, dtype),
                tf.constant(tol_eff, dtype),
            )  # fmt: skip
            objective = float(objective)
            losses.append(objective)
            n_steps += len(batches)
            if not objective <= float(limit):  # also catches NaN
                status = DIVERGED
            elif bool(converged):
                status = CONVERGED
            elif tol is not None:
                n_bad = 0 if objective < best - tol * abs(best) else n_bad + 1
                best = min(best, objective)
                if n_bad >= n_iter_no_change:
                    if learning_rate == "auto" and n_reductions < _MAX_STEP_REDUCTIONS:
                        # A stall at a constant step is its noise floor: shrink the step.
                        eta, n_reductions, n_bad = eta / 5, n_reductions + 1, 0
                    else:
                        status = STALLED
            maybe_report(status, units)

    coef, intercept, grad, ratio = (u.numpy() for u in units)
    # A float64 gradient is accurate far below sqrt(tol): stopping at rounding above
    # that means the problem is too ill-conditioned. A float32 gradient's accuracy
    # depends on n and on the columns' offsets, so there the floor is the answer.
    far = tol is not None and ratio > np.sqrt(tol_eff)
    if status == STALLED and epochs is None and dtype == tf.float64 and far:
        status = FLOOR
    return TrainResult(
        coef=coef,
        intercept=intercept,
        n_epochs=len(losses),
        n_steps=n_steps,
        loss_curve=np.asarray(losses, dtype=np.float64),
        grad_norm=float(grad),
        grad_ratio=float(ratio),
        status=_STATUS.get(status, "max_iter"),
    )
