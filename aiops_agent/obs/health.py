"""Liveness (every daemon loop beats) and readiness (started and not draining).

Ages are measured with `time.monotonic`, so a wall-clock step never makes a loop look stale. The
Prometheus heartbeat gauge, when a `Metrics` is given, carries wall-clock Unix time instead,
because that is what an alert rule compares with `time()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiops_agent.obs.metrics import Metrics


@dataclass
class _Loop:
    max_age_s: float
    last: float
    """Monotonic time of the last beat, or of the registration before the first beat."""
    beats: int = 0


class Health:
    """What `/healthz` and `/readyz` answer. Not thread-safe: use it from the event loop."""

    def __init__(
        self, metrics: Metrics | None = None, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._metrics = metrics
        self._monotonic = monotonic
        """Where ages are read from (a test drives its own)."""
        self._loops: dict[str, _Loop] = {}
        self._started = False
        self._draining = False

    # -- liveness ------------------------------------------------------------------------------

    def register_loop(self, name: str, max_age_s: float) -> None:
        """Watch loop `name`: it must beat at least every `max_age_s` seconds.

        A loop that has not beaten yet counts as alive for its first `max_age_s` after this call.
        """
        if max_age_s <= 0:
            raise ValueError(f"max_age_s must be > 0, got {max_age_s}")
        self._loops[name] = _Loop(max_age_s=max_age_s, last=self._monotonic())
        if self._metrics is not None:
            self._metrics.loop_heartbeat.labels(loop=name).set(time.time())

    def beat(self, name: str) -> None:
        """Loop `name` is alive. An unregistered name is registered with a 60 s max age."""
        loop = self._loops.get(name)
        if loop is None:
            self.register_loop(name, 60.0)
            loop = self._loops[name]
        loop.last = self._monotonic()
        loop.beats += 1
        if self._metrics is not None:
            self._metrics.loop_heartbeat.labels(loop=name).set(time.time())

    def unregister_loop(self, name: str) -> None:
        """Stop watching `name` (a loop that ended on purpose, e.g. while draining)."""
        self._loops.pop(name, None)

    def alive(self, now: float | None = None) -> tuple[bool, dict[str, Any]]:
        """(every loop beat within its max age, per-loop detail). `now` is monotonic time."""
        at = self._monotonic() if now is None else now
        detail: dict[str, Any] = {}
        ok = True
        for name, loop in sorted(self._loops.items()):
            age = max(at - loop.last, 0.0)
            fresh = age <= loop.max_age_s
            ok = ok and fresh
            detail[name] = {
                "ok": fresh,
                "age_s": round(age, 3),
                "max_age_s": loop.max_age_s,
                "beats": loop.beats,
            }
        return ok, detail

    # -- readiness -----------------------------------------------------------------------------

    def mark_started(self) -> None:
        self._started = True

    def mark_draining(self) -> None:
        self._draining = True

    @property
    def draining(self) -> bool:
        return self._draining

    def is_ready(self) -> bool:
        return self._started and not self._draining

    def readiness(self) -> str:
        """`ready`, `starting` or `draining`."""
        if self._draining:
            return "draining"
        return "ready" if self._started else "starting"
