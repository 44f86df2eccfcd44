"""The examples of the docs and of the docstrings run, and print what they claim."""

import doctest
from pathlib import Path

import pytest

import skl_tfreg._batching
import skl_tfreg._demo
import skl_tfreg._estimator

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize("page", ["user_guide.md"])  # the pages with examples
def test_docs_pages_run(page):
    result = doctest.testfile(str(DOCS / page), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("module", [skl_tfreg._batching, skl_tfreg._demo, skl_tfreg._estimator])
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
