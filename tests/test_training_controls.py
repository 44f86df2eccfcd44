"""partial_fit, warm starts, step schedules, stopping rules, early stopping, 2-D y, progress."""

import math
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import r2_score

from skl_tfreg import SGDL2Regressor, SGDL2RegressorCV

GAP = 1e-6  # the foundation's bar: relative objective gap to Ridge's optimum
SCHEDULES = ["auto", "constant", "invscaling", "adaptive"]


def _ill_conditioned(rng, n=400):
    """Correlated columns (rho 0.9) on scales 1e-3..1e3 with offsets."""
    p = 6
    scales = np.logspace(-3, 3, p)
    Z = np.sqrt(0.1) * rng.normal(size=(n, p)) + np.sqrt(0.9) * rng.normal(size=(n, 1))
    X = Z * scales + np.linspace(-50, 50, p) * scales
    y = Z @ rng.normal(size=p) + 4.0 + 0.3 * rng.normal(size=n)
    return X, y


def _silently(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


def _gradient_ratio(reg, X, y):
    """The stopping rule's statistic, re-derived in numpy: |g| / sqrt(J), preconditioned."""
    S, alpha = len(y), reg.alpha
    m = X.mean(axis=0)
    d = np.sqrt(X.var(axis=0) + alpha)
    r = X @ reg.coef_ + reg.intercept_ - y
    g_w = 2 / S * (X - m).T @ r + 2 * alpha * reg.coef_
    g_c = 2 / S * r.sum()
    J = r @ r / S + alpha * reg.coef_ @ reg.coef_
    return math.sqrt(np.sum((g_w / d) ** 2) + g_c**2) / math.sqrt(J)


# ------------------------------------------------------------------ partial_fit


@pytest.mark.parametrize("learning_rate", SCHEDULES)
@pytest.mark.parametrize("batch_size", ["auto", 32])
def test_k_partial_fits_equal_fit_with_max_iter_k(rng, learning_rate, batch_size):
    X, y = _ill_conditioned(rng)
    # partial_fit trains one epoch of data passes per call (fit on statistics would
    # converge in its first epoch): fit compares with precompute=False.
    params = dict(alpha=1e-3, learning_rate=learning_rate, eta0=0.05, batch_size=batch_size,
                  shuffle=False, tol=None, precompute=False)  # fmt: skip
    k = 6
    fitted = SGDL2Regressor(max_iter=k, **params).fit(X, y)
    partial = SGDL2Regressor(**params)
    for _ in range(k):
        partial.partial_fit(X, y)
    # Conjugate gradients differ by rounding only (partial_fit recomputes the residual
    # that fit updates), but their steps amplify it on this ill-conditioned set.
    rtol = 1e-9 if (learning_rate, batch_size) == ("auto", "auto") else 1e-12
    scale = np.abs(fitted.coef_).max()
    assert np.abs(partial.coef_ - fitted.coef_).max() <= rtol * scale
    assert abs(partial.intercept_ - fitted.intercept_) <= rtol * abs(fitted.intercept_)
    np.testing.assert_allclose(partial.loss_curve_, fitted.loss_curve_, rtol=1e-12)
    assert partial.n_iter_ == fitted.n_iter_ == k
    assert partial.t_ == fitted.t_ == (k if batch_size == "auto" else k * math.ceil(400 / 32))


def test_partial_fit_continues_the_invscaling_schedule(rng):
    # Step t takes eta0 / (t + 1)^power_t with t counted over all calls (SGDRegressor's
    # partial_fit restarts its schedule, scikit-learn PR #20441): re-derived in numpy.
    X, y = rng.normal(size=(50, 2)), rng.normal(size=50)
    eta0, power_t = 0.2, 0.5
    reg = SGDL2Regressor(alpha=0.0, learning_rate="invscaling", eta0=eta0, power_t=power_t)
    m, d = X.mean(axis=0), X.std(axis=0)
    A, yc, v = (X - m) / d, y - y.mean(), np.zeros(2)
    for t in range(4):
        reg.partial_fit(X, y)
        v = v - eta0 / (t + 1) ** power_t * (2 / 50 * A.T @ (A @ v - yc))
        np.testing.assert_allclose(reg.coef_, v / d, rtol=1e-12)
    assert reg.t_ == 4


@pytest.mark.parametrize("learning_rate", ["auto", "adaptive"])
def test_partial_fit_on_a_stream_of_chunks_approaches_ridge(rng, oracle, learning_rate):
    X, y = _ill_conditioned(rng, n=4000)
    reg = SGDL2Regressor(alpha=1e-3, learning_rate=learning_rate, eta0=0.1, batch_size=50,
                         random_state=0)  # fmt: skip
    chunks = np.array_split(rng.permutation(4000), 20)
    gaps = []
    for _ in range(10):
        for rows in chunks:
            reg.partial_fit(X[rows], y[rows])
        gaps.append(oracle.gap(reg, X, y))
    assert gaps[-1] < 1e-3 and gaps[-1] < gaps[0] / 10
    assert reg.n_iter_ == len(reg.loss_curve_) == 200


def test_partial_fit_merges_moments_so_a_first_constant_chunk_does_no_harm(rng, oracle):
    # The first chunk's second column is constant; with moments fixed at the first
    # chunk it would be frozen at 0 forever. Merged moments let it train later.
    X, y = _ill_conditioned(rng, n=600)
    X[:100, 1] = 3.0
    reg = SGDL2Regressor(alpha=1e-3)
    reg.partial_fit(X[:100], y[:100])
    assert reg.coef_[1] == 0.0
    for _ in range(50):  # each call's preconditioner differs a little: linear, not CG's rate
        reg.partial_fit(X[100:], y[100:])
    assert oracle.gap(reg, X[100:], y[100:]) <= GAP


def test_partial_fit_refuses_other_features_and_targets(rng):
    X, y = rng.normal(size=(20, 3)), rng.normal(size=20)
    reg = SGDL2Regressor().partial_fit(X, y)
    coef = reg.coef_.copy()
    with pytest.raises(ValueError, match="X has 2 features, but SGDL2Regressor is expecting 3"):
        reg.partial_fit(X[:, :2], y)
    with pytest.raises(ValueError, match="y has 2 columns.*fitted on y of 1-D"):
        reg.partial_fit(X, np.column_stack([y, y]))
    np.testing.assert_array_equal(reg.coef_, coef)  # the failed calls changed nothing
    assert reg.n_iter_ == 1


def test_partial_fit_after_fit_continues_it(rng, oracle):
    X, y = _ill_conditioned(rng)
    reg = _silently(SGDL2Regressor(alpha=1e-3, max_iter=2, precompute=False).fit, X, y)
    before = reg.loss_curve_.copy()
    reg.partial_fit(X, y)
    np.testing.assert_array_equal(reg.loss_curve_[:2], before)
    assert reg.n_iter_ == 3 and reg.loss_curve_[2] < before[-1]
    full = _silently(SGDL2Regressor(alpha=1e-3, max_iter=3, precompute=False).fit, X, y)
    np.testing.assert_allclose(reg.coef_, full.coef_, rtol=1e-10)


def test_partial_fit_keeps_the_dtype_of_the_first_chunk(rng):
    X, y = rng.normal(size=(30, 3)), rng.normal(size=30)
    reg = SGDL2Regressor().partial_fit(X.astype(np.float32), y)
    reg.partial_fit(X, y)
    assert reg.coef_.dtype == np.float32 and reg.predict(X).dtype == np.float64


# ------------------------------------------------------------------- warm start


@pytest.mark.parametrize("learning_rate", SCHEDULES)
def test_warm_start_continues_the_step_state(rng, learning_rate):
    X, y = _ill_conditioned(rng)
    params = dict(alpha=1e-3, learning_rate=learning_rate, eta0=0.05, tol=None, shuffle=False,
                  precompute=False)  # fmt: skip
    once = SGDL2Regressor(max_iter=8, **params).fit(X, y)
    twice = SGDL2Regressor(max_iter=4, warm_start=True, **params).fit(X, y).fit(X, y)
    np.testing.assert_allclose(twice.coef_, once.coef_, rtol=1e-9)
    assert twice.t_ == once.t_ == 8
    np.testing.assert_allclose(twice.loss_curve_, once.loss_curve_[4:], rtol=1e-10)


def test_warm_start_refuses_other_targets(rng):
    X, y = rng.normal(size=(20, 3)), rng.normal(size=20)
    reg = SGDL2Regressor(warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="y has 2 columns.*warm_start=False"):
        reg.fit(X, np.column_stack([y, y]))


# -------------------------------------------------------------------- schedules


def test_adaptive_divides_the_step_by_five_on_each_stall_and_stops_below_1e_6(rng):
    # eta0 = 1e-5 gains far less than tol = 1e-3 per epoch: every 5 epochs is a stall.
    # 1e-5 -> 2e-6 -> 4e-7, and a stall at 4e-7 (< 1e-6) ends the fit, unwarned.
    X, y = _ill_conditioned(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg = SGDL2Regressor(learning_rate="adaptive", eta0=1e-5, tol=1e-3).fit(X, y)
    assert reg.n_iter_ == 15
    assert dict(reg._train_state.steps)[("adaptive", 1e-5)] == (pytest.approx(4e-7), 2)


def test_constant_and_invscaling_take_the_steps_they_name(rng):
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    m, d = X.mean(axis=0), X.std(axis=0)
    A, yc = (X - m) / d, y - y.mean()
    for learning_rate, power_t in [("constant", 0.0), ("invscaling", 0.25)]:
        reg = SGDL2Regressor(alpha=0.0, learning_rate=learning_rate, eta0=0.1, tol=None,
                             max_iter=5).fit(X, y)  # fmt: skip
        v = np.zeros(3)
        for t in range(5):
            v = v - 0.1 / (t + 1) ** power_t * (2 / 40 * A.T @ (A @ v - yc))
        np.testing.assert_allclose(reg.coef_, v / d, rtol=1e-12)


@pytest.mark.parametrize(
    "learning_rate, batch_size", [("auto", 16), ("adaptive", 16), ("adaptive", "auto")]
)
def test_a_diverging_step_is_reduced_and_training_recovers(rng, oracle, learning_rate,
                                                          batch_size):  # fmt: skip
    X, y = _ill_conditioned(rng, n=200)
    reg = SGDL2Regressor(alpha=1e-2, learning_rate=learning_rate, eta0=50.0,
                         batch_size=batch_size, random_state=0, max_iter=3000)  # fmt: skip
    if learning_rate == "auto" and batch_size != "auto":
        # Force the automatic step far too high: the estimate is reached through the
        # state a warm start carries.
        _silently(reg.set_params(warm_start=True, max_iter=1).fit, X, y)
        reg._train_state = reg._train_state._replace(steps=((("auto", 16), (50.0, 0)),))
        reg.set_params(max_iter=3000)
    _silently(reg.fit, X, y)
    assert np.all(np.isfinite(reg.coef_)) and np.all(np.isfinite(reg.loss_curve_))
    steps = dict(reg._train_state.steps)
    eta, _ = steps[(learning_rate, 16 if learning_rate == "auto" else 50.0)]
    assert eta < 1.0
    bar = GAP if batch_size == "auto" else 1e-2  # mini-batches end in SGD's noise ball
    assert oracle.gap(reg, X, y) <= bar


@pytest.mark.parametrize("learning_rate", ["constant", "invscaling"])
@pytest.mark.parametrize("batch_size", ["auto", 16])
def test_a_diverging_explicit_step_is_a_clear_error(rng, learning_rate, batch_size):
    X, y = _ill_conditioned(rng, n=200)
    reg = SGDL2Regressor(learning_rate=learning_rate, eta0=50.0, batch_size=batch_size)
    with pytest.raises(ValueError, match="diverged.*lower eta0 \\(now 50.0\\)"):
        reg.fit(X, y)
    assert not hasattr(reg, "coef_")


def test_schedule_epoch_counts_on_the_ill_conditioned_set(rng, oracle):
    # The figures docs/choosing_steps.md reports, as bounds: conjugate gradients
    # reach the optimum in a handful of epochs where steepest descent needs hundreds.
    X, y = _ill_conditioned(rng)
    epochs = {}
    for learning_rate in SCHEDULES:
        reg = SGDL2Regressor(alpha=1e-3, learning_rate=learning_rate, eta0=0.1, max_iter=20000)
        reg.fit(X, y)
        assert oracle.gap(reg, X, y) <= GAP, learning_rate
        epochs[learning_rate] = reg.n_iter_
    assert epochs["auto"] <= 15
    assert min(epochs["constant"], epochs["adaptive"]) > 10 * epochs["auto"]


# ---------------------------------------------------------------- stopping rules


def test_gradient_rule_stops_at_the_first_epoch_that_meets_tol(rng):
    X, y = _ill_conditioned(rng)
    tol = 1e-4
    reg = SGDL2Regressor(alpha=1e-3, learning_rate="constant", eta0=0.1, tol=tol,
                         n_iter_no_change=1000, max_iter=5000).fit(X, y)  # fmt: skip
    assert _gradient_ratio(reg, X, y) <= tol
    with pytest.warns(ConvergenceWarning, match=f"max_iter={reg.n_iter_ - 1} "):
        short = clone(reg).set_params(max_iter=reg.n_iter_ - 1).fit(X, y)
    assert _gradient_ratio(short, X, y) > tol


@pytest.mark.parametrize("batch_size", ["auto", 25])
def test_objective_rule_stops_after_n_iter_no_change_epochs(rng, batch_size):
    X, y = _ill_conditioned(rng)
    tol, patience = 1e-3, 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stopping by the rule is not a warning
        reg = SGDL2Regressor(learning_rate="constant", eta0=0.01, tol=tol,
                             n_iter_no_change=patience, batch_size=batch_size,
                             random_state=0).fit(X, y)  # fmt: skip
    # Replay the rule on the recorded curve, from the objective at coef = 0: it fires
    # first at the last epoch.
    best, bad, fired = y.var(), 0, None
    for epoch, loss in enumerate(reg.loss_curve_, start=1):
        bad = 0 if loss < best - tol * abs(best) else bad + 1
        best = min(best, loss)
        if bad >= patience:
            fired = epoch
            break
    assert fired == reg.n_iter_ < reg.max_iter


def test_convergence_warning_only_when_max_iter_cuts_short_for_every_schedule(rng):
    X, y = _ill_conditioned(rng, n=200)
    for learning_rate in SCHEDULES:
        params = dict(alpha=1e-3, learning_rate=learning_rate, eta0=0.1, precompute=False)
        with pytest.warns(ConvergenceWarning, match="max_iter=3"):
            SGDL2Regressor(max_iter=3, **params).fit(X, y)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            SGDL2Regressor(max_iter=3, tol=None, **params).fit(X, y)
            SGDL2Regressor(max_iter=20000, **params).fit(X, y)


# --------------------------------------------------------------- early stopping


def _validation_rows(n, fraction, seed):
    n_val = math.ceil(fraction * n)
    return np.sort(np.random.RandomState(seed).permutation(n)[:n_val])


def test_early_stopping_scores_each_epoch_and_keeps_the_best(rng):
    # Few noisy rows and many columns: the validation score peaks, then falls.
    n, p = 120, 60
    X = rng.normal(size=(n, p))
    y = X[:, 0] + 2.0 * rng.normal(size=n)
    reg = SGDL2Regressor(alpha=0.0, learning_rate="constant", eta0=0.05, early_stopping=True,
                         validation_fraction=0.25, n_iter_no_change=4, tol=1e-4,
                         random_state=3).fit(X, y)  # fmt: skip
    scores = reg.validation_scores_
    assert len(scores) == reg.n_iter_ == len(reg.loss_curve_)
    val = _validation_rows(n, 0.25, 3)
    best = int(np.argmax(scores))
    assert r2_score(y[val], reg.predict(X[val])) == pytest.approx(scores[best], abs=1e-12)
    # It stopped n_iter_no_change epochs after the last improvement by tol.
    bad, stop, top = 0, None, -np.inf
    for epoch, score in enumerate(scores, start=1):
        bad = bad + 1 if score < top + 1e-4 else 0
        top = max(top, score)
        if bad >= 4:
            stop = epoch
            break
    assert stop == reg.n_iter_ < reg.max_iter
    assert scores[-1] < scores[best]  # it did overfit, and the best epoch was kept


def test_early_stopping_trains_on_the_other_rows(rng):
    # Its answer is the fit on the training rows stopped at the best epoch.
    X, y = _ill_conditioned(rng, n=300)
    reg = SGDL2Regressor(alpha=1e-3, early_stopping=True, random_state=0).fit(X, y)
    train = np.setdiff1d(np.arange(300), _validation_rows(300, 0.1, 0))
    best = int(np.argmax(reg.validation_scores_)) + 1
    plain = _silently(SGDL2Regressor(alpha=1e-3, max_iter=best).fit, X[train], y[train])
    np.testing.assert_allclose(reg.coef_, plain.coef_, rtol=1e-12)
    np.testing.assert_allclose(reg.loss_curve_[:best], plain.loss_curve_, rtol=1e-12)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_validation_fraction_outside_zero_one_is_named(rng, fraction):
    reg = SGDL2Regressor(early_stopping=True, validation_fraction=fraction)
    with pytest.raises(ValueError, match="validation_fraction"):
        reg.fit(rng.normal(size=(50, 2)), rng.normal(size=50))


def test_early_stopping_on_too_few_samples_is_named(rng):
    reg = SGDL2Regressor(early_stopping=True, validation_fraction=0.1)
    with pytest.raises(ValueError, match="early_stopping needs at least 2 validation rows"):
        reg.fit(rng.normal(size=(10, 2)), rng.normal(size=10))


# ----------------------------------------------------------------- multi-output


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_multi_output_fits_every_target_to_ridge(rng, oracle, fit_intercept):
    X, y = _ill_conditioned(rng)
    Y = np.column_stack([y, -3.0 * y + X[:, 1], rng.normal(size=len(y)), np.zeros(len(y))])
    s = rng.uniform(0.5, 2.0, size=len(y))
    reg = SGDL2Regressor(alpha=1e-3, fit_intercept=fit_intercept).fit(X, Y, s)
    assert reg.coef_.shape == (4, X.shape[1]) and reg.intercept_.shape == (4,)
    assert reg.predict(X).shape == Y.shape
    for j in range(4):
        one = SGDL2Regressor(alpha=1e-3, fit_intercept=fit_intercept)
        one.coef_, one.intercept_ = reg.coef_[j], reg.intercept_[j]
        assert oracle.gap(one, X, Y[:, j], s, fit_intercept=fit_intercept) <= GAP
    ridge = Ridge(alpha=1e-3 * s.sum(), fit_intercept=fit_intercept, solver="svd")
    np.testing.assert_allclose(reg.predict(X), ridge.fit(X, Y, s).predict(X), atol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: SGDL2Regressor(alpha=0.0),
        lambda: SGDL2Regressor(alpha=0.0, precompute=False),
        lambda: SGDL2Regressor(alpha=0.0, batch_size=8, random_state=0, max_iter=3, tol=None),
        lambda: SGDL2RegressorCV(alphas=[1e-12, 1e-3]),
    ],
    ids=["statistics", "epochs", "minibatch", "cv"],
)
def test_a_column_y_keeps_linear_regressions_shapes(rng, make, tmp_path):
    # The documented convention (user guide, "Several targets"): shapes follow y, as in
    # LinearRegression; Ridge would give coef_ (3,) and 1-D predictions here.
    X, y = rng.normal(size=(30, 3)), rng.normal(size=30)
    oracle = LinearRegression().fit(X, y[:, None])
    column, flat = make().fit(X, y[:, None]), make().fit(X, y)
    assert column.coef_.shape == oracle.coef_.shape == (1, 3)
    assert np.shape(column.intercept_) == np.shape(oracle.intercept_) == (1,)
    assert column.predict(X).shape == oracle.predict(X).shape == (30, 1)
    assert flat.coef_.shape == (3,) and np.ndim(flat.intercept_) == 0
    np.testing.assert_allclose(column.coef_[0], flat.coef_, rtol=1e-12)
    if not isinstance(column, SGDL2RegressorCV):  # the minimiser at alpha=0
        if column.batch_size == "auto":
            np.testing.assert_allclose(column.coef_, oracle.coef_, rtol=1e-8)
        column.save(tmp_path / "column")
        loaded = SGDL2Regressor.load(tmp_path / "column")
        assert loaded.predict(X).shape == (30, 1)
        np.testing.assert_array_equal(loaded.predict(X), column.predict(X))


def test_multi_output_minibatch_partial_fits_equal_one_model_per_target(rng):
    # Targets share the rows and the step, not the answer: with the same batches each
    # target's column follows its single-target run.
    X, y = _ill_conditioned(rng, n=500)
    Y = np.column_stack([y, 2 * y - X[:, 0]])
    params = dict(alpha=1e-3, batch_size=50, random_state=0, tol=None)
    both = SGDL2Regressor(**params)
    alone = [SGDL2Regressor(**params) for _ in range(2)]
    for _ in range(5):
        both.partial_fit(X, Y)
        for j in range(2):
            alone[j].partial_fit(X, Y[:, j])
    for j in range(2):
        np.testing.assert_allclose(both.coef_[j], alone[j].coef_, rtol=1e-10)
        np.testing.assert_allclose(both.intercept_[j], alone[j].intercept_, rtol=1e-10)


# ---------------------------------------------------------------------- progress


def test_verbose_prints_every_k_epochs_and_the_last(rng, capsys):
    X, y = _ill_conditioned(rng)
    reg = SGDL2Regressor(learning_rate="constant", eta0=0.05, tol=None, max_iter=11, verbose=5)
    reg.fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["EPOCH 5", "EPOCH 10", "EPOCH 11"]
    assert f"training loss {reg.loss_curve_[-1]:.6g}" in lines[-1]


def test_sklearn_callbacks_see_every_epoch_and_can_stop_the_fit(rng):
    X, y = _ill_conditioned(rng)
    reg = SGDL2Regressor(learning_rate="constant", eta0=0.05, tol=None, max_iter=7)
    try:
        from sklearn.callback import FitCallback, ProgressBar  # scikit-learn >= 1.9
    except ImportError:
        assert not hasattr(reg, "set_callbacks")  # simply absent
        return

    class Recorder(FitCallback):  # the protocol's other hooks do nothing
        def __init__(self, stop_at=None):
            self.ends, self.coefs, self.stop_at, self.fits = [], [], stop_at, []

        def on_fit_task_end(self, estimator, context, *, y=None, fitted_estimator=None):
            if context.task_name == "fit":  # ends with the fitted model
                self.fits.append((y.shape, fitted_estimator.coef_))
            if context.task_name == "epoch" and fitted_estimator is not None:
                self.ends.append(context.task_id)
                self.coefs.append(fitted_estimator.coef_)
                return len(self.ends) == self.stop_at
            return False

    recorder = Recorder()
    reg.set_callbacks(recorder).fit(X, y)
    assert recorder.ends == list(range(7))
    np.testing.assert_array_equal(recorder.coefs[-1], reg.coef_)
    [(y_shape, fitted_coef)] = recorder.fits
    assert y_shape == y.shape  # the caller's 1-D y, not a column
    np.testing.assert_array_equal(fitted_coef, reg.coef_)
    plain = clone(reg).fit(X, y)
    np.testing.assert_array_equal(plain.coef_, reg.coef_)  # reporting changes nothing

    stopper = Recorder(stop_at=3)
    stopped = clone(reg).set_callbacks(stopper).fit(X, y)
    assert stopped.n_iter_ == 3 and stopper.ends == [0, 1, 2]

    with_bar = clone(reg).set_callbacks(ProgressBar()).fit(X, y)
    np.testing.assert_array_equal(with_bar.coef_, reg.coef_)


# --------------------------------------------- found in review of the controls


def test_a_failed_fit_leaves_an_unfitted_model_that_partial_fit_restarts(rng):
    from sklearn.exceptions import NotFittedError

    X3, X5, y = rng.normal(size=(50, 3)), rng.normal(size=(50, 5)), rng.normal(size=50)
    reg = SGDL2Regressor().fit(X3, y)
    with pytest.raises(ValueError, match="(?i)sample.weight"):
        reg.fit(X5, y, sample_weight=np.zeros(50))
    with pytest.raises(NotFittedError):
        reg.predict(X5)
    reg.partial_fit(X5, y)  # a new model on 5 features, not the 3-feature one
    assert reg.coef_.shape == (5,) and reg.n_iter_ == 1


def test_steepest_descent_partial_fit_steps_along_the_new_chunks_gradient(rng):
    # Chunk B's step is -eta M^-1 g_B at the preconditioner of the merged moments: no
    # direction left over from chunk A.
    XA, XB = rng.normal(size=(40, 3)), rng.normal(size=(30, 3)) * 2 + 1
    yA, yB = XA @ [1.0, -2.0, 0.5] + 1, XB @ [1.0, -2.0, 0.5] + 1 + rng.normal(size=30)
    eta, alpha = 0.1, 1e-2
    reg = SGDL2Regressor(alpha=alpha, learning_rate="constant", eta0=eta)
    reg.partial_fit(XA, yA)
    coef, intercept = reg.coef_.copy(), reg.intercept_
    reg.partial_fit(XB, yB)
    X, y = np.vstack([XA, XB]), np.concatenate([yA, yB])
    m, d, ybar = X.mean(axis=0), np.sqrt(X.var(axis=0) + alpha), y.mean()
    A = np.column_stack([(XB - m) / d, np.ones(30)])
    v = np.append(coef * d, intercept - ybar + coef @ m)
    r = A @ v - (yB - ybar)
    g = 2 / 30 * A.T @ r + 2 * alpha * np.append(coef, 0.0) * np.append(1 / d, 0.0)
    v = v - eta * g
    np.testing.assert_allclose(reg.coef_, v[:3] / d, rtol=1e-12)
    np.testing.assert_allclose(reg.intercept_, ybar + v[3] - (v[:3] / d) @ m, rtol=1e-12)


def test_adaptive_recovery_does_not_depend_on_reporting(rng, capsys):
    X, y = _ill_conditioned(rng, n=200)
    params = dict(learning_rate="adaptive", eta0=0.4, max_iter=40, tol=None)
    silent = SGDL2Regressor(**params).fit(X, y)
    loud = SGDL2Regressor(verbose=1, **params).fit(X, y)
    capsys.readouterr()
    np.testing.assert_array_equal(silent.coef_, loud.coef_)
    np.testing.assert_array_equal(silent.loss_curve_, loud.loss_curve_)
    assert dict(silent._train_state.steps)[("adaptive", 0.4)][0] < 0.4  # it did recover


def test_a_diverging_minibatch_partial_fit_still_trains_its_epoch(rng):
    X, y = _ill_conditioned(rng, n=200)
    reg = SGDL2Regressor(learning_rate="adaptive", eta0=50.0, batch_size=10, random_state=0)
    for call in range(1, 4):
        reg.partial_fit(X, y)
        assert reg.n_iter_ == len(reg.loss_curve_) == call
    assert np.all(np.isfinite(reg.coef_)) and np.any(reg.coef_ != 0)


def test_a_remainder_chunk_keeps_the_minibatch_step_state(rng):
    # A chunk smaller than batch_size trains on the full batch; it must not reset the
    # mini-batch rules' reduced steps.
    X, y = _ill_conditioned(rng, n=1000)
    for learning_rate in ["adaptive", "auto"]:
        reg = SGDL2Regressor(learning_rate=learning_rate, eta0=0.01, tol=1e-3, batch_size=128,
                             random_state=0)  # fmt: skip
        key = ("adaptive", 0.01) if learning_rate == "adaptive" else ("auto", 128)
        for _ in range(3):
            for start in (0, 300, 600):
                reg.partial_fit(X[start : start + 300], y[start : start + 300])
            before = dict(reg._train_state.steps)[key]
            reg.partial_fit(X[900:], y[900:])  # the 100-row remainder
            assert dict(reg._train_state.steps)[key] == before


def test_huge_counts_and_parameters_beyond_the_dtype_are_clear(rng):
    X, y = rng.normal(size=(30, 2)), rng.normal(size=30)
    reg = SGDL2Regressor(n_iter_no_change=2**31, max_iter=2**31).fit(X, y)
    assert np.all(np.isfinite(reg.coef_))
    with pytest.raises(ValueError, match="alpha=1e\\+39 overflows float32"):
        SGDL2Regressor(alpha=1e39).fit(X.astype(np.float32), y)


def test_early_stopping_with_tol_none_still_stops_at_the_rounding_floor(rng):
    X, y = _ill_conditioned(rng, n=300)
    reg = SGDL2Regressor(early_stopping=True, tol=None, random_state=0, max_iter=500).fit(X, y)
    assert reg.n_iter_ < 100


# --------------------------------------------------------------------------- coef_init


def _start_data(rng, k=None):
    X = rng.normal(size=(200, 3)) * [1.0, 10.0, 0.1] + [0.0, 5.0, -1.0]
    coef = rng.normal(size=(3, k) if k else 3)
    return X, X @ coef + 2.0 + 0.1 * rng.normal(size=(200, k) if k else 200)


@pytest.mark.parametrize("k", [None, 2])
def test_coef_init_and_intercept_init_are_where_the_descent_starts(rng, k):
    X, y = _start_data(rng, k)
    w0 = rng.normal(size=(k, 3) if k else 3)
    b0 = rng.normal(size=k) if k else 0.75
    tiny = dict(batch_size=20, learning_rate="constant", eta0=1e-12, max_iter=1, tol=None)
    reg = SGDL2Regressor(**tiny).fit(X, y, coef_init=w0, intercept_init=b0)
    np.testing.assert_allclose(reg.coef_, w0, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(reg.intercept_, b0, rtol=1e-9, atol=1e-9)
    # Without intercept_init the intercept starts exact for coef_init.
    reg = SGDL2Regressor(**tiny).fit(X, y, coef_init=w0)
    Y = y if k else y[:, None]
    exact = Y.mean(axis=0) - X.mean(axis=0) @ np.atleast_2d(w0).T
    np.testing.assert_allclose(np.atleast_1d(reg.intercept_), exact, rtol=1e-8)


def test_coef_init_at_the_optimum_and_with_warm_start(rng, oracle):
    X, y = _start_data(rng)
    best = SGDL2Regressor(alpha=1e-3).fit(X, y)  # on statistics: coef_init changes nothing
    again = SGDL2Regressor(alpha=1e-3).fit(X, y, coef_init=np.zeros(3) + 7.0)
    np.testing.assert_allclose(again.coef_, best.coef_, rtol=1e-9)
    passes = SGDL2Regressor(alpha=1e-3, precompute=False)
    passes.fit(X, y, coef_init=best.coef_, intercept_init=best.intercept_)
    assert passes.n_iter_ <= 1 and oracle.gap(passes, X, y) <= 1e-9
    # coef_init overrides warm_start's coefficients, as in SGDRegressor.
    warm = SGDL2Regressor(alpha=1e-3, warm_start=True, precompute=False, max_iter=1, tol=None)
    warm.fit(X, y)
    warm.set_params(learning_rate="constant", eta0=1e-12, batch_size=50)
    warm.fit(X, y, coef_init=np.ones(3), intercept_init=0.0)
    np.testing.assert_allclose(warm.coef_, np.ones(3), atol=1e-9)


@pytest.mark.parametrize(
    "params, given, match",
    [
        ({}, dict(coef_init=[1.0, 2.0]), r"coef_init has shape \(2,\); this fit needs \(3,\)"),
        ({}, dict(coef_init=[[1.0, 2.0, 3.0]]), r"shape \(1, 3\)"),
        ({}, dict(coef_init=[np.nan, 1.0, 1.0]), "NaN or infinity"),
        ({}, dict(coef_init="abc"), "array of numbers"),
        ({}, dict(intercept_init=[1.0, 2.0]), r"intercept_init has shape \(2,\)"),
        ({"fit_intercept": False}, dict(intercept_init=0.0), "fit_intercept=False"),
    ],
)
def test_bad_starting_points_are_refused(rng, params, given, match):
    X, y = _start_data(rng)
    with pytest.raises(ValueError, match=match):
        SGDL2Regressor(**params).fit(X, y, **given)


def test_intercept_init_alone_keeps_the_warm_coefficients(rng):
    X, y = _start_data(rng)
    reg = SGDL2Regressor(warm_start=True, batch_size=20, learning_rate="constant",
                         eta0=1e-12, max_iter=1, tol=None)  # fmt: skip
    reg.fit(X, y, coef_init=np.ones(3))
    reg.fit(X, y, intercept_init=5.0)
    np.testing.assert_allclose(reg.coef_, np.ones(3), atol=1e-9)
    assert reg.intercept_ == pytest.approx(5.0, abs=1e-9)
