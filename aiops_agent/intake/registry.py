"""Registries of normalizers, filled by decorators (Cloud Custodian's `@registry.register`).

A new kind of event is a new module with a decorated function, not an edit to the dispatcher:

    @normalizer("aws.ec2", "EC2 Instance State-change Notification")
    def ec2_state_change(env: Envelope) -> list[NormalizedEvent]: ...

`normalizer("*", detail_type)` matches that detail-type from any source (CloudTrail API calls
arrive as `aws.<service>`, one detail-type for every service).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.envelope import Envelope

K = TypeVar("K", bound=Hashable)
F = TypeVar("F", bound=Callable[..., list[NormalizedEvent]])

ANY_SOURCE = "*"


class Registry(Generic[K, F]):
    """Keys to functions; registering a key twice is a programming error."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._entries: dict[K, F] = {}

    def register(self, *keys: K) -> Callable[[F], F]:
        def decorate(fn: F) -> F:
            for key in keys:
                if key in self._entries:
                    raise ValueError(f"{self.name}: {key!r} is already registered")
                self._entries[key] = fn
            return fn

        return decorate

    def get(self, key: K) -> F | None:
        return self._entries.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[K]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


EnvelopeNormalizer = Callable[[Envelope], list[NormalizedEvent]]

EVENT_NORMALIZERS: Registry[tuple[str, str], EnvelopeNormalizer] = Registry("event normalizers")


def normalizer(source: str, detail_type: str) -> Callable[[EnvelopeNormalizer], EnvelopeNormalizer]:
    """Register the normalizer of one (source, detail-type); `source="*"` matches any source."""
    return EVENT_NORMALIZERS.register((source, detail_type))


def find_normalizer(source: str, detail_type: str) -> EnvelopeNormalizer | None:
    return EVENT_NORMALIZERS.get((source, detail_type)) or EVENT_NORMALIZERS.get(
        (ANY_SOURCE, detail_type)
    )


def source_of(detail_type: str) -> str | None:
    """The one source registered for `detail_type` (for envelopes that lost theirs), or None."""
    sources = {source for source, kind in EVENT_NORMALIZERS if kind == detail_type}
    sources.discard(ANY_SOURCE)
    return sources.pop() if len(sources) == 1 else None
