"""A plant's sensor log with the structure of real series, and one documented change.

Shuffled rows are independent; real sensor series are not. This log has what makes a real
series hard for a drift monitor, each part with its own time scale:

* a **daily cycle**: the temperature follows the sun (±5 °C around 18 °C, warmest at 15:00);
* a **weekly rhythm**: the load is 25 points higher in working hours on weekdays;
* **slow wandering** (AR(1) processes, the discrete Ornstein–Uhlenbeck process, with correlation
  times of days): weather moves the temperature by about ±3 °C over days, orders move the load by
  about ±6, the bearing's condition moves the vibration by a little;
* noise on every reading.

Rows come every 10 minutes (144 a day, a ``ts`` column in seconds since the epoch, the first row
at 2026-01-05 00:00 UTC, a Monday), so a one-day window holds one full daily cycle and two
windows differ through the week and the wandering — the window-to-window variability shuffling
hides. The documented change: from the start of day ``CHANGE_DAY`` a bearing wears, so the
vibration's level rises by half (its mean from about 2.0 to 3.0 mm/s, its spread with it).
Nothing else changes. Seeded: the same seed gives the same rows.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

ROWS_PER_DAY = 144
START = 1_767_571_200  # 2026-01-05 00:00:00 UTC, a Monday
DAY = 86_400
#: Days of the reference, of the stable segment after it, and the day the bearing starts to wear.
REFERENCE_DAYS, STABLE_DAYS, CHANGE_DAY, DAYS = 42, 28, 70, 84
VIBRATION_RISE = 1.5


def _wander(rng: np.random.Generator, steps: int, days: float, sd: float) -> np.ndarray:
    """A stationary AR(1) series with correlation time ``days`` and standard deviation ``sd``."""
    phi = np.exp(-1.0 / (days * ROWS_PER_DAY))
    shocks = rng.normal(0.0, sd * np.sqrt(1.0 - phi * phi), steps)
    series = np.empty(steps)
    series[0] = rng.normal(0.0, sd)
    for step in range(1, steps):
        series[step] = phi * series[step - 1] + shocks[step]
    return series


def plant_log(days: int = DAYS, seed: int = 7, change_day: int | None = CHANGE_DAY) -> pa.Table:
    """``days`` days of readings: ts, temperature (°C), load (%), vibration (mm/s)."""
    rng = np.random.default_rng(seed)
    steps = days * ROWS_PER_DAY
    step = np.arange(steps)
    hour = (step % ROWS_PER_DAY) / (ROWS_PER_DAY / 24)
    day = step // ROWS_PER_DAY
    working = (day % 7 < 5) & (hour >= 8) & (hour < 18)
    temperature = (18.0 + 5.0 * np.sin(2 * np.pi * (hour - 9.0) / 24.0) + _wander(rng, steps, 2.0, 3.0)
                   + rng.normal(0.0, 0.4, steps))
    load = 60.0 + 25.0 * working + _wander(rng, steps, 1.0, 6.0) + rng.normal(0.0, 4.0, steps)
    condition = np.exp(_wander(rng, steps, 3.0, 0.08))
    vibration = rng.gamma(8.0, 0.25, steps) * condition * (0.8 + 0.4 * load / 100.0)
    if change_day is not None:
        vibration = np.where(day >= change_day, vibration * VIBRATION_RISE, vibration)
    return pa.table({
        "ts": START + step * (DAY // ROWS_PER_DAY),
        "temperature": np.round(temperature, 2),
        "load": np.round(load, 1),
        "vibration": np.round(vibration, 3),
    })
