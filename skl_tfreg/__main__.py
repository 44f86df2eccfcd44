"""``python -m skl_tfreg``: the command line."""

import sys

from ._cli import main

sys.exit(main())
