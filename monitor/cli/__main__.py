"""``python -m monitor.cli``: the ``driftd`` command."""

import os

from monitor.cli import main

os.environ.setdefault("PYTHONUNBUFFERED", "1")
main()
