"""The circuit breaker and the fingerprint cache, with a hand-moved clock."""

from __future__ import annotations

from datetime import UTC, datetime

from aiops_agent.analysis.breaker import BreakerState, CircuitBreaker
from aiops_agent.analysis.cache import TtlCache, fingerprint
from aiops_agent.domain.models import NormalizedEvent


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_opens_after_n_consecutive_failures_then_half_opens_for_one_probe() -> None:
    clock = Clock()
    changes: list[bool] = []
    breaker = CircuitBreaker(
        failure_threshold=3, cool_off_s=30, clock=clock, on_change=changes.append
    )
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_success()  # resets the count: failures must be consecutive
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and changes == [True]
    assert not breaker.allow()
    assert breaker.retry_in() == 30
    clock.t += 30
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one at a time
    breaker.record_failure()  # probe failed: open for a new cool-off
    assert breaker.state is BreakerState.OPEN and breaker.retry_in() == 30
    clock.t += 30
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and changes == [True, False]


def test_a_cancelled_probe_frees_the_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, cool_off_s=5, clock=clock)
    breaker.record_failure()
    clock.t += 5
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()


def ev(**changes: object) -> NormalizedEvent:
    base: dict[str, object] = {
        "event_id": "ev-1",
        "source": "aws.ec2",
        "detail_type": "AWS API Call via CloudTrail",
        "resource_type": "ec2",
        "resource_id": "i-1",
        "action": "StopInstances",
        "time": datetime(2026, 1, 1, tzinfo=UTC),
        "principal": "arn:aws:iam::1:user/a",
    }
    base.update(changes)
    return NormalizedEvent.model_validate(base)


def test_fingerprint_ignores_event_id_but_not_what_was_done() -> None:
    assert fingerprint(ev()) == fingerprint(
        ev(event_id="ev-2", time=datetime(2026, 2, 1, tzinfo=UTC))
    )
    for change in (
        {"action": "TerminateInstances"},
        {"resource_id": "i-2"},
        {"principal": "arn:aws:iam::1:user/b"},
        {"error_code": "AccessDenied"},
        {"source": "aws.other"},
        {"region": "eu-west-1"},
    ):
        assert fingerprint(ev(**change)) != fingerprint(ev()), change


def test_cache_expires_and_evicts_least_recent() -> None:
    clock = Clock()
    cache: TtlCache[str] = TtlCache(ttl_s=10, max_entries=2, clock=clock)
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"  # a is now the most recent
    cache.put("c", "C")
    assert cache.get("b") is None and cache.get("a") == "A" and len(cache) == 2
    clock.t += 10
    assert cache.get("a") is None
