"""Tuning alpha: SGDL2RegressorCV against GridSearchCV, and the plot of ``mse_path_``.

Run from the project's root (``pip install ".[docs]"`` first, for matplotlib)::

    python docs/examples/tuning_alpha.py

On 5,000 rows of 200 correlated features (five of them informative) with
noise, it cross-validates 30 alphas over 5 folds twice: with
``SGDL2RegressorCV`` (one pass over the data for every fold's statistics, one
to check the final fit; timed after a first small fit has started TensorFlow)
and with ``GridSearchCV`` over ``Ridge`` (150 fits). It prints both times and
alphas, and writes ``docs/images/mse_path.png``: the held-out error of every
fold against alpha, their mean, and the chosen alpha.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV

from skl_tfreg import SGDL2RegressorCV

IMAGES = Path(__file__).resolve().parents[1] / "images"


def correlated(n=5_000, p=200, seed=0):
    """Columns sharing one factor (correlation 0.8), a sparse truth, and much noise."""
    rng = np.random.default_rng(seed)
    X = np.sqrt(0.2) * rng.normal(size=(n, p)) + np.sqrt(0.8) * rng.normal(size=(n, 1))
    coef = np.where(np.arange(p) < 5, 1.0, 0.0) * rng.normal(size=p)  # five that matter
    return X, X @ coef + 1.0 + 3.0 * rng.normal(size=n)


def run(images=IMAGES, n=5_000):
    """Fit both ways, print the comparison, draw the figure; return what was measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X, y = correlated(n)
    alphas = np.logspace(-7, 1, 30)
    SGDL2RegressorCV(alphas=alphas).fit(X[:1000], y[:1000])  # starts TensorFlow, traces
    start = time.perf_counter()
    cv = SGDL2RegressorCV(alphas=alphas, cv=5).fit(X, y)
    ours = time.perf_counter() - start
    n_train = len(y) * 4 // 5  # Ridge penalises the sum of squares: alpha * n_train
    grid = GridSearchCV(Ridge(), {"alpha": list(alphas * n_train)}, cv=5,
                        scoring="neg_mean_squared_error")  # fmt: skip
    start = time.perf_counter()
    grid.fit(X, y)
    theirs = time.perf_counter() - start
    print(f"SGDL2RegressorCV: {ours:.2f} s, alpha_ = {cv.alpha_:.3g}")
    print(
        f"GridSearchCV(Ridge): {theirs:.2f} s, alpha = {grid.best_params_['alpha'] / n_train:.3g}"
    )

    images.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k in range(cv.mse_path_.shape[1]):
        ax.plot(
            cv.alphas_, cv.mse_path_[:, k], color="0.7", lw=1, label="folds" if k == 0 else None
        )
    ax.plot(cv.alphas_, cv.mse_path_.mean(axis=1), color="C0", lw=2, label="mean of the folds")
    ax.axvline(cv.alpha_, color="C3", ls="--", label=f"alpha_ = {cv.alpha_:.2g}")
    ax.set(xscale="log", xlabel="alpha", ylabel="held-out mean squared error",
           title="SGDL2RegressorCV: mse_path_ (5 folds, one pass)")  # fmt: skip
    ax.legend()
    fig.tight_layout()
    path = images / "mse_path.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return dict(cv=cv, grid=grid, ours=ours, theirs=theirs, path=path, n_train=n_train)


if __name__ == "__main__":
    run()
