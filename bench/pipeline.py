"""Pipeline throughput: the daemon beside the bare floor, same emulator, same events, same depth.

N events (2,000 by default: 60 % normal, 20 % recoveries, 10 % duplicate deliveries, 10 % manual
reviews) are fed through the queue by a closed-loop feeder that keeps at most `depth` messages
outstanding (moto's SQS slows down with queue depth, EMULATORS.md), until every message is
handled: then every incident is terminal (recoveries COMPLETED, normal events IGNORED) or
resting in AWAITING_APPROVAL (manual reviews), and every duplicate suppressed.
The floor (floor.py) then does the minimum calls of the same work on a fresh queue and table
of the same emulator process. Reported: events/s of both and their ratio (target >= 0.8, issue 18).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
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
from bench.floor import expected_work, floor_writes, read_stats
from bench.harness import (
    AWS_ENV,
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
    wait_until,
)

log = structlog.get_logger(__name__)

DEFAULT_EVENTS = 2000
DEFAULT_RUNS = 3
TARGET_RATIO = 0.8


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


def start_floor(
    endpoint: str,
    queue_url: str,
    settings: Settings,
    writes: dict[str, int],
    doc_bytes: int,
    stats_path: Path,
) -> subprocess.Popen[bytes]:
    """`python -m bench.floor` on the given queue and tables, its counters in `stats_path`."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.floor",
            "--endpoint",
            endpoint,
            "--queue-url",
            queue_url,
            "--table",
            settings.incident_table,
            "--audit-table",
            settings.patterns_table,
            "--writes",
            json.dumps(writes),
            "--doc-bytes",
            str(doc_bytes),
            "--stats",
            str(stats_path),
        ],
        env={**os.environ, **AWS_ENV},
        cwd=str(Path(__file__).resolve().parents[1]),
        stdin=subprocess.DEVNULL,
    )


async def started(stats_path: Path) -> bool:
    return await asyncio.to_thread(stats_path.exists)


async def run_floor_feed(
    endpoint: str, feeds: Sequence[Feed], depth: int, writes: dict[str, int], doc_bytes: int
) -> dict[str, Any]:
    """The bare loop (python -m bench.floor, a process of its own like the daemon) on a fresh
    queue and incident table of the emulator at `endpoint`."""
    tag = time.monotonic_ns()
    settings = Settings(
        aws_endpoint_url=endpoint,
        incident_table=f"floor-{tag}-incidents",
        patterns_table=f"floor-{tag}-patterns",
    )
    stats_path = LOG_DIR / f"floor-{tag}.json"
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    async with AwsClients(endpoint_url=endpoint, max_attempts=3) as clients:
        async with asyncio.timeout(180):
            made = await bootstrap(
                clients,
                settings,
                queue_name=f"floor-events-{tag}",
                rule_name=f"floor-rule-{tag}",
                topic_name=f"floor-topic-{tag}",
            )
        sqs = await clients.client("sqs")
        proc = start_floor(endpoint, made.queue_url, settings, writes, doc_bytes, stats_path)

        async def done() -> int:
            if proc.poll() is not None:
                raise RuntimeError(f"the floor exited {proc.returncode}")
            return int(read_stats(stats_path).get("handled", 0))

        try:
            await wait_until(lambda: started(stats_path), within=60)
            feed_log = await feed_closed_loop(sqs, made.queue_url, feeds, done, depth=depth)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
    stats = read_stats(stats_path)
    calls = stats["receives"] + stats["deletes"] + stats["puts"]
    expected = expected_work((feed.kind for feed in feeds), writes)
    return {
        "events": len(feeds),
        "seconds": round(feed_log.seconds, 2),
        "events_per_second": round(len(feeds) / feed_log.seconds, 1),
        "max_outstanding": feed_log.max_outstanding,
        "writes_per_outcome": writes,
        "doc_bytes": doc_bytes,
        "aws_calls": calls,
        "receives": stats["receives"],
        "deletes": stats["deletes"],
        "puts": stats["puts"],
        "claims_lost": stats["claims_lost"],
        "retries_applied": stats["retries_applied"],
        "expected": expected,
        "outcomes_ok": stats["puts"] == expected["puts"]
        and stats["claims_lost"] == expected["claims_lost"],
    }


async def one_run(
    feeds: Sequence[Feed],
    depth: int,
    writes: dict[str, int],
    doc_bytes: int,
    *,
    floor_first: bool,
    index: int,
) -> dict[str, Any]:
    """Both sides on one fresh emulator, in the given order."""
    async with stack(f"pipeline{index}") as stack_:

        async def floor() -> dict[str, Any]:
            return await run_floor_feed(stack_.endpoint, feeds, depth, writes, doc_bytes)

        async def daemon() -> dict[str, Any]:
            return await run_daemon_feed(
                stack_, feeds, depth, LOG_DIR / f"pipeline-agent-{index}.log"
            )

        if floor_first:
            floor_result = await floor()
            daemon_result = await daemon()
        else:
            daemon_result = await daemon()
            floor_result = await floor()
    return {
        "order": "floor, daemon" if floor_first else "daemon, floor",
        "daemon": daemon_result,
        "floor": floor_result,
        "ratio": ratio(daemon_result["events_per_second"], floor_result["events_per_second"]),
    }


def spread(values: Sequence[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


async def measure(
    events: int = DEFAULT_EVENTS, depth: int = DEFAULT_DEPTH, runs: int = DEFAULT_RUNS
) -> dict[str, Any]:
    feeds = workload(events)
    calls_result = read_result("calls")
    writes = floor_writes(calls_result)
    assert calls_result is not None  # floor_writes refuses to guess without it
    completed = calls_result["incident_item_sizes"]["COMPLETED"]["mean_bytes"]
    # The floor's item carries its keys beside the opaque document: about 400 bytes of them.
    doc_bytes = max(200, int(completed) - 400)
    results = []
    for index in range(runs):
        results.append(
            await one_run(feeds, depth, writes, doc_bytes, floor_first=index % 2 == 0, index=index)
        )
    ratios = [r["ratio"] for r in results if r["ratio"] is not None]
    median_run = sorted(results, key=lambda r: r["ratio"] or 0)[len(results) // 2]
    all_ok = all(r["daemon"]["outcomes_ok"] and r["floor"]["outcomes_ok"] for r in results)
    achieved = spread(ratios)["median"] if ratios else None
    return {
        "events": events,
        "depth": depth,
        "runs": len(results),
        "mix": counts(feeds),
        # The run whose ratio is the median, in full; every run's figures under `runs_detail`.
        "daemon": median_run["daemon"],
        "floor": median_run["floor"],
        "ratio": achieved,
        "ratio_spread": spread(ratios) if ratios else None,
        "daemon_events_per_second": spread([r["daemon"]["events_per_second"] for r in results]),
        "floor_events_per_second": spread([r["floor"]["events_per_second"] for r in results]),
        "runs_detail": [
            {
                "order": r["order"],
                "ratio": r["ratio"],
                "daemon_events_per_second": r["daemon"]["events_per_second"],
                "floor_events_per_second": r["floor"]["events_per_second"],
                "daemon_aws_calls": r["daemon"]["aws_calls"],
                "floor_aws_calls": r["floor"]["aws_calls"],
                "daemon_outcomes_ok": r["daemon"]["outcomes_ok"],
                "floor_outcomes_ok": r["floor"]["outcomes_ok"],
                "floor_work": {
                    k: r["floor"][k] for k in ("puts", "claims_lost", "retries_applied", "expected")
                },
            }
            for r in results
        ],
        "targets": {
            "ratio_min": TARGET_RATIO,
            "ratio": achieved,
            # A ratio only counts when both sides did all of their work, and did it right.
            "met": achieved is not None and achieved >= TARGET_RATIO and all_ok,
            "outcomes_ok": all_ok,
        },
        "method": (
            f"{len(results)} runs, each on a fresh moto server process, the order alternating "
            "(floor first in the even runs); in each, the daemon (python -m bench.agent) and "
            "the floor (python -m bench.floor), each a process of its own, on their own queue "
            f"and tables, fed the same {events} events by a closed-loop feeder (batches of 10, "
            f"at most {depth} messages outstanding, polled every 0.1 s); events/s = events / "
            "(first send to the poll that saw the last message handled); the ratio is the "
            "median over runs, with min and max. Floor writes per outcome are the incident "
            "writes the daemon does (calls.json), the first conditional on "
            "attribute_not_exists, a duplicate's one failed claim; each one TransactWriteItems "
            "with an audit entry in the patterns table, as the daemon writes them (the "
            "emulator rolls a transaction back item by item: its cost does not grow with the "
            "tables, as on DynamoDB). "
            "The floor's work is checked: writes == expected, lost claims == duplicates."
        ),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench pipeline")
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--depth", type=int, default=DEFAULT_DEPTH)
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS)
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.events, args.depth, args.runs))
    path = write_result("pipeline", result)
    print(
        f"pipeline: daemon {result['daemon']['events_per_second']}/s, floor "
        f"{result['floor']['events_per_second']}/s, ratio {result['ratio']} -> {path}"
    )
    return result
