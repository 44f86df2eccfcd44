"""The TensorFlow kernel: objective, compiled training loops and stopping rules.

Arrays and scalars in, numpy arrays out; nothing here imports scikit-learn or
knows about the estimator. Every compiled function has a shape-free input
signature, so it is traced once per dtype and reused by every later fit.

Mathematics
-----------
The objective, for ``n_targets`` columns of ``Y`` summed, is::

    J(W, b) = sum_i s_i ||x_i W + b - y_i||^2 / sum_i s_i + alpha ||W||_F^2

Training runs in preconditioned coordinates: with ``m`` the weighted column
means (zero without an intercept) and ``d_j = sqrt(var_j + alpha)``, the rows
``a_i = (x_i - m) / d`` are centred and scaled, ``W = V / d`` and
``b = ybar - m W``. Centring decouples the intercept exactly (its optimum is the
weighted mean of ``y``, which is why the bias moves at once even on unscaled X),
and the scaling makes every diagonal entry of the Hessian equal to 2. Neither
changes the minimiser: ``coef`` and ``intercept`` are returned in the caller's
units. ``A = (X - 1 m^T) diag(1/d)`` is never formed; products with it are
computed from ``X`` itself, so no copy of ``X`` is made.

Steps
-----
Full batch, ``learning_rate="auto"``: conjugate gradient directions with the
exact line-search step ``-g.p / p^T H p`` (Polak-Ribiere+), the step size a
quadratic objective gives in closed form. Full batch, ``"constant"``: steepest
descent with step ``eta0``. Mini-batches: ``V -= eta * g_B`` with an unbiased
batch gradient; ``"auto"`` starts at ``eta = 1 / (2 L(b))``, ``L(b)`` the expected
smoothness of ``b``-row batches (Gower et al., 2019), and divides it by 5 when
the epoch objective stalls (SGDRegressor's "adaptive" rule), at most 5 times.
"""

from __future__ import annotations

import collections
import functools
import time
from typing import NamedTuple

import numpy as np
import tensorflow as tf

RUNNING, CONVERGED, STALLED, DIVERGED, OVERFLOW = 0, 1, 2, 3, 4
_STATUS = {CONVERGED: "converged", STALLED: "stalled", DIVERGED: "diverged", OVERFLOW: "overflow"}
_STATS_CHUNK_ROWS = 65536
_POWER_ITERATIONS = 20
_MAX_STEP_REDUCTIONS = 5
# Full batch: epochs without a change above rounding before stopping at the floor.
_FLOOR_EPOCHS = 5
_GRADIENT_FLOOR_EPS = 10
# Relative objective changes below this many epsilons are rounding noise.
_ROUNDING_EPS = 16
_GRADIENT_PROGRESS = 0.99  # a new gradient-norm low must beat the old by 1%

_traces = collections.Counter()


def trace_count():
    """Return how many times the compiled kernels have been traced in this process."""
    return sum(_traces.values())


# ----------------------------------------------------------------------------
# Linear algebra with the implicit preconditioned matrix A = (X - 1 m^T) / d.


def _forward(X, m, d, V):
    """Return ``A @ V``, shape (n, k), computed from X without centring it."""
    W = V / d[:, None]
    return tf.matmul(X, W) - tf.matmul(m[None, :], W)


def _backward(X, m, d, U):
    """Return ``A.T @ U``, shape (p, k)."""
    XtU = tf.matmul(X, U, transpose_a=True)
    return (XtU - m[:, None] * tf.reduce_sum(U, axis=0)[None, :]) / d[:, None]


def _gradient(X, s, m, d, S, alpha, V, R):
    """Gradient of J with respect to V, given the residual ``R = A V - Yc``."""
    data = _backward(X, m, d, s[:, None] * R)
    return (2.0 / S) * data + 2.0 * alpha * V / tf.square(d)[:, None]


def _objective(s, S, alpha, d, V, R):
    """J of each target, shape (k,), from V and its residual R."""
    fit = tf.reduce_sum(s[:, None] * tf.square(R), axis=0) / S
    return fit + alpha * tf.reduce_sum(tf.square(V / d[:, None]), axis=0)


def _converged(G, J, tol):
    """Whether ``||g|| <= tol * sqrt(J)`` for every target.

    Both sides are in units of y, so the rule does not depend on the scale of X
    or y, and ``(J - J*) / J <= tol^2 / (2 mu)``, mu the smallest curvature in
    the preconditioned coordinates.
    """
    return tf.reduce_all(tf.norm(G, axis=0) <= tol * tf.sqrt(J))


def _column_dot(A, B):
    return tf.reduce_sum(A * B, axis=0)


# ----------------------------------------------------------------------------
# Compiled kernels. Each Python body runs only while TensorFlow traces it.


def _stats(X, Y, s, fit_intercept, alpha):
    _traces["stats"] += 1
    n, p = tf.shape(X)[0], tf.shape(X)[1]
    dtype = X.dtype
    S = tf.reduce_sum(s)
    mean = tf.linalg.matvec(X, s, transpose_a=True) / S
    ybar = tf.where(
        fit_intercept,
        tf.linalg.matvec(Y, s, transpose_a=True) / S,
        tf.zeros([tf.shape(Y)[1]], dtype),
    )

    # Variances in row blocks: exact centring, bounded temporaries. Scaling by the
    # spread, not the second moment, also without an intercept: a column's offset
    # then becomes one large eigenvalue (which CG removes in one step) instead of
    # shrinking its variation until it is collinear with the other offsets.
    def body(start, acc):
        Xb = X[start : start + _STATS_CHUNK_ROWS]
        sb = s[start : start + _STATS_CHUNK_ROWS]
        return start + _STATS_CHUNK_ROWS, acc + tf.linalg.matvec(
            tf.square(Xb - mean), sb, transpose_a=True
        )

    _, moment = tf.while_loop(lambda start, _: start < n, body, (0, tf.zeros([p], dtype)))
    d = tf.sqrt(moment / S + alpha)
    d = tf.where(d > 0, d, tf.ones_like(d))  # a constant column with alpha = 0
    m = tf.where(fit_intercept, mean, tf.zeros_like(mean))
    return m, d, ybar, S


def _start(X, Yc, s, m, d, S, alpha, V):
    _traces["start"] += 1
    R = _forward(X, m, d, V) - Yc
    G = _gradient(X, s, m, d, S, alpha, V, R)
    return R, G, _objective(s, S, alpha, d, V, R)


def _full_batch(
    X,
    Yc,
    s,
    m,
    d,
    S,
    alpha,
    V,
    R,
    G,
    P,
    best,
    n_bad,
    n_epochs,
    conjugate,
    eta0,
    tol,
    limit,
    stall_rtol,
    n_iter_no_change,
):
    """Run up to ``n_epochs`` full-gradient steps in one graph, stopping by rule."""
    _traces["full_batch"] += 1
    dtype = X.dtype
    objectives = tf.TensorArray(dtype, size=n_epochs)

    def _refresh(V, P):
        R = _forward(X, m, d, V) - Yc
        G = _gradient(X, s, m, d, S, alpha, V, R)
        return R, G, tf.where(_converged(G, _objective(s, S, alpha, d, V, R), tol), P, -G)

    def step(i, V, R, G, P, best, n_bad, objectives, status):
        Q = _forward(X, m, d, P)
        curvature = (2.0 / S) * _column_dot(s[:, None] * Q, Q) + 2.0 * alpha * tf.reduce_sum(
            tf.square(P / d[:, None]), axis=0
        )
        exact = tf.math.divide_no_nan(-_column_dot(G, P), curvature)
        eta = tf.where(conjugate, exact, eta0 * tf.ones_like(exact))
        V = V + eta[None, :] * P
        R = R + eta[None, :] * Q
        G_new = _gradient(X, s, m, d, S, alpha, V, R)
        beta = tf.maximum(
            tf.math.divide_no_nan(_column_dot(G_new, G_new - G), _column_dot(G, G)), 0.0
        )
        beta = tf.where(conjugate, beta, tf.zeros_like(beta))
        P = -G_new + beta[None, :] * P
        # Restart from steepest descent wherever P stopped being a descent direction.
        P = tf.where((_column_dot(G_new, P) < 0)[None, :], P, -G_new)

        # Before claiming convergence, replace the updated residual (which drifts
        # by rounding) with an exact one and check the gradient again.
        R, G_new, P = tf.cond(
            _converged(G_new, _objective(s, S, alpha, d, V, R), tol),
            lambda: _refresh(V, P),
            lambda: (R, G_new, P),
        )
        J = _objective(s, S, alpha, d, V, R)
        objective = tf.reduce_sum(J)
        objectives = objectives.write(i, objective)
        # best = (lowest objective, lowest gradient norm). At the rounding floor
        # neither improves; in flat directions the objective may stop changing
        # while the gradient still falls, which is progress, not a floor.
        grad = tf.reduce_max(tf.norm(G_new, axis=0))
        improved = (objective < best[0] - stall_rtol * tf.abs(best[0])) | (
            grad < best[1] * _GRADIENT_PROGRESS
        )
        n_bad = tf.where(improved, 0, n_bad + 1)
        best = tf.minimum(best, tf.stack([objective, grad]))
        status = tf.where(_converged(G_new, J, tol), CONVERGED, RUNNING)
        status = tf.where(n_bad >= n_iter_no_change, STALLED, status)
        status = tf.where(tf.math.is_finite(objective) & (objective <= limit), status, DIVERGED)
        return i + 1, V, R, G_new, P, best, n_bad, objectives, status

    i, V, R, G, P, best, n_bad, objectives, status = tf.while_loop(
        lambda i, *state: (i < n_epochs) & tf.equal(state[-1], RUNNING),
        step,
        (0, V, R, G, P, best, n_bad, objectives, RUNNING),
    )
    return V, R, G, P, best, n_bad, objectives.stack()[:i], status


def _minibatch_epoch(X, Yc, s, m, d, S, alpha, V, order, offsets, eta):
    """One epoch of mini-batch steps; batch j is ``order[offsets[j]:offsets[j+1]]``."""
    _traces["minibatch_epoch"] += 1
    dtype = X.dtype
    n = tf.cast(tf.shape(X)[0], dtype)
    n_batches = tf.shape(offsets)[0] - 1

    def step(j, V, fit_sums, G_sum):
        rows = order[offsets[j] : offsets[j + 1]]
        Xb, Yb, sb = tf.gather(X, rows), tf.gather(Yc, rows), tf.gather(s, rows)
        Rb = _forward(Xb, m, d, V) - Yb
        # n / (n_b S) makes the batch gradient an unbiased estimate of the full one.
        scale = 2.0 * n / (tf.cast(tf.shape(rows)[0], dtype) * S)
        Gb = scale * _backward(Xb, m, d, sb[:, None] * Rb) + 2.0 * alpha * V / tf.square(d)[:, None]
        fit_sums = fit_sums + tf.reduce_sum(sb[:, None] * tf.square(Rb), axis=0) / S
        return j + 1, V - eta * Gb, fit_sums, G_sum + Gb

    _, V, fit_sums, G_sum = tf.while_loop(
        lambda j, *_: j < n_batches,
        step,
        (0, V, tf.zeros([tf.shape(V)[1]], dtype), tf.zeros_like(V)),
    )
    J = fit_sums + alpha * tf.reduce_sum(tf.square(V / d[:, None]), axis=0)
    return V, J, G_sum / tf.cast(n_batches, dtype)


def _smoothness(X, s, m, d, S, alpha):
    """Largest Hessian eigenvalue (power iteration) and the largest one-row curvature."""
    _traces["smoothness"] += 1
    dtype = X.dtype
    n, p = tf.shape(X)[0], tf.shape(X)[1]
    reg = 2.0 * alpha / tf.square(d)

    def hessian_times(v):
        Av = _forward(X, m, d, v[:, None])
        return (2.0 / S) * _backward(X, m, d, s[:, None] * Av)[:, 0] + reg * v

    def power(_, v, lam):
        w = hessian_times(v)
        lam = tf.norm(w)
        return _ + 1, tf.math.divide_no_nan(w, lam), lam

    v0 = tf.ones([p], dtype) / tf.sqrt(tf.cast(p, dtype))
    _, _, lam = tf.while_loop(
        lambda i, *_: i < _POWER_ITERATIONS, power, (0, v0, tf.zeros([], dtype))
    )

    def row_max(start, acc):
        Ab = (X[start : start + _STATS_CHUNK_ROWS] - m) / d
        sb = s[start : start + _STATS_CHUNK_ROWS]
        return start + _STATS_CHUNK_ROWS, tf.maximum(
            acc, tf.reduce_max(sb * tf.reduce_sum(tf.square(Ab), axis=1))
        )

    _, row = tf.while_loop(lambda start, _: start < n, row_max, (0, tf.zeros([], dtype)))
    row_curvature = 2.0 * tf.cast(n, dtype) / S * row + tf.reduce_max(reg)
    return lam, row_curvature


@functools.cache
def _kernels(dtype):
    """Compile the kernels for one float dtype (cached: one trace per dtype)."""
    mat = tf.TensorSpec([None, None], dtype)
    vec = tf.TensorSpec([None], dtype)
    num = tf.TensorSpec([], dtype)
    ints = tf.TensorSpec([None], tf.int64)
    count = tf.TensorSpec([], tf.int32)
    flag = tf.TensorSpec([], tf.bool)
    signatures = {
        _stats: [mat, mat, vec, flag, num],
        _start: [mat, mat, vec, vec, vec, num, num, mat],
        # X, Yc, s, m, d, S, alpha, V, R, G, P, best, n_bad, n_epochs,
        # conjugate, eta0, tol, limit, stall_rtol, n_iter_no_change
        _full_batch: [
            mat,
            mat,
            vec,
            vec,
            vec,
            num,
            num,
            mat,
            mat,
            mat,
            mat,
            vec,
            count,
            count,
            flag,
            num,
            num,
            num,
            num,
            count,
        ],  # fmt: skip
        _minibatch_epoch: [mat, mat, vec, vec, vec, num, num, mat, ints, ints, num],
        _smoothness: [mat, vec, vec, vec, num, num],
    }
    return {
        fn.__name__.lstrip("_"): tf.function(fn, autograph=False, input_signature=signature)
        for fn, signature in signatures.items()
    }


# ----------------------------------------------------------------------------
# The driver: one compiled call per epoch at most, stopping rules, reports.


class TrainResult(NamedTuple):
    """What :func:`train` returns; every array is numpy."""

    coef: np.ndarray  # (n_features, n_targets), in the caller's units
    intercept: np.ndarray  # (n_targets,)
    n_epochs: int
    n_steps: int
    loss_curve: np.ndarray  # J after each epoch
    grad_norm: float  # largest per-target gradient norm at the end (preconditioned)
    status: str  # "converged", "stalled", "max_iter", "diverged" or "overflow"


def _batch_learning_rate(kernels, tensors, n_samples, batch_size):
    """``1 / (2 L(b))``: a step with which b-row SGD converges, from the data alone."""
    X, s, m, d, S, alpha = tensors
    lam, row = (float(t) for t in kernels["smoothness"](X, s, m, d, S, alpha))
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
        Most epochs (full passes) to run.
    tol : float or None
        Stop when every target's gradient norm (preconditioned coordinates)
        is at most ``tol * sqrt(J)``, raised to 10 machine epsilons of the
        dtype (1.2e-6 in float32, the accuracy of a computed gradient). With
        mini-batches (whose epoch gradient is a mean of batch gradients) also
        stop when the epoch objective improves by less than ``tol`` (relative)
        for ``n_iter_no_change`` epochs. None runs ``max_iter`` epochs; a
        full-batch fit still stops once neither the objective nor the gradient
        improves beyond rounding for 5 epochs.
    learning_rate : {"auto", "constant"}
        Step rule; see the module docstring.
    eta0 : float
        Step size for ``"constant"``, in the preconditioned coordinates.
    epochs : iterable of iterables of int arrays, or None
        Mini-batch orders, one iterable of batches per epoch (for example
        :func:`skl_tfreg.iter_epochs`). None trains on the full batch, where
        the order of rows cannot change the gradient.
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
    kernels = _kernels(dtype)
    Y = tf.convert_to_tensor(Y, dtype=dtype)
    s = tf.convert_to_tensor(sample_weight, dtype=dtype)
    n_samples, n_features = (int(v) for v in X.shape)
    alpha_t = tf.constant(alpha, dtype)
    eps = float(np.finfo(dtype.as_numpy_dtype).eps)
    tol_t = tf.constant(0.0 if tol is None else max(tol, _GRADIENT_FLOOR_EPS * eps), dtype)

    m, d, ybar, S = kernels["stats"](X, Y, s, tf.constant(bool(fit_intercept)), alpha_t)
    Yc = Y - ybar[None, :]
    if coef_init is None:
        V = tf.zeros([n_features, int(Y.shape[1])], dtype)
    else:
        V = tf.convert_to_tensor(coef_init, dtype=dtype) * d[:, None]
    R, G, J = kernels["start"](X, Yc, s, m, d, S, alpha_t, V)
    losses = []
    status = CONVERGED if bool(_converged(G, J, tol_t)) else RUNNING
    if not all(bool(tf.reduce_all(tf.math.is_finite(t))) for t in (m, d, ybar, G, J)):
        status = OVERFLOW
    # An objective ten times its starting value is no longer a descent.
    limit = tf.constant(10.0, dtype) * tf.reduce_sum(J)
    started = time.perf_counter()

    def to_user_units(V):
        W = (V / d[:, None]).numpy()
        return W, ybar.numpy() - m.numpy() @ W

    def maybe_report(status, G, V):
        n_done = len(losses)
        if report is not None and (
            status != RUNNING or n_done % report_every == 0 or n_done == max_iter
        ):
            grad = float(tf.reduce_max(tf.norm(G, axis=0)))
            report(n_done, losses[-1], grad, *to_user_units(V), time.perf_counter() - started)

    if epochs is None:
        # Full batch: chunks of report_every epochs (all of max_iter when silent).
        chunk = report_every if report is not None and report_every else max_iter
        P = -G
        best = tf.stack([tf.reduce_sum(J), tf.reduce_max(tf.norm(G, axis=0))])
        n_bad = tf.constant(0)
        while status == RUNNING and len(losses) < max_iter:
            V, R, G, P, best, n_bad, chunk_losses, status = kernels["full_batch"](
                X, Yc, s, m, d, S, alpha_t, V, R, G, P, best, n_bad,
                tf.constant(min(chunk, max_iter - len(losses))),
                tf.constant(learning_rate == "auto"),
                tf.constant(eta0, dtype),
                tol_t,
                limit,
                tf.constant(_ROUNDING_EPS * eps, dtype),
                tf.constant(_FLOOR_EPOCHS),
            )  # fmt: skip
            losses.extend(chunk_losses.numpy().tolist())
            status = int(status)
            maybe_report(status, G, V)
        n_steps = len(losses)
    else:
        eta = eta0
        if learning_rate == "auto":
            eta = _batch_learning_rate(kernels, (X, s, m, d, S, alpha_t), n_samples, batch_size)
        n_steps, n_bad, n_reductions, best = 0, 0, 0, float(tf.reduce_sum(J))
        epochs = iter(epochs)
        while status == RUNNING and len(losses) < max_iter:
            batches = list(next(epochs))
            offsets = np.cumsum([0] + [len(b) for b in batches])
            V, J, G = kernels["minibatch_epoch"](
                X, Yc, s, m, d, S, alpha_t, V,
                tf.constant(np.concatenate(batches), tf.int64),
                tf.constant(offsets, tf.int64),
                tf.constant(eta, dtype),
            )  # fmt: skip
            objective = float(tf.reduce_sum(J))
            losses.append(objective)
            n_steps += len(batches)
            if not objective <= float(limit):  # also catches NaN
                status = DIVERGED
            elif bool(_converged(G, J, tol_t)):
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
            maybe_report(status, G, V)

    coef, intercept = to_user_units(V)
    return TrainResult(
        coef=coef,
        intercept=intercept,
        n_epochs=len(losses),
        n_steps=n_steps,
        loss_curve=np.asarray(losses, dtype=np.float64),
        grad_norm=float(tf.reduce_max(tf.norm(G, axis=0))) if n_features else 0.0,
        status=_STATUS.get(status, "max_iter"),
    )
