"""The demo's log scenario: a normal stream, then an error spike, written into the emulator."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from botocore.exceptions import ClientError

from aiops_agent.aws.clients import AwsClients

CALL_TIMEOUT_S = 15.0
STREAM = "app-1"

_NORMAL = (
    "INFO GET /api/orders/{n} 200 in {ms} ms",
    "INFO worker-{w} processed batch {n} of {k} records",
    "ERROR retrying request to inventory-service (attempt {a})",
)
SPIKE = "ERROR payment-db connection refused: pool exhausted after {ms} ms (request {n})"


async def demo_log_spike(
    clients: AwsClients,
    log_group: str,
    *,
    window_seconds: float = 2.0,
    history_windows: int = 16,
    spike_events: int = 25,
    now_ms: int | None = None,
    spike_ahead_windows: int = 0,
) -> int:
    """Write `history_windows` windows of normal traffic ending now, then an error spike at now.

    The normal stream has one benign recurring error per window (learned, never alerted on); the
    spike is a message shape the group has never shown, `spike_events` times. Returns the number
    of events written. The analyzer that sees it needs `AIOPS_LOG_POLL_SECONDS=window_seconds`
    (its default warm-up of 12 windows is covered by the history) and the group in
    `AIOPS_LOG_GROUPS`.

    `spike_ahead_windows` stamps the spike that many windows after now. A running analyzer may
    finish the current window before a slow PutLogEvents lands (its tolerance for late events is
    the settle time and the overlap: 0.6 s with 2 s windows); a spike in a window still to come
    is never missed that way.
    """
    logs = await clients.client("logs")
    for call, kwargs in (
        (logs.create_log_group, {"logGroupName": log_group}),
        (logs.create_log_stream, {"logGroupName": log_group, "logStreamName": STREAM}),
    ):
        try:
            await asyncio.wait_for(call(**kwargs), CALL_TIMEOUT_S)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                raise
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    period = int(window_seconds * 1000)
    events: list[dict[str, Any]] = []
    first = now - history_windows * period
    for w in range(history_windows):
        base = first + w * period
        for i, shape in enumerate(_NORMAL):
            message = shape.format(n=w * 10 + i, ms=12 + i, w=i, k=50, a=1 + w % 3)
            events.append({"timestamp": base + 1 + i, "message": message})
    spike_at = now + spike_ahead_windows * period
    for i in range(spike_events):
        message = SPIKE.format(ms=30000 + i, n=7000 + i)
        events.append({"timestamp": spike_at + i, "message": message})
    events.sort(key=lambda e: e["timestamp"])
    for start in range(0, len(events), 1000):
        await asyncio.wait_for(
            logs.put_log_events(
                logGroupName=log_group, logStreamName=STREAM, logEvents=events[start : start + 1000]
            ),
            CALL_TIMEOUT_S,
        )
    return len(events)
