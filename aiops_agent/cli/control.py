"""`silence`, `freeze`, `pause` and `resume`: what operators decide, stored for every replica.

The author of each change is the caller's identity: the AWS principal STS names (what CloudTrail
would record), or the OS user when STS cannot say.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aiops_agent.aws.clients import AwsClients
from aiops_agent.cli.render import table
from aiops_agent.domain import durations
from aiops_agent.domain.autonomy import Freeze, Matcher, Silence
from aiops_agent.domain.ports import ControlError
from aiops_agent.settings import Settings
from aiops_agent.store.control import new_freeze_id, new_silence_id

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(ValueError):
    """A bad argument; the message is the one line printed."""


def parse_duration(text: str) -> timedelta:
    """`2h`, `90m`, `1h30m`, `1d` -> timedelta (domain.durations); UsageError otherwise."""
    try:
        return durations.parse_duration(text)
    except ValueError as err:
        raise UsageError(str(err)) from None


def parse_time(text: str) -> datetime:
    """An ISO-8601 time (no zone: UTC) -> aware datetime; UsageError otherwise."""
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"time {text!r} is not ISO-8601 (2026-12-24T18:00:00Z)") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def window(
    now: datetime, duration: str | None, until: str | None, start: str | None = None
) -> tuple[datetime, datetime]:
    begins = parse_time(start) if start else now
    ends = begins + parse_duration(duration) if duration else parse_time(until or "")
    if ends <= now or ends <= begins:
        raise UsageError("the end must be in the future and after the start")
    return begins, ends


async def caller_identity(clients: AwsClients, deadline_s: float = 5.0) -> str:
    try:
        async with asyncio.timeout(deadline_s):
            sts = await clients.client("sts")
            return str((await sts.get_caller_identity())["Arn"])
    except Exception:
        try:
            return getpass.getuser()
        except Exception:
            return "operator"


def _out(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _show(as_json: bool, data: Any, text: str) -> None:
    """`data` as JSON with `--json`, else the line for people."""
    if as_json:
        _out(data)
    else:
        print(text)


def _err(message: str) -> None:
    print(f"aiops-agent: {message}", file=sys.stderr)


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%SZ") if at else "-"


def silence_json(s: Silence, now: datetime) -> dict[str, Any]:
    return {
        **s.model_dump(mode="json"),
        "matchers": [str(m) for m in s.matchers],
        "active": s.active(now),
    }


def freeze_json(f: Freeze, now: datetime) -> dict[str, Any]:
    return {**f.model_dump(mode="json"), "active": f.active(now)}


class ControlCommands:
    """One AWS session per command: the store, the caller, the clock."""

    def __init__(self, settings: Settings, clients: AwsClients) -> None:
        from aiops_agent.store.control import DynamoControlStore

        self.settings = settings
        self.clients = clients
        self.store = DynamoControlStore(clients, settings.patterns_table)

    async def silence_add(
        self,
        matchers: Sequence[str],
        duration: str | None,
        until: str | None,
        reason: str,
        now: datetime,
    ) -> Silence:
        try:
            parsed = tuple(Matcher.parse(m) for m in matchers)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        begins, ends = window(now, duration, until)
        silence = Silence(
            silence_id=new_silence_id(),
            matchers=parsed,
            starts_at=begins,
            ends_at=ends,
            author=await caller_identity(self.clients),
            reason=reason,
            created_at=now,
        )
        return await self.store.add_silence(silence)

    async def freeze_add(
        self, duration: str | None, until: str | None, start: str | None, reason: str, now: datetime
    ) -> Freeze:
        begins, ends = window(now, duration, until, start)
        freeze = Freeze(
            freeze_id=new_freeze_id(),
            starts_at=begins,
            ends_at=ends,
            author=await caller_identity(self.clients),
            reason=reason,
            created_at=now,
        )
        return await self.store.add_freeze(freeze)

    async def calendar_freezes(self, now: datetime) -> list[Freeze]:
        from aiops_agent.aws.calendars import CalendarReader

        return await CalendarReader(self.clients, self.settings.change_calendars).freezes(now)


async def run_control(settings: Settings, args: Any, as_json: bool) -> int:
    """Dispatch `silence ...`, `freeze ...`, `pause`, `resume`."""
    from aiops_agent.app import build_clients

    async with build_clients(settings) as clients:
        commands = ControlCommands(settings, clients)
        try:
            return await _run(commands, args, as_json)
        except UsageError as exc:
            _err(str(exc))
            return EXIT_USAGE
        except ControlError as exc:
            _err(str(exc))
            return EXIT_FAILED


async def _run(c: ControlCommands, args: Any, as_json: bool) -> int:
    now = datetime.now(UTC)
    action = getattr(args, "control_command", None)
    if args.command == "silence":
        if action == "add":
            s = await c.silence_add(args.match, args.duration, args.until, args.reason, now)
            _show(as_json, silence_json(s, now), s.silence_id)
        elif action == "list":
            state = await c.store.state()
            shown = [s for s in state.silences if args.all or s.active(now) or s.starts_at > now]
            if as_json:
                _out([silence_json(s, now) for s in shown])
            else:
                print(silence_table(shown, now) if shown else "no silences")
        elif action == "expire":
            s = await c.store.expire_silence(args.silence_id, await caller_identity(c.clients), now)
            _show(as_json, silence_json(s, now), f"{s.silence_id} expired")
    elif args.command == "freeze":
        if action == "add":
            f = await c.freeze_add(args.duration, args.until, args.start, args.reason, now)
            _show(as_json, freeze_json(f, now), f.freeze_id)
        elif action == "list":
            state = await c.store.state()
            own = [f for f in state.freezes if args.all or f.ends_at is None or f.ends_at > now]
            frozen = [*own, *await c.calendar_freezes(now)]
            if as_json:
                _out([freeze_json(f, now) for f in frozen])
            else:
                print(freeze_table(frozen, now) if frozen else "no freezes")
        elif action == "end":
            f = await c.store.end_freeze(args.freeze_id, await caller_identity(c.clients), now)
            _show(as_json, freeze_json(f, now), f"{f.freeze_id} ended")
    elif args.command == "pause":
        p = await c.store.pause(await caller_identity(c.clients), args.reason, now)
        _show(as_json, p.model_dump(mode="json"), f"paused by {p.by}: {p.reason}")
    elif args.command == "resume":
        p = await c.store.resume(await caller_identity(c.clients), now)
        _show(as_json, p.model_dump(mode="json"), f"resumed by {p.resumed_by}")
    return EXIT_OK


def silence_table(silences: Sequence[Silence], now: datetime) -> str:
    rows = [
        (
            s.silence_id,
            " ".join(str(m) for m in s.matchers),
            "active" if s.active(now) else ("pending" if s.starts_at > now else "expired"),
            _when(s.ends_at),
            s.author,
            s.reason,
        )
        for s in silences
    ]
    return table(("ID", "MATCHERS", "STATUS", "ENDS", "AUTHOR", "REASON"), rows, max_width=60)


def freeze_table(freezes: Sequence[Freeze], now: datetime) -> str:
    rows = [
        (
            f.freeze_id,
            "active" if f.active(now) else ("pending" if f.starts_at > now else "ended"),
            _when(f.starts_at),
            _when(f.ends_at),
            f.author,
            f.reason,
        )
        for f in freezes
    ]
    return table(("ID", "STATUS", "STARTS", "ENDS", "AUTHOR", "REASON"), rows, max_width=60)
