"""Pipeline throughput: the daemon beside the bare floor, same emulator, same events, same depth.

N events (2,000 by default: 60 % normal, 20 % recoveries, 10 % duplicate deliveries, 10 % manual
reviews) are fed through the queue by a closed-loop feeder that keeps at most `depth` messages
outstanding (moto's SQS slows down with queue depth, EMULATORS.md), until every message is
handled: then every incident is terminal (recoveries COMPLETED, normal events IGNORED) or
resting in AWAITING_APPROVAL (manual reviews), and every duplicate suppressed.
The floor (floor.py) then does the minimum calls of the same work on a fresh queue and table
of the same emulator process. Reported: events/s of both and their ratio (target >= 0.5).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from aiops_agent.aws.clients import AwsClients
from aiops_agent.provision.bootstrap import bootstrap
from aiops_agent.settings import Settings
from bench.calls import OUTCOME_CHECK
from bench.common import LOG_DIR, Feed, counts, ratio, read_result, workload, write_result
from bench.floor import FloorLoop, expected_work, floor_writes
from bench.harness import (
    DEFAULT_DEPTH,
    Stack,
    agent,
    aws_calls,
    deleted,
    env_summary,
    feed_closed_loop,
    sample_rss,
    stack,
    total,
)

log = structlog.get_logger(__name__)

DEFAULT_EVENTS = 2000
TARGET_RATIO = 0.5


async def run_daemon_feed(
    stack_: Stack, feeds: Sequence[Feed], depth: int, log_path: Path
) -> dict[str, Any]:
    """The daemon (a child process) takes `feeds`; throughput, calls, outcomes and RSS."""
    async with (
        agent(stack_, log_path) as child,
        AwsClients(endpoint_url=stack_.endpoint, max_attempts=3) as clients,
    ):
        sqs = await clients.client("sqs")
        await asyncio.sleep(2.0)
        rss_idle = child.rss()

        async def done() -> int:
            return await deleted(child)

        rss_samples: list[float] = []
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(sample_rss(child, rss_samples, stop))
            try:
                feed_log = await feed_closed_loop(sqs, stack_.queue_url, feeds, done, depth=depth)
            finally:
                stop.set()
        samples = await child.metrics()
        rss_after = child.rss()
        rss_peak = max([*rss_samples, rss_after["rss_mib"], rss_after.get("peak_rss_mib", 0.0)])
        env = env_summary(stack_.agent_env(child.port))
    expected = counts(feeds)
    outcomes = {
        kind: int(total(samples, counter, **labels))
        for kind, (counter, labels) in OUTCOME_CHECK.items()
    }
    calls = aws_calls(samples)
    return {
        "events": len(feeds),
        "seconds": round(feed_log.seconds, 2),
        "events_per_second": round(len(feeds) / feed_log.seconds, 1),
        "max_outstanding": feed_log.max_outstanding,
        "expected_outcomes": expected,
        "outcomes": outcomes,
        "outcomes_ok": outcomes == expected,
        "aws_calls": int(sum(calls.values())),
        "aws_calls_by_operation": calls,
        "rss_idle": rss_idle,
        "rss_after": rss_after,
        "rss_peak_mib": rss_peak,
        "daemon_settings": env,
    }


async def run_floor_feed(
    endpoint: str, feeds: Sequence[Feed], depth: int, writes: dict[str, int], doc_bytes: int
) -> dict[str, Any]:
    """The bare loop on a fresh queue and incident table of the emulator at `endpoint`."""
    settings = Settings(
        aws_endpoint_url=endpoint,
        incident_table=f"floor-{time.monotonic_ns()}-incidents",
        patterns_table=f"floor-{time.monotonic_ns()}-patterns",
    )
    async with AwsClients(endpoint_url=endpoint, max_attempts=3) as clients:
        async with asyncio.timeout(180):
            made = await bootstrap(
                clients,
                settings,
                queue_name="floor-events",
                rule_name="floor-rule",
                topic_name="floor-topic",
            )
        sqs = await clients.client("sqs")
        ddb = await clients.client("dynamodb")
        loop = FloorLoop(
            sqs,
            ddb,
            made.queue_url,
            settings.incident_table,
            writes,
            doc_bytes,
            audit_table=settings.patterns_table,
        )
        stop = asyncio.Event()

        async def done() -> int:
            return loop.stats.handled

        async with asyncio.TaskGroup() as group:
            runner = group.create_task(loop.run(stop))
            try:
                feed_log = await feed_closed_loop(sqs, made.queue_url, feeds, done, depth=depth)
            finally:
                stop.set()
            await runner
    stats = loop.stats
    calls = stats.receives + stats.deletes + stats.puts
    expected = expected_work((feed.kind for feed in feeds), writes)
    return {
        "events": len(feeds),
        "seconds": round(feed_log.seconds, 2),
        "events_per_second": round(len(feeds) / feed_log.seconds, 1),
        "max_outstanding": feed_log.max_outstanding,
        "writes_per_outcome": writes,
        "doc_bytes": doc_bytes,
        "aws_calls": calls,
        "receives": stats.receives,
        "deletes": stats.deletes,
        "puts": stats.puts,
        "claims_lost": stats.claims_lost,
        "retries_applied": stats.retries_applied,
        "expected": expected,
        "outcomes_ok": stats.puts == expected["puts"]
        and stats.claims_lost == expected["claims_lost"],
    }


async def measure(events: int = DEFAULT_EVENTS, depth: int = DEFAULT_DEPTH) -> dict[str, Any]:
    feeds = workload(events)
    calls_result = read_result("calls")
    writes = floor_writes(calls_result)
    doc_bytes = 2000
    if calls_result is not None:
        sizes = calls_result.get("incident_item_sizes", {}).get("COMPLETED", {})
        doc_bytes = max(200, int(sizes.get("mean_bytes", 2400)) - 400)
    async with stack("pipeline") as stack_:
        floor = await run_floor_feed(stack_.endpoint, feeds, depth, writes, doc_bytes)
        daemon = await run_daemon_feed(stack_, feeds, depth, LOG_DIR / "pipeline-agent.log")
    achieved = ratio(daemon["events_per_second"], floor["events_per_second"])
    return {
        "events": events,
        "depth": depth,
        "mix": counts(feeds),
        "daemon": daemon,
        "floor": floor,
        "ratio": achieved,
        "targets": {
            "ratio_min": TARGET_RATIO,
            "ratio": achieved,
            # A ratio only counts when both sides did all of their work, and did it right.
            "met": achieved is not None
            and achieved >= TARGET_RATIO
            and daemon["outcomes_ok"]
            and floor["outcomes_ok"],
        },
        "method": (
            "one moto server process; the floor runs first on its own queue and table, then the "
            "daemon (python -m bench.agent, a child process) on the bootstrapped ones; both fed "
            f"the same {events} events by a closed-loop feeder (batches of 10, at most {depth} "
            "messages outstanding, polled every 0.1 s); events/s = events / (first send to "
            "the poll that saw the last message handled). Floor writes per outcome are the "
            "incident writes the daemon does (calls.json), the first conditional on "
            "attribute_not_exists, a duplicate's one failed claim; each one TransactWriteItems "
            "with an audit entry in the patterns table, as the daemon writes them (moto copies "
            "every table a transaction touches, so a transaction's cost grows with the tables)."
        ),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench pipeline")
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--depth", type=int, default=DEFAULT_DEPTH)
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.events, args.depth))
    path = write_result("pipeline", result)
    print(
        f"pipeline: daemon {result['daemon']['events_per_second']}/s, floor "
        f"{result['floor']['events_per_second']}/s, ratio {result['ratio']} -> {path}"
    )
    return result
