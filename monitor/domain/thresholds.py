"""``threshold: auto``: each feature's threshold from the calibration stored with the reference version.

A measure configured with ``threshold: auto`` has no threshold of its own: ``driftd calibrate``
derives one per feature from the reference's own contiguous windows (``monitor.domain.blocked``)
and stores it with the active reference version. The monitor binds those thresholds to the
measure before it evaluates a window, and evaluates nothing while it cannot: no calibration, one
made for other windows or measures, or a feature without a threshold is an error naming the
monitor, the measure and the command that fixes it — never a silent default.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Sequence

from monitor.config import WindowConfig
from monitor.domain.blocked import BlockedCalibration, window_key
from monitor.domain.evaluate import MeasureSetting
from monitor.domain.records import ALL_FEATURES


class CalibrationMissing(ValueError):
    """A measure with ``threshold: auto`` has no usable calibration with the active reference version."""


def auto_measures(settings: Sequence[MeasureSetting]) -> list[str]:
    """The names of the measures configured with ``threshold: auto``."""
    return [setting.measure.name for setting in settings if setting.auto]


def _described(window: Mapping[str, Any]) -> str:
    if window.get("rows") is not None:
        return f"windows of {window['rows']} rows"
    return f"windows of {window.get('span'):g} s of {window.get('timestamp')!r}"


def bind_auto_thresholds(settings: Sequence[MeasureSetting], calibration: Mapping[str, Any] | None, version: int,
                         window: WindowConfig, kinds: Mapping[str, str], monitor: str) -> list[MeasureSetting]:
    """The settings with each ``threshold: auto`` measure's per-feature thresholds bound.

    CalibrationMissing (one line naming the monitor, the measures and the fix) when the reference
    version has no calibration, one for other windows, none of a measure, or none for a feature
    the measure scores.
    """
    auto = auto_measures(settings)
    if not auto:
        return list(settings)
    names = ", ".join(map(repr, auto))
    fix = f"run `driftd calibrate {monitor}`"
    prefix = f"monitor {monitor!r}: measure(s) {names} have threshold: auto, but"
    if calibration is None:
        raise CalibrationMissing(f"{prefix} reference version {version} has no calibration: {fix} (each new "
                                 "reference version needs its own)")
    if not calibration.get("blocked"):
        raise CalibrationMissing(f"{prefix} the calibration of reference version {version} has no time-ordered "
                                 f"part (an older driftd made it): {fix} again")
    blocked = BlockedCalibration.from_dict(calibration["blocked"])
    if blocked.window != window_key(window):
        raise CalibrationMissing(f"{prefix} reference version {version} was calibrated for "
                                 f"{_described(blocked.window)} and the monitor cuts "
                                 f"{_described(window_key(window))}: {fix} again")
    bound = []
    for setting in settings:
        if not setting.auto:
            bound.append(setting)
            continue
        name = setting.measure.name
        try:
            entry = blocked.measure(name)
        except KeyError:
            raise CalibrationMissing(f"{prefix} measure {name!r} is not in the calibration of reference version "
                                     f"{version}: {fix} again") from None
        scored = [feature for feature, kind in kinds.items() if kind in setting.measure.kinds]
        if "multivariate" in setting.measure.kinds and any(kind == "numeric" for kind in kinds.values()):
            scored.append(ALL_FEATURES)
        lacking = [feature for feature in scored if feature not in entry.thresholds]
        if lacking:
            why = "; ".join(blocked.notes) or "too few reference windows"
            raise CalibrationMissing(f"{prefix} the calibration of reference version {version} has no {name!r} "
                                     f"threshold for {', '.join(map(repr, lacking))} ({why})")
        bound.append(replace(setting, feature_thresholds={feature: entry.thresholds[feature].threshold
                                                          for feature in scored}))
    return bound
