"""``python -m perslib.reports``: see :mod:`perslib.reports`."""

import sys

from perslib.reports._cli import main

sys.exit(main())
