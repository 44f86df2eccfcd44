"""Whether XLA wins for the one-call fit: compile time against time per call.

Compiles :func:`skl_tfreg._core.gram_fit` twice, as the package runs it (a
graph, shape-free) and with XLA (``jit_compile=True``, which compiles once per
shape), and times both on a small and a middling problem::

    python benchmarks/xla.py

Prints, per shape: the first call (trace, compile and run) and the median of later
calls, for each; and how many fits of one shape XLA needs to pay back its
compilation. docs/performance.md quotes the figures.
"""

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from skl_tfreg import _core  # noqa: E402


def _timed(fn, repeats):
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def main():
    """Print the graph's and XLA's first and later calls for two shapes."""
    specs = _core.gram_fit.signature(_core._Specs(tf.float64, False))
    rng = np.random.default_rng(0)
    for n, p in [(128, 5), (16_384, 20)]:
        X = rng.normal(size=(n, p))
        args = (tf.constant(X[:0]), tf.constant(X), tf.constant(X[:, :1]), tf.ones([n], tf.float64),
                tf.zeros([p], tf.float64), tf.zeros([1], tf.float64), tf.constant(True),
                tf.constant(1e-4, tf.float64), tf.constant(1e-4, tf.float64))  # fmt: skip
        results = {}
        for name, jit in [("graph", None), ("XLA", True)]:
            compiled = tf.function(_core.gram_fit, input_signature=specs, jit_compile=jit,
                                   autograph=False).get_concrete_function()  # fmt: skip
            results[name] = _timed(lambda f=compiled, a=args: f(*a), 100)
            first, later = results[name]
            print(f"{n} x {p} {name}: first call {first:.2f} s, later {1e6 * later:,.0f} us")
        saved = results["graph"][1] - results["XLA"][1]
        extra = results["XLA"][0] - results["graph"][0]
        if saved > 0:
            print(f"{n} x {p}: XLA pays back its compilation after {extra / saved:,.0f} fits")
        else:
            print(f"{n} x {p}: XLA is not faster per call")


if __name__ == "__main__":
    main()
