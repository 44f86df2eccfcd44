"""Where a default fit's time goes: the parts of case 2 and case 1 of benchmarks/run.py.

Run from the project's root: ``python benchmarks/profile_fit.py``. Prints the
median time of each stage of ``SGDL2Regressor().fit`` on 200,000 x 50 float32
and on 100 x 5 float64, measured separately, beside the whole fit and Ridge.
"""

import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from run import _standardized  # noqa: E402
from sklearn.linear_model import Ridge, SGDRegressor  # noqa: E402

from skl_tfreg import SGDL2Regressor, _core, _tensors, _training  # noqa: E402


def _median_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def stages(X, y, repeats):
    """Median milliseconds of each stage of a default fit on X, y."""
    alpha, dtype = 1e-4, tf.as_dtype(X.dtype)
    reg = SGDL2Regressor(alpha=alpha).fit(X, y)
    epochs = reg.n_iter_
    Xt = _tensors.as_tensor(X)
    Y, s = tf.constant(y[:, None]), tf.ones([len(y)], dtype)
    p = X.shape[1]
    prepare_args = (
        Xt, Y, s, tf.constant(True), tf.constant(alpha, dtype), tf.zeros((p, 1), dtype),
        tf.constant([np.nan], dtype), _core.Moments(*map(tf.constant, _training._no_moments(p, 1))),
        tf.constant(10 * np.finfo(X.dtype).eps, dtype),
    )  # fmt: skip
    prepare = _core.kernel(_core.prepare, dtype)
    start = prepare(*prepare_args)
    moments = _core.kernel(_core.chunk_moments, dtype)
    full_batch = _core.kernel(_core.full_batch, dtype)
    zero = tf.constant(0.0, dtype)
    schedule = _core.Schedule(zero, zero, zero)
    progress = _core.Progress(tf.constant(True), zero, tf.constant(10**6))

    def run(n):
        return full_batch(start.problem, start.state, tf.constant(n), schedule, progress, zero,
                          tf.constant(np.inf, dtype))  # fmt: skip

    one, five = _median_ms(lambda: run(1), repeats), _median_ms(lambda: run(5), repeats)
    return {
        "whole fit": _median_ms(lambda: SGDL2Regressor(alpha=alpha).fit(X, y), repeats),
        "  validation (scikit-learn)": _median_ms(
            lambda: reg._validate_training_data(X, y, None, reset=True), repeats
        ),
        "  copy into TensorFlow": _median_ms(lambda: _tensors.as_tensor(X), repeats),
        "  moments (one pass)": _median_ms(lambda: moments(Xt, Y, s), repeats),
        "  prepare (moments, residual, gradient)": _median_ms(
            lambda: prepare(*prepare_args), repeats
        ),
        f"  one epoch (of {epochs})": (five - one) / 4,
        "  one compiled call, beyond its epochs": one - (five - one) / 4,
        "Ridge": _median_ms(lambda: Ridge(alpha=alpha * len(y)).fit(X, y), repeats),
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
