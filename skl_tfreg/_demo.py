"""The seed experiment, run with SGDL2Regressor and checked in closed form.

The package began from a 2016 blog post, "Linear Regression" in TensorFlow 1: a
one-feature model trained by gradient descent on batches from generators, which
printed the loss, W and b every few epochs. Its data are reproduced here.
"""

from __future__ import annotations

import numpy as np

from ._estimator import SGDL2Regressor

#: The post's data: X = 0..9999, y = 3.657 X + noise (plus an intercept of 2.5 here).
DATA_LENGTH = 10_000
TRUE_SLOPE = 3.657
TRUE_INTERCEPT = 2.5
NOISE = 0.33


def seed_data(data_length=DATA_LENGTH, random_state=0):
    """Return the post's unscaled data ``X = 0..n-1``, ``y = 3.657 X + 2.5 + 0.33 noise``.

    Parameters
    ----------
    data_length : int, default=10000
        Number of samples.
    random_state : int, default=0
        Seed of the noise.

    Returns
    -------
    X : ndarray of shape (data_length, 1)
        The values ``0, 1, ..., data_length - 1``, unscaled.
    y : ndarray of shape (data_length,)
        Noisy targets.

    Examples
    --------
    >>> from skl_tfreg._demo import seed_data
    >>> X, y = seed_data(4)
    >>> X.ravel().tolist(), y.shape
    ([0.0, 1.0, 2.0, 3.0], (4,))
    """
    rng = np.random.default_rng(random_state)
    X = np.arange(data_length, dtype=np.float64).reshape(-1, 1)
    y = TRUE_SLOPE * X[:, 0] + TRUE_INTERCEPT + NOISE * rng.standard_normal(data_length)
    return X, y


def closed_form(X, y, alpha):
    """Minimise ``mean((X w + b - y)^2) + alpha ||w||^2`` by its normal equations.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data.
    y : ndarray of shape (n_samples,)
        Targets.
    alpha : float
        L2 penalty on the mean-squared-error scale.

    Returns
    -------
    coef : ndarray of shape (n_features,)
    intercept : float
    """
    x_mean, y_mean = X.mean(axis=0), y.mean()
    Xc = X - x_mean
    n = X.shape[0]
    coef = np.linalg.solve(Xc.T @ Xc / n + alpha * np.eye(X.shape[1]), Xc.T @ (y - y_mean) / n)
    return coef, float(y_mean - x_mean @ coef)


def run_demo(display_step=1, alpha=1e-4):
    """Fit the post's data with its display, then print the closed-form answer beside it.

    Parameters
    ----------
    display_step : int, default=1
        Print a line every ``display_step`` epochs.
    alpha : float, default=1e-4
        L2 penalty.

    Returns
    -------
    reg : SGDL2Regressor
        The fitted estimator.
    """
    X, y = seed_data()
    print(
        f"Data: X = 0..{DATA_LENGTH - 1} (unscaled), y = {TRUE_SLOPE} X + {TRUE_INTERCEPT}"
        f" + {NOISE} * noise; alpha = {alpha}"
    )
    reg = SGDL2Regressor(alpha=alpha, verbose=display_step).fit(X, y)
    coef, intercept = closed_form(X, y, alpha)
    print(f"{'':12}{'W':>18}{'b':>18}")
    print(f"{'fitted':12}{reg.coef_[0]:>18.10f}{reg.intercept_:>18.10f}")
    print(f"{'closed form':12}{coef[0]:>18.10f}{intercept:>18.10f}")
    print(f"epochs: {reg.n_iter_}, final training loss: {reg.loss_curve_[-1]:.10g}")
    return reg
