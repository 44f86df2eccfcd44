"""SGDL2Regressor: the scikit-learn shell around the TensorFlow kernel."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import _core
from ._batching import iter_epochs


class SGDL2Regressor(RegressorMixin, BaseEstimator):
    """Linear least squares with an L2 penalty, trained by gradient descent in TensorFlow.

    The model predicts ``X @ coef_ + intercept_`` and minimises, over the
    coefficients ``w`` and the intercept ``b``::

        J(w, b) = sum_i s_i (x_i . w + b - y_i)^2 / sum_i s_i  +  alpha * ||w||^2

    where ``s`` are the sample weights (ones by default) and the intercept is
    not penalised. ``SGDRegressor(penalty="l2", alpha=alpha)`` minimises
    ``J / 2`` (with unit weights; it writes both terms with a factor 1/2), so
    the two share their minimiser, and that minimiser is
    ``Ridge(alpha=alpha * sum(s))``: Ridge penalises the *sum* of squared
    errors, this estimator and SGDRegressor the *mean*.

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
        Stopping tolerance of the rule by gradient norm: training stops when
        the norm of the gradient of ``J`` in the preconditioned coordinates is
        at most ``tol * sqrt(J)`` (both in units of ``y``, so the rule does not
        depend on the scale of the data). The default is tight enough that
        float64 fits agree with Ridge to about 1e-9. In float32 the rule uses
        ``max(tol, 1.2e-6)``, and a full-batch fit also stops when neither the
        objective nor the gradient has improved beyond rounding for 5 epochs.
        With mini-batches training also stops when the epoch's objective has
        improved by less than ``tol`` (relative) for 5 epochs, as in
        SGDRegressor. ``None`` turns the rules off and runs ``max_iter``
        epochs (a full-batch fit still stops at the rounding floor, or once
        ``y`` is fitted to rounding).
    batch_size : "auto" or int, default="auto"
        Rows per gradient step. ``"auto"`` uses all rows (full-batch gradient
        descent, deterministic and exact). An integer smaller than the number
        of samples gives mini-batches in the order of :func:`iter_epochs`.
    learning_rate : {"auto", "constant"}, default="auto"
        ``"auto"`` derives the step from the data: with full batches, the exact
        line-search step along conjugate-gradient directions; with
        mini-batches, ``1 / (2 L(b))`` for the data's expected smoothness
        ``L(b)``, divided by 5 whenever the objective stalls (at most 5 times).
        ``"constant"`` takes plain gradient steps of size ``eta0``.
    eta0 : float, default=0.01
        Step size for ``learning_rate="constant"``, in the preconditioned
        coordinates (where the diagonal entries of the Hessian are about 2, so
        steps up to about ``1 / n_features`` are safe).
    shuffle : bool, default=True
        Shuffle the rows at every epoch (mini-batches only; a full-batch
        gradient does not depend on the order of rows).
    random_state : int, RandomState instance or None, default=None
        Seed of the shuffling.
    warm_start : bool, default=False
        Start ``fit`` from the previous ``coef_`` instead of zeros.
    verbose : int, default=0
        If positive, print the epoch, objective, gradient norm, coefficients
        ``W``, intercept ``b`` and elapsed time every ``verbose`` epochs.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Fitted coefficients, in the dtype of the training data.
    intercept_ : numpy scalar
        Fitted intercept (0 when ``fit_intercept=False``).
    n_iter_ : int
        Number of epochs run (0 when a warm start already meets ``tol``).
    t_ : int
        Number of gradient steps taken (equal to ``n_iter_`` with full batches).
    loss_curve_ : ndarray of shape (n_iter_,)
        The objective ``J`` after each epoch. For mini-batches it is the
        estimate made during the epoch, as SGDRegressor does: each batch's
        weighted squared error at the coefficients before its step, summed
        and divided by ``sum(s)``, plus the penalty at the epoch's end.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
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

    _parameter_constraints: dict = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"auto", "constant"})],
        "eta0": [Interval(Real, 0, None, closed="neither")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        alpha=1e-4,
        fit_intercept=True,
        max_iter=1000,
        tol=1e-10,
        batch_size="auto",
        learning_rate="auto",
        eta0=0.01,
        shuffle=True,
        random_state=None,
        warm_start=False,
        verbose=0,
    ):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the coefficients by gradient descent on ``J``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data. float32 data trains in float32, everything else in
            float64. Never modified.
        y : array-like of shape (n_samples,)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights ``s_i`` with a positive sum; ones when None.

        Returns
        -------
        self : SGDL2Regressor
            The fitted estimator.
        """
        first_call = not (self.warm_start and hasattr(self, "coef_"))
        # A warm start checks X against the fitted features and changes no state if
        # they differ.
        X, y = validate_data(
            self, X, y, dtype=[np.float64, np.float32], y_numeric=True, reset=first_call
        )
        y = np.asarray(y, dtype=X.dtype)
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=X.dtype, ensure_non_negative=True
        )
        if not sample_weight.sum() > 0:  # scikit-learn < 1.9 lets all-zero weights through
            raise ValueError("sample_weight must have a positive sum; all weights are zero.")
        return self._fit(X, y, sample_weight, None if first_call else self.coef_)

    def _fit(self, X, y, sample_weight, coef_init):
        n_samples = X.shape[0]
        full_batch = self.batch_size == "auto" or self.batch_size >= n_samples
        epochs = None
        if not full_batch:
            epochs = iter_epochs(
                n_samples,
                self.batch_size,
                shuffle=self.shuffle,
                random_state=check_random_state(self.random_state),
            )
        result = _core.train(
            X,
            y[:, None],
            sample_weight,
            alpha=self.alpha,
            fit_intercept=self.fit_intercept,
            max_iter=self.max_iter,
            tol=self.tol,
            learning_rate=self.learning_rate,
            eta0=self.eta0,
            epochs=epochs,
            batch_size=None if full_batch else self.batch_size,
            coef_init=None if coef_init is None else coef_init[:, None],
            report=_print_progress if self.verbose else None,
            report_every=int(self.verbose),
        )
        self._check_result(result, X.dtype, full_batch)
        self.coef_ = result.coef[:, 0]
        self.intercept_ = result.intercept[0] if self.fit_intercept else X.dtype.type(0)
        self.n_iter_ = result.n_epochs
        self.t_ = result.n_steps
        self.loss_curve_ = result.loss_curve
        return self

    def _check_result(self, result, dtype, full_batch):
        finite = np.all(np.isfinite(result.coef)) and np.all(np.isfinite(result.intercept))
        if result.status == "overflow":
            raise ValueError(
                f"The values of X, y or sample_weight overflow {np.dtype(dtype).name} when "
                "squared and summed; rescale them or pass float64 data."
            )
        if result.status == "diverged" or not finite:
            if self.learning_rate == "constant":
                hint = f"lower eta0 (now {self.eta0}) or use learning_rate='auto'"
            elif not full_batch:
                hint = (
                    "the mini-batch step estimated from the data was too large for these "
                    "batches; use a larger batch_size, or learning_rate='constant' with a "
                    "small eta0"
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
        if result.status == "max_iter" and self.tol is not None:
            warnings.warn(
                f"SGDL2Regressor stopped at max_iter={self.max_iter} epochs before the "
                f"gradient rule was met (gradient / sqrt(objective) = {result.grad_ratio:.3g}, "
                f"tol={self.tol}); increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=3,
            )
        if result.status == "floor":
            warnings.warn(
                f"SGDL2Regressor stopped after {result.n_epochs} epochs because neither the "
                f"objective nor its gradient improved any more in {np.dtype(dtype).name} "
                f"(gradient / sqrt(objective) = {result.grad_ratio:.3g}, tol={self.tol}): "
                "the problem is too ill-conditioned for gradient descent in this precision. "
                "A larger alpha or columns of less extreme scales help; Ridge, a direct "
                "solver, does not need them.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def predict(self, X):
        """Predict ``X @ coef_ + intercept_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted values.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return X @ self.coef_ + self.intercept_


def _print_progress(epoch, objective, grad_norm, coef, intercept, elapsed):
    """Print the original post's display line: epoch, training loss, W and b."""
    w = np.array2string(coef[:, 0], precision=6, threshold=6, edgeitems=2)
    b = np.array2string(intercept, precision=6)[1:-1]
    print(
        f"EPOCH {epoch}: training loss {objective:.6g}, |grad| {grad_norm:.3g}, "
        f"W: {w}, b: {b}, {elapsed:.2f} s",
        flush=True,
    )
