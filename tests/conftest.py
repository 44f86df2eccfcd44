import os

# Keep TensorFlow's C++ start-up chatter out of the test log (set before TF loads).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# scikit-learn's check_array_api_input runs (rather than skips) only with this set
# before scipy is imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402


def objective(X, y, coef, intercept, alpha, sample_weight=None):
    """J(w, b) evaluated in float64 numpy: the quantity the estimator minimises."""
    X = np.asarray(X, dtype=np.float64)
    s = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    r = X @ np.asarray(coef, np.float64) + float(intercept) - y
    return (s * r * r).sum() / s.sum() + alpha * float(np.dot(coef, coef))


def ridge_gap(est, X, y, sample_weight=None, fit_intercept=True):
    """Relative objective gap of a fitted estimator to Ridge's exact optimum."""
    s = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    X64 = np.asarray(X, dtype=np.float64)
    # The SVD solver stays accurate where Cholesky warns (ill-conditioned X^T X).
    ridge = Ridge(alpha=est.alpha * s.sum(), fit_intercept=fit_intercept, solver="svd")
    ridge.fit(X64, y, sample_weight=s)
    best = objective(X64, y, ridge.coef_, ridge.intercept_, est.alpha, s)
    ours = objective(X64, y, est.coef_, est.intercept_, est.alpha, s)
    return (ours - best) / best if best > 0 else ours  # J* = 0: an exact fit exists


@pytest.fixture
def oracle():
    """The Ridge oracle: ``oracle.gap(est, X, y, ...)`` and ``oracle.objective(...)``."""

    class Oracle:
        gap = staticmethod(ridge_gap)
        objective = staticmethod(objective)

    return Oracle


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def pytest_terminal_summary(terminalreporter):
    """Report how many times the TF kernels were traced over the whole run."""
    from skl_tfreg import _core

    terminalreporter.write_line(
        f"skl_tfreg kernel traces in this run: {_core.trace_count()} {dict(_core._traces)}"
    )
