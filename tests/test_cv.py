"""SGDL2RegressorCV: every (alpha, fold) from one pass, against Ridge fitted per fold."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold, ShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from skl_tfreg import SGDL2Regressor, SGDL2RegressorCV

ALPHAS = np.array([1e-5, 1e-3, 1e-1, 10.0])


def _data(rng, n=400, p=6, k=None):
    """Columns of scales 1e-1..1e1 off zero, weights, noise."""
    X = rng.standard_normal((n, p)) * np.logspace(-1, 1, p) + 3.0
    coef = rng.standard_normal((p, k) if k else p)
    y = X @ coef + 5.0 + rng.standard_normal((n, k) if k else n)
    return X, y, rng.random(n) + 0.1


def _ridge_path(X, y, s, folds, alphas, fit_intercept=True):
    """Held-out weighted MSE of Ridge(alpha * sum(s_train)) fitted per fold."""
    mse = np.empty((len(alphas), len(folds)))
    for i, alpha in enumerate(alphas):
        for k, (train, test) in enumerate(folds):
            # At alpha = 0 on dependent columns, the coefficients of least norm: lstsq's
            # (Ridge's SVD solver of scikit-learn 1.6 kept a singular value of rounding).
            ridge = (LinearRegression(fit_intercept=fit_intercept) if alpha == 0 else
                     Ridge(alpha=alpha * s[train].sum(), fit_intercept=fit_intercept))  # fmt: skip
            ridge.fit(X[train], y[train], sample_weight=s[train])
            residual = ridge.predict(X[test]) - y[test]
            mse[i, k] = np.sum(s[test] * residual**2) / s[test].sum()
    return mse


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_mse_path_is_ridge_per_fold(rng, oracle, fit_intercept):
    X, y, s = _data(rng)
    reg = SGDL2RegressorCV(alphas=ALPHAS, cv=5, fit_intercept=fit_intercept)
    reg.fit(X, y, sample_weight=s)
    expected = _ridge_path(X, y, s, list(KFold(5).split(X)), ALPHAS, fit_intercept)
    np.testing.assert_allclose(reg.mse_path_, expected, rtol=1e-6)
    assert reg.alpha_ == ALPHAS[np.argmin(expected.mean(axis=1))]
    np.testing.assert_array_equal(reg.alphas_, ALPHAS)
    # The final model is the full-data optimum at alpha_, checked against the data.
    at_best = SGDL2Regressor(alpha=reg.alpha_, fit_intercept=fit_intercept)
    at_best.coef_, at_best.intercept_ = reg.coef_, reg.intercept_
    assert oracle.gap(at_best, X, y, sample_weight=s, fit_intercept=fit_intercept) <= 1e-6
    assert reg.n_iter_ >= 1 and reg.n_features_in_ == X.shape[1]


def test_a_splitter_and_an_iterable_of_folds(rng):
    X, y, s = _data(rng, n=300)
    shuffled = KFold(3, shuffle=True, random_state=0)  # folds of scattered rows
    folds = list(shuffled.split(X))
    by_splitter = SGDL2RegressorCV(alphas=ALPHAS, cv=shuffled).fit(X, y, sample_weight=s)
    by_list = SGDL2RegressorCV(alphas=ALPHAS, cv=folds).fit(X, y, sample_weight=s)
    expected = _ridge_path(X, y, s, folds, ALPHAS)
    np.testing.assert_allclose(by_splitter.mse_path_, expected, rtol=1e-6)
    np.testing.assert_array_equal(by_list.mse_path_, by_splitter.mse_path_)


def test_sparse_x_is_the_dense_fit(rng):
    X, y, s = _data(rng)
    X[rng.random(X.shape) < 0.5] = 0.0
    dense = SGDL2RegressorCV(alphas=ALPHAS).fit(X, y, sample_weight=s)
    sparse = SGDL2RegressorCV(alphas=ALPHAS).fit(sp.csr_matrix(X), y, sample_weight=s)
    np.testing.assert_allclose(sparse.mse_path_, dense.mse_path_, rtol=1e-10)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-9)


def test_several_targets_and_alpha_per_target(rng):
    X, y, s = _data(rng, k=2)
    y[:, 1] += 30.0 * rng.standard_normal(len(y))  # a noisy target wants a larger alpha
    folds = list(KFold(5).split(X))
    shared = SGDL2RegressorCV(alphas=ALPHAS * 100).fit(X, y, sample_weight=s)
    each = SGDL2RegressorCV(alphas=ALPHAS * 100, alpha_per_target=True).fit(X, y, sample_weight=s)
    assert shared.mse_path_.shape == (4, 5, 2) and np.ndim(shared.alpha_) == 0
    for t in range(2):
        expected = _ridge_path(X, y[:, t], s, folds, ALPHAS * 100)
        np.testing.assert_allclose(each.mse_path_[:, :, t], expected, rtol=1e-6)
        assert each.alpha_[t] == ALPHAS[np.argmin(expected.mean(axis=1))] * 100
        single = SGDL2Regressor(alpha=each.alpha_[t]).fit(X, y[:, t], sample_weight=s)
        np.testing.assert_allclose(each.coef_[t], single.coef_, rtol=1e-8)
    assert each.alpha_[0] < each.alpha_[1]
    assert shared.alpha_ == ALPHAS[np.argmin(shared.mse_path_.mean(axis=(1, 2)))] * 100


def test_the_default_grid_follows_the_data(rng):
    X, y, s = _data(rng)
    reg = SGDL2RegressorCV().fit(X, y, sample_weight=s)
    v = np.mean([np.cov(X[:, j], aweights=s, bias=True) for j in range(X.shape[1])])
    np.testing.assert_allclose(reg.alphas_, v * np.logspace(2, -6, 20), rtol=1e-9)
    assert reg.mse_path_.shape == (20, 5)
    scaled = SGDL2RegressorCV().fit(10.0 * X, y, sample_weight=s)
    np.testing.assert_allclose(scaled.alphas_, 100.0 * reg.alphas_, rtol=1e-9)


def _counting(X, y, s, rows):
    reads = []

    def source():
        reads.append(1)
        for start in range(0, len(y), rows):
            yield X[start : start + rows], y[start : start + rows], s[start : start + rows]

    return source, reads


def test_fit_stream_reads_twice_and_holds_out_by_position(rng):
    X, y, s = _data(rng, n=500)
    source, reads = _counting(X, y, s, rows=64)
    streamed = SGDL2RegressorCV(alphas=ALPHAS, cv=4).fit_stream(source)
    assert len(reads) == 2  # one pass for every fold's statistics, one to check
    folds = [(np.flatnonzero(np.arange(500) % 4 != k), np.flatnonzero(np.arange(500) % 4 == k))
             for k in range(4)]  # fmt: skip
    in_memory = SGDL2RegressorCV(alphas=ALPHAS, cv=folds).fit(X, y, sample_weight=s)
    np.testing.assert_allclose(streamed.mse_path_, in_memory.mse_path_, rtol=1e-9)
    np.testing.assert_allclose(streamed.coef_, in_memory.coef_, rtol=1e-9)
    assert streamed.n_features_in_ == 6
    with pytest.raises(ValueError, match="cv must be an int"):
        SGDL2RegressorCV(cv=KFold(3)).fit_stream(source)


def test_pipeline_and_grid_search_over_other_parameters(rng):
    X, y, _ = _data(rng)
    pipe = make_pipeline(StandardScaler(), SGDL2RegressorCV(alphas=ALPHAS))
    search = GridSearchCV(pipe, {"sgdl2regressorcv__fit_intercept": [True, False]}, cv=3)
    search.fit(X, y)
    assert search.best_params_ == {"sgdl2regressorcv__fit_intercept": True}
    assert search.score(X, y) > 0.5


@pytest.mark.parametrize(
    "cv, match",
    [
        ([(np.arange(10, 100), np.arange(0, 10)), (np.arange(0, 100), np.array([], int))],
         "holds out no rows"),
        (ShuffleSplit(3, random_state=0), "held out at most once|does not train on every"),
        ([(np.arange(50, 100), np.arange(0, 50))], "at least 2"),
    ],
)  # fmt: skip
def test_folds_it_cannot_use_are_refused(rng, cv, match):
    X, y, _ = _data(rng, n=100)
    with pytest.raises(ValueError, match=match):
        SGDL2RegressorCV(cv=cv).fit(X, y)


def test_a_fold_without_weight_is_refused(rng):
    X, y, s = _data(rng, n=100)
    s[:20] = 0.0  # KFold(5)'s first fold
    with pytest.raises(ValueError, match="held-out rows of fold 0 have sample_weight summing"):
        SGDL2RegressorCV(cv=5).fit(X, y, sample_weight=s)
    s[:] = 0.0
    s[:20] = 1.0  # every other fold trains on these rows alone; fold 0 on none
    with pytest.raises(ValueError, match="fold 1 have sample_weight summing|training rows"):
        SGDL2RegressorCV(cv=5).fit(X, y, sample_weight=s)


@pytest.mark.parametrize("alphas", [[-1.0, 1.0], [np.inf], [np.nan], [], 0, "many"])
def test_bad_alphas_get_the_parameter_error(rng, alphas):
    X, y, _ = _data(rng, n=50)
    with pytest.raises(InvalidParameterError, match="alphas"):
        SGDL2RegressorCV(alphas=alphas).fit(X, y)


def test_inputs_are_not_modified(rng):
    X, y, s = _data(rng)
    before = [a.copy() for a in (X, y, s)]
    SGDL2RegressorCV(alphas=ALPHAS).fit(X, y, sample_weight=s)
    assert all(np.array_equal(a, b) for a, b in zip(before, (X, y, s), strict=True))


def test_folds_far_from_the_mean_keep_their_digits():
    # KFold on the seed's sorted data holds out blocks 2,000 rows from the mean, on a fit
    # whose error is 1e-9 of y's variance: each fold's statistics are kept about its own
    # mean, or the held-out error would lose 4e-6 of itself (found while documenting).
    rng = np.random.default_rng(0)
    X = np.arange(10_000.0).reshape(-1, 1)
    y = 3.657 * X[:, 0] + 2.5 + 0.33 * rng.standard_normal(10_000)
    reg = SGDL2RegressorCV(alphas=ALPHAS, cv=5).fit(X, y)
    expected = _ridge_path(X, y, np.ones(len(y)), list(KFold(5).split(X)), ALPHAS)
    np.testing.assert_allclose(reg.mse_path_, expected, rtol=1e-6)


def test_rows_never_held_out_train_every_fold(rng):
    X, y, s = _data(rng, n=300)
    always = np.arange(240, 300)  # in every training set, in no test set
    tests = np.array_split(np.arange(240), 4)
    folds = [(np.setdiff1d(np.arange(300), test), test) for test in tests]
    reg = SGDL2RegressorCV(alphas=ALPHAS, cv=folds).fit(X, y, sample_weight=s)
    assert all(np.isin(always, train).all() for train, _ in folds)
    np.testing.assert_allclose(reg.mse_path_, _ridge_path(X, y, s, folds, ALPHAS), rtol=1e-6)


def test_alpha_zero_on_dependent_and_constant_columns_is_least_squares(rng):
    X, y, s = _data(rng, n=200, p=4)
    X = np.c_[X, X[:, 0], np.full(200, 2.0)]  # a repeated column and a constant one
    folds = list(KFold(4).split(X))
    reg = SGDL2RegressorCV(alphas=[0.0, 1e-3], cv=4).fit(X, y, sample_weight=s)
    expected = _ridge_path(X, y, s, folds, [0.0, 1e-3])
    np.testing.assert_allclose(reg.mse_path_, expected, rtol=1e-6)


def test_group_k_fold_takes_the_groups(rng):
    from sklearn.model_selection import GroupKFold

    X, y, s = _data(rng, n=300)
    groups = np.arange(300) % 7
    reg = SGDL2RegressorCV(alphas=ALPHAS, cv=GroupKFold(3)).fit(X, y, s, groups=groups)
    folds = list(GroupKFold(3).split(X, y, groups))
    np.testing.assert_allclose(reg.mse_path_, _ridge_path(X, y, s, folds, ALPHAS), rtol=1e-6)


def test_too_many_systems_are_refused_before_any_pass(rng, monkeypatch):
    import skl_tfreg._cv as cv_module

    X, y, s = _data(rng, n=100)
    monkeypatch.setattr(cv_module, "MAX_SYSTEM_VALUES", 4 * 5 * 6 * 6 - 1)
    with pytest.raises(ValueError, match="4 alphas x 5 folds of 6 features need"):
        SGDL2RegressorCV(alphas=ALPHAS).fit(X, y)
    source, reads = _counting(X, y, s, rows=50)
    with pytest.raises(ValueError, match="4 alphas x 5 folds of 6 features need"):
        SGDL2RegressorCV(alphas=ALPHAS).fit_stream(source)
    assert len(reads) == 1  # refused at the first batch


def test_a_new_fit_forgets_the_old_one(rng):
    import pandas as pd

    X, y, s = _data(rng)
    reg = SGDL2RegressorCV(alphas=ALPHAS).fit(pd.DataFrame(X, columns=list("abcdef")), y)
    source, _ = _counting(X, y, s, rows=64)
    reg.fit_stream(source)
    assert not hasattr(reg, "feature_names_in_")
    with pytest.raises(ValueError):
        reg.fit(X[:, :0], y)
    assert not hasattr(reg, "coef_") and not hasattr(reg, "alpha_")
