"""Capped exponential backoff."""

from __future__ import annotations

from monitor.daemon.backoff import Backoff


def test_delays_double_up_to_the_cap_and_reset_on_success() -> None:
    now = [0.0]
    backoff = Backoff(base=1.0, cap=10.0, clock=lambda: now[0], jitter=0.0)
    assert backoff.ready()
    assert [backoff.failed() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert not backoff.ready()
    now[0] = 10.0
    assert backoff.ready()
    backoff.succeeded()
    assert backoff.failed() == 1.0


def test_jitter_stays_within_ten_percent() -> None:
    backoff = Backoff(base=4.0, cap=100.0)
    delays = [Backoff(base=4.0).failed() for _ in range(200)]
    assert all(3.6 <= delay <= 4.4 for delay in delays) and len(set(delays)) > 1
    assert backoff.failures == 0
