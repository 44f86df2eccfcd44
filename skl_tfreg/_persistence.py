"""Saving, loading and exporting fitted estimators, without pickle.

A model file is one zip archive:

``metadata.json``
    JSON: the format identifier and version, the versions of the packages
    that wrote the file, the class, the parameters (``get_params()``), the
    fitted scalars and a manifest of the arrays: for each its member, dtype,
    shape and the SHA-256 digest of its ``.npy`` bytes.
``metadata.json.sha256``
    The SHA-256 digest of ``metadata.json``, in ``sha256sum`` format.
``<name>.npy``
    One array each, written by ``np.save(..., allow_pickle=False)``.

:func:`load_model` checks every digest before it reads an array, reads arrays
with ``allow_pickle=False`` and only of the dtypes of the manifest's allowlist,
and checks their shapes against each other: any truncated, modified or foreign
file is refused with a ``ValueError`` naming the file and the problem. The
digests detect corruption and edits by hand; they are no signature against a
forger, who could recompute them (nothing in the format executes code, so the
worst a forged file can do is load a wrong model).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import sys
import tempfile
import zipfile
import zlib
from importlib import metadata
from numbers import Integral

import numpy as np
import sklearn

from ._state import TrainState
from ._version import __version__

FORMAT = "skl_tfreg.SGDL2Regressor"
FORMAT_VERSION = 1
_METADATA = "metadata.json"
_DIGEST = "metadata.json.sha256"
_MAX_METADATA_BYTES = 64 * 2**20
_NPY_HEADER_BYTES = 2**17  # an .npy header (format 1 to 3) is at most 4 GiB, ours ~100 B
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so that one model always gives the same bytes
_ARRAY_KINDS = "fiubU"  # float, int, unsigned, bool, unicode: never object or raw bytes
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"

# The fitted attributes stored as arrays, beside the TrainState's.
_FITTED_ARRAYS = ("coef_", "intercept_", "loss_curve_", "validation_scores_", "feature_names_in_")
_MOMENTS = ("S", "x_mean", "x_m2", "y_mean", "y_m2")
_STATE_FIELDS = ("moments", "direction", "steps", "best", "n_bad", "t", "iterate", "n_averaged",
                 "n_seen")  # fmt: skip
# Read-side errors of a damaged archive or member, turned into a clear ValueError.
_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
                NotImplementedError, RuntimeError)  # fmt: skip


class _Refused(Exception):
    """A model file that :func:`load_model` refuses; the message says why."""


# --------------------------------------------------------------------------- saving


def save_model(estimator, path):
    """Write ``estimator`` (fitted or not) to ``path`` as a model file.

    Parameters
    ----------
    estimator : SGDL2Regressor
        The estimator to save; it is not changed.
    path : str or path-like
        File to write. It is replaced atomically: a temporary file beside it
        is written first, then renamed over it.

    Raises
    ------
    ValueError
        If a parameter is not a JSON value (for example ``random_state`` set to
        a ``RandomState`` instance) or a fitted attribute has an unexpected
        type.
    """
    params = _json_params(estimator.get_params(deep=False))
    fitted, arrays = None, {}
    if hasattr(estimator, "coef_"):
        fitted, arrays = _fitted_state(estimator)
    members = {f"{name}.npy": _npy_bytes(name, array) for name, array in arrays.items()}
    manifest = {
        name: {
            "member": f"{name}.npy",
            "dtype": array.dtype.str,
            "shape": list(array.shape),
            "sha256": hashlib.sha256(members[f"{name}.npy"]).hexdigest(),
        }
        for name, array in arrays.items()
    }
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "written_by": _versions(),
        "class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "params": params,
        "fitted": fitted,
        "arrays": manifest,
    }
    text = json.dumps(metadata, indent=1, sort_keys=True).encode("utf-8")
    digest = f"{hashlib.sha256(text).hexdigest()}  {_METADATA}\n".encode("ascii")
    _write_atomically(os.fspath(path), [(_METADATA, text), (_DIGEST, digest), *members.items()])


def _versions():
    """Versions of the packages and the Python that write a model file.

    Returns
    -------
    versions : dict of str to str
    """
    return {
        "skl_tfreg": __version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "tensorflow": _tensorflow_version(),
        "python": platform.python_version(),
    }


def _tensorflow_version():
    """TensorFlow's version, read without importing it (a loaded model may re-save)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"].__version__
    for name in ("tensorflow", "tensorflow-cpu", "tf-nightly"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def _json_params(params):
    """Return ``params`` as JSON values, or refuse those that are none.

    Numpy scalars become the equal Python ``bool``, ``int``, ``float`` or
    ``str``; lists and dicts with string keys are kept, element by element.

    Parameters
    ----------
    params : dict
        ``estimator.get_params(deep=False)``.

    Returns
    -------
    params : dict
        The same values as plain JSON types.

    Raises
    ------
    ValueError
        Naming the first parameter whose value JSON cannot hold exactly.
    """
    out = {}
    for name, value in params.items():
        if name == "random_state" and isinstance(
            value, (np.random.RandomState, np.random.Generator)
        ):
            raise ValueError(
                f"Cannot save: random_state is a {type(value).__name__} instance, whose "
                "state a model file does not hold. Set random_state to an int or None "
                "(est.set_params(random_state=0)) before saving."
            )
        try:
            out[name] = _json_value(value)
        except TypeError as err:
            raise ValueError(
                f"Cannot save: parameter {name}={value!r} is not a JSON value "
                f"({err}); a model file holds only None, bool, int, float, str, "
                "and lists and str-keyed dicts of them."
            ) from err
    return out


def _json_value(value):
    """Return ``value`` as a plain JSON value that reads back equal.

    Parameters
    ----------
    value : object
        A parameter value.

    Returns
    -------
    value : None, bool, int, float, str, list or dict

    Raises
    ------
    TypeError
        If ``value`` (or an element of it) has no exact JSON form.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biufU":
        return value.item()
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _json_value(v) for k, v in value.items()}
    raise TypeError(f"{type(value).__name__} has no exact JSON form")


def _fitted_state(estimator):
    """Split the fitted state into JSON scalars and named arrays.

    Parameters
    ----------
    estimator : SGDL2Regressor
        A fitted estimator.

    Returns
    -------
    fitted : dict
        ``n_features_in_``, ``n_iter_``, ``t_`` and the TrainState's scalars.
    arrays : dict of str to ndarray
        Every array, under its attribute name (the TrainState's under
        ``_train_state.<field>``).
    """
    fitted = {name: _int(estimator, name) for name in ("n_features_in_", "n_iter_", "t_")}
    arrays = {}
    for name in _FITTED_ARRAYS:
        if hasattr(estimator, name):
            arrays[name] = np.asarray(getattr(estimator, name))
    if "feature_names_in_" in arrays:
        names = arrays["feature_names_in_"]
        if not all(isinstance(n, str) for n in names.tolist()):
            raise ValueError("Cannot save: feature_names_in_ holds names that are not str.")
        arrays["feature_names_in_"] = names.astype(str)
    state = getattr(estimator, "_train_state", None)
    fitted["train_state"] = None
    if state is not None:
        fitted["train_state"], state_arrays = _state_parts(state)
        arrays.update(state_arrays)
    return fitted, arrays


def _int(estimator, name):
    """Return the integer attribute ``name`` of ``estimator`` as a Python int.

    Parameters
    ----------
    estimator : object
        The estimator.
    name : str
        Attribute name.

    Returns
    -------
    value : int
    """
    value = getattr(estimator, name)
    if not isinstance(value, Integral) or isinstance(value, bool):
        raise ValueError(f"Cannot save: {name}={value!r} is not an integer.")
    return int(value)


def _state_parts(state):
    """Split a :class:`TrainState` into JSON scalars and named arrays.

    Parameters
    ----------
    state : TrainState
        The training state of a fitted estimator.

    Returns
    -------
    scalars : dict
        ``n_bad``, ``t``, ``n_averaged``, ``n_seen`` and ``steps`` (a list of
        ``[key, value]`` lists).
    arrays : dict of str to ndarray
    """
    if tuple(state._fields) != _STATE_FIELDS:  # TrainState changed: so must this format
        raise RuntimeError(f"TrainState has fields {state._fields}, not {_STATE_FIELDS}.")
    arrays = {
        f"_train_state.moments.{n}": np.asarray(m)
        for n, m in zip(_MOMENTS, state.moments, strict=True)
    }
    if state.direction is not None:
        dW, db = state.direction
        arrays["_train_state.direction.dW"] = np.asarray(dW)
        arrays["_train_state.direction.db"] = np.asarray(db)
    if state.iterate is not None:
        coef, intercept = state.iterate
        arrays["_train_state.iterate.coef"] = np.asarray(coef)
        arrays["_train_state.iterate.intercept"] = np.asarray(intercept)
    arrays["_train_state.best"] = np.asarray(state.best)
    pairs = dict(state.steps).items()
    steps = [[_json_value(list(k)), _json_value(list(v))] for k, v in pairs]
    counts = {name: int(getattr(state, name)) for name in ("n_bad", "t", "n_averaged", "n_seen")}
    return {**counts, "steps": steps}, arrays


def _npy_bytes(name, array):
    """Return the ``.npy`` bytes of ``array``, refusing dtypes outside the allowlist.

    Parameters
    ----------
    name : str
        The array's name, for the error message.
    array : ndarray
        The array.

    Returns
    -------
    data : bytes
    """
    if array.dtype.kind not in _ARRAY_KINDS:
        raise ValueError(f"Cannot save: {name} has dtype {array.dtype}, not a plain number "
                         "or str dtype.")  # fmt: skip
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _write_atomically(path, members):
    """Write a zip archive of ``members`` to a temporary file, then rename it to ``path``.

    Parameters
    ----------
    path : str
        Destination file.
    members : list of (str, bytes)
        Member names and contents, in archive order.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".skl_tfreg-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            with zipfile.ZipFile(stream, "w") as archive:
                for name, data in members:
                    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                    info.external_attr = 0o644 << 16
                    compress = name == _METADATA
                    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
                    archive.writestr(info, data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, _new_file_mode())  # mkstemp's file is private (0o600); open()'s is not
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _new_file_mode():
    """Return the mode ``open(path, "w")`` gives a new file: ``0o666`` less the umask.

    Returns
    -------
    mode : int
    """
    umask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(umask)
    return 0o666 & ~umask


# --------------------------------------------------------------------------- loading


def load_model(path, cls):
    """Read a model file written by :func:`save_model` and rebuild the estimator.

    Parameters
    ----------
    path : str or path-like
        The model file.
    cls : type
        The estimator class (``SGDL2Regressor`` or a subclass), built with the
        saved parameters.

    Returns
    -------
    estimator : cls
        The estimator, with its parameters and fitted state (if it was fitted).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a model file, is truncated, was modified or
        corrupted, or was written by a newer format version.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as stream:
            head = stream.read(4)
            _check_magic(head)
            try:
                archive = zipfile.ZipFile(stream)
            except _READ_ERRORS as err:
                raise _Refused(
                    f"truncated or damaged: a zip archive without a readable directory ({err})"
                ) from err
            with archive:
                metadata = _read_metadata(archive)
                arrays = _read_arrays(archive, metadata["arrays"])
        return _rebuild(cls, metadata, arrays)
    except _Refused as err:
        raise ValueError(f"Cannot load {path!r}: {err}") from err


def _check_magic(head):
    """Refuse a file whose first bytes are not those of a zip archive.

    Parameters
    ----------
    head : bytes
        The file's first 4 bytes.
    """
    if head == _ZIP_MAGIC:
        return
    if not head:
        raise _Refused("not a skl_tfreg model file: the file is empty")
    if head == _EMPTY_ZIP_MAGIC:
        raise _Refused("not a skl_tfreg model file: an empty zip archive")
    raise _Refused(f"not a skl_tfreg model file: not a zip archive (it starts with {head!r})")


def _read_member(archive, name, limit):
    """Return the bytes of member ``name``, refusing one larger than ``limit``.

    Parameters
    ----------
    archive : zipfile.ZipFile
        The open archive.
    name : str
        Member name.
    limit : int
        Most bytes the member may hold.

    Returns
    -------
    data : bytes
    """
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise _Refused(f"truncated or damaged: member {name} is missing") from None
    if info.file_size > limit:
        raise _Refused(f"modified or corrupted: member {name} holds {info.file_size} bytes, "
                       f"more than the {limit} allowed")  # fmt: skip
    try:
        return archive.read(name)
    except _READ_ERRORS + (zlib.error,) as err:
        raise _Refused(f"truncated or damaged: member {name} cannot be read ({err})") from err


def _read_metadata(archive):
    """Read, verify and check the metadata of an open archive.

    Parameters
    ----------
    archive : zipfile.ZipFile
        The open archive.

    Returns
    -------
    metadata : dict
        The decoded ``metadata.json``, of this package's format and a version
        it reads, whose manifest names exactly the archive's other members.
    """
    names = archive.namelist()
    if _METADATA not in names:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        kind = "an .npz of arrays" if names and all(n.endswith(".npy") for n in names) else "a zip"
        raise _Refused(f"foreign archive: {kind} (members {shown or 'none'}) that is not a "
                       f"skl_tfreg model: it has no {_METADATA}")  # fmt: skip
    text = _read_member(archive, _METADATA, _MAX_METADATA_BYTES)
    recorded = _read_member(archive, _DIGEST, 1024).decode("ascii", "replace").split()
    if not recorded or recorded[0] != hashlib.sha256(text).hexdigest():
        raise _Refused(f"modified or corrupted: digest mismatch for {_METADATA}")
    try:
        metadata = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise _Refused(f"{_METADATA} is not valid JSON ({err})") from err
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else None
        raise _Refused(f"not a skl_tfreg model file: format {found!r}, not {FORMAT!r}")
    version = metadata.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _Refused(f"malformed metadata: format_version {version!r}")
    if version > FORMAT_VERSION:
        by = metadata.get("written_by", {})
        raise _Refused(
            f"written by a newer format version {version} (skl_tfreg "
            f"{by.get('skl_tfreg', '?') if isinstance(by, dict) else '?'}); this skl_tfreg "
            f"reads format versions up to {FORMAT_VERSION}: upgrade skl_tfreg"
        )
    _check_manifest(metadata.get("arrays"), names)
    return metadata


def _check_manifest(manifest, names):
    """Refuse a manifest that is malformed or does not match the archive's members.

    Parameters
    ----------
    manifest : object
        ``metadata["arrays"]``.
    names : list of str
        The archive's members.
    """
    if not isinstance(manifest, dict):
        raise _Refused("malformed metadata: no array manifest")
    for name, entry in manifest.items():
        ok = (
            isinstance(entry, dict)
            and entry.get("member") == f"{name}.npy"
            and isinstance(entry.get("dtype"), str)
            and isinstance(entry.get("shape"), list)
            and all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in entry["shape"]
            )  # fmt: skip
            and isinstance(entry.get("sha256"), str)
            and _SHA256.fullmatch(entry["sha256"])
        )
        if not ok:
            raise _Refused(f"malformed metadata: the manifest entry of {name} is {entry!r}")
        _allowed_dtype(name, entry["dtype"])
    expected = {_METADATA, _DIGEST} | {entry["member"] for entry in manifest.values()}
    if len(names) != len(set(names)):
        raise _Refused("modified or corrupted: the archive holds a member twice")
    missing, extra = sorted(expected - set(names)), sorted(set(names) - expected)
    if missing:
        raise _Refused(f"truncated or damaged: missing members {', '.join(missing)}")
    if extra:
        raise _Refused(f"modified or corrupted: unexpected members {', '.join(extra)}")


def _allowed_dtype(name, descr):
    """Return the dtype ``descr`` if the format allows it for arrays.

    Parameters
    ----------
    name : str
        Array name, for the message.
    descr : str
        A dtype string such as ``"<f8"``.

    Returns
    -------
    dtype : numpy.dtype
    """
    try:
        dtype = np.dtype(descr)
    except TypeError as err:
        raise _Refused(f"malformed metadata: {name} has dtype {descr!r}") from err
    if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.str != descr:
        raise _Refused(f"refused dtype {descr!r} of {name}: only float, int, bool and str "
                       "arrays are read")  # fmt: skip
    return dtype


def _read_arrays(archive, manifest):
    """Read every array of the manifest, checking its digest, dtype and shape.

    Parameters
    ----------
    archive : zipfile.ZipFile
        The open archive.
    manifest : dict
        ``metadata["arrays"]``, already checked by :func:`_check_manifest`.

    Returns
    -------
    arrays : dict of str to ndarray
    """
    arrays = {}
    for name, entry in manifest.items():
        dtype, shape = np.dtype(entry["dtype"]), tuple(entry["shape"])
        limit = _NPY_HEADER_BYTES + dtype.itemsize * int(np.prod(shape, dtype=np.float64))
        data = _read_member(archive, entry["member"], limit)
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise _Refused(f"modified or corrupted: digest mismatch for {name}")
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise _Refused(f"{entry['member']} is not a valid .npy file ({err})") from err
        if array.dtype != dtype or array.shape != shape:
            raise _Refused(
                f"modified or corrupted: {name} is {array.dtype.str} of shape {array.shape}, "
                f"the manifest says {dtype.str} of shape {shape}"
            )
        arrays[name] = array
    return arrays


# --------------------------------------------------------------------------- rebuilding


def _rebuild(cls, metadata, arrays):
    """Build the estimator from verified metadata and arrays.

    Parameters
    ----------
    cls : type
        The estimator class.
    metadata : dict
        The checked metadata.
    arrays : dict of str to ndarray
        The checked arrays.

    Returns
    -------
    estimator : cls
    """
    estimator = _build(cls, metadata.get("params"))
    fitted = metadata.get("fitted")
    if fitted is None:
        if arrays:
            raise _Refused("malformed metadata: arrays for an estimator saved unfitted")
        return estimator
    try:
        attributes = _fitted_attributes(fitted, arrays)
    except (KeyError, TypeError, IndexError, AttributeError) as err:
        raise _Refused(f"malformed metadata: fitted state ({type(err).__name__}: {err})") from err
    _check_shapes(attributes)
    for name, value in attributes.items():
        setattr(estimator, name, value)
    return estimator


def _build(cls, params):
    """Return ``cls(**params)`` with validated parameters.

    Parameters
    ----------
    cls : type
        The estimator class.
    params : dict
        Saved parameters; those missing keep the class's defaults.

    Returns
    -------
    estimator : cls
    """
    if not isinstance(params, dict):
        raise _Refused("malformed metadata: no parameters")
    known = cls().get_params(deep=False)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise _Refused(f"parameters {', '.join(unknown)} are unknown to this "
                       f"{cls.__name__}: the file needs another skl_tfreg version")  # fmt: skip
    estimator = cls(**params)
    try:
        estimator._validate_params()
    except ValueError as err:  # scikit-learn's InvalidParameterError
        raise _Refused(f"invalid parameters: {err}") from err
    return estimator


def _fitted_attributes(fitted, arrays):
    """Return the fitted attributes, by name, from the saved scalars and arrays.

    Parameters
    ----------
    fitted : dict
        ``metadata["fitted"]``.
    arrays : dict of str to ndarray
        The arrays read.

    Returns
    -------
    attributes : dict
    """
    attributes = {name: _nonneg_int(fitted, name) for name in ("n_features_in_", "n_iter_", "t_")}
    for name in _FITTED_ARRAYS:
        if name in arrays:
            attributes[name] = arrays.pop(name)
    for name in ("coef_", "intercept_", "loss_curve_"):
        if name not in attributes:
            raise _Refused(f"malformed metadata: the fitted model has no {name}")
    if attributes["intercept_"].ndim == 0:
        attributes["intercept_"] = attributes["intercept_"][()]  # a numpy scalar, as fit stores
    if "feature_names_in_" in attributes:
        attributes["feature_names_in_"] = attributes["feature_names_in_"].astype(object)
    if fitted["train_state"] is not None:
        attributes["_train_state"] = _state(fitted["train_state"], arrays)
    if arrays:
        raise _Refused(f"malformed metadata: unknown arrays {', '.join(sorted(arrays))}")
    return attributes


def _nonneg_int(mapping, name, most=None):
    """Return ``mapping[name]`` if it is a non-negative int (at most ``most``, if given).

    Parameters
    ----------
    mapping : dict
        Decoded JSON.
    name : str
        Key.
    most : int or None
        The largest value allowed.

    Returns
    -------
    value : int
    """
    value = mapping[name]
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < 0
        or (most is not None and value > most)
    ):
        raise _Refused(f"malformed metadata: {name}={value!r}")
    return value


def _state(scalars, arrays):
    """Rebuild the :class:`TrainState`, taking its arrays out of ``arrays``.

    Parameters
    ----------
    scalars : dict
        ``metadata["fitted"]["train_state"]``.
    arrays : dict of str to ndarray
        The arrays read; the TrainState's are removed.

    Returns
    -------
    state : TrainState
    """
    moments = tuple(arrays.pop(f"_train_state.moments.{n}") for n in _MOMENTS)
    direction = None
    if "_train_state.direction.dW" in arrays:
        direction = (arrays.pop("_train_state.direction.dW"),
                     arrays.pop("_train_state.direction.db"))  # fmt: skip
    iterate = None
    if "_train_state.iterate.coef" in arrays:
        iterate = (arrays.pop("_train_state.iterate.coef"),
                   arrays.pop("_train_state.iterate.intercept"))  # fmt: skip
    steps = {}
    for key, value in scalars["steps"]:
        if not all(isinstance(v, (str, int, float)) for v in key) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        ):
            raise _Refused(f"malformed metadata: step state {key!r}: {value!r}")
        steps[tuple(key)] = tuple(value)
    return TrainState(
        moments=moments,
        direction=direction,
        steps=tuple(steps.items()),
        best=arrays.pop("_train_state.best"),
        n_bad=_nonneg_int(scalars, "n_bad"),
        t=_nonneg_int(scalars, "t"),
        iterate=iterate,
        # Files written before averaged SGD have neither count: both were 0.
        # Counts the driver adds in float64: at most 2**53, where it is still exact.
        n_averaged=_nonneg_int({"n_averaged": 0, **scalars}, "n_averaged", most=2**53),
        n_seen=_nonneg_int({"n_seen": 0, **scalars}, "n_seen", most=2**53),
    )


def _check_shapes(attributes):
    """Refuse fitted attributes whose dtypes or shapes do not fit together.

    Parameters
    ----------
    attributes : dict
        The fitted attributes about to be set.
    """
    coef, p = attributes["coef_"], attributes["n_features_in_"]
    k = 1 if coef.ndim == 1 else coef.shape[0]
    checks = [
        ("coef_", coef.dtype in (np.float32, np.float64) and coef.ndim in (1, 2)
         and coef.shape[-1] == p),
        ("intercept_", np.asarray(attributes["intercept_"]).dtype == coef.dtype
         and np.shape(attributes["intercept_"]) == (() if coef.ndim == 1 else (k,))),
        ("loss_curve_", _is(attributes["loss_curve_"], np.float64, 1)),
        ("validation_scores_", _is(attributes.get("validation_scores_"), np.float64, 1)),
        ("feature_names_in_", "feature_names_in_" not in attributes
         or attributes["feature_names_in_"].shape == (p,)),
    ]  # fmt: skip
    state = attributes.get("_train_state")
    if state is not None:
        shapes = [m.shape for m in state.moments]
        checks += [
            ("_train_state.moments", shapes == [(), (p,), (p,), (k,), (k,)]
             and all(m.dtype == np.float64 for m in state.moments)),
            ("_train_state.direction", state.direction is None
             or (state.direction[0].shape == (p, k) and state.direction[1].shape == (k,))),
            ("_train_state.iterate", state.iterate is None
             or (state.iterate[0].dtype == state.iterate[1].dtype == coef.dtype
                 and state.iterate[0].shape == (p, k) and state.iterate[1].shape == (k,))),
            ("_train_state.best", _is(state.best, np.float64, 1)),
            ("t_", state.t == attributes["t_"]),
            ("_train_state.n_averaged", state.n_averaged <= state.t),
        ]  # fmt: skip
    for name, ok in checks:
        if not ok:
            raise _Refused(f"modified or corrupted: {name} does not fit a model of "
                           f"{p} features and {k} targets")  # fmt: skip


def _is(array, dtype, ndim):
    """Whether ``array`` is None or an array of ``dtype`` with ``ndim`` dimensions.

    Parameters
    ----------
    array : ndarray or None
        The array.
    dtype : type
        Expected dtype.
    ndim : int
        Expected number of dimensions.

    Returns
    -------
    ok : bool
    """
    return array is None or (array.dtype == dtype and array.ndim == ndim)
