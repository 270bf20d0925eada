"""Is there a CloudTrail trail logging this Region's management write events?

"AWS API Call via CloudTrail" events reach EventBridge only for calls a trail records
(CloudTrail user guide: EventBridge receives management events "if you have a trail"; read-only
calls are excluded). Without one, the agent sees state changes (EC2 stops, Parameter Store
changes) but never who made them: it cannot tell a deploy pipeline's change from a failure.
`aiops-agent bootstrap` and the daemon's start-up check, and say so plainly when there is none.

A trail counts when it is logging (GetTrailStatus.IsLogging), covers this Region (multi-Region,
or its home Region), and selects management write events: basic selectors with
IncludeManagementEvents (the default) and ReadWriteType All or WriteOnly, or an advanced selector
on `eventCategory = Management` that does not keep read-only events only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from botocore.exceptions import ClientError

from aiops_agent.aws.clients import AwsClients

log = structlog.get_logger(__name__)

CALL_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TrailCheck:
    logging: bool | None
    """True: a trail records management write events here; False: none does; None: unknown."""
    trail: str | None
    detail: str


def logs_management_writes(
    event_selectors: Sequence[Mapping[str, Any]] | None,
    advanced_selectors: Sequence[Mapping[str, Any]] | None,
) -> bool:
    """Whether a trail's selectors keep management write events (pure)."""
    if advanced_selectors:
        for selector in advanced_selectors:
            fields = {f.get("Field"): f for f in selector.get("FieldSelectors", [])}
            category = fields.get("eventCategory", {})
            if "Management" not in category.get("Equals", []):
                continue
            read_only = fields.get("readOnly", {})
            if read_only.get("Equals") == ["true"]:
                continue
            return True
        return False
    if not event_selectors:
        return True  # a trail without selectors logs all management events
    return any(
        s.get("IncludeManagementEvents", True) and s.get("ReadWriteType", "All") != "ReadOnly"
        for s in event_selectors
    )


def _covers(trail: Mapping[str, Any], region: str) -> bool:
    return bool(trail.get("IsMultiRegionTrail")) or trail.get("HomeRegion") == region


async def management_trail(clients: AwsClients, region: str | None = None) -> TrailCheck:
    """Look for a logging trail with management write events in `region` (default: ours)."""
    region = region or clients.region
    cloudtrail = await clients.client("cloudtrail", region=region)
    try:
        async with asyncio.timeout(CALL_TIMEOUT_S):
            described = await cloudtrail.describe_trails(includeShadowTrails=True)
    except (ClientError, TimeoutError) as exc:
        return TrailCheck(None, None, f"cannot list trails: {_why(exc)}")
    unknown: list[str] = []
    for trail in described.get("trailList", []):
        if not _covers(trail, region):
            continue
        name = str(trail.get("TrailARN") or trail.get("Name"))
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                status = await cloudtrail.get_trail_status(Name=name)
                selectors = await cloudtrail.get_event_selectors(TrailName=name)
        except (ClientError, TimeoutError) as exc:
            # an organization trail's shadow may not be readable from a member account
            unknown.append(f"{name} ({_why(exc)})")
            continue
        if not status.get("IsLogging"):
            continue
        if logs_management_writes(
            selectors.get("EventSelectors"), selectors.get("AdvancedEventSelectors")
        ):
            return TrailCheck(True, name, f"trail {name} logs management events in {region}")
    if unknown:
        return TrailCheck(None, None, f"could not read trails {', '.join(unknown)} in {region}")
    return TrailCheck(
        False,
        None,
        f"no CloudTrail trail logs management write events in {region}: "
        "'AWS API Call via CloudTrail' events will not arrive, so changes are seen without "
        "their author (create a trail, or the agent cannot tell a deploy from a failure)",
    )


def _why(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "error")
    return type(exc).__name__
