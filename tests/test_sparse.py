"""scipy.sparse X: trained through TensorFlow's sparse ops, equal to the dense fit."""

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from skl_tfreg import SGDL2Regressor

FORMATS = ["csr_matrix", "csc_matrix", "coo_matrix", "csr_array", "coo_array"]


def _data(rng, n=300, p=8):
    """Sparse-ish columns of very different scales and offsets, with weights."""
    X = rng.standard_normal((n, p)) * np.logspace(-2, 2, p) + 5.0 * (np.arange(p) == 1)
    X[rng.random(X.shape) < 0.6] = 0.0
    y = X @ rng.standard_normal(p) + 3.0 + 0.1 * rng.standard_normal(n)
    return X, y, rng.random(n)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_sparse_fit_equals_dense_fit_and_ridge(rng, oracle, fmt, fit_intercept):
    X, y, s = _data(rng)
    Xs = getattr(sp, fmt)(X)
    kw = dict(alpha=1e-3, fit_intercept=fit_intercept)
    dense = SGDL2Regressor(**kw).fit(X, y, sample_weight=s)
    sparse = SGDL2Regressor(**kw).fit(Xs, y, sample_weight=s)
    scale = np.abs(dense.coef_).max()
    assert np.abs(sparse.coef_ - dense.coef_).max() <= 1e-12 * scale
    assert abs(sparse.intercept_ - dense.intercept_) <= 1e-11 * (1 + abs(dense.intercept_))
    assert oracle.gap(sparse, X, y, s, fit_intercept) <= 1e-9
    np.testing.assert_allclose(sparse.predict(Xs), dense.predict(X), rtol=1e-11, atol=1e-11)
    assert isinstance(sparse.predict(Xs), np.ndarray) and sparse.predict(Xs).shape == y.shape


@pytest.mark.parametrize("learning_rate", ["auto", "adaptive"])
def test_sparse_minibatches_take_the_dense_steps(rng, learning_rate):
    # Row gathers from the sparse tensor give the same batches as from the dense one.
    X, y, s = _data(rng)
    kw = dict(alpha=1e-3, batch_size=16, max_iter=4, tol=None, random_state=3,
              learning_rate=learning_rate, eta0=0.01)  # fmt: skip
    dense = SGDL2Regressor(**kw).fit(X, y, sample_weight=s)
    sparse = SGDL2Regressor(**kw).fit(sp.csr_matrix(X), y, sample_weight=s)
    assert np.abs(sparse.coef_ - dense.coef_).max() <= 1e-12 * np.abs(dense.coef_).max()
    np.testing.assert_allclose(sparse.loss_curve_, dense.loss_curve_, rtol=1e-12)


def test_sparse_partial_fit_early_stopping_and_float32(rng):
    X, y, s = _data(rng)
    Xs = sp.csc_matrix(X)
    dense, sparse = SGDL2Regressor(), SGDL2Regressor()
    for start in range(0, 300, 100):
        dense.partial_fit(X[start : start + 100], y[start : start + 100])
        sparse.partial_fit(Xs[start : start + 100], y[start : start + 100])
    assert np.abs(sparse.coef_ - dense.coef_).max() <= 1e-11 * np.abs(dense.coef_).max()
    kw = dict(early_stopping=True, random_state=0)
    early = SGDL2Regressor(**kw).fit(sp.coo_matrix(X), y)  # COO rows are taken for the split
    assert np.abs(early.coef_ - SGDL2Regressor(**kw).fit(X, y).coef_).max() <= 1e-10
    X32 = X.astype(np.float32)
    single = SGDL2Regressor().fit(sp.csr_matrix(X32), y)
    ref = SGDL2Regressor().fit(X32, y)
    assert single.coef_.dtype == np.float32
    assert np.abs(single.coef_ - ref.coef_).max() <= 1e-4 * np.abs(ref.coef_).max()


def test_sparse_constant_column_and_explicit_zeros(rng):
    X, y, _ = _data(rng, n=120, p=4)
    X[:, 2] = 7.0  # stored in every row: constant, absorbed by the intercept
    Xs = sp.csr_matrix(X)
    Xs.data[::5] = 0.0  # explicit zeros change nothing
    Xd = Xs.toarray()
    est = SGDL2Regressor(alpha=1e-4).fit(Xs, y)
    dense = SGDL2Regressor(alpha=1e-4).fit(Xd, y).coef_
    assert np.abs(est.coef_ - dense).max() <= 1e-12 * np.abs(dense).max()
    Xc = Xs.copy()
    Xc.data[Xc.indices == 2] = 7.0
    assert SGDL2Regressor(alpha=1e-4).fit(Xc, y).coef_[2] == 0.0


def test_sparse_input_is_not_modified_and_multioutput(rng):
    # Unsorted indices and a duplicated entry: put in canonical form in a copy only.
    X, y, _ = _data(rng, n=80, p=5)
    canonical = sp.csr_matrix(X)
    rows = [slice(a, b) for a, b in zip(canonical.indptr[:-1], canonical.indptr[1:], strict=True)]
    data = np.concatenate([canonical.data[r][::-1] for r in rows] + [[1.5]])
    indices = np.concatenate([canonical.indices[r][::-1] for r in rows] + [[0]])
    indptr = canonical.indptr.copy()
    indptr[-1] += 1  # the last row gets a second entry in column 0
    messy = sp.csr_matrix((data, indices, indptr), shape=X.shape)
    assert not messy.has_canonical_format
    before = (messy.data.copy(), messy.indices.copy(), messy.indptr.copy())
    Y = np.c_[y, -y]
    est = SGDL2Regressor().fit(messy, Y)
    after = (messy.data, messy.indices, messy.indptr)
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    ref = SGDL2Regressor().fit(messy.toarray(), Y)  # toarray sums the duplicate
    assert est.coef_.shape == (2, 5)
    assert np.abs(est.coef_ - ref.coef_).max() <= 1e-12 * np.abs(ref.coef_).max()


def test_sparse_nan_is_scikit_learns_error(rng):
    X, y, _ = _data(rng, n=50, p=3)
    Xs = sp.csr_matrix(X)
    Xs.data[3] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        SGDL2Regressor().fit(Xs, y)


def test_sparse_tag_is_on():
    assert SGDL2Regressor().__sklearn_tags__().input_tags.sparse


_BIG = """
import json, resource, sys, time
import numpy as np, scipy.sparse as sp
from sklearn.linear_model import Ridge
from skl_tfreg import SGDL2Regressor

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

n, p, per_row = 1_000_000, 100_000, 10  # 0.01 % density: 10 million stored values
rng = np.random.default_rng(0)
cols = np.sort(rng.integers(0, p, size=(n, per_row), dtype=np.int32), axis=1).ravel()
indptr = np.arange(0, n * per_row + 1, per_row)
X = sp.csr_matrix((rng.standard_normal(n * per_row), cols, indptr), shape=(n, p))
w = np.zeros(p)
w[:1000] = rng.standard_normal(1000)
y = X @ w + 0.1 * rng.standard_normal(n)
SGDL2Regressor().fit(X[:100], y[:100])  # TensorFlow started and the kernels traced
before = peak()
start = time.perf_counter()
est = SGDL2Regressor(alpha=1e-6, max_iter=200).fit(X, y)
seconds = time.perf_counter() - start
after = peak()
ridge = Ridge(alpha=1e-6 * n, solver="lsqr", tol=1e-12).fit(X, y)

def J(coef, b):
    return np.mean((X @ coef + b - y) ** 2) + 1e-6 * coef @ coef

best = J(ridge.coef_, ridge.intercept_)
print(json.dumps(dict(
    before=before, after=after, seconds=seconds, epochs=est.n_iter_, nnz=X.nnz,
    csr_mib=(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20,
    dense_gib=n * p * 8 / 2**30, gap=(J(est.coef_, est.intercept_) - best) / best,
)))
"""


@pytest.mark.slow  # about 30 s: a 1,000,000 x 100,000 fit and its Ridge oracle
def test_million_by_hundred_thousand_csr_fits_in_a_sliver_of_the_dense_size(tmp_path):
    script = tmp_path / "big.py"
    script.write_text(_BIG)
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, check=True
    )
    out = json.loads(run.stdout.strip().splitlines()[-1])
    print(out)
    assert out["nnz"] == 10_000_000 and out["dense_gib"] > 700
    # The fit's own peak: the sparse tensor (16-byte indices and the values) and
    # the kernels' per-entry temporaries, a few hundred MiB, not the 745 GiB of
    # the dense matrix.
    assert out["after"] - out["before"] < 2048
    assert out["gap"] <= 1e-6 and out["epochs"] < 200


def test_sparse_column_with_a_large_offset_keeps_its_spread(rng):
    # 1e8 + U(0, 1), like a timestamp: var / mean^2 ~ 1e-17, not a constant column
    # (found in review: an eps-sized threshold zeroed it).
    n = 200
    X = np.c_[1e8 + rng.random(n), rng.standard_normal(n)]
    y = 3.0 * (X[:, 0] - 1e8) + X[:, 1]
    dense = SGDL2Regressor(alpha=0.0).fit(X, y)
    sparse = SGDL2Regressor(alpha=0.0).fit(sp.csr_matrix(X), y)
    assert sparse.coef_[0] == pytest.approx(dense.coef_[0], rel=1e-6)
    assert dense.coef_[0] == pytest.approx(3.0, rel=1e-6)
