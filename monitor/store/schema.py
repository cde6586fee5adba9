"""SQL tables (SQLAlchemy 2 ORM). Alembic migrations in ``monitor/migrations`` create them."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return None if value is None else value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    """Declarative base with stable constraint names (so migrations can refer to them)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Monitor(Base):
    """A monitor known to the store, by its configured name."""

    __tablename__ = "monitors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When an operator asked to run the adapters on the latest rows (``driftd adaptations run --force``);
    #: cleared by the tick that records the forced event.
    adaptation_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ReferenceVersion(Base):
    """A versioned reference domain of a monitor, with its precomputed summary."""

    __tablename__ = "reference_versions"
    __table_args__ = (UniqueConstraint("monitor_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    origin: Mapped[str] = mapped_column(String(500))
    rows: Mapped[int] = mapped_column(Integer)
    features: Mapped[dict[str, str]] = mapped_column(JSON)
    summary: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    calibration: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class SourceCursor(Base):
    """Where a monitor's source was read up to, and the rows read but not yet in a window."""

    __tablename__ = "cursors"
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[Any] = mapped_column(JSON, nullable=True)
    pending: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    pending_rows: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Window(Base):
    """One evaluated window of a monitor."""

    __tablename__ = "windows"
    __table_args__ = (UniqueConstraint("monitor_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"), index=True)
    reference_id: Mapped[int] = mapped_column(ForeignKey("reference_versions.id"))
    seq: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    state: Mapped[str] = mapped_column(String(16))
    drift_share: Mapped[float] = mapped_column(Float)
    drifted_features: Mapped[list[str]] = mapped_column(JSON)
    missing_features: Mapped[list[str]] = mapped_column(JSON)
    statistic: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: Each measure that failed on some feature of the window, and why.
    failed_measures: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    #: What kind of change each feature shows (a list of diagnoses; None: none found, or not diagnosed).
    diagnoses: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    #: Each segment's outcome (``features.segment_by``; None: no segments).
    segments: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)


class Result(Base):
    """One measure of one feature in one window."""

    __tablename__ = "results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_id: Mapped[int] = mapped_column(ForeignKey("windows.id", ondelete="CASCADE"), index=True)
    feature: Mapped[str] = mapped_column(String(200))
    measure: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    p_value_adjusted: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float] = mapped_column(Float)
    drifted: Mapped[bool] = mapped_column(Boolean)


class WindowPerformance(Base):
    """One metric of a model's performance in one window: estimated without labels, realized once they arrive."""

    __tablename__ = "window_performance"
    __table_args__ = (UniqueConstraint("window_id", "metric"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_id: Mapped[int] = mapped_column(ForeignKey("windows.id", ondelete="CASCADE"), index=True)
    metric: Mapped[str] = mapped_column(String(40))
    estimated: Mapped[float | None] = mapped_column(Float, nullable=True)
    lower: Mapped[float | None] = mapped_column(Float, nullable=True)
    upper: Mapped[float | None] = mapped_column(Float, nullable=True)
    reference_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    reference_lower: Mapped[float | None] = mapped_column(Float, nullable=True)
    reference_upper: Mapped[float | None] = mapped_column(Float, nullable=True)
    reliable: Mapped[bool] = mapped_column(Boolean)
    outside_share: Mapped[float | None] = mapped_column(Float, nullable=True)
    alert: Mapped[bool] = mapped_column(Boolean, default=False)
    realized: Mapped[float | None] = mapped_column(Float, nullable=True)
    labelled_rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    realized_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The realized value dropped past the alert (``performance.alert.realized``).
    realized_alert: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class WindowOutputs(Base):
    """A window's model outputs by row key, and the true labels joined to them so far (Arrow IPC)."""

    __tablename__ = "window_outputs"
    window_id: Mapped[int] = mapped_column(ForeignKey("windows.id", ondelete="CASCADE"), primary_key=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"), index=True)
    outputs: Mapped[bytes] = mapped_column(LargeBinary)
    labels: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    rows: Mapped[int] = mapped_column(Integer)
    labelled_rows: Mapped[int] = mapped_column(Integer, default=0)


class LabelCursor(Base):
    """Where a monitor's label source was read up to, and the labels still waiting for their row."""

    __tablename__ = "label_cursors"
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[Any] = mapped_column(JSON, nullable=True)
    pending: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    pending_rows: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DriftEvent(Base):
    """The moment a monitor entered the drift state."""

    __tablename__ = "drift_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"), index=True)
    window_id: Mapped[int] = mapped_column(ForeignKey("windows.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    drift_share: Mapped[float] = mapped_column(Float)
    features: Mapped[list[str]] = mapped_column(JSON)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: The recent target rows (Arrow IPC) at the time of the event: what adaptation works on.
    target_sample: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    #: The metrics whose estimated drop raised the window's state (None: none did).
    performance_alerts: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    #: The metrics whose realized drop, once labels arrived, started this event (None: not such an event).
    realized_alerts: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    #: An operator's request recorded as an event to carry the rows and runs; not drift (never counted or alerted).
    forced: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


#: The ``replica`` of a pending run an operator queued (the replica that runs it replaces it).
REQUESTED = "(requested)"


class Adaptation(Base):
    """One adapter's run for a drift event.

    pending → running → succeeded | failed | rejected; a succeeded run may become promoted, and a
    promoted one rolled_back. ``reason`` says why it ended as it did.
    """

    __tablename__ = "adaptations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("drift_events.id", ondelete="CASCADE"), index=True)
    adapter: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    artifact: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    adapter_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    replica: Mapped[str | None] = mapped_column(String(200), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    model_version: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ModelVersion(Base):
    """A version of a monitor's model: the configured one, then each promoted challenger."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("monitor_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(1000))
    adaptation_id: Mapped[int | None] = mapped_column(ForeignKey("adaptations.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class Lease(Base):
    """Which replica owns a monitor, until when."""

    __tablename__ = "leases"
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)



class OutboxMessage(Base):
    """One event for one destination (a plugin's hook or a notifier), written in the transaction that
    caused it and delivered after the commit, at least once.

    pending → delivered, or dropped (its destination is gone); ``claimed_by``/``claimed_until``
    let one replica at a time deliver it. ``event_id`` is the same for every destination of one
    event, and stable across retries, so receivers can drop duplicates.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), index=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
