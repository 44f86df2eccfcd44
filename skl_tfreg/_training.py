"""The training driver: step rules, stopping rules and the state kept between calls.

Python around the compiled kernels of :mod:`skl_tfreg._core`, reached through a
data object (:class:`skl_tfreg._data.TrainingData`). It is a ladder of small
rungs, as in skorch: :class:`StepSchedule` owns the step size (its reductions
and recoveries), :class:`EpochMonitor` the rules that need Python (epoch counts,
early stopping on a validation score, reports and callbacks),
:meth:`Trainer.full_batch_loop` and :meth:`Trainer.minibatch_loop` the epochs,
and :func:`run` puts them together and returns numpy arrays only. A full-batch
fit with nothing to report runs in one compiled call after the preparing one;
mini-batches take one call per epoch.

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
import tensorflow as tf

from . import _core
from ._data import InMemory
from ._state import TrainState
from ._status import Status

__all__ = ["Epoch", "TrainResult", "StepSchedule", "EpochMonitor", "Trainer", "run", "train"]

_GRADIENT_FLOOR_EPS = 10  # tol is at least this many epsilons of the dtype
_DIVERGENCE_FACTOR = 10.0  # an objective this many times its start is not descending
_STEP_REDUCTION = 5.0
_MAX_STEP_REDUCTIONS = 5  # "auto" mini-batch steps shrink at most this often on stalls
_MAX_RECOVERIES = 10  # "auto" / "adaptive": divergences undone by a smaller step
_MIN_ADAPTIVE_ETA = 1e-6  # "adaptive" stops once its step falls below this
_NO_PATIENCE = np.iinfo(np.int32).max  # the objective rule off (early stopping decides)


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
    """What :func:`run` returns; every array is numpy."""

    coef: np.ndarray  # (n_features, n_targets), in the caller's units
    intercept: np.ndarray  # (n_targets,)
    n_epochs: int
    n_steps: int
    loss_curve: np.ndarray  # J (summed over targets) after each epoch
    grad_norm: float  # largest per-target preconditioned gradient norm at the end
    grad_ratio: float  # largest norm / sqrt(J), what the stopping rule compares with tol
    status: Status  # why training ended; MAX_ITER if no rule ended it
    state: TrainState
    validation_scores: np.ndarray  # validate's score after each epoch (empty without)


def _no_moments(n_features, n_targets):
    """Return the :class:`~skl_tfreg._core.Moments` of no rows, in numpy."""
    zeros = (np.zeros(n_features), np.zeros(n_features), np.zeros(n_targets), np.zeros(n_targets))
    return _core.Moments(np.float64(0.0), *zeros)


def _direction_in_units(pb, P):
    """Return a direction in preconditioned coordinates as ``(dW, db)``, the caller's units."""
    P, inv_d, m = (np.asarray(t) for t in (P, pb.inv_d, pb.m))
    with np.errstate(under="ignore"):  # a column scaled by 1e300 gives 1 / d near 1e-300
        scaled = P * inv_d[:, None]
        return scaled[:-1], scaled[-1] - m @ scaled[:-1]


def _direction_from_units(pb, dW, db):
    """Return ``(dW, db)`` in the preconditioned coordinates of ``pb`` (a new preconditioner)."""
    inv_d, m = np.asarray(pb.inv_d), np.asarray(pb.m)
    with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
        rows = np.where(inv_d[:-1, None] > 0, dW / inv_d[:-1, None], 0.0)
        offset = (db + m @ dW) * (inv_d[-1] > 0)  # c moves with the intercept, frozen without
    return np.vstack([rows, offset[None, :]])


def _point_in_units(pb, V):
    """Return a point in preconditioned coordinates as ``(coef, intercept)``, the caller's units.

    A point is its direction from the centre, where the intercept is ``ybar``.
    """
    coef, offset = _direction_in_units(pb, V)
    return coef, np.asarray(pb.ybar) + offset


def _point_from_units(pb, coef, intercept):
    """Return ``(coef, intercept)`` as a point in the coordinates of ``pb``: ``_core._initial``."""
    return _direction_from_units(pb, coef, intercept - np.asarray(pb.ybar))


def _stall_or_shrink(n_bad, patience, schedule):
    """After ``n_bad`` epochs without progress: shrink the step (and count anew), or stall.

    Returns the new count and whether training stalls.
    """
    if n_bad < patience:
        return n_bad, False
    if schedule.shrink():
        return 0, False
    return n_bad, True


def _batch_learning_rate(lam, row, n_samples, batch_size):
    """``1 / (2 L(b))``: a step with which b-row SGD converges, from the data alone.

    ``lam`` and ``row`` are the :class:`~skl_tfreg._core.Curvature` of the data.
    """
    b = min(batch_size, n_samples)
    if n_samples == 1:
        smooth = row
    else:
        smooth = (n_samples * (b - 1) * lam + (n_samples - b) * row) / (b * (n_samples - 1))
    return 1.0 / (2.0 * smooth) if smooth > 0 else 1.0


class StepSchedule:
    """The step size of one call: its rule, its reductions after stalls, its recoveries.

    Parameters
    ----------
    learning_rate : {"auto", "constant", "invscaling", "adaptive"}
        The step rule (module docstring).
    eta0, power_t : float
        Step size of the explicit rules, and the exponent of ``"invscaling"``.
    batch_size : int or None
        Rows per mini-batch step (the automatic step depends on it); None for
        full-batch epochs.
    saved : dict
        ``TrainState.steps`` of earlier calls: a rule continues its step.
    """

    def __init__(self, learning_rate, eta0, power_t, *, batch_size, saved):
        self.rule, self.batch_size, self.saved = learning_rate, batch_size, saved
        self.minibatch = batch_size is not None
        self.key = {"adaptive": ("adaptive", eta0)}.get(learning_rate)
        if learning_rate == "auto" and self.minibatch:
            self.key = ("auto", batch_size)
        self.eta, self.n_reductions = saved.get(self.key, (None, 0))
        if self.eta is None and not self.needs_curvature:
            self.eta = eta0
        self.power = power_t if learning_rate == "invscaling" else 0.0  # 0: a constant step
        self.recoveries = 0

    @property
    def conjugate(self):
        """Whether the steps are exact line searches along conjugate directions."""
        return self.rule == "auto" and not self.minibatch

    @property
    def needs_curvature(self):
        """Whether the first step must come from the data's curvature (:meth:`from_curvature`)."""
        return self.eta is None and self.rule == "auto" and self.minibatch

    def from_curvature(self, lam, row, n_samples):
        """Set the automatic mini-batch step from :func:`skl_tfreg._core.smoothness`."""
        self.eta = _batch_learning_rate(lam, row, n_samples, self.batch_size)

    def tensors(self, t, dtype):
        """Return the :class:`skl_tfreg._core.Schedule` of steps from step ``t`` on."""
        return _core.Schedule(
            tf.constant(self.eta, dtype), tf.constant(self.power, dtype), tf.constant(t, dtype)
        )

    def shrink(self):
        """Divide the step after a stall if the rule allows; return whether it did."""
        if (self.rule == "adaptive" and self.eta > _MIN_ADAPTIVE_ETA) or (
            self.rule == "auto" and self.minibatch and self.n_reductions < _MAX_STEP_REDUCTIONS
        ):
            self.eta, self.n_reductions = self.eta / _STEP_REDUCTION, self.n_reductions + 1
            return True
        return False

    def recover(self):
        """Divide the step after a diverging epoch if the rule allows; whether to retry it.

        The explicit rules (and exact conjugate steps) report the divergence:
        their step is the caller's choice, or exact.
        """
        allowed = self.rule == "adaptive" or (self.rule == "auto" and self.minibatch)
        if allowed and self.recoveries < _MAX_RECOVERIES:
            self.eta, self.recoveries = self.eta / _STEP_REDUCTION, self.recoveries + 1
            return True
        return False

    def saved_steps(self):
        """Return the ``TrainState.steps`` of the next call: the earlier ones and this rule's."""
        steps = dict(self.saved)
        if self.key is not None:
            steps[self.key] = (float(self.eta), self.n_reductions)
        return steps


class EpochMonitor:
    """The epochs of one call: losses, early stopping, and reports to ``on_epoch``.

    Parameters
    ----------
    max_iter : int
        Most epochs.
    tol : float or None
        The least progress: a rise of the validation score (early stopping),
        or a relative fall of the mini-batch objective (:class:`Trainer`).
    n_iter_no_change : int
        Epochs without progress before the step shrinks or training stalls.
    validate : callable or None
        ``validate(coef, intercept) -> score`` after every epoch (early stopping).
    on_epoch : callable or None
        ``on_epoch(Epoch) -> bool`` every ``report_every`` epochs and after the
        last; a true return stops training.
    report_every : int
        Period of ``on_epoch``.
    """

    def __init__(self, max_iter, tol, n_iter_no_change, validate, on_epoch, report_every):
        self.max_iter, self.tol, self.n_iter_no_change = max_iter, tol, n_iter_no_change
        self.validate, self.on_epoch = validate, on_epoch
        self.period = 1 if validate is not None else max(int(report_every), 1)
        self.losses, self.scores = [], []
        self.best_score, self.best_units, self.n_bad_score = -np.inf, None, 0
        self.started = time.perf_counter()

    @property
    def n_done(self):
        """Epochs run so far."""
        return len(self.losses)

    @property
    def watching(self):
        """Whether anything looks at the coefficients between epochs."""
        return self.validate is not None or self.on_epoch is not None

    def epochs_per_call(self):
        """Epochs one full-batch kernel call may run: up to the next look, or all."""
        return self.period if self.watching else self.max_iter

    def after_epochs(self, status, units, schedule):
        """Score and report the epochs just run; return the status, changed if they stop."""
        if not self.watching:
            return status
        coef, intercept, grad, _ = (u.numpy() for u in units)
        if self.validate is not None and status in (Status.RUNNING, Status.CONVERGED,
                                                    Status.STALLED):  # fmt: skip
            status = self._score(status, coef, intercept, schedule)
        final = status is not Status.RUNNING or self.n_done == self.max_iter
        if self.on_epoch is not None and self.n_done and (final or self.n_done % self.period == 0):
            report = Epoch(self.n_done, self.losses[-1], float(grad), coef, intercept,
                           time.perf_counter() - self.started, final)  # fmt: skip
            if self.on_epoch(report) and not final:
                status = Status.STOPPED
        return status

    def _score(self, status, coef, intercept, schedule):
        """Early stopping: keep the best-scoring coefficients, stall without progress."""
        score = float(self.validate(coef, intercept))
        self.scores.append(score)
        if self.tol is not None:
            self.n_bad_score = self.n_bad_score + 1 if score < self.best_score + self.tol else 0
        if score > self.best_score:
            self.best_score, self.best_units = score, (coef, intercept)
        if status is Status.RUNNING:
            self.n_bad_score, stalled = _stall_or_shrink(
                self.n_bad_score, self.n_iter_no_change, schedule
            )
            status = Status.STALLED if stalled else status
        return status


class Trainer:
    """One training call: the starting point, the step schedule, the epoch loops.

    Built by :func:`run`, which documents the parameters. Its loops update the
    trainer's own attributes: ``units`` (the iterate in the caller's units),
    ``status``, ``t`` (steps taken), the progress rule's ``best`` and ``n_bad``,
    and, after full-batch epochs, ``state`` (the kernel's descent state).
    ``handover(units)``, if set, returns other data and their start from
    ``units``: a full-batch run that stalls continues there once, in the same
    count of epochs (the data passes after a fit on statistics). ``average``
    (a :class:`~skl_tfreg._core.Average`, mini-batches only) averages the
    iterates: ``units`` are then the average's, and ``V`` the last iterate.
    """

    def __init__(self, data, start, schedule, monitor, progress, *, tol_eff, t, n_bad,
                 handover=None, average=None):  # fmt: skip
        self.schedule, self.monitor, self.handover = schedule, monitor, handover
        self.t, self.n_bad, self.average = t, n_bad, average
        self.progress, self.tol_eff = progress, tol_eff
        self.tol_t = tf.constant(tol_eff, data.dtype)
        self._begin(data, start)

    def _begin(self, data, start):
        """Train on ``data`` from ``start`` (a :class:`~skl_tfreg._core.Start`)."""
        self.data, self.start, self.pb = data, start, start.problem
        self.state, self.units, self.status = start.state, start.units, Status.of(start.status)
        self.V = start.state.V
        self.best = start.state.best
        self.limit = _DIVERGENCE_FACTOR * float(start.state.best.numpy()[0])

    def running(self):
        """Whether another epoch is due."""
        return self.status is Status.RUNNING and self.monitor.n_done < self.monitor.max_iter

    def full_batch_loop(self):
        """Run full-batch epochs, several per kernel call, until a rule stops them."""
        dtype, monitor = self.data.dtype, self.monitor
        state = self.state._replace(n_bad=tf.constant(self.n_bad, tf.int32))
        limit = tf.constant(self.limit, dtype)
        while self.running():
            n = min(monitor.epochs_per_call(), monitor.max_iter - monitor.n_done, _NO_PATIENCE)
            out = self.data.full_batch(self.pb, state, tf.constant(n),
                                       self.schedule.tensors(self.t, dtype), self.progress,
                                       self.tol_t, limit)  # fmt: skip
            state, self.status, self.units = out.state, Status.of(out.status), out.units
            losses = out.losses.numpy().tolist()
            monitor.losses.extend(losses)
            self.t += len(losses)
            if self.status is Status.DIVERGED and self.schedule.recover():
                self.status = Status.RUNNING  # the diverging epoch was not taken: retry it
            if self.status is Status.STALLED and self.schedule.shrink():
                state, self.status = state._replace(n_bad=tf.constant(0)), Status.RUNNING
            if self.status is Status.STALLED and self.handover is not None:
                self._begin(*self.handover(self.units))
                state, limit, self.handover = self.state, tf.constant(self.limit, dtype), None
            if losses:
                self.status = monitor.after_epochs(self.status, self.units, self.schedule)
        self.state, self.best, self.n_bad = state, state.best.numpy(), int(state.n_bad)

    def minibatch_loop(self, epochs):
        """Run one kernel call per epoch of ``epochs`` until a rule stops them."""
        dtype, monitor = self.data.dtype, self.monitor
        V, best = self.V, self.best.numpy()
        epochs, batches = iter(epochs), None
        while self.running():
            if batches is None:  # else retry the epoch that diverged, with a smaller step
                batches = next(epochs, None)
                if batches is None:
                    break
                batches = list(batches)
            out = self.data.minibatch_epoch(
                self.pb, V, batches, self.schedule.tensors(self.t, dtype), self.tol_t,
                self.average,
            )  # fmt: skip
            out, average = out if self.average is not None else (out, None)
            objective = float(out.objective)
            if not objective <= self.limit:  # also catches NaN
                if self.schedule.recover():
                    continue  # the epoch is undone: V stays where it was
                self.status = Status.DIVERGED
            V, self.units, self.average = out.V, out.units, average
            monitor.losses.append(objective)
            self.t += int(out.n_steps)
            batches = None
            if self.status is Status.RUNNING and bool(out.converged):
                self.status = Status.CONVERGED
            elif self.status is Status.RUNNING and monitor.tol is not None:
                self._judge_progress(objective, best)
            self.status = monitor.after_epochs(self.status, self.units, self.schedule)
        self.V, self.best = V, best

    def _judge_progress(self, objective, best):
        """Apply the mini-batch progress rule: shrink the step, or stall, after no progress.

        With early stopping the validation score judges progress instead.
        """
        if self.monitor.validate is not None:
            return
        tol = self.monitor.tol
        self.n_bad = 0 if objective < best[0] - tol * abs(best[0]) else self.n_bad + 1
        best[0] = min(best[0], objective)
        self.n_bad, stalled = _stall_or_shrink(
            self.n_bad, self.monitor.n_iter_no_change, self.schedule
        )
        self.status = Status.STALLED if stalled else self.status


def _start_point(data, coef_init, intercept_init):
    """Zeros, and an intercept exact for them, where no starting point is given."""
    np_dtype = data.dtype.as_numpy_dtype
    if coef_init is None:
        coef_init = np.zeros((data.n_features, data.n_targets), np_dtype)
    if intercept_init is None:
        intercept_init = np.full(data.n_targets, np.nan, np_dtype)
    return coef_init, intercept_init


def run(
    data,
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
    coef_init=None,
    intercept_init=None,
    state=None,
    accumulate=False,
    validate=None,
    on_epoch=None,
    report_every=1,
    fallback=None,
    average=None,
    average_init=None,
):
    """Minimise J by gradient steps on ``data`` and return the coefficients in the caller's units.

    Parameters
    ----------
    data : TrainingData
        :class:`skl_tfreg._data.InMemory`, a :class:`skl_tfreg._streaming.Stream`,
        or any other :class:`skl_tfreg._data.TrainingData`.
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
    epochs : iterable of iterables, or None
        The mini-batch epochs, as ``data.epochs`` gives them, when
        ``data.batch_size`` is set; None for full-batch epochs, where the order
        of rows cannot change the gradient.
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
    fallback : callable or None
        ``fallback()`` returns other :class:`~skl_tfreg._data.TrainingData` of
        the same full-batch rows, to continue on from the coefficients reached
        if the epochs on ``data`` stall short of the gradient rule (the data
        passes, after sufficient statistics whose rounding left it unmet). The
        epochs on both count as one run: towards ``max_iter``, in ``verbose``
        and callback reports, and under early stopping.
    average : int or None
        Averaged SGD (mini-batches only): every iterate after the step whose
        rows bring the count of rows seen (``state.n_seen`` when
        ``accumulate``, else 0) to ``average`` or more joins a running mean,
        and the coefficients returned are that mean. None: no averaging.
    average_init : tuple or None
        ``(coef, intercept, n_averaged)``: a mean of ``n_averaged`` iterates to
        continue (``partial_fit``; ``coef_init`` and ``intercept_init`` are then
        the last iterate, ``state.iterate``). None starts a new mean.

    Returns
    -------
    result : TrainResult
    """
    dtype = data.dtype
    minibatch = data.batch_size is not None
    if minibatch != (epochs is not None):
        raise ValueError("Mini-batch data (a batch_size) needs epochs, and only it does.")
    eps = float(np.finfo(dtype.as_numpy_dtype).eps)
    tol_eff = 0.0 if tol is None else max(tol, _GRADIENT_FLOOR_EPS * eps)
    carry = state is not None
    schedule = StepSchedule(learning_rate, eta0, power_t, batch_size=data.batch_size,
                            saved=dict(state.steps) if carry else {})  # fmt: skip
    # Along conjugate directions any fall beyond rounding is progress (the objective
    # can plateau while the gradient still falls); early stopping judges by the score.
    floor = _core.ROUNDING_EPS * eps
    rtol = floor if tol is None or schedule.conjugate or validate is not None else max(tol, floor)
    prior = state.moments if carry and accumulate else _no_moments(data.n_features, data.n_targets)
    start = data.prepare(
        fit_intercept, alpha, *_start_point(data, coef_init, intercept_init), prior, tol_eff
    )
    if schedule.needs_curvature:
        schedule.from_curvature(*data.smoothness(start.problem), data.n_samples)
    if schedule.conjugate and carry and state.direction is not None:
        P = tf.constant(_direction_from_units(start.problem, *state.direction), dtype)
        start = start._replace(state=start.state._replace(P=P))
    monitor = EpochMonitor(max_iter, tol, n_iter_no_change, validate, on_epoch, report_every)
    patience = min(n_iter_no_change, _NO_PATIENCE)
    progress = _core.Progress(
        tf.constant(schedule.conjugate), tf.constant(rtol, dtype), tf.constant(patience)
    )
    n_bad = state.n_bad if carry and accumulate else 0
    n_seen = state.n_seen if carry and accumulate else 0
    averaging = None
    if average is not None:
        if not minibatch:
            raise ValueError("Averaged SGD averages mini-batch iterates: it needs a batch_size.")
        start, averaging = _start_average(start, average, average_init, n_seen)
    handover = None
    if fallback is not None:
        handover = _handover(fallback, fit_intercept, alpha, prior, tol_eff)
    trainer = Trainer(data, start, schedule, monitor, progress, tol_eff=tol_eff,
                      t=state.t if carry else 0, n_bad=n_bad, handover=handover,
                      average=averaging)  # fmt: skip
    if minibatch:
        trainer.minibatch_loop(epochs)
    else:
        trainer.full_batch_loop()
    return _result(trainer, t_before=state.t if carry else 0, seen_before=n_seen)


def _start_average(start, average, average_init, n_seen):
    """Return the start of an averaged run, and its :class:`~skl_tfreg._core.Average`.

    A continued mean is moved to this run's coordinates, and reported as the
    start's coefficients (so that a chunk already fitted keeps the mean).
    """
    pb, V = start.problem, start.state.V
    A, count = V, 0
    if average_init is not None:
        coef, intercept, count = average_init
        A = tf.constant(_point_from_units(pb, coef, intercept), V.dtype)
        if count > 0:
            units = start.units._replace(coef=tf.constant(coef, V.dtype),
                                         intercept=tf.constant(intercept, V.dtype))  # fmt: skip
            start = start._replace(units=units)
    wide = (float(count), float(n_seen), float(average))
    return start, _core.Average(A, *(tf.constant(x, tf.float64) for x in wide))


def _handover(fallback, fit_intercept, alpha, prior, tol_eff):
    """Return ``handover(units)`` of a :class:`Trainer`: ``fallback()``'s data and start."""

    def handover(units):
        other = fallback()
        coef, intercept = (u.numpy() for u in units[:2])
        intercept = intercept if fit_intercept else np.full_like(intercept, np.nan)
        return other, other.prepare(fit_intercept, alpha, coef, intercept, prior, tol_eff)

    return handover


def _result(trainer, t_before, seen_before):
    """Assemble the :class:`TrainResult` of a finished :class:`Trainer`."""
    monitor, schedule, start = trainer.monitor, trainer.schedule, trainer.start
    coef, intercept, grad, ratio = (u.numpy() for u in trainer.units)
    if monitor.best_units is not None:
        coef, intercept = monitor.best_units
    status = trainer.status
    # A float64 gradient is accurate far below sqrt(tol): stopping at rounding above
    # that means the problem is too ill-conditioned. A float32 gradient's accuracy
    # depends on n and on the columns' offsets, so there the floor is the answer.
    far = monitor.tol is not None and ratio > np.sqrt(trainer.tol_eff)
    # With fewer rows than features only the penalty curves most directions, and a
    # small gradient bounds nothing: a float64 stall there is reported whatever the
    # gradient (float32 stalls stay quiet, as above).
    data = trainer.data
    far |= monitor.tol is not None and data.n_samples < data.n_features
    float64 = data.dtype == tf.float64
    if status is Status.STALLED and schedule.conjugate and monitor.validate is None:
        status = Status.FLOOR if float64 and far else status
    if status is Status.RUNNING:
        status = Status.MAX_ITER
    direction = None
    if schedule.conjugate:
        direction = _direction_in_units(start.problem, trainer.state.P)
    iterate, n_averaged = None, 0
    if trainer.average is not None and monitor.best_units is None:
        iterate = _point_in_units(trainer.pb, trainer.V)
        n_averaged = int(trainer.average.count)
    # Early stopping keeps an earlier epoch's mean, which the last iterate and count do
    # not belong to: a later call continues from it as from any fitted model.
    new_state = TrainState(
        moments=tuple(np.asarray(m) for m in start.moments),
        direction=direction,
        steps=tuple(schedule.saved_steps().items()),
        best=np.asarray(trainer.best, dtype=np.float64),
        n_bad=int(trainer.n_bad),
        t=trainer.t,
        iterate=iterate,
        n_averaged=n_averaged,
        n_seen=seen_before + data.n_samples * monitor.n_done,
    )
    return TrainResult(
        coef=coef,
        intercept=intercept,
        n_epochs=monitor.n_done,
        n_steps=trainer.t - t_before,
        loss_curve=np.asarray(monitor.losses, dtype=np.float64),
        grad_norm=float(grad),
        grad_ratio=float(ratio),
        status=status,
        state=new_state,
        validation_scores=np.asarray(monitor.scores, dtype=np.float64),
    )


def train(X, Y, sample_weight, *, batch_size=None, **kwargs):
    """:func:`run` on arrays in memory: ``X``, ``Y`` of shape (n, n_targets), the weights.

    ``batch_size`` is the nominal mini-batch size of the automatic step; the
    other keywords are :func:`run`'s.
    """
    return run(InMemory(X, Y, sample_weight, batch_size=batch_size), **kwargs)
