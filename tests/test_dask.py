"""Dask input: statistics summed per partition where the rows are, lazy predictions.

Most tests run Dask's tasks in this process (the synchronous scheduler), which runs
the same tasks as a cluster; the slow ones run them on a LocalCluster of two worker
processes on 127.0.0.1.
"""

import os
import subprocess
import sys
import textwrap

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold

from skl_tfreg import SGDL2Regressor, SGDL2RegressorCV

TIMEOUT = 600  # seconds for a process that starts a cluster of two TensorFlow workers


@pytest.fixture(autouse=True)
def synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def _data(rng, n=3000, p=5, targets=None, dtype=np.float64):
    X = rng.normal(size=(n, p)) * rng.uniform(0.1, 10.0, size=p) + rng.normal(size=p) * 5
    coef = rng.normal(size=(p, targets or 1))
    Y = X @ coef + 2.0 + rng.normal(size=(n, targets or 1))
    return X.astype(dtype), (Y[:, 0] if targets is None else Y).astype(dtype)


def _chunked(X, y, s=None, rows=700):
    arrays = [da.from_array(a, chunks=(rows,) + a.shape[1:]) for a in (X, y)]
    return (*arrays, None if s is None else da.from_array(s, chunks=rows))


# ------------------------------------------------------------------ fit and predict


@pytest.mark.parametrize("kind", ["float64", "float32", "weighted", "2_targets", "no_intercept",
                                  "numpy_y", "other_chunks"])  # fmt: skip
def test_a_dask_array_fits_as_the_arrays_in_memory(rng, oracle, kind):
    dtype = np.float32 if kind == "float32" else np.float64
    X, y = _data(rng, targets=2 if kind == "2_targets" else None, dtype=dtype)
    s = rng.uniform(0.2, 3.0, size=len(X)).astype(dtype) if kind == "weighted" else None
    params = dict(alpha=1e-3, fit_intercept=kind != "no_intercept")
    memory = SGDL2Regressor(**params).fit(X, y, s)
    dX, dy, ds = _chunked(X, y, s)
    if kind == "numpy_y":
        dy = y
    if kind == "other_chunks":  # y in other row chunks, X in column chunks too
        dX, dy = da.from_array(X, chunks=(500, 2)), da.from_array(y, chunks=900)
    reg = SGDL2Regressor(**params).fit(dX, dy, ds)
    assert reg.n_iter_ == 1 and reg.coef_.dtype == dtype and reg.n_features_in_ == 5
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(reg.coef_, memory.coef_, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(reg.intercept_, memory.intercept_, rtol=rtol, atol=rtol)
    if kind in ("float64", "weighted", "no_intercept"):
        assert oracle.gap(reg, X, y, s, fit_intercept=params["fit_intercept"]) <= 1e-9
    lazy = reg.predict(dX)
    assert isinstance(lazy, da.Array) and lazy.shape[0] == len(X)
    assert lazy.dtype == reg.predict(X).dtype
    np.testing.assert_allclose(lazy.compute(), reg.predict(X), rtol=1e-12, atol=1e-12)
    assert not hasattr(reg, "feature_names_in_")


def test_a_dask_dataframe_sets_feature_names_and_predicts_lazily(rng):
    X, y = _data(rng)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d", "e"])
    dX = dd.from_pandas(frame, npartitions=4)
    dy = dd.from_pandas(pd.Series(y, name="target"), npartitions=4)
    reg = SGDL2Regressor(alpha=1e-3).fit(dX, dy)
    memory = SGDL2Regressor(alpha=1e-3).fit(frame, y)
    assert reg.feature_names_in_.tolist() == ["a", "b", "c", "d", "e"]
    np.testing.assert_allclose(reg.coef_, memory.coef_, rtol=1e-10)
    lazy = reg.predict(dX)
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), reg.predict(frame), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="feature names"):
        reg.predict(dX.rename(columns={"a": "z"}))
    # A two-column target DataFrame gives two models, as in memory.
    Y = np.c_[y, X[:, 0] - y]
    dY = dd.from_pandas(pd.DataFrame(Y, columns=["u", "v"]), npartitions=4)
    multi = SGDL2Regressor(alpha=1e-3).fit(dX, dY)
    np.testing.assert_allclose(multi.coef_, SGDL2Regressor(alpha=1e-3).fit(frame, Y).coef_,
                               rtol=1e-10)  # fmt: skip
    assert multi.predict(dX).compute().shape == (len(y), 2)


def test_arrays_of_unknown_chunk_sizes_fit_and_cross_validate(rng):
    # A DataFrame's to_dask_array() does not know its partitions' sizes: the partitions
    # pair up by position, and the CV counts their rows in one light pass.
    X, y = _data(rng, n=900)
    dX = dd.from_pandas(pd.DataFrame(X), npartitions=3).to_dask_array()
    dy = dd.from_pandas(pd.Series(y), npartitions=3).to_dask_array()
    assert np.isnan(dX.chunks[0][0])
    np.testing.assert_allclose(SGDL2Regressor().fit(dX, dy).coef_,
                               SGDL2Regressor().fit(X, y).coef_, rtol=1e-10)  # fmt: skip
    cv = SGDL2RegressorCV(alphas=[1e-3, 1.0]).fit(dX, dy)
    np.testing.assert_allclose(cv.mse_path_,
                               SGDL2RegressorCV(alphas=[1e-3, 1.0]).fit(X, y).mse_path_,
                               rtol=1e-10)  # fmt: skip
    reg = SGDL2Regressor().fit(dX, dy)
    assert reg.score(dX, dy) == pytest.approx(reg.score(X, y), rel=1e-12)
    s = rng.uniform(0.0, 2.0, size=len(y))
    ds = dd.from_pandas(pd.Series(s), npartitions=3).to_dask_array()
    assert reg.score(dX, dy, ds) == pytest.approx(reg.score(X, y, s), rel=1e-12)
    Y = np.c_[y, X[:, 0], np.full(len(y), 3.0)]  # a constant target scores 0 or 1, as there
    dY = dd.from_pandas(pd.DataFrame(Y), npartitions=3).to_dask_array()
    multi = SGDL2Regressor().fit(dX, dY)
    assert multi.score(dX, dY) == pytest.approx(multi.score(X, Y), rel=1e-12)
    with pytest.raises(ValueError, match="unknown sizes and y is a numpy array"):
        SGDL2Regressor().fit(dX, y)


def test_many_partitions_empty_ones_and_weights_as_series(rng):
    # 25 partitions: the reduction tree has two levels of sums; a filter leaves some
    # partitions empty; the weights come as a Dask Series.
    X, y = _data(rng, n=2500)
    s = rng.uniform(0.1, 2.0, size=len(y))
    frame = pd.DataFrame(X, columns=list("abcde")).assign(y=y, s=s)
    frame.loc[:399, "a"] = 1e9  # filtered out below: the first partitions lose every row
    kept = frame[frame["a"] < 1e8]
    dframe = dd.from_pandas(frame, npartitions=25)
    dframe = dframe[dframe["a"] < 1e8]
    dX, dy, ds = dframe[list("abcde")], dframe["y"], dframe["s"]
    assert (dframe.map_partitions(len).compute() == 0).sum() >= 3
    memory = SGDL2Regressor(alpha=1e-3).fit(kept[list("abcde")], kept["y"], kept["s"])
    reg = SGDL2Regressor(alpha=1e-3).fit(dX, dy, ds)
    np.testing.assert_allclose(reg.coef_, memory.coef_, rtol=1e-10)
    assert reg.score(dX, dy, ds) == pytest.approx(
        memory.score(kept[list("abcde")], kept["y"], kept["s"]), rel=1e-10
    )
    cv = SGDL2RegressorCV(alphas=[1e-3, 1.0]).fit(dX, dy, ds)
    expected = SGDL2RegressorCV(alphas=[1e-3, 1.0]).fit(kept[list("abcde")], kept["y"], kept["s"])
    np.testing.assert_allclose(cv.mse_path_, expected.mse_path_, rtol=1e-10)


def test_float32_frames_numpy_weights_and_y_of_unknown_chunks(rng):
    X, y = _data(rng, n=1200, dtype=np.float32)
    frame = pd.DataFrame(X, columns=list("abcde"))
    dX = dd.from_pandas(frame, npartitions=4)
    dy = dd.from_pandas(pd.Series(y), npartitions=4)
    reg = SGDL2Regressor().fit(dX, dy)
    assert reg.coef_.dtype == np.float32 and reg.predict(dX).dtype == np.float32
    np.testing.assert_allclose(reg.coef_, SGDL2Regressor().fit(frame, y).coef_, rtol=1e-4)
    # Known chunks for X, unknown for y: y's rows are counted, then cut like X's.
    s = rng.uniform(0.5, 1.5, size=len(y))
    dX64 = da.from_array(X.astype(np.float64), chunks=300)
    dy_unknown = dd.from_pandas(pd.Series(y.astype(np.float64)), npartitions=3).to_dask_array()
    weighted = SGDL2Regressor().fit(dX64, dy_unknown, s)
    memory = SGDL2Regressor().fit(X.astype(np.float64), y.astype(np.float64), s)
    np.testing.assert_allclose(weighted.coef_, memory.coef_, rtol=1e-10)


def test_a_one_column_y_and_ridges_oracle(rng):
    X, y = _data(rng)
    dX, dy, _ = _chunked(X, y[:, None])
    reg = SGDL2Regressor(alpha=0.0).fit(dX, dy)
    lr = LinearRegression().fit(X, y[:, None])
    assert reg.coef_.shape == lr.coef_.shape == (1, 5)
    np.testing.assert_allclose(reg.coef_, lr.coef_, rtol=1e-9)
    assert reg.predict(dX).compute().shape == (len(y), 1)


# ------------------------------------------------------------------ cross-validation


@pytest.mark.parametrize("cv", [5, KFold(3), "groups"])
def test_cv_on_dask_input_is_the_cv_in_memory(rng, cv):
    X, y = _data(rng, n=2000)
    groups = None
    if cv == "groups":
        cv, groups = GroupKFold(4), rng.integers(0, 12, size=len(y))
    alphas = [1e-4, 1e-2, 1.0, 100.0]
    memory = SGDL2RegressorCV(alphas=alphas, cv=cv).fit(X, y, groups=groups)
    dX, dy, _ = _chunked(X, y, rows=333)
    reg = SGDL2RegressorCV(alphas=alphas, cv=cv).fit(dX, dy, groups=groups)
    np.testing.assert_allclose(reg.mse_path_, memory.mse_path_, rtol=1e-10)
    assert reg.alpha_ == memory.alpha_
    np.testing.assert_allclose(reg.coef_, memory.coef_, rtol=1e-10)
    ridge = Ridge(alpha=reg.alpha_ * len(y)).fit(X, y)
    np.testing.assert_allclose(reg.coef_, ridge.coef_, rtol=1e-8)


def test_cv_per_target_on_a_dask_dataframe(rng):
    X, Y = _data(rng, n=2000, targets=2)
    Y[:, 1] = X[:, 0] + 30.0 * rng.normal(size=len(Y))  # a noisier target: a larger alpha
    frame = pd.DataFrame(X, columns=list("abcde"))
    dX = dd.from_pandas(frame, npartitions=3)
    dY = dd.from_pandas(pd.DataFrame(Y, columns=["u", "v"]), npartitions=3)
    params = dict(alphas=[1e-4, 1.0, 1e4], alpha_per_target=True)
    memory = SGDL2RegressorCV(**params).fit(frame, Y)
    reg = SGDL2RegressorCV(**params).fit(dX, dY)
    np.testing.assert_allclose(reg.mse_path_, memory.mse_path_, rtol=1e-10)
    np.testing.assert_array_equal(reg.alpha_, memory.alpha_)
    np.testing.assert_allclose(reg.coef_, memory.coef_, rtol=1e-10)
    assert reg.feature_names_in_.tolist() == list("abcde")


def test_cv_refuses_a_splitter_that_needs_y(rng):
    X, y = _data(rng, n=300)
    dX, dy, _ = _chunked(X, y, rows=100)
    with pytest.raises(ValueError, match="without y .* use an int, KFold or GroupKFold"):
        SGDL2RegressorCV(cv=StratifiedKFold(3)).fit(dX, dy)


# ------------------------------------------------------------------ errors


def _partitioned(X, y, s=None):
    return _chunked(X, y, s, rows=100)  # partitions 0..k of 100 rows


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda X, y, s: X.__setitem__((250, 1), np.nan), "Partition 2 of X holds NaN"),
        (lambda X, y, s: y.__setitem__(120, np.inf), "Partition 1 of y holds NaN or infinity"),
        (lambda X, y, s: s.__setitem__(310, -1.0), "Partition 3 of sample_weight holds negative"),
        (lambda X, y, s: s.__setitem__(slice(None), 0.0), "sums to zero in every partition"),
    ],
)
@pytest.mark.parametrize("estimator", [SGDL2Regressor, SGDL2RegressorCV])
def test_bad_partitions_are_named(rng, damage, match, estimator):
    X, y = _data(rng, n=400)
    s = np.ones(len(y))
    damage(X, y, s)
    reg = estimator()
    with pytest.raises(ValueError, match=match):
        reg.fit(*_partitioned(X, y, s))
    assert not hasattr(reg, "coef_")


def test_partitions_of_other_lengths_are_named(rng):
    X, y = _data(rng, n=400)
    dX = dd.from_pandas(pd.DataFrame(X, columns=list("abcde")), npartitions=4)
    # The same number of partitions, cut elsewhere: 100 rows of X in partitions 0 and 1,
    # 90 and 110 of y (whichever task runs first names its partition).
    divisions = [0, 90, 200, 300, 399]
    dy = dd.from_pandas(pd.Series(y), npartitions=4).repartition(divisions=divisions)
    assert dX.npartitions == dy.npartitions == 4
    with pytest.raises(ValueError, match=r"Partition (0|1) has 100 rows of X but (90|110) of y"):
        SGDL2Regressor().fit(dX, dy)
    with pytest.raises(ValueError, match="X has 4 partitions but y has 2"):
        SGDL2Regressor().fit(dX, dd.from_pandas(pd.Series(y), npartitions=2))
    with pytest.raises(ValueError, match="y has 300 rows but X has 400"):
        SGDL2Regressor().fit(da.from_array(X, chunks=100), da.from_array(y[:300], chunks=100))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (dict(batch_size=32), "batch_size=32 .mini-batches."),
        (dict(learning_rate="constant"), "learning_rate='constant'"),
        (dict(precompute=False), "precompute=False"),
        (dict(early_stopping=True), "early_stopping=True"),
    ],
)
def test_settings_that_need_the_rows_are_refused(rng, params, match):
    X, y = _data(rng, n=300)
    with pytest.raises(ValueError, match=match):
        SGDL2Regressor(**params).fit(*_partitioned(X, y))


def test_a_refused_setting_keeps_the_fitted_model(rng):
    X, y = _data(rng, n=300)
    reg = SGDL2Regressor().fit(X, y)
    coef = reg.coef_.copy()
    for params, match in ((dict(average=True), "average=True"),
                          (dict(batch_size=16), "mini-batches")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            reg.set_params(**params).fit(*_partitioned(X, y))
        reg.set_params(average=False, batch_size="auto")
        np.testing.assert_array_equal(reg.coef_, coef)
    with pytest.raises(ValueError, match="coef_init has shape"):
        reg.fit(*_partitioned(X, y), coef_init=np.zeros(3))
    np.testing.assert_array_equal(reg.coef_, coef)
    with pytest.raises(ValueError, match="intercept_init was given but fit_intercept=False"):
        SGDL2Regressor(fit_intercept=False).fit(*_partitioned(X, y), intercept_init=1.0)


def test_only_dask_arrays_and_frames_are_dask_input(rng):
    from skl_tfreg._dask_input import is_dask

    X, y = _data(rng, n=50)
    assert is_dask(da.from_array(X)) and is_dask(dd.from_pandas(pd.Series(y), npartitions=1))
    assert not is_dask(dask.delayed(X)) and not is_dask(X)


def test_other_uses_of_dask_input_are_refused(rng):
    X, y = _data(rng, n=300)
    dX, dy, _ = _partitioned(X, y)
    with pytest.raises(ValueError, match="partial_fit trains one epoch on a chunk held in memory"):
        SGDL2Regressor().partial_fit(dX, dy)
    with pytest.raises(ValueError, match="y or sample_weight is a Dask collection but X is not"):
        SGDL2Regressor().fit(X, dy)
    with pytest.raises(ValueError, match="X must be numeric"):
        frame = pd.DataFrame({"a": X[:, 0], "b": ["x"] * len(y)})
        SGDL2Regressor().fit(
            dd.from_pandas(frame, npartitions=2), dd.from_pandas(pd.Series(y), npartitions=2)
        )
    reg = SGDL2Regressor().fit(dX, dy)
    with pytest.raises(ValueError, match="expects 5 features"):
        reg.predict(dX[:, :4])
    with pytest.raises(ValueError, match="must be positive and finite"):
        SGDL2Regressor().fit(dX, dy, np.inf)
    named = SGDL2Regressor().fit(dd.from_pandas(pd.DataFrame(X).rename(columns=str),
                                                npartitions=2), dy.rechunk(150))  # fmt: skip
    with pytest.raises(ValueError, match="feature names should match"):
        named.predict(dd.from_pandas(pd.DataFrame(X), npartitions=2))  # int column names
    with pytest.raises(ValueError, match="0 features"):
        SGDL2Regressor().fit(dd.from_pandas(pd.DataFrame(index=range(len(y))), npartitions=2),
                             dd.from_pandas(pd.Series(y), npartitions=2))  # fmt: skip


_PREDICT_WITHOUT_TENSORFLOW = """
import sys
import numpy as np, dask, dask.array as da
from skl_tfreg import SGDL2Regressor

dask.config.set(scheduler="synchronous")
reg = SGDL2Regressor.load("m.skl")
X, y = da.from_array(np.load("X.npy"), chunks=50), da.from_array(np.load("y.npy"), chunks=50)
np.save("p.npy", reg.predict(X).compute())
print(reg.score(X, y), "tensorflow" in sys.modules)
"""


def test_dask_predict_and_score_need_no_tensorflow(rng, tmp_path):
    # Their tasks are numpy only: neither the client nor a worker starts TensorFlow.
    X, y = _data(rng, n=200)
    reg = SGDL2Regressor().fit(X, y)
    reg.save(tmp_path / "m.skl")
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_PREDICT_WITHOUT_TENSORFLOW)], cwd=tmp_path,
        capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    score, loaded_tf = result.stdout.split()
    assert loaded_tf == "False"
    assert float(score) == pytest.approx(reg.score(X, y), rel=1e-12)
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), reg.predict(X), rtol=1e-12)


# ------------------------------------------------------------------ a real cluster

_CLUSTER = """
import json, sys
import numpy as np
import dask, dask.array as da, dask.distributed
from dask.distributed import Client, LocalCluster
from skl_tfreg import SGDL2Regressor, SGDL2RegressorCV

if __name__ == "__main__":
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        rng = da.random.default_rng(0)
        X = rng.normal(size=(40_000, 6), chunks=(5_000, 6)) * [1, 10, 0.1, 1, 1, 3] + 2.0
        y = X @ np.arange(1.0, 7.0) + rng.normal(size=40_000, chunks=5_000)
        X, y = client.persist([X, y])
        dask.distributed.wait([X, y])
        client.rebalance([X, y])  # both workers hold partitions
        held = client.run(lambda dask_worker: len(dask_worker.data))
        with dask.distributed.get_task_stream() as stream:
            reg = SGDL2Regressor(alpha=1e-3).fit(X, y)
        def name(key):
            return (key[0] if isinstance(key, tuple) else key).split("-")[0]

        ran = {(name(t["key"]), t["worker"]) for t in stream.data}
        cv = SGDL2RegressorCV(alphas=[1e-4, 1e-2, 1.0]).fit(X, y)
        prediction = reg.predict(X)
        out = {
            "coef": reg.coef_.tolist(), "intercept": float(reg.intercept_),
            "cv_mse": cv.mse_path_.tolist(), "cv_alpha": cv.alpha_,
            "lazy": type(prediction).__name__, "prediction": prediction[:5].compute().tolist(),
            "workers_held": sorted(held.values()),
            "statistics_on": len({w for name, w in ran if name == "_statistics_task"}),
            "checks_on": len({w for name, w in ran if name == "_check_task"}),
            "workers_tf": sorted(client.run(lambda: "tensorflow" in sys.modules).values()),
        }
        Xn, yn = dask.compute(X, y)
        np.save("X.npy", Xn)
        np.save("y.npy", yn)
        print(json.dumps(out))
"""


@pytest.mark.slow  # a cluster of two worker processes, each importing TensorFlow: ~40 s
def test_a_local_cluster_of_worker_processes_fits_where_the_rows_are(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CLUSTER)], cwd=tmp_path, capture_output=True,
        text=True, timeout=TIMEOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    out = json.loads(result.stdout.splitlines()[-1])
    X, y = np.load(tmp_path / "X.npy"), np.load(tmp_path / "y.npy")
    memory = SGDL2Regressor(alpha=1e-3).fit(X, y)
    np.testing.assert_allclose(out["coef"], memory.coef_, rtol=1e-10)
    np.testing.assert_allclose(out["intercept"], memory.intercept_, rtol=1e-10)
    cv = SGDL2RegressorCV(alphas=[1e-4, 1e-2, 1.0]).fit(X, y)
    np.testing.assert_allclose(out["cv_mse"], cv.mse_path_, rtol=1e-10)
    assert out["cv_alpha"] == cv.alpha_
    assert out["lazy"] == "Array"
    np.testing.assert_allclose(out["prediction"], memory.predict(X[:5]), rtol=1e-12)
    assert all(n > 0 for n in out["workers_held"])  # both workers hold partitions
    assert out["workers_tf"] == [True, True]  # TensorFlow is loaded on both
    assert out["statistics_on"] == out["checks_on"] == 2  # the kernels' tasks ran on both
