"""Median fit times of four cases, in-process, to compare two versions of the package.

Run it alternately against two checkouts, in fresh processes, and compare the
medians of each column (a shared machine is noisy: use several pairs)::

    python benchmarks/fit_times.py                       # the installed package
    PYTHONPATH=/path/to/other/checkout python benchmarks/fit_times.py

Prints one line: the median milliseconds of a default fit on 100 x 5 float64
(200 fits), on 200,000 x 50 float32 (10 fits), of a 5-epoch mini-batch fit
on 2,000 x 20 (20 fits), and of benchmark case 5's search (GridSearchCV, 12
alphas x 5 folds of a scaler pipeline on 20,000 x 20, n_jobs=1; 3 searches).
"""

import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from profile_fit import _median_ms  # noqa: E402  (its first call traces the kernels)
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skl_tfreg import SGDL2Regressor  # noqa: E402


def main():
    """Print the three medians, in milliseconds."""
    rng = np.random.default_rng(0)
    small = rng.normal(size=(100, 5))
    y_small = small @ rng.normal(size=5) + rng.normal(size=100)
    tall = rng.standard_normal((200_000, 50), dtype=np.float32)
    y_tall = (tall @ rng.standard_normal(50)).astype(np.float32)
    mid = rng.normal(size=(2000, 20))
    y_mid = mid @ rng.normal(size=20)
    wide = rng.normal(size=(20_000, 20)) * np.logspace(-2, 2, 20) + 3.0
    y_wide = wide @ (rng.normal(size=20) / np.logspace(-2, 2, 20)) + rng.normal(size=20_000)
    alphas = {"sgdl2regressor__alpha": list(np.logspace(-6, 1, 12))}
    search = GridSearchCV(make_pipeline(StandardScaler(), SGDL2Regressor()), alphas, cv=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        medians = (
            _median_ms(lambda: SGDL2Regressor().fit(small, y_small), 200),
            _median_ms(lambda: SGDL2Regressor(alpha=1e-4).fit(tall, y_tall), 10),
            _median_ms(
                lambda: SGDL2Regressor(batch_size=64, max_iter=5, random_state=0).fit(mid, y_mid),
                20,
            ),
            _median_ms(lambda: search.fit(wide, y_wide), 3),
        )
    print(" ".join(f"{m:.3f}" for m in medians))


if __name__ == "__main__":
    main()
