"""The command line: fit and predict from files, and one-line errors with exit statuses."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import skl_tfreg
from skl_tfreg import SGDL2Regressor
from skl_tfreg._cli import main

FEATURES = ["a", "b", "c"]


@pytest.fixture
def table(rng):
    """40 rows: features a, b, c of mixed scales and a noisy linear target y."""
    X = rng.standard_normal((40, 3)) * [1.0, 100.0, 0.01]
    y = X @ [2.0, -0.03, 50.0] + 1.5 + 0.1 * rng.standard_normal(40)
    return X, y


@pytest.fixture
def csv_file(tmp_path, table):
    X, y = table
    path = tmp_path / "train.csv"
    frame = pd.DataFrame({"a": X[:, 0], "y": y, "b": X[:, 1], "c": X[:, 2]})
    frame.to_csv(path, index=False)  # the target between the features
    return path


def run(capsys, *argv):
    status = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


def predictions(text):
    lines = text.splitlines()
    assert lines[0] == "prediction"
    return np.array([float(line) for line in lines[1:]])


def test_fit_then_predict_equals_the_in_memory_fit(tmp_path, capsys, csv_file, table):
    X, y = table
    model = tmp_path / "model.skl"
    status, out, err = run(capsys, "fit", csv_file, "--target", "y", "--model", model,
                           "--alpha", "0.01", "--batch-rows", "7")  # fmt: skip
    assert status == 0 and err == ""
    fitted = SGDL2Regressor.load(model)
    assert fitted.feature_names_in_.tolist() == FEATURES
    epochs = [line for line in out.splitlines() if line.startswith("EPOCH ")]
    assert [line.split(":")[0] for line in epochs] == [
        f"EPOCH {k}" for k in range(1, fitted.n_iter_ + 1)
    ]
    assert "training loss" in epochs[0]
    summary = out.splitlines()[-1]
    epochs = "1 epoch" if fitted.n_iter_ == 1 else f"{fitted.n_iter_} epochs"
    assert summary == (
        f"fitted 3 features in {epochs}, final objective "
        f"{fitted.loss_curve_[-1]:.10g}; model saved to {model}"
    )

    status, out, err = run(capsys, "predict", model, csv_file)
    assert status == 0 and err == ""
    got = predictions(out)
    expected = SGDL2Regressor(alpha=0.01).fit(X, y).predict(X)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # The loaded model's predictions (to the rounding of the matrix product's layout).
    np.testing.assert_allclose(got, fitted.predict(pd.DataFrame(X, columns=FEATURES)), rtol=1e-14)


def test_predictions_are_written_exactly():
    from skl_tfreg._cli import _format

    values = np.array([0.1, 1 / 3, -2.5e300, 5e-324, 123456789.12345679, -0.0])
    lines = _format(values).splitlines()
    np.testing.assert_array_equal(np.array([float(v) for v in lines]), values)
    assert lines[0] == "0.1"  # the shortest exact form
    two = _format(np.column_stack([values, -values])).splitlines()
    np.testing.assert_array_equal([float(row.split(",")[1]) for row in two], -values)


def test_fit_options_reach_the_estimator(tmp_path, capsys, csv_file):
    model = tmp_path / "m.skl"
    status, out, _ = run(capsys, "fit", csv_file, "--target", "y", "--model", model,
                         "--alpha", "0.5", "--max-iter", "3", "--batch-size", "8",
                         "--tol", "none", "--quiet")  # fmt: skip
    assert status == 0
    assert "EPOCH" not in out and out.startswith("fitted 3 features in 3 epochs")
    params = SGDL2Regressor.load(model).get_params()
    assert (params["alpha"], params["max_iter"], params["batch_size"], params["tol"]) == (
        0.5, 3, 8, None,
    )  # fmt: skip


def test_predict_output_file(tmp_path, capsys, csv_file):
    model, output = tmp_path / "m.skl", tmp_path / "pred.csv"
    assert run(capsys, "fit", csv_file, "--target", "y", "--model", model, "--quiet")[0] == 0
    status, out, err = run(capsys, "predict", model, csv_file, "--output", output)
    assert status == 0 and out == "" and err == ""
    assert len(predictions(output.read_text())) == 40
    status, stdout, _ = run(capsys, "predict", model, csv_file, "--batch-rows", "3")
    assert output.read_text() == stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.skl", "pred.csv", "train.csv"]


def test_predict_selects_the_model_features_by_name(tmp_path, capsys, csv_file, table):
    X, _ = table
    model = tmp_path / "m.skl"
    assert run(capsys, "fit", csv_file, "--target", "y", "--model", model, "--quiet")[0] == 0
    expected = predictions(run(capsys, "predict", model, csv_file)[1])
    other = tmp_path / "other.csv"
    ids = [f"row{i}" for i in range(40)]
    pd.DataFrame({"c": X[:, 2], "id": ids, "b": X[:, 1], "a": X[:, 0]}).to_csv(other, index=False)
    status, out, _ = run(capsys, "predict", model, other)
    assert status == 0
    np.testing.assert_array_equal(predictions(out), expected)


def test_parquet_data(tmp_path, capsys, csv_file, table):
    X, y = table
    data = tmp_path / "train.parquet"
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y}), data)
    model = tmp_path / "m.skl"
    assert run(capsys, "fit", data, "--target", "y", "--model", model, "--quiet")[0] == 0
    status, out, _ = run(capsys, "predict", model, data)
    assert status == 0
    expected = SGDL2Regressor().fit(X, y).predict(X)
    np.testing.assert_allclose(predictions(out), expected, rtol=1e-12)


def test_model_without_feature_names_uses_every_column(tmp_path, capsys, table):
    X, y = table
    model = tmp_path / "plain.skl"
    est = SGDL2Regressor().fit(X, y).save(model)
    data = tmp_path / "x.csv"
    pd.DataFrame(X, columns=["p", "q", "r"]).to_csv(data, index=False)
    status, out, _ = run(capsys, "predict", model, data)
    assert status == 0
    np.testing.assert_array_equal(predictions(out), est.predict(X))
    pd.DataFrame(X[:, :2], columns=["p", "q"]).to_csv(data, index=False)
    status, _, err = run(capsys, "predict", model, data)
    assert status == 1
    assert "x.csv has 2 columns but the model was fitted on 3 features" in err


def test_multi_target_model_writes_one_column_per_target(tmp_path, capsys, table):
    X, y = table
    model = tmp_path / "two.skl"
    est = SGDL2Regressor().fit(X, np.column_stack([y, -y])).save(model)
    data = tmp_path / "x.csv"
    pd.DataFrame(X, columns=["p", "q", "r"]).to_csv(data, index=False)
    status, out, _ = run(capsys, "predict", model, data)
    lines = out.splitlines()
    assert status == 0 and lines[0] == "prediction_0,prediction_1"
    values = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    np.testing.assert_array_equal(values, est.predict(X))


def test_convergence_warning_is_one_line(tmp_path, capsys, csv_file):
    model = tmp_path / "m.skl"
    status, _, err = run(capsys, "fit", csv_file, "--target", "y", "--model", model,
                         "--max-iter", "1", "--batch-size", "8", "--quiet")  # fmt: skip
    assert status == 0 and model.exists()
    assert err.startswith("skl-tfreg: warning: SGDL2Regressor stopped at max_iter=1")
    assert err.count("\n") == 1


def _ids_file(path, X, y, delimiter=","):
    """A CSV file of real-world shape: a text id first, quoted numbers, the target last."""
    d = delimiter
    lines = [f'id{d}"a"{d}b{d}c{d}y']
    for i, (row, target) in enumerate(zip(X.tolist(), y.tolist(), strict=True)):
        lines.append(f'"house, {i}"{d}"{row[0]!r}"{d}{row[1]!r}{d}{row[2]!r}{d}{target!r}'
                     if d != "," else
                     f"house-{i},\"{row[0]!r}\",{row[1]!r},{row[2]!r},{target!r}")  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_delimiter_drop_keep_and_quoted_numbers(tmp_path, capsys, table, delimiter):
    X, y = table
    data = _ids_file(tmp_path / "houses.csv", X, y, delimiter)
    model = tmp_path / "m.skl"
    options = [] if delimiter == "," else ["--delimiter", delimiter]
    status, _, err = run(capsys, "fit", data, "--target", "y", "--drop", "id", "--model",
                         model, "--quiet", *options)  # fmt: skip
    assert status == 0 and err == ""
    assert SGDL2Regressor.load(model).feature_names_in_.tolist() == FEATURES
    status, out, err = run(capsys, "predict", model, data, "--keep", "id", *options)
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "id,prediction"
    ids = [line.rsplit(",", 1)[0] for line in lines[1:]]
    expected_ids = ([f"house-{i}" for i in range(len(y))] if delimiter == "," else
                    [f'"house, {i}"' for i in range(len(y))])  # fmt: skip
    assert ids == expected_ids  # a value holding a comma is quoted
    got = np.array([float(line.rsplit(",", 1)[1]) for line in lines[1:]])
    np.testing.assert_allclose(got, SGDL2Regressor().fit(X, y).predict(X), rtol=1e-12)


def test_parquet_takes_drop_and_keep_but_not_a_delimiter(tmp_path, capsys, table):
    X, y = table
    data = tmp_path / "houses.parquet"
    ids = [f"h{i}" for i in range(len(y))]
    pq.write_table(pa.table({"id": ids, "a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y}), data)
    model = tmp_path / "m.skl"
    assert run(capsys, "fit", data, "--target", "y", "--drop", "id", "--model", model,
               "--quiet")[0] == 0  # fmt: skip
    status, out, _ = run(capsys, "predict", model, data, "--keep", "id")
    assert status == 0 and [line.split(",")[0] for line in out.splitlines()] == ["id", *ids]
    status, _, err = run(capsys, "predict", model, data, "--delimiter", ";")
    assert status == 1 and "--delimiter applies to CSV files" in err and err.count("\n") == 1


def test_a_model_without_names_predicts_with_columns_dropped(tmp_path, capsys, table):
    X, y = table
    model = tmp_path / "m.skl"
    SGDL2Regressor().fit(X, y).save(model)  # no feature names: every column, in order
    data = _ids_file(tmp_path / "houses.csv", X, y)
    status, out, _ = run(capsys, "predict", model, data, "--drop", "id,y")
    assert status == 0
    np.testing.assert_allclose(predictions(out), SGDL2Regressor().fit(X, y).predict(X),
                               rtol=1e-12)  # fmt: skip


@pytest.mark.parametrize(
    "argv, status, message",
    [
        (["fit", "{data}", "--target", "y", "--drop", "nope", "--model", "{model}"], 1,
         "no column 'nope' to drop"),
        (["fit", "{data}", "--target", "y", "--drop", "id,y", "--model", "{model}"], 1,
         "target column 'y' is also among the columns to drop"),
        (["predict", "{named}", "{data}", "--drop", "id,a"], 1,
         "Column 'a' is both among the columns to read and to drop"),
        (["predict", "{named}", "{data}", "--keep", "nope"], 1, "no column 'nope'"),
        (["fit", "{data}", "--target", "y", "--drop", "id,,b", "--model", "{model}"], 2,
         "--drop"),
        (["fit", "{data}", "--target", "y", "--delimiter", ";;", "--model", "{model}"], 1,
         "delimiter must be one character"),
    ],
)  # fmt: skip
def test_bad_columns_and_delimiters_are_one_line(tmp_path, capsys, table, argv, status,
                                                  message):  # fmt: skip
    X, y = table
    files = dict(data=_ids_file(tmp_path / "houses.csv", X, y), model=tmp_path / "m.skl",
                 named=tmp_path / "named.skl")  # fmt: skip
    SGDL2Regressor().fit(pd.DataFrame(X, columns=FEATURES), y).save(files["named"])
    got, out, err = run(capsys, *[arg.format(**files) for arg in argv])
    assert got == status and err.count("\n") == 1 and message in err, err


def test_help_and_missing_command(capsys):
    status, out, _ = run(capsys, "--help")
    assert status == 0 and "predict" in out and "fit" in out
    status, out, _ = run(capsys, "fit", "--help")
    assert status == 0 and "--batch-rows" in out
    status, _, err = run(capsys)
    assert status == 2 and err.count("\n") == 1 and "error" in err


def _write(path, text):
    path.write_text(text)
    return path


@pytest.fixture
def files(tmp_path, csv_file):
    """Paths for the error cases, built on demand by name."""
    model = tmp_path / "good.skl"
    SGDL2Regressor().fit(np.eye(3), [1.0, 2.0, 3.0]).save(model)
    named = tmp_path / "named.skl"
    SGDL2Regressor().fit(pd.DataFrame(np.eye(3), columns=FEATURES), [1.0, 2.0, 3.0]).save(named)
    table = pa.table({"a": [1.0, 2.0], "s": ["x", "y"], "y": [1.0, 2.0]})
    pq.write_table(table, tmp_path / "text.parquet")
    return {
        "csv": csv_file,
        "dir": tmp_path,
        "missing": tmp_path / "missing.csv",
        "empty": _write(tmp_path / "empty.csv", ""),
        "header": _write(tmp_path / "header.csv", "a,b,y\n"),
        "nonnumeric": _write(tmp_path / "nonnum.csv", "a,b,y\n1,2,3\n4,five,6\n"),
        "nan": _write(tmp_path / "nan.csv", "a,b,c,y\n1,2,3,4\n4,nan,6,7\n"),
        "fields": _write(tmp_path / "fields.csv", "a,b,y\n1,2,3\n4,5\n"),
        "dup": _write(tmp_path / "dup.csv", "a,a,y\n1,2,3\n"),
        "noheader": _write(tmp_path / "nohead.csv", "1,2,3\n4,5,6\n"),
        "model": model,
        "named": named,
        "junk": _write(tmp_path / "junk.skl", "not a model"),
        "textparquet": tmp_path / "text.parquet",
        "nodir": tmp_path / "no" / "such" / "m.skl",
    }


FIT = ["fit", "{csv}", "--target", "y", "--model", "{dir}/out.skl"]


@pytest.mark.parametrize(
    "argv, status, message",
    [
        (["fit", "{missing}", "--target", "y", "--model", "m.skl"], 1,
         "missing.csv: No such file or directory"),
        (["fit", "{dir}", "--target", "y", "--model", "m.skl"], 1, "Is a directory"),
        (["fit", "{empty}", "--target", "y", "--model", "m.skl"], 1, "the file is empty"),
        (["fit", "{header}", "--target", "y", "--model", "m.skl"], 1, "no data rows"),
        (["fit", "{noheader}", "--target", "y", "--model", "m.skl"], 1, "no header"),
        (["fit", "{dup}", "--target", "y", "--model", "m.skl"], 1, "duplicate column names"),
        (["fit", "{csv}", "--target", "z", "--model", "m.skl"], 1,
         "no target column 'z'; the columns are ['a', 'y', 'b', 'c']"),
        (["fit", "{nonnumeric}", "--target", "y", "--model", "{dir}/m.skl"], 1,
         "nonnum.csv: line 3, column 'b': 'five' is not a number"),
        (["fit", "{nan}", "--target", "y", "--model", "{dir}/m.skl"], 1,
         "nan.csv: line 3, column 'b': 'nan' is not a finite float64 value"),
        (["fit", "{fields}", "--target", "y", "--model", "{dir}/m.skl"], 1,
         "fields.csv: line 3 has 2 fields; the header has 3"),
        (["fit", "{textparquet}", "--target", "y", "--model", "m.skl"], 1,
         "column 's' is not numeric"),
        (["fit", "{csv}", "--target", "y", "--model", "{nodir}"], 1, "does not exist"),
        (["fit", "{csv}", "--target", "y", "--model", "{dir}"], 1, "is a directory"),
        (["fit", "{csv}", "--target", "y", "--model", "{csv}"], 1, "would replace the data"),
        ([*FIT, "--alpha", "-1"], 2, "argument --alpha: must be a finite number >= 0, got '-1'"),
        ([*FIT, "--alpha", "nan"], 2, "argument --alpha"),
        ([*FIT, "--max-iter", "0"], 2, "argument --max-iter: must be an integer >= 1"),
        ([*FIT, "--max-iter", "2.5"], 2, "argument --max-iter"),
        ([*FIT, "--batch-size", "0"], 2, "argument --batch-size"),
        ([*FIT, "--batch-size", "big"], 2, "--batch-size: must be 'auto' or an integer >= 1"),
        ([*FIT, "--tol=-1e-3"], 2, "--tol: must be 'none' or a finite number >= 0"),
        ([*FIT, "--batch-rows", "0"], 2, "argument --batch-rows"),
        (["fit", "{csv}", "--model", "m.skl"], 2, "required: --target"),
        (["predict", "{missing}", "{csv}"], 1, "missing.csv: No such file or directory"),
        (["predict", "{junk}", "{csv}"], 1, "junk.skl"),
        (["predict", "{csv}", "{csv}"], 1, "train.csv"),
        (["predict", "{named}", "{header}"], 1, "no data rows"),
        (["predict", "{named}", "{fields}"], 1, "no column 'c'; the columns are ['a', 'b', 'y']"),
        (["predict", "{named}", "{nan}"], 1, "line 3, column 'b': 'nan' is not a finite"),
        (["predict", "{model}", "{csv}"], 1, "has 4 columns but the model was fitted on 3"),
        (["predict", "{named}", "{csv}", "--output", "{nodir}"], 1, "does not exist"),
        (["predict", "{named}", "{csv}", "--batch-rows", "-5"], 2, "argument --batch-rows"),
        (["predict", "{named}"], 2, "required: DATA"),
        (["train", "{csv}"], 2, "invalid choice: 'train'"),
        (["demo", "--display-step", "0"], 2, "argument --display-step"),
    ],
)  # fmt: skip
def test_errors_are_one_line_and_a_status(capsys, files, argv, status, message):
    status_, out, err = run(capsys, *[arg.format(**files) for arg in argv])
    assert status_ == status
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "error: " in err and "Traceback" not in err
    assert message in err
    assert err.startswith("skl-tfreg: error: " if status == 1 else "skl-tfreg")
    assert "EPOCH" not in out or status == 1


def test_failed_predict_leaves_no_output_file(tmp_path, capsys, files):
    output = tmp_path / "pred.csv"
    status, _, _ = run(capsys, "predict", files["named"], files["nan"], "--output", output)
    assert status == 1 and not output.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pred.csv")]


# --- the real process: exit statuses and stderr ----------------------------------------


def _cli(*argv, timeout=120):
    # As a user runs it: TensorFlow's log level is the command line's to set.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, "-m", "skl_tfreg", *map(str, argv)],
        capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


@pytest.mark.slow  # two processes that each import TensorFlow: about 10 s
def test_process_fit_and_predict(tmp_path, csv_file, table):
    model = tmp_path / "m.skl"
    fit = _cli("fit", csv_file, "--target", "y", "--model", model)
    assert fit.returncode == 0, fit.stderr
    assert "EPOCH 1: training loss" in fit.stdout and "model saved to" in fit.stdout
    assert fit.stderr == ""  # no TensorFlow log line
    predict = _cli("predict", model, csv_file)
    assert predict.returncode == 0, predict.stderr
    X, y = table
    expected = SGDL2Regressor().fit(X, y).predict(X)
    np.testing.assert_allclose(predictions(predict.stdout), expected, rtol=1e-12)


@pytest.mark.slow  # a process that imports TensorFlow per case: about 5 s each
@pytest.mark.parametrize(
    "argv, status, message",
    [
        (["fit", "{missing}", "--target", "y", "--model", "{dir}/m.skl"], 1, "No such file"),
        (["fit", "{nan}", "--target", "y", "--model", "{dir}/m.skl"], 1, "'nan' is not a finite"),
        (["predict", "{junk}", "{csv}"], 1, "junk.skl"),
        (["fit", "{csv}", "--target", "y", "--model", "m", "--alpha", "x"], 2, "--alpha"),
    ],
)
def test_process_errors(files, argv, status, message):
    result = _cli(*[arg.format(**files) for arg in argv])
    assert result.returncode == status
    lines = result.stderr.splitlines()  # the error alone: no TensorFlow log line
    assert len(lines) == 1 and lines[0].startswith("skl-tfreg") and message in lines[0], lines


@pytest.mark.slow  # a process that imports TensorFlow: about 5 s
def test_demo_writes_nothing_to_stderr():
    demo = _cli("demo")
    assert demo.returncode == 0 and demo.stderr == "", demo.stderr
    assert "closed form" in demo.stdout


def test_version(capsys):
    status, out, _ = run(capsys, "--version")
    assert status == 0 and out == f"skl-tfreg {skl_tfreg.__version__}\n"


@pytest.mark.parametrize(
    "exception, status, message",
    [
        (KeyboardInterrupt(), 130, "skl-tfreg: error: interrupted"),
        (MemoryError(), 1, "skl-tfreg: error: out of memory; use a smaller --batch-rows"),
        (PermissionError(13, "Permission denied", "m.skl"), 1, "error: m.skl: Permission denied"),
        (ValueError("two\nlines"), 1, "skl-tfreg: error: two lines"),
    ],
)
def test_interrupts_and_resource_errors(tmp_path, capsys, monkeypatch, csv_file, exception,
                                        status, message):  # fmt: skip
    def fail(self, source):
        raise exception

    monkeypatch.setattr(SGDL2Regressor, "fit_stream", fail)
    got, _, err = run(capsys, "fit", csv_file, "--target", "y", "--model", tmp_path / "m.skl")
    assert got == status and message in err and err.count("\n") == 1 and err.endswith("\n")


def test_closed_stdout_stops_quietly(tmp_path, capsys, monkeypatch, csv_file):
    model = tmp_path / "m.skl"
    assert run(capsys, "fit", csv_file, "--target", "y", "--model", model, "--quiet")[0] == 0

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    status = main(["predict", str(model), str(csv_file)])
    assert status == 1 and capsys.readouterr().err == ""
