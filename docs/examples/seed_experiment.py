"""The original post's experiment: X = 0..9999 unscaled, y = 3.657 X + noise.

Run from the project's root (``pip install ".[docs]"`` first, for matplotlib)::

    python docs/examples/seed_experiment.py [OUTPUT_DIR]

It fits ``SGDL2Regressor`` on the post's data (with an intercept of 2.5, from
``skl_tfreg._demo.seed_data``) twice, with full batches (the default) and with
the post's mini-batches of 100 rows, beside the post's own training (plain SGD
with a learning rate of 1e-10), and prints each one's slope and intercept beside
the closed-form optimum and Ridge's. It writes ``seed_loss_curve.png`` (the
objective after each epoch) and ``seed_fit.png`` (the fitted lines on the data)
into OUTPUT_DIR, ``docs/images/`` by default.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import Ridge

from skl_tfreg import SGDL2Regressor, iter_epochs
from skl_tfreg._demo import closed_form, seed_data

IMAGES = Path(__file__).resolve().parents[1] / "images"
ALPHA = 1e-4  # the package's default penalty
BATCH_SIZE = 100
POST_LEARNING_RATE = 1e-10  # the post's hand-tuned step
POST_EPOCHS = 100


def objective(X, y, alpha, coef, intercept):
    """Return ``J = mean((X w + b - y)^2) + alpha ||w||^2``, the objective all fits minimise."""
    r = X @ coef + intercept - y
    return float(r @ r / len(y) + alpha * coef @ coef)


def post_sgd(X, y, alpha, *, learning_rate=POST_LEARNING_RATE, batch_size=BATCH_SIZE,
             n_epochs=POST_EPOCHS, random_state=0):  # fmt: skip
    """Train as the post does: plain SGD on the raw columns from a small random start.

    Returns the coefficients, the intercept and the objective ``J`` after each epoch.
    """
    rng = np.random.default_rng(random_state)
    coef, intercept = 0.01 * rng.standard_normal(X.shape[1]), 0.01 * rng.standard_normal()
    losses = []
    for epoch in iter_epochs(len(y), batch_size, n_epochs=n_epochs, random_state=rng):
        for rows in epoch:
            residual = X[rows] @ coef + intercept - y[rows]
            coef = coef - learning_rate * (2 * X[rows].T @ residual / len(rows) + 2 * alpha * coef)
            intercept = intercept - learning_rate * 2 * residual.mean()
        losses.append(objective(X, y, alpha, coef, intercept))
    return coef, float(intercept), np.array(losses)


def run(output_dir=IMAGES, alpha=ALPHA):
    """Fit, print the table and write the two figures; return the fits and the paths."""
    X, y = seed_data()
    coef, intercept = closed_form(X, y, alpha)
    ridge = Ridge(alpha=alpha * len(y)).fit(X, y)  # Ridge penalises the sum, not the mean
    full = SGDL2Regressor(alpha=alpha).fit(X, y)
    mini = SGDL2Regressor(alpha=alpha, batch_size=BATCH_SIZE, random_state=0).fit(X, y)
    post_coef, post_intercept, post_losses = post_sgd(X, y, alpha)

    optimum = objective(X, y, alpha, coef, intercept)
    rows = [
        ("closed form", coef[0], intercept, ""),
        ("Ridge(alpha=alpha*n)", ridge.coef_[0], ridge.intercept_, ""),
        ("SGDL2Regressor()", full.coef_[0], full.intercept_, full.n_iter_),
        (f"batch_size={BATCH_SIZE}", mini.coef_[0], mini.intercept_, mini.n_iter_),
        (f"post: SGD, lr {POST_LEARNING_RATE:g}", post_coef[0], post_intercept, POST_EPOCHS),
    ]
    print(f"X = 0..{len(y) - 1} (unscaled), y = 3.657 X + 2.5 + 0.33 noise; alpha = {alpha:g}")
    print(f"{'':24}{'slope W':>15}{'intercept b':>15}{'epochs':>8}{'J / J* - 1':>12}")
    for name, w, b, epochs in rows:
        gap = objective(X, y, alpha, np.array([w]), b) / optimum - 1
        print(f"{name:24}{w:>15.10f}{b:>15.10f}{epochs!s:>8}{gap:>12.1e}")

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "loss_curve": output_dir / "seed_loss_curve.png",
        "fit": output_dir / "seed_fit.png",
    }
    plot_loss_curves(paths["loss_curve"], optimum, full, mini, post_losses)
    plot_fit(paths["fit"], X, y, full, post_coef, post_intercept)
    for path in paths.values():
        print(f"wrote {path}", file=sys.stderr)
    return {
        "closed_form": (coef, intercept),
        "ridge": ridge,
        "full_batch": full,
        "mini_batch": mini,
        "post": (post_coef, post_intercept, post_losses),
        "paths": paths,
    }


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss_curves(path, optimum, full, mini, post_losses):
    """Plot ``loss_curve_`` per epoch on a log scale, with the optimum ``J*``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    epochs = np.arange(1, len(post_losses) + 1)
    ax.semilogy(epochs, post_losses, color="C3", label=f"the post: SGD, lr {POST_LEARNING_RATE:g}")
    epochs = np.arange(1, len(mini.loss_curve_) + 1)
    ax.semilogy(epochs, mini.loss_curve_, ".-", color="C1",
                label=f"SGDL2Regressor(batch_size={BATCH_SIZE})")  # fmt: skip
    epochs = np.arange(1, len(full.loss_curve_) + 1)
    ax.semilogy(epochs, full.loss_curve_, "o", color="C0", ms=8, label="SGDL2Regressor()")
    ax.axhline(optimum, color="grey", ls="--", lw=0.8, label=f"optimum J* = {optimum:.4f}")
    ax.set(xlabel="epoch", ylabel="objective J (loss_curve_)",
           title="y = 3.657 X + 2.5 + noise, X = 0..9999 unscaled")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def _line(coef, intercept):
    return f"y = {coef:.5f} X {'-' if intercept < 0 else '+'} {abs(intercept):.3f}"


def plot_fit(path, X, y, full, post_coef, post_intercept):
    """Plot the fitted lines on every 100th point, and near X = 0, where the intercept shows."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 4.0))
    for ax, rows in zip(axes, (slice(None, None, 100), slice(0, 21)), strict=True):
        x = X[rows, 0]
        grid = np.array([x.min(), x.max()])
        ax.plot(x, y[rows], ".", color="grey", label="data")
        ax.plot(grid, grid * full.coef_[0] + full.intercept_, color="C0",
                label=f"SGDL2Regressor(): {_line(full.coef_[0], full.intercept_)}")  # fmt: skip
        ax.plot(grid, grid * post_coef[0] + post_intercept, "--", color="C3",
                label=f"the post's SGD: {_line(post_coef[0], post_intercept)}")  # fmt: skip
        ax.set(xlabel="X", ylabel="y")
    axes[0].set_title("every 100th point")
    axes[1].set_title("X = 0..20: the intercept")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else IMAGES)
