"""Chunked readers of data files larger than memory, for ``SGDL2Regressor.fit_stream``.

numpy only (pyarrow is imported by :class:`ParquetSource` when it is built). A
source is a callable: each call opens the file afresh and returns an iterator of
batches, ``(X, y)`` with a target column and ``X`` alone without one, so one
source serves every epoch of a fit. Memory stays bounded by ``batch_rows``
whatever the size of the file.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from operator import methodcaller
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

__all__ = ["CSVSource", "ParquetSource"]


def _check_batch_rows(batch_rows):
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, (int, np.integer)):
        raise TypeError(f"batch_rows must be a positive integer, got {batch_rows!r}.")
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be a positive integer, got {batch_rows!r}.")
    return int(batch_rows)


def _check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating point type, got {dtype.name}.")
    return dtype


def _duplicates(names):
    seen, repeated = set(), []
    for name in names:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    return repeated


def _select(path, names, target, columns, drop=()):
    """Return the feature names and their indices (and the target's) in ``names``.

    ``names`` are the file's columns, ``target`` a column name or None,
    ``columns`` the feature names to read (None: every column but the target
    and those of ``drop``).
    """
    repeated = _duplicates(names)
    if repeated:
        raise ValueError(
            f"{path}: duplicate column names {repeated}; every column needs its own name."
        )
    index = {name: i for i, name in enumerate(names)}
    if target is not None and target not in index:
        raise ValueError(f"{path}: no target column {target!r}; the columns are {list(names)}.")
    unknown = [name for name in drop if name not in index]
    if unknown:
        raise ValueError(
            f"{path}: no column {unknown[0]!r} to drop; the columns are {list(names)}."
        )
    if target is not None and target in drop:
        raise ValueError(f"The target column {target!r} is also among the columns to drop.")
    if columns is not None and set(columns) & set(drop):
        both = next(name for name in columns if name in drop)
        raise ValueError(f"Column {both!r} is both among the columns to read and to drop.")
    if columns is None:
        columns = [name for name in names if name != target and name not in drop]
    else:
        if isinstance(columns, str):
            raise TypeError(f"columns must be a sequence of column names, got {columns!r}.")
        columns = [str(name) for name in columns]
        missing = [name for name in columns if name not in index]
        if missing:
            raise ValueError(
                f"{path}: no column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(map(repr, missing))}; the columns are {list(names)}."
            )
        if _duplicates(columns):
            raise ValueError(f"columns lists {_duplicates(columns)} more than once.")
        if target is not None and target in columns:
            raise ValueError(f"The target column {target!r} is also among the columns to read.")
    if not columns:
        raise ValueError(f"{path}: no feature columns besides the target {target!r}.")
    return columns, [index[name] for name in columns], None if target is None else index[target]


def _is_utf8(data):
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


_ATTRIBUTES = """Attributes
    ----------
    path : str
        The file.
    target : str or None
        The target column.
    columns : ndarray of str, dtype object
        All column names of the file, in order.
    feature_names : ndarray of str, dtype object
        The feature columns read into ``X``, in order."""


class _FileSource:
    """What the file sources share: the file, its columns, and the protocol of a call.

    A subclass sets the file with :meth:`_set_file`, the columns with
    :meth:`_set_columns` and yields its batches from ``_batches``, each through
    :meth:`_batch`. Its docstring's ``{attributes}`` line becomes the
    Attributes section.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__doc__:  # None under python -OO
            cls.__doc__ = cls.__doc__.replace("{attributes}", _ATTRIBUTES)

    def _set_file(self, path, target, batch_rows, dtype):
        self.path = os.fspath(path)
        self.target = target
        self.batch_rows = _check_batch_rows(batch_rows)
        self.dtype = _check_dtype(dtype)

    def _set_columns(self, names, columns, drop=None):
        """Select the feature columns ``columns`` (None: all but the target and ``drop``)."""
        self.columns = np.asarray(names, dtype=object)
        if isinstance(drop, str):
            raise TypeError(f"drop must be a sequence of column names, got {drop!r}.")
        self.drop = () if drop is None else tuple(str(name) for name in drop)
        features, self._feature_index, self._target_index = _select(
            self.path, names, self.target, columns, self.drop
        )
        self.feature_names = np.asarray(features, dtype=object)
        self._usecols = self._feature_index + (
            [] if self._target_index is None else [self._target_index]
        )

    def __repr__(self):
        return (
            f"{type(self).__name__}({self.path!r}, target={self.target!r}, "
            f"batch_rows={self.batch_rows})"
        )

    def __call__(self) -> Iterator[Any]:
        """Return an iterator over the batches of one pass through the file.

        Returns
        -------
        batches : iterator of tuple or ndarray
            ``(X, y)`` per batch with a target, ``X`` alone without one; ``X``
            of shape (n_rows, n_features), ``y`` of shape (n_rows,).
        """
        return self._batches()

    def _batches(self) -> Iterator[Any]:
        """Yield the batches of one pass: each reader's own."""
        raise NotImplementedError

    def values(self, name):
        """Return an iterator over the text of column ``name``, one string per data row.

        In file order, the rows the batches hold; quotes and surrounding spaces
        removed. The column need not hold numbers (an id, say): ``skl-tfreg
        predict --keep`` copies it beside the predictions. A missing column is a
        ValueError here, before any row is read.
        """
        return self._column_values(self._column_index(name))

    def _column_index(self, name):
        """Return the index of column ``name``, or raise a ValueError naming the columns."""
        names = list(self.columns)
        if name not in names:
            raise ValueError(f"{self.path}: no column {name!r}; the columns are {names}.")
        return names.index(name)

    def _batch(self, data):
        """Return one batch of ``data``, whose columns are those of ``_usecols``."""
        # Contiguous copies: the layout of X is the same whatever the columns' order.
        X = np.ascontiguousarray(data[:, : len(self._feature_index)])
        if self._target_index is None:
            return X
        return X, np.ascontiguousarray(data[:, -1])


class CSVSource(_FileSource):
    r"""Read a CSV file with a header line in batches of rows, for ``fit_stream``.

    Each call opens the file and returns an iterator of batches: ``(X, y)``
    when ``target`` names a column, ``X`` alone when it is None (for
    prediction). ``X`` holds the feature columns in the order of
    ``feature_names``. Only one batch of rows is held in memory at a time, so
    files larger than memory can be read; numpy parses the values (pandas is
    not needed).

    The file is UTF-8 text (a byte order mark is allowed). Its first line is a
    header of distinct column names (surrounding spaces and double quotes are
    removed); every following line holds one number per column, separated by
    ``delimiter``; a number may be in double quotes (``"1.5"``), and no field
    may hold the delimiter. Empty lines are skipped. In the columns that
    are read, an empty field or a value that is not a number is an error, and
    so are ``nan``, ``inf`` and values beyond the range of ``dtype`` (no
    estimator can fit or predict them): each error names the line and column.

    Parameters
    ----------
    path : str or path-like
        The CSV file.
    target : str or None, default=None
        Name of the target column; None reads features only.
    batch_rows : int, default=65536
        Lines per batch (the last batch holds the rest). Empty lines count
        towards it, so a batch can have fewer rows.
    dtype : floating dtype, default=numpy.float64
        Dtype of ``X`` and ``y``.
    delimiter : str, default=","
        The one-character field separator.
    columns : sequence of str or None, default=None
        Names of the feature columns to read, in this order. None reads every
        column but the target. Other columns are not parsed, so they may hold
        text (their number of fields is still checked).
    drop : sequence of str or None, default=None
        Columns that are not features (a text id, say): with ``columns`` None,
        every column but the target and these is read.

    {attributes}

    Raises
    ------
    FileNotFoundError, IsADirectoryError, PermissionError
        If ``path`` cannot be opened.
    ValueError
        If the file is empty, is not UTF-8 text, has no header (its first line
        is empty or all numbers), has duplicate or empty column names, lacks
        ``target`` or one of ``columns``, or has no data rows. Iterating
        raises a ValueError naming the line (and column) of a line with the
        wrong number of fields or of a value that is not a finite number.

    See Also
    --------
    ParquetSource : The same protocol for Parquet files.

    Examples
    --------
    >>> import os, tempfile
    >>> from skl_tfreg._readers import CSVSource
    >>> path = os.path.join(tempfile.mkdtemp(), "data.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("a,b,y\n1,2,3\n4,5,6\n7,8,9\n")
    >>> source = CSVSource(path, target="y", batch_rows=2)
    >>> source.feature_names
    array(['a', 'b'], dtype=object)
    >>> for X, y in source():
    ...     print(X.tolist(), y.tolist())
    [[1.0, 2.0], [4.0, 5.0]] [3.0, 6.0]
    [[7.0, 8.0]] [9.0]
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        target: str | None = None,
        *,
        batch_rows: int = 65536,
        dtype: DTypeLike = np.float64,
        delimiter: str = ",",
        columns: Sequence[str] | None = None,
        drop: Sequence[str] | None = None,
    ) -> None:
        self._set_file(path, target, batch_rows, dtype)
        if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
            raise ValueError(
                f"delimiter must be one character (not a quote or newline), got {delimiter!r}."
            )
        self.delimiter = delimiter
        with self._open() as f:
            names = self._read_header(f)
            try:
                if not any(line.rstrip("\n") for line in f):
                    raise ValueError(f"{self.path}: no data rows, only the header line.")
            except UnicodeDecodeError as exc:
                raise self._decoding_error(exc) from None
        self._set_columns(names, columns, drop)
        # loadtxt checks that all lines have as many fields only when it reads them all:
        # then it parses every column (in file order) and _parse reorders them.
        self._subset = len(self._usecols) < len(names)
        self._parsed = sorted(self._usecols) if self._subset else list(range(len(names)))
        order = [self._parsed.index(i) for i in self._usecols]
        self._order = None if order == sorted(order) else order

    def _open(self):
        # utf-8-sig drops a byte order mark; newline=None reads \r\n and \r endings too.
        return open(self.path, encoding="utf-8-sig")

    def _read_chunk(self, f):
        """Read the next ``batch_rows`` lines of ``f``: a decoding error is a ValueError."""
        try:
            return list(itertools.islice(f, self.batch_rows))
        except UnicodeDecodeError as exc:
            raise self._decoding_error(exc) from None

    def _decoding_error(self, exc):
        """Return the ValueError of a file that is not UTF-8, naming its first bad line."""
        # The text layer decodes blocks of bytes ahead of the lines: read lines as bytes.
        with open(self.path, "rb") as f:
            bad = next((n for n, line in enumerate(f, 1) if not _is_utf8(line)), "?")
        return ValueError(f"{self.path}: not UTF-8 text ({exc.reason} in line {bad}).")

    def _column_values(self, index):
        with self._open() as f:
            self._read_header(f)
            while True:
                chunk = self._read_chunk(f)
                if not chunk:
                    break
                for line in chunk:
                    if line.rstrip("\n"):
                        fields = line.rstrip("\n").split(self.delimiter)
                        yield fields[index].strip().strip('"') if index < len(fields) else ""

    def _read_header(self, f):
        try:
            line = f.readline()
        except UnicodeDecodeError as exc:
            raise self._decoding_error(exc) from None
        if not line:
            raise ValueError(f"{self.path}: the file is empty; it needs a header line.")
        if not line.strip():
            raise ValueError(
                f"{self.path}: line 1 is empty; it must be the header line of column names."
            )
        names = [
            name.strip().strip('"').strip() for name in line.rstrip("\n").split(self.delimiter)
        ]
        if all(_is_number(name) for name in names):
            raise ValueError(
                f"{self.path}: no header: line 1 holds only numbers; the first line must "
                "name the columns."
            )
        empty = [i + 1 for i, name in enumerate(names) if not name]
        if empty:
            raise ValueError(f"{self.path}: column {empty[0]} of the header (line 1) has no name.")
        return names

    def _batches(self):
        with self._open() as f:
            if self._read_header(f) != list(self.columns):
                raise ValueError(f"{self.path}: the header changed since the source was created.")
            line_no, n_rows = 2, 0
            while True:
                chunk = self._read_chunk(f)
                if not chunk:
                    break
                data = self._parse(chunk, line_no)
                line_no += len(chunk)
                if data.shape[0] == 0:
                    continue  # only empty lines
                n_rows += data.shape[0]
                yield self._batch(data)
            if n_rows == 0:
                raise ValueError(f"{self.path}: no data rows, only the header line.")

    def _parse(self, chunk, line_no):
        """Parse the lines of ``chunk`` (the first is line ``line_no``) into one array.

        Columns come in the order of ``_usecols`` (features, then the target).
        """
        if self._subset:  # loadtxt skips columns: count every line's fields here
            counts = list(map(methodcaller("count", self.delimiter), chunk))
            if counts.count(len(self.columns) - 1) != len(chunk):
                self._check_fields(chunk, line_no)
        try:
            data = self._loadtxt(chunk)
        except ValueError as exc:
            self._check_fields(chunk, line_no)
            self._raise_bad_value(chunk, line_no, exc)
            raise  # not reached: _raise_bad_value raises
        if data.shape[1] != len(self._parsed):  # every line has the same wrong length
            self._check_fields(chunk, line_no)
        if not np.isfinite(data).all():
            self._raise_nonfinite(chunk, line_no, data)
        return data if self._order is None else data[:, self._order]

    def _loadtxt(self, lines):
        if lines.count("\n") == len(lines):  # only empty lines: loadtxt would warn
            return np.empty((0, len(self._parsed)), dtype=self.dtype)
        data = np.loadtxt(
            lines,
            delimiter=self.delimiter,
            dtype=self.dtype,
            comments=None,
            usecols=self._parsed if self._subset else None,
            ndmin=2,
            quotechar='"',  # "1.5" is 1.5, as a quoted header name is the name
        )
        return data.reshape(-1, len(self._parsed)) if self._subset else data

    def _check_fields(self, chunk, line_no):
        """Raise the error of the first line of ``chunk`` with the wrong number of fields."""
        n_fields = len(self.columns)
        for i, line in enumerate(chunk):
            count = line.count(self.delimiter)
            if count != n_fields - 1 and line.rstrip("\n"):
                raise ValueError(
                    f"{self.path}: line {line_no + i} has {count + 1} "
                    f"field{'s' if count else ''}; the header has {n_fields}."
                )

    def _raise_bad_value(self, chunk, line_no, error):
        """Find the first value of ``chunk`` that is not a number and raise its error."""
        lo, hi = 0, len(chunk)  # the first bad line is in chunk[lo:hi]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                self._loadtxt(chunk[lo:mid])
            except ValueError:
                hi = mid
            else:
                lo = mid
        fields = chunk[lo].rstrip("\n").split(self.delimiter)
        for index in sorted(self._usecols):
            if not self._is_value(fields[index]):
                raise ValueError(
                    f"{self.path}: line {line_no + lo}, column {self.columns[index]!r}: "
                    f"{fields[index].strip()!r} is not a number."
                )
        raise ValueError(f"{self.path}: lines {line_no}-{line_no + len(chunk) - 1}: {error}")

    def _raise_nonfinite(self, chunk, line_no, data):
        """Raise the error of the first NaN or infinite value of ``data``."""
        row = int(np.flatnonzero(~np.isfinite(data).all(axis=1))[0])
        index = self._parsed[int(np.flatnonzero(~np.isfinite(data[row]))[0])]
        i = [i for i, line in enumerate(chunk) if line != "\n"][row]
        text = chunk[i].rstrip("\n").split(self.delimiter)[index].strip()
        raise ValueError(
            f"{self.path}: line {line_no + i}, column {self.columns[index]!r}: {text!r} is not "
            f"a finite {self.dtype.name} value; NaN and infinity cannot be fitted or predicted."
        )

    def _is_value(self, field):
        """Whether ``np.loadtxt`` reads ``field`` as a number of ``dtype``."""
        if not field.strip():
            return False
        try:
            np.loadtxt([field], dtype=self.dtype, comments=None, delimiter=self.delimiter,
                       quotechar='"')  # fmt: skip
        except ValueError:
            return False
        return True


def _numeric(pa, data_type):
    types = pa.types
    return (
        types.is_integer(data_type)
        or types.is_floating(data_type)
        or types.is_boolean(data_type)
        or types.is_decimal(data_type)
    )


class ParquetSource(_FileSource):
    """Read a Parquet file in batches of rows, for ``fit_stream``; needs pyarrow.

    The protocol of :class:`CSVSource`: each call opens the file and returns an
    iterator of batches, ``(X, y)`` when ``target`` names a column, ``X``
    alone when it is None. Rows are read with
    ``pyarrow.parquet.ParquetFile(path).iter_batches(batch_size=batch_rows)``,
    so memory stays bounded by the batch size. The columns read must be
    numeric (integer, floating point, boolean or decimal); a null, NaN or
    infinite value is an error naming its column and row.

    Parameters
    ----------
    path : str or path-like
        The Parquet file.
    target : str or None, default=None
        Name of the target column; None reads features only.
    batch_rows : int, default=65536
        Rows per batch (the last batch holds the rest).
    dtype : floating dtype, default=numpy.float64
        Dtype of ``X`` and ``y``.
    columns : sequence of str or None, default=None
        Names of the feature columns to read, in this order. None reads every
        column but the target. Other columns are not read and may have any
        type.
    drop : sequence of str or None, default=None
        Columns that are not features (a text id, say): with ``columns`` None,
        every column but the target and these is read.

    {attributes}

    Raises
    ------
    ImportError
        If pyarrow is not installed.
    FileNotFoundError, IsADirectoryError
        If ``path`` is missing or a directory.
    ValueError
        If the file is not Parquet, has no rows, has duplicate column names,
        lacks ``target`` or one of ``columns``, or a column to read is not
        numeric. Iterating raises a ValueError naming the column and row of a
        null, NaN or infinite value.

    See Also
    --------
    CSVSource : The same protocol for CSV files.

    Examples
    --------
    >>> import os, tempfile
    >>> import pyarrow as pa, pyarrow.parquet as pq
    >>> from skl_tfreg._readers import ParquetSource
    >>> path = os.path.join(tempfile.mkdtemp(), "data.parquet")
    >>> pq.write_table(pa.table({"a": [1.0, 4.0, 7.0], "y": [3.0, 6.0, 9.0]}), path)
    >>> source = ParquetSource(path, target="y", batch_rows=2)
    >>> [(X.tolist(), y.tolist()) for X, y in source()]
    [([[1.0], [4.0]], [3.0, 6.0]), ([[7.0]], [9.0])]
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        target: str | None = None,
        *,
        batch_rows: int = 65536,
        dtype: DTypeLike = np.float64,
        columns: Sequence[str] | None = None,
        drop: Sequence[str] | None = None,
    ) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise ImportError(
                "ParquetSource needs pyarrow, which is not installed: pip install pyarrow"
            ) from exc
        self._pa, self._pq = pa, pq
        self._set_file(path, target, batch_rows, dtype)
        with self._open() as parquet:
            schema, n_rows = parquet.schema_arrow, parquet.metadata.num_rows
        names = list(schema.names)
        self._set_columns(names, columns, drop)
        for index in self._usecols:
            field = schema.field(index)
            if not _numeric(pa, field.type):
                raise ValueError(
                    f"{self.path}: column {field.name!r} is not numeric (its type is {field.type})."
                )
        if n_rows == 0:
            raise ValueError(f"{self.path}: the file has no rows.")

    def _open(self):
        if os.path.isdir(self.path):
            raise IsADirectoryError(f"{self.path}: is a directory, not a Parquet file.")
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"{self.path}: no such Parquet file.")
        try:
            return self._pq.ParquetFile(self.path)
        except self._pa.ArrowException as exc:
            raise ValueError(f"{self.path}: not a Parquet file ({exc}).") from None

    def _column_values(self, index):
        name = self.columns[index]
        with self._open() as parquet:
            for batch in parquet.iter_batches(batch_size=self.batch_rows, columns=[name]):
                yield from ("" if v is None else str(v) for v in batch.column(0).to_pylist())

    def _batches(self):
        names = [self.columns[i] for i in self._usecols]
        row = 0
        with self._open() as parquet:
            if list(parquet.schema_arrow.names) != list(self.columns):
                raise ValueError(f"{self.path}: the columns changed since the source was created.")
            for batch in parquet.iter_batches(batch_size=self.batch_rows, columns=names):
                data = np.empty((batch.num_rows, len(names)), dtype=self.dtype)
                for j, name in enumerate(names):
                    column = batch.column(name)
                    if column.null_count:
                        first = int(np.flatnonzero(column.is_null().to_numpy(False))[0])
                        raise ValueError(
                            f"{self.path}: column {name!r} has a missing (null) value in "
                            f"row {row + first + 1}."
                        )
                    data[:, j] = column.to_numpy(zero_copy_only=False)
                    finite = np.isfinite(data[:, j])
                    if not finite.all():
                        first = int(np.flatnonzero(~finite)[0])
                        raise ValueError(
                            f"{self.path}: column {name!r}, row {row + first + 1}: "
                            f"{data[first, j]} is not a finite {self.dtype.name} value; NaN "
                            "and infinity cannot be fitted or predicted."
                        )
                row += batch.num_rows
                if batch.num_rows > 0:
                    yield self._batch(data)
