"""The training driver: step rules, stopping rules and the state kept between calls.

Python around the compiled kernels of :mod:`skl_tfreg._core`: it picks the step
size, counts epochs, applies the stopping rules that need Python (mini-batch
stalls, early stopping on a validation score, callbacks) and returns numpy
arrays only. A full-batch fit with nothing to report runs in one compiled call
after the preparing one; mini-batches take one call per epoch.

Step rules (``learning_rate``)
------------------------------
``"auto"``
    Full batch: conjugate-gradient directions with the exact line-search
    step. Mini-batches: ``eta = 1 / (2 L(b))``, ``L(b)`` the expected
    smoothness of ``b``-row batches (Gower et al., 2019), divided by 5 when
    the objective stalls, at most 5 times.
``"constant"``
    Steepest descent with the step ``eta0``.
``"invscaling"``
    Step ``eta0 / (t + 1)^power_t`` at the ``t``-th step since the first fit
    (SGDRegressor's rule).
``"adaptive"``
    Step ``eta0``, divided by 5 whenever ``n_iter_no_change`` epochs pass
    without progress (SGDRegressor's rule); training stops once it is below
    ``1e-6``.
``"auto"`` and ``"adaptive"`` also recover from a step that makes the
objective grow past ten times its start (or non-finite): the epoch is undone
and the step divided by 5, up to 10 times. The explicit rules report the
divergence instead, since the step is the caller's choice.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from . import _core
from ._core import CONVERGED, DIVERGED, OVERFLOW, RUNNING, STALLED

STOPPED, FLOOR = 10, 11  # driver-only outcomes: a callback asked to stop; float64 floor
_STATUS = {
    CONVERGED: "converged",  # the gradient rule was met
    STALLED: "stalled",  # no progress by tol over n_iter_no_change epochs (or rounding)
    FLOOR: "floor",  # full batch stuck at rounding far from tol: possibly inaccurate
    DIVERGED: "diverged",
    OVERFLOW: "overflow",
    STOPPED: "stopped",
}
_GRADIENT_FLOOR_EPS = 10  # tol is at least this many epsilons of the dtype
_DIVERGENCE_FACTOR = 10.0  # an objective this many times its start is not descending
_STEP_REDUCTION = 5.0
_MAX_STEP_REDUCTIONS = 5  # "auto" mini-batch steps shrink at most this often on stalls
_MAX_RECOVERIES = 10  # "auto" / "adaptive": divergences undone by a smaller step
_MIN_ADAPTIVE_ETA = 1e-6  # "adaptive" stops once its step falls below this
_NO_PATIENCE = np.iinfo(np.int32).max  # the objective rule off (early stopping decides)


class TrainState(NamedTuple):
    """Everything a later call needs to continue training; numpy and Python only.

    ``moments`` are the float64 weighted moments of every row trained on so far
    (``partial_fit`` merges each chunk into them; they define the
    preconditioner). ``direction`` is the last conjugate-gradient direction in
    the caller's units, ``(dW, db)`` (None after any other step rule), so that it
    survives a change of preconditioner. ``steps`` maps a step rule to its
    current ``(eta, n_reductions)``: ``("adaptive", eta0)`` and
    ``("auto", batch_size)`` (mini-batch), so that a chunk trained under another
    rule or batch size does not reset them. ``best`` and ``n_bad`` are the
    progress rule's reference (lowest objective, lowest gradient norm) and its
    count of epochs without progress; ``partial_fit`` carries the count only,
    judging each chunk against its own objective at the start of the call.
    ``t`` counts gradient steps.
    """

    moments: tuple
    direction: tuple | None
    steps: dict
    best: np.ndarray
    n_bad: int
    t: int


class Epoch(NamedTuple):
    """What ``on_epoch`` receives after an epoch."""

    epoch: int  # epochs run so far in this call
    objective: float  # J after the epoch, summed over targets
    grad_norm: float  # largest per-target preconditioned gradient norm
    coef: np.ndarray  # (n_features, n_targets)
    intercept: np.ndarray  # (n_targets,)
    elapsed: float  # seconds since the call started
    final: bool  # whether training ends after this epoch


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
    state: TrainState
    validation_scores: np.ndarray  # validate's score after each epoch (empty without)


_ALIGNMENT = 64  # bytes: what TensorFlow's CPU kernels require of a buffer they share


def aligned(array):
    """Return ``array`` as a buffer TensorFlow can share: itself, or one aligned copy.

    A float C-contiguous, writable, 64-byte-aligned, non-empty array is returned
    as it is; any other float array is copied once into such a buffer. Other
    dtypes are returned unchanged (TensorFlow converts them).
    """
    array = np.asarray(array)
    if array.dtype not in (np.float32, np.float64):
        return array
    shared = (
        array.flags.c_contiguous
        and array.flags.writeable
        and array.ctypes.data % _ALIGNMENT == 0
        and array.size > 0
    )
    if shared:
        return array
    raw = np.empty(array.nbytes + _ALIGNMENT, dtype=np.uint8)
    start = -raw.ctypes.data % _ALIGNMENT
    buffer = raw[start : start + array.nbytes].view(array.dtype).reshape(array.shape)
    np.copyto(buffer, array)
    return buffer


def as_tensor(array):
    """Return a TensorFlow tensor of ``array`` with at most one copy of its data.

    ``tf.convert_to_tensor`` holds two copies of a large array at its peak. Here
    the array (or its :func:`aligned` copy) is shared with TensorFlow through
    DLPack. TensorFlow only reads it.
    """
    array = aligned(array)
    if array.dtype not in (np.float32, np.float64) or array.size == 0:
        return tf.convert_to_tensor(array)
    return tf.experimental.dlpack.from_dlpack(array.__dlpack__())


def _no_moments(n_features, n_targets):
    zeros = (np.zeros(n_features), np.zeros(n_features), np.zeros(n_targets), np.zeros(n_targets))
    return (np.float64(0.0), *zeros)


def _direction_in_units(pb, P):
    """Return a direction in preconditioned coordinates as ``(dW, db)``, the caller's units."""
    P, inv_d, m = (np.asarray(t) for t in (P, pb.inv_d, pb.m))
    scaled = P * inv_d[:, None]
    return scaled[:-1], scaled[-1] - m @ scaled[:-1]


def _direction_from_units(pb, dW, db):
    """Return ``(dW, db)`` in the preconditioned coordinates of ``pb`` (a new preconditioner)."""
    inv_d, m = np.asarray(pb.inv_d), np.asarray(pb.m)
    with np.errstate(divide="ignore", invalid="ignore"):
        rows = np.where(inv_d[:-1, None] > 0, dW / inv_d[:-1, None], 0.0)
    offset = (db + m @ dW) * (inv_d[-1] > 0)  # c moves with the intercept, frozen without
    return np.vstack([rows, offset[None, :]])


def _batch_learning_rate(lam, row, n_samples, batch_size):
    """``1 / (2 L(b))``: a step with which b-row SGD converges, from the data alone.

    ``lam`` and ``row`` are what :func:`skl_tfreg._core._smoothness` returns.
    """
    b = min(batch_size, n_samples)
    if n_samples == 1:
        smooth = row
    else:
        smooth = (n_samples * (b - 1) * lam + (n_samples - b) * row) / (b * (n_samples - 1))
    return 1.0 / (2.0 * smooth) if smooth > 0 else 1.0


def _sparse_tensor(X):
    """Return a scipy.sparse matrix or array as a ``tf.SparseTensor`` in row-major order.

    The caller's matrix is not changed: one whose indices are unsorted or
    duplicated is put in canonical form in a copy.
    """
    X = X.tocsr()
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    rows = np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr))
    indices = np.stack([rows, X.indices.astype(np.int64, copy=False)], axis=1)
    return tf.SparseTensor(indices, X.data, np.asarray(X.shape, dtype=np.int64))


class InMemory:
    """Training data held in memory: dense (shared with TensorFlow) or scipy.sparse.

    The interface the driver trains through, shared with
    :class:`skl_tfreg._streaming.Stream`: ``prepare``, ``full_batch``,
    ``minibatch_epoch`` and ``smoothness``, with the contracts of the kernels of
    :mod:`skl_tfreg._core` of the same names.
    """

    def __init__(self, X, Y, sample_weight):
        self.sparse = sp.issparse(X)
        self.X = _sparse_tensor(X) if self.sparse else as_tensor(X)
        self.dtype = self.X.dtype
        self.Y = tf.convert_to_tensor(Y, dtype=self.dtype)
        self.s = tf.convert_to_tensor(sample_weight, self.dtype)
        self.n_samples, self.n_features = (int(n) for n in X.shape)
        self.n_targets = int(self.Y.shape[1])

    def _kernel(self, fn):
        return _core.kernel(fn, self.dtype, self.sparse)

    def prepare(self, fit_intercept, alpha, coef_init, intercept_init, prior, tol):
        """Return :func:`skl_tfreg._core._prepare` of the data."""
        dtype = self.dtype
        return self._kernel(_core._prepare)(
            self.X, self.Y, self.s, tf.constant(bool(fit_intercept)), tf.constant(alpha, dtype),
            tf.convert_to_tensor(coef_init, dtype), tf.convert_to_tensor(intercept_init, dtype),
            _core.Moments(*map(tf.constant, prior)), tf.constant(tol, dtype),
        )  # fmt: skip

    def full_batch(self, pb, state, n_epochs, rule, tol, limit):
        """Return :func:`skl_tfreg._core._full_batch` of the data."""
        return self._kernel(_core._full_batch)(pb, state, n_epochs, rule, tol, limit)

    def minibatch_epoch(self, pb, V, batches, rule, tol):
        """Return :func:`skl_tfreg._core._minibatch_epoch` over ``batches``, and their number."""
        offsets = np.cumsum([0] + [len(b) for b in batches])
        out = self._kernel(_core._minibatch_epoch)(
            pb, V, tf.constant(np.concatenate(batches), tf.int64), tf.constant(offsets, tf.int64),
            rule, tol,
        )  # fmt: skip
        return (*out, len(batches))

    def smoothness(self, pb):
        """Return :func:`skl_tfreg._core._smoothness` of the data, as floats."""
        return tuple(float(t) for t in self._kernel(_core._smoothness)(pb))


def train(
    X,
    Y,
    sample_weight,
    *,
    alpha,
    fit_intercept,
    max_iter,
    tol,
    n_iter_no_change=5,
    learning_rate="auto",
    eta0=0.01,
    power_t=0.25,
    epochs=None,
    batch_size=None,
    coef_init=None,
    intercept_init=None,
    state=None,
    accumulate=False,
    validate=None,
    on_epoch=None,
    report_every=1,
):
    """Minimise J by gradient steps and return the coefficients in the caller's units.

    Parameters
    ----------
    X : ndarray or scipy.sparse matrix of shape (n_samples, n_features), or a data object
        Training data, float32 or float64; never modified, never densified,
        never copied by centring. Or a :class:`skl_tfreg._streaming.Stream`
        (anything with :class:`InMemory`'s interface), and then ``Y`` and
        ``sample_weight`` are None.
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
        Gradient tolerance of the stopping rule (raised to 10 epsilons of the
        dtype), and the relative decrease of the objective (or increase of the
        validation score) that counts as progress. None runs ``max_iter``
        epochs, except that a full-batch fit still stops at the rounding floor.
    n_iter_no_change : int
        Epochs without progress before a stall: the step shrinks
        (``"adaptive"``, mini-batch ``"auto"``) or training stops.
    learning_rate : {"auto", "constant", "invscaling", "adaptive"}
        Step rule; see the module docstring.
    eta0, power_t : float
        Step size of the explicit rules, in the preconditioned coordinates, and
        the exponent of ``"invscaling"``.
    epochs : iterable of iterables of int arrays, or None
        Mini-batch orders, one iterable of batches per epoch (for example
        :func:`skl_tfreg.iter_epochs`). None trains on the full batch, where
        the order of rows cannot change the gradient.
    batch_size : int or None
        Nominal mini-batch size, for the ``"auto"`` step.
    coef_init : ndarray of shape (n_features, n_targets) or None
        Starting coefficients (warm start); zeros when None.
    intercept_init : ndarray of shape (n_targets,) or None
        Starting intercept; None starts from the intercept that is exact for
        ``coef_init`` on the preconditioner's centre.
    state : TrainState or None
        The state a previous call returned, to continue its step rule.
    accumulate : bool
        Continue ``state`` as one training run (``partial_fit``): merge these
        rows' moments into its preconditioner and carry its stall count.
    validate : callable or None
        ``validate(coef, intercept) -> score`` (higher is better), called after
        every epoch: early stopping. Stalls are then judged on the score, and
        the best-scoring coefficients are returned.
    on_epoch : callable or None
        ``on_epoch(Epoch) -> bool``, called every ``report_every`` epochs and
        after the last; a true return stops training.
    report_every : int
        Period of ``on_epoch`` in epochs.

    Returns
    -------
    result : TrainResult
    """
    data = X if hasattr(X, "minibatch_epoch") else InMemory(X, Y, sample_weight)
    dtype = data.dtype
    n_features, n_targets = data.n_features, data.n_targets
    minibatch = epochs is not None
    eps = float(np.finfo(dtype.as_numpy_dtype).eps)
    tol_eff = 0.0 if tol is None else max(tol, _GRADIENT_FLOOR_EPS * eps)
    # Progress is a relative fall of the objective by tol; along conjugate directions,
    # by more than rounding, since the objective can plateau for many epochs while the
    # gradient still falls (stopping there at tol left gaps to Ridge of 1e-4 to 1e3 on
    # n < p problems of tests/test_optimum_sweep.py).
    # With early stopping the validation score judges progress; the kernel keeps
    # only its rounding floor.
    floor = _core._ROUNDING_EPS * eps
    conjugate = learning_rate == "auto" and not minibatch
    rtol = floor if tol is None or conjugate or validate is not None else max(tol, floor)
    patience = min(n_iter_no_change, _NO_PATIENCE)
    carry = state is not None
    if coef_init is None:
        coef_init = np.zeros((n_features, n_targets), dtype.as_numpy_dtype)
    if intercept_init is None:
        intercept_init = np.full(n_targets, np.nan, dtype.as_numpy_dtype)
    prior = state.moments if carry and accumulate else _no_moments(n_features, n_targets)
    pb, moments, V, R, G, P, best, status, units = data.prepare(
        fit_intercept, alpha, coef_init, intercept_init, prior, tol_eff
    )
    status = int(status)
    limit = _DIVERGENCE_FACTOR * float(best[0])

    # The step rule's state, carried over from an earlier call of the same rule.
    step_key = {"adaptive": ("adaptive", eta0)}.get(learning_rate)
    if learning_rate == "auto" and minibatch:
        step_key = ("auto", batch_size)
    steps = dict(state.steps) if carry else {}
    t, n_bad = (state.t, state.n_bad if accumulate else 0) if carry else (0, 0)
    if conjugate and carry and state.direction is not None:
        P = tf.constant(_direction_from_units(pb, *state.direction), dtype)
    eta, n_reductions = steps.get(step_key, (None, 0))
    if eta is None and step_key == ("auto", batch_size):
        eta = _batch_learning_rate(*data.smoothness(pb), data.n_samples, batch_size)
    elif eta is None:
        eta = eta0

    losses, scores = [], []
    best_score, best_units, n_bad_score = -np.inf, None, 0
    recoveries = 0
    started = time.perf_counter()
    period = 1 if validate is not None else max(int(report_every), 1)
    power = power_t if learning_rate == "invscaling" else 0.0  # 0: a constant step

    def shrink_step():
        """Shrink the step after a stall if the rule allows; whether it did."""
        nonlocal eta, n_reductions
        if (learning_rate == "adaptive" and eta > _MIN_ADAPTIVE_ETA) or (
            learning_rate == "auto" and minibatch and n_reductions < _MAX_STEP_REDUCTIONS
        ):
            eta, n_reductions = eta / _STEP_REDUCTION, n_reductions + 1
            return True
        return False

    def after_epochs(status, units):
        """Early stopping and reports once the epochs of a call are in; the new status."""
        nonlocal best_score, best_units, n_bad_score
        if validate is None and on_epoch is None:
            return status
        coef, intercept, grad, _ = (u.numpy() for u in units)
        if validate is not None and status in (RUNNING, CONVERGED, STALLED):
            score = float(validate(coef, intercept))
            scores.append(score)
            if tol is not None:
                n_bad_score = n_bad_score + 1 if score < best_score + tol else 0
            if score > best_score:
                best_score, best_units = score, (coef, intercept)
            if n_bad_score >= n_iter_no_change and status == RUNNING:
                if shrink_step():
                    n_bad_score = 0
                else:
                    status = STALLED
        n_done = len(losses)
        final = status != RUNNING or n_done == max_iter
        if on_epoch is not None and n_done and (final or n_done % period == 0):
            report = Epoch(n_done, losses[-1], float(grad), coef, intercept,
                           time.perf_counter() - started, final)  # fmt: skip
            if on_epoch(report) and not final:
                status = STOPPED
        return status

    if not minibatch:
        chunk = period if (validate is not None or on_epoch is not None) else max_iter
        run = data.full_batch
        fb_state = (V, R, G, P, best, tf.constant(n_bad, tf.int32))
        while status == RUNNING and len(losses) < max_iter:
            n = min(chunk, max_iter - len(losses), _NO_PATIENCE)
            rule = (tf.constant(conjugate), tf.constant(eta, dtype), tf.constant(power, dtype),
                    tf.constant(t, dtype), tf.constant(rtol, dtype),
                    tf.constant(patience))  # fmt: skip
            fb_state, chunk_losses, status, units = run(
                pb, fb_state, tf.constant(n), rule, tf.constant(tol_eff, dtype),
                tf.constant(limit, dtype),
            )  # fmt: skip
            status = int(status)
            losses.extend(chunk_losses.numpy().tolist())
            t += len(chunk_losses)
            if status == DIVERGED and learning_rate == "adaptive" and recoveries < _MAX_RECOVERIES:
                # The kernel stopped before the diverging epoch: retry it, smaller.
                eta, recoveries, status = eta / _STEP_REDUCTION, recoveries + 1, RUNNING
            if status == STALLED and learning_rate == "adaptive" and shrink_step():
                fb_state, status = (*fb_state[:5], tf.constant(0)), RUNNING
            status = after_epochs(status, units) if len(chunk_losses) else status
        P, best, n_bad = fb_state[3], fb_state[4].numpy(), int(fb_state[5])
    else:
        best = best.numpy()
        epochs = iter(epochs)
        batches = None
        while status == RUNNING and len(losses) < max_iter:
            if batches is None:  # else retry the epoch that diverged, with a smaller step
                batches = next(epochs, None)
                if batches is None:
                    break
                batches = list(batches)
            rule = (tf.constant(eta, dtype), tf.constant(power, dtype), tf.constant(t, dtype))
            new_V, objective, converged, new_units, n_steps = data.minibatch_epoch(
                pb, V, batches, rule, tf.constant(tol_eff, dtype)
            )
            objective = float(objective)
            if not objective <= limit:  # also catches NaN
                if learning_rate in ("auto", "adaptive") and recoveries < _MAX_RECOVERIES:
                    eta, recoveries = eta / _STEP_REDUCTION, recoveries + 1
                    continue  # the epoch is undone: V stays where it was
                status = DIVERGED
            V, units = new_V, new_units
            losses.append(objective)
            t += n_steps
            batches = None
            if status == RUNNING and bool(converged):
                status = CONVERGED
            elif status == RUNNING and tol is not None and validate is None:
                n_bad = 0 if objective < best[0] - tol * abs(best[0]) else n_bad + 1
                best[0] = min(best[0], objective)
                if n_bad >= n_iter_no_change:
                    if shrink_step():
                        n_bad = 0
                    else:
                        status = STALLED
            status = after_epochs(status, units)

    coef, intercept, grad, ratio = (u.numpy() for u in units)
    if best_units is not None:
        coef, intercept = best_units
    # A float64 gradient is accurate far below sqrt(tol): stopping at rounding above
    # that means the problem is too ill-conditioned. A float32 gradient's accuracy
    # depends on n and on the columns' offsets, so there the floor is the answer.
    far = tol is not None and ratio > np.sqrt(tol_eff)
    if status == STALLED and conjugate and validate is None and dtype == tf.float64 and far:
        status = FLOOR
    if step_key is not None:
        steps[step_key] = (float(eta), n_reductions)
    new_state = TrainState(
        moments=tuple(np.asarray(m) for m in moments),
        direction=_direction_in_units(pb, P) if conjugate else None,
        steps=steps,
        best=np.asarray(best, dtype=np.float64),
        n_bad=int(n_bad),
        t=t,
    )
    return TrainResult(
        coef=coef,
        intercept=intercept,
        n_epochs=len(losses),
        n_steps=t - (state.t if carry else 0),
        loss_curve=np.asarray(losses, dtype=np.float64),
        grad_norm=float(grad),
        grad_ratio=float(ratio),
        status=_STATUS.get(status, "max_iter"),
        state=new_state,
        validation_scores=np.asarray(scores, dtype=np.float64),
    )
