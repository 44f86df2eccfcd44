"""CSVSource and ParquetSource: batches equal the whole file, and clear errors."""

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skl_tfreg._readers import CSVSource, ParquetSource


def write_csv(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def data(rng):
    """A (23, 4) table: features a, b, c and target y, with awkward magnitudes."""
    values = rng.standard_normal((23, 4)) * np.array([1.0, 1e-300, 1e300, 3.0])
    values[0, 0] = np.pi
    return values


@pytest.fixture
def csv_file(tmp_path, data):
    path = tmp_path / "data.csv"
    pd.DataFrame(data, columns=["a", "b", "c", "y"]).to_csv(path, index=False, float_format=None)
    return path


def collect(source):
    batches = list(source())
    if source.target is None:
        return np.vstack(batches), None, batches
    X = np.vstack([X for X, _ in batches])
    y = np.concatenate([y for _, y in batches])
    return X, y, batches


@pytest.mark.parametrize("batch_rows", [1, 5, 23, 24, 65536])
def test_csv_batches_equal_whole_file(csv_file, data, batch_rows):
    source = CSVSource(csv_file, target="y", batch_rows=batch_rows)
    X, y, batches = collect(source)
    whole = np.loadtxt(csv_file, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(X, whole[:, :3])
    np.testing.assert_array_equal(y, whole[:, 3])
    np.testing.assert_array_equal(X, data[:, :3])  # to the last bit, as pandas wrote it
    sizes = [len(b[1]) for b in batches]
    assert sizes == [batch_rows] * (23 // batch_rows) + (
        [23 % batch_rows] if 23 % batch_rows else []
    )
    for (X_b, y_b), n in zip(batches, sizes, strict=True):
        assert X_b.shape == (n, 3) and y_b.shape == (n,)
        assert X_b.flags.c_contiguous and y_b.flags.c_contiguous
    assert source.feature_names.tolist() == ["a", "b", "c"]
    assert source.feature_names.dtype == object
    assert source.target == "y"


def test_csv_each_call_is_a_fresh_pass(csv_file):
    source = CSVSource(csv_file, target="y", batch_rows=7)
    first, second = collect(source)[0], collect(source)[0]
    np.testing.assert_array_equal(first, second)
    iterator = source()  # an abandoned pass leaves nothing open (warnings are errors)
    next(iterator)
    iterator.close()


def test_csv_without_target_and_column_selection(csv_file, data):
    X, _, batches = collect(CSVSource(csv_file, batch_rows=10))
    np.testing.assert_array_equal(X, data)
    assert all(isinstance(b, np.ndarray) for b in batches)
    source = CSVSource(csv_file, columns=["c", "a"], batch_rows=10)
    np.testing.assert_array_equal(collect(source)[0], data[:, [2, 0]])
    assert source.feature_names.tolist() == ["c", "a"]
    assert source.columns.tolist() == ["a", "b", "c", "y"]
    source = CSVSource(csv_file, target="a", columns=["y"])
    X, y, _ = collect(source)
    np.testing.assert_array_equal(X, data[:, [3]])
    np.testing.assert_array_equal(y, data[:, 0])


def test_csv_target_in_the_middle_float32_and_tabs(tmp_path):
    path = write_csv(tmp_path / "t.tsv", "p\ttarget\tq\n1.5\t2\t3\n4\t5\t6e-1\n")
    X, y, _ = collect(CSVSource(path, target="target", delimiter="\t", dtype=np.float32))
    assert X.dtype == y.dtype == np.float32
    np.testing.assert_array_equal(X, np.array([[1.5, 3], [4, 0.6]], np.float32))
    np.testing.assert_array_equal(y, [2, 5])


def test_csv_lenient_text(tmp_path):
    """BOM, CRLF, quoted and padded names, padded values, empty lines, no final newline."""
    text = '\ufeff"a" , b ,y\r\n1, 2 ,3\r\n\r\n\r\n4,5,6\r\n-1e-400,+.5,-2E3\r\n\r\n7,8,9'
    path = tmp_path / "w.csv"
    path.write_bytes(text.encode("utf-8"))
    source = CSVSource(path, target="y", batch_rows=2)
    X, y, batches = collect(source)
    assert source.feature_names.tolist() == ["a", "b"]
    np.testing.assert_array_equal(X, [[1, 2], [4, 5], [0, 0.5], [7, 8]])
    np.testing.assert_array_equal(y, [3, 6, -2000, 9])
    assert [len(b[1]) for b in batches] == [1, 1, 1, 1]  # empty lines count towards a batch


def test_csv_text_columns_not_read_are_allowed(tmp_path):
    path = write_csv(tmp_path / "ids.csv", "id,a,y\nx1,1,2\nx2,3,4\n")
    X, y, _ = collect(CSVSource(path, target="y", columns=["a"]))
    np.testing.assert_array_equal(X, [[1], [3]])
    with pytest.raises(ValueError, match=r"line 2, column 'id': 'x1' is not a number"):
        collect(CSVSource(path, target="y"))


def test_csv_memory_is_bounded_by_batch_rows(tmp_path):
    path = tmp_path / "long.csv"
    with open(path, "w") as f:
        f.write("a,y\n")
        f.writelines(f"{i},{2 * i}\n" for i in range(5000))
    sizes = [len(y) for _, y in CSVSource(path, target="y", batch_rows=64)()]
    assert max(sizes) == 64 and sum(sizes) == 5000


# --- CSV errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("", r"empty\.csv: the file is empty; it needs a header line"),
        ("\n1,2\n", r"line 1 is empty; it must be the header line"),
        ("1,2\n3,4\n", r"no header: line 1 holds only numbers"),
        ("a,b\n", r"no data rows, only the header line"),
        ("a,b\n\n\n", r"no data rows, only the header line"),
        ("a,b,a,b\n1,2,3,4\n", r"duplicate column names \['a', 'b'\]"),
        ("a,,b\n1,2,3\n", r"column 2 of the header \(line 1\) has no name"),
    ],
)
def test_csv_header_errors(tmp_path, text, message):
    path = write_csv(tmp_path / "empty.csv", text)
    with pytest.raises(ValueError, match=message) as info:
        CSVSource(path)
    assert str(path) in str(info.value)


def test_csv_missing_target_lists_columns(csv_file):
    expected = f"{csv_file}: no target column 'z'; the columns are ['a', 'b', 'c', 'y']."
    with pytest.raises(ValueError, match=re.escape(expected)):
        CSVSource(csv_file, target="z")


def test_csv_missing_columns(csv_file):
    with pytest.raises(ValueError, match=r"no columns 'q', 'r'; the columns are \['a',"):
        CSVSource(csv_file, columns=["a", "q", "r"])
    with pytest.raises(ValueError, match=r"target column 'y' is also among the columns"):
        CSVSource(csv_file, target="y", columns=["a", "y"])
    with pytest.raises(ValueError, match=r"columns lists \['a'\] more than once"):
        CSVSource(csv_file, columns=["a", "a"])
    with pytest.raises(TypeError, match="sequence of column names"):
        CSVSource(csv_file, columns="a")


def test_csv_only_target_column(tmp_path):
    path = write_csv(tmp_path / "y.csv", "y\n1\n")
    with pytest.raises(ValueError, match=r"no feature columns besides the target 'y'"):
        CSVSource(path, target="y")


def test_csv_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No such file.*nope\.csv"):
        CSVSource(tmp_path / "nope.csv")
    with pytest.raises(IsADirectoryError, match=re.escape(str(tmp_path))):
        CSVSource(tmp_path)


def test_csv_not_utf8(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"PAR1\xff\xfe\x00a,b\n")
    with pytest.raises(ValueError, match=r"bin\.csv: not UTF-8 text \(.* in line 1\)"):
        CSVSource(path)
    path.write_bytes(b"a,b\n1,2\n3,\xff\n")
    with pytest.raises(ValueError, match=r"bin\.csv: not UTF-8 text \(.* in line 3\)"):
        CSVSource(path)
    path.write_bytes(b"a,b\n" + b"1,2\n" * 5000 + b"3,\xff\n")
    source = CSVSource(path)
    with pytest.raises(ValueError, match=r"bin\.csv: not UTF-8 text \(.* in line 5002\)"):
        collect(source)


@pytest.mark.parametrize("batch_rows", [1, 2, 3, 100])
@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("7,8", r"line 4 has 2 fields; the header has 3\."),
        ("7,8,9,10", r"line 4 has 4 fields; the header has 3\."),
        ("7", r"line 4 has 1 field; the header has 3\."),
        ("   ", r"line 4 has 1 field; the header has 3\."),
        ("7,abc,9", r"line 4, column 'b': 'abc' is not a number\."),
        ("7,8,", r"line 4, column 'y': '' is not a number\."),
        ('"7x",8,9', r"line 4, column 'a': '\"7x\"' is not a number\."),
        ("7,1_0,9", r"line 4, column 'b': '1_0' is not a number\."),
    ],
)
def test_csv_bad_rows_name_the_line_and_column(tmp_path, batch_rows, bad_line, message):
    path = write_csv(tmp_path / "bad.csv", f"a,b,y\n1,2,3\n\n{bad_line}\n4,5,6\n")
    source = CSVSource(path, target="y", batch_rows=batch_rows)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": " + message):
        collect(source)


@pytest.mark.parametrize("batch_rows", [1, 3, 100])
@pytest.mark.parametrize(
    "value, dtype, shown",
    [
        ("nan", np.float64, "'nan' is not a finite float64 value"),
        ("NaN", np.float64, "'NaN' is not a finite float64 value"),
        ("-inf", np.float64, "'-inf' is not a finite float64 value"),
        ("1e400", np.float64, "'1e400' is not a finite float64 value"),
        ("1e39", np.float32, "'1e39' is not a finite float32 value"),
    ],
)
def test_csv_nonfinite_values_name_the_line_and_column(tmp_path, batch_rows, value, dtype, shown):
    path = write_csv(tmp_path / "nan.csv", f"a,b,y\n1,2,3\n\n4,{value},{value}\n5,6,7\n")
    source = CSVSource(path, target="y", batch_rows=batch_rows, dtype=dtype)
    message = f"{path}: line 4, column 'b': {shown}; NaN and infinity cannot be"
    with pytest.raises(ValueError, match=re.escape(message)):
        collect(source)
    # A column not read may hold anything.
    X, _, _ = collect(CSVSource(path, columns=["a"], batch_rows=batch_rows, dtype=dtype))
    np.testing.assert_array_equal(X, [[1], [4], [5]])


@pytest.mark.parametrize("batch_rows", [1, 100])
def test_csv_field_counts_are_checked_in_columns_not_read(tmp_path, batch_rows):
    # One line too long and one too short: the counts balance, and column a is fine.
    path = write_csv(tmp_path / "odd.csv", "a,b,y\n1,2,3\n4,5,6,7\n8,9\n")
    with pytest.raises(ValueError, match=r"line 3 has 4 fields; the header has 3"):
        collect(CSVSource(path, columns=["a"], batch_rows=batch_rows))
    path = write_csv(tmp_path / "same.csv", "a,b,y\n1,2\n4,5\n")  # every line too short
    with pytest.raises(ValueError, match=r"line 2 has 2 fields; the header has 3"):
        collect(CSVSource(path, batch_rows=batch_rows))


def test_csv_bad_value_far_into_a_batch(tmp_path):
    lines = [f"{i},{i}" for i in range(1000)]
    lines[876] = "1,2.5.5"
    path = write_csv(tmp_path / "far.csv", "a,y\n" + "\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"line 878, column 'y': '2\.5\.5' is not a number"):
        collect(CSVSource(path, target="y", batch_rows=600))


def test_csv_header_changed_between_passes(tmp_path):
    path = write_csv(tmp_path / "c.csv", "a,y\n1,2\n")
    source = CSVSource(path, target="y")
    write_csv(path, "b,y\n1,2\n")
    with pytest.raises(ValueError, match="header changed"):
        collect(source)
    write_csv(path, "a,y\n\n")
    with pytest.raises(ValueError, match="no data rows"):
        collect(source)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"batch_rows": 0}, ValueError, "batch_rows must be a positive integer"),
        ({"batch_rows": 2.0}, TypeError, "batch_rows must be a positive integer"),
        ({"batch_rows": True}, TypeError, "batch_rows must be a positive integer"),
        ({"dtype": np.int64}, ValueError, "dtype must be a floating point type"),
        ({"delimiter": ",,"}, ValueError, "delimiter must be one character"),
        ({"delimiter": "\n"}, ValueError, "delimiter must be one character"),
    ],
)
def test_csv_bad_arguments(csv_file, kwargs, error, message):
    with pytest.raises(error, match=message):
        CSVSource(csv_file, **kwargs)


# --- Parquet ---------------------------------------------------------------------------


@pytest.fixture
def parquet_file(tmp_path, data):
    path = tmp_path / "data.parquet"
    table = pa.table({"a": data[:, 0], "b": data[:, 1], "c": data[:, 2], "y": data[:, 3]})
    pq.write_table(table, path, row_group_size=10)
    return path


@pytest.mark.parametrize("batch_rows", [1, 4, 23, 65536])
def test_parquet_round_trip(parquet_file, data, batch_rows):
    source = ParquetSource(parquet_file, target="y", batch_rows=batch_rows)
    X, y, batches = collect(source)
    np.testing.assert_array_equal(X, data[:, :3])
    np.testing.assert_array_equal(y, data[:, 3])
    assert max(len(b[1]) for b in batches) <= batch_rows
    assert source.feature_names.tolist() == ["a", "b", "c"]
    assert source.feature_names.dtype == object
    X, _, batches = collect(ParquetSource(parquet_file, columns=["c", "y"]))
    np.testing.assert_array_equal(X, data[:, [2, 3]])
    assert all(isinstance(b, np.ndarray) for b in batches)


def test_parquet_types_and_dtype(tmp_path):
    path = tmp_path / "t.parquet"
    table = pa.table(
        {
            "i": pa.array([1, 2, 3], pa.int32()),
            "u": pa.array([4, 5, 6], pa.uint8()),
            "f": pa.array([0.5, 1.5, 2.5], pa.float32()),
            "b": pa.array([True, False, True]),
            "s": pa.array(["x", "y", "z"]),
            "y": pa.array([1.0, 2.0, 3.0]),
        }
    )
    pq.write_table(table, path)
    X, y, _ = collect(
        ParquetSource(path, target="y", columns=["i", "u", "f", "b"], dtype=np.float32)
    )
    assert X.dtype == y.dtype == np.float32
    np.testing.assert_array_equal(X, [[1, 4, 0.5, 1], [2, 5, 1.5, 0], [3, 6, 2.5, 1]])
    with pytest.raises(ValueError, match=r"t\.parquet: column 's' is not numeric \(its type"):
        ParquetSource(path, target="y")


def test_parquet_nulls_are_errors(tmp_path):
    path = tmp_path / "n.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0, None, 4.0], "y": [1.0, 2.0, 3.0, 4.0]}), path)
    with pytest.raises(ValueError, match=r"column 'a' has a missing \(null\) value in row 3"):
        collect(ParquetSource(path, target="y", batch_rows=2))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_parquet_nonfinite_values_are_errors(tmp_path, value):
    path = tmp_path / "n.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0, 4.0], "y": [1.0, 2.0, 3.0, value]}), path)
    source = ParquetSource(path, target="y", batch_rows=3)
    message = f"column 'y', row 4: {value} is not a finite float64 value"
    with pytest.raises(ValueError, match=re.escape(message)):
        collect(source)
    X, _, _ = collect(ParquetSource(path, columns=["a"]))
    np.testing.assert_array_equal(X, [[1], [2], [3], [4]])


@pytest.mark.parametrize(
    "kind, error, message",
    [
        ("missing", FileNotFoundError, r"nope\.parquet: no such Parquet file"),
        ("directory", IsADirectoryError, r"is a directory, not a Parquet file"),
        ("text", ValueError, r"text\.parquet: not a Parquet file"),
        ("empty", ValueError, r"empty\.parquet: the file has no rows"),
        ("target", ValueError, r"no target column 'z'; the columns are \['a', 'y'\]"),
    ],
)
def test_parquet_errors(tmp_path, kind, error, message):
    path = {
        "missing": tmp_path / "nope.parquet",
        "directory": tmp_path,
        "text": write_csv(tmp_path / "text.parquet", "a,y\n1,2\n"),
    }.get(kind, tmp_path / f"{kind}.parquet")
    table = pa.table({"a": [1.0], "y": [2.0]})
    if kind == "empty":
        pq.write_table(table.slice(0, 0), path)
    elif kind == "target":
        pq.write_table(table, path)
    with pytest.raises(error, match=message):
        ParquetSource(path, target="z" if kind == "target" else "y")


def test_parquet_without_pyarrow(monkeypatch, parquet_file):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match="pip install pyarrow"):
        ParquetSource(parquet_file)


def test_docstring_examples_run():
    import doctest

    import skl_tfreg._readers

    result = doctest.testmod(skl_tfreg._readers, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_csv_numbers_may_be_quoted(tmp_path):
    # Spreadsheets quote numbers; a quoted header name was always its name (issue 15).
    path = tmp_path / "quoted.csv"
    path.write_text('"a","b","y"\n"1.5",2,"3"\n4,"5e-1",6\n')
    (batch,) = list(CSVSource(path, target="y")())
    np.testing.assert_array_equal(batch[0], [[1.5, 2.0], [4.0, 0.5]])
    np.testing.assert_array_equal(batch[1], [3.0, 6.0])


def test_drop_leaves_columns_out_and_values_reads_text(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text('id,a,y\nx-1,1,2\n\n"x 2",3,4\n')
    source = CSVSource(path, target="y", drop=["id"])
    assert source.feature_names.tolist() == ["a"]
    assert list(source.values("id")) == ["x-1", "x 2"]  # empty lines skipped, as in batches
    with pytest.raises(ValueError, match="no column 'nope' to drop"):
        CSVSource(path, target="y", drop=["nope"])
    with pytest.raises(ValueError, match="no column 'nope'; the columns are"):
        source.values("nope")
