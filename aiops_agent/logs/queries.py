"""Where window counts come from: CloudWatch Logs Insights in production, FilterLogEvents for the
emulator (whose Insights ignores `filter` and `stats`).

Both answer one question, `count(group, start_ms, end_ms)`: the distinct messages of the window
that look like problems, each with how often it occurred, plus the bytes scanned. Insights does
the filtering and the aggregation server-side (`stats count(*) by @message`), so a noisy window
returns one row per distinct message instead of one per event, far under the 10,000-row cap; a
window that still reaches the cap is flagged `truncated` rather than silently undercounted.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from botocore.exceptions import ClientError

from aiops_agent.aws.clients import AwsClients

log = structlog.get_logger(__name__)

RESULT_CAP = 10_000
"""GetQueryResults returns at most 10,000 rows."""
MAX_START_BACKOFF_S = 30.0
"""The longest wait between StartQuery attempts while the concurrency limit is reached."""

SEVERITY_REGEX = (
    r"(?i)(error|exception|fail|fatal|critical|panic|timeout|timed out|refused|denied|"
    r"unavailable|unreachable|traceback|oom|killed|abort|corrupt)"
)
"""Which messages are counted: the filter runs server-side (Insights) or client-side."""

_SEVERITY_TERMS = tuple(
    SEVERITY_REGEX.removeprefix("(?i)(").removesuffix(")").replace(r"\ ", " ").split("|")
)


def is_problem(message: str) -> bool:
    """The client-side twin of `SEVERITY_REGEX`."""
    lower = message.lower()
    return any(term in lower for term in _SEVERITY_TERMS)


class QueryTimeout(Exception):
    """An Insights query did not complete before its deadline (it was stopped)."""


class QueryFailed(Exception):
    """An Insights query ended Failed, Cancelled or Timeout."""


@dataclass
class WindowCounts:
    counts: Counter[str] = field(default_factory=Counter)
    """Distinct problem message -> occurrences in the window."""
    bytes_scanned: float = 0.0
    truncated: bool = False
    """The result reached the row cap: counts are a lower bound."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class LogSource(Protocol):
    async def count(self, group: str, start_ms: int, end_ms: int) -> WindowCounts:
        """Problem messages with timestamps in [start_ms, end_ms)."""


# ---------------------------------------------------------------- Insights


def insights_query(limit: int = RESULT_CAP) -> str:
    """The Logs Insights query: filter server-side, aggregate identical messages server-side."""
    regex = SEVERITY_REGEX.replace("/", r"\/")
    return (
        f"filter @message like /{regex}/"
        " | stats count(*) as n by @message"
        " | sort n desc"
        f" | limit {limit}"
    )


def parse_results(response: dict[str, Any]) -> WindowCounts:
    """A completed `GetQueryResults` response -> counts (rows are lists of {field, value})."""
    out = WindowCounts()
    rows = response.get("results") or []
    for row in rows:
        cells = {cell.get("field"): cell.get("value") for cell in row}
        message = cells.get("@message")
        if message is None:
            continue
        raw = cells.get("n")
        try:
            n = int(float(raw)) if raw is not None else 1
        except ValueError:
            n = 1
        out.counts[str(message)] += max(n, 0)
    stats = response.get("statistics") or {}
    out.bytes_scanned = float(stats.get("bytesScanned") or 0.0)
    out.truncated = len(rows) >= RESULT_CAP
    return out


class InsightsSource:
    """StartQuery / GetQueryResults with a deadline; StopQuery on time-out; bounded concurrency."""

    def __init__(
        self,
        clients: AwsClients,
        *,
        max_concurrent: int = 10,
        deadline_s: float = 120.0,
        poll_s: float = 1.0,
        call_timeout_s: float = 30.0,
    ) -> None:
        self._clients = clients
        self._slots = asyncio.Semaphore(max_concurrent)
        """Account-wide Insights limit is 30 concurrent queries; we take a third of it."""
        self._deadline_s = deadline_s
        self._poll_s = poll_s
        self._call_timeout_s = call_timeout_s

    async def count(self, group: str, start_ms: int, end_ms: int) -> WindowCounts:
        logs = await self._clients.client("logs")
        async with self._slots:
            deadline = time.monotonic() + self._deadline_s
            query_id = await self._start(logs, group, start_ms, end_ms, deadline)
            try:
                while True:
                    resp = await asyncio.wait_for(
                        logs.get_query_results(queryId=query_id), self._call_timeout_s
                    )
                    status = resp.get("status")
                    if status == "Complete":
                        query_id = ""  # ended: nothing to stop
                        return parse_results(resp)
                    if status in ("Failed", "Cancelled", "Timeout", "Unknown"):
                        query_id = ""
                        raise QueryFailed(f"query {resp.get('queryId', '')} ended {status}")
                    if time.monotonic() >= deadline:
                        raise QueryTimeout(f"query {query_id} still {status} after deadline")
                    await asyncio.sleep(self._poll_s)
            finally:
                if query_id:  # abandoned (deadline, error, cancelled): free its slot on AWS
                    await asyncio.shield(self._stop(logs, query_id))

    async def _start(
        self, logs: Any, group: str, start_ms: int, end_ms: int, deadline: float
    ) -> str:
        """StartQuery; while the account's concurrency limit is reached (LimitExceededException:
        other replicas, dashboards), back off and try again until `deadline` (then QueryTimeout)."""
        backoff = self._poll_s
        while True:
            try:
                started = await asyncio.wait_for(
                    logs.start_query(
                        logGroupName=group,
                        # StartQuery takes epoch seconds, inclusive on both ends.
                        startTime=start_ms // 1000,
                        endTime=max(start_ms // 1000, (end_ms - 1) // 1000),
                        queryString=insights_query(),
                        limit=RESULT_CAP,
                    ),
                    self._call_timeout_s,
                )
                return str(started["queryId"])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "LimitExceededException":
                    raise
                left = deadline - time.monotonic()
                if left <= 0:
                    raise QueryTimeout(
                        f"no Insights query slot for {group} before the deadline"
                    ) from exc
                log.info("logs.query_limit_reached", log_group=group, retry_in_s=min(backoff, left))
                await asyncio.sleep(min(backoff, left))
                backoff = min(backoff * 2, MAX_START_BACKOFF_S)

    async def _stop(self, logs: Any, query_id: str) -> None:
        try:
            await asyncio.wait_for(
                logs.stop_query(queryId=query_id), min(self._call_timeout_s, 5.0)
            )
        except Exception as exc:  # best effort: the query times out server-side anyway
            log.warning("logs.stop_query_failed", query_id=query_id, error=str(exc))


# ---------------------------------------------------------------- FilterLogEvents


class FilterEventsSource:
    """Pages through FilterLogEvents and aggregates client-side (the emulator's honest path).

    Bytes scanned are estimated as the UTF-8 size of the events returned; the term filter is
    applied client-side because the emulator ignores anything but plain terms.
    """

    def __init__(
        self,
        clients: AwsClients,
        *,
        max_pages: int = 100,
        call_timeout_s: float = 30.0,
        page_size: int | None = None,
    ) -> None:
        self._clients = clients
        self._max_pages = max_pages
        self._call_timeout_s = call_timeout_s
        self._page_size = page_size
        """`limit` per call; None leaves AWS's default (up to 10,000 events or 1 MB a page)."""

    async def count(self, group: str, start_ms: int, end_ms: int) -> WindowCounts:
        logs = await self._clients.client("logs")
        out = WindowCounts()
        seen: set[str] = set()
        kwargs: dict[str, Any] = {
            "logGroupName": group,
            "startTime": start_ms,
            "endTime": end_ms - 1,  # inclusive in the API; our windows are half-open
        }
        if self._page_size is not None:
            kwargs["limit"] = self._page_size
        for _ in range(self._max_pages):
            resp = await asyncio.wait_for(logs.filter_log_events(**kwargs), self._call_timeout_s)
            for event in resp.get("events", []):
                event_id = str(event.get("eventId", ""))
                ts = int(event.get("timestamp", 0))
                if event_id in seen or not start_ms <= ts < end_ms:
                    continue
                seen.add(event_id)
                message = str(event.get("message", ""))
                out.bytes_scanned += len(message.encode())
                if is_problem(message):
                    out.counts[message] += 1
            token = resp.get("nextToken")
            if not token:
                return out
            kwargs["nextToken"] = token
        out.truncated = True
        return out
