"""The redelivery backoff of a message whose handler failed: it spans an outage of minutes."""

from __future__ import annotations

import pytest

from aiops_agent.sources.sqs import redelivery_delay


def test_the_schedule_grows_by_four_up_to_the_cap() -> None:
    delays = [redelivery_delay(n, rand=lambda: 0.0) for n in range(1, 7)]
    assert delays == [5.0, 20.0, 80.0, 300.0, 300.0, 300.0]


@pytest.mark.parametrize("rand", [0.0, 0.999])
def test_five_receives_span_several_minutes_whatever_the_jitter(rand: float) -> None:
    """maxReceiveCount 5: the 5th receive comes at the sum of the first four delays, and the
    dead-letter queue takes the message only after the 5th delay as well."""
    delays = [redelivery_delay(n, rand=lambda: rand) for n in range(1, 6)]
    assert sum(delays[:4]) >= 300  # 5 minutes of outage before the 5th (last) receive
    assert sum(delays) >= 500


def test_jitter_spreads_retries_below_the_cap_and_never_below_a_second() -> None:
    assert redelivery_delay(5, rand=lambda: 0.999) == pytest.approx(225.075)
    assert redelivery_delay(1, base_s=0.5, rand=lambda: 0.999) == 1.0
    assert redelivery_delay(9, base_s=1, max_s=3, rand=lambda: 0.0) == 3.0
