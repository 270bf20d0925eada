"""Who decides: how much the agent may do about one incident's resource (CONTRACT.md).

`decide_autonomy(incident, tags, silences, freezes, pause, settings, now)` is pure: the shell
reads the resource's tags, the silences, freezes and pause from the patterns table and the
change calendars, and passes them in. The first rule that applies wins:

1. an active silence that matches the resource: `off`, recorded SUPPRESSED, no notification;
2. the tag `aiops:autonomy=off`: `off`, recorded IGNORED, no notification;
3. paused, or a freeze active: `act` becomes `ask`;
4. the tag `aiops:autonomy` = notify / ask / act;
5. `AIOPS_DEFAULT_AUTONOMY`.

No I/O, no clock reads, no asyncio here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aiops_agent.domain.models import Autonomy, Incident, PolicyDecision

AUTONOMY_TAG = "aiops:autonomy"
TIER_TAG = "aiops:tier"


class Tier(StrEnum):
    CRITICAL = "critical"
    STANDARD = "standard"
    LOW = "low"


MATCHER_KEYS: frozenset[str] = frozenset(
    {"resource_type", "resource_id", "region", "account", "classification"}
)
"""Keys a silence may match on, besides `tag:NAME`."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Matcher(_Frozen):
    """`KEY=GLOB`: the resource's `KEY` matches the shell-style `GLOB` (case-sensitive)."""

    key: str
    glob: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """`resource_id=i-0abc*` -> Matcher; ValueError saying what is wrong."""
        key, sep, glob = text.partition("=")
        key = key.strip()
        if not sep or not glob:
            raise ValueError(f"matcher {text!r} is not KEY=GLOB")
        if key not in MATCHER_KEYS and not (key.startswith("tag:") and len(key) > 4):
            keys = ", ".join(sorted(MATCHER_KEYS))
            raise ValueError(f"matcher key {key!r} is not one of {keys} or tag:NAME")
        return cls(key=key, glob=glob)

    def matches(self, subject: Mapping[str, str]) -> bool:
        return fnmatchcase(subject.get(self.key, ""), self.glob)

    def __str__(self) -> str:
        return f"{self.key}={self.glob}"


class Silence(_Frozen):
    silence_id: str
    matchers: tuple[Matcher, ...] = Field(min_length=1)
    starts_at: datetime
    ends_at: datetime
    author: str
    reason: str
    created_at: datetime
    expired_by: str | None = None
    """Who ended it early (`silence expire`), if anyone."""

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, subject: Mapping[str, str]) -> bool:
        return all(m.matches(subject) for m in self.matchers)


class Freeze(_Frozen):
    freeze_id: str
    starts_at: datetime
    ends_at: datetime | None
    """None: until it is ended (an SSM Change Calendar that gives no next transition)."""
    author: str
    reason: str
    created_at: datetime
    ended_by: str | None = None
    source: Literal["own", "calendar"] = "own"

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now and (self.ends_at is None or now < self.ends_at)


class Pause(_Frozen):
    """The kill switch: one for the whole fleet."""

    paused: bool
    by: str = ""
    reason: str = ""
    since: datetime | None = None
    resumed_by: str | None = None
    resumed_at: datetime | None = None


TagSource = Literal["resource", "earlier", "none", "unreadable"]


class ResourceTags(_Frozen):
    """The resource's tags and where they came from (the timeline says which)."""

    tags: dict[str, str] = Field(default_factory=dict)
    source: TagSource = "none"
    detail: str = ""
    """e.g. the error that made them unreadable, or when the earlier sighting was."""


@dataclass(frozen=True)
class AutonomySettings:
    """Narrowed from the settings: `AIOPS_DEFAULT_AUTONOMY`, `AIOPS_TIER_COOLDOWNS`."""

    default_autonomy: Autonomy = Autonomy.ACT
    tier_cooldowns: Mapping[str, float] = field(
        default_factory=lambda: {"critical": 10.0, "standard": 5.0, "low": 2.0}
    )
    account: str | None = None
    """The agent's own account: the `account` of a resource whose event does not say."""


def subject_of(incident: Incident, tags: Mapping[str, str], account: str | None) -> dict[str, str]:
    """What a silence's matchers look at."""
    subject = {
        "resource_type": incident.resource_type,
        "resource_id": incident.resource_id,
        "region": incident.region,
        "account": incident.event.account or account or "",
        "classification": str(incident.classification or ""),
    }
    subject.update({f"tag:{k}": v for k, v in tags.items()})
    return subject


def _when(at: datetime | None) -> str:
    return at.isoformat(timespec="seconds") if at else "further notice"


def _tags_note(tags: ResourceTags) -> str:
    match tags.source:
        case "resource":
            return "tags read from the resource"
        case "earlier":
            return f"tags recorded at an earlier sighting ({tags.detail})"
        case "unreadable":
            return f"tags unreadable ({tags.detail}): treated as untagged"
        case _:
            return f"no tags{f' ({tags.detail})' if tags.detail else ''}"


def tier_of(tags: ResourceTags, settings: AutonomySettings) -> tuple[Tier, float, str]:
    """The resource's tier, its cooldown in minutes, and a note when the tag says something."""
    raw = tags.tags.get(TIER_TAG)
    if raw is None:
        return Tier.STANDARD, settings.tier_cooldowns[Tier.STANDARD], ""
    try:
        tier = Tier(raw.strip().lower())
    except ValueError:
        note = f"{TIER_TAG}={raw!r} is not critical, standard or low: standard"
        return Tier.STANDARD, settings.tier_cooldowns[Tier.STANDARD], note
    minutes = settings.tier_cooldowns[tier]
    return tier, minutes, f"{TIER_TAG}={tier.value}: cooldown {minutes:g} min"


def _base(tags: ResourceTags, settings: AutonomySettings) -> tuple[Autonomy, str]:
    """(autonomy, why) by the tag or the default, before holds."""
    note = _tags_note(tags)
    raw = tags.tags.get(AUTONOMY_TAG)
    default = settings.default_autonomy.value
    if raw is None:
        return settings.default_autonomy, f"{note}: AIOPS_DEFAULT_AUTONOMY={default}"
    try:
        autonomy = Autonomy(raw.strip().lower())
    except ValueError:
        why = (
            f"{note}; {AUTONOMY_TAG}={raw!r} is not off, notify, ask or act: "
            f"AIOPS_DEFAULT_AUTONOMY={default}"
        )
        return settings.default_autonomy, why
    return autonomy, f"{AUTONOMY_TAG}={autonomy.value} ({note})"


def holds(freezes: Sequence[Freeze], pause: Pause | None, now: datetime) -> list[str]:
    """Why nothing may run without a person right now: the pause, then each active freeze."""
    reasons = []
    if pause is not None and pause.paused:
        reasons.append(f"paused by {pause.by} since {_when(pause.since)}: {pause.reason}")
    for f in freezes:
        if f.active(now):
            what = "change calendar" if f.source == "calendar" else f"freeze {f.freeze_id}"
            reasons.append(f"{what} until {_when(f.ends_at)} ({f.author}: {f.reason})")
    return reasons


def decide_autonomy(
    incident: Incident,
    tags: ResourceTags,
    silences: Sequence[Silence],
    freezes: Sequence[Freeze],
    pause: Pause | None,
    settings: AutonomySettings,
    now: datetime,
) -> PolicyDecision:
    """The policy decision for `incident` (see the module's docstring for the order)."""
    tier, cooldown, tier_note = tier_of(tags, settings)

    def decision(autonomy: Autonomy, because: str, silence_id: str | None = None) -> PolicyDecision:
        full = f"{because}; {tier_note}" if tier_note else because
        return PolicyDecision(
            autonomy=autonomy,
            because=full,
            silence_id=silence_id,
            tier=tier.value,
            cooldown_minutes=cooldown,
        )

    subject = subject_of(incident, tags.tags, settings.account)
    for s in silences:
        if s.active(now) and s.matches(subject):
            matchers = " ".join(str(m) for m in s.matchers)
            why = f"silence {s.silence_id} ({matchers}) until {_when(s.ends_at)}"
            return decision(Autonomy.OFF, f"{why} by {s.author}: {s.reason}", s.silence_id)
    autonomy, why = _base(tags, settings)
    if autonomy is Autonomy.OFF:
        return decision(autonomy, why)
    held = holds(freezes, pause, now)
    if held and autonomy is Autonomy.ACT:
        return decision(Autonomy.ASK, f"{'; '.join(held)}: act becomes ask ({why})")
    return decision(autonomy, why)


@dataclass(frozen=True)
class ControlState:
    """Silences, freezes and the pause as stored (expired ones too, for the record)."""

    silences: tuple[Silence, ...] = ()
    freezes: tuple[Freeze, ...] = ()
    pause: Pause = field(default_factory=lambda: Pause(paused=False))
    pauses: tuple[Pause, ...] = ()
    """Every pause, newest first, resumed ones included."""

    def active_silences(self, now: datetime) -> list[Silence]:
        return [s for s in self.silences if s.active(now)]

    def active_freezes(self, now: datetime) -> list[Freeze]:
        return [f for f in self.freezes if f.active(now)]
