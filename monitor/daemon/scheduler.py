"""The scheduler: APScheduler 3, one job per monitor, one run at a time, coalesced misfires."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Callable

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import ScheduleConfig

log = logging.getLogger("driftd.scheduler")


#: The most seconds between the first runs of two interval monitors started together (``stagger``).
STAGGER_STEP = 0.1


def stagger(intervals: list[float]) -> list[float]:
    """Delays of the first runs of interval monitors started together: monitor i of N starts
    i × min(interval / N, ``STAGGER_STEP``) seconds late, so their ticks come due one by one across the
    interval instead of all in the same instant (where each waits for the scheduler to submit the others)."""
    count = len(intervals)
    return [index * min(interval / count, STAGGER_STEP) for index, interval in enumerate(intervals)]


def make_trigger(schedule: ScheduleConfig) -> BaseTrigger:
    """An interval or cron trigger; ValueError for a bad cron expression."""
    if schedule.cron is not None:
        return CronTrigger.from_crontab(schedule.cron, timezone=timezone.utc)
    assert schedule.interval is not None
    return IntervalTrigger(seconds=schedule.interval, timezone=timezone.utc)


class Scheduler:
    """Runs each monitor's tick on its schedule, on a bounded thread pool."""

    def __init__(self, workers: int, on_lag: Callable[[str, float], None] | None = None) -> None:
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=max(1, workers))},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
            timezone=timezone.utc,
        )
        if on_lag is not None:
            self._scheduler.add_listener(lambda event: self._report_lag(event, on_lag), EVENT_JOB_SUBMITTED)

    @staticmethod
    def _report_lag(event: JobSubmissionEvent, on_lag: Callable[[str, float], None]) -> None:
        now = datetime.now(timezone.utc)
        for scheduled in event.scheduled_run_times:
            on_lag(event.job_id, max(0.0, (now - scheduled).total_seconds()))

    def add(self, name: str, schedule: ScheduleConfig, tick: Callable[[], None], delay: float = 0.0) -> None:
        """Schedule ``tick`` for monitor ``name``; the first run of an interval is ``delay`` seconds from now."""
        first = ({"next_run_time": datetime.now(timezone.utc) + timedelta(seconds=delay)}
                 if schedule.interval is not None else {})
        self._scheduler.add_job(tick, make_trigger(schedule), id=name, name=f"tick {name}", **first)

    def remove(self, name: str) -> None:
        """Stop scheduling monitor ``name`` (a tick in flight finishes)."""
        self._scheduler.remove_job(name)

    def start(self) -> None:
        """Start running jobs in the background."""
        self._scheduler.start()

    @property
    def running(self) -> bool:
        """Whether jobs are being run."""
        return self._scheduler.running

    def stop(self) -> None:
        """Run no new tick and wait for the ticks in flight to finish."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
