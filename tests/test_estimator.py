"""SGDL2Regressor against the Ridge oracle, and its scikit-learn behaviour."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skl_tfreg import SGDL2Regressor
from skl_tfreg._demo import closed_form, seed_data

GAP = 1e-6  # the foundation's bar: relative objective gap to Ridge's optimum


# --------------------------------------------------------------------------- optimum


def test_seed_experiment_gives_the_closed_form(oracle):
    X, y = seed_data()
    reg = SGDL2Regressor().fit(X, y)
    coef, intercept = closed_form(X, y, reg.alpha)
    np.testing.assert_allclose(reg.coef_, coef, rtol=1e-10)
    np.testing.assert_allclose(reg.intercept_, intercept, rtol=1e-8)
    assert abs(reg.intercept_ - 2.5) < 0.05  # the bias moved from 0 to the data's 2.5
    assert oracle.gap(reg, X, y) <= GAP


def _mixed_scales(rng, n=500):
    X = rng.normal(size=(n, 8)) * np.logspace(-4, 4, 8) + np.linspace(-1e3, 1e3, 8)
    y = X @ (1 / np.logspace(-4, 4, 8)) + 7.0 + rng.normal(size=n)
    return X, y


def _correlated(rng, n=2000, p=30, rho=0.95):
    chol = np.linalg.cholesky(rho * np.ones((p, p)) + (1 - rho) * np.eye(p))
    X = rng.normal(size=(n, p)) @ chol.T
    return X, X @ rng.normal(size=p) + 0.1 * rng.normal(size=n)


def _wide(rng):
    return rng.random((15, 30)), rng.integers(0, 3, 15).astype(float)


@pytest.mark.parametrize("make", [_mixed_scales, _correlated, _wide])
@pytest.mark.parametrize("alpha", [1e-4, 1e-1])
def test_default_fit_reaches_ridge(make, alpha, rng, oracle):
    X, y = make(rng)
    reg = SGDL2Regressor(alpha=alpha).fit(X, y)
    assert oracle.gap(reg, X, y) <= GAP
    assert reg.n_iter_ == len(reg.loss_curve_) < reg.max_iter


def test_weighted_fit_reaches_ridge_with_scaled_alpha(rng, oracle):
    X, y = _correlated(rng)
    s = rng.integers(0, 5, size=len(y)).astype(float)
    reg = SGDL2Regressor().fit(X, y, sample_weight=s)
    assert oracle.gap(reg, X, y, sample_weight=s) <= GAP
    ridge = Ridge(alpha=reg.alpha * s.sum()).fit(X, y, sample_weight=s)
    np.testing.assert_allclose(reg.predict(X), ridge.predict(X), rtol=1e-6, atol=1e-6)


def test_integer_weights_equal_repeated_rows(rng):
    X, y = _mixed_scales(rng, n=60)
    s = rng.integers(0, 4, size=60)
    weighted = SGDL2Regressor().fit(X, y, sample_weight=s)
    repeated = SGDL2Regressor().fit(X.repeat(s, axis=0), y.repeat(s))
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-9)


def test_no_intercept_reaches_ridge(rng, oracle):
    X, y = _mixed_scales(rng)
    reg = SGDL2Regressor(fit_intercept=False).fit(X, y)
    assert reg.intercept_ == 0
    assert oracle.gap(reg, X, y, fit_intercept=False) <= GAP


def test_many_samples_reach_ridge(rng, oracle):
    X = rng.normal(size=(50_000, 10)) * np.logspace(0, 3, 10)
    y = X @ rng.normal(size=10) + rng.normal(size=50_000)
    reg = SGDL2Regressor().fit(X, y)
    assert oracle.gap(reg, X, y) <= GAP


def test_zero_alpha_is_least_squares(rng):
    X, y = _mixed_scales(rng, n=100)
    reg = SGDL2Regressor(alpha=0.0).fit(X, y)
    A = np.column_stack([X, np.ones(len(y))])
    expected = np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(reg.coef_, expected[:-1], rtol=1e-6)


def test_constant_target_gives_zero_coef(rng):
    X = rng.normal(size=(30, 4))
    reg = SGDL2Regressor().fit(X, np.full(30, 3.25))
    np.testing.assert_allclose(reg.coef_, 0.0, atol=1e-12)
    np.testing.assert_allclose(reg.intercept_, 3.25)


def test_float32_seed_experiment_keeps_the_intercept():
    # Means are accumulated in float64: a float32 running sum over 10,000 rows of
    # y ~ 1e4 would move the intercept by about 1.
    X, y = seed_data()
    reg = SGDL2Regressor().fit(X.astype(np.float32), y)
    coef, intercept = closed_form(X, y, reg.alpha)
    np.testing.assert_allclose(reg.coef_, coef, rtol=1e-6)
    assert abs(reg.intercept_ - intercept) < 0.01


def test_float32_trains_and_predicts_in_float32(rng, oracle):
    X, y = _correlated(rng)
    X32 = X.astype(np.float32)
    reg = SGDL2Regressor().fit(X32, y)
    assert reg.coef_.dtype == np.float32
    assert reg.predict(X32).dtype == np.float32
    assert oracle.gap(reg, X32, y) <= 1e-5
    reg64 = SGDL2Regressor().fit(X, y)
    assert reg64.coef_.dtype == np.float64 and reg64.predict(X).dtype == np.float64


@pytest.mark.parametrize("offset", [1e2, 1e4])
def test_float32_without_intercept_on_large_offsets(rng, oracle, offset):
    # ||mu||^2 ~ 5 offset^2: the preconditioned gradient norm must not cancel to 0
    # in float32 (it once did, and the fit "converged" at coef = 0).
    X = (rng.normal(size=(5000, 5)) + offset).astype(np.float32)
    y = X @ rng.normal(size=5) + rng.normal(size=5000)
    reg = SGDL2Regressor(fit_intercept=False).fit(X, y)
    assert reg.n_iter_ >= 1
    assert oracle.gap(reg, X, y, fit_intercept=False) <= 1e-4


def test_loss_curve_is_the_objective(rng, oracle):
    X, y = _mixed_scales(rng, n=200)
    reg = SGDL2Regressor(alpha=0.01).fit(X, y)
    final = oracle.objective(X, y, reg.coef_, reg.intercept_, reg.alpha)
    np.testing.assert_allclose(reg.loss_curve_[-1], final, rtol=1e-8)
    assert reg.t_ == reg.n_iter_  # one step per full-batch epoch


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_constant_column_without_penalty(rng, fit_intercept):
    # alpha = 0 and a constant column: its computed variance is rounding noise, which
    # must not become its scale (that once gave coefficients of 1e15).
    X = rng.normal(size=(50, 3))
    X[:, 1] = 0.1
    y = X @ [1.0, 2.0, 3.0] + rng.normal(size=50)
    reg = SGDL2Regressor(alpha=0.0, fit_intercept=fit_intercept).fit(X, y)
    ridge = Ridge(alpha=0.0, fit_intercept=fit_intercept, solver="svd").fit(X, y)
    np.testing.assert_allclose(reg.predict(X), ridge.predict(X), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("constant", [1e6, 1.7e9, 1e13])
def test_large_constant_column_under_an_intercept(rng, constant):
    # The intercept absorbs a constant column: its coefficient is exactly 0 and the
    # intercept is Ridge's. Implicit centring once cancelled 1.7e9 * w to noise here.
    s = rng.uniform(0.5, 2.0, size=1000)
    X = np.column_stack([rng.normal(size=1000), np.full(1000, constant)])
    y = 2 * X[:, 0] + 5 + 0.1 * rng.normal(size=1000)
    reg = SGDL2Regressor().fit(X, y, s)
    ridge = Ridge(alpha=reg.alpha * s.sum(), solver="svd").fit(X[:, :1], y, sample_weight=s)
    assert reg.coef_[1] == 0
    np.testing.assert_allclose(reg.coef_[0], ridge.coef_[0], rtol=1e-9)
    np.testing.assert_allclose(reg.intercept_, ridge.intercept_, rtol=1e-9)


def test_offsets_far_above_the_spread_are_centred_exactly(rng):
    # Offsets 1e7 times the spread: implicit centring (X w - m w) keeps 9 of 16 digits
    # and put the intercept 5e-3 off; such X is centred in a copy instead.
    X = rng.normal(size=(300, 3)) + [1e7, 3e7, -2e7]
    X[:, 2] += 0.5 * X[:, 0]
    y = X @ [1.0, 2.0, 3.0] + 0.01 * rng.normal(size=300)
    reg = SGDL2Regressor(alpha=1e-6).fit(X, y)
    ridge = Ridge(alpha=1e-6 * 300, solver="svd").fit(X, y)
    np.testing.assert_allclose(reg.coef_, ridge.coef_, rtol=1e-13)
    np.testing.assert_allclose(reg.intercept_, ridge.intercept_, rtol=0, atol=1e-6)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_exact_interpolation_ends_cleanly(rng, fit_intercept):
    # J reaches rounding level: that is convergence, not a floor, a NaN or a divergence.
    X = rng.normal(size=(3, 3))
    y = rng.normal(size=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for tol in (1e-10, None):
            reg = SGDL2Regressor(alpha=0.0, fit_intercept=fit_intercept, tol=tol).fit(X, y)
            np.testing.assert_allclose(reg.predict(X), y, atol=1e-12)


# ----------------------------------------------------------------- mini-batches


def test_minibatch_sgd_gets_close_to_ridge(rng, oracle):
    X, y = _mixed_scales(rng, n=2000)
    reg = SGDL2Regressor(batch_size=64, random_state=0).fit(X, y)
    assert oracle.gap(reg, X, y) <= 1e-3
    assert reg.t_ == reg.n_iter_ * int(np.ceil(2000 / 64))


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_minibatch_without_intercept_and_in_float32(rng, oracle, fit_intercept, dtype):
    X, y = _correlated(rng, n=3000, p=10)
    X = X + 3.0  # offsets: the rank-one direction the preconditioner removes
    reg = SGDL2Regressor(batch_size=100, fit_intercept=fit_intercept, random_state=0)
    reg.fit(X.astype(dtype), y)
    assert reg.coef_.dtype == dtype
    assert oracle.gap(reg, X, y, fit_intercept=fit_intercept) <= 1e-3
    # The epoch objective is an estimate made during the epoch; near the end it is
    # close to J itself.
    final = oracle.objective(X, y, reg.coef_, reg.intercept_, reg.alpha)
    np.testing.assert_allclose(reg.loss_curve_[-1], final, rtol=1e-2)


def test_minibatch_is_reproducible_and_depends_on_the_seed(rng):
    X, y = _mixed_scales(rng, n=300)
    a = SGDL2Regressor(batch_size=16, random_state=1, max_iter=3, tol=None).fit(X, y)
    b = SGDL2Regressor(batch_size=16, random_state=1, max_iter=3, tol=None).fit(X, y)
    c = SGDL2Regressor(batch_size=16, random_state=2, max_iter=3, tol=None).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert not np.array_equal(a.coef_, c.coef_)


def test_batch_size_at_least_n_is_full_batch(rng):
    X, y = _mixed_scales(rng, n=50)
    full = SGDL2Regressor().fit(X, y)
    big = SGDL2Regressor(batch_size=50).fit(X, y)
    np.testing.assert_array_equal(full.coef_, big.coef_)


# -------------------------------------------------------------- stopping and steps


def test_convergence_warning_only_when_max_iter_cuts_short(rng):
    X, y = _correlated(rng)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        SGDL2Regressor(max_iter=2, precompute=False).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SGDL2Regressor(max_iter=2, tol=None, precompute=False).fit(X, y)  # no rule to miss
        SGDL2Regressor(tol=None, precompute=False).fit(X, y)  # ... and no floor to warn about
        SGDL2Regressor(precompute=False).fit(X, y)
        assert SGDL2Regressor(max_iter=1).fit(X, y).n_iter_ == 1  # statistics: one check


def test_tol_none_runs_max_iter_with_constant_steps(rng):
    X, y = _mixed_scales(rng, n=100)
    reg = SGDL2Regressor(learning_rate="constant", eta0=0.01, tol=None, max_iter=40).fit(X, y)
    assert reg.n_iter_ == 40
    assert np.all(np.diff(reg.loss_curve_) < 0)


def test_constant_step_descends_to_ridge_given_epochs(rng, oracle):
    X, y = _mixed_scales(rng, n=200)
    reg = SGDL2Regressor(learning_rate="constant", eta0=0.1, max_iter=5000).fit(X, y)
    assert oracle.gap(reg, X, y) <= GAP


def test_too_large_constant_step_is_a_clear_error(rng):
    X, y = _correlated(rng, n=200)
    with pytest.raises(ValueError, match="diverged.*lower eta0"):
        SGDL2Regressor(learning_rate="constant", eta0=50.0, max_iter=5000).fit(X, y)


def test_warm_start_continues_and_checks_features(rng, oracle):
    X, y = _correlated(rng)
    # The data passes continue the descent; on statistics a warm start solves again.
    reg = SGDL2Regressor(warm_start=True, max_iter=3, tol=None, precompute=False).fit(X, y)
    first = reg.loss_curve_[-1]
    reg.set_params(max_iter=1000, tol=1e-10).fit(X, y)
    assert reg.loss_curve_[0] < first  # started where the last fit ended
    assert oracle.gap(reg, X, y) <= GAP
    coef = reg.coef_.copy()
    with pytest.raises(ValueError, match="X has 3 features, but SGDL2Regressor is expecting 30"):
        reg.fit(X[:, :3], y)
    assert reg.n_features_in_ == 30  # the failed call changed nothing
    np.testing.assert_array_equal(reg.coef_, coef)
    reg.predict(X)


def test_verbose_prints_the_seed_display(rng, capsys):
    X, y = seed_data(200)
    SGDL2Regressor(verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert out.startswith("EPOCH 1: training loss")
    assert "W: [3.65" in out and "b: " in out
    SGDL2Regressor().fit(X, y)
    assert capsys.readouterr().out == ""


# -------------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("where", ["X", "y", "sample_weight"])
def test_non_finite_input_is_refused_before_training(rng, bad, where):
    X, y, s = rng.normal(size=(20, 3)), rng.normal(size=20), np.ones(20)
    {"X": X[3], "y": y[3:4], "sample_weight": s[3:4]}[where][0] = bad
    with pytest.raises(ValueError, match="NaN|infinity|inf"):
        SGDL2Regressor().fit(X, y, sample_weight=s)


@pytest.mark.parametrize(
    "weights, match",
    [
        (-np.ones(10), "Negative values in data passed to `sample_weight`"),
        (np.zeros(10), "non-zero|positive sum"),
        (np.ones(9), "sample_weight.shape"),
    ],
)
def test_bad_weights_are_named(rng, weights, match):
    with pytest.raises(ValueError, match=match):
        SGDL2Regressor().fit(rng.normal(size=(10, 2)), rng.normal(size=10), weights)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"alpha": -1.0}, "alpha"),
        ({"max_iter": 0}, "max_iter"),
        ({"tol": -1.0}, "tol"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": "big"}, "batch_size"),
        ({"learning_rate": "optimal"}, "learning_rate"),
        ({"eta0": 0.0}, "eta0"),
    ],
)
def test_bad_parameters_are_named(rng, params, match):
    with pytest.raises(ValueError, match=match):
        SGDL2Regressor(**params).fit(rng.normal(size=(10, 2)), rng.normal(size=10))


def test_overflowing_float32_is_a_clear_error():
    X = np.array([[1e30], [2e30], [3e30]], dtype=np.float32)
    with pytest.raises(ValueError, match="overflow float32.*rescale"):
        SGDL2Regressor().fit(X, np.array([1.0, 2.0, 3.0]))


def test_callers_arrays_are_not_modified(rng):
    X, y = _mixed_scales(rng, n=50)
    s = rng.uniform(size=50)
    X_f = np.asfortranarray(X)
    strided = np.repeat(X, 2, axis=1)[:, ::2]  # a non-contiguous view equal to X
    copies = [X.copy(), y.copy(), s.copy()]
    for data in (X, X_f, strided):
        for batch_size in ["auto", 7]:
            reg = SGDL2Regressor(batch_size=batch_size, random_state=0).fit(data, y, s)
            reg.predict(data)
        np.testing.assert_array_equal(data, copies[0])
    np.testing.assert_array_equal(y, copies[1])
    np.testing.assert_array_equal(s, copies[2])


def _leaves(value):
    if isinstance(value, (tuple, list)):  # the training state is a NamedTuple of arrays
        for item in value:
            yield from _leaves(item)
    else:
        yield value


@pytest.mark.parametrize("batch_size", ["auto", 5])
def test_fitted_state_is_plain_numpy(rng, batch_size):
    reg = SGDL2Regressor(batch_size=batch_size).fit(rng.normal(size=(20, 3)), rng.normal(size=20))
    reg.partial_fit(rng.normal(size=(7, 3)), rng.normal(size=7))
    for name, value in vars(reg).items():
        for leaf in _leaves(value):
            assert type(leaf).__module__.split(".")[0] in {"numpy", "builtins"}, name


# ------------------------------------------------------------ scikit-learn tools


def test_pipeline_with_scaler_matches_ridge_pipeline(rng):
    X, y = _mixed_scales(rng)
    ours = make_pipeline(StandardScaler(), SGDL2Regressor(alpha=1e-3)).fit(X, y)
    ridge = make_pipeline(StandardScaler(), Ridge(alpha=1e-3 * len(y))).fit(X, y)
    np.testing.assert_allclose(ours.predict(X), ridge.predict(X), rtol=1e-7)
    np.testing.assert_allclose(ours.score(X, y), ridge.score(X, y), rtol=1e-7)


def test_grid_search_in_worker_processes(rng):
    X, y = _mixed_scales(rng, n=300)
    y = y + 100 * rng.normal(size=300)  # noisy enough for alpha to matter
    grid = {"alpha": [1e-4, 1.0, 100.0], "batch_size": ["auto", 32]}
    search = GridSearchCV(SGDL2Regressor(random_state=0), grid, cv=3, n_jobs=2).fit(X, y)
    serial = GridSearchCV(SGDL2Regressor(random_state=0), grid, cv=3, n_jobs=1).fit(X, y)
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"], rtol=1e-9
    )
    assert search.best_params_ == serial.best_params_
    assert search.best_estimator_.n_iter_ >= 1


def test_clones_and_new_shapes_reuse_the_compiled_kernels(rng):
    from skl_tfreg import _core

    configs = [{}, {"batch_size": 2, "max_iter": 3, "tol": None}]
    for dtype in (np.float64, np.float32):  # the first fit of each kind may trace
        for params in configs:
            SGDL2Regressor(**params).fit(rng.normal(size=(9, 2)).astype(dtype), np.ones(9))
    before = _core.trace_count()
    for n, p in [(3, 1), (40, 6), (500, 12), (7, 30)]:
        for dtype in (np.float64, np.float32):
            for params in configs:
                X = rng.normal(size=(n, p)).astype(dtype)
                reg = clone(SGDL2Regressor(**params)).set_params(alpha=float(n), verbose=0)
                reg.fit(X, rng.normal(size=n))
    assert _core.trace_count() == before


def test_clone_and_pickle_of_fitted_estimators(rng):
    X, y = _mixed_scales(rng, n=100)
    reg = SGDL2Regressor(alpha=0.5).fit(X, y)
    copy = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(copy.predict(X), reg.predict(X))
    fresh = clone(reg)
    assert fresh.get_params() == reg.get_params() and not hasattr(fresh, "coef_")
    np.testing.assert_array_equal(fresh.fit(X, y).coef_, reg.coef_)


def test_dataframe_feature_names(rng):
    pd = pytest.importorskip("pandas")
    X, y = _mixed_scales(rng, n=50)
    frame = pd.DataFrame(X[:, :3], columns=["a", "b", "c"])
    reg = SGDL2Regressor().fit(frame, pd.Series(y))
    assert list(reg.feature_names_in_) == ["a", "b", "c"]
    np.testing.assert_array_equal(reg.coef_, SGDL2Regressor().fit(X[:, :3], y).coef_)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        reg.predict(X[:, :3])
    with pytest.raises(ValueError, match="feature names should match"):
        reg.predict(frame.rename(columns={"c": "z"}))
    with pytest.raises(ValueError, match="feature names should match"):
        reg.partial_fit(frame[["b", "a", "c"]], y)  # same names, another order
    unnamed = SGDL2Regressor().fit(X[:, :3], y)
    with pytest.warns(UserWarning, match="X has feature names, but SGDL2Regressor was fitted"):
        unnamed.predict(frame)
    single = SGDL2Regressor().fit(frame.astype(np.float32), pd.Series(y))
    assert single.coef_.dtype == np.float32


_WITHOUT_PANDAS = """
import sys

class Block:  # as if pandas were not installed
    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is not installed")

sys.meta_path.insert(0, Block())
import os, tempfile
import numpy as np
import skl_tfreg
rng = np.random.default_rng(0)
X = rng.standard_normal((100, 3))
y = X @ [1.0, 2.0, 3.0] + 1.0
est = skl_tfreg.SGDL2Regressor().fit(X, y)
path = os.path.join(tempfile.mkdtemp(), "data.csv")
np.savetxt(path, np.c_[X, y], delimiter=",", header="a,b,c,t", comments="")
source = skl_tfreg.CSVSource(path, target="t", batch_rows=30)
streamed = skl_tfreg.SGDL2Regressor().fit_stream(source)
assert "pandas" not in sys.modules
assert np.abs(streamed.coef_ - est.coef_).max() < 1e-12
assert list(streamed.feature_names_in_) == ["a", "b", "c"]
print("without pandas: ok")
"""


@pytest.mark.slow  # a fresh process that imports TensorFlow: about 6 s
def test_pandas_stays_optional():
    run = subprocess.run([sys.executable, "-c", _WITHOUT_PANDAS], capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "without pandas: ok" in run.stdout


def test_demo_prints_fit_beside_closed_form(capsys):
    from skl_tfreg._cli import main

    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    fitted = [line for line in out.splitlines() if line.startswith("fitted")][0].split()
    closed = [line for line in out.splitlines() if line.startswith("closed form")][0].split()
    np.testing.assert_allclose(float(fitted[1]), float(closed[2]), rtol=1e-10)
    np.testing.assert_allclose(float(fitted[2]), float(closed[3]), rtol=1e-8)
    assert "EPOCH 1: training loss" in out
