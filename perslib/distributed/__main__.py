"""``python -m perslib.distributed``, the entry ``torchrun`` launches (see :mod:`perslib.distributed._cli`)."""

import sys

from perslib.distributed._cli import main

sys.exit(main())
