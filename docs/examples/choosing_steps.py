"""Epochs and time to Ridge's optimum for each ``learning_rate`` and ``batch_size``.

Run from the project's root (``pip install ".[docs]"`` first, for matplotlib)::

    python docs/examples/choosing_steps.py

It prints the table of ``docs/choosing_steps.md`` and writes
``docs/images/choosing_steps.png``, the relative gap to Ridge's optimum after
each epoch. Each fit's epochs are traced with scikit-learn's callback API
(scikit-learn >= 1.9); times are medians of separate, untraced fits.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge, SGDRegressor

from skl_tfreg import SGDL2Regressor

BAR = 1e-6  # the foundation's bar: relative objective gap to Ridge's optimum
SCHEDULES = ("auto", "constant", "invscaling", "adaptive")


def ill_conditioned(n=2000, seed=0):
    """Correlated columns (rho 0.9) on scales 1e-3..1e3 with offsets, alpha 1e-3."""
    rng = np.random.default_rng(seed)
    p = 6
    scales = np.logspace(-3, 3, p)
    Z = np.sqrt(0.1) * rng.normal(size=(n, p)) + np.sqrt(0.9) * rng.normal(size=(n, 1))
    X = Z * scales + np.linspace(-50, 50, p) * scales
    y = Z @ rng.normal(size=p) + 4.0 + 0.3 * rng.normal(size=n)
    return X, y, 1e-3


def standardized(n=50_000, p=20, seed=0):
    """Standardized, mildly correlated columns, alpha 1e-4."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) + 0.3 * rng.normal(size=(n, 1))
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    y = X @ rng.normal(size=p) + 1.0 + rng.normal(size=n)
    return X, y, 1e-4


def _optimum(X, y, alpha):
    ridge = Ridge(alpha=alpha * len(y), solver="svd").fit(X, y)
    return _objective(X, y, alpha, ridge.coef_, ridge.intercept_)


def _objective(X, y, alpha, coef, intercept):
    r = X @ coef + intercept - y
    return r @ r / len(y) + alpha * coef @ coef


def _gap_trace(X, y, alpha, best):
    """A scikit-learn callback recording the gap to the optimum after every epoch."""
    from sklearn.callback import FitCallback  # scikit-learn >= 1.9

    class GapTrace(FitCallback):  # the protocol's other hooks do nothing
        def __init__(self):
            self.args, self.best, self.gaps = (X, y, alpha), best, []

        def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
            if context.task_name == "epoch" and fitted_estimator is not None:
                J = _objective(*self.args, fitted_estimator.coef_, fitted_estimator.intercept_)
                self.gaps.append((J - self.best) / self.best)
            return False

    return GapTrace()


def _median_time(make, X, y, repeats):
    times = []
    for _ in range(repeats):
        est = make()
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        times.append(time.perf_counter() - start)
    return statistics.median(times), est


def measure(X, y, alpha, *, batch_sizes=("auto", 256), max_iter=3000, eta0=0.1, repeats=3):
    """Fit every schedule and batch size; return one row per fit, and the gap curves.

    A row gives the epochs and seconds to a gap of ``BAR`` (the time of a fit run
    for just those epochs, same seed), or None when the fit stopped first, and the
    fit's own epochs, seconds and final gap with its stopping rules.
    """
    if not hasattr(SGDL2Regressor, "set_callbacks"):
        raise ImportError("This example traces epochs with scikit-learn >= 1.9's callbacks.")
    best = _optimum(X, y, alpha)
    rows, curves = [], {}
    for batch_size in batch_sizes:
        for learning_rate in SCHEDULES:
            params = dict(alpha=alpha, learning_rate=learning_rate, batch_size=batch_size,
                          eta0=eta0, max_iter=max_iter, random_state=0)  # fmt: skip
            trace = _gap_trace(X, y, alpha, best)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                SGDL2Regressor(**params).set_callbacks(trace).fit(X, y)
            gaps = np.array(trace.gaps)
            seconds, est = _median_time(lambda p=params: SGDL2Regressor(**p), X, y, repeats)
            reached = np.flatnonzero(gaps <= BAR)
            to_bar = int(reached[0]) + 1 if reached.size else None
            bar_seconds = None
            if to_bar is not None:
                short = dict(params, max_iter=to_bar)
                bar_seconds, _ = _median_time(lambda p=short: SGDL2Regressor(**p), X, y, repeats)
            gap = (_objective(X, y, alpha, est.coef_, est.intercept_) - best) / best
            rows.append(dict(learning_rate=learning_rate, batch_size=batch_size, to_bar=to_bar,
                             bar_seconds=bar_seconds, epochs=est.n_iter_, seconds=seconds,
                             gap=gap))  # fmt: skip
            curves[(learning_rate, batch_size)] = gaps
    seconds, sgd = _median_time(lambda: SGDRegressor(alpha=alpha, random_state=0), X, y, repeats)
    gap = (_objective(X, y, alpha, sgd.coef_, sgd.intercept_[0]) - best) / best
    rows.append(dict(learning_rate="SGDRegressor()", batch_size=1, to_bar=None,
                     bar_seconds=None, epochs=sgd.n_iter_, seconds=seconds, gap=gap))  # fmt: skip
    return rows, curves


def table(name, rows):
    """The rows as a markdown table."""
    lines = [
        f"**{name}**",
        "",
        "| learning_rate | batch_size | epochs to 1e-6 | time to 1e-6 | fit: epochs | fit: time "
        "| fit: final gap |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        to_bar = "not reached" if r["to_bar"] is None else str(r["to_bar"])
        bar_time = "" if r["bar_seconds"] is None else f"{1e3 * r['bar_seconds']:.0f} ms"
        gap = f"{r['gap']:.1e}" if math.isfinite(r["gap"]) else "non-finite"
        lines.append(
            f"| {r['learning_rate']} | {r['batch_size']} | {to_bar} | {bar_time} | "
            f"{r['epochs']} | {1e3 * r['seconds']:.0f} ms | {gap} |"
        )
    return "\n".join(lines)


def plot(results, path):
    """Plot the gap after every epoch, one panel per data set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.5))
    for ax, (name, (_, curves)) in zip(np.atleast_1d(axes), results.items(), strict=True):
        for (learning_rate, batch_size), gaps in curves.items():
            style = "-" if batch_size == "auto" else "--"
            label = f"{learning_rate}, batch_size={batch_size}"
            epochs = np.arange(1, len(gaps) + 1)
            # "constant" and "adaptive" agree until the first stall: draw one wider.
            width = 4 if learning_rate == "constant" else 1.5
            ax.loglog(epochs, np.maximum(gaps, 1e-17), style, label=label, lw=width, alpha=0.8)
        ax.axhline(BAR, color="grey", lw=0.8)
        ax.set(title=name, xlabel="epoch", ylabel="relative gap to Ridge's optimum")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    """Measure both data sets, print the tables, save the plot."""
    data = {
        "Ill-conditioned, 2,000 x 6 (correlated, scales 1e-3..1e3, offsets)": ill_conditioned(),
        "Standardized, 50,000 x 20": standardized(),
    }
    results = {name: measure(*args) for name, args in data.items()}
    for name, (rows, _) in results.items():
        print(table(name, rows), end="\n\n")
    path = Path(__file__).resolve().parents[1] / "images" / "choosing_steps.png"
    plot(results, path)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
