"""The TensorFlow kernel against numpy re-derivations of the same steps."""

import warnings

import numpy as np
import pytest
import tensorflow as tf

from skl_tfreg import _core, _training, iter_epochs


def _preconditioner(X, y, s, alpha):
    S = s.sum()
    m = s @ X / S
    d = np.sqrt(s @ (X - m) ** 2 / S + alpha)
    return m, d, s @ y / S, S


def _data(rng, n=40, p=3):
    X = rng.normal(size=(n, p)) * [1.0, 100.0, 0.01] + [5.0, -300.0, 0.0]
    y = X @ np.array([1.0, 0.02, 30.0]) + 1.0 + rng.normal(size=n)
    s = rng.uniform(0.5, 2.0, size=n)
    return X, y, s


def _constant_steps(X, y, s, *, alpha, eta0, max_iter, **kwargs):
    """Train with plain constant steps and no stopping rule."""
    return _training.train(X, y[:, None], s, alpha=alpha, fit_intercept=True, max_iter=max_iter,
                       tol=None, learning_rate="constant", eta0=eta0, **kwargs)  # fmt: skip


def test_one_constant_step_matches_numpy(rng):
    X, y, s = _data(rng)
    alpha, eta0 = 0.1, 0.05
    res = _constant_steps(X, y, s, alpha=alpha, eta0=eta0, max_iter=1)
    m, d, ybar, S = _preconditioner(X, y, s, alpha)
    A = (X - m) / d
    grad0 = -(2 / S) * A.T @ (s * (y - ybar))  # gradient at V = 0
    w = (-eta0 * grad0) / d
    np.testing.assert_allclose(res.coef[:, 0], w, rtol=1e-12)
    np.testing.assert_allclose(res.intercept[0], ybar - m @ w, rtol=1e-12)
    r = X @ w + ybar - m @ w - y
    expected = (s * r * r).sum() / S + alpha * w @ w
    np.testing.assert_allclose(res.loss_curve, [expected], rtol=1e-12)
    assert res.n_epochs == res.n_steps == 1


def test_minibatch_epoch_follows_the_generator_order(rng):
    X, y, s = _data(rng, n=11)
    alpha, eta = 0.01, 0.02
    batches = [list(e) for e in iter_epochs(11, 4, n_epochs=2, shuffle=True, random_state=5)]
    res = _constant_steps(
        X, y, s, alpha=alpha, eta0=eta, max_iter=2, epochs=iter(batches), batch_size=4
    )
    m, d, ybar, S = _preconditioner(X, y, s, alpha)
    # The rows in preconditioned units, with a column of ones for the intercept's
    # offset c, which each batch moves too (it is not penalised).
    A, yc, v = np.column_stack([(X - m) / d, np.ones(11)]), y - ybar, np.zeros(4)
    penalty = np.append(1 / d**2, 0.0)
    for epoch in batches:
        for rows in epoch:
            r = A[rows] @ v - yc[rows]
            scale = 2 * len(y) / (len(rows) * S)
            v = v - eta * (scale * A[rows].T @ (s[rows] * r) + 2 * alpha * v * penalty)
    np.testing.assert_allclose(res.coef[:, 0], v[:3] / d, rtol=1e-11)
    np.testing.assert_allclose(res.intercept[0], ybar + v[3] - m @ (v[:3] / d), rtol=1e-11)
    assert res.n_epochs == 2 and res.n_steps == 6


def test_mean_batch_gradient_is_the_full_gradient(rng):
    # One epoch of b-row batches with a tiny step moves V by -eta * (sum of batch
    # gradients at V = 0), which must equal n_batches full-batch gradients; checked
    # against the full-batch path, not a re-derivation of the batch scaling.
    X, y, s = _data(rng, n=60)
    eta, n_batches = 1e-9, 6
    epoch = [np.arange(i, 60, n_batches) for i in range(n_batches)]  # equal sizes
    mini = _constant_steps(
        X, y, s, alpha=0.1, eta0=eta, max_iter=1, epochs=iter([epoch]), batch_size=10
    )
    full = _constant_steps(X, y, s, alpha=0.1, eta0=eta * n_batches, max_iter=1)
    np.testing.assert_allclose(mini.coef, full.coef, rtol=1e-6)


def test_conjugate_gradient_terminates_in_p_steps(rng):
    # In exact arithmetic CG on a p-dimensional quadratic ends in at most p steps.
    X, y, s = _data(rng, n=200)
    res = _training.train(X, y[:, None], s, alpha=1e-3, fit_intercept=True, max_iter=50, tol=1e-12)
    assert res.status == "converged"
    assert res.n_epochs <= X.shape[1] + 1
    assert np.all(np.diff(res.loss_curve) <= 1e-12 * res.loss_curve[0])  # monotone


def test_reporting_in_chunks_changes_nothing(rng):
    X, y, s = _data(rng, n=300, p=3)
    kw = dict(alpha=1e-3, eta0=0.1, max_iter=7)
    silent = _constant_steps(X, y, s, **kw)
    seen = []
    chunked = _constant_steps(
        X, y, s, on_epoch=lambda e: seen.append((e.epoch, e.final)), report_every=3, **kw
    )
    np.testing.assert_array_equal(silent.coef, chunked.coef)
    np.testing.assert_array_equal(silent.loss_curve, chunked.loss_curve)
    assert seen == [(3, False), (6, False), (7, True)]


def test_multiple_targets_are_independent_problems(rng):
    X, y, s = _data(rng, n=100)
    Y = np.column_stack([y, -2 * y + X[:, 0], np.zeros_like(y)])
    both = _training.train(X, Y, s, alpha=1e-2, fit_intercept=True, max_iter=100, tol=1e-12)
    for k in range(3):
        one = _training.train(
            X, Y[:, [k]], s, alpha=1e-2, fit_intercept=True, max_iter=100, tol=1e-12
        )
        np.testing.assert_allclose(both.coef[:, k], one.coef[:, 0], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_trace_once_per_dtype_across_shapes(rng, dtype):
    def fit(n, p, batch_size=None):
        X = rng.normal(size=(n, p)).astype(dtype)
        y = rng.normal(size=(n, 1)).astype(dtype)
        epochs = None if batch_size is None else iter_epochs(n, batch_size, random_state=0)
        _training.train(
            X,
            y,
            np.ones(n, dtype),
            alpha=1e-3,
            fit_intercept=True,
            max_iter=5,
            tol=1e-6,
            epochs=epochs,
            batch_size=batch_size,
        )

    fit(20, 3)
    fit(20, 3, batch_size=4)  # warm-up: the first fit of each mode may trace
    before = _core.trace_count()
    for n, p in [(5, 1), (50, 7), (300, 2), (17, 40), (1, 3)]:
        fit(n, p)
        fit(n, p, batch_size=2)
    assert _core.trace_count() == before


def test_as_tensor_copies_once_or_shares_an_aligned_buffer(rng, tmp_path):
    from skl_tfreg._tensors import as_tensor

    X = rng.normal(size=(300, 7))
    np.save(tmp_path / "X.npy", X)
    cases = [X, X.astype(np.float32), np.asfortranarray(X), X[1:, ::2], X[:0],
             np.load(tmp_path / "X.npy", mmap_mode="r")]  # fmt: skip
    for array in cases:
        tensor = as_tensor(array)
        assert tensor.dtype.as_numpy_dtype == array.dtype and tensor.shape == array.shape
        np.testing.assert_array_equal(tensor.numpy(), array)
    # An aligned, writable C array is shared with TensorFlow, not copied.
    raw = np.zeros(8 * 7 + 8)
    start = (-raw.ctypes.data % 64) // 8
    aligned = raw[start : start + 56].reshape(8, 7)
    tensor = as_tensor(aligned)
    aligned[0, 0] = 5.0
    assert tensor.numpy()[0, 0] == 5.0


def test_moments_find_constant_columns_exactly_among_many_rows(rng, oracle):
    # 20,000 rows, in blocks. Column 1 is zero on every row but one; column 2 is
    # constant; column 3 varies only on rows of weight 0, so it is constant where it
    # counts. (A version that took the spreads from a sample of rows was reverted in
    # review: it missed weighted spreads.)
    from skl_tfreg import SGDL2Regressor

    n = 20_000
    X = rng.normal(size=(n, 4))
    X[:, 1] = 0.0
    X[15_000, 1] = 7.0
    X[:, 2] = 3.25
    s = np.ones(n)
    s[:100] = 0.0
    X[:, 3] = 1.5
    X[:100, 3] = rng.normal(size=100)
    y = X @ [1.0, 0.5, 0.0, 0.0] + rng.normal(size=n)
    reg = SGDL2Regressor(alpha=1e-6).fit(X, y, s)
    assert reg.coef_[2] == 0.0 and reg.coef_[3] == 0.0
    assert oracle.gap(reg, X, y, s) <= 1e-9
    moments = _core._weighted_moments(*(tf.constant(a) for a in (X, y[:, None], s)))
    assert moments.x_m2.numpy()[1] == pytest.approx(((X[:, 1] - X[:, 1] @ s / s.sum()) ** 2) @ s)


def test_moments_follow_the_weights_and_keep_float32_offsets(rng, oracle):
    # Found in review of a sampled version: rows of weight 0 holding huge sentinels
    # must not set the scales, and a float32 column 1e4 + 0.01 N must keep its mean.
    from skl_tfreg import SGDL2Regressor

    n = 40_000
    X = rng.normal(size=(n, 4))
    X[:, 1] += 0.9 * X[:, 0]
    s = np.ones(n)
    hidden = rng.random(n) < 0.2
    s[hidden] = 0.0
    X[hidden, :2] *= 1e10
    y = X @ [1.0, 2.0, 3.0, 4.0] + rng.normal(size=n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg = SGDL2Regressor().fit(X, y, s)
    assert oracle.gap(reg, X, y, s) <= 1e-6

    column = (1e4 + 0.01 * rng.normal(size=(100_000, 1))).astype(np.float32)
    ones = np.ones(100_000, np.float32)
    moments = _core._weighted_moments(tf.constant(column), tf.constant(column), tf.constant(ones))
    truth = column.astype(np.float64)
    assert abs(moments.x_mean.numpy()[0] - truth.mean()) <= 1e-3 * truth.std()
    assert moments.x_m2.numpy()[0] / 100_000 == pytest.approx(truth.var(), rel=1e-3)
