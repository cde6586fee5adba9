"""Capped exponential backoff, for retrying a source that is down."""

from __future__ import annotations

import random
import time
from typing import Callable


class Backoff:
    """After the n-th failure in a row, wait ``min(cap, base * 2**(n-1))`` seconds (±10% jitter)."""

    def __init__(self, base: float = 1.0, cap: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, jitter: float = 0.1) -> None:
        self.base, self.cap, self.clock, self.jitter = base, cap, clock, jitter
        self.failures = 0
        self.retry_at = 0.0

    def failed(self) -> float:
        """Record a failure; returns the delay before the next attempt."""
        self.failures += 1
        delay = min(self.cap, self.base * 2 ** (self.failures - 1))
        delay *= 1 + random.uniform(-self.jitter, self.jitter)
        self.retry_at = self.clock() + delay
        return delay

    def succeeded(self) -> None:
        """Record a success: the next failure starts from ``base`` again."""
        self.failures = 0
        self.retry_at = 0.0

    def ready(self) -> bool:
        """Whether the next attempt may run now."""
        return self.clock() >= self.retry_at
