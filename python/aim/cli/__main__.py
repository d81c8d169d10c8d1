"""``python -m aim.cli``: the ``aim`` command (torchrun launches it this way)."""

import sys

from aim.cli import main

sys.exit(main())
