"""``python -m perslib``: the ``perslib`` command (see :mod:`perslib._cli`)."""

import sys

from perslib._cli import main

sys.exit(main())
