"""Seeded sensor scenarios with known kinds of shift, for the diagnosis tests and the demo."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

NUMERIC = ["temperature", "vibration", "flow", "pressure", "humidity", "voltage", "load", "current", "latency",
           "rpm", "torque"]
CATEGORICAL = ["status", "mode"]
#: Each injected change: feature → the kind the diagnosis must name.
INJECTED = {"temperature": "location", "vibration": "scale", "flow": "shape", "pressure": "swap",
            "humidity": "swap", "voltage": "missing_rate", "load": "correlation", "current": "correlation",
            "latency": "location", "status": "new_category"}
UNCHANGED = ["rpm", "torque", "mode"]


def sensors(rng: np.random.Generator, n: int, drifted: bool) -> pa.Table:
    """``n`` rows of the plant; with ``drifted`` every change in ``INJECTED`` is applied."""
    load = rng.normal(50, 10, n)
    current = 0.8 * (load - 50) / 10 + 0.6 * rng.normal(0, 1, n) + 5
    columns = {
        "temperature": rng.normal(20, 3, n),
        "vibration": rng.normal(0, 1, n),
        "flow": rng.normal(100, 5, n),
        "pressure": rng.normal(1013, 5, n),
        "humidity": rng.normal(60, 10, n),
        "voltage": rng.normal(230, 2, n),
        "load": load,
        "current": current,
        "latency": rng.lognormal(3, 0.8, n),
        "rpm": rng.normal(1500, 50, n),
        "torque": rng.gamma(4, 2, n),
        "status": rng.choice(["ok", "warn", "idle"], n, p=[0.7, 0.1, 0.2]).astype(object),
        "mode": rng.choice(["auto", "manual"], n, p=[0.8, 0.2]).astype(object),
    }
    voltage_missing = rng.random(n) < 0.01
    if drifted:
        columns["temperature"] = columns["temperature"] + 3.0  # one reference sd
        columns["vibration"] = columns["vibration"] * 2.0
        mode = rng.random(n) < 0.3
        columns["flow"] = np.where(mode, rng.normal(125, 1, n), columns["flow"])  # a new mode past the range
        columns["pressure"], columns["humidity"] = columns["humidity"], columns["pressure"]
        voltage_missing = rng.random(n) < 0.2
        columns["current"] = rng.permutation(columns["current"])  # same values, no longer follows load
        columns["latency"] = columns["latency"] * np.exp(1.0)
        fault = rng.random(n) < 0.12
        columns["status"] = np.where(fault, "fault", columns["status"]).astype(object)
    columns["voltage"] = np.where(voltage_missing, np.nan, columns["voltage"])
    return pa.table(columns)
