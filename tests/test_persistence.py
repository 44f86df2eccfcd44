"""Saving, loading and exporting: round trips, continuation, refusals, fresh processes."""

import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.validation import check_is_fitted

from skl_tfreg import SGDL2Regressor, _persistence
from skl_tfreg._state import TrainState

N_FEATURES = 5
TIMEOUT = 300  # seconds for a fresh process (TensorFlow's import alone takes a few)


def _data(dtype=np.float64, targets=None, seed=0, n=100):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES)) * [1.0, 2.0, 0.5, 3.0, 1.0] + [0.0, 1.0, -2.0, 0.0, 5.0]
    coef = rng.normal(size=(N_FEATURES, targets or 1))
    Y = X @ coef + rng.normal(scale=0.1, size=(n, targets or 1)) + 1.5
    return X.astype(dtype), (Y[:, 0] if targets is None else Y).astype(dtype)


def _fitted(case):
    """A fitted estimator and its training data, for a named case."""
    params, dtype, targets = {}, np.float64, None
    if case == "2d":
        targets = 3
    elif case == "no_intercept":
        params = {"fit_intercept": False}
    elif case == "float32":
        dtype = np.float32
    elif case == "float32_2d":
        dtype, targets = np.float32, 2
    elif case == "early_stopping":
        params = {"early_stopping": True, "random_state": 0, "tol": 1e-4, "precompute": False}
    elif case == "minibatch_auto":
        params = {"batch_size": 16, "random_state": 1, "tol": None, "max_iter": 3}
    elif case == "minibatch_adaptive":
        params = {"batch_size": 16, "learning_rate": "adaptive", "eta0": 0.02,
                  "random_state": 2, "n_iter_no_change": 1, "max_iter": 4, "tol": 0.5}  # fmt: skip
    elif case == "averaged":  # the mean of the iterates, and the last iterate beside it
        params = {"batch_size": 16, "random_state": 3, "tol": None, "max_iter": 3,
                  "learning_rate": "constant", "eta0": 0.05, "average": 20}  # fmt: skip
    elif case == "averaged_float32_2d":
        params = {"batch_size": 16, "random_state": 4, "tol": None, "max_iter": 2,
                  "learning_rate": "constant", "eta0": 0.05, "average": True}  # fmt: skip
        dtype, targets = np.float32, 2
    elif case == "stopped_early":  # mid-training: a conjugate direction to continue
        params = {"tol": None, "max_iter": 2, "precompute": False}
    X, y = _data(dtype, targets)
    est = SGDL2Regressor(**params)
    if case == "partial_fit":
        for chunk in np.array_split(np.arange(len(y)), 3):
            est.partial_fit(X[chunk], y[chunk])
    else:
        with warnings.catch_warnings():  # stopped by max_iter on purpose
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
    return est, X, y


CASES = ["1d", "2d", "no_intercept", "float32", "float32_2d", "early_stopping",
         "minibatch_auto", "minibatch_adaptive", "stopped_early", "partial_fit",
         "averaged", "averaged_float32_2d"]  # fmt: skip


def assert_identical(a, b):
    """Equal attributes, of equal types, dtypes and shapes, bit for bit."""
    assert type(a) is type(b)
    assert a.get_params() == b.get_params()
    assert sorted(vars(a)) == sorted(vars(b))
    for name, value in vars(a).items():
        _assert_same_value(value, vars(b)[name], name)


def _assert_same_value(x, y, where):
    assert type(x) is type(y), where
    if isinstance(x, np.ndarray | np.generic):
        assert x.dtype == y.dtype and x.shape == y.shape, where
        if x.dtype == object:
            assert x.tolist() == y.tolist(), where
        else:
            assert x.tobytes() == y.tobytes(), where
    elif isinstance(x, tuple | list):
        assert len(x) == len(y), where
        for i, (u, v) in enumerate(zip(x, y, strict=True)):
            _assert_same_value(u, v, f"{where}[{i}]")
    elif isinstance(x, dict):
        assert list(x) == list(y), where
        for key in x:
            _assert_same_value(key, list(y)[list(x).index(key)], f"{where} key")
            _assert_same_value(x[key], y[key], f"{where}[{key!r}]")
    else:
        assert x == y, where


def _round_trip(est, tmp_path, name="model.skl"):
    path = tmp_path / name
    assert est.save(path) is est
    return SGDL2Regressor.load(path)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("case", CASES)
def test_round_trip_restores_every_attribute(case, tmp_path):
    est, X, y = _fitted(case)
    loaded = _round_trip(est, tmp_path)
    assert_identical(est, loaded)
    assert isinstance(loaded._train_state, TrainState)
    assert np.array_equal(loaded.predict(X), est.predict(X))
    assert loaded.score(X, y) == est.score(X, y)


def test_round_trip_keeps_the_state_that_matters(tmp_path):
    # The cases above hold what they claim to (so the round trips test something).
    est, *_ = _fitted("early_stopping")
    assert est.validation_scores_.dtype == np.float64 and len(est.validation_scores_) > 1
    est, *_ = _fitted("minibatch_adaptive")
    ((key, value),) = est._train_state.steps
    assert key == ("adaptive", 0.02) and value[1] > 0
    loaded = _round_trip(est, tmp_path)
    assert loaded._train_state.steps == ((key, value),)
    est, *_ = _fitted("stopped_early")
    assert est._train_state.direction is not None
    est, *_ = _fitted("float32_2d")
    loaded = _round_trip(est, tmp_path)
    assert loaded.coef_.dtype == np.float32 and loaded.intercept_.shape == (2,)
    assert loaded._train_state.direction[0].dtype == np.float32
    est, *_ = _fitted("1d")
    assert isinstance(_round_trip(est, tmp_path).intercept_, np.float64)
    est, *_ = _fitted("averaged")
    state = est._train_state
    assert state.iterate is not None and 0 < state.n_averaged < est.t_ and state.n_seen == 300
    assert not np.array_equal(state.iterate[0][:, 0], est.coef_)  # the mean is not the iterate
    loaded = _round_trip(est, tmp_path)._train_state
    assert (loaded.n_averaged, loaded.n_seen) == (state.n_averaged, state.n_seen)


def test_dataframe_feature_names_round_trip(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = _data()
    frame = pd.DataFrame(X, columns=["a", "b", "größe", "d d", "e"])
    est = SGDL2Regressor().fit(frame, y)
    loaded = _round_trip(est, tmp_path)
    assert loaded.feature_names_in_.dtype == object
    assert loaded.feature_names_in_.tolist() == ["a", "b", "größe", "d d", "e"]
    assert_identical(est, loaded)
    assert np.array_equal(loaded.predict(frame), est.predict(frame))
    with pytest.raises(ValueError, match="feature names"):
        loaded.predict(frame.rename(columns={"a": "z"}))


# --------------------------------------------------------------------------- continuing


@pytest.mark.parametrize(
    "case",
    [
        "stopped_early",
        "minibatch_auto",
        "minibatch_adaptive",
        "float32_2d",
        "partial_fit",
        "averaged",
        "averaged_float32_2d",
    ],
)
def test_partial_fit_after_load_continues_like_the_original(case, tmp_path):
    est, X, y = _fitted(case)
    loaded = _round_trip(est, tmp_path)
    X2, y2 = X[::2] * 1.1, y[::2]  # another chunk, so the moments and steps move
    for _ in range(2):
        est.partial_fit(X2, y2)
        loaded.partial_fit(X2, y2)
    assert_identical(est, loaded)
    assert not np.array_equal(est.coef_, _fitted(case)[0].coef_)  # training did move


@pytest.mark.parametrize("case", ["stopped_early", "minibatch_auto", "minibatch_adaptive", "2d"])
def test_warm_start_after_load_continues_like_the_original(case, tmp_path):
    est, X, y = _fitted(case)
    loaded = _round_trip(est, tmp_path)
    for model in (est, loaded):
        model.set_params(warm_start=True, max_iter=3, tol=None).fit(X, y)
    assert_identical(est, loaded)
    assert est.t_ > _fitted(case)[0].t_


def test_unfitted_round_trip(tmp_path):
    est = SGDL2Regressor(alpha=0.5, batch_size=8, learning_rate="invscaling", tol=None,
                         random_state=np.int64(7), max_iter=4)  # fmt: skip
    loaded = _round_trip(est, tmp_path)
    with pytest.raises(NotFittedError):
        check_is_fitted(loaded)
    assert loaded.get_params() == {**est.get_params(), "random_state": 7}
    assert type(loaded.get_params()["random_state"]) is int  # numpy ints are stored as ints
    with zipfile.ZipFile(tmp_path / "model.skl") as archive:
        assert archive.namelist() == ["metadata.json", "metadata.json.sha256"]
    X, y = _data()
    assert_identical(est.set_params(random_state=7).fit(X, y), loaded.fit(X, y))


def test_every_param_round_trips(tmp_path):
    params = dict(alpha=0.25, fit_intercept=False, max_iter=17, tol=None, n_iter_no_change=3,
                  batch_size=32, precompute=False, learning_rate="adaptive", eta0=0.125,
                  power_t=0.5,
                  early_stopping=True, validation_fraction=0.2, shuffle=False,
                  random_state=None, warm_start=True, average=7, verbose=2)  # fmt: skip
    est = SGDL2Regressor(**params)
    assert set(params) == set(est.get_params())  # a new parameter: add it here
    loaded = _round_trip(est, tmp_path)
    assert loaded.get_params() == params
    assert {k: type(v) for k, v in loaded.get_params().items()} == {
        k: type(v) for k, v in params.items()
    }


def test_saving_a_loaded_model_writes_the_same_bytes(tmp_path):
    est, *_ = _fitted("minibatch_adaptive")
    est.save(tmp_path / "a.skl")
    SGDL2Regressor.load(tmp_path / "a.skl").save(tmp_path / "b.skl")
    assert (tmp_path / "a.skl").read_bytes() == (tmp_path / "b.skl").read_bytes()


def test_format_layout(tmp_path):
    est, *_ = _fitted("early_stopping")
    est.save(tmp_path / "m.skl")
    with zipfile.ZipFile(tmp_path / "m.skl") as archive:
        names = archive.namelist()
        text = archive.read("metadata.json")
        digest = archive.read("metadata.json.sha256").decode()
        meta = json.loads(text)
        assert names[:2] == ["metadata.json", "metadata.json.sha256"]
        assert digest == f"{hashlib.sha256(text).hexdigest()}  metadata.json\n"
        assert meta["format"] == "skl_tfreg.SGDL2Regressor" and meta["format_version"] == 1
        assert set(meta["written_by"]) == {"skl_tfreg", "numpy", "scikit-learn", "tensorflow",
                                           "python"}  # fmt: skip
        assert meta["class"] == "skl_tfreg._estimator.SGDL2Regressor"
        assert meta["params"] == est.get_params()
        assert meta["fitted"]["n_iter_"] == est.n_iter_
        assert sorted(f"{n}.npy" for n in meta["arrays"]) == sorted(names[2:])
        for entry in meta["arrays"].values():
            data = archive.read(entry["member"])
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
            array = np.load(io.BytesIO(data), allow_pickle=False)
            assert array.dtype.str == entry["dtype"] and list(array.shape) == entry["shape"]
        assert meta["arrays"]["validation_scores_"]["shape"] == [len(est.validation_scores_)]


def test_save_is_atomic_and_leaves_no_temporary_file(tmp_path):
    est, *_ = _fitted("1d")
    path = tmp_path / "m.skl"
    path.write_bytes(b"old")
    est.save(path)
    assert SGDL2Regressor.load(path).coef_.tobytes() == est.coef_.tobytes()
    before = path.read_bytes()
    with pytest.raises(ValueError, match="random_state"):
        SGDL2Regressor(random_state=np.random.RandomState(0)).save(path)
    assert path.read_bytes() == before  # a failed save leaves the old file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.skl"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


# --------------------------------------------------------------------------- refused at save


@pytest.mark.parametrize("state", [np.random.RandomState(0), np.random.default_rng(0)])
def test_random_state_instance_is_refused(state, tmp_path):
    X, y = _data()
    est = SGDL2Regressor(random_state=np.random.RandomState(0)).fit(X, y)
    est.random_state = state  # a Generator is no valid random_state to fit with
    with pytest.raises(ValueError, match=r"random_state is a (RandomState|Generator) instance"):
        est.save(tmp_path / "m.skl")
    assert not (tmp_path / "m.skl").exists()


@pytest.mark.parametrize("value", [object(), (1, 2), {1: 2}, [1, object()], b"bytes", 1j])
def test_non_json_param_is_refused(value, tmp_path):
    est = SGDL2Regressor()
    est.alpha = value  # set_params does not validate; a later version's param might be odd
    with pytest.raises(ValueError, match="parameter alpha=.* is not a JSON value"):
        est.save(tmp_path / "m.skl")


# --------------------------------------------------------------------------- refused at load


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write_zip(path, members):
    """A well-formed zip (fresh CRCs), so only the model's own checks can object."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _with_metadata(members, change, redigest=True):
    """Members with ``change(metadata)`` applied, and the metadata digest recomputed."""
    meta = json.loads(members["metadata.json"])
    change(meta)
    text = json.dumps(meta).encode()
    members = {**members, "metadata.json": text}
    if redigest:
        members["metadata.json.sha256"] = hashlib.sha256(text).hexdigest().encode()
    return members


@pytest.fixture
def saved(tmp_path):
    est, *_ = _fitted("stopped_early")
    est.save(tmp_path / "m.skl")
    return tmp_path / "m.skl"


def _refused(path, match):
    with pytest.raises(ValueError, match=match) as info:
        SGDL2Regressor.load(path)
    assert str(path) in str(info.value)
    assert type(info.value) is ValueError
    return info.value


def test_a_file_from_before_averaging_loads_and_continues(tmp_path):
    # Files written before `average` have no "average" parameter and no counts of rows
    # seen or iterates averaged: they load as a model that did not average, and a
    # mini-batch partial_fit continues them as before.
    def older(meta):
        del meta["params"]["average"]
        for name in ("n_averaged", "n_seen"):
            del meta["fitted"]["train_state"][name]

    saved = tmp_path / "m.skl"
    _fitted("minibatch_adaptive")[0].save(saved)
    current = SGDL2Regressor.load(saved)
    _write_zip(tmp_path / "old.skl", _with_metadata(_members(saved), older))
    old = SGDL2Regressor.load(tmp_path / "old.skl")
    assert old.average is False and old._train_state.n_seen == 0
    assert old._train_state.iterate is None and old._train_state.n_averaged == 0
    np.testing.assert_array_equal(old.coef_, current.coef_)
    X, y = _data(seed=1, n=40)
    np.testing.assert_array_equal(old.partial_fit(X, y).coef_, current.partial_fit(X, y).coef_)


def test_flipped_byte_in_an_array_is_a_digest_mismatch(saved):
    members = _members(saved)
    data = bytearray(members["coef_.npy"])
    data[-3] ^= 0x01  # a low bit of the last coefficient
    _write_zip(saved, {**members, "coef_.npy": bytes(data)})
    _refused(saved, "modified or corrupted: digest mismatch for coef_")


def test_flipped_byte_in_a_state_array_is_a_digest_mismatch(saved):
    members = _members(saved)
    data = bytearray(members["_train_state.moments.x_mean.npy"])
    data[-1] ^= 0x80
    _write_zip(saved, {**members, "_train_state.moments.x_mean.npy": bytes(data)})
    _refused(saved, r"digest mismatch for _train_state\.moments\.x_mean")


def test_changed_metadata_is_a_digest_mismatch(saved):
    members = _members(saved)
    text = members["metadata.json"].replace(b'"max_iter": 2', b'"max_iter": 3')
    assert text != members["metadata.json"]
    _write_zip(saved, {**members, "metadata.json": text})
    _refused(saved, "modified or corrupted: digest mismatch for metadata.json")


def test_changed_metadata_digest_is_a_mismatch(saved):
    members = _members(saved)
    _write_zip(saved, {**members, "metadata.json.sha256": b"0" * 64})
    _refused(saved, "digest mismatch for metadata.json")


@pytest.mark.parametrize(
    "stride",
    [13, pytest.param(1, marks=pytest.mark.slow)],  # every byte: about 6 s
)
def test_flipped_bytes_are_refused_or_harmless(saved, stride):
    # Flip bytes of the raw file in turn. A zip field that holds no content (a
    # timestamp, the local header's copy of a size or CRC) may change unnoticed, but
    # then the model loads the very same; anything else is a clear ValueError, never
    # a zipfile, zlib, json or numpy traceback.
    original = SGDL2Regressor.load(saved)
    raw = saved.read_bytes()
    offsets = range(0, len(raw), stride)
    loaded = 0
    for offset in offsets:
        damaged = bytearray(raw)
        damaged[offset] ^= 0x10
        saved.write_bytes(bytes(damaged))
        try:
            est = SGDL2Regressor.load(saved)
        except ValueError as err:
            assert type(err) is ValueError and str(saved) in str(err)
        else:
            loaded += 1
            assert_identical(est, original)
    assert loaded < len(offsets) / 5  # about 14% of this small file's bytes are such fields


@pytest.mark.parametrize("fraction", [0.5, 0.1, 0.9, 0.999])
def test_truncated_file_is_refused(saved, fraction):
    raw = saved.read_bytes()
    saved.write_bytes(raw[: int(len(raw) * fraction)])
    _refused(saved, "truncated or damaged")


def test_missing_member_is_refused(saved):
    members = _members(saved)
    del members["loss_curve_.npy"]
    _write_zip(saved, members)
    _refused(saved, r"truncated or damaged: missing members loss_curve_\.npy")


def test_extra_member_is_refused(saved):
    _write_zip(saved, {**_members(saved), "payload.pkl": pickle.dumps(1)})
    _refused(saved, "unexpected members payload.pkl")


def test_newer_format_version_is_refused(saved):
    _write_zip(saved, _with_metadata(_members(saved), lambda m: m.update(format_version=2)))
    _refused(saved, "written by a newer format version 2 .* up to 1")


def test_other_package_versions_load(saved):
    def older(meta):
        meta["written_by"] = {k: "0.0.1" for k in meta["written_by"]}

    _write_zip(saved, _with_metadata(_members(saved), older))
    assert SGDL2Regressor.load(saved).n_features_in_ == N_FEATURES


def test_object_dtype_is_refused(saved):
    # A forger who rewrites an array and every digest still cannot get a pickle read.
    members = _members(saved)
    buffer = io.BytesIO()
    np.save(buffer, np.array([print, None], dtype=object), allow_pickle=True)
    data = buffer.getvalue()

    def forge(dtype):
        def change(meta):
            meta["arrays"]["coef_"].update(dtype=dtype, shape=[2],
                                           sha256=hashlib.sha256(data).hexdigest())  # fmt: skip

        return change

    _write_zip(saved, _with_metadata({**members, "coef_.npy": data}, forge("|O")))
    _refused(saved, "refused dtype '|O' of coef_")
    _write_zip(saved, _with_metadata({**members, "coef_.npy": data}, forge("<f8")))
    _refused(saved, r"coef_\.npy is not a valid \.npy file")


def test_inconsistent_shapes_are_refused(saved):
    members = _members(saved)
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(N_FEATURES - 1))
    data = buffer.getvalue()

    def change(meta):
        meta["arrays"]["coef_"].update(shape=[N_FEATURES - 1],
                                       sha256=hashlib.sha256(data).hexdigest())  # fmt: skip

    _write_zip(saved, _with_metadata({**members, "coef_.npy": data}, change))
    _refused(saved, "coef_ does not fit a model of 5 features")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda st: st.update(n_averaged=10**6), "_train_state.n_averaged does not fit"),
        (lambda st: st.update(n_seen=2**60), r"malformed metadata: n_seen=\d+"),
        (lambda st: st.update(n_averaged=-1), "malformed metadata: n_averaged=-1"),
        (lambda st: st.update(n_seen=1.5), r"malformed metadata: n_seen=1\.5"),
    ],
)
def test_forged_averaging_counts_are_refused(tmp_path, change, match):
    saved = tmp_path / "m.skl"
    _fitted("averaged")[0].save(saved)
    _write_zip(saved, _with_metadata(_members(saved),
                                     lambda m: change(m["fitted"]["train_state"])))  # fmt: skip
    _refused(saved, match)


def test_an_iterate_of_another_shape_or_half_of_one_is_refused(tmp_path):
    saved = tmp_path / "m.skl"
    _fitted("averaged")[0].save(saved)
    members = _members(saved)
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((N_FEATURES - 1, 1)))
    data = buffer.getvalue()

    def change(meta):
        meta["arrays"]["_train_state.iterate.coef"].update(
            shape=[N_FEATURES - 1, 1], sha256=hashlib.sha256(data).hexdigest()
        )

    _write_zip(saved, _with_metadata({**members, "_train_state.iterate.coef.npy": data}, change))
    _refused(saved, "_train_state.iterate does not fit a model of 5 features")
    del members["_train_state.iterate.intercept.npy"]
    _write_zip(
        saved, _with_metadata(members, lambda m: m["arrays"].pop("_train_state.iterate.intercept"))
    )
    _refused(saved, "malformed metadata: fitted state")


def test_array_unlike_its_manifest_is_refused(saved):
    members = _members(saved)
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(N_FEATURES, np.float32))
    data = buffer.getvalue()

    def change(meta):
        meta["arrays"]["coef_"]["sha256"] = hashlib.sha256(data).hexdigest()

    _write_zip(saved, _with_metadata({**members, "coef_.npy": data}, change))
    _refused(saved, "coef_ is <f4 of shape .* the manifest says <f8")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda m: m["params"].update(alpha=-1.0), "invalid parameters: .*alpha"),
        (lambda m: m["params"].update(new_param=1), "parameters new_param are unknown"),
        (lambda m: m.update(format="other.Model"), "not a skl_tfreg model file: format"),
        (lambda m: m["fitted"].update(n_iter_=-1), r"malformed metadata: n_iter_=-1"),
        (lambda m: m["fitted"].pop("t_"), "malformed metadata: fitted state"),
        (lambda m: m.update(arrays=[]), "malformed metadata: no array manifest"),
        (lambda m: m["arrays"]["coef_"].update(shape="5"), "manifest entry of coef_"),
    ],
)
def test_forged_metadata_is_refused(saved, change, match):
    _write_zip(saved, _with_metadata(_members(saved), change))
    _refused(saved, match)


@pytest.mark.parametrize("text", [b"[" * 100_000, b"\xff\xfe not utf-8", b'{"format": 1'])
def test_metadata_that_is_no_json_is_refused(saved, text):
    members = {**_members(saved), "metadata.json": text}
    members["metadata.json.sha256"] = hashlib.sha256(text).hexdigest().encode()
    _write_zip(saved, members)
    _refused(saved, "metadata.json is not valid JSON")


def test_npz_is_a_foreign_archive(tmp_path):
    path = tmp_path / "arrays.npz"
    np.savez(path, coef_=np.ones(3), intercept_=np.zeros(()))
    _refused(path, r"foreign archive: an \.npz of arrays .* that is not a skl_tfreg model")


def test_other_zip_is_a_foreign_archive(tmp_path):
    path = tmp_path / "other.zip"
    _write_zip(path, {"readme.txt": b"hello", "data/x.csv": b"1,2"})
    _refused(path, r"foreign archive: a zip \(members readme.txt, data/x.csv\)")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (np.random.default_rng(0).bytes(4096), "not a skl_tfreg model file: not a zip archive"),
        (json.dumps({"format": "skl_tfreg.SGDL2Regressor"}).encode(), "not a zip archive"),
        (b"", "the file is empty"),
        (b"PK\x05\x06" + bytes(18), "an empty zip archive"),
        (pickle.dumps(SGDL2Regressor()), "not a zip archive"),
    ],
)
def test_not_a_model_file(tmp_path, content, match):
    path = tmp_path / "model.skl"
    path.write_bytes(b"\x00" + content[1:] if content[:4] == b"PK\x03\x04" else content)
    _refused(path, match)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        SGDL2Regressor.load(tmp_path / "nothing.skl")


# --------------------------------------------------------------------------- fresh processes


def _run(code, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow  # a fresh Python that imports TensorFlow: about 5 s
def test_pickle_and_joblib_in_a_fresh_process(tmp_path):
    est, X, y = _fitted("minibatch_adaptive")
    with open(tmp_path / "m.pkl", "wb") as stream:
        pickle.dump(est, stream)
    joblib.dump(est, tmp_path / "m.joblib")
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    _run(
        """
        import pickle, joblib, numpy as np
        X, y = np.load("X.npy"), np.load("y.npy")
        for name, est in [("pkl", pickle.load(open("m.pkl", "rb"))),
                          ("joblib", joblib.load("m.joblib"))]:
            np.save(f"{name}_predict.npy", est.predict(X))
            np.save(f"{name}_coef.npy", est.coef_)
            est.partial_fit(X[:50], y[:50])
            np.save(f"{name}_continued.npy", np.append(est.coef_, est.intercept_))
        """,
        tmp_path,
    )
    predicted = est.predict(X)
    coef = est.coef_
    est.partial_fit(X[:50], y[:50])
    continued = np.append(est.coef_, est.intercept_)
    for name in ("pkl", "joblib"):
        assert np.load(tmp_path / f"{name}_predict.npy").tobytes() == predicted.tobytes()
        assert np.load(tmp_path / f"{name}_coef.npy").tobytes() == coef.tobytes()
        assert np.load(tmp_path / f"{name}_continued.npy").tobytes() == continued.tobytes()


def test_pickle_holds_no_tensorflow_object():
    est, X, _ = _fitted("float32_2d")
    data = pickle.dumps(est)
    assert b"tensorflow" not in data
    assert np.array_equal(pickle.loads(data).predict(X), est.predict(X))


def _savedmodel_models():
    """The four kinds of model: float32 and float64, 1-D and 2-D coef_."""
    models = {}
    for dtype in (np.float32, np.float64):
        for targets in (None, 3):
            X, y = _data(dtype, targets)
            name = f"{np.dtype(dtype).name}_{'1d' if targets is None else '2d'}"
            models[name] = SGDL2Regressor().fit(X, y)
    return models


def _test_inputs():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, N_FEATURES)) * 3.0 + 1.0
    return {"float32": X.astype(np.float32), "float64": X}


def _check_savedmodel_outputs(est, X, got, signature):
    """Outputs equal predict's in dtype and shape, and agree to the dot product's rounding."""
    want = est.predict(X)
    assert got.dtype == want.dtype and got.shape == want.shape, signature
    compute = np.result_type(X, est.coef_)
    # The kernels differ: TensorFlow's float64 ones round every product (no FMA) where
    # numpy's BLAS fuses them, and numpy's sgemv (1-D coef_) orders the sum its own way
    # from 8 features on. Both sums are within n_features/2 eps of the exact one,
    # relative to the sum of |terms|; measured: at most 1.7 eps. (float32 with several
    # targets came out bitwise equal with TensorFlow 2.21 and numpy 2.4, but not with
    # TensorFlow 2.16 and numpy 1.26: not asserted.)
    scale = np.abs(X.astype(compute)) @ np.abs(est.coef_.T) + np.abs(est.intercept_)
    ratio = np.max(np.abs(got - want) / (np.finfo(compute).eps * scale))
    assert ratio <= N_FEATURES, (signature, ratio)


@pytest.mark.slow  # a fresh Python that imports TensorFlow and loads 4 SavedModels: ~8 s
def test_savedmodel_in_a_fresh_process_predicts_like_predict(tmp_path):
    models = _savedmodel_models()
    inputs = _test_inputs()
    for name, est in models.items():
        assert est.export_savedmodel(tmp_path / name) is est
    for dtype, X in inputs.items():
        np.save(tmp_path / f"X_{dtype}.npy", X)
    _run(
        f"""
        import numpy as np, tensorflow as tf
        out = {{}}
        for name in {list(models)!r}:
            model = tf.saved_model.load(name)
            assert set(model.signatures) == {{"serving_default", "predict_float32",
                                              "predict_float64"}}
            for dtype in ("float32", "float64"):
                x = tf.constant(np.load(f"X_{{dtype}}.npy"))
                sig = model.signatures[f"predict_{{dtype}}"]
                out[f"{{name}}-{{dtype}}"] = sig(x=x)["predictions"].numpy()
                method = getattr(model, f"predict_{{dtype}}")(x)["predictions"].numpy()
                assert method.tobytes() == out[f"{{name}}-{{dtype}}"].tobytes()
                if name.startswith(dtype):
                    default = model.signatures["serving_default"](x=x)["predictions"]
                    out[f"{{name}}-default"] = default.numpy()
        np.savez("out.npz", **out)
        """,
        tmp_path,
    )
    out = np.load(tmp_path / "out.npz")
    assert len(out.files) == 12
    for key in out.files:
        name, signature = key.split("-")
        dtype = name.split("_")[0] if signature == "default" else signature
        _check_savedmodel_outputs(models[name], inputs[dtype], out[key], key)


def test_savedmodel_in_process(tmp_path):
    import tensorflow as tf

    X, y = _data(np.float32, 2)
    est = SGDL2Regressor().fit(X, y)
    est.export_savedmodel(tmp_path / "sm")
    model = tf.saved_model.load(str(tmp_path / "sm"))
    spec = model.signatures["serving_default"].structured_input_signature[1]["x"]
    assert spec.dtype == tf.float32 and spec.shape.as_list() == [None, N_FEATURES]
    outputs = model.signatures["serving_default"].structured_outputs
    assert list(outputs) == ["predictions"] and outputs["predictions"].shape.as_list() == [None, 2]
    for dtype, X_in in _test_inputs().items():
        got = model.signatures[f"predict_{dtype}"](x=tf.constant(X_in))["predictions"].numpy()
        _check_savedmodel_outputs(est, X_in, got, dtype)
    with pytest.raises(tf.errors.InvalidArgumentError, match="dimension"):
        model.signatures["serving_default"](x=tf.zeros((3, N_FEATURES + 1)))


def test_savedmodel_needs_a_fitted_model(tmp_path):
    with pytest.raises(NotFittedError):
        SGDL2Regressor().export_savedmodel(tmp_path / "sm")
    assert not (tmp_path / "sm").exists()


def test_persistence_does_not_import_the_estimator():
    source = Path(_persistence.__file__).read_text(encoding="utf-8")
    assert "_estimator" not in source


# --------------------------------------------------------------------------- skops


def _skops_round_trip(obj):
    import skops.io as sio

    data = sio.dumps(obj)
    untrusted = sio.get_untrusted_types(data=data)
    return sio.loads(data, trusted=untrusted), untrusted


@pytest.mark.parametrize("case", [*CASES, "sparse", "cv"])
def test_pipelines_round_trip_through_skops(case):
    """Whole pipelines in scikit-learn's safe format, with the package's types only."""
    import scipy.sparse as sp
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MaxAbsScaler, StandardScaler

    from skl_tfreg import SGDL2RegressorCV

    est, X, y = _fitted("1d" if case in ("sparse", "cv") else case)
    if case == "sparse":
        X = sp.csr_matrix(X)
    if case == "cv":
        est = SGDL2RegressorCV(alphas=[1e-4, 1e-2, 1.0])
    scaler = (MaxAbsScaler() if case == "sparse" else StandardScaler()).fit(X)
    if case == "partial_fit":  # chunks behind a fitted scaler
        est, Xs = SGDL2Regressor(), scaler.transform(X)
        for chunk in np.array_split(np.arange(len(y)), 3):
            est.partial_fit(Xs[chunk], y[chunk])
        pipe = make_pipeline(scaler, est)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipe = make_pipeline(scaler, est).fit(X, y)
    loaded, untrusted = _skops_round_trip(pipe)
    assert all(name.startswith("skl_tfreg.") for name in untrusted), untrusted
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
    assert_identical(pipe[-1], loaded[-1])


@pytest.mark.parametrize("case", ["minibatch_adaptive", "partial_fit", "stopped_early", "averaged"])
def test_training_continues_exactly_after_a_skops_load(case):
    est, X, y = _fitted(case)
    loaded, _ = _skops_round_trip(est)
    chunk = slice(0, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for model in (est, loaded):
            model.partial_fit(X[chunk], y[chunk])
    assert_identical(est, loaded)
