"""A circuit breaker: after N consecutive failures, stop calling for a cool-off, then probe once.

closed --N failures--> open --cool-off--> half-open --probe ok--> closed
                                                    --probe fails--> open (a new cool-off)

Single event loop, no awaits inside: each method is atomic. The clock is monotonic and
injectable, so tests move time instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

import structlog

log = structlog.get_logger(__name__)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        *,
        name: str = "analyzer",
        failure_threshold: int = 5,
        cool_off_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        if failure_threshold < 1 or cool_off_s <= 0:
            raise ValueError("failure_threshold must be >= 1 and cool_off_s > 0")
        self.name = name
        self._threshold = failure_threshold
        self._cool_off_s = cool_off_s
        self._clock = clock
        self._on_change = on_change
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self._cool_off_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def allow(self) -> bool:
        """May a call go out now? In half-open, one probe at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            log.info("breaker.half_open", breaker=self.name)
            return True
        return False

    def retry_in(self) -> float:
        """Seconds until the next probe is allowed (0 when closed or half-open)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self._cool_off_s - self._clock())

    def record_success(self) -> None:
        was_open = self._opened_at is not None
        self._failures = 0
        self._opened_at = None
        self._probing = False
        if was_open:
            log.info("breaker.closed", breaker=self.name)
            self._notify(False)

    def record_failure(self) -> None:
        self._failures += 1
        if self._probing or (self._opened_at is None and self._failures >= self._threshold):
            was_open = self._opened_at is not None
            self._opened_at = self._clock()
            self._probing = False
            log.warning(
                "breaker.opened",
                breaker=self.name,
                failures=self._failures,
                cool_off_s=self._cool_off_s,
            )
            if not was_open:
                self._notify(True)

    def release(self) -> None:
        """A call that was allowed ended with neither outcome (cancelled): free the probe slot."""
        self._probing = False

    def _notify(self, is_open: bool) -> None:
        if self._on_change is not None:
            self._on_change(is_open)
