"""``python -m nyanops.cli``: the same as the ``nyanops`` command."""

import sys

from nyanops.cli import main

sys.exit(main())
