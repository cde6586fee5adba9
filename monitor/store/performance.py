"""Stored model performance per window: estimates written with the window, realized values added as labels arrive."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.store.schema import Window, WindowPerformance


def performance_rows(window_id: int, performance: Mapping[str, Any]) -> list[WindowPerformance]:
    """One row per estimated metric of a window (``WindowEstimate.to_json()`` plus ``alerts``)."""
    alerts = set(performance.get("alerts") or ())
    return [WindowPerformance(window_id=window_id, metric=m["metric"], estimated=m["value"], lower=m["lower"],
                              upper=m["upper"], reference_value=m["reference_value"],
                              reference_lower=m["reference_lower"], reference_upper=m["reference_upper"],
                              reliable=bool(performance["reliable"]), outside_share=performance.get("outside_share"),
                              alert=m["metric"] in alerts)
            for m in performance.get("metrics", ())]


def performance_by_window(session: Session, window_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """Each window's metrics, estimated and realized side by side (windows without any are absent)."""
    ids = list(window_ids)
    found: dict[int, list[dict[str, Any]]] = {}
    if not ids:
        return found
    rows = session.scalars(select(WindowPerformance).where(WindowPerformance.window_id.in_(ids))
                           .order_by(WindowPerformance.window_id, WindowPerformance.id))
    for row in rows:
        found.setdefault(row.window_id, []).append(performance_json(row))
    return found


def performance_json(row: WindowPerformance) -> dict[str, Any]:
    """One stored metric as the API shows it."""
    error = None if row.realized is None or row.estimated is None else row.estimated - row.realized
    return {"metric": row.metric, "estimated": row.estimated, "lower": row.lower, "upper": row.upper,
            "reference": row.reference_value, "reference_lower": row.reference_lower,
            "reference_upper": row.reference_upper, "reliable": row.reliable, "outside_share": row.outside_share,
            "alert": row.alert, "realized": row.realized, "labelled_rows": row.labelled_rows,
            "realized_at": row.realized_at.isoformat() if row.realized_at else None, "estimation_error": error}


def window_ids(session: Session, monitor_id: int, seqs: Iterable[int]) -> dict[int, int]:
    """Window seq → window id for one monitor."""
    seqs = list(seqs)
    if not seqs:
        return {}
    rows = session.execute(select(Window.seq, Window.id).where(Window.monitor_id == monitor_id, Window.seq.in_(seqs)))
    return {seq: window_id for seq, window_id in rows}
