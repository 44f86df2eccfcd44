"""fit_stream: data read in batches, one pass per epoch, equal to the in-memory fit."""

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf
from sklearn.exceptions import ConvergenceWarning

from skl_tfreg import SGDL2Regressor


def _data(rng, n=1000, p=6, k=None):
    """Ill-conditioned columns (scales 1e-2..1e2, offsets up to 1e3), weights."""
    X = rng.standard_normal((n, p)) * np.logspace(-2, 2, p) + 1e3 * (np.arange(p) == p - 1)
    coef = rng.standard_normal((p, k) if k else p)
    y = X @ coef + 3.0 + 0.1 * rng.standard_normal((n, k) if k else n)
    return X, y, rng.random(n)


def _source(X, y, s=None, rows=100):
    """The original post's generate_epochs: a function returning each epoch's batches."""

    def epoch():
        for start in range(0, len(y), rows):
            part = slice(start, start + rows)
            yield (X[part], y[part]) if s is None else (X[part], y[part], s[part])

    return epoch


def _close(a, b, rtol):
    return np.abs(np.asarray(a) - b).max() <= rtol * np.abs(b).max()


@pytest.mark.parametrize("rows", [1000, 128, 77, 1])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("precompute", [False, "auto"])
def test_full_batch_stream_is_the_in_memory_fit(rng, oracle, rows, fit_intercept, precompute):
    # Full-batch epochs do not depend on how the rows are cut into batches.
    X, y, s = _data(rng)
    if rows == 1:
        X, y, s = X[:150], y[:150], s[:150]
    kw = dict(alpha=1e-3, fit_intercept=fit_intercept, precompute=precompute)
    memory = SGDL2Regressor(**kw).fit(X, y, sample_weight=s)
    stream = SGDL2Regressor(**kw).fit_stream(_source(X, y, s, rows))
    # The statistics are summed in another order for each batching; without an
    # intercept, where the offset column makes cond(X) = 1e5, that order moves the
    # coefficients by a few 1e-12 (both stay as close to Ridge's).
    rtol = 1e-12 if fit_intercept or not precompute else 1e-11
    assert _close(stream.coef_, memory.coef_, rtol)
    assert abs(stream.intercept_ - memory.intercept_) <= 1e-10 * abs(memory.intercept_)
    assert stream.n_iter_ == memory.n_iter_ and stream.t_ == memory.t_
    # A stream's J follows the quadratic's recursion, in memory J is summed from the
    # residual: they agree to the rounding of the recursion.
    np.testing.assert_allclose(stream.loss_curve_, memory.loss_curve_, rtol=1e-8)
    assert oracle.gap(stream, X, y, s, fit_intercept) <= 1e-9


@pytest.mark.parametrize("learning_rate", ["auto", "constant", "invscaling", "adaptive"])
def test_minibatch_stream_takes_the_in_memory_steps(rng, learning_rate):
    # Batches of batch_size rows in order: the steps of fit with shuffle=False. Batches
    # of twice that are cut in two: the same steps again.
    X, y, s = _data(rng)
    kw = dict(alpha=1e-3, batch_size=32, shuffle=False, max_iter=4, tol=None,
              learning_rate=learning_rate, eta0=0.01)  # fmt: skip
    memory = SGDL2Regressor(**kw).fit(X, y, sample_weight=s)
    for rows in (32, 64):
        stream = SGDL2Regressor(**kw).fit_stream(_source(X, y, s, rows))
        assert _close(stream.coef_, memory.coef_, 1e-12)
        np.testing.assert_allclose(stream.loss_curve_, memory.loss_curve_, rtol=1e-12)
        assert stream.t_ == memory.t_ == 4 * 32


def test_minibatch_stream_stops_by_the_same_rules(rng):
    X, y, s = _data(rng)
    kw = dict(alpha=1e-3, batch_size=50, shuffle=False, max_iter=300, tol=1e-4)
    memory = SGDL2Regressor(**kw).fit(X, y, sample_weight=s)
    stream = SGDL2Regressor(**kw).fit_stream(_source(X, y, s, 50))
    assert stream.n_iter_ == memory.n_iter_ < 300
    assert _close(stream.coef_, memory.coef_, 1e-10)


def test_dataset_source_and_two_part_batches(rng, oracle):
    X, y, _ = _data(rng, k=2)
    dataset = tf.data.Dataset.from_tensor_slices((X, y)).batch(128)
    stream = SGDL2Regressor(alpha=1e-3).fit_stream(dataset)
    memory = SGDL2Regressor(alpha=1e-3).fit(X, y)
    assert stream.coef_.shape == (2, 6) and _close(stream.coef_, memory.coef_, 1e-12)
    weighted = tf.data.Dataset.from_tensor_slices((X, y, np.ones(len(X)))).batch(300)
    assert _close(SGDL2Regressor(alpha=1e-3).fit_stream(weighted).coef_, memory.coef_, 1e-12)


def test_float32_sparse_and_dataframe_batches(rng, oracle):
    pd = pytest.importorskip("pandas")  # pandas is optional; the test extra installs it
    X, y, s = _data(rng, n=400)
    X32 = X.astype(np.float32)
    stream = SGDL2Regressor().fit_stream(_source(X32, y, s))
    memory = SGDL2Regressor().fit(X32, y, sample_weight=s)
    assert stream.coef_.dtype == np.float32
    # Both stop at float32's floor, at the same distance from the float64 optimum.
    assert oracle.gap(stream, X32, y, s) <= 1e-6 and oracle.gap(memory, X32, y, s) <= 1e-6
    sparse = SGDL2Regressor().fit_stream(_source(sp.csr_matrix(X), y, s))
    assert _close(sparse.coef_, SGDL2Regressor().fit(X, y, sample_weight=s).coef_, 1e-12)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    named = SGDL2Regressor().fit_stream(_source(frame, pd.Series(y), s))
    assert named.feature_names_in_.tolist() == list(frame.columns)


def test_feature_names_attribute_of_the_source(rng):
    X, y, _ = _data(rng, n=200)
    source = _source(X, y)
    source.feature_names = np.array(["a", "b", "c", "d", "e", "f"], dtype=object)
    est = SGDL2Regressor().fit_stream(source)
    assert est.feature_names_in_.tolist() == list("abcdef")
    assert est.n_features_in_ == 6


def test_zero_weight_batches_count_for_nothing(rng):
    X, y, s = _data(rng, n=400)
    s[:100] = 0.0  # the whole first batch
    stream = SGDL2Regressor().fit_stream(_source(X, y, s))
    memory = SGDL2Regressor().fit(X[100:], y[100:], sample_weight=s[100:])
    # The same optimum; the statistics are summed in other groups (a 1e-12 difference).
    assert _close(stream.coef_, memory.coef_, 1e-11)


def test_warm_start_max_iter_verbose_and_no_mutation(rng, capsys):
    X, y, s = _data(rng, n=300)
    before = [a.copy() for a in (X, y, s)]
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        est = SGDL2Regressor(max_iter=2, verbose=1, precompute=False).fit_stream(_source(X, y, s))
    assert est.n_iter_ == 2 and capsys.readouterr().out.count("EPOCH") == 2
    est.set_params(warm_start=True, max_iter=100, verbose=0).fit_stream(_source(X, y, s))
    full = SGDL2Regressor().fit(X, y, sample_weight=s)
    assert _close(est.coef_, full.coef_, 1e-10)
    assert all(np.array_equal(a, b) for a, b in zip(before, (X, y, s), strict=True))


def test_bad_sources_are_clear_errors(rng):
    X, y, _ = _data(rng, n=60, p=3)
    generator = (b for b in _source(X, y)())
    with pytest.raises(TypeError, match="pass a function that returns a new iterable"):
        SGDL2Regressor().fit_stream(generator)
    with pytest.raises(TypeError, match="source must be a callable"):
        SGDL2Regressor().fit_stream(42)
    with pytest.raises(ValueError, match=r"Batch 0 of the stream is a 1-tuple"):
        SGDL2Regressor().fit_stream(lambda: [(X,)])
    with pytest.raises(ValueError, match="yielded no batches"):
        SGDL2Regressor().fit_stream(lambda: [])
    with pytest.raises(ValueError, match="positive sum"):
        SGDL2Regressor().fit_stream(lambda: [(X, y, np.zeros(60))])
    with pytest.raises(ValueError, match="X has 2 features, but SGDL2Regressor is expecting 3"):
        SGDL2Regressor().fit_stream(lambda: [(X, y), (X[:, :2], y)])
    with pytest.raises(ValueError, match="Batch 1 of the stream has y of 2 columns"):
        SGDL2Regressor().fit_stream(lambda: [(X, y), (X, np.c_[y, y])])
    bad = X.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        SGDL2Regressor().fit_stream(lambda: [(X, y), (bad, y)])
    with pytest.raises(ValueError, match="early_stopping=True"):
        SGDL2Regressor(early_stopping=True).fit_stream(_source(X, y))
    wide = np.zeros((3, 4096))
    with pytest.raises(ValueError, match="limited to 4095 features"):
        SGDL2Regressor(batch_size=2).fit_stream(lambda: [(wide, np.arange(3.0))])
    est = SGDL2Regressor()
    with pytest.raises(ValueError):
        est.fit_stream(lambda: [(X, y), (X[:, :2], y)])
    assert not hasattr(est, "coef_")  # a failed stream leaves the estimator unfitted


_TWO_GIB = """
import json, resource, time
import numpy as np
from skl_tfreg import SGDL2Regressor

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

p, rows, n_batches = 32, 65_536, 128  # 128 batches of 16 MiB: 2 GiB of float64 X
coef = np.linspace(-1.0, 1.0, p)

def epoch():
    for i in range(n_batches):
        rng = np.random.default_rng(i)  # the same rows at every pass, generated afresh
        X = rng.standard_normal((rows, p))
        yield X, X @ coef + 0.5 + 0.1 * rng.standard_normal(rows)

SGDL2Regressor().fit(np.ones((4, p)) * np.arange(4.0)[:, None], np.arange(4.0))
SGDL2Regressor().fit_stream(lambda: [(np.eye(p), np.ones(p))])  # kernels traced
before = peak()
passes = []

def counted():
    passes.append(1)
    return epoch()

start = time.perf_counter()
est = SGDL2Regressor(alpha=1e-6).fit_stream(counted)
print(json.dumps(dict(
    before=before, after=peak(), seconds=time.perf_counter() - start, epochs=est.n_iter_,
    passes=len(passes), gib_per_pass=rows * n_batches * p * 8 / 2**30,
    error=float(np.abs(est.coef_ - coef).max()), intercept=float(est.intercept_),
)))
"""


@pytest.mark.slow  # two passes over 2 GiB of generated rows: the statistics, one check
def test_two_gib_stream_in_bounded_memory(tmp_path):
    script = tmp_path / "two_gib.py"
    script.write_text(_TWO_GIB)
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=900, check=True
    )
    out = json.loads(run.stdout.strip().splitlines()[-1])
    print(out)
    assert out["gib_per_pass"] >= 2.0 and out["passes"] == 2 and out["epochs"] == 1
    # Importing TensorFlow alone takes about 735 MiB here; what the stream adds on
    # top of that is one batch and its temporaries.
    assert out["after"] - out["before"] < 500
    assert out["error"] < 1e-3 and abs(out["intercept"] - 0.5) < 1e-3


def test_tol_none_full_batch_stream_stops_at_the_floor_like_fit(rng, oracle):
    # Each pass computes the gradient and J from the data: estimates alone would fall
    # below rounding forever and end in an overflow (found in review).
    X, y, s = _data(rng, n=400)
    for dtype in (np.float32, np.float64):
        Xd = X.astype(dtype)
        memory = SGDL2Regressor(tol=None, max_iter=500).fit(Xd, y, sample_weight=s)
        stream = SGDL2Regressor(tol=None, max_iter=500).fit_stream(_source(Xd, y, s))
        # Both stop at the rounding floor (16 and 23 epochs with TensorFlow 2.16 and
        # numpy 1.26, 17 and 18 with 2.21 and 2.4), not at max_iter.
        assert stream.n_iter_ < 100 and memory.n_iter_ < 100
        true_J = oracle.objective(Xd, y, stream.coef_, stream.intercept_, 1e-4, s)
        assert stream.loss_curve_[-1] == pytest.approx(true_J, rel=1e-3)
        assert oracle.gap(stream, Xd, y, s) <= 10 * max(oracle.gap(memory, Xd, y, s), 1e-12)


def test_a_source_must_repeat_its_rows(rng):
    X, y, _ = _data(rng, n=200, p=3)
    calls = []

    def shrinking():
        calls.append(1)
        rows = 200 if len(calls) == 1 else 100  # fewer rows after the first pass
        return iter([(X[:rows], y[:rows])])

    with pytest.raises(ValueError, match="100 rows .* but 200 rows .* same batches"):
        SGDL2Regressor().fit_stream(shrinking)
    generator = iter([(X, y)])
    with pytest.raises(ValueError, match="0 rows .* but 200 rows"):
        SGDL2Regressor().fit_stream(lambda: generator)  # the same, exhausted, iterator


def test_warm_stream_keeps_its_names_when_the_source_fails(rng):
    X, y, _ = _data(rng, n=100, p=3)
    source = _source(X, y)
    source.feature_names = np.array(["a", "b", "c"], dtype=object)
    est = SGDL2Regressor(warm_start=True).fit_stream(source)

    def failing():
        yield X[:50], y[:50]
        raise OSError("disk gone")

    failing.feature_names = source.feature_names
    with pytest.raises(OSError, match="disk gone"):
        est.fit_stream(failing)
    assert est.feature_names_in_.tolist() == ["a", "b", "c"]


def test_a_new_stream_fit_that_fails_leaves_no_names_behind(rng):
    # Without warm_start the old model is gone once the stream is read: its names too.
    X, y, _ = _data(rng, n=100, p=3)
    source = _source(X, y)
    source.feature_names = np.array(["a", "b", "c"], dtype=object)
    est = SGDL2Regressor().fit_stream(source)

    def failing():
        yield X[:50], y[:50]
        raise OSError("disk gone")

    failing.feature_names = np.array(["d", "e", "f"], dtype=object)
    with pytest.raises(OSError, match="disk gone"):
        est.fit_stream(failing)
    assert not hasattr(est, "coef_") and not hasattr(est, "feature_names_in_")


@pytest.mark.parametrize(
    "params, source, error",
    [
        ({"early_stopping": True}, None, ValueError),
        ({}, "a list", TypeError),
    ],
)
def test_a_stream_call_refused_for_its_settings_keeps_the_model(rng, params, source, error):
    X, y, _ = _data(rng, n=100, p=3)
    est = SGDL2Regressor().fit_stream(_source(X, y))
    coef = est.coef_.copy()
    with pytest.raises(error):
        est.set_params(**params).fit_stream(_source(X, y) if source is None else [(X, y)])
    np.testing.assert_array_equal(est.coef_, coef)


def test_warm_stream_checks_its_carried_direction_like_fit(rng):
    # A warm start on new targets: the carried direction may point uphill; fit
    # replaces it by steepest descent before the first step, and so must a stream.
    X, y, s = _data(rng, n=300)
    memory = SGDL2Regressor(warm_start=True, max_iter=3, tol=None).fit(X, y)
    stream = SGDL2Regressor(warm_start=True, max_iter=3, tol=None).fit(X, y)
    memory.set_params(max_iter=100, tol=1e-10).fit(X, -y + X[:, 0])
    stream.set_params(max_iter=100, tol=1e-10).fit_stream(_source(X, -y + X[:, 0]))
    assert stream.n_iter_ == memory.n_iter_
    np.testing.assert_allclose(stream.loss_curve_, memory.loss_curve_, rtol=1e-8)


def test_zero_weight_batches_still_step_in_minibatch_streams(rng):
    # fit takes steps on rows of weight 0 too (the penalty moves the coefficients).
    X, y, s = _data(rng, n=400)
    s[:100] = 0.0
    kw = dict(batch_size=50, shuffle=False, max_iter=3, tol=None, learning_rate="constant")
    memory = SGDL2Regressor(**kw).fit(X, y, sample_weight=s)
    stream = SGDL2Regressor(**kw).fit_stream(_source(X, y, s, rows=50))
    assert stream.t_ == memory.t_ == 24
    assert _close(stream.coef_, memory.coef_, 1e-12)
