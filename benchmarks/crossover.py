"""Where the sufficient statistics stop paying: fit times of both full-batch paths by width.

Run from the project's root, after ``pip install .``::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/crossover.py

For dense float64 and float32 X of ``n`` rows and sparse X (``--density``) it times
``precompute=True`` (one pass for the Gram matrix, a solve, one checking pass)
against ``precompute=False`` (conjugate-gradient epochs, one pass each), medians of
alternating blocks, and prints the ratio: below 1 the statistics are faster. The
rule of ``precompute="auto"`` (``skl_tfreg._statistics.MAX_FEATURES`` and
``MAX_SPARSE_FEATURES``) comes from these figures; docs/performance.md quotes them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from run import _interleaved, _quiet, _standardized  # noqa: E402

from skl_tfreg import SGDL2Regressor  # noqa: E402


def _pair(X, y, repeats):
    """Median seconds of both paths on ``X, y`` and their epochs."""

    def fit(precompute):
        return lambda: _quiet(SGDL2Regressor(alpha=1e-4, precompute=precompute).fit, X, y)

    runs = [fit(True), fit(False)]
    for run in runs:
        run()  # warm-up: traces
    (stats, passes), (a, b) = _interleaved(runs, repeats)
    return stats, passes, a.n_iter_, b.n_iter_


def main(argv=None):
    """Print a markdown table of both paths' fit times by width."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--widths", default="16,64,256,512,1024")
    parser.add_argument("--density", type=float, default=0.01, help="of the sparse X")
    parser.add_argument("--kinds", default="float64,float32,sparse")
    args = parser.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]
    print("| X | n x p | statistics | data passes (epochs) | ratio |")
    print("|---|---|---|---|---|")
    for kind in args.kinds.split(","):
        for p in widths:
            if kind == "sparse":
                rng = np.random.default_rng(p)
                X = sp.random(args.rows, p, density=args.density, format="csr", random_state=rng)
                y = X @ rng.normal(size=p) + rng.normal(size=args.rows)
            else:
                X, y = _standardized(args.rows, p, np.dtype(kind), seed=p)
            stats, passes, _, epochs = _pair(X, y, args.repeats)
            name = f"sparse {args.density:.0%}" if kind == "sparse" else kind
            row = (name, f"{args.rows:,} x {p}", f"{1e3 * stats:,.0f} ms",
                   f"{1e3 * passes:,.0f} ms ({epochs})", f"{stats / passes:.2f}x")  # fmt: skip
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
