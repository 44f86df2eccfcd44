"""Averaged SGD (``average``): the mean of the mini-batch iterates, as in SGDRegressor."""

import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import r2_score

from skl_tfreg import SGDL2Regressor

CONSTANT = dict(learning_rate="constant", tol=None)


def _noisy(rng, n=20_000, p=10, noise=1.0, targets=None):
    """The issue's problem: n x p Gaussian columns with offsets, y with unit noise."""
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 2.0, size=p) + rng.normal(size=p)
    coef = rng.normal(size=(p, targets or 1))
    Y = X @ coef + 1.0 + noise * rng.normal(size=(n, targets or 1))
    return X, Y[:, 0] if targets is None else Y


def _units(reg):
    """coef_ as (n_features, n_targets) and intercept_ as (n_targets,)."""
    return np.atleast_2d(reg.coef_).T, np.atleast_1d(reg.intercept_)


# ------------------------------------------------------------------ the target


def test_averaging_cuts_the_constant_step_gap_at_least_100x(rng, oracle):
    # batch_size=32 and a constant step at which the plain iterate stalls in its noise
    # ball: 10 epochs leave it no closer than 5 did. The mean of the iterates goes on
    # towards Ridge's minimiser (SGDRegressor: 2.9e-2 down to 2.5e-6 on such data).
    X, y = _noisy(rng)
    params = dict(alpha=1e-4, batch_size=32, eta0=0.05, random_state=0, **CONSTANT)
    gaps = {}
    for max_iter in (5, 10):
        for average in (False, True):
            reg = SGDL2Regressor(max_iter=max_iter, average=average, **params).fit(X, y)
            gaps[max_iter, average] = oracle.gap(reg, X, y)
    assert gaps[10, False] > 0.3 * gaps[5, False] > 1e-3  # stalled in its noise ball
    assert gaps[10, True] <= gaps[10, False] / 100
    assert gaps[10, True] < gaps[5, True]  # the mean still improves


# ------------------------------------------------------------------ the mean itself


def _iterates(X, y, s, n_steps, **params):
    """The plain iterates after 1..n_steps full-batch constant steps (one per epoch)."""
    points = []
    for k in range(1, n_steps + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reg = SGDL2Regressor(max_iter=k, average=False, **params).fit(X, y, s)
        points.append(_units(reg))
    return points


@pytest.mark.parametrize("kind", ["dense", "sparse", "float32", "2_targets", "no_intercept"])
@pytest.mark.parametrize("threshold", [True, 3, "3n", "2n+1", "7n"])
def test_the_mean_is_the_mean_of_the_iterates(rng, kind, threshold):
    # With batch_size >= n_samples every epoch is one averaged step over all rows, the
    # step a plain full-batch fit takes: the mean must be that of the plain iterates
    # from the first step whose rows bring the count seen to `average`.
    n, K = 60, 6
    X, y = _noisy(rng, n=n, p=4, targets=2 if kind == "2_targets" else None)
    s = rng.uniform(0.5, 2.0, size=n)
    if kind == "sparse":
        X = sp.csr_matrix(np.where(rng.random(X.shape) < 0.5, X, 0.0))
    if kind == "float32":
        X, y, s = X.astype(np.float32), y.astype(np.float32), s.astype(np.float32)
    params = dict(alpha=1e-2, eta0=0.1, batch_size=n, fit_intercept=kind != "no_intercept",
                  **CONSTANT)  # fmt: skip
    average = {"3n": 3 * n, "2n+1": 2 * n + 1, "7n": 7 * n}.get(threshold, threshold)
    first = math.ceil(int(average) / n)  # the first step averaged, counting from 1
    averaged = SGDL2Regressor(max_iter=K, average=average, **params).fit(X, y, s)
    points = _iterates(X, y, s, K, **params)
    rtol = 1e-4 if kind == "float32" else 1e-10
    coef, intercept = _units(averaged)
    if first > K:  # not started: the fit reports its last iterate
        expected = points[-1]
    else:
        expected = [np.mean([p[i] for p in points[first - 1 :]], axis=0) for i in (0, 1)]
    np.testing.assert_allclose(coef, expected[0], rtol=rtol, atol=rtol * np.abs(coef).max())
    np.testing.assert_allclose(intercept, expected[1], rtol=rtol, atol=rtol)
    state = averaged._train_state
    assert state.n_averaged == max(K - first + 1, 0) and state.n_seen == K * n
    np.testing.assert_allclose(state.iterate[0], points[-1][0], rtol=rtol, atol=rtol)
    assert averaged.coef_.dtype == X.dtype and averaged.predict(X).dtype == X.dtype


def test_the_threshold_counts_rows_as_sgdregressors_does(rng):
    # 20,000 rows in 625 batches of 32 per epoch: average=10,000 starts at the step that
    # brings the count to 10,016 (the 313th), so 10 epochs average 6250 - 312 iterates.
    X, y = _noisy(rng)
    params = dict(alpha=1e-4, batch_size=32, eta0=0.05, max_iter=10, random_state=0,
                  **CONSTANT)  # fmt: skip
    for average, expected in ((True, 6250), (1, 6250), (10_000, 5938), (200_000, 1),
                              (200_001, 0)):  # fmt: skip
        state = SGDL2Regressor(average=average, **params).fit(X, y)._train_state
        assert (state.n_averaged, state.n_seen) == (expected, 200_000), average
    plain = SGDL2Regressor(average=False, **params).fit(X, y)
    assert plain._train_state.iterate is None and plain._train_state.n_averaged == 0
    late = SGDL2Regressor(average=200_001, **params).fit(X, y)  # never started
    np.testing.assert_array_equal(late.coef_, plain.coef_)


# ------------------------------------------------------------------ continuing


def test_partial_fit_continues_the_iterate_and_the_mean(rng):
    # k calls of partial_fit on the same rows take fit(max_iter=k)'s steps: the mean
    # goes on over all of them, not from each call's start.
    X, y = _noisy(rng, n=2000)
    params = dict(alpha=1e-3, batch_size=50, eta0=0.05, shuffle=False, average=1000,
                  **CONSTANT)  # fmt: skip
    fit = SGDL2Regressor(max_iter=4, **params).fit(X, y)
    calls = SGDL2Regressor(**params)
    for _ in range(4):
        calls.partial_fit(X, y)
    np.testing.assert_allclose(calls.coef_, fit.coef_, rtol=1e-10)
    np.testing.assert_allclose(calls.intercept_, fit.intercept_, rtol=1e-10)
    for state in (calls._train_state, fit._train_state):
        assert (state.n_averaged, state.n_seen) == (4 * 40 - 19, 8000)
    np.testing.assert_allclose(calls._train_state.iterate[0], fit._train_state.iterate[0],
                               rtol=1e-10)  # fmt: skip
    assert not np.allclose(fit._train_state.iterate[0][:, 0], fit.coef_, rtol=1e-3)


def test_partial_fit_without_average_continues_from_the_mean(rng):
    X, y = _noisy(rng, n=2000)
    params = dict(alpha=1e-3, batch_size=50, eta0=0.05, shuffle=False, max_iter=2, **CONSTANT)
    averaged = SGDL2Regressor(average=True, **params).fit(X, y)
    mean = _units(averaged)
    averaged.set_params(average=False).partial_fit(X, y)
    assert averaged._train_state.iterate is None
    fresh = SGDL2Regressor(**params).set_params(max_iter=1)
    fresh.fit(X, y, coef_init=averaged.coef_ * 0 + mean[0][:, 0], intercept_init=mean[1][0])
    np.testing.assert_allclose(averaged.coef_, fresh.coef_, rtol=1e-9)


def test_a_chunk_already_fitted_keeps_the_mean(rng):
    # Noiseless rows: the iterate converges, so a later chunk fits to tol at the start,
    # is not trained on, and the model stays the mean (not the iterate).
    X, _ = _noisy(rng, n=400, p=3)
    y = X @ [1.0, -2.0, 0.5] + 3.0
    reg = SGDL2Regressor(alpha=0.0, batch_size=20, learning_rate="constant", eta0=0.2, tol=1e-3,
                         max_iter=200, average=True, random_state=0).fit(X, y)  # fmt: skip
    before = (reg.coef_.copy(), reg.intercept_, reg.n_iter_, reg._train_state.n_averaged)
    reg.partial_fit(X, y)
    assert reg.n_iter_ == before[2]  # not trained on
    np.testing.assert_array_equal(reg.coef_, before[0])
    assert reg.intercept_ == before[1] and reg._train_state.n_averaged == before[3]
    assert not np.array_equal(reg._train_state.iterate[0][:, 0], reg.coef_)


def test_a_warm_start_fit_starts_a_new_mean_from_coef(rng):
    # As SGDRegressor: a warm fit steps on from the fitted (mean) coefficients and
    # averages its own iterates only; t_ goes on.
    X, y = _noisy(rng, n=2000)
    params = dict(alpha=1e-3, batch_size=50, eta0=0.05, shuffle=False, max_iter=2,
                  average=True, **CONSTANT)  # fmt: skip
    first = SGDL2Regressor(**params).fit(X, y)
    warm = SGDL2Regressor(warm_start=True, **params).fit(X, y)
    warm.fit(X, y)
    assert warm._train_state.n_averaged == 80 and warm.t_ == 160
    given = SGDL2Regressor(**params).fit(X, y, coef_init=first.coef_,
                                         intercept_init=first.intercept_)  # fmt: skip
    np.testing.assert_allclose(warm.coef_, given.coef_, rtol=1e-10)


def test_fit_stream_averages_as_fit_does(rng):
    # Batches of batch_size rows in order are fit's steps with shuffle=False: the mean too.
    X, y = _noisy(rng, n=2000)
    params = dict(alpha=1e-3, batch_size=50, eta0=0.05, shuffle=False, max_iter=3,
                  average=500, **CONSTANT)  # fmt: skip
    memory = SGDL2Regressor(**params).fit(X, y)

    def batches():
        for start in range(0, len(y), 200):  # each cut into 4 steps
            yield X[start : start + 200], y[start : start + 200]

    stream = SGDL2Regressor(**params).fit_stream(batches)
    np.testing.assert_allclose(stream.coef_, memory.coef_, rtol=1e-12)
    np.testing.assert_allclose(stream.intercept_, memory.intercept_, rtol=1e-12)
    assert stream._train_state.n_averaged == memory._train_state.n_averaged == 3 * 40 - 9


# ------------------------------------------------------------------ other rules


def test_early_stopping_scores_and_keeps_the_mean(rng):
    X, y = _noisy(rng, n=4000)
    params = dict(alpha=1e-4, batch_size=16, eta0=0.1, early_stopping=True,
                  learning_rate="constant", tol=1e-5, n_iter_no_change=3, max_iter=30,
                  random_state=5)  # fmt: skip
    reg = SGDL2Regressor(average=True, **params).fit(X, y)
    plain = SGDL2Regressor(**params).fit(X, y)
    n_val = math.ceil(0.1 * len(y))
    val = np.sort(np.random.RandomState(5).permutation(len(y))[:n_val])
    best = reg.validation_scores_.max()
    assert r2_score(y[val], reg.predict(X[val])) == pytest.approx(best, abs=1e-12)
    # The same iterates (the same rows, steps and losses), but the means were scored.
    n = min(reg.n_iter_, plain.n_iter_)
    np.testing.assert_array_equal(reg.loss_curve_[:n], plain.loss_curve_[:n])
    assert not np.allclose(reg.validation_scores_[:n], plain.validation_scores_[:n])
    # The kept mean is an earlier epoch's: the last iterate does not belong to it, so a
    # later partial_fit starts a new mean from coef_.
    assert reg._train_state.iterate is None and reg._train_state.n_averaged == 0
    t = reg.t_
    reg.partial_fit(X[:800], y[:800])
    assert reg._train_state.n_averaged == reg.t_ - t == 50  # this call's 800 / 16 steps


def test_an_epoch_undone_leaves_the_mean_alone(rng):
    # "adaptive" undoes an epoch whose objective explodes and retries it with a smaller
    # step: the undone steps must not enter the mean.
    X, y = _noisy(rng, n=800)
    params = dict(alpha=1e-4, batch_size=16, learning_rate="adaptive", eta0=50.0, max_iter=3,
                  tol=None, random_state=0)  # fmt: skip
    plain = SGDL2Regressor(**params).fit(X, y)
    averaged = SGDL2Regressor(average=True, **params).fit(X, y)
    assert dict(plain._train_state.steps)[("adaptive", 50.0)][0] < 50.0  # it did retry
    np.testing.assert_array_equal(averaged.loss_curve_, plain.loss_curve_)
    assert averaged._train_state.n_averaged == averaged.t_ == plain.t_ == 150
    assert averaged._train_state.n_seen == 3 * 800
    np.testing.assert_allclose(averaged._train_state.iterate[0][:, 0], plain.coef_, rtol=1e-12)


@pytest.mark.parametrize("kind", ["dense", "float32", "no_intercept", "2_targets"])
def test_partial_fit_on_other_chunks_continues_the_mean(rng, kind):
    # Chunks that differ move the preconditioner at every call; the mean is kept in the
    # caller's units across them. One step per call (batch_size >= the chunk): the plain
    # calls' coefficients are the iterates, and the averaged model is their mean.
    X, Y = _noisy(rng, n=600, p=4, targets=2 if kind == "2_targets" else None)
    if kind == "float32":
        X, Y = X.astype(np.float32), Y.astype(np.float32)
    chunks = [(X[i : i + 100] * (1 + 0.3 * j), Y[i : i + 100])
              for j, i in enumerate(range(0, 600, 100))]  # fmt: skip
    params = dict(alpha=1e-3, batch_size=100, eta0=0.2, fit_intercept=kind != "no_intercept",
                  **CONSTANT)  # fmt: skip
    plain, averaged = SGDL2Regressor(**params), SGDL2Regressor(average=250, **params)
    points = []
    for Xc, Yc in chunks:
        plain.partial_fit(Xc, Yc)
        averaged.partial_fit(Xc, Yc)
        points.append(_units(plain))
    expected = [np.mean([p[i] for p in points[2:]], axis=0) for i in (0, 1)]  # from row 300
    rtol = 1e-4 if kind == "float32" else 1e-9
    coef, intercept = _units(averaged)
    np.testing.assert_allclose(coef, expected[0], rtol=rtol, atol=rtol * np.abs(coef).max())
    np.testing.assert_allclose(intercept, expected[1], rtol=rtol, atol=rtol)
    state = averaged._train_state
    assert (state.n_averaged, state.n_seen, averaged.t_) == (4, 600, 6)


def test_loss_curve_reads_the_iterates(rng):
    # loss_curve_ is the epoch's estimate at the iterates, as without averaging.
    X, y = _noisy(rng, n=2000)
    params = dict(alpha=1e-3, batch_size=50, eta0=0.05, max_iter=3, random_state=0,
                  **CONSTANT)  # fmt: skip
    plain = SGDL2Regressor(**params).fit(X, y)
    averaged = SGDL2Regressor(average=True, **params).fit(X, y)
    np.testing.assert_array_equal(averaged.loss_curve_, plain.loss_curve_)
    assert averaged.t_ == plain.t_ and not np.array_equal(averaged.coef_, plain.coef_)


@pytest.mark.parametrize("call", ["fit", "partial_fit", "fit_stream"])
def test_full_batch_refuses_average_and_keeps_the_model(rng, call):
    X, y = _noisy(rng, n=100, p=3)
    reg = SGDL2Regressor().fit(X, y)
    coef = reg.coef_.copy()
    reg.set_params(average=True)
    args = {"fit": (X, y), "partial_fit": (X, y), "fit_stream": (lambda: iter([(X, y)]),)}
    with pytest.raises(ValueError, match=r"average=True .* batch_size='auto' .* integer"):
        getattr(reg, call)(*args[call])
    np.testing.assert_array_equal(reg.coef_, coef)  # refused before anything changed
    reg.set_params(average=0).fit(X, y)  # 0 and False are off
    with pytest.raises(ValueError, match="average"):
        SGDL2Regressor(average=-1).fit(X, y)
