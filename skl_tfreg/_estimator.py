"""SGDL2Regressor: the scikit-learn shell around the TensorFlow kernel.

TensorFlow is imported at the first fit, not with the package: the modules of
the TensorFlow side are imported inside the methods that train, so that
constructing, cloning, loading and predicting (numpy only) never start it.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterable
from numbers import Integral, Real
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.utils import assert_all_finite, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import _persistence
from ._callbacks import CallbackSupportMixin, EpochCallbacks, has_callbacks
from ._dask_input import is_dask as _is_dask
from ._state import TrainState
from ._status import Status

# What fit and partial_fit store (and a fit of a new model clears first).
_FITTED = ("coef_", "intercept_", "n_iter_", "t_", "loss_curve_", "validation_scores_",
           "_train_state")  # fmt: skip


class _Arrays(NamedTuple):
    """Validated training arrays."""

    X: np.ndarray  # (n_samples, n_features), or scipy.sparse; float32 or float64
    Y: np.ndarray  # (n_samples, n_targets), X's dtype
    sample_weight: np.ndarray  # (n_samples,), X's dtype
    single: bool  # whether y was 1-D


class _StartingPoint(NamedTuple):
    """Where a training call starts: the fitted model, or nothing (a new model)."""

    coef_init: np.ndarray | None  # (n_features, n_targets)
    intercept_init: np.ndarray | None  # (n_targets,); NaN where the intercept is frozen
    state: TrainState | None


# What a warm start on other targets is told to do.
_NEW_MODEL_HINT = "set warm_start=False to fit a new model"

# Sparse X trains as given in these formats (others are converted to CSR), never densified.
_SPARSE_FORMATS = ["csr", "csc", "coo"]


def _dask_only_in_x(X, *others):
    """Refuse Dask targets or weights beside an X in memory; say whether X is Dask."""
    if not _is_dask(X) and any(_is_dask(a) for a in others):
        raise ValueError(
            "y or sample_weight is a Dask collection but X is not: give X as a dask array or "
            "Dask DataFrame too (the fit then runs on the cluster), or compute them."
        )
    return _is_dask(X)


class _LinearModel(RegressorMixin, BaseEstimator):
    """What the package's regressors share: validation, ``predict``, tags.

    ``_scales`` names the parameters that must not overflow the data's dtype.
    """

    _scales = ()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.input_tags.sparse = True
        return tags

    def __sklearn_is_fitted__(self):
        return hasattr(self, "coef_")

    def _validate_training_data(
        self, X, y, sample_weight, *, reset, dtype=None, finite=False, chunk=False
    ):
        """Return the validated :class:`_Arrays`: X, y as (n_samples, n_targets), the weights.

        Unless ``finite``, X is not scanned for NaN and infinity here: the first
        product of the fit (the weighted column sums) shows them, and then
        :meth:`_check_result` raises scikit-learn's own error, before any step.
        A ``chunk`` of a stream may have weights summing to 0 (the stream's total
        is checked once it is read).
        """
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=_SPARSE_FORMATS,
            dtype=[np.float64, np.float32] if dtype is None else dtype,
            y_numeric=True,
            multi_output=True,
            reset=reset,
            # A sparse X's stored values are few: scanning them costs little.
            ensure_all_finite=finite or sp.issparse(X),
        )
        self._check_scales(X.dtype)
        y = np.asarray(y, dtype=X.dtype)
        # A chunk of a stream may carry no weight at all, which scikit-learn >= 1.9
        # refuses: it is checked as ones, and its zeros are put back.
        silent = chunk and sample_weight is not None and not np.any(sample_weight)
        sample_weight = _check_sample_weight(
            np.ones(np.shape(sample_weight)) if silent else sample_weight, X, dtype=X.dtype,
            ensure_non_negative=True,
        ) * (0 if silent else 1)  # fmt: skip
        with np.errstate(over="ignore"):
            total = sample_weight.sum()
        if not total > 0 and not chunk:  # scikit-learn < 1.9 lets all-zero weights through
            raise ValueError("sample_weight must have a positive sum; all weights are zero.")
        if not np.isfinite(total):
            raise ValueError(
                f"The sample_weight sum overflows {X.dtype.name}; rescale the weights (only "
                "their ratios matter)."
            )
        return _Arrays(X, y.reshape(len(y), -1), sample_weight, y.ndim == 1)

    def _check_scales(self, dtype):
        """Refuse parameters (``_scales``) that overflow the dtype of the fit."""
        for name in self._scales:
            if getattr(self, name) > float(np.finfo(dtype).max):
                raise ValueError(
                    f"{name}={getattr(self, name)} overflows {np.dtype(dtype).name}, the dtype "
                    f"of this fit; use a smaller {name} or float64 data."
                )

    def _dask_partitions(self, X, y, sample_weight):
        """Return the :class:`~skl_tfreg._dask.Partitions` of Dask input (checks only).

        The fitted model is kept until :meth:`_dask_reset`: a refused call changes
        nothing.
        """
        from . import _dask, _distributed

        if _distributed.current_replicas() is not None:
            raise ValueError(
                "Dask input cannot be fitted under a tf.distribute strategy: the cluster "
                "already sums the partitions where they are. Fit outside the strategy's scope."
            )
        if has_callbacks(self):
            raise ValueError(
                "scikit-learn's callbacks follow the epochs of a fit in this process; a fit "
                "on Dask input runs on the cluster and does not call them. Remove them "
                "(set_callbacks()) or compute X to fit in memory."
            )
        parts = _dask.Partitions(X, y, sample_weight)
        self._check_scales(parts.layout.dtype)
        return parts

    def _dask_reset(self, parts):
        """Clear the old fit; set ``n_features_in_`` and ``feature_names_in_`` of ``parts``.

        As ``validate_data`` does for a new model.
        """
        for name in (*_FITTED, "n_features_in_", "feature_names_in_", "alpha_", "alphas_",
                     "mse_path_"):  # fmt: skip
            self.__dict__.pop(name, None)
        self.n_features_in_ = parts.layout.n_features
        if parts.feature_names is not None:
            self.feature_names_in_ = parts.feature_names

    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Return the coefficient of determination R^2 of the predictions.

        As scikit-learn's ``RegressorMixin.score``. On a dask array or Dask
        DataFrame ``X`` (with ``y`` and ``sample_weight`` partitioned alike) the
        sums run on the cluster and only they come back.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            True values.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights.

        Returns
        -------
        score : float
            R^2 of ``self.predict(X)`` against ``y``.
        """
        if _dask_only_in_x(X, y, sample_weight):
            from . import _dask

            check_is_fitted(self)
            return _dask.score(self, X, y, sample_weight)
        return super().score(X, y, sample_weight)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predict ``X @ coef_.T + intercept_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Predicted values; a lazy dask array for a dask array or Dask
            DataFrame ``X``, computed block by block on the cluster.
        """
        check_is_fitted(self)
        if _is_dask(X):
            from . import _dask

            return _dask.predict(self, X)
        X = validate_data(
            self, X, accept_sparse=_SPARSE_FORMATS, dtype=[np.float64, np.float32], reset=False
        )
        # A product that underflows to zero changes no sum it is part of; numpy < 2 reports
        # it from matmul under np.errstate(under="raise"), numpy 2 does not.
        with np.errstate(under="ignore"):
            return np.asarray(X @ self.coef_.T) + self.intercept_


# scikit-learn >= 1.9 has a callback API (set_callbacks, ProgressBar); older ones do not.
# (Bases chosen at import are beyond a type checker: the class line says so.)
_BASES: tuple[type, ...] = (_LinearModel,)
if CallbackSupportMixin is not None:
    _BASES = (CallbackSupportMixin, *_BASES)


class SGDL2Regressor(*_BASES):  # type: ignore[misc]
    """Linear least squares with an L2 penalty, trained by gradient descent in TensorFlow.

    The model predicts ``X @ coef_.T + intercept_`` and minimises, over the
    coefficients ``w`` and the intercept ``b``::

        J(w, b) = sum_i s_i (x_i . w + b - y_i)^2 / sum_i s_i  +  alpha * ||w||^2

    where ``s`` are the sample weights (ones by default) and the intercept is
    not penalised; with several targets ``J`` is the sum of one such term per
    target. ``SGDRegressor(penalty="l2", alpha=alpha)`` minimises ``J / 2``
    (with unit weights; it writes both terms with a factor 1/2), so the two
    share their minimiser, and that minimiser is ``Ridge(alpha=alpha * sum(s))``:
    Ridge penalises the *sum* of squared errors, this estimator and
    SGDRegressor the *mean*.

    Training runs in TensorFlow on centred and scaled coordinates (a
    preconditioner only: the fitted coefficients minimise ``J`` in the units of
    ``X`` and ``y``). With the defaults every epoch is one full pass over the
    data that takes a conjugate-gradient step of the size that minimises ``J``
    along it, so no step size needs tuning and the fit ends at Ridge's answer.
    With an integer ``batch_size`` it runs mini-batch stochastic gradient
    descent instead.

    Parameters
    ----------
    alpha : float, default=1e-4
        Strength of the L2 penalty on ``coef_``; must be non-negative.
    fit_intercept : bool, default=True
        Whether to fit the intercept. If False, ``intercept_`` is 0 and the data
        is not centred.
    max_iter : int, default=1000
        Most epochs (passes over the data) to run.
    tol : float or None, default=1e-10
        Stopping tolerance. Training stops when the norm of the gradient of
        ``J`` in the preconditioned coordinates is at most ``tol * sqrt(J)``
        (both in units of ``y``, so the rule does not depend on the scale of the
        data; in float32 the rule uses ``max(tol, 1.2e-6)``), or after
        ``n_iter_no_change`` epochs in a row without progress: the objective
        falling by more than ``tol`` of itself, or with ``early_stopping`` the
        validation score rising by more than ``tol``. (Full-batch ``"auto"``
        steps count any fall of the objective beyond rounding, or of the
        gradient norm by 1%, as progress: conjugate gradients can plateau and
        then drop.) The default is tight
        enough that float64 fits agree with Ridge to about 1e-9. ``None``
        turns the rules off and runs ``max_iter`` epochs (a full-batch fit
        still stops at the rounding floor, or once ``y`` is fitted to rounding).
    n_iter_no_change : int, default=5
        Epochs without progress (see ``tol``) before training stops or, with
        ``learning_rate="adaptive"`` and mini-batch ``"auto"``, the step is
        divided by 5.
    batch_size : "auto" or int, default="auto"
        Rows per gradient step. ``"auto"`` uses all rows (full-batch gradient
        descent, deterministic and exact). An integer smaller than the number
        of samples gives mini-batches in the order of :func:`iter_epochs`.
    precompute : "auto" or bool, default="auto"
        Whether a full-batch fit (``batch_size="auto"``, ``learning_rate="auto"``)
        trains on the sufficient statistics of the data: one pass sums the
        weighted Gram matrix of ``[X, 1, y]``, the minimiser is solved from it
        in one compiled call, and one more pass checks it against the data
        (refining it if rounding in the statistics left the gradient rule
        unmet), so ``n_iter_`` is usually 1. ``False`` runs the
        conjugate-gradient epochs of one pass each instead. ``"auto"`` takes
        the statistics where they cost less (at most 256 dense features; sparse
        X of at most 64 features with at least 5% of its values stored) and
        falls back to the epochs if a statistic overflows; ``True`` takes them
        at any width (they are exact on degenerate designs and give the
        least-norm coefficients at ``alpha=0``) and raises an error naming the
        columns that overflow. ``partial_fit`` always trains one epoch of
        the data on each call; see the user guide.
    learning_rate : {"auto", "constant", "invscaling", "adaptive"}, default="auto"
        Step size rule. ``"auto"`` needs no tuning: with full batches it takes
        the exact line-search step along conjugate-gradient directions; with
        mini-batches it starts at ``1 / (2 L(b))`` for the data's expected
        smoothness ``L(b)`` and divides the step by 5 whenever the objective
        stalls (at most 5 times). The others take plain (preconditioned)
        gradient steps: ``"constant"`` of size ``eta0``; ``"invscaling"`` of
        size ``eta0 / (t + 1) ** power_t`` at step ``t``; ``"adaptive"`` of size
        ``eta0``, divided by 5 after every ``n_iter_no_change`` epochs without
        progress, stopping once it falls below 1e-6. ``"auto"`` and
        ``"adaptive"`` undo an epoch whose objective explodes and retry with a
        step 5 times smaller.
    eta0 : float, default=0.01
        Initial step size of ``"constant"``, ``"invscaling"`` and
        ``"adaptive"``, in the preconditioned coordinates, where the diagonal
        entries of the Hessian are 2: with full batches steps up to
        ``1 / (n_features + 1)`` are always safe. A mini-batch's curvature can
        be far larger (up to ``n_samples / batch_size`` times, for one
        outlying row), so mini-batches may need smaller steps.
    power_t : float, default=0.25
        Exponent of ``"invscaling"``.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (drawn with
        ``random_state``), score R^2 on them after every epoch, stop after
        ``n_iter_no_change`` epochs without an improvement by ``tol``, and keep
        the coefficients of the best epoch. ``fit`` only.
    validation_fraction : float, default=0.1
        Share of the rows held out by ``early_stopping``, in (0, 1).
    shuffle : bool, default=True
        Shuffle the rows at every epoch (mini-batches only; a full-batch
        gradient does not depend on the order of rows).
    random_state : int, RandomState instance or None, default=None
        Seed of the shuffling and of the validation split.
    warm_start : bool, default=False
        Start ``fit`` from the previous ``coef_`` and ``intercept_`` and
        continue the step rule (its step size, step count ``t_`` and search
        direction) instead of starting afresh.
    average : bool or int, default=False
        Averaged SGD, as in SGDRegressor: with mini-batches, ``coef_`` and
        ``intercept_`` are the mean of the iterates after each step, from the
        step whose rows bring the count of rows seen to ``average`` on
        (``True`` is 1: every step). A constant step leaves the iterates
        wandering around the minimiser; their mean comes far closer to it.
        ``loss_curve_`` and the stopping rules read the iterates themselves;
        early stopping, ``verbose`` and callbacks see the mean. ``partial_fit``
        continues both the last iterate and the mean; a ``fit`` (also a warm
        start, from ``coef_``) starts a new mean. Needs an integer
        ``batch_size`` (with one of ``n_samples`` or more, every epoch is one
        averaged step in memory, and every batch one in ``fit_stream``);
        ``batch_size="auto"`` refuses it, since full-batch steps have no noise
        to average away.
    verbose : int, default=0
        If positive, print the epoch, objective, gradient norm, coefficients
        ``W``, intercept ``b`` and elapsed time every ``verbose`` epochs.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
        Fitted coefficients, in the dtype of the training data.
    intercept_ : numpy scalar or ndarray of shape (n_targets,)
        Fitted intercept (0 when ``fit_intercept=False``).
    n_iter_ : int
        Number of epochs run by ``fit`` (0 when a warm start already meets
        ``tol``), plus those run by later ``partial_fit`` calls (one each, none
        for a chunk already fitted to ``tol``).
    t_ : int
        Number of gradient steps taken since the last fit that was not a warm
        start (equal to the epochs with full batches).
    loss_curve_ : ndarray of shape (`n_iter_`,)
        The objective ``J`` after each epoch (``partial_fit`` appends its
        epoch). For mini-batches it is the estimate made during the epoch, as
        SGDRegressor does: each batch's weighted squared error at the
        coefficients before its step, summed and divided by ``sum(s)``, plus
        the penalty at the epoch's end.
    validation_scores_ : ndarray of shape (`n_iter_`,)
        R^2 on the held-out rows after each epoch; only with ``early_stopping``.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when ``X`` has string column names.

    See Also
    --------
    sklearn.linear_model.Ridge : The same minimiser, solved directly, with
        ``alpha`` scaled by the sum of the weights.
    sklearn.linear_model.SGDRegressor : The same objective with per-sample
        steps and a loss-based stopping rule.

    Examples
    --------
    >>> import numpy as np
    >>> from skl_tfreg import SGDL2Regressor
    >>> X = np.arange(10.0).reshape(-1, 1)
    >>> y = 3.0 * X[:, 0] + 2.0
    >>> reg = SGDL2Regressor(alpha=0.0).fit(X, y)
    >>> print(np.round(reg.coef_, 6), np.round(reg.intercept_, 6))
    [3.] 2.0
    """

    _scales = ("alpha", "eta0")
    _parameter_constraints: dict = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "precompute": [StrOptions({"auto"}), "boolean"],
        "learning_rate": [StrOptions({"auto", "constant", "invscaling", "adaptive"})],
        "eta0": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "average": [Interval(Integral, 0, None, closed="left"), "boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        alpha=1e-4,
        fit_intercept=True,
        max_iter=1000,
        tol=1e-10,
        n_iter_no_change=5,
        batch_size="auto",
        precompute="auto",
        learning_rate="auto",
        eta0=0.01,
        power_t=0.25,
        early_stopping=False,
        validation_fraction=0.1,
        shuffle=True,
        random_state=None,
        warm_start=False,
        average=False,
        verbose=0,
    ):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.batch_size = batch_size
        self.precompute = precompute
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.average = average
        self.verbose = verbose

    def _check_targets(self, Y, single, action):
        fitted = 1 if np.ndim(self.coef_) == 1 else self.coef_.shape[0]
        if Y.shape[1] != fitted or single != (np.ndim(self.coef_) == 1):
            shape = "1-D" if np.ndim(self.coef_) == 1 else f"{fitted} columns"
            raise ValueError(
                f"y has {'shape (n_samples,)' if single else f'{Y.shape[1]} columns'} but "
                f"this SGDL2Regressor was fitted on y of {shape}; {action}."
            )

    def _warm(self):
        """Whether ``fit`` and ``fit_stream`` continue from the fitted model."""
        return self.warm_start and hasattr(self, "coef_")

    def _initial_state(self):
        """Return the :class:`_StartingPoint` that continues from the fitted model."""
        coef = np.atleast_2d(self.coef_).T  # (n_features, n_targets)
        intercept = np.atleast_1d(self.intercept_)
        if not self.fit_intercept:
            intercept = np.full_like(intercept, np.nan)  # frozen at 0 in any case
        return _StartingPoint(coef, intercept, getattr(self, "_train_state", None))

    def _given_start(self, coef_init, intercept_init, arrays):
        """Return the :class:`_StartingPoint` of ``fit``'s ``coef_init`` and ``intercept_init``.

        None when neither is given. Shapes follow ``coef_`` and ``intercept_``.
        """
        if coef_init is None and intercept_init is None:
            return None
        p, k = arrays.X.shape[1], arrays.Y.shape[1]
        dtype = arrays.X.dtype
        coef = intercept = None
        if coef_init is not None:
            coef = _initial_array("coef_init", coef_init, (p,) if arrays.single else (k, p))
            coef = np.atleast_2d(coef).T.astype(dtype)  # (n_features, n_targets)
        if intercept_init is not None:
            if not self.fit_intercept:
                raise ValueError(
                    "intercept_init was given but fit_intercept=False fixes the intercept "
                    "at 0; leave intercept_init out or set fit_intercept=True."
                )
            shapes = ((), (1,)) if arrays.single else ((k,),)
            intercept = _initial_array("intercept_init", intercept_init, *shapes)
            intercept = np.atleast_1d(intercept).astype(dtype)
        if self._warm():  # the half not given comes from the fitted model, as in SGDRegressor
            fitted = self._initial_state()
            coef = fitted.coef_init if coef is None else coef
            intercept = fitted.intercept_init if intercept is None else intercept
        return _StartingPoint(coef, intercept, None)

    def _open(self, *, resume, check_input, check_settings=None, given=None):
        """Open a training call: the one opening of fit, partial_fit and fit_stream.

        First the settings are checked (those a tf.distribute strategy in scope
        cannot train, and ``check_settings()``): a call refused for them changes
        nothing. Then, unless training continues from the fitted model
        (``resume``), the fitted attributes are cleared: a call that fails from
        here on leaves the estimator unfitted, not half of the old model beside
        the new ``n_features_in_``. ``check_input(replicas)`` validates the input
        and returns ``(inputs, dtype)``. Under a strategy every worker then agrees
        on the settings and the starting point before any training, and a worker
        that failed in here makes the others fail too (:mod:`skl_tfreg._distributed`).
        ``given(inputs)``, if set, returns a starting point the caller gave
        (``fit``'s ``coef_init`` and ``intercept_init``), or None.

        Returns
        -------
        replicas : Replicas or None
            The strategy's replicas, or None outside any strategy's scope.
        inputs : object
            What ``check_input`` returned.
        start : _StartingPoint
            Where training starts.
        """
        from . import _distributed

        replicas = _distributed.current_replicas()
        params = None if replicas is None else self.get_params(deep=False)
        with _distributed.together(replicas) as agreement:
            _distributed.check_parameters(replicas, params)
            self._check_average()
            if check_settings is not None:
                check_settings()
            if not resume:
                for name in _FITTED:
                    self.__dict__.pop(name, None)
            inputs, dtype = check_input(replicas)
            start = None if given is None else given(inputs)
            if start is None:
                start = self._initial_state() if resume else _StartingPoint(None, None, None)
            if replicas is not None:  # only workers have anything to agree on
                agreement["fingerprint"] = _distributed.fingerprint(params, dtype, start)
        return replicas, inputs, start

    def _check_average(self):
        """Refuse ``average`` without mini-batches: full-batch steps have no noise to average."""
        if self.average and self.batch_size == "auto":
            raise ValueError(
                f"average={self.average} averages the iterates of mini-batch steps, but "
                "batch_size='auto' takes full-batch steps, whose exact answer needs no "
                "averaging; set an integer batch_size, or average=False."
            )

    def _batch_rows(self, n_samples):
        """Rows per step on ``n_samples`` rows in memory, or None for full-batch epochs.

        An integer ``batch_size`` of ``n_samples`` or more takes full batches,
        unless ``average`` asks for averaged (mini-batch) steps.
        """
        if self.batch_size == "auto" or (self.batch_size >= n_samples and not self.average):
            return None
        return self.batch_size

    def _on_statistics(self, full_batch):
        """Whether a fit may train on statistics (the data's width decides for "auto").

        Raises ValueError where ``precompute=True`` asks for what the other
        settings exclude: mini-batches, or steps of another rule.
        """
        if self.precompute is True and not (full_batch and self.learning_rate == "auto"):
            asked = (f"learning_rate='{self.learning_rate}'" if full_batch
                     else f"batch_size={self.batch_size} (mini-batches)")  # fmt: skip
            if not full_batch and self.average:
                asked = f"average={self.average} (averaged mini-batch steps)"
            raise ValueError(
                "precompute=True solves full batches on the data's statistics, with the "
                f"exact steps of learning_rate='auto'; {asked} asks for other steps. Use "
                "precompute='auto' or False, or batch_size='auto' and learning_rate='auto'."
            )
        return full_batch and self.precompute is not False and self.learning_rate == "auto"

    def _statistics(self, chunks, replicas, X=None):
        """Return :class:`~skl_tfreg._statistics.Statistics` of ``chunks``, or None.

        None where ``precompute="auto"`` declines: data on which the statistics
        cost more than the data passes (:func:`~skl_tfreg._statistics.cheaper`),
        or a statistic that overflows (the data passes handle such scales, and
        report non-finite values as before).
        """
        from ._statistics import Statistics, TooWide, cheaper
        from ._streaming import LOCAL

        def costly(X):
            return not cheaper(X, width_only=replicas is not None)

        try:
            stats = Statistics(chunks, replicas=replicas or LOCAL,
                               too_wide=costly if self.precompute == "auto" else None)  # fmt: skip
        except TooWide:
            return None
        bad = stats.overflowing()
        if not bad:
            return stats
        if self.precompute == "auto":
            return None
        if X is not None:
            assert_all_finite(X, input_name="X")  # NaN or infinity: scikit-learn's error
        raise ValueError(
            f"The sufficient statistics of {', '.join(bad[:10])} overflow float64 when "
            "squared and summed; rescale them, or use precompute=False (the data passes "
            "scale each column before squaring it)."
        )

    def _training_data(self, arrays, replicas, partial=False):
        """Return the :class:`~skl_tfreg._data.TrainingData` of validated arrays.

        Also returns the fallback of training on statistics (a callable giving
        the data passes, should rounding stall it), or None.
        """
        from ._statistics import cheaper, one_call, row_blocks

        X, Y, sample_weight, _ = arrays
        full_batch = self._batch_rows(X.shape[0]) is None

        def passes():
            return self._data_passes(arrays, replicas)

        if not partial and self._on_statistics(full_batch):
            local = replicas is None and (self.precompute is True or cheaper(X))
            small = one_call(X, Y, sample_weight) if local else None
            if small is not None:  # summed, solved and checked in one compiled call
                return small, passes
            shards = 1 if replicas is None else replicas.n
            stats = self._statistics(row_blocks(X, Y, sample_weight, shards), replicas, X=X)
            if stats is not None:
                return stats, passes
        return passes(), None

    def _data_passes(self, arrays, replicas):
        """Return the data of epochs that read the rows: in memory, or over replicas."""
        from ._data import InMemory
        from ._distributed import replicated

        X, Y, sample_weight, _ = arrays
        if replicas is not None:  # this worker's rows, one shard per local replica
            return replicated(X, Y, sample_weight, replicas)
        batch_size = self._batch_rows(X.shape[0])
        return InMemory(X, Y, sample_weight, batch_size=batch_size, shuffle=self.shuffle)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        *,
        coef_init: ArrayLike | None = None,
        intercept_init: ArrayLike | None = None,
    ) -> SGDL2Regressor:
        """Fit the coefficients by gradient descent on ``J``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data. float32 data trains in float32, everything else in
            float64. Never modified.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets; a 2-D ``y`` fits one model per column in the same run. The
            fitted shapes follow ``y``, as in LinearRegression: a one-column 2-D
            ``y`` gives ``coef_`` of shape (1, n_features) and 2-D predictions.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights ``s_i`` with a positive sum; ones when None.
        coef_init : array-like of shape (n_features,) or (n_targets, n_features), default=None
            Where the descent starts, as in SGDRegressor (keyword-only here:
            ``sample_weight`` keeps its place, as in Ridge). It overrides
            ``warm_start``'s coefficients (the half not given, coefficients or
            intercept, still comes from the fitted model), and the step rule
            starts afresh. A
            fit on statistics (the default full batch) solves for the
            minimiser directly, so there it changes nothing but where
            ``loss_curve_`` would begin.
        intercept_init : float or array-like of shape (n_targets,), default=None
            The starting intercept; None takes the one that is exact for
            ``coef_init``. Refused with ``fit_intercept=False``.

        Returns
        -------
        self : SGDL2Regressor
            The fitted estimator.
        """
        if _dask_only_in_x(X, y, sample_weight):
            return self._fit_dask(X, y, sample_weight, coef_init, intercept_init)
        warm = self._warm()

        def given(arrays):
            return self._given_start(coef_init, intercept_init, arrays)

        def check_input(replicas):
            # Early stopping holds rows out of training: scan them all first. Under a
            # strategy one worker's weights may all be 0 (the total may not), and X is
            # scanned here: a NaN would reach every worker through the sums.
            arrays = self._validate_training_data(
                X, y, sample_weight, reset=not warm,
                finite=self.early_stopping or replicas is not None, chunk=replicas is not None,
            )  # fmt: skip
            if warm:
                self._check_targets(arrays.Y, arrays.single, _NEW_MODEL_HINT)
            return arrays, arrays.X.dtype

        replicas, arrays, start = self._open(resume=warm, check_input=check_input, given=given)
        rng = check_random_state(self.random_state)
        score = None
        if self.early_stopping:
            arrays, score = self._validation_split(arrays, rng)
        callbacks = None
        if has_callbacks(self):
            callbacks = EpochCallbacks(
                self, arrays.X, arrays.Y[:, 0] if arrays.single else arrays.Y,
                {"sample_weight": arrays.sample_weight}, self.max_iter,
                lambda c, b: self._attributes(c, b, arrays.single),
            )  # fmt: skip
        try:
            data, fallback = self._training_data(arrays, replicas)
            result = self._train(data, start, rng, max_iter=self.max_iter, validate=score,
                                 callbacks=callbacks, fallback=fallback)  # fmt: skip
            self._finish(result, data, arrays.single, X=arrays.X)
        finally:
            if callbacks is not None:  # the fit's task ends with the fitted model, if any
                fitted = hasattr(self, "coef_")
                attributes = {n: getattr(self, n) for n in _FITTED if fitted and hasattr(self, n)}
                callbacks.close(attributes)
        return self

    def _fit_dask(self, X, y, sample_weight, coef_init, intercept_init):
        """Fit on Dask input: statistics summed on the workers, solved here (one pass, one check).

        Full-batch fits on statistics only: the other settings would move rows
        or read them once per epoch.
        """
        from . import _dask_statistics
        from ._statistics import MAX_FEATURES

        self._check_average()
        refused = []
        if self.batch_size != "auto":
            refused.append(f"batch_size={self.batch_size} (mini-batches)")
        if self.learning_rate != "auto":
            refused.append(f"learning_rate='{self.learning_rate}'")
        if self.precompute is False:
            refused.append("precompute=False (data passes)")
        if self.early_stopping:
            refused.append("early_stopping=True (held-out rows)")
        if refused:
            raise ValueError(
                "Dask input is fitted on the sufficient statistics of its partitions, summed "
                "where they are, with the exact full-batch steps; "
                f"{', '.join(refused)} would need the rows elsewhere or once per step. Use "
                "batch_size='auto', learning_rate='auto', precompute='auto' or True and "
                "early_stopping=False, or compute X to fit in memory."
            )
        parts = self._dask_partitions(X, y, sample_weight)
        layout = parts.layout
        p = layout.n_features
        if p > _dask_statistics.MAX_FEATURES and self.precompute is not True:
            raise ValueError(
                f"Dask input is fitted on statistics of (p + 1 + k)^2 values per partition; "
                f"with {p} features precompute='auto' declines them (above "
                f"{_dask_statistics.MAX_FEATURES}; in memory the data passes would run, above "
                f"{MAX_FEATURES}). Set precompute=True to sum them anyway."
            )
        # The starting point is checked as in memory; statistics solve for the minimiser
        # directly, so it changes nothing else.
        shapes = _Arrays(np.empty((0, p), layout.dtype), np.empty((0, layout.n_targets)), None,
                         parts.single)  # fmt: skip
        self._given_start(coef_init, intercept_init, shapes)
        self._dask_reset(parts)
        stats = _dask_statistics.DaskStatistics(parts)
        bad = stats.overflowing()
        if bad:
            raise ValueError(
                f"The sufficient statistics of {', '.join(bad[:10])} overflow float64 when "
                "squared and summed; rescale them."
            )
        start, rng = _StartingPoint(None, None, None), check_random_state(self.random_state)
        result = self._train(stats, start, rng, max_iter=self.max_iter)
        self._finish(result, stats, parts.single)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> SGDL2Regressor:
        """Train one epoch on a chunk of rows, continuing from the current model.

        The preconditioner's moments, the step rule (step size, step count
        ``t_``, search direction) and the stall count carry over between calls,
        so with ``shuffle=False`` and ``tol=None`` ``k`` calls on the same data
        take the same steps as ``fit`` with ``max_iter=k``. (With a ``tol``,
        each call judges progress against the chunk's own objective at its
        start, where ``fit`` compares with the lowest objective so far, so
        mini-batch step reductions can come at other epochs.) A chunk that the
        model already fits to ``tol`` is not trained on, and adds no epoch.
        ``early_stopping`` does not apply.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data, with the features of the first call.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Its targets, with the shape of the first call's.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights with a positive sum; ones when None.

        Returns
        -------
        self : SGDL2Regressor
            The updated estimator.
        """
        if _dask_only_in_x(X, y, sample_weight):
            raise ValueError(
                "partial_fit trains one epoch on a chunk held in memory; for data on a Dask "
                "cluster use fit, which sums the statistics of every partition where it is."
            )
        first = not hasattr(self, "coef_")

        def check_input(replicas):
            arrays = self._validate_training_data(
                X, y, sample_weight, reset=first, dtype=None if first else self.coef_.dtype,
                finite=replicas is not None, chunk=replicas is not None,
            )  # fmt: skip
            if not first:
                self._check_targets(arrays.Y, arrays.single, "call fit to start a new model")
            return arrays, arrays.X.dtype

        replicas, arrays, start = self._open(resume=not first, check_input=check_input)
        data, _ = self._training_data(arrays, replicas, partial=True)
        rng = self._chunk_rng(0 if first else self.n_iter_)
        start, average_init = self._continued_average(start)
        result = self._train(data, start, rng, max_iter=1, accumulate=True,
                             average_init=average_init)  # fmt: skip
        self._finish(result, data, arrays.single, X=arrays.X, partial=True)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_stream(self, source: Callable[[], Iterable[Any]] | Any) -> SGDL2Regressor:
        """Fit on data read in batches, one pass over all of them per epoch.

        For data larger than memory: only one batch is held at a time. The
        stream is read once for the weighted moments of all its rows (the
        preconditioner, as in :meth:`fit`), once for the starting gradient, and
        once per epoch, up to ``max_iter`` epochs with the stopping rules of
        :meth:`fit`. With ``batch_size="auto"`` every epoch is the full-batch
        conjugate-gradient step of :meth:`fit` on all the rows, so the result is
        the in-memory fit's (to rounding) however the rows are batched. With an
        integer ``batch_size`` each batch is cut into mini-batches of that many
        rows, in order (shuffled within the batch if ``shuffle``), one step each:
        batches of ``batch_size`` rows in the order of ``fit`` with
        ``shuffle=False`` give that fit's steps. ``early_stopping`` and
        scikit-learn's callbacks do not apply; ``verbose`` does.

        Parameters
        ----------
        source : callable or tf.data.Dataset
            A callable returning a new iterable of batches for each epoch (the
            ``generate_epochs`` of a TF1-style training loop), or a ``tf.data.Dataset`` of
            batches. Each batch is ``(X, y)`` or ``(X, y, sample_weight)`` with
            the shapes :meth:`fit` takes (X may be scipy.sparse or a pandas
            DataFrame); every batch must have the same features, and ``y`` the
            same number of targets. A source with a ``feature_names``
            attribute (such as :class:`skl_tfreg.CSVSource`) sets
            ``feature_names_in_``.

        Returns
        -------
        self : SGDL2Regressor
            The estimator, fitted on every row of the stream.
        """
        from . import _streaming

        warm = self._warm()

        def check_settings():
            if self.early_stopping:
                raise ValueError(
                    "early_stopping=True holds rows out of training, which fit_stream cannot "
                    "do on a stream; use fit, or set early_stopping=False."
                )
            _streaming.epoch_reader(source)  # refuses a source of the wrong kind

        def check_input(replicas):
            names = getattr(source, "feature_names", None)
            if names is not None:
                names = np.asarray(names, dtype=object)
                if warm and getattr(self, "feature_names_in_", names).tolist() != names.tolist():
                    raise ValueError(
                        "The source's feature_names differ from the feature_names_in_ this "
                        "SGDL2Regressor was fitted with; set warm_start=False to fit a new "
                        "model."
                    )
            return names, None

        replicas, names, start = self._open(
            resume=warm, check_input=check_input, check_settings=check_settings
        )
        read = _streaming.epoch_reader(source)
        chunks, layout = self._validated_chunks(read, warm)
        full_batch = self.batch_size == "auto"
        # Array batches of a named source would warn against the fitted names: they
        # are set again once trained, or put back if a warm start fails.
        saved = self.__dict__.pop("feature_names_in_", None) if names is not None else None
        saved = saved if warm else None
        try:
            stream, fallback = self._stream_data(chunks, replicas, full_batch)
            result = self._train(stream, start, check_random_state(self.random_state),
                                 max_iter=self.max_iter, fallback=fallback)  # fmt: skip
            self._finish(result, stream, layout["single"])
        except BaseException:
            if saved is not None:
                self.feature_names_in_ = saved
            raise
        if names is not None:
            self.feature_names_in_ = names
        return self

    def _stream_data(self, chunks, replicas, full_batch):
        """Return the training data of a stream, and the fallback of its statistics.

        The statistics where ``precompute`` takes them (the data passes are
        then the fallback, None otherwise), else a Stream of data passes.
        """
        from . import _streaming

        def passes():
            return _streaming.Stream(
                chunks, batch_size=None if full_batch else self.batch_size,
                shuffle=self.shuffle, auto_step=not full_batch and self.learning_rate == "auto",
                replicas=replicas or _streaming.LOCAL,
            )  # fmt: skip

        stats = self._statistics(chunks, replicas) if self._on_statistics(full_batch) else None
        return (passes(), None) if stats is None else (stats, passes)

    def _validated_chunks(self, read, warm):
        """Return a chunk source that validates each batch of ``read()``, and its layout.

        The layout (a dict) gets the dtype, whether y is 1-D and the number of
        targets from the first batch; every later batch must match it.
        """
        from ._streaming import unpack

        layout = {"dtype": self.coef_.dtype} if warm else {}

        def chunks():
            for index, batch in enumerate(read()):
                X, y, sample_weight = unpack(batch, index)
                first = "single" not in layout
                arrays = self._validate_training_data(
                    X, y, sample_weight, reset=first and not warm, dtype=layout.get("dtype"),
                    finite=True, chunk=True,
                )  # fmt: skip
                shape = (arrays.single, arrays.Y.shape[1])
                if first:
                    layout.update(dtype=arrays.X.dtype, single=shape[0], n_targets=shape[1])
                    if warm:
                        self._check_targets(arrays.Y, arrays.single, _NEW_MODEL_HINT)
                elif shape != (layout["single"], layout["n_targets"]):
                    pairs = (shape, (layout["single"], layout["n_targets"]))
                    shapes = ["1-D" if one else f"{k} columns" for one, k in pairs]
                    raise ValueError(
                        f"Batch {index} of the stream has y of {shapes[0]}, where the first "
                        f"batch had y of {shapes[1]}; every batch needs the same targets."
                    )
                yield arrays.X, arrays.Y, arrays.sample_weight

        return chunks, layout

    def _continued_average(self, start):
        """Return ``partial_fit``'s start under averaging: the last iterate, and the mean.

        The mean (``coef_``, ``intercept_``) and its count go on as the
        ``average_init`` of :func:`~skl_tfreg._training.run`; without averaging,
        or after a fit that did not average, training continues from ``coef_``.
        """
        state = start.state
        if not self.average or state is None or state.iterate is None:
            return start, None
        dtype = self.coef_.dtype
        mean = (start.coef_init, np.atleast_1d(self.intercept_).astype(dtype), state.n_averaged)
        coef, intercept = state.iterate
        return start._replace(coef_init=coef, intercept_init=intercept), mean

    def _chunk_rng(self, done):
        """Return the shuffling of ``partial_fit``'s epoch ``done``, reproducible by seed."""
        if isinstance(self.random_state, Integral):
            return np.random.default_rng([self.random_state, done])
        return check_random_state(self.random_state)

    def _validation_split(self, arrays, rng):
        """Hold out ``validation_fraction`` of the rows; the rest, and an R^2 scorer."""
        X, Y, sample_weight, single = arrays
        X = X.tocsr() if sp.issparse(X) else X  # rows are taken out of it
        n_samples = X.shape[0]
        n_val = math.ceil(self.validation_fraction * n_samples)
        if n_val < 2 or n_samples - n_val < 1:
            raise ValueError(
                f"early_stopping needs at least 2 validation rows and 1 training row: "
                f"validation_fraction={self.validation_fraction} of {n_samples} samples "
                f"gives {n_val} and {n_samples - n_val}. Use more samples, change "
                "validation_fraction, or set early_stopping=False."
            )
        order = rng.permutation(n_samples)
        val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
        X_val, Y_val, s_val = X[val], Y[val], sample_weight[val]
        if not s_val.sum() > 0 or not sample_weight[train].sum() > 0:
            raise ValueError(
                "early_stopping drew a validation or training split whose sample_weight "
                "sums to zero; change random_state or validation_fraction."
            )

        def score(coef, intercept):
            return r2_score(Y_val, X_val @ coef + intercept, sample_weight=s_val)

        return _Arrays(X[train], Y[train], sample_weight[train], single), score

    def _train(self, data, start, rng, *, max_iter, accumulate=False, validate=None,
               callbacks=None, fallback=None, average_init=None):  # fmt: skip
        """Run :func:`skl_tfreg._training.run` on ``data`` with this estimator's parameters.

        ``rng`` shuffles the mini-batch epochs (``data.epochs``); ``fallback``
        gives the data passes that continue a stalled fit on statistics.
        """
        from . import _training

        report_every = 1 if callbacks is not None else int(self.verbose)

        def on_epoch(report):
            if self.verbose and (report.epoch % self.verbose == 0 or report.final):
                _print_progress(report)
            return callbacks is not None and callbacks.epoch_end(report)

        return _training.run(
            data,
            alpha=self.alpha,
            fit_intercept=self.fit_intercept,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            learning_rate=self.learning_rate,
            eta0=self.eta0,
            power_t=self.power_t,
            epochs=None if data.batch_size is None else data.epochs(rng),
            max_iter=max_iter,
            coef_init=start.coef_init,
            intercept_init=start.intercept_init,
            state=start.state,
            accumulate=accumulate,
            validate=validate,
            on_epoch=on_epoch if report_every else None,
            report_every=max(report_every, 1),
            fallback=fallback,
            average=int(self.average) if self.average and data.batch_size else None,
            average_init=average_init,
        )

    def _attributes(self, coef, intercept, single):
        """Fitted attributes from the core's (n_features, n_targets) coefficients."""
        coef, intercept = coef.T, np.asarray(intercept)
        if not self.fit_intercept:
            intercept = np.zeros_like(intercept)
        if single:
            return {"coef_": coef[0], "intercept_": intercept[0]}
        return {"coef_": coef, "intercept_": intercept}

    def _finish(self, result, data, single, *, X=None, partial=False):
        """Close a training call: the one closing of fit, partial_fit and fit_stream.

        Checks the result (raising before anything is stored), then stores the
        fitted attributes; ``partial_fit`` adds its epochs to the model's.
        """
        dtype = data.dtype.as_numpy_dtype
        self._check_result(result, dtype, data.batch_size is None, X=X, partial=partial)
        earlier = partial and hasattr(self, "coef_")
        for name, value in self._attributes(result.coef, result.intercept, single).items():
            setattr(self, name, value)
        self.t_ = result.state.t
        self._train_state = result.state
        if earlier:
            self.n_iter_ += result.n_epochs
            self.loss_curve_ = np.concatenate([self.loss_curve_, result.loss_curve])
        else:
            self.n_iter_ = result.n_epochs
            self.loss_curve_ = result.loss_curve
        if self.early_stopping and not partial:
            self.validation_scores_ = result.validation_scores
        else:
            self.__dict__.pop("validation_scores_", None)

    def _check_result(self, result, dtype, full_batch, X=None, partial=False):
        finite = np.all(np.isfinite(result.coef)) and np.all(np.isfinite(result.intercept))
        if result.status is Status.OVERFLOW:
            if X is not None:  # NaN or infinity in X: scikit-learn's error
                assert_all_finite(X, input_name="X")
            raise ValueError(
                f"The values of X, y or sample_weight overflow {np.dtype(dtype).name} when "
                "squared and summed; rescale them or pass float64 data."
            )
        if result.status is Status.DIVERGED or not finite:
            if self.learning_rate in ("constant", "invscaling"):
                hint = f"lower eta0 (now {self.eta0}) or use learning_rate='auto'"
            elif self.learning_rate == "adaptive":
                hint = (
                    f"the step stayed too large after 10 reductions by 5; use a smaller eta0 "
                    f"(now {self.eta0}) or a larger batch_size"
                )
            elif not full_batch:
                hint = (
                    "the step estimated from the data stayed too large after 10 reductions "
                    "by 5; use a larger batch_size"
                )
            else:
                hint = (
                    f"the values of X or y overflow {np.dtype(dtype).name}; rescale them "
                    "or pass float64 data"
                )
            raise ValueError(
                f"Training diverged after {result.n_epochs} epochs: the objective grew "
                f"past ten times its starting value or became non-finite; {hint}."
            )
        if partial:
            return  # one epoch by design: no limit cut it short
        if result.status is Status.MAX_ITER and self.tol is not None:
            warnings.warn(
                f"SGDL2Regressor stopped at max_iter={self.max_iter} epochs before the "
                f"gradient rule was met (gradient / sqrt(objective) = {result.grad_ratio:.3g}, "
                f"tol={self.tol}); increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=4,  # fit's caller: scikit-learn's fit context
            )
        if result.status is Status.FLOOR:
            warnings.warn(
                f"SGDL2Regressor stopped after {result.n_epochs} epochs because neither the "
                f"objective nor its gradient improved any more in {np.dtype(dtype).name} "
                f"(gradient / sqrt(objective) = {result.grad_ratio:.3g}, tol={self.tol}): "
                "the problem is too ill-conditioned for gradient descent in this precision. "
                "A larger alpha or columns of less extreme scales help; Ridge, a direct "
                "solver, does not need them.",
                ConvergenceWarning,
                stacklevel=4,  # fit's caller: scikit-learn's fit context
            )

    def save(self, path: str | os.PathLike[str]) -> SGDL2Regressor:
        """Save the estimator to ``path`` in a safe format (no pickle).

        The file holds JSON metadata (parameters, fitted scalars, versions of
        the packages that wrote it, a SHA-256 digest of every array) and the
        arrays in ``.npy`` form, zipped. :meth:`load` checks all of it.

        Parameters
        ----------
        path : str or path-like
            File to write; it is replaced if it exists.

        Returns
        -------
        self : SGDL2Regressor
            The estimator, unchanged.
        """
        _persistence.save_model(self, path)
        return self

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SGDL2Regressor:
        """Load an estimator saved by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            File written by :meth:`save`.

        Returns
        -------
        estimator : SGDL2Regressor
            The estimator, with its parameters and fitted state.

        Raises
        ------
        ValueError
            If the file is not one :meth:`save` wrote, or was truncated or
            modified since.
        """
        return _persistence.load_model(path, cls)

    def export_savedmodel(self, path: str | os.PathLike[str]) -> SGDL2Regressor:
        """Write a TensorFlow SavedModel that serves :meth:`predict`.

        Parameters
        ----------
        path : str or path-like
            Directory to write.

        Returns
        -------
        self : SGDL2Regressor
            The estimator, unchanged.
        """
        from ._savedmodel import export_savedmodel

        check_is_fitted(self)
        export_savedmodel(self, path)
        return self


def _initial_array(name, value, *shapes):
    """Return ``value`` as a finite float64 array of one of ``shapes``, or raise ValueError."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers, got {value!r}.") from None
    if array.shape not in shapes:
        expected = " or ".join(str(s) for s in shapes)
        raise ValueError(
            f"{name} has shape {array.shape}; this fit needs {expected} (the shape of "
            f"{'coef_' if name == 'coef_init' else 'intercept_'} for these X and y)."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return array


def _print_progress(report):
    """Print one progress line: epoch, training loss, gradient norm, W, b and time.

    The display of the TF1 blog post the package began from (:mod:`skl_tfreg._demo`).
    """
    coef = report.coef[:, 0] if report.coef.shape[1] == 1 else report.coef.T
    w = np.array2string(coef, precision=6, threshold=6, edgeitems=2, max_line_width=10**6)
    b = np.array2string(report.intercept, precision=6)[1:-1]
    print(
        f"EPOCH {report.epoch}: training loss {report.objective:.6g}, "
        f"|grad| {report.grad_norm:.3g}, W: {w}, b: {b}, {report.elapsed:.2f} s",
        flush=True,
    )
