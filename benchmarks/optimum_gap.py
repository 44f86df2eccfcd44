"""Relative objective gap of default SGDL2Regressor fits to Ridge's optimum.

Run: python benchmarks/optimum_gap.py
Prints one row per data set: shape, dtype, epochs, the gap (J - J*) / J*, and the
largest relative coefficient difference to Ridge(alpha * sum(s), solver="svd").
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402

from skl_tfreg import SGDL2Regressor  # noqa: E402
from skl_tfreg._demo import seed_data  # noqa: E402


def objective(X, y, s, coef, intercept, alpha):
    r = X @ coef + intercept - y
    return (s * r * r).sum() / s.sum() + alpha * coef @ coef


def data_sets(rng):
    X, y = seed_data()
    yield "seed post: X = 0..9999", X, y, None
    X = rng.normal(size=(500, 8)) * np.logspace(-4, 4, 8) + np.linspace(-1e3, 1e3, 8)
    yield (
        "mixed scales 1e-4..1e4",
        X,
        X @ (1 / np.logspace(-4, 4, 8)) + 7 + rng.normal(size=500),
        None,
    )
    chol = np.linalg.cholesky(0.95 * np.ones((30, 30)) + 0.05 * np.eye(30))
    X = rng.normal(size=(2000, 30)) @ chol.T
    y = X @ rng.normal(size=30) + 0.1 * rng.normal(size=2000)
    yield "correlated rho=0.95", X, y, None
    yield "correlated, int weights", X, y, rng.integers(0, 5, size=2000).astype(float)
    X = rng.random((15, 30))
    yield "wide 15 x 30 (sklearn check)", X, rng.integers(0, 3, 15).astype(float), None
    X = rng.normal(size=(200_000, 50))
    yield "standardized 200k x 50", X, X @ rng.normal(size=50) + rng.normal(size=200_000), None


def main():
    rng = np.random.default_rng(0)
    columns = ("shape", 12), ("dtype", 8), ("epochs", 6), ("gap", 9), ("coef rdiff", 10)
    print(f"{'data':30} " + " ".join(f"{c:>{w}}" for c, w in columns) + f" {'fit s':>7}")
    for name, X_full, y_full, s in data_sets(rng):
        weights = np.ones(len(y_full)) if s is None else s
        for dtype in (np.float64, np.float32):
            # The oracle sees the data the estimator sees: rounded to dtype.
            X, y = (a.astype(dtype).astype(np.float64) for a in (X_full, y_full))
            ridge = Ridge(alpha=1e-4 * weights.sum(), solver="svd")
            ridge.fit(X, y, sample_weight=weights)
            best = objective(X, y, weights, ridge.coef_, ridge.intercept_, 1e-4)
            reg = SGDL2Regressor().fit(X.astype(dtype), y, sample_weight=s)
            start = time.perf_counter()
            reg.fit(X.astype(dtype), y, sample_weight=s)
            seconds = time.perf_counter() - start
            coef = reg.coef_.astype(np.float64)
            gap = (objective(X, y, weights, coef, float(reg.intercept_), 1e-4) - best) / best
            rdiff = np.max(np.abs(coef - ridge.coef_)) / np.max(np.abs(ridge.coef_))
            shape = "x".join(map(str, X.shape))
            print(
                f"{name:30} {shape:>12} {np.dtype(dtype).name:>8} {reg.n_iter_:>6} "
                f"{gap:>9.1e} {rdiff:>10.1e} {seconds:>7.3f}"
            )


if __name__ == "__main__":
    main()
