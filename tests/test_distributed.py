"""Data-parallel fits under tf.distribute strategies, and searches on a Dask cluster.

The multi-process tests run their workers on 127.0.0.1 only, each under a timeout,
and always kill what they started.
"""

import json
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from skl_tfreg import SGDL2Regressor


def _data(n=4000, p=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) * np.logspace(-2, 2, p) + 1e3 * (np.arange(p) == p - 1)
    y = X @ rng.standard_normal(p) + 3.0 + 0.1 * rng.standard_normal(n)
    return X, y, rng.random(n)


def _free_ports(k):
    sockets = [socket.socket() for _ in range(k)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run_all(scripts, timeout):
    """Run the scripts as processes side by side; return (returncode, stdout, stderr) each.

    Every process is killed once ``timeout`` seconds have passed, whatever happens.
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", s], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )  # fmt: skip
        for s in scripts
    ]
    deadline = time.monotonic() + timeout
    try:
        out = []
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=max(deadline - time.monotonic(), 1))
            out.append((proc.returncode, stdout, stderr))
        return out
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def _last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def test_one_device_strategy_is_the_plain_fit():
    X, y, s = _data(n=500)
    plain = SGDL2Regressor(alpha=1e-3).fit(X, y, sample_weight=s)
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        est = SGDL2Regressor(alpha=1e-3).fit(X, y, sample_weight=s)
    assert est.n_iter_ == plain.n_iter_
    assert np.abs(est.coef_ - plain.coef_).max() <= 1e-12 * np.abs(plain.coef_).max()


def test_a_strategy_it_cannot_use_is_named():
    X, y, _ = _data(n=50)
    strategy = tf.distribute.experimental.CentralStorageStrategy()
    with strategy.scope(), pytest.raises(ValueError, match="cannot train under CentralStorage"):
        SGDL2Regressor().fit(X, y)
    with tf.distribute.OneDeviceStrategy("/gpu:99").scope():  # no machine has 100 GPUs
        with pytest.raises(ValueError, match="places a replica on .*GPU:99"):
            SGDL2Regressor().fit(X, y)
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        with pytest.raises(ValueError, match="Mini-batches cannot train under OneDevice"):
            SGDL2Regressor(batch_size=10).fit(X, y)
        with pytest.raises(ValueError, match="early_stopping=True .* not supported"):
            SGDL2Regressor(early_stopping=True).fit(X, y)


# A process whose CPU is two logical devices (set before TensorFlow starts), and a
# MirroredStrategy over them.
_TWO_DEVICES = """
import json, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, scipy.sparse as sp, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
devices = [d.name for d in tf.config.list_logical_devices("CPU")]
rng = np.random.default_rng(0)
"""

_MIRRORED = (
    _TWO_DEVICES
    + """
from skl_tfreg import SGDL2Regressor
n = 3000
X = rng.standard_normal((n, 6)) * np.logspace(-2, 2, 6) + 1e3 * (np.arange(6) == 5)
y = X @ rng.standard_normal(6) + 3 + 0.1 * rng.standard_normal(n)
s = rng.random(n)
plain = SGDL2Regressor(alpha=1e-3).fit(X, y, sample_weight=s)
strategy = tf.distribute.MirroredStrategy(devices)

def batches():
    return ((X[i:i + 400], y[i:i + 400], s[i:i + 400]) for i in range(0, n, 400))

with strategy.scope():
    fits = {
        "fit": SGDL2Regressor(alpha=1e-3).fit(X, y, sample_weight=s),
        "fit_stream": SGDL2Regressor(alpha=1e-3).fit_stream(batches),
        "sparse": SGDL2Regressor(alpha=1e-3).fit(sp.csr_matrix(X), y, sample_weight=s),
    }
    chunked = SGDL2Regressor(alpha=1e-3)
    for i in range(0, n, 1000):
        chunked.partial_fit(X[i:i + 1000], y[i:i + 1000], sample_weight=s[i:i + 1000])
reference = SGDL2Regressor(alpha=1e-3)
for i in range(0, n, 1000):
    reference.partial_fit(X[i:i + 1000], y[i:i + 1000], sample_weight=s[i:i + 1000])
scale = np.abs(plain.coef_).max()
out = {k: [float(np.abs(e.coef_ - plain.coef_).max() / scale), e.n_iter_] for k, e in fits.items()}
out["partial_fit"] = [float(np.abs(chunked.coef_ - reference.coef_).max() / scale), 0]
# A constant column with alpha = 0, dense and sparse with weights: the global mean's
# rounding must not give it a spread (found in review).
Xc = X.copy()
Xc[:, 2] = 0.1
constant = {}
for name, data in (("dense", Xc), ("sparse", sp.csr_matrix(Xc))):
    one = SGDL2Regressor(alpha=0.0).fit(data, y, sample_weight=s)
    with strategy.scope():
        two = SGDL2Regressor(alpha=0.0).fit(data, y, sample_weight=s)
    constant[name] = [float(np.abs(two.coef_ - one.coef_).max()), float(two.coef_[2]),
                      float(abs(two.intercept_ - one.intercept_))]
out["constant"] = constant
out["replicas"] = strategy.num_replicas_in_sync
out["plain_epochs"] = plain.n_iter_
print(json.dumps(out))
"""
)


@pytest.mark.slow  # a fresh process with two logical CPU devices: about 10 s
def test_mirrored_strategy_splits_the_rows_over_two_devices():
    ((code, stdout, stderr),) = _run_all([_MIRRORED], timeout=300)
    assert code == 0, stderr[-2000:]
    out = _last_json(stdout)
    assert out["replicas"] == 2
    for name in ("fit", "fit_stream", "sparse"):
        difference, epochs = out[name]
        assert difference <= 1e-12 and epochs == out["plain_epochs"], (name, out)
    assert out["partial_fit"][0] <= 1e-12
    for name, (difference, coef, intercept) in out["constant"].items():
        assert difference <= 1e-10 and coef == 0.0 and intercept <= 1e-10, (name, out)


_MIRRORED_CV = (
    _TWO_DEVICES
    + """
from skl_tfreg import SGDL2RegressorCV, _distributed
n = 2000
X = rng.standard_normal((n, 5)) * np.logspace(-1, 1, 5) + 3.0
y = X @ rng.standard_normal(5) + 1.0 + rng.standard_normal(n)
s = rng.random(n)
alphas = [1e-4, 1e-2, 1.0]
plain = SGDL2RegressorCV(alphas=alphas).fit(X, y, sample_weight=s)
calls = []
all_reduce = _distributed.Replicas.all_reduce
def counting(self, parts, failed=False):
    calls.append(1)
    return all_reduce(self, parts, failed)
_distributed.Replicas.all_reduce = counting
strategy = tf.distribute.MirroredStrategy(devices)
with strategy.scope():
    two = SGDL2RegressorCV(alphas=alphas).fit(X, y, sample_weight=s)
out = dict(
    mse=float(np.abs(two.mse_path_ / plain.mse_path_ - 1).max()),
    coef=float(np.abs(two.coef_ - plain.coef_).max() / np.abs(plain.coef_).max()),
    alpha=[two.alpha_, plain.alpha_], all_reduces=len(calls), epochs=two.n_iter_,
    replicas=strategy.num_replicas_in_sync,
)
print(json.dumps(out))
"""
)


@pytest.mark.slow  # a fresh process with two logical CPU devices: about 10 s
def test_cross_validation_under_a_strategy_all_reduces_the_folds_together():
    ((code, stdout, stderr),) = _run_all([_MIRRORED_CV], timeout=300)
    assert code == 0, stderr[-2000:]
    out = _last_json(stdout)
    assert out["replicas"] == 2 and out["alpha"][0] == out["alpha"][1]
    assert out["mse"] <= 1e-10 and out["coef"] <= 1e-10, out
    # One all-reduce for the folds' means, one for their statistics, one per checking pass.
    assert out["all_reduces"] == 2 + out["epochs"], out


_WORKER = """
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
index, ports, mode = {index}, {ports}, {mode!r}
os.environ["TF_CONFIG"] = json.dumps({{
    "cluster": {{"worker": [f"127.0.0.1:{{p}}" for p in ports]}},
    "task": {{"type": "worker", "index": index}},
}})
import numpy as np, tensorflow as tf
from skl_tfreg import SGDL2Regressor
options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=10)
strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
rng = np.random.default_rng(0)
n = 4000
X = rng.standard_normal((n, 6)) * np.logspace(-2, 2, 6) + 1e3 * (np.arange(6) == 5)
y = X @ rng.standard_normal(6) + 3 + 0.1 * rng.standard_normal(n)
s = rng.random(n)
share = n // len(ports)
mine = slice(index * share, (index + 1) * share)  # this worker's rows only
Xm, ym, sm = X[mine], y[mine], s[mine]
alpha = 1e-3
if mode == "dies" and index == 1:
    os._exit(3)
if mode == "other_shape" and index > 0:
    Xm = Xm[:, : 6 - index]  # 6, 5, 4 features
if mode == "alpha_differs" and index == 1:
    alpha = 1e-2
if mode == "nan" and index == 1:
    Xm = Xm.copy()
    Xm[7, 2] = np.nan
if mode == "zero_weights" and index == 1:
    sm = np.zeros_like(sm)
passes = []

def batches():
    passes.append(1)
    # The second pass checks the statistics' solution: the last one of a fit.
    if mode == "dies_mid_fit" and index == 1 and len(passes) == 2:
        os._exit(3)
    changed = mode == "changes_rows" and index == 1 and len(passes) == 2
    rows = len(ym) - 250 if changed else len(ym)  # a batch fewer on the second pass
    return ((Xm[i:i + 250], ym[i:i + 250], sm[i:i + 250]) for i in range(0, rows, 250))

start = time.monotonic()
try:
    with strategy.scope():
        est = SGDL2Regressor(alpha=alpha)
        if mode in ("fit_stream", "dies_mid_fit", "changes_rows"):
            est.fit_stream(batches)
        else:
            est.fit(Xm, ym, sample_weight=sm)
except Exception as err:
    print(json.dumps({{"error": type(err).__name__, "message": str(err),
                      "seconds": time.monotonic() - start}}))
    sys.exit(0)
print(json.dumps({{"coef": est.coef_.tolist(), "intercept": float(est.intercept_),
                  "epochs": est.n_iter_, "seconds": time.monotonic() - start}}))
"""


def _workers(mode, k=2):
    ports = _free_ports(k)
    return [_WORKER.format(index=i, ports=ports, mode=mode) for i in range(k)]


@pytest.mark.slow  # two worker processes on 127.0.0.1: about 15 s
@pytest.mark.parametrize("mode", ["fit", "fit_stream"])
def test_two_workers_each_with_half_the_rows_end_with_the_fit_of_all_rows(mode, oracle):
    results = _run_all(_workers(mode), timeout=240)
    X, y, s = _data()
    plain = SGDL2Regressor(alpha=1e-3).fit(X, y, sample_weight=s)
    for code, stdout, stderr in results:
        assert code == 0, stderr[-2000:]
        out = _last_json(stdout)
        assert "coef" in out, out
        est = SGDL2Regressor(alpha=1e-3)
        est.coef_, est.intercept_ = np.array(out["coef"]), out["intercept"]
        assert np.abs(est.coef_ - plain.coef_).max() <= 1e-11 * np.abs(plain.coef_).max()
        assert out["epochs"] == plain.n_iter_
        assert oracle.gap(est, X, y, s) <= 1e-9
    coefs = [_last_json(stdout)["coef"] for _, stdout, _ in results]
    assert coefs[0] == coefs[1]  # every worker takes the same steps, bit for bit


@pytest.mark.slow  # waits for the collective timeout of 10 s
def test_a_worker_that_dies_is_a_clear_error_within_the_timeout():
    results = _run_all(_workers("dies"), timeout=120)
    out = _last_json(results[0][1])
    assert out["error"] == "RuntimeError", out
    assert "a worker stopped, failed or did not answer within 10 s" in out["message"]
    assert out["seconds"] < 60
    assert results[1][0] == 3  # the worker that died


@pytest.mark.slow  # three worker processes: about 15 s
def test_workers_with_other_features_all_fail_clearly():
    # 6, 5 and 4 features: 5 is their mean, so comparing sums alone would miss it.
    for code, stdout, _ in _run_all(_workers("other_shape", k=3), timeout=180):
        out = _last_json(stdout)
        assert code == 0  # the worker caught the error and reported it
        assert out["error"] == "ValueError" and "disagree on the data" in out["message"], out
        assert out["seconds"] < 8  # at once, not at the 10 s timeout


@pytest.mark.slow  # two worker processes: about 10 s each
@pytest.mark.parametrize(
    "mode, failing, message",
    [
        ("alpha_differs", None, "were given different settings or starting states"),
        ("nan", 1, "Input X contains NaN"),
        ("changes_rows", 1, "needs the same batches at every call"),
    ],
)
def test_a_worker_that_fails_stops_the_others_at_once(mode, failing, message):
    for index, (code, stdout, _) in enumerate(_run_all(_workers(mode), timeout=180)):
        out = _last_json(stdout)
        assert code == 0 and "error" in out, out
        if failing is None or index == failing:
            assert out["error"] == "ValueError" and message in out["message"], out
        else:
            assert out["error"] == "RuntimeError" and "Another worker" in out["message"], out
        assert out["seconds"] < 8  # not the 10 s timeout


@pytest.mark.slow  # waits for the collective timeout of 10 s
def test_a_worker_that_dies_mid_fit_is_a_clear_error_within_the_timeout():
    results = _run_all(_workers("dies_mid_fit"), timeout=120)
    out = _last_json(results[0][1])
    assert out["error"] == "RuntimeError" and "did not answer within 10 s" in out["message"]
    assert out["seconds"] < 60
    assert results[1][0] == 3


@pytest.mark.slow  # two worker processes: about 10 s
def test_a_worker_without_weight_counts_for_nothing(oracle):
    X, y, s = _data()
    s[2000:] = 0.0
    plain = SGDL2Regressor(alpha=1e-3).fit(X, y, sample_weight=s)
    for code, stdout, stderr in _run_all(_workers("zero_weights"), timeout=180):
        assert code == 0, stderr[-2000:]
        out = _last_json(stdout)
        assert np.abs(np.array(out["coef"]) - plain.coef_).max() <= 1e-11, out


_TAKEN_PORT = """
import json, os, socket
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
taken = socket.socket()
taken.bind(("127.0.0.1", 0))
taken.listen()
port = taken.getsockname()[1]
os.environ["TF_CONFIG"] = json.dumps({
    "cluster": {"worker": [f"127.0.0.1:{port}", "127.0.0.1:1"]},
    "task": {"type": "worker", "index": 0},
})
import tensorflow as tf
tf.distribute.MultiWorkerMirroredStrategy()
"""


@pytest.mark.slow  # a fresh process that imports TensorFlow: about 5 s
def test_a_taken_port_fails_at_once():
    # TensorFlow's own error, from the strategy's constructor: before any fit.
    ((code, stdout, stderr),) = _run_all([_TAKEN_PORT], timeout=120)
    assert code != 0 and "Could not start gRPC server" in stderr


_DASK_SEARCH = """
import json, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import joblib, numpy as np
from dask.distributed import Client, LocalCluster
from sklearn.model_selection import GridSearchCV
import skl_tfreg
from skl_tfreg import SGDL2Regressor

rng = np.random.default_rng(0)
X = rng.standard_normal((600, 5))
y = X @ np.arange(1.0, 6.0) + 0.3 * rng.standard_normal(600)
grid = {"alpha": [1e-4, 1e-2, 1.0], "fit_intercept": [True, False]}
local = GridSearchCV(SGDL2Regressor(), grid, cv=3, n_jobs=1).fit(X, y)
with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                  dashboard_address=None) as cluster, Client(cluster) as client:
    capped = client.run(skl_tfreg.limit_tf_threads, 1)  # before TensorFlow starts there
    threads = client.run(lambda: (os.environ["TF_NUM_INTRAOP_THREADS"],
                                  os.environ["TF_NUM_INTEROP_THREADS"]))
    with joblib.parallel_backend("dask"):
        search = GridSearchCV(SGDL2Regressor(), grid, cv=3, n_jobs=-1).fit(X, y)
    workers = len(client.scheduler_info()["workers"])
print(json.dumps({
    "workers": workers, "capped": list(capped.values()), "threads": list(threads.values()),
    "best": [search.best_params_ == local.best_params_],
    "scores": np.abs(search.cv_results_["mean_test_score"]
                     - local.cv_results_["mean_test_score"]).max(),
}))
"""


@pytest.mark.slow  # a local Dask cluster of two worker processes: about 30 s
def test_grid_search_on_a_dask_cluster_equals_the_local_search():
    ((code, stdout, stderr),) = _run_all([textwrap.dedent(_DASK_SEARCH)], timeout=300)
    assert code == 0, stderr[-3000:]
    out = _last_json(stdout)
    assert out["workers"] == 2
    assert out["capped"] == [True, True] and out["threads"] == [["1", "1"], ["1", "1"]]
    assert out["best"] == [True] and out["scores"] <= 1e-12
