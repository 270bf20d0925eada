"""A small TTL cache keyed by an event fingerprint, so the same event costs one model call.

The fingerprint is what makes two events the same question for the model: source, detail type,
action, resource, principal and error code. Not the event id: a redelivery or a burst of the
same call from the same principal on the same resource is one question.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from aiops_agent.domain.models import NormalizedEvent

V = TypeVar("V")


def fingerprint(event: NormalizedEvent) -> str:
    parts = [
        event.source,
        event.detail_type,
        event.action,
        event.resource_key,
        event.principal or "",
        event.error_code or "",
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


class TtlCache(Generic[V]):
    """At most `max_entries` values, each for `ttl_s` seconds; least recently used goes first."""

    def __init__(
        self,
        *,
        ttl_s: float = 300.0,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if self._clock() >= expires:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        if self._ttl_s <= 0:
            return
        self._items[key] = (self._clock() + self._ttl_s, value)
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)
