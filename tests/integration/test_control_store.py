"""One contract for silences, freezes and the pause: the in-memory store and DynamoDB (moto)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.autonomy import Freeze, Matcher, Silence
from aiops_agent.domain.ports import ControlError, ControlStore
from aiops_agent.store.control import DynamoControlStore, MemoryControlStore
from aiops_agent.store.tables import ensure_tables

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture(params=["memory", "dynamodb"])
async def store(
    request: pytest.FixtureRequest, aws: AwsClients, unique: str
) -> AsyncIterator[ControlStore]:
    if request.param == "memory":
        yield MemoryControlStore()
        return
    await ensure_tables(aws, f"inc-{unique}", f"pat-{unique}")
    yield DynamoControlStore(aws, f"pat-{unique}")


def silence(sid: str, start: datetime = T0, hours: float = 2) -> Silence:
    return Silence(
        silence_id=sid,
        matchers=(Matcher.parse("resource_id=i-1*"), Matcher.parse("tag:team=pay")),
        starts_at=start,
        ends_at=start + hours * HOUR,
        author="alice",
        reason="migration",
        created_at=start,
    )


def freeze(fid: str, start: datetime = T0) -> Freeze:
    return Freeze(
        freeze_id=fid,
        starts_at=start,
        ends_at=start + HOUR,
        author="bob",
        reason="black friday",
        created_at=start,
    )


async def test_silences_are_stored_listed_and_kept_after_they_end(store: ControlStore) -> None:
    await store.add_silence(silence("sil-a"))
    await store.add_silence(silence("sil-b", start=T0 + timedelta(minutes=1)))
    state = await store.state()
    assert [s.silence_id for s in state.silences] == ["sil-b", "sil-a"]  # newest first
    assert state.silences[1] == silence("sil-a")  # matchers, author, reason survive the trip
    ended = await store.expire_silence("sil-a", "carol", T0 + HOUR)
    assert ended.ends_at == T0 + HOUR and ended.expired_by == "carol"
    state = await store.state()
    now = T0 + HOUR + timedelta(seconds=1)
    assert [s.silence_id for s in state.active_silences(now)] == ["sil-b"]
    assert {s.silence_id for s in state.silences} == {"sil-a", "sil-b"}  # kept for the record


async def test_a_silence_cannot_be_added_twice_or_ended_twice(store: ControlStore) -> None:
    await store.add_silence(silence("sil-a"))
    with pytest.raises(ControlError):
        await store.add_silence(silence("sil-a"))
    await store.expire_silence("sil-a", "carol", T0 + HOUR)
    with pytest.raises(ControlError, match="over already"):
        await store.expire_silence("sil-a", "carol", T0 + 2 * HOUR)
    with pytest.raises(ControlError, match="no silence sil-x"):
        await store.expire_silence("sil-x", "carol", T0)


async def test_freezes_end_early_and_stay_on_record(store: ControlStore) -> None:
    await store.add_freeze(freeze("frz-a"))
    assert [f.freeze_id for f in (await store.state()).active_freezes(T0)] == ["frz-a"]
    ended = await store.end_freeze("frz-a", "dave", T0 + timedelta(minutes=5))
    assert ended.ended_by == "dave"
    state = await store.state()
    assert state.active_freezes(T0 + timedelta(minutes=6)) == []
    assert [f.freeze_id for f in state.freezes] == ["frz-a"]
    with pytest.raises(ControlError, match="over already"):
        await store.end_freeze("frz-a", "dave", T0 + timedelta(minutes=7))
    with pytest.raises(ControlError, match="no freeze"):
        await store.end_freeze("frz-x", "dave", T0)


async def test_pause_and_resume_with_their_history(store: ControlStore) -> None:
    assert not (await store.state()).pause.paused
    with pytest.raises(ControlError, match="not paused"):
        await store.resume("erin", T0)
    await store.pause("erin", "bad deploy", T0)
    with pytest.raises(ControlError, match="paused already, by erin"):
        await store.pause("frank", "me too", T0 + timedelta(minutes=1))
    state = await store.state()
    assert state.pause.paused and state.pause.by == "erin" and state.pause.since == T0
    resumed = await store.resume("frank", T0 + HOUR)
    assert not resumed.paused and resumed.resumed_by == "frank" and resumed.by == "erin"
    await store.pause("gina", "again", T0 + 2 * HOUR)
    state = await store.state()
    assert state.pause.by == "gina"
    assert [(p.by, p.resumed_by) for p in state.pauses] == [("gina", None), ("erin", "frank")]


async def test_two_operators_pausing_at_once_one_wins(store: ControlStore) -> None:
    results = await asyncio.gather(
        *(store.pause(f"op-{n}", "race", T0) for n in range(4)), return_exceptions=True
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    assert len(won) == 1
    assert all(isinstance(r, ControlError) for r in results if r not in won)
    assert (await store.state()).pause.by == won[0].by
