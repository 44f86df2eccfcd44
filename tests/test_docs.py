"""The examples of the docs and of the docstrings run, and print what they claim."""

import doctest
import importlib.util
from pathlib import Path

import pytest

import skl_tfreg._batching
import skl_tfreg._cv
import skl_tfreg._demo
import skl_tfreg._estimator
from skl_tfreg import SGDL2Regressor

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize("page", ["user_guide.md", "data.md", "persistence.md", "migrating.md"])
def test_docs_pages_run(page):
    result = doctest.testfile(str(DOCS / page), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize(
    "module", [skl_tfreg._batching, skl_tfreg._cv, skl_tfreg._demo, skl_tfreg._estimator]
)
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_readme_quickstart_runs():
    readme = (DOCS.parent / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in readme.split("```python\n")[1:]]
    assert blocks, "README has no python example"
    namespace = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    reg = namespace["reg"]
    assert abs(reg.coef_[0] - 3.657) < 1e-3 and abs(reg.intercept_ - 2.5) < 0.05


def _example(name):
    spec = importlib.util.spec_from_file_location(name, DOCS / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # thousands of traced epochs of steepest descent: about 20 s
def test_choosing_steps_example_measures_what_its_page_reports():
    # The page's claims on a smaller copy of its ill-conditioned set: conjugate
    # gradients reach the optimum in a few epochs, steepest descent in many more,
    # and SGDRegressor's defaults on these unscaled columns do not reach it.
    example = _example("choosing_steps")
    X, y, alpha = example.ill_conditioned(n=300)
    if not hasattr(SGDL2Regressor, "set_callbacks"):  # scikit-learn < 1.9
        with pytest.raises(ImportError, match="scikit-learn >= 1.9"):
            example.measure(X, y, alpha)
        return
    rows, curves = example.measure(X, y, alpha, batch_sizes=("auto",), repeats=1)
    by_rule = {row["learning_rate"]: row for row in rows}
    assert by_rule["auto"]["to_bar"] <= 10
    assert by_rule["constant"]["to_bar"] > 10 * by_rule["auto"]["to_bar"]
    assert all(by_rule[rule]["gap"] <= example.BAR for rule in example.SCHEDULES)
    assert by_rule["SGDRegressor()"]["gap"] > example.BAR
    assert len(curves[("auto", "auto")]) == by_rule["auto"]["epochs"]
    assert "| auto | auto |" in example.table("test", rows)
