"""``python -m experiments``: the ``neuro`` command."""

import sys

from .cli import main

sys.exit(main())
