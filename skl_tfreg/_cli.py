"""Command line: ``skl-tfreg demo|fit|predict`` (also ``python -m skl_tfreg ...``).

``fit`` trains an SGDL2Regressor on a CSV or Parquet file read in batches (so the
file may be larger than memory) and saves it; ``predict`` loads a saved model and
writes one prediction per row of a data file as CSV. Expected failures print one
line, ``skl-tfreg: error: ...``, to stderr and exit with status 1 (2 for a bad
command line).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import warnings
from pathlib import Path

from sklearn.exceptions import ConvergenceWarning

from ._demo import run_demo
from ._estimator import SGDL2Regressor
from ._readers import CSVSource, ParquetSource
from ._version import __version__

PROG = "skl-tfreg"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (status 2)."""

    def error(self, message):
        """Print ``PROG: error: message`` and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _number(kind, low, alternative=None):
    """Return an argparse type: ``kind`` (int or float) at least ``low``, or ``alternative``."""

    def convert(text):
        if alternative is not None and text.lower() == alternative:
            return None if alternative == "none" else alternative
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value >= low or not math.isfinite(value):
            noun = "an integer" if kind is int else "a finite number"
            either = f"{alternative!r} or " if alternative else ""
            raise argparse.ArgumentTypeError(f"must be {either}{noun} >= {low}, got {text!r}")
        return value

    return convert


def _source(path, *, target=None, batch_rows=65536, columns=None, delimiter=None, drop=None):
    """Return the reader of a data file: Parquet for a ``.parquet`` file, else CSV.

    ``drop`` names columns that are not features; with ``columns`` (a model's
    feature names) it may not name one of them.
    """
    if str(path).lower().endswith(".parquet"):
        if delimiter is not None:
            raise ValueError(f"{path}: --delimiter applies to CSV files; this is a Parquet file.")
        return ParquetSource(path, target, batch_rows=batch_rows, columns=columns, drop=drop)
    return CSVSource(path, target, batch_rows=batch_rows, columns=columns, drop=drop,
                     delimiter="," if delimiter is None else delimiter)  # fmt: skip


def _names(text):
    """Return the column names of ``--drop A,B``: comma-separated, spaces stripped."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"must be column names separated by commas, got {text!r}")
    return names


def _check_destination(path, what):
    """Raise a ValueError before any work if ``path`` cannot be a file to write."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a directory; give the {what} file to write.")
    if not path.parent.is_dir():
        raise ValueError(
            f"{path}: the directory {str(path.parent)!r} of the {what} file does not exist."
        )


def _fit(args):
    _check_destination(args.model, "model")
    if Path(args.model).resolve() == Path(args.data).resolve():
        raise ValueError(f"{args.model}: the model file would replace the data file.")
    source = _source(args.data, target=args.target, batch_rows=args.batch_rows,
                     delimiter=args.delimiter, drop=args.drop)  # fmt: skip
    est = SGDL2Regressor(
        alpha=args.alpha,
        max_iter=args.max_iter,
        batch_size=args.batch_size,
        tol=args.tol,
        verbose=0 if args.quiet else 1,
    )
    _start_tensorflow()
    est.fit_stream(source)
    est.save(args.model)
    objective = f"{est.loss_curve_[-1]:.10g}" if len(est.loss_curve_) else "n/a"
    print(
        f"fitted {est.n_features_in_} features in {est.n_iter_} "
        f"{'epoch' if est.n_iter_ == 1 else 'epochs'}, final objective "
        f"{objective}; model saved to {args.model}",
        flush=True,
    )
    return 0


def _format(predictions):
    """Return the CSV lines of the predictions, exact (``repr`` round-trips a float)."""
    if predictions.ndim == 1:
        return "".join(f"{value!r}\n" for value in predictions.tolist())
    return "".join(",".join(map(repr, row)) + "\n" for row in predictions.tolist())


def _predict(args):
    est = SGDL2Regressor.load(args.model)
    names = getattr(est, "feature_names_in_", None)
    source = _source(args.data, batch_rows=args.batch_rows, columns=names,
                     delimiter=args.delimiter, drop=args.drop)  # fmt: skip
    keep = None if args.keep is None else source.values(args.keep)
    if names is None and len(source.feature_names) != est.n_features_in_:
        raise ValueError(
            f"{args.data} has {len(source.feature_names)} columns but the model was fitted "
            f"on {est.n_features_in_} features (it has no feature names, so every column of "
            "the data is a feature, in order; --drop leaves columns out)."
        )
    n_targets = 1 if est.coef_.ndim == 1 else est.coef_.shape[0]
    header = (
        "prediction" if n_targets == 1 else ",".join(f"prediction_{k}" for k in range(n_targets))
    )
    if keep is not None:
        header = f"{_field(args.keep)},{header}"
    if args.output is None:
        _write_predictions(est, source, header, sys.stdout, keep)
        return 0
    _check_destination(args.output, "output")
    output = Path(args.output)
    # Write beside the destination, then rename: a failure leaves no half-written file.
    with tempfile.NamedTemporaryFile(
        "w", dir=output.parent, prefix=f".{output.name}.", suffix=".tmp", delete=False
    ) as f:
        try:
            _write_predictions(est, source, header, f, keep)
        except BaseException:
            f.close()
            os.unlink(f.name)
            raise
    os.replace(f.name, output)
    return 0


def _write_predictions(est, source, header, out, keep=None):
    """Write the header and one line per row: the kept column's value, if any, first."""
    out.write(header + "\n")
    with warnings.catch_warnings():
        # The columns were selected by name above; numpy batches carry none.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        for X in source():
            lines = _format(est.predict(X))
            if keep is not None:
                lines = "".join(f"{_kept(keep)},{line}\n" for line in lines.splitlines())
            out.write(lines)
    out.flush()


def _kept(values):
    """Return the next kept value as a CSV field; the file must not have changed."""
    value = next(values, None)
    if value is None:
        raise ValueError("the data file has fewer rows for --keep than for the predictions; "
                         "did it change while it was read?")  # fmt: skip
    return _field(value)


def _field(text):
    """Return ``text`` as one CSV field: quoted if it holds a comma, a quote or a newline."""
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _demo(args):
    _start_tensorflow()
    run_demo(display_step=args.display_step, alpha=args.alpha)
    return 0


# Options of more than one command, declared once.
_SHARED_OPTIONS = {
    "--alpha": dict(
        type=_number(float, 0), default=1e-4, metavar="A", help="L2 penalty (default 1e-4)"
    ),
    "--batch-rows": dict(
        type=_number(int, 1), default=65536, metavar="R",
        help="rows read at a time (default 65536)",
    ),
    "--delimiter": dict(
        metavar="D", default=None,
        help="field separator of a CSV file, one character (default ',')",
    ),
    "--drop": dict(
        type=_names, default=None, metavar="COL[,COL...]",
        help="columns that are not features, such as a text id",
    ),
}  # fmt: skip


def _parser():
    parser = _Parser(
        prog=PROG,
        description="Fit an SGDL2Regressor on a CSV or Parquet file larger than memory, "
        "predict with a saved model, or run the seed experiment's demo.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="fit the seed experiment's data and compare")
    demo.add_argument(
        "--display-step",
        type=_number(int, 1),
        default=1,
        help="epochs between lines (default 1)",
    )
    demo.add_argument("--alpha", **_SHARED_OPTIONS["--alpha"])
    demo.set_defaults(run=_demo)

    fit = commands.add_parser(
        "fit",
        help="train on a CSV or Parquet file, read in batches, and save the model",
        description="Train an SGDL2Regressor on DATA (CSV with a header line, or .parquet), "
        "read in batches of --batch-rows rows so it may be larger than memory, and save it "
        "to --model. Prints one progress line per epoch, then a summary.",
    )
    fit.add_argument("data", metavar="DATA", help="training data: a .csv or .parquet file")
    fit.add_argument("--target", required=True, metavar="COL", help="name of the target column")
    fit.add_argument("--model", required=True, metavar="PATH", help="model file to write")
    fit.add_argument("--alpha", **_SHARED_OPTIONS["--alpha"])
    fit.add_argument("--max-iter", type=_number(int, 1), default=1000, metavar="N",
                     help="most epochs (default 1000)")  # fmt: skip
    fit.add_argument("--batch-size", type=_number(int, 1, "auto"), default="auto", metavar="B|auto",
                     help="rows per gradient step; 'auto' (default): full batch")  # fmt: skip
    fit.add_argument("--tol", type=_number(float, 0, "none"), default=1e-10, metavar="T|none",
                     help="stopping tolerance (default 1e-10); 'none' runs N epochs")  # fmt: skip
    fit.add_argument("--batch-rows", **_SHARED_OPTIONS["--batch-rows"])
    fit.add_argument("--delimiter", **_SHARED_OPTIONS["--delimiter"])
    fit.add_argument("--drop", **_SHARED_OPTIONS["--drop"])
    fit.add_argument("--quiet", action="store_true", help="no progress lines")
    fit.set_defaults(run=_fit)

    predict = commands.add_parser(
        "predict",
        help="predict every row of a data file with a saved model",
        description="Load MODEL (written by 'skl-tfreg fit' or SGDL2Regressor.save) and "
        "write one prediction per row of DATA as CSV: a header line 'prediction', then one "
        "exact value per line. The model's feature columns are selected by name (other "
        "columns, such as the target, are ignored); a model fitted without feature names "
        "uses every column, in order.",
    )
    predict.add_argument("model", metavar="MODEL", help="model file written by fit")
    predict.add_argument("data", metavar="DATA", help="a .csv or .parquet file")
    predict.add_argument(
        "--output", "-o", metavar="FILE", help="write the CSV here instead of to stdout"
    )
    predict.add_argument("--batch-rows", **_SHARED_OPTIONS["--batch-rows"])
    predict.add_argument("--delimiter", **_SHARED_OPTIONS["--delimiter"])
    predict.add_argument("--drop", **_SHARED_OPTIONS["--drop"])
    predict.add_argument(
        "--keep", metavar="COL", default=None,
        help="copy this column (an id, say) into the output, before the prediction",
    )  # fmt: skip
    predict.set_defaults(run=_predict)
    return parser


def _one_line(exc):
    """Return the message of an expected failure, on one line."""
    if isinstance(exc, MemoryError):
        return "out of memory; use a smaller --batch-rows (or --batch-size)"
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split()) or type(exc).__name__


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"{PROG}: warning: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def _start_tensorflow():
    """Import TensorFlow for a command that fits, keeping its start-up log off stderr.

    At import, TensorFlow logs notices (oneDNN's, the CUDA probe's "Could not
    find cuda drivers") before its log level applies, whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says; later, on a machine without a GPU, it logs
    "failed call to cuInit" as an error. The command line reports its own
    errors, and these lines read like failures to a newcomer: the level is set
    to fatal errors only (``TF_CPP_MIN_LOG_LEVEL=3``, unless the caller set one), and
    the import runs with stderr held in a file, shown only if the import fails.
    A caller who sets ``TF_CPP_MIN_LOG_LEVEL`` (0 shows everything) sees it all.
    """
    if "tensorflow" in sys.modules:
        return
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        import tensorflow  # noqa: F401

        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def main(argv=None):
    """Run the command line.

    Parameters
    ----------
    argv : list of str or None
        Arguments; ``sys.argv[1:]`` when None.

    Returns
    -------
    status : int
        Exit status: 0 on success, 1 for an expected failure (one line on
        stderr), 2 for a bad command line.
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            warnings.simplefilter("always", ConvergenceWarning)
            return args.run(args)
    except BrokenPipeError:  # stdout closed early, as by `| head`: stop quietly
        try:  # and no second error when Python flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    except (ValueError, OSError, ImportError, MemoryError) as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: error: interrupted", file=sys.stderr, flush=True)
        return 130
