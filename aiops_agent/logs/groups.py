"""`AIOPS_LOG_GROUPS` entries to log group names: exact names, or prefixes ending in `*`."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from aiops_agent.aws.clients import AwsClients

log = structlog.get_logger(__name__)

MAX_GROUPS_PER_PREFIX = 200
CALL_TIMEOUT_S = 15.0


async def resolve_groups(clients: AwsClients, entries: list[str]) -> list[tuple[str, str]]:
    """(log group, the configured entry it came from); the entry is the bounded metric label."""
    out: dict[str, str] = {}
    for entry in entries:
        if not entry.endswith("*"):
            out.setdefault(entry, entry)
            continue
        prefix = entry[:-1]
        logs = await clients.client("logs")
        kwargs: dict[str, Any] = {"logGroupNamePrefix": prefix} if prefix else {}
        found = 0
        while found < MAX_GROUPS_PER_PREFIX:
            resp = await asyncio.wait_for(logs.describe_log_groups(**kwargs), CALL_TIMEOUT_S)
            for group in resp.get("logGroups", []):
                if found < MAX_GROUPS_PER_PREFIX:
                    out.setdefault(group["logGroupName"], entry)
                    found += 1
            token = resp.get("nextToken")
            if not token:
                break
            kwargs["nextToken"] = token
        if found >= MAX_GROUPS_PER_PREFIX:
            log.warning("logs.prefix_capped", prefix=entry, limit=MAX_GROUPS_PER_PREFIX)
    return sorted(out.items())
