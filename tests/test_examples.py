"""The docs' examples run, draw their figures and find what their pages report."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # three fits, two figures, and TensorFlow's first tracing: about 6 s
def test_seed_experiment_fits_the_closed_form_and_draws_its_figures(tmp_path, capsys):
    example = _example("seed_experiment")
    results = example.run(tmp_path / "images")

    for path in results["paths"].values():
        assert path.parent == tmp_path / "images"
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000, path
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert width >= 400 and height >= 300, (path, width, height)

    (coef,), intercept = results["closed_form"]
    ridge = results["ridge"]  # Ridge(alpha=alpha * n): the same minimiser
    assert ridge.coef_[0] == pytest.approx(coef, rel=1e-10)
    assert ridge.intercept_ == pytest.approx(intercept, rel=1e-8)

    # Full batch (the defaults): one conjugate-gradient step is exact with one feature.
    full = results["full_batch"]
    assert full.coef_[0] == pytest.approx(coef, rel=1e-9)
    assert full.intercept_ == pytest.approx(intercept, rel=1e-8)
    assert full.n_iter_ == len(full.loss_curve_) <= 3

    # Mini-batches of 100 stop near the optimum (seeds 0..7: the slope within 1.1e-8 of
    # itself, the intercept within 2.4e-4, J within 2.5e-7): the slope to 1e-7, the
    # intercept within 1e-3, under a third of its standard error from the noise (0.0033).
    mini = results["mini_batch"]
    assert mini.coef_[0] == pytest.approx(coef, rel=1e-7)
    assert mini.intercept_ == pytest.approx(intercept, abs=1e-3)
    assert mini.n_iter_ == len(mini.loss_curve_) < mini.max_iter
    X, y = example.seed_data()
    optimum = example.objective(X, y, example.ALPHA, np.array([coef]), intercept)
    gap = example.objective(X, y, example.ALPHA, mini.coef_, mini.intercept_) / optimum - 1
    assert gap <= 1e-6

    # The post's plain SGD with its learning rate of 1e-10 fits the slope, but its bias
    # stays near its start, far from 2.49, and its objective far above the optimum.
    post_coef, post_intercept, post_losses = results["post"]
    assert post_coef[0] == pytest.approx(coef, rel=1e-3)
    assert abs(post_intercept) < 0.1
    assert post_losses[-1] > 10 * optimum

    printed = capsys.readouterr().out
    for name in ("closed form", "Ridge(alpha=alpha*n)", "SGDL2Regressor()", "batch_size=100"):
        assert name in printed
    assert f"{full.coef_[0]:.10f}" in printed and f"{mini.intercept_:.10f}" in printed


@pytest.mark.slow  # 150 Ridge fits besides the cross-validation: about 5 s
def test_tuning_alpha_example_agrees_with_the_grid_search_and_draws_the_path(tmp_path):
    results = _example("tuning_alpha").run(tmp_path / "images", n=2000)
    data = results["path"].read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    cv, grid = results["cv"], results["grid"]
    assert cv.alpha_ * results["n_train"] == pytest.approx(grid.best_params_["alpha"])
    ridge = -np.array([grid.cv_results_[f"split{k}_test_score"] for k in range(5)]).T
    np.testing.assert_allclose(cv.mse_path_, ridge, rtol=1e-6)
    # The U the figure shows: the chosen alpha beats both ends of the grid.
    mean = cv.mse_path_.mean(axis=1)
    assert mean.min() < mean[0] and mean.min() < mean[-1]
