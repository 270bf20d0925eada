"""Logs Insights bytes scanned per day: the real log analyzer, driven over a simulated day.

`python -m bench logscan_cost [--gib-per-group-day 5] [--groups 10] [--hours 24]`

The production `LogAnalyzer` (default configuration: 24 windows of backfill, at most 12
windows a cycle, the daily scan budget shared by replicas) runs one cycle per period
(`AIOPS_LOG_POLL_SECONDS`, 300 s by default) on a clock this benchmark moves, with its leases,
watermarks, templates and budget ledger in a DynamoDB table of the emulator. Only its source is
a stand-in: a recording source that answers every query it is sent for a span of a group with
the bytes ingested in that span (Insights bills the bytes in the queried time range, whatever
the filter) and no problem messages, so no alert interrupts the day. The seed re-queried the
last hour every 5 minutes. Reported: queries and bytes scanned per day, ours and the seed's,
and the windows the budget held back.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from aiops_agent.aws.clients import AwsClients
from aiops_agent.demo.emulator import DUMMY_CREDENTIALS, MotoServer
from aiops_agent.logs.analyzer import LogAnalyzer
from aiops_agent.logs.queries import WindowCounts
from aiops_agent.notify.sns import LogNotifier
from aiops_agent.obs.health import Health
from aiops_agent.obs.metrics import Metrics
from aiops_agent.settings import Settings
from aiops_agent.store.tables import ensure_tables
from bench.common import write_result

DAY_MS = 86_400_000
GROUPS = 10
PERIOD_S = 300
PRICE_PER_GB = 0.005
"""US East Logs Insights price per GB scanned."""
DAY_START_MS = 1_767_225_600_000
"""2026-01-01T00:00:00Z: the simulated day starts on a UTC day, as the budget's does."""


class SimulatedClock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ms / 1000, UTC)


class RecordingSource:
    """Answers each query with the bytes ingested in its span; keeps every span it was sent."""

    def __init__(self, bytes_per_ms: float) -> None:
        self.bytes_per_ms = bytes_per_ms
        self.spans: dict[str, list[tuple[int, int]]] = {}

    async def count(self, group: str, start_ms: int, end_ms: int) -> WindowCounts:
        self.spans.setdefault(group, []).append((start_ms, end_ms))
        return WindowCounts(bytes_scanned=(end_ms - start_ms) * self.bytes_per_ms)


def seed_spans(start: int, cycles: int, period_s: int = PERIOD_S) -> list[tuple[int, int]]:
    """The seed: the last hour, every period."""
    period = period_s * 1000
    return [(t - 3_600_000, t) for t in (start + period * (i + 1) for i in range(cycles))]


def figures(
    spans_per_group: Mapping[str, Sequence[tuple[int, int]]], rate: float, hours: float
) -> dict[str, Any]:
    spans = [span for spans in spans_per_group.values() for span in spans]
    total = sum(end - start for start, end in spans) * rate
    groups = max(1, len(spans_per_group))
    ingested = rate * hours * 3_600_000 * groups
    return {
        "scan_factor": round(total / ingested, 3),
        "queries_per_group": round(len(spans) / groups, 1),
        "bytes_scanned": round(total),
        "gib_scanned": round(total / 2**30, 2),
        "usd": round(total / 1e9 * PRICE_PER_GB, 2),
    }


async def simulate(gib_per_group_day: float, groups: int, hours: float) -> dict[str, Any]:
    rate = gib_per_group_day * 2**30 / DAY_MS  # bytes per ms, per group
    names = [f"/bench/app-{i}" for i in range(groups)]
    source = RecordingSource(rate)
    clock = SimulatedClock(DAY_START_MS)
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    with MotoServer() as server:
        settings = Settings(
            aws_endpoint_url=server.url,
            log_groups=names,
            log_poll_seconds=PERIOD_S,
            patterns_table="logscan-patterns",
            incident_table="logscan-incidents",
        )
        async with AwsClients(endpoint_url=server.url, max_attempts=3) as clients:
            await ensure_tables(clients, settings.incident_table, settings.patterns_table)
            analyzer = LogAnalyzer(
                settings,
                clients,
                None,
                LogNotifier(),
                metrics,
                Health(metrics),
                clock,
                source=source,
                owner="bench",
            )
            cycles = round(hours * 3600 / PERIOD_S)
            for _ in range(cycles):
                clock.ms += PERIOD_S * 1000
                await analyzer.run_once()
            budget = analyzer.config.daily_scan_budget_bytes
    held = registry.get_sample_value("aiops_log_windows_analyzed_total", {"outcome": "budget"})
    ours = figures(source.spans, rate, hours)
    seed = figures({name: seed_spans(DAY_START_MS, cycles) for name in names}, rate, hours)
    return {
        "seed": seed,
        "ours": ours,
        "ratio_seed_over_ours": round(seed["bytes_scanned"] / max(1.0, ours["bytes_scanned"]), 2),
        "windows_held_by_budget": int(held or 0),
        "daily_scan_budget_gib": round(budget / 2**30, 2),
        "assumptions": {
            "groups": groups,
            "gib_ingested_per_group_day": gib_per_group_day,
            "period_s": PERIOD_S,
            "simulated_hours": hours,
            "usd_per_gb_scanned": PRICE_PER_GB,
        },
        "method": (
            "the production LogAnalyzer (default AnalyzerConfig) on a simulated clock, one "
            "run_once per period, its state in DynamoDB on the emulator; its source records the "
            "spans it is asked for and answers each with the bytes ingested in it (and no "
            "messages). The first cycles include the 24-window backfill of a new group. Both "
            f"over the same {hours:g} h of cycles (a UTC day by default); the seed's schedule "
            "re-queries the last hour every period."
        ),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench logscan_cost")
    parser.add_argument("--gib-per-group-day", type=float, default=5.0)
    parser.add_argument("--groups", type=int, default=GROUPS)
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args(argv)
    import os

    os.environ.update(DUMMY_CREDENTIALS)
    result = asyncio.run(simulate(args.gib_per_group_day, args.groups, args.hours))
    path = write_result("logscan_cost", result)
    print(
        f"logscan_cost: seed {result['seed']['gib_scanned']} GiB, ours "
        f"{result['ours']['gib_scanned']} GiB, ratio "
        f"{result['ratio_seed_over_ours']}, {result['windows_held_by_budget']} windows held "
        f"by the budget -> {path}"
    )
    return result
