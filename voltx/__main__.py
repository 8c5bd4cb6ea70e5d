"""``python -m voltx`` is the ``voltx`` command."""

import sys

from voltx.cli.main import main

sys.exit(main())
