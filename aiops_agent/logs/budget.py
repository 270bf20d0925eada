"""The daily budget of bytes scanned by log queries, shared by every replica.

Each replica adds what its windows scanned to one counter per UTC day in the patterns table
(`pk = "logscan#budget"`, `sk = <day>`, an atomic `ADD`), and reads the total back from that
write (and once per cycle), so N replicas together stay under one budget, not N budgets. A
window is not started once the day's total reaches the budget; the windows wait, watermark
unmoved, until the next UTC day. When the table cannot be written, the bytes stay pending
(and count locally) and are added with the next write: no byte is forgotten.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)


class ScanLedger(Protocol):
    """Where the day's total lives (`aiops_agent.logs.state.PatternStore` fits)."""

    async def scanned_on(self, day: str) -> float: ...

    async def add_scanned(self, day: str, nbytes: float) -> float: ...


def day_of(now: datetime) -> str:
    return now.strftime("%Y-%m-%d")


class ScanBudget:
    def __init__(self, ledger: ScanLedger, per_day: float) -> None:
        self._ledger = ledger
        self.per_day = per_day
        self.day = ""
        self.total = 0.0
        """The day's bytes scanned by every replica, as last read."""
        self.pending = 0.0
        """This replica's bytes not yet added to the shared total."""
        self._lock = asyncio.Lock()

    @property
    def used(self) -> float:
        return self.total + self.pending

    def _roll(self, now: datetime) -> None:
        day = day_of(now)
        if day != self.day:
            if self.pending:
                log.info("logs.scan_budget_day_rolled", day=self.day, unsaved=self.pending)
            self.day, self.total, self.pending = day, 0.0, 0.0

    async def refresh(self, now: datetime) -> None:
        """Read the day's shared total (once per cycle); on failure keep the last one."""
        self._roll(now)
        try:
            self.total = max(self.total, await self._ledger.scanned_on(self.day))
        except Exception as exc:
            log.warning("logs.scan_budget_unread", error=repr(exc))

    def allows(self, now: datetime) -> bool:
        self._roll(now)
        return self.used < self.per_day

    def spend(self, now: datetime, nbytes: float) -> None:
        self._roll(now)
        self.pending += nbytes

    async def commit(self) -> None:
        """Add the pending bytes to the shared total and read it back."""
        async with self._lock:
            nbytes, day = self.pending, self.day
            if not nbytes:
                return
            try:
                total = await self._ledger.add_scanned(day, nbytes)
            except Exception as exc:
                log.warning("logs.scan_budget_unsaved", error=repr(exc), pending=nbytes)
                return
            if day == self.day:
                self.pending -= nbytes
                self.total = max(self.total, total)
