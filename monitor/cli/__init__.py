"""The ``driftd`` command line: the composition root that builds the daemon and its HTTP face.

Each module adds its commands to the one group, ``main``.
"""

from monitor.cli import adaptations, admin, backfill, comparing, history, running  # noqa: F401 - they add the commands
from monitor.cli.base import main

__all__ = ["main"]
