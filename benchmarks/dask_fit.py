"""A fit on a dask array held by two worker processes: client memory, time, gap.

Issue 17's target: a 2,000,000 x 25 float64 dask array (400 MB) persisted on a
LocalCluster of two worker processes (one thread each, TensorFlow limited to one
thread in each). The rows are generated on the workers and never leave them.
Run from the project's root, with the BLAS variables unset as for every
benchmark::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/dask_fit.py [--rows N]

Prints:

- the client's peak RSS growth during each ``fit`` (sampled every 2 ms), as a
  share of ``X.nbytes``: after TensorFlow is loaded in the client (the fit's own
  cost), and for the first fit, which also imports TensorFlow there;
- the median time of three fits (after the workers have loaded TensorFlow), and
  the first fit's; ``SGDL2RegressorCV`` (5 folds, 20 alphas) beside them;
- the anchors, timed the same way: ``X.compute()`` followed by the in-memory
  fit, and ``Ridge`` on the computed arrays;
- the relative objective gap of the Dask fit to Ridge's optimum.
"""

import argparse
import os
import statistics
import sys
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# benchmarks/distributed.py (tf.distribute) would shadow the `distributed` package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != _HERE]

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import numpy as np  # noqa: E402

import skl_tfreg  # noqa: E402
from skl_tfreg import SGDL2Regressor, SGDL2RegressorCV  # noqa: E402

ALPHA = 1e-4
PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class _Peak:
    """The peak RSS of this process while the block runs, sampled every 2 ms."""

    def __enter__(self):
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())
        self.growth = self.peak - self.start


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _objective(X, y, coef, intercept):
    r = X @ coef + intercept - y
    return float(r @ r) / len(y) + ALPHA * float(coef @ coef)


def main():
    """Print the client's memory, the times and the gap of fits on a persisted dask array."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    n, p = parser.parse_args().rows, 25
    from dask.distributed import Client, LocalCluster, wait
    from threadpoolctl import threadpool_info

    print("BLAS:", ", ".join(f"{i['internal_api']} {i.get('architecture')}"
                             for i in threadpool_info() if i["user_api"] == "blas"))  # fmt: skip
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:  # fmt: skip
        client.run(skl_tfreg.limit_tf_threads, 1)
        rng = da.random.default_rng(0)
        scales = np.linspace(0.1, 10.0, p)
        X = rng.normal(size=(n, p), chunks=(n // 8, p)) * scales + np.linspace(-5, 5, p)
        y = X @ np.linspace(-2.0, 2.0, p) + 1.0 + rng.normal(size=n, chunks=n // 8)
        X, y = client.persist([X, y])
        wait([X, y])
        client.rebalance([X, y])
        print(f"X: {n} x {p} float64, {X.nbytes / 1e6:.0f} MB in {X.numblocks[0]} partitions "
              f"on {len(client.scheduler_info()['workers'])} worker processes")  # fmt: skip

        with _Peak() as cold:  # the client imports TensorFlow in this first fit
            first, reg = _timed(lambda: SGDL2Regressor(alpha=ALPHA).fit(X, y))
        times, growth = [], []
        for _ in range(3):
            with _Peak() as warm:
                elapsed, reg = _timed(lambda: SGDL2Regressor(alpha=ALPHA).fit(X, y))
            times.append(elapsed)
            growth.append(warm.growth)
        with _Peak() as cv_peak:
            cv_time, cv = _timed(lambda: SGDL2RegressorCV(cv=5).fit(X, y))
        share = X.nbytes
        print(f"client peak RSS growth, fit: {max(growth) / 1e6:.1f} MB = "
              f"{max(growth) / share:.3f} x X.nbytes (worst of 3, TensorFlow already loaded); "
              f"first fit, with TensorFlow's import: {cold.growth / 1e6:.0f} MB = "
              f"{cold.growth / share:.2f} x")  # fmt: skip
        print(f"client peak RSS growth, SGDL2RegressorCV(cv=5): {cv_peak.growth / 1e6:.1f} MB "
              f"= {cv_peak.growth / share:.3f} x")  # fmt: skip
        fit = statistics.median(times)
        print(
            f"fit on the cluster: median {fit:.2f} s of 3 (first, workers importing "
            f"TensorFlow: {first:.2f} s); SGDL2RegressorCV(cv=5, 20 alphas): {cv_time:.2f} s"
        )

        def gathered():
            Xn, yn = dask.compute(X, y)
            return Xn, yn, SGDL2Regressor(alpha=ALPHA).fit(Xn, yn)

        anchors = [_timed(gathered) for _ in range(3)]
        anchor = statistics.median(t for t, _ in anchors)
        Xn, yn, memory = anchors[-1][1]
        del anchors
        compute_time, _ = _timed(lambda: dask.compute(X, y))
        from sklearn.linear_model import Ridge

        ridge_time, ridge = _timed(lambda: Ridge(alpha=ALPHA * n).fit(Xn, yn))
        best = _objective(Xn, yn, ridge.coef_, ridge.intercept_)
        gap = _objective(Xn, yn, reg.coef_, reg.intercept_) / best - 1.0
        print(
            f"X.compute() + in-memory fit: median {anchor:.2f} s (compute alone "
            f"{compute_time:.2f} s); Ridge on the computed arrays {ridge_time:.2f} s"
        )
        print(f"ratio, Dask fit / (compute + fit): {fit / anchor:.2f}")
        print(
            f"gap to Ridge's optimum: {gap:.2e}; largest |coef - in-memory coef|: "
            f"{np.abs(reg.coef_ - memory.coef_).max():.1e}; CV alpha_ {cv.alpha_:.3g}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
