"""The scan budget shared by replicas: totals read back, day roll-over, no byte forgotten."""

from __future__ import annotations

from datetime import UTC, datetime

from aiops_agent.logs.budget import ScanBudget

DAY1 = datetime(2026, 11, 25, 10, tzinfo=UTC)
DAY2 = datetime(2026, 11, 26, 0, 1, tzinfo=UTC)


class Ledger:
    """The shared counter, in memory: what PatternStore keeps in the patterns table."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.failing = False
        self.writes = 0

    async def scanned_on(self, day: str) -> float:
        if self.failing:
            raise ConnectionError("table unreachable")
        return self.totals.get(day, 0.0)

    async def add_scanned(self, day: str, nbytes: float) -> float:
        if self.failing:
            raise ConnectionError("table unreachable")
        self.writes += 1
        self.totals[day] = self.totals.get(day, 0.0) + nbytes
        return self.totals[day]


async def test_two_replicas_stay_under_one_budget() -> None:
    ledger = Ledger()
    a, b = ScanBudget(ledger, 100), ScanBudget(ledger, 100)
    await a.refresh(DAY1)
    await b.refresh(DAY1)
    a.spend(DAY1, 60)
    await a.commit()
    b.spend(DAY1, 30)
    await b.commit()  # the write returns the shared total: b now knows a's 60
    assert ledger.totals == {"2026-11-25": 90}
    assert b.used == 90 and b.allows(DAY1)
    b.spend(DAY1, 15)
    assert not b.allows(DAY1)  # pending bytes count before they are written
    await a.refresh(DAY1)
    assert a.used == 90 and a.allows(DAY1)
    await b.commit()
    await a.refresh(DAY1)
    assert not a.allows(DAY1)


async def test_a_new_utc_day_starts_from_zero() -> None:
    ledger = Ledger()
    budget = ScanBudget(ledger, 100)
    budget.spend(DAY1, 150)
    await budget.commit()
    assert not budget.allows(DAY1)
    assert budget.allows(DAY2)
    await budget.refresh(DAY2)
    assert budget.used == 0 and ledger.totals == {"2026-11-25": 150}


async def test_bytes_that_could_not_be_written_are_added_with_the_next_write() -> None:
    ledger = Ledger()
    budget = ScanBudget(ledger, 100)
    await budget.refresh(DAY1)
    ledger.failing = True
    budget.spend(DAY1, 40)
    await budget.commit()  # logged, not raised: the analyzer goes on
    await budget.refresh(DAY1)
    assert budget.pending == 40 and budget.used == 40
    ledger.failing = False
    budget.spend(DAY1, 20)
    await budget.commit()
    assert ledger.totals == {"2026-11-25": 60} and budget.pending == 0
    await budget.commit()
    assert ledger.writes == 1  # nothing pending: no write
