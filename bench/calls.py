"""AWS API calls per incident, by outcome: the machine-independent cost figure.

One daemon, four phases of one outcome each (NORMAL, a duplicate delivery, a recovery, a manual
review), each fed through the queue like the pipeline run (batches of 10, shallow queue). Every
call the daemon makes is counted by its botocore hooks (`aiops_aws_api_calls_total`), read from
`/metrics` before and after the phase; the phase's calls divided by its events is the amortized
cost per event, receives and deletes included. Also measured: the daemon's log bytes per event
(CloudWatch Logs ingestion is a cost too) and the stored incident's size (DynamoDB bills writes
per KB).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from aiops_agent.aws.clients import AwsClients
from aiops_agent.store.dynamodb import AUDIT_PREFIX
from bench.common import LOG_DIR, Feed, Kind, homogeneous, write_result
from bench.harness import (
    AgentChild,
    Stack,
    agent,
    aws_calls,
    deleted,
    delta,
    env_summary,
    feed_closed_loop,
    stack,
    total,
)

log = structlog.get_logger(__name__)

DEFAULT_EVENTS = 300
DYNAMODB_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
TARGET_NORMAL_CALLS = 0.3


def per_event(calls: Mapping[str, float], events: int) -> dict[str, float]:
    return {op: round(n / events, 4) for op, n in calls.items() if n}


def phase_figures(calls: Mapping[str, float], events: int) -> dict[str, Any]:
    """Calls per event, total and by kind, from a phase's `service:Operation` counts."""
    if events <= 0:
        raise ValueError("a phase needs events")
    every = sum(calls.values())
    writes = sum(n for op, n in calls.items() if op.split(":")[1] in DYNAMODB_WRITES)
    receives = calls.get("sqs:ReceiveMessage", 0.0)
    return {
        "events": events,
        "calls_per_event": round(every / events, 4),
        "dynamodb_writes_per_event": round(writes / events, 4),
        # Incident writes: a PutItem, or (with audit entries) one TransactWriteItems each.
        "incident_puts_per_event": round(
            (calls.get("dynamodb:PutItem", 0.0) + calls.get("dynamodb:TransactWriteItems", 0.0))
            / events,
            4,
        ),
        "messages_per_receive": round(events / receives, 2) if receives else None,
        "by_operation": per_event(calls, events),
    }


def item_size(item: Mapping[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values, in bytes (numbers approximated)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        for raw in value.values():
            size += len(str(raw).encode())
    return size


def _size_summary(v: Sequence[int]) -> dict[str, float]:
    return {"count": len(v), "mean_bytes": round(sum(v) / len(v)), "max_bytes": max(v)}


async def _scan(ddb: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    paginator = ddb.get_paginator("scan")
    async with asyncio.timeout(120):
        async for page in paginator.paginate(TableName=table):
            items.extend(page.get("Items", []))
    return items


async def stored_sizes(stack_: Stack) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Item sizes as stored: incidents by workflow state, and the audit trail's entries.

    The cost model prices every write by the size of the items it carries; a transaction
    carries one incident and one audit entry per timeline entry it appends.
    """
    sizes: dict[str, list[int]] = {}
    audit: list[int] = []
    async with AwsClients(endpoint_url=stack_.endpoint, max_attempts=3) as clients:
        ddb = await clients.client("dynamodb")
        for item in await _scan(ddb, stack_.settings.incident_table):
            state = item.get("workflow_state", {}).get("S", "?")
            sizes.setdefault(state, []).append(item_size(item))
        for item in await _scan(ddb, stack_.settings.patterns_table):
            if item.get("pk", {}).get("S", "").startswith(AUDIT_PREFIX):
                audit.append(item_size(item))
    incidents = {state: _size_summary(v) for state, v in sorted(sizes.items())}
    return incidents, (_size_summary(audit) if audit else {"count": 0})


OUTCOME_CHECK: dict[Kind, tuple[str, dict[str, str]]] = {
    "normal": ("aiops_incidents_total", {"outcome": "IGNORED"}),
    "recovered": ("aiops_incidents_total", {"outcome": "COMPLETED"}),
    "duplicate": ("aiops_suppressions_total", {"reason": "duplicate"}),
    "review": ("aiops_manual_reviews_total", {}),
}
"""The counter that each phase's events must all move, and its labels."""


async def run_phase(
    child: AgentChild, stack_: Stack, sqs: Any, kind: Kind, feeds: Sequence[Feed]
) -> dict[str, Any]:
    before = await child.metrics()
    base = await deleted(child)
    log_before = child.log_bytes()
    started = time.monotonic()

    async def done() -> int:
        return await deleted(child) - base

    await feed_closed_loop(sqs, stack_.queue_url, feeds, done)
    seconds = time.monotonic() - started
    after = await child.metrics()
    changed = delta(after, before)
    counter, labels = OUTCOME_CHECK[kind]
    reached = int(total(changed, counter, **labels))
    figures = phase_figures(aws_calls(changed), len(feeds))
    figures["log_bytes_per_event"] = round((child.log_bytes() - log_before) / len(feeds))
    figures["seconds"] = round(seconds, 2)
    figures["outcome_reached"] = reached
    figures["outcome_ok"] = reached == len(feeds)
    log.info("bench.calls_phase", kind=kind, **{k: figures[k] for k in ("calls_per_event",)})
    return figures


async def measure(events: int = DEFAULT_EVENTS, log_dir: Path | None = None) -> dict[str, Any]:
    """The four phases on one daemon; the figures per outcome and the stored incidents' sizes."""
    log_dir = log_dir or LOG_DIR
    phases: dict[str, Any] = {}
    async with stack("calls") as stack_:
        async with (
            agent(stack_, log_dir / "calls-agent.log") as child,
            AwsClients(endpoint_url=stack_.endpoint, max_attempts=3) as clients,
        ):
            sqs = await clients.client("sqs")
            env = env_summary(stack_.agent_env(child.port))
            startup = aws_calls(await child.metrics())
            recovered = homogeneous("recovered", events, seed=21)
            plan: list[tuple[Kind, Sequence[Feed]]] = [
                ("normal", homogeneous("normal", events, seed=20)),
                ("recovered", recovered),
                # The same events again: each one a duplicate delivery of a taken event.
                ("duplicate", recovered),
                ("review", homogeneous("review", events, seed=22)),
            ]
            for kind, feeds in plan:
                phases[kind] = await run_phase(child, stack_, sqs, kind, feeds)
        sizes, audit_sizes = await stored_sizes(stack_)
    normal = phases["normal"]
    return {
        "events_per_phase": events,
        "daemon_settings": env,
        "startup_calls": startup,
        "outcomes": phases,
        "incident_item_sizes": sizes,
        "audit_item_sizes": audit_sizes,
        "targets": {
            "normal_calls_per_event_max": TARGET_NORMAL_CALLS,
            "normal_calls_per_event": normal["calls_per_event"],
            "normal_dynamodb_writes_per_event": normal["dynamodb_writes_per_event"],
            "met": normal["calls_per_event"] <= TARGET_NORMAL_CALLS
            and normal["dynamodb_writes_per_event"] == 0,
        },
        "method": (
            "one daemon (python -m bench.agent: aiops-agent run with instant actions), four "
            "phases of one outcome each, fed through SQS in batches of 10 with at most 40 "
            "messages outstanding; calls = delta of aiops_aws_api_calls_total (botocore "
            "after-call hook: once per API call, whatever botocore retried inside it) over the "
            "phase, divided by its events; receives and deletes included, so the figure is "
            "amortized over the batches."
        ),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench calls")
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="events per outcome")
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.events))
    path = write_result("calls", result)
    print(f"calls: NORMAL {result['targets']['normal_calls_per_event']} calls/event -> {path}")
    return result
