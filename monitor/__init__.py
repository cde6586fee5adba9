"""driftd: a drift-monitoring daemon. The core package."""

__version__ = "0.1.0"
