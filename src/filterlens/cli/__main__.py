"""``python -m filterlens.cli``: the ``filterlens`` command."""

import sys

from filterlens.cli import main

sys.exit(main())
