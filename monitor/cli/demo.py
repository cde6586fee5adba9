"""The built-in demo: synthetic sensors that drift after a few windows, on embedded SQLite."""

from __future__ import annotations

import os
from typing import Any, Mapping

from monitor.config import DriftdConfig, build_config

DEMO_WINDOW_ROWS = 1000
DEMO_REFERENCE_ROWS = 2000
DEMO_SHIFT_ROW = DEMO_REFERENCE_ROWS + 3 * DEMO_WINDOW_ROWS


def demo_monitor() -> dict[str, Any]:
    """The demo monitor as it would be written in a configuration file."""
    from plugins.connectors.synthetic import (
        CATEGORICAL_FEATURES,
        NUMERIC_FEATURES,
        demo_shifts,
    )

    return {
        "name": "demo-sensors",
        "source": {
            "type": "synthetic",
            "options": {"seed": 7, "rows_per_fetch": DEMO_WINDOW_ROWS, "shifts": demo_shifts(DEMO_SHIFT_ROW)},
        },
        "features": {"numeric": list(NUMERIC_FEATURES), "categorical": list(CATEGORICAL_FEATURES),
                     "segment_by": ["site"]},
        "window": {"rows": DEMO_WINDOW_ROWS},
        "reference": {"first_rows": DEMO_REFERENCE_ROWS},
        "schedule": {"interval": "2s"},
        # Strict thresholds: the three windows before the shift are quiet (at the usual 0.1,
        # Wasserstein alone flags about 1% of unchanged 1000-row windows per feature), while every
        # shift here is an order of magnitude past them.
        "measures": {"ks": {"threshold": 0.001}, "psi": {}, "wasserstein": {"threshold": 0.25},
                     "chi_square": {"threshold": 0.001}},
        "drift": {"share": 0.3, "consecutive": 2, "correction": "bh"},
        # Every data-quality check, reporting only: the new category 'fault' fails new_category.
        "quality": {check: {} for check in ("missing_rate", "out_of_range", "new_category", "vanished_category",
                                            "constant", "type_changed")},
    }


def demo_config(environ: Mapping[str, str] | None = None) -> DriftdConfig:
    """The configuration ``driftd run`` uses when no file is given."""
    return build_config({"monitors": [demo_monitor()]}, "built-in demo", os.environ if environ is None else environ)
