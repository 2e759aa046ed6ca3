"""``python -m filterlens``: the ``filterlens`` command (filterlens.cli)."""

import sys

from filterlens.cli import main

sys.exit(main())
