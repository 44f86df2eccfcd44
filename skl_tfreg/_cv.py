"""SGDL2RegressorCV: K-fold cross-validation over a grid of alphas from one pass.

J is quadratic, so each fold's held-out rows are summarised by their augmented
Gram matrix (:class:`skl_tfreg._statistics.Statistics` with one group per fold):
fold ``k`` trains on the total minus its own matrix, every (alpha, fold) pair
is a ``(p + 1)``-square problem, and its held-out error is a quadratic form of
fold ``k``'s matrix. One compiled call (:func:`skl_tfreg._core.fold_path`)
solves and scores them all. The model at the chosen alpha is then fitted on
every row from the same statistics, and checked against the data in one more
pass, as :class:`~skl_tfreg.SGDL2Regressor` does.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from numbers import Integral, Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import _fit_context
from sklearn.model_selection import KFold, check_cv
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, InvalidParameterError

from ._estimator import SGDL2Regressor, _dask_only_in_x, _is_dask, _LinearModel, _StartingPoint

__all__ = ["SGDL2RegressorCV"]

#: The widest data cross-validated: every (alpha, fold) system is held at once, of
#: at most ``MAX_SYSTEM_VALUES`` float64 values in all (1 GiB).
MAX_FEATURES = 2048
MAX_SYSTEM_VALUES = 2**27

#: The decades of the data-derived grid: ``alphas=n`` spans ``v * 10**2`` down to
#: ``v * 10**-6``, ``v`` the mean variance of the columns.
GRID_DECADES = (2.0, -6.0)


class SGDL2RegressorCV(_LinearModel):
    """SGDL2Regressor with its ``alpha`` chosen by K-fold cross-validation, in one pass.

    For every alpha of the grid and every fold, the minimiser of
    :class:`SGDL2Regressor`'s objective ``J`` on the fold's training rows is
    scored by the weighted mean squared error on its held-out rows. The alpha
    of the lowest mean over the folds is ``alpha_``, and the model is then
    fitted at ``alpha_`` on all the rows. ``J`` is quadratic, so one pass over
    the data sums the sufficient statistics of every fold (the weighted Gram
    matrix of ``[X, 1, y]`` of its held-out rows); all the (alpha, fold) fits
    and scores come from them in one compiled TensorFlow call, exactly (the
    fits are Ridge's, ``Ridge(alpha=alpha * sum(s_train))``). A second pass
    checks the final model against the data, as ``SGDL2Regressor`` does on
    statistics. GridSearchCV over ``SGDL2Regressor`` or ``Ridge`` reads the data
    once per alpha and fold instead.

    Parameters
    ----------
    alphas : int or array-like of shape (n_alphas,), default=20
        The grid. An int ``n`` gives ``n`` values spaced evenly on a log scale
        from ``100 v`` down to ``1e-6 v``, where ``v`` is the mean weighted
        variance of the columns of X (1 if they are all constant): from
        coefficients shrunk about a hundredfold to nearly none. An array is
        used as given (non-negative, finite).
    cv : int, cross-validation generator or iterable, default=5
        The folds, as in scikit-learn: an int ``K`` gives ``KFold(K)`` (no
        shuffling); a splitter or an iterable of ``(train, test)`` index
        arrays must hold every row out at most once and train on all the
        others (KFold, GroupKFold with ``groups`` given to :meth:`fit`, ...; not
        ShuffleSplit). In
        :meth:`fit_stream` it must be an int: row ``r`` of the stream (counted
        from 0 across its batches) is held out in fold ``r % K``.
    fit_intercept : bool, default=True
        Whether to fit an intercept.
    alpha_per_target : bool, default=False
        With several targets, choose an alpha for each (by its own mean
        error) instead of one for all (by the mean over the targets).
    max_iter : int, default=1000
        Most epochs of the final fit (one checking pass is the usual; see
        :class:`SGDL2Regressor`).
    tol : float or None, default=1e-10
        Stopping tolerance of the final fit, as in :class:`SGDL2Regressor`.

    Attributes
    ----------
    alpha_ : float or ndarray of shape (n_targets,)
        The chosen alpha (one per target with ``alpha_per_target``).
    alphas_ : ndarray of shape (n_alphas,)
        The grid.
    mse_path_ : ndarray of shape (n_alphas, n_folds) or (n_alphas, n_folds, n_targets)
        Weighted held-out mean squared error of each alpha on each fold (and
        target, for 2-D ``y``).
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
        Coefficients at ``alpha_``, fitted on all the rows.
    intercept_ : numpy scalar or ndarray of shape (n_targets,)
        Intercept at ``alpha_``.
    n_iter_ : int
        Epochs of the final fit.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when ``X`` has string column names.

    See Also
    --------
    SGDL2Regressor : The estimator at one alpha.
    sklearn.linear_model.RidgeCV : Leave-one-out in memory; other folds by a grid search.
    sklearn.linear_model.LassoCV : The same conventions for the L1 penalty.

    Examples
    --------
    >>> import numpy as np
    >>> from skl_tfreg import SGDL2RegressorCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = X @ [1.0, 2.0, 0.0] + rng.normal(size=200)
    >>> reg = SGDL2RegressorCV(alphas=[1e-4, 1e-2, 1.0, 100.0]).fit(X, y)
    >>> reg.mse_path_.shape  # (alphas, folds)
    (4, 5)
    >>> print(np.round(reg.mse_path_.mean(axis=1), 3))
    [1.044 1.044 2.19  5.344]
    >>> float(reg.alpha_), np.round(reg.coef_, 2).tolist()
    (0.0001, [0.91, 1.9, 0.05])
    """

    _parameter_constraints: dict = {
        "alphas": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "cv": ["cv_object"],
        "fit_intercept": ["boolean"],
        "alpha_per_target": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
    }

    def __init__(
        self, *, alphas=20, cv=5, fit_intercept=True, alpha_per_target=False, max_iter=1000,
        tol=1e-10,
    ):  # fmt: skip
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.alpha_per_target = alpha_per_target
        self.max_iter = max_iter
        self.tol = tol

    def _grid(self):
        """Return the given alphas as a float64 array, or None for a data-derived grid."""
        if isinstance(self.alphas, Integral) and not isinstance(self.alphas, bool):
            return None
        alphas = np.asarray(self.alphas, dtype=np.float64).ravel()
        if alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas < 0):
            raise InvalidParameterError(
                "The 'alphas' parameter of SGDL2RegressorCV must be an int >= 1 or a "
                f"non-empty array of finite non-negative floats; got {self.alphas!r}."
            )
        return alphas

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        groups: ArrayLike | None = None,
    ) -> SGDL2RegressorCV:
        """Cross-validate every alpha of the grid, then fit at the best on all rows.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Training data; float32 trains in float32, everything else in float64.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; the held-out errors are weighted by them too.
        groups : array-like of shape (n_samples,), default=None
            Group labels for a splitter that uses them (``GroupKFold``).

        Returns
        -------
        self : SGDL2RegressorCV
            The fitted estimator.
        """
        from . import _distributed
        from ._statistics import Statistics, row_blocks

        if _dask_only_in_x(X, y, sample_weight):
            return self._fit_dask(X, y, sample_weight, groups)
        given = self._grid()
        self._clear()
        replicas = _distributed.current_replicas()
        with _distributed.together(replicas) as agreement:
            under = replicas is not None  # a worker's own weights may all be 0
            arrays = self._validate_training_data(X, y, sample_weight, reset=True,
                                                  finite=under, chunk=under)  # fmt: skip
            Xv, Y, s = arrays.X, arrays.Y, arrays.sample_weight
            fold_of, n_folds = self._folds(Xv, Y, s, arrays.single, groups)
            self._check_width(Xv.shape[1], given, n_folds)
            if under:
                start = _StartingPoint(None, None, None)
                params = {**self.get_params(deep=False), "n_folds": n_folds}
                agreement["fingerprint"] = _distributed.fingerprint(params, Xv.dtype, start)
        shards = 1 if replicas is None else replicas.n
        stats = Statistics(row_blocks(Xv, Y, s, shards), replicas=replicas or _local(),
                           groups=(n_folds + 1, _by_index(fold_of, n_folds)))  # fmt: skip
        self._check_statistics(stats, Xv)
        return self._finish_fit(stats, n_folds, given, arrays.single, Xv)

    def _fit_dask(self, X, y, sample_weight, groups):
        """Cross-validate Dask input: every fold's statistics summed on the workers.

        The folds are those of ``cv`` on the rows in partition order (an int:
        KFold's contiguous folds, as in memory), from the partitions' lengths;
        a splitter that needs ``y`` cannot see it here.
        """
        from ._dask_statistics import DaskStatistics

        given = self._grid()
        parts = self._dask_partitions(X, y, sample_weight)
        lengths = parts.lengths()
        n = int(sum(lengths))
        offsets = np.cumsum([0, *lengths])
        bounds = _contiguous_folds(check_cv(self.cv), n, groups)
        if bounds is not None:  # KFold's folds from their bounds: no labels on the client
            n_folds = len(bounds) - 1
            splits = [_by_bounds(bounds - a, n_folds) for a in offsets[:-1]]
        else:  # the splitter's labels, one slice per partition
            if _is_dask(groups):
                groups = np.asarray(groups.compute())
            try:
                folds = check_cv(self.cv).split(np.empty((n, 0)), None, groups)
                first = next(folds)
            except (TypeError, ValueError) as err:
                raise ValueError(
                    f"cv={self.cv!r} could not split the {n} rows of Dask input without y "
                    f"({err}); use an int, KFold or GroupKFold."
                ) from err
            fold_of, n_folds = _fold_labels(itertools.chain([first], folds), n, self.cv)
            fold_of = fold_of.astype(np.min_scalar_type(n_folds))
            pairs = zip(offsets[:-1], offsets[1:], strict=True)
            splits = [_by_index(fold_of[a:b], n_folds) for a, b in pairs]
        self._check_width(parts.layout.n_features, given, n_folds)
        self._dask_reset(parts)
        stats = DaskStatistics(parts, groups=(n_folds + 1, splits))
        self._check_statistics(stats)
        return self._finish_fit(stats, n_folds, given, parts.single, None)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_stream(self, source: Callable[[], Iterable[Any]] | Any) -> SGDL2RegressorCV:
        """Cross-validate on data read in batches: one pass for every fold, one to check.

        Row ``r`` of the stream (counted from 0 across batches) is held out in
        fold ``r % cv``; ``cv`` must be an int.

        Parameters
        ----------
        source : callable or tf.data.Dataset
            As for :meth:`SGDL2Regressor.fit_stream`: each call returns the
            batches ``(X, y)`` or ``(X, y, sample_weight)`` of one pass.

        Returns
        -------
        self : SGDL2RegressorCV
            The fitted estimator.
        """
        from . import _distributed, _streaming
        from ._statistics import Statistics

        given = self._grid()
        if isinstance(self.cv, bool) or not isinstance(self.cv, Integral) or self.cv < 2:
            raise ValueError(
                "fit_stream holds row r of the stream out in fold r % cv, so cv must be an "
                f"int >= 2; got cv={self.cv!r}."
            )
        self._clear()
        n_folds = int(self.cv)
        read = _streaming.epoch_reader(source)
        reader = SGDL2Regressor()  # validates each batch, as its own fit_stream does
        chunks, layout = reader._validated_chunks(read, warm=False)
        replicas = _distributed.current_replicas()

        def too_wide(X):
            self._check_width(X.shape[1], given, n_folds)
            return False

        stats = Statistics(chunks, replicas=replicas or _local(), too_wide=too_wide,
                           groups=(n_folds, _by_position(n_folds)))  # fmt: skip
        self._check_statistics(stats)
        self.n_features_in_ = reader.n_features_in_
        names = getattr(reader, "feature_names_in_", getattr(source, "feature_names", None))
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        return self._finish_fit(stats, n_folds, given, layout["single"], None)

    def _clear(self):
        """Forget an earlier fit: a fit that fails leaves the estimator unfitted."""
        for name in ("coef_", "intercept_", "n_iter_", "alpha_", "alphas_", "mse_path_",
                     "n_features_in_", "feature_names_in_"):  # fmt: skip
            self.__dict__.pop(name, None)

    def _check_width(self, p, given, n_folds):
        """Refuse a grid whose (alpha, fold) systems would not fit in memory."""
        n_alphas = int(self.alphas) if given is None else given.size
        values = n_alphas * n_folds * p * p
        if p > MAX_FEATURES or values > MAX_SYSTEM_VALUES:
            raise ValueError(
                f"SGDL2RegressorCV solves every (alpha, fold) pair at once from the "
                f"statistics: {n_alphas} alphas x {n_folds} folds of {p} features need "
                f"{8 * values / 2**30:.1f} GiB, and it takes at most {MAX_FEATURES} features "
                f"and {8 * MAX_SYSTEM_VALUES // 2**30} GiB; use fewer alphas (and several "
                "calls), or GridSearchCV over SGDL2Regressor."
            )

    def _folds(self, X, Y, s, single, groups=None):
        """Return each row's fold (``n_folds`` for rows never held out) and ``n_folds``."""
        splits = check_cv(self.cv).split(X, Y[:, 0] if single else Y, groups)
        return _fold_labels(splits, X.shape[0], self.cv)

    def _check_statistics(self, stats, X=None):
        bad = stats.overflowing()
        if bad:
            if X is not None:
                from sklearn.utils import assert_all_finite

                assert_all_finite(X, input_name="X")
            raise ValueError(
                f"The sufficient statistics of {', '.join(bad[:10])} overflow float64 when "
                "squared and summed; rescale them."
            )

    def _finish_fit(self, stats, n_folds, given, single, X):
        """Score the grid from the folds' statistics, then fit at ``alpha_`` on all rows."""
        import tensorflow as tf

        from . import _core

        p = stats.n_features
        grams = stats.grams.numpy()  # each fold's held-out rows, then rows held in always
        S = grams[:, p, p]
        for k in range(n_folds):
            if not S[k] > 0 or not S.sum() - S[k] > 0:
                side = "held-out" if not S[k] > 0 else "training"
                raise ValueError(
                    f"The {side} rows of fold {k} have sample_weight summing to zero; every "
                    "fold needs weight on both sides."
                )
        alphas = given if given is not None else _data_grid(stats, int(self.alphas))
        path = _core.kernel(_core.fold_path, tf.float64)(
            stats.grams, tf.constant(stats.anchors), tf.constant(stats.centre),
            tf.constant(p, tf.int32), tf.constant(alphas), tf.constant(bool(self.fit_intercept)),
        )  # fmt: skip
        mse = path.mse.numpy()[:, :n_folds]  # (n_alphas, n_folds, n_targets)
        if not np.all(np.isfinite(mse)):
            raise ValueError("The held-out errors are not finite; rescale X or y.")
        if self.alpha_per_target and not single:
            best = np.argmin(mse.mean(axis=1), axis=0)  # per target
            alpha = alphas[best]
        else:
            alpha = alphas[int(np.argmin(mse.mean(axis=(1, 2))))]
        self._refit(stats, np.atleast_1d(alpha), single, X)
        self.alphas_ = alphas
        self.mse_path_ = mse[:, :, 0] if single else mse
        self.alpha_ = alpha if np.ndim(alpha) else float(alpha)
        return self

    def _refit(self, stats, alpha, single, X):
        """Fit at ``alpha`` (one per target, or one for all) on the statistics of all rows."""
        k = stats.n_targets
        per_target = np.broadcast_to(alpha, (k,))
        coef = np.zeros((k, stats.n_features), stats.dtype.as_numpy_dtype)
        intercept = np.zeros(k, stats.dtype.as_numpy_dtype)
        self.n_iter_ = 0
        for value in np.unique(per_target):
            columns = np.flatnonzero(per_target == value)
            data = stats if columns.size == k else stats.select_targets(columns)
            reg = SGDL2Regressor(alpha=float(value), fit_intercept=self.fit_intercept,
                                 max_iter=self.max_iter, tol=self.tol)  # fmt: skip
            result = reg._train(data, _StartingPoint(None, None, None), check_random_state(0),
                                max_iter=self.max_iter, fallback=_passes(data))  # fmt: skip
            reg._finish(result, data, single=False, X=X)
            coef[columns], intercept[columns] = reg.coef_, reg.intercept_
            self.n_iter_ = max(self.n_iter_, reg.n_iter_)
        self.coef_ = coef[0] if single else coef
        self.intercept_ = intercept[0] if single else intercept


def _fold_labels(splits, n, cv):
    """Return each row's fold in ``splits`` (``n_folds`` for rows never held out), ``n_folds``.

    ``splits`` is iterated once (one fold's indices held at a time). Raises
    ValueError for splits that are not a partition of held-out rows.
    """
    fold_of = np.full(n, -1, dtype=np.int32)
    k = -1
    for k, (train, test) in enumerate(splits):
        test, train = np.asarray(test), np.asarray(train)
        if test.size == 0:
            raise ValueError(f"Fold {k} of cv={cv!r} holds out no rows.")
        if np.any(fold_of[test] >= 0):
            raise ValueError(
                f"Fold {k} of cv={cv!r} holds out rows that an earlier fold held "
                "out; SGDL2RegressorCV needs every row held out at most once (KFold, "
                "GroupKFold, ...; not ShuffleSplit)."
            )
        fold_of[test] = k
        if train.size + test.size != n or np.any(fold_of[train] == k):
            raise ValueError(
                f"Fold {k} of cv={cv!r} does not train on every row it does not hold "
                "out; SGDL2RegressorCV sums the statistics of the held-out rows and "
                "trains on the rest (KFold, GroupKFold, ...)."
            )
    n_folds = k + 1
    if n_folds < 2:
        raise ValueError(f"cv={cv!r} gives {n_folds} fold; at least 2 are needed.")
    fold_of[fold_of < 0] = n_folds
    return fold_of, n_folds


def _passes(stats):
    """Return the fallback of a final fit on ``stats``: the data passes of its rows.

    None for statistics whose rows are not here to pass over (Dask partitions).
    """
    if stats.chunks is None:
        return None

    def passes():
        from ._streaming import Stream

        return Stream(stats.chunks, replicas=stats.replicas)

    return passes


def _local():
    from ._streaming import LOCAL

    return LOCAL


def _data_grid(stats, n):
    """Return the ``alphas=n`` grid: ``GRID_DECADES`` about the columns' mean variance."""
    variance = np.asarray(stats.stats.x_m2) / float(stats.stats.S)
    v = float(variance.mean()) if variance.size and variance.mean() > 0 else 1.0
    high, low = GRID_DECADES
    return v * np.logspace(high, low, n) if n > 1 else np.array([v * 10 ** ((high + low) / 2)])


def _by_index(fold_of, n_folds):
    """Return the ``split`` of rows in memory whose folds ``fold_of`` gives."""

    def split(X, Y, s, offset):
        folds = fold_of[offset : offset + X.shape[0]]
        for g in range(n_folds + 1):
            rows = np.flatnonzero(folds == g)
            if rows.size and rows[-1] - rows[0] + 1 == rows.size:  # contiguous: a view
                rows = slice(rows[0], rows[-1] + 1)
            yield g, X[rows], Y[rows], s[rows]

    return split


def _contiguous_folds(cv, n, groups):
    """Return the bounds of ``cv``'s folds if they are KFold's contiguous ones, else None.

    Fold ``k`` holds out rows ``bounds[k]:bounds[k + 1]``: the first ``n % K``
    folds hold one row more, as :class:`~sklearn.model_selection.KFold` cuts them.
    """
    if type(cv) is not KFold or cv.shuffle or groups is not None or n < cv.n_splits:
        return None
    k = cv.n_splits
    sizes = np.full(k, n // k)
    sizes[: n % k] += 1
    return np.concatenate([[0], np.cumsum(sizes)])


def _by_bounds(bounds, n_folds):
    """Return the ``split`` of a partition whose rows ``bounds`` cut into contiguous folds.

    ``bounds`` are the folds' first rows, counted from the partition's first.
    """

    def split(X, Y, s, offset):
        n = X.shape[0]
        for g in range(n_folds):
            a, b = (int(np.clip(v - offset, 0, n)) for v in bounds[g : g + 2])
            if b > a:
                yield g, X[a:b], Y[a:b], s[a:b]

    return split


def _by_position(n_folds):
    """Return the ``split`` of a stream: row ``r`` is held out in fold ``r % n_folds``."""

    def split(X, Y, s, offset):
        for g in range(n_folds):
            first = (g - offset) % n_folds
            yield g, X[first::n_folds], Y[first::n_folds], s[first::n_folds]

    return split
