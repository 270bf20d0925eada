"""The FilterLogEvents source against the emulator: the window's problem messages, counted."""

from __future__ import annotations

import time

from aiops_agent.aws.clients import AwsClients
from aiops_agent.logs.queries import FilterEventsSource

BASE = (int(time.time()) - 3600) * 1000
"""An hour ago, on a whole second (the emulator, like AWS, refuses events older than 14 days)."""


async def _group_with(aws: AwsClients, group: str, events: list[tuple[int, str]]) -> None:
    logs = await aws.client("logs")
    await logs.create_log_group(logGroupName=group)
    await logs.create_log_stream(logGroupName=group, logStreamName="s")
    await logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": ts, "message": m} for ts, m in events],
    )


async def test_counts_problem_messages_inside_the_half_open_window(
    aws: AwsClients, unique: str
) -> None:
    group = f"/aiops/src/{unique}"
    await _group_with(
        aws,
        group,
        [
            (BASE - 1, "ERROR before the window"),
            (BASE, "ERROR db refused"),
            (BASE + 10, "ERROR db refused"),
            (BASE + 20, "INFO fine"),
            (BASE + 30, "request timed out"),
            (BASE + 1000, "ERROR at the end: next window"),
        ],
    )
    counts = await FilterEventsSource(aws).count(group, BASE, BASE + 1000)
    assert dict(counts.counts) == {"ERROR db refused": 2, "request timed out": 1}
    assert counts.total == 3
    assert counts.bytes_scanned == len("ERROR db refused") * 2 + len("INFO fine") + len(
        "request timed out"
    )
    assert counts.truncated is False


async def test_pages_are_followed_and_capped(aws: AwsClients, unique: str) -> None:
    """Ten events a page: every nextToken is followed (30 events, 3 pages and the last one says
    so), and `max_pages` caps the calls with `truncated` set."""
    group = f"/aiops/src/{unique}"
    await _group_with(aws, group, [(BASE + i, f"ERROR n{i % 3}") for i in range(30)])
    calls: list[str] = []
    async with AwsClients(
        endpoint_url=aws.endpoint_url,
        max_attempts=1,
        on_call=lambda service, op, outcome: calls.append(op),
    ) as counting:
        full = await FilterEventsSource(counting, page_size=10).count(group, BASE, BASE + 100)
        pages = len(calls)
        capped = await FilterEventsSource(counting, page_size=10, max_pages=2).count(
            group, BASE, BASE + 100
        )
    assert full.total == 30 and full.truncated is False
    assert dict(full.counts) == {"ERROR n0": 10, "ERROR n1": 10, "ERROR n2": 10}
    assert 3 <= pages <= 4  # 3 full pages (and an empty one if the emulator adds a token)
    assert calls[:pages] == ["FilterLogEvents"] * pages
    assert capped.total == 20 and capped.truncated is True
    assert len(calls) - pages == 2
