"""``python -m cluster.process.cli``: the ``pgfleet`` command without the console script."""

import sys

from .entry_point import main

sys.exit(main())
