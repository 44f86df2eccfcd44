"""Start-up: TensorFlow is imported at the first fit, and by nothing that needs no fit."""

import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import skops.io

from skl_tfreg import SGDL2Regressor

TIMEOUT = 300  # seconds for a fresh process that imports TensorFlow

# Everything here must run without TensorFlow; the fit at the end must start it.
_LIGHT_USES = """
import json, pickle, sys, warnings
import joblib, numpy as np, pandas as pd, scipy.sparse as sp, skops.io
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skl_tfreg
from skl_tfreg import SGDL2Regressor
from skl_tfreg._cli import main

X, y = np.load("X.npy"), np.load("y.npy")
warnings.simplefilter("ignore", UserWarning)  # arrays for a model fitted on named columns
est = SGDL2Regressor(alpha=0.1)
est = clone(est).set_params(**{**est.get_params(), "max_iter": 50})
repr(est), clone(make_pipeline(StandardScaler(), est))
models = {
    "pickle": pickle.load(open("m.pkl", "rb")),
    "joblib": joblib.load("m.joblib"),
    "skops": skops.io.load("m.skops", trusted=skops.io.get_untrusted_types(file="m.skops")),
    "save": SGDL2Regressor.load("m.skl"),
}
out = {name: m.predict(X).tolist() for name, m in models.items()}
model = models["save"]
out["float32"] = model.predict(X.astype(np.float32)).tolist()
out["sparse"] = model.predict(sp.csr_matrix(X)).tolist()
out["frame"] = models["pickle"].predict(pd.DataFrame(X, columns=list("abcde"))).tolist()
out["score"] = model.score(X, y)
list(skl_tfreg.iter_batches(len(y), 10))
for argv in (["--version"], ["--help"], ["fit"], ["predict", "m.skl", "missing.csv"]):
    main(argv)
out["light"] = "tensorflow" not in sys.modules
SGDL2Regressor().fit(X, y)
out["fit"] = "tensorflow" in sys.modules
print(json.dumps(out))
"""


def _run_fresh(code, cwd):
    """Run ``code`` in a fresh Python process in ``cwd``; return its stdout (it must succeed)."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True,
        text=True, timeout=TIMEOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


# A fresh process that imports TensorFlow for its last fit: about 9 s each.
@pytest.mark.parametrize("case", ["default", pytest.param("minibatch", marks=pytest.mark.slow)])
def test_light_uses_never_import_tensorflow(tmp_path, case):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    y = X @ rng.normal(size=5) + 1.0
    params = {} if case == "default" else {"batch_size": 16, "max_iter": 5, "tol": None}
    est = SGDL2Regressor(**params).fit(pd.DataFrame(X, columns=list("abcde")), y)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    with open(tmp_path / "m.pkl", "wb") as stream:
        pickle.dump(est, stream)
    joblib.dump(est, tmp_path / "m.joblib")
    est.save(tmp_path / "m.skl")
    skops_est = est
    skops.io.dump(skops_est, tmp_path / "m.skops")
    out = json.loads(_run_fresh(_LIGHT_USES, tmp_path).splitlines()[-1])
    assert out["light"], "TensorFlow was imported by a use that needs no fit"
    assert out["fit"], "a fit ran without TensorFlow"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # an array for named columns
        expected = est.predict(X)
        # Each input as in this process: a frame (column-major) or CSR rounds otherwise.
        frame = est.predict(pd.DataFrame(X, columns=list("abcde")))
        sparse = est.predict(sp.csr_matrix(X))
        skops_expected, score = skops_est.predict(X), est.score(X, y)
    for name in ("pickle", "joblib", "save"):
        np.testing.assert_array_equal(out[name], expected, err_msg=name)
    np.testing.assert_array_equal(out["frame"], frame)
    np.testing.assert_array_equal(out["sparse"], sparse)
    np.testing.assert_array_equal(out["skops"], skops_expected)
    np.testing.assert_allclose(out["float32"], expected, rtol=1e-5, atol=1e-5)
    assert out["score"] == pytest.approx(score, rel=1e-12)


_WITHOUT_DASK = """
import sys
import numpy as np
import skl_tfreg

rng = np.random.default_rng(0)
X, y = rng.normal(size=(200, 4)), rng.normal(size=200)
reg = skl_tfreg.SGDL2Regressor().fit(X, y)
reg.predict(X), reg.score(X, y), reg.partial_fit(X, y)
skl_tfreg.SGDL2Regressor(batch_size=32, average=True, max_iter=2, tol=None).fit(X, y)
cv = skl_tfreg.SGDL2RegressorCV(alphas=[0.1, 1.0]).fit(X, y)
cv.predict(X), cv.score(X, y)
reg.save("m.skl"), skl_tfreg.SGDL2Regressor.load("m.skl").predict(X)
print(sorted(m for m in sys.modules if m == "dask" or m.startswith("dask.")))
"""


def test_dask_is_imported_only_for_dask_input(tmp_path):
    # (skops imports Dask itself: it is left out here.)
    stdout = _run_fresh(_WITHOUT_DASK, tmp_path)
    assert stdout.splitlines()[-1] == "[]", "Dask was imported without Dask input"
