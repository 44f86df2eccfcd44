"""Where a default fit's time goes: the parts of case 2 and case 1 of benchmarks/run.py.

Run from the project's root: ``python benchmarks/profile_fit.py``. Prints the
median time of each stage of ``SGDL2Regressor().fit`` (on sufficient statistics) on
200,000 x 50 float32 and on 100 x 5 float64, measured separately, beside the whole
fit, the data-pass fit, Ridge and SGDRegressor.
"""

import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from run import _standardized  # noqa: E402
from sklearn.linear_model import Ridge, SGDRegressor  # noqa: E402

from skl_tfreg import SGDL2Regressor, _core, _training  # noqa: E402
from skl_tfreg._statistics import Statistics, _pieces, one_call, row_blocks  # noqa: E402


def _median_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def stages(X, y, repeats):
    """Median milliseconds of each stage of a default fit on X, y (on statistics)."""
    alpha = 1e-4
    reg = SGDL2Regressor(alpha=alpha).fit(X, y)
    arrays = reg._validate_training_data(X, y, None, reset=True)
    chunks = row_blocks(arrays.X, arrays.Y, arrays.sample_weight)
    p = X.shape[1]
    tol = 10 * np.finfo(X.dtype).eps

    if one_call(arrays.X, arrays.Y, arrays.sample_weight) is not None:
        return _one_call_stages(X, y, reg, arrays, alpha, tol, repeats)
    data = Statistics(chunks)
    start = data.prepare(True, alpha, np.zeros((p, 1)), np.full(1, np.nan),
                         _training._no_moments(p, 1), tol)  # fmt: skip
    V = start.state.V
    check = _core.chunk_check
    return {
        f"whole fit ({reg.n_iter_} checking pass)": _median_ms(
            lambda: SGDL2Regressor(alpha=alpha).fit(X, y), repeats
        ),
        "  validation (scikit-learn)": _median_ms(
            lambda: reg._validate_training_data(X, y, None, reset=True), repeats
        ),
        "  statistics: one pass for the Gram matrix": _median_ms(
            lambda: Statistics(chunks), repeats
        ),
        "  solve (one compiled call)": _median_ms(
            lambda: data.prepare(
                True, alpha, np.zeros((p, 1)), np.full(1, np.nan), _training._no_moments(p, 1), tol
            ),
            repeats,  # fmt: skip
        ),
        "  checking pass (gradient and J on the data)": _median_ms(
            lambda: data._sum(
                check, (V, V[0]), data._stats, *data._setting, V, chunks=data._tensors(_pieces)
            ),
            repeats,  # fmt: skip
        ),
        "whole fit, data passes (precompute=False)": _median_ms(
            lambda: SGDL2Regressor(alpha=alpha, precompute=False).fit(X, y), repeats
        ),
        "Ridge": _median_ms(lambda: Ridge(alpha=alpha * len(y)).fit(X, y), repeats),
        "SGDRegressor()": _median_ms(lambda: SGDRegressor().fit(X, y), repeats),
    }


def _one_call_stages(X, y, reg, arrays, alpha, tol, repeats):
    """The stages of a fit on statistics in one compiled call (arrays in memory)."""
    p = X.shape[1]

    def prepare():
        data = one_call(arrays.X, arrays.Y, arrays.sample_weight)
        data.prepare(True, alpha, np.zeros((p, 1)), np.full(1, np.nan),
                     _training._no_moments(p, 1), tol)  # fmt: skip

    empty = _core.tf.function(lambda t: t).get_concrete_function(_core.tf.constant(0.0))
    zero = _core.tf.constant(0.0)
    whole = _median_ms(lambda: SGDL2Regressor(alpha=alpha).fit(X, y), repeats)
    validation = _median_ms(lambda: reg._validate_training_data(X, y, None, reset=True), repeats)
    call = _median_ms(prepare, repeats)
    return {
        f"whole fit ({reg.n_iter_} checking pass)": whole,
        "  validation (scikit-learn)": validation,
        "  the one compiled call, with its arguments": call,
        "    of which calling an empty compiled function": _median_ms(
            lambda: empty(zero), repeats
        ),  # fmt: skip
        "  the rest: estimator, driver, result (Python)": whole - validation - call,
        "whole fit, data passes (precompute=False)": _median_ms(
            lambda: SGDL2Regressor(alpha=alpha, precompute=False).fit(X, y), repeats
        ),
        "SGDRegressor()": _median_ms(lambda: SGDRegressor().fit(X, y), repeats),
    }


def main():
    """Print the stages of both cases."""
    rng = np.random.default_rng(0)
    small = rng.normal(size=(100, 5))
    cases = {
        "200,000 x 50 float32": (*_standardized(200_000, 50, np.float32), 7),
        "100 x 5 float64": (small, small @ rng.normal(size=5) + rng.normal(size=100), 200),
    }
    for name, (X, y, repeats) in cases.items():
        print(f"\n{name} (median ms of {repeats})")
        for stage, ms in stages(X, y, repeats).items():
            print(f"  {stage:42s} {ms:8.2f}")


if __name__ == "__main__":
    main()
