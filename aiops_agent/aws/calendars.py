"""SSM Change Calendars (`AIOPS_CHANGE_CALENDARS`): any CLOSED one is a freeze.

`ssm:GetCalendarState` per calendar (so the freeze can say which), cached briefly. A calendar
that cannot be read is treated as CLOSED and says so: when in doubt about a change freeze, a
person decides (and `status` shows the calendar that cannot be read).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import structlog

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.autonomy import Freeze

log = structlog.get_logger(__name__)


def _parse_time(raw: object) -> datetime | None:
    if isinstance(raw, datetime):
        return raw
    if isinstance(raw, str) and raw:
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


class CalendarReader:
    def __init__(
        self,
        clients: AwsClients,
        names: Sequence[str],
        *,
        ttl_s: float = 15.0,
        deadline_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = clients
        self.names = tuple(names)
        self._ttl = ttl_s
        self._deadline = deadline_s
        self._monotonic = monotonic
        self._cached: tuple[float, list[Freeze]] | None = None

    async def freezes(self, now: datetime) -> list[Freeze]:
        """A freeze for each calendar CLOSED now (or unreadable)."""
        if not self.names:
            return []
        at = self._monotonic()
        if self._cached is not None and at - self._cached[0] < self._ttl:
            return self._cached[1]
        found = [f for name in self.names if (f := await self._state(name, now)) is not None]
        self._cached = (at, found)
        return found

    async def _state(self, name: str, now: datetime) -> Freeze | None:
        try:
            async with asyncio.timeout(self._deadline):
                ssm = await self._clients.client("ssm")
                got = await ssm.get_calendar_state(CalendarNames=[name])
        except Exception as exc:
            log.warning("calendar.unreadable", calendar=name, error=repr(exc))
            code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
            return Freeze(
                freeze_id=f"calendar:{name}",
                starts_at=now,
                ends_at=None,
                author="ssm",
                reason=f"change calendar {name} cannot be read ({code}): treated as CLOSED",
                created_at=now,
                source="calendar",
            )
        if str(got.get("State", "")).upper() != "CLOSED":
            return None
        return Freeze(
            freeze_id=f"calendar:{name}",
            starts_at=now,
            ends_at=_parse_time(got.get("NextTransitionTime")),
            author="ssm",
            reason=f"change calendar {name} is CLOSED",
            created_at=now,
            source="calendar",
        )
