"""Command line: ``skl-tfreg demo`` (also ``python -m skl_tfreg demo``)."""

from __future__ import annotations

import argparse

from ._demo import run_demo


def main(argv=None):
    """Run the command line.

    Parameters
    ----------
    argv : list of str or None
        Arguments; ``sys.argv[1:]`` when None.

    Returns
    -------
    status : int
        Exit status.
    """
    parser = argparse.ArgumentParser(prog="skl-tfreg", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="fit the original post's data and compare")
    demo.add_argument("--display-step", type=int, default=1, help="epochs between lines")
    demo.add_argument("--alpha", type=float, default=1e-4, help="L2 penalty")
    args = parser.parse_args(argv)
    if args.display_step < 1:
        parser.error("--display-step must be at least 1")
    if args.alpha < 0:
        parser.error("--alpha must be non-negative")
    run_demo(display_step=args.display_step, alpha=args.alpha)
    return 0
