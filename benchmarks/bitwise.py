"""Fit a fixed set of configurations and save, or compare bitwise, what they learn.

A refactor of the training path must not move a number. Run this before the
change with ``--save`` and after it with ``--compare``, from the project's root::

    python benchmarks/bitwise.py --save /tmp/before.npz
    python benchmarks/bitwise.py --compare /tmp/before.npz

Each configuration stores ``coef_``, ``intercept_``, ``n_iter_`` and
``loss_curve_``; ``--compare`` prints one line per configuration and exits 1 if
any array differs in a single bit. The MirroredStrategy fit runs on two logical
CPUs, which must be configured before TensorFlow starts: hence this script sets
them first.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from skl_tfreg import SGDL2Regressor  # noqa: E402


def _data(seed=0, n=600, p=7, k=None):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) * np.logspace(-2, 2, p) + 50.0 * (np.arange(p) == 0)
    coef = rng.standard_normal((p,) if k is None else (p, k))
    y = X @ coef + 3.0 + 0.1 * rng.standard_normal((n,) if k is None else (n, k))
    return X, y, rng.uniform(0.5, 2.0, n)


def _stream(X, y, s, rows=128):
    def source():
        for a in range(0, X.shape[0], rows):
            yield X[a : a + rows], y[a : a + rows], s[a : a + rows]

    return source


def _configurations():
    X, y, s = _data()
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    Xk, Yk, sk = _data(seed=1, k=3)
    Xs = sp.random(500, 40, density=0.1, format="csr", random_state=2)
    ys = Xs @ np.arange(40.0) + np.random.default_rng(2).standard_normal(500)

    def fit(X, y, s=None, **params):
        return SGDL2Regressor(**params).fit(X, y, sample_weight=s)

    def partial(X, y, s, calls, **params):
        est = SGDL2Regressor(**params)
        for i in range(calls):
            part = slice(i * 150 % X.shape[0], i * 150 % X.shape[0] + 150)
            est.partial_fit(X[part], y[part], sample_weight=s[part])
        return est

    def warm(X, y, s):
        est = SGDL2Regressor(alpha=1e-3, max_iter=3, tol=None).fit(X, y, sample_weight=s)
        est.set_params(warm_start=True, max_iter=100, tol=1e-10)
        return est.fit(X, y, sample_weight=s)

    def mirrored(X, y, s, stream=False):
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            est = SGDL2Regressor(alpha=1e-3)
            return est.fit_stream(_stream(X, y, s)) if stream else est.fit(X, y, sample_weight=s)

    minibatch = dict(batch_size=64, random_state=0, max_iter=30)
    return {
        "full batch float64": lambda: fit(X, y, s, alpha=1e-3),
        "full batch float32": lambda: fit(X32, y32, s, alpha=1e-3),
        "full batch no intercept": lambda: fit(X, y, s, alpha=1e-2, fit_intercept=False),
        "full batch alpha 0": lambda: fit(X, y, s, alpha=0.0),
        "full batch constant": lambda: fit(
            X, y, s, learning_rate="constant", eta0=0.05, max_iter=40
        ),  # fmt: skip
        "full batch invscaling": lambda: fit(
            X, y, s, learning_rate="invscaling", eta0=0.1, max_iter=40
        ),  # fmt: skip
        "full batch adaptive": lambda: fit(
            X, y, s, learning_rate="adaptive", eta0=0.5, max_iter=60
        ),  # fmt: skip
        "mini-batch auto": lambda: fit(X, y, s, **minibatch),
        "mini-batch constant": lambda: fit(
            X, y, s, learning_rate="constant", eta0=0.01, **minibatch
        ),  # fmt: skip
        "mini-batch invscaling": lambda: fit(
            X, y, s, learning_rate="invscaling", eta0=0.02, **minibatch
        ),  # fmt: skip
        "mini-batch adaptive": lambda: fit(
            X, y, s, learning_rate="adaptive", eta0=0.05, **minibatch
        ),  # fmt: skip
        "mini-batch float32 no shuffle": lambda: fit(X32, y32, s, shuffle=False, **minibatch),
        "sparse full batch": lambda: fit(Xs, ys, alpha=1e-3),
        "sparse mini-batch": lambda: fit(Xs, ys, alpha=1e-3, **minibatch),
        "stream full batch": lambda: SGDL2Regressor(alpha=1e-3).fit_stream(_stream(X, y, s)),
        "stream mini-batch": lambda: SGDL2Regressor(alpha=1e-3, **minibatch).fit_stream(
            _stream(X, y, s)
        ),
        "stream mini-batch constant": lambda: SGDL2Regressor(
            alpha=1e-3, learning_rate="constant", eta0=0.01, shuffle=False, **minibatch
        ).fit_stream(_stream(X, y, s)),
        "partial_fit full batch": lambda: partial(X, y, s, 6, alpha=1e-3),
        "partial_fit mini-batch": lambda: partial(
            X, y, s, 6, alpha=1e-3, batch_size=32, random_state=0
        ),  # fmt: skip
        "warm start": lambda: warm(X, y, s),
        "early stopping full batch": lambda: fit(X, y, s, early_stopping=True, random_state=0),
        "early stopping mini-batch": lambda: fit(X, y, s, early_stopping=True, **minibatch),
        "several targets": lambda: fit(Xk, Yk, sk, alpha=1e-3),
        "several targets mini-batch": lambda: fit(Xk, Yk, sk, alpha=1e-3, **minibatch),
        "MirroredStrategy fit": lambda: mirrored(X, y, s),
        "MirroredStrategy fit_stream": lambda: mirrored(X, y, s, stream=True),
    }


def _results():
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, run in _configurations().items():
            est = run()
            for attr in ("coef_", "intercept_", "n_iter_", "loss_curve_"):
                out[f"{name}/{attr}"] = np.asarray(getattr(est, attr))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", metavar="FILE", help="write the results to FILE (.npz)")
    group.add_argument("--compare", metavar="FILE", help="compare bitwise with FILE")
    args = parser.parse_args()
    results = _results()
    if args.save:
        np.savez(args.save, **results)
        print(f"saved {len(results)} arrays of {len(results) // 4} configurations to {args.save}")
        return 0
    before = np.load(args.compare)
    differ = 0
    for name in dict.fromkeys(key.split("/")[0] for key in results):
        keys = [f"{name}/{a}" for a in ("coef_", "intercept_", "n_iter_", "loss_curve_")]
        same = all(
            k in before
            and before[k].dtype == results[k].dtype
            and before[k].shape == results[k].shape
            and before[k].tobytes() == results[k].tobytes()
            for k in keys
        )
        differ += not same
        print(f"{'bitwise equal' if same else 'DIFFERS':13}  {name} "
              f"(n_iter_ {int(results[keys[2]])})")  # fmt: skip
    print(f"{len(results) // 4 - differ} of {len(results) // 4} configurations bitwise equal")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
