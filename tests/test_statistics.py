"""Full-batch fits on sufficient statistics: Ridge's answer from one pass and one check."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, Ridge

import skl_tfreg._statistics as statistics_module
from skl_tfreg import SGDL2Regressor


def _data(rng, n=500, p=8, k=None, dtype=np.float64):
    """Columns of scales 1e-2..1e2 and offsets up to 1e3, weights, noise."""
    X = rng.standard_normal((n, p)) * np.logspace(-2, 2, p) + 1e3 * (np.arange(p) == p - 1)
    coef = rng.standard_normal((p, k) if k else p)
    y = X @ coef + 3.0 + 0.1 * rng.standard_normal((n, k) if k else n)
    return X.astype(dtype), y.astype(dtype), rng.random(n).astype(dtype)


def _counting(X, y, s, rows):
    """A stream source that counts how many times it is read."""
    reads = []

    def source():
        reads.append(1)
        for start in range(0, len(y), rows):
            part = slice(start, start + rows)
            yield X[part], y[part], s[part]

    return source, reads


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_statistics_give_ridge_in_one_checked_epoch(rng, oracle, fit_intercept, dtype):
    X, y, s = _data(rng, dtype=dtype)
    reg = SGDL2Regressor(alpha=1e-3, fit_intercept=fit_intercept).fit(X, y, sample_weight=s)
    assert reg.n_iter_ == reg.t_ == 1 and reg.coef_.dtype == dtype
    assert oracle.gap(reg, X, y, s, fit_intercept) <= (1e-12 if dtype == np.float64 else 1e-7)
    # loss_curve_ is J measured on the data at the fitted coefficients.
    J = oracle.objective(X, y, reg.coef_, reg.intercept_, 1e-3, s)
    # (float32: J summed in float32 by the checking pass)
    assert reg.loss_curve_[0] == pytest.approx(J, rel=1e-12 if dtype == np.float64 else 1e-5)


def test_statistics_and_data_passes_reach_the_same_optimum(rng, oracle):
    X, y, s = _data(rng, k=3)
    stats = SGDL2Regressor(alpha=1e-2).fit(X, y, sample_weight=s)
    passes = SGDL2Regressor(alpha=1e-2, precompute=False).fit(X, y, sample_weight=s)
    assert stats.n_iter_ == 1 < passes.n_iter_
    np.testing.assert_allclose(stats.coef_, passes.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(stats.intercept_, passes.intercept_, rtol=1e-9)
    ridge = Ridge(alpha=1e-2 * s.sum()).fit(X, y, sample_weight=s)
    np.testing.assert_allclose(stats.coef_, ridge.coef_, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_statistics_are_the_dense_fit(rng, fmt):
    X, y, s = _data(rng, n=400, p=6)
    X[rng.random(X.shape) < 0.6] = 0.0
    dense = SGDL2Regressor(alpha=1e-3).fit(X, y, sample_weight=s)
    sparse = SGDL2Regressor(alpha=1e-3).fit(sp.csr_matrix(X).asformat(fmt), y, sample_weight=s)
    assert sparse.n_iter_ == 1
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-10, atol=1e-12)


def _degenerate(rng, n=400):
    """Polynomial features of raw columns, one of which takes two values: exact
    dependencies (b^2 = b), columns whose scales span about 8 decades."""
    a = rng.uniform(0, 1e3, n)
    b = rng.integers(0, 2, n).astype(float)
    c = rng.normal(size=n) * 1e-2
    X = np.column_stack([a, b, c, a * a, a * b, b * b, a * c, b * c, c * c, a * a * b])
    y = 1e-3 * a + 2 * b + 50 * c + rng.normal(size=n)
    return X, y, rng.random(n) + 0.5


@pytest.mark.parametrize("alpha", [1e-2, 1e-6])
def test_degenerate_designs_reach_the_optimum(rng, oracle, alpha):
    # The data passes run 1000 epochs and end 13% to 27% above the optimum here.
    X, y, s = _degenerate(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        reg = SGDL2Regressor(alpha=alpha).fit(X, y, sample_weight=s)
    assert oracle.gap(reg, X, y, s) <= 1e-6
    assert reg.n_iter_ <= 3


@pytest.mark.parametrize("scales", [(0.1, 10.0), (1.0, 1.0)])
def test_alpha_zero_with_more_features_than_rows_is_the_least_norm_solution(rng, scales):
    X = rng.normal(size=(4, 12)) * np.logspace(np.log10(scales[0]), np.log10(scales[1]), 12)
    y = rng.normal(size=4)
    reg = SGDL2Regressor(alpha=0.0, fit_intercept=False).fit(X, y)
    least = np.linalg.lstsq(X, y, rcond=None)[0]
    np.testing.assert_allclose(reg.coef_, least, rtol=1e-6, atol=1e-9 * np.abs(least).max())
    np.testing.assert_allclose(X @ reg.coef_, y, rtol=1e-9)  # it interpolates
    with_intercept = SGDL2Regressor(alpha=0.0).fit(X, y)
    ols = LinearRegression().fit(X, y)
    np.testing.assert_allclose(with_intercept.coef_, ols.coef_, rtol=1e-6,
                               atol=1e-9 * np.abs(ols.coef_).max())  # fmt: skip
    assert with_intercept.intercept_ == pytest.approx(ols.intercept_, rel=1e-6, abs=1e-9)


def test_alpha_zero_with_dependent_columns_is_the_least_norm_solution(rng):
    base = rng.normal(size=(60, 4))
    X = np.column_stack([base, base[:, 0] + 2 * base[:, 1], 10.0 * base[:, 2]])
    y = base @ [1.0, -2.0, 0.5, 3.0] + 0.1 * rng.normal(size=60)
    s = rng.random(60) + 0.1
    reg = SGDL2Regressor(alpha=0.0).fit(X, y, sample_weight=s)
    ols = LinearRegression().fit(X, y, sample_weight=s)
    np.testing.assert_allclose(reg.coef_, ols.coef_, rtol=1e-6)
    assert reg.intercept_ == pytest.approx(ols.intercept_, rel=1e-6, abs=1e-9)


def test_exactly_fittable_problems_never_warn():
    # alpha = 0, 100 x 100 uniform data, an intercept, random weights: y has an exact
    # fit. The data passes warned of ill-conditioning on about a quarter of these.
    warned = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        X, y = rng.uniform(size=(100, 100)), rng.uniform(size=100)
        s = rng.uniform(0.5, 2.0, 100)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            reg = SGDL2Regressor(alpha=0.0).fit(X, y, sample_weight=s)
        warned += [seed for w in caught if issubclass(w.category, ConvergenceWarning)]
        r = X @ reg.coef_ + reg.intercept_ - y
        assert (s * r * r).sum() / s.sum() <= 1e-20
    assert warned == []


def _wampler(coefficients):
    """NIST StRD's Wampler data: y a degree-5 polynomial of x = 0..20 (certified)."""
    x = np.arange(21.0)
    X = np.column_stack([x**k for k in range(1, 6)])
    return X, X @ coefficients[1:] + coefficients[0]


@pytest.mark.parametrize("certified", [np.ones(6), 10.0 ** -np.arange(6)])
def test_certified_values_keep_their_digits(certified):
    # Wampler 1 and 2: certified coefficients, an exact fit. The statistics keep at
    # least the correct digits of the data passes.
    X, y = _wampler(certified)

    def digits(reg):
        got = np.r_[reg.intercept_, reg.coef_]
        return -np.log10(np.abs(got - certified) / certified + 1e-17).min()

    stats = SGDL2Regressor(alpha=0.0).fit(X, y)
    passes = SGDL2Regressor(alpha=0.0, precompute=False).fit(X, y)
    assert digits(stats) >= digits(passes) >= 8


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_stream_reads_the_source_twice(rng, oracle, dtype):
    X, y, s = _data(rng, n=4000, p=10, dtype=dtype)
    source, reads = _counting(X, y, s, rows=100)
    reg = SGDL2Regressor(alpha=1e-4).fit_stream(source)
    assert len(reads) == 2 and reg.n_iter_ == 1
    assert oracle.gap(reg, X, y, s) <= (1e-12 if dtype == np.float64 else 1e-7)
    if dtype == np.float64:  # float32 leaves the columns of scale 1e-2 a few digits
        memory = SGDL2Regressor(alpha=1e-4).fit(X, y, sample_weight=s)
        np.testing.assert_allclose(reg.coef_, memory.coef_, rtol=1e-9)


def test_warm_start_and_partial_fit_after_a_statistics_fit(rng, oracle):
    X, y, s = _data(rng)
    reg = SGDL2Regressor(alpha=1e-3, warm_start=True).fit(X, y, sample_weight=s)
    again = reg.fit(X, y, sample_weight=s)  # solved afresh: the same optimum
    assert again.n_iter_ == 1 and oracle.gap(again, X, y, s) <= 1e-12
    # partial_fit trains one epoch of data passes on its chunk, from the fitted model
    # and the statistics' moments: at the optimum already, it adds no epoch.
    reg.partial_fit(X, y, sample_weight=s)
    assert reg.n_iter_ == 1 and oracle.gap(reg, X, y, s) <= 1e-12


def test_width_decides_auto(rng, monkeypatch):
    X, y, s = _data(rng, p=6)
    monkeypatch.setattr(statistics_module, "MAX_FEATURES", 5)
    assert SGDL2Regressor().fit(X, y).n_iter_ > 1  # data passes
    assert SGDL2Regressor(precompute=True).fit(X, y).n_iter_ == 1
    assert SGDL2Regressor().fit(X[:, :5], y).n_iter_ == 1
    source, reads = _counting(X, y, s, rows=100)
    SGDL2Regressor().fit_stream(source)
    assert len(reads) > 3  # the first chunk said "too wide": a Stream's passes
    # Sparse X: statistics only where enough values are stored to pay for densifying.
    sparse = X[:, :5].copy()
    sparse[rng.random(sparse.shape) < 0.99] = 0.0
    assert SGDL2Regressor().fit(sp.csr_matrix(sparse), y).n_iter_ > 1
    assert SGDL2Regressor(precompute=True).fit(sp.csr_matrix(sparse), y).n_iter_ == 1


def test_overflowing_statistics_fall_back_or_name_the_columns(rng):
    X = rng.normal(size=(200, 3)) * [1.0, 1e200, 1.0]
    y = X[:, 0] + rng.normal(size=200)
    auto = SGDL2Regressor().fit(X, y)
    passes = SGDL2Regressor(precompute=False).fit(X, y)
    np.testing.assert_array_equal(auto.coef_, passes.coef_)
    with pytest.raises(ValueError, match="statistics of column 1 overflow float64"):
        SGDL2Regressor(precompute=True).fit(X, y)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        SGDL2Regressor(precompute=True).fit(bad, y)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        SGDL2Regressor().fit(bad, y)


@pytest.mark.parametrize(
    "params, match",
    [(dict(learning_rate="constant"), "learning_rate='constant'"),
     (dict(batch_size=16), "batch_size=16")],
)  # fmt: skip
def test_precompute_true_refuses_other_steps(rng, params, match):
    X, y, _ = _data(rng, n=100)
    with pytest.raises(ValueError, match=match):
        SGDL2Regressor(precompute=True, **params).fit(X, y)


def test_statistics_never_modify_the_inputs(rng):
    X, y, s = _data(rng)
    X = np.asfortranarray(X)
    before = [a.copy() for a in (X, y, s)]
    SGDL2Regressor(alpha=0.0).fit(X, y, sample_weight=s)
    assert all(np.array_equal(a, b) for a, b in zip(before, (X, y, s), strict=True))


def test_statistics_run_under_numpy_errstate_raise(rng):
    # The numpy around the kernels (shifts, moments, moving sums to the global means)
    # must not raise on what it does on purpose, on ordinary and on exact problems.
    X, y, s = _data(rng)
    wide = rng.normal(size=(4, 12)) * np.logspace(-1, 1, 12)
    with np.errstate(all="raise"):
        fit = SGDL2Regressor(alpha=1e-3).fit(X, y, sample_weight=s)
        least = SGDL2Regressor(alpha=0.0, fit_intercept=False).fit(wide, np.arange(4.0))
    assert fit.n_iter_ == 1 and least.n_iter_ <= 2
    np.testing.assert_allclose(
        least.coef_, np.linalg.lstsq(wide, np.arange(4.0), rcond=None)[0], rtol=1e-6, atol=1e-12
    )


def _stalls_on_statistics(rng, n=500):
    """No intercept, one column 1e8 off zero: the statistics' Hessian has an
    eigenvalue near mu^2 = 1e16, which hides the others from the solve, so the
    refinement stalls and the fit hands over to the data passes."""
    X = rng.normal(size=(n, 3)) + [1e8, 0.0, 0.0]
    return X, X[:, 1] + rng.normal(size=n)


def test_a_stalled_fit_on_statistics_continues_as_one_run(rng, oracle, capsys):
    X, y = _stalls_on_statistics(rng)
    kw = dict(alpha=1e-3, fit_intercept=False)
    reg = SGDL2Regressor(verbose=1, **kw).fit(X, y)
    assert oracle.gap(reg, X, y, fit_intercept=False) <= 1e-9
    assert len(reg.loss_curve_) == reg.n_iter_ == reg.t_ > 3  # statistics, then passes
    shown = [line.split(":")[0] for line in capsys.readouterr().out.splitlines()]
    assert shown == [f"EPOCH {i}" for i in range(1, reg.n_iter_ + 1)]
    # Early stopping watches both parts: the stall is rounding's, not the score's.
    stopped = SGDL2Regressor(early_stopping=True, random_state=0, **kw).fit(X, y)
    assert stopped.n_iter_ > 3 and stopped.validation_scores_.max() > 0.4
    # max_iter counts both parts, and says so when it cuts the fit short.
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        SGDL2Regressor(max_iter=3, **kw).fit(X, y)
    try:
        from sklearn.callback import FitCallback  # scikit-learn >= 1.9
    except ImportError:
        return

    class Epochs(FitCallback):
        def __init__(self):
            self.ends = []

        def on_fit_task_end(self, estimator, context, *, y=None, fitted_estimator=None):
            if context.task_name == "epoch" and fitted_estimator is not None:
                self.ends.append(context.task_id)
            return False

    epochs = Epochs()
    called = SGDL2Regressor(**kw).set_callbacks(epochs).fit(X, y)
    assert epochs.ends == list(range(called.n_iter_))
    np.testing.assert_array_equal(called.coef_, reg.coef_)


def test_alpha_zero_with_a_constant_column_is_linear_regression(rng):
    # Found in review: the constant column's eigenvector (a frozen coordinate) named a
    # random direction of the coefficients by its rounding, which the least-norm
    # projection then removed; the check's correction was projected away too.
    X, y, s = _data(rng, n=3000, p=6)
    X[:, 2] = 0.1
    for fit_intercept in (True, False):
        reg = SGDL2Regressor(alpha=0.0, fit_intercept=fit_intercept).fit(X, y, sample_weight=s)
        ols = LinearRegression(fit_intercept=fit_intercept).fit(X, y, sample_weight=s)
        np.testing.assert_allclose(reg.coef_, ols.coef_, rtol=1e-7, atol=1e-9)
        assert reg.intercept_ == pytest.approx(ols.intercept_, rel=1e-9, abs=1e-9)


# --------------------------------------------------------------------------- one call


def _one_call_cases(rng):
    X, y, s = _data(rng, n=300, p=6)
    Y = np.c_[y, 2.0 * y + rng.normal(size=300)]
    constant = X.copy()
    constant[:, 1] = 0.5
    wide = rng.normal(size=(20, 30))
    return [
        (dict(alpha=1e-3), X, y, s),
        (dict(alpha=1e-3, fit_intercept=False), X, y, None),
        (dict(alpha=1e-4, n_iter_no_change=1), X, Y, s),
        (dict(alpha=1e-3, verbose=0), X.astype(np.float32), y.astype(np.float32), None),
        (dict(alpha=0.0), constant, y, s),
        (dict(alpha=0.0), wide, wide[:, 0] + 1.0, None),
        (dict(alpha=1e-3, early_stopping=True, random_state=0), X, y, None),
    ]


def test_one_call_is_the_statistics_fit(rng, monkeypatch):
    """Arrays in memory take one compiled call (gram_fit): the same fit, bit for bit."""
    calls = []
    original = statistics_module.OneCall.prepare

    def prepare(self, *args):
        calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(statistics_module.OneCall, "prepare", prepare)
    for params, X, y, s in _one_call_cases(rng):
        fused = SGDL2Regressor(**params).fit(X, y, sample_weight=s)
        assert calls.pop() and not calls
        with monkeypatch.context() as m:
            m.setattr(statistics_module, "one_call", lambda *arrays: None)
            apart = SGDL2Regressor(**params).fit(X, y, sample_weight=s)
        assert not calls
        # The same operations, compiled alike on both paths: the same numbers.
        for name in ("coef_", "intercept_", "n_iter_", "loss_curve_"):
            np.testing.assert_array_equal(getattr(fused, name), getattr(apart, name), name)


def test_a_small_fit_is_one_compiled_call(rng, monkeypatch):
    from skl_tfreg import _core

    X, y, s = _data(rng, n=100, p=5)
    SGDL2Regressor().fit(X, y, sample_weight=s)  # traces
    calls = []
    kernel = _core.kernel

    def counting(fn, *args):
        compiled = kernel(fn, *args)
        return lambda *tensors: calls.append(fn.__name__) or compiled(*tensors)

    monkeypatch.setattr(_core, "kernel", counting)
    reg = SGDL2Regressor().fit(X, y, sample_weight=s)
    assert calls == ["gram_fit"] and reg.n_iter_ == 1
    calls.clear()
    monkeypatch.setattr(statistics_module, "one_call", lambda *arrays: None)
    SGDL2Regressor().fit(X, y, sample_weight=s)
    solver = [name for name in calls if name not in ("moments_of", "reshifted")]
    assert solver == ["chunk_statistics", "gram_solve", "chunk_check", "gram_refine"]
    assert len(calls) == 7  # and the moments (twice) and their move to the means


def test_one_call_takes_dense_arrays_whose_statistics_stay_finite(rng):
    X, y, s = _data(rng, n=100, p=5)
    Y = y[:, None]
    assert isinstance(statistics_module.one_call(X, Y, s), statistics_module.OneCall)
    assert statistics_module.one_call(sp.csr_matrix(X), Y, s) is None
    assert statistics_module.one_call(X * 1e160, Y, s) is None  # its squares overflow
    assert statistics_module.one_call(X, Y * 1e160, s) is None
    assert statistics_module.one_call(X.astype(np.float32) * 1e18, Y, s) is None
    big = np.zeros((statistics_module.ONE_CALL_ELEMENTS // 4 + 1, 4))
    assert statistics_module.one_call(big, big[:, :1], np.ones(len(big))) is None
    nan = X.copy()
    nan[0, 0] = np.nan
    assert statistics_module.one_call(nan, Y, s) is None  # the Statistics path names it
